//! The outcome of a run, printed as JSON (`--json`) or as a readable summary.

use serde::Serialize;

use chat_overlay::sim::LookupRecord;

/// Lookup outcomes summed up.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct LookupSummary {
    /// Lookups that finished.
    pub lookups: usize,
    /// Lookups that failed or returned a node other than the key's true successor.
    pub failures: usize,
    /// Mean requests per successful lookup.
    pub hops_mean: f64,
    /// 99th percentile of requests per successful lookup.
    pub hops_p99: u32,
}

impl LookupSummary {
    /// Summarises finished lookups.
    pub fn from_records(recs: &[LookupRecord]) -> LookupSummary {
        let mut hops: Vec<u32> = recs.iter().filter(|r| r.ok).map(|r| r.hops).collect();
        hops.sort_unstable();
        let ok = hops.len();
        LookupSummary {
            lookups: recs.len(),
            failures: recs.len() - ok,
            hops_mean: if ok == 0 {
                0.0
            } else {
                hops.iter().map(|h| *h as f64).sum::<f64>() / ok as f64
            },
            hops_p99: percentile(&hops, 0.99),
        }
    }

    /// Fraction of lookups that succeeded (1 when there were none).
    pub fn success_rate(&self) -> f64 {
        if self.lookups == 0 {
            1.0
        } else {
            1.0 - self.failures as f64 / self.lookups as f64
        }
    }
}

/// The `p` quantile of sorted values (nearest rank).
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Everything a run reports.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// Seed of the run.
    pub seed: u64,
    /// Hosts ever started.
    pub nodes: usize,
    /// Hosts up at the end.
    pub live_nodes: usize,
    /// Every live member's successor and predecessor are the true ones.
    pub ring_correct: bool,
    /// Fraction of correct successor-list entries.
    pub successor_lists_correct: f64,
    /// Fraction of correct distinct fingers.
    pub fingers_correct: f64,
    /// Lookups measured on the final ring.
    pub lookups: usize,
    /// Of those, failed or wrong.
    pub lookup_failures: usize,
    /// Mean requests per lookup.
    pub lookup_hops_mean: f64,
    /// 99th percentile of requests per lookup.
    pub lookup_hops_p99: u32,
    /// Virtual time simulated.
    pub virtual_seconds: f64,
    /// Wall-clock time of the run.
    pub wall_seconds: f64,
    /// Peak resident memory of the process.
    pub peak_rss_mb: f64,
    /// Messages delivered.
    pub messages: u64,
    /// Scenario-specific figures.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Report {
    /// Adds a scenario-specific figure.
    pub fn put(&mut self, key: &str, v: impl Serialize) {
        if let Ok(v) = serde_json::to_value(v) {
            self.extra.insert(key.to_string(), v);
        }
    }

    /// A readable multi-line summary.
    pub fn human(&self) -> String {
        let mut s = format!(
            "scenario {} (seed {}): {} nodes, {} live\n\
             ring correct: {}   successor lists: {:.4}   fingers: {:.4}\n\
             lookups: {} ({} failed), hops mean {:.2}, p99 {}\n\
             virtual {:.1} s, wall {:.1} s, peak RSS {:.0} MB, {} messages\n",
            self.scenario,
            self.seed,
            self.nodes,
            self.live_nodes,
            self.ring_correct,
            self.successor_lists_correct,
            self.fingers_correct,
            self.lookups,
            self.lookup_failures,
            self.lookup_hops_mean,
            self.lookup_hops_p99,
            self.virtual_seconds,
            self.wall_seconds,
            self.peak_rss_mb,
            self.messages,
        );
        for (k, v) in &self.extra {
            s.push_str(&format!("{k}: {v}\n"));
        }
        s
    }
}

/// Peak resident set size of this process in MB (Linux `VmHWM`), 0 where unknown.
pub fn peak_rss_mb() -> f64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0.0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
