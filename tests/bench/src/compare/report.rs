//! The comparison's results: one row per system (measured, or skipped with the reason), the
//! ratios chatd ÷ best of ngircd and NATS and chatd ÷ gossipsub, and the table printed at the
//! end of `chat-bench --compare`
//! (Markdown, so that it goes into docs/performance.md as it is; `--json` prints
//! [`CompareReport`] instead).

use serde::Serialize;

use crate::StepReport;

/// The gossipsub anchor's row name.
pub const GOSSIPSUB: &str = "libp2p gossipsub (QUIC, D = 6)";

/// One system's line of the table.
#[derive(Serialize, Clone, Default)]
pub struct Row {
    pub system: String,
    pub nodes: usize,
    /// Why the system was not measured, if it was not.
    pub skipped: Option<String>,
    /// The measured step (`None` when skipped).
    pub step: Option<StepReport>,
}

/// chatd's figure ÷ an anchor's (the best of several: the lowest), per figure.
#[derive(Serialize, Clone, Default)]
pub struct Ratios {
    pub p50: f64,
    pub p99: f64,
    pub cpu_per_delivery: f64,
}

/// What `--compare` measured.
#[derive(Serialize, Default)]
pub struct CompareReport {
    pub nodes: usize,
    pub rate: f64,
    pub seconds: u64,
    pub rows: Vec<Row>,
    /// chatd ÷ the best of ngircd and NATS; `None` unless chatd and at least one of them were
    /// measured.
    pub chatd_over_best_anchor: Option<Ratios>,
    /// chatd ÷ gossipsub; `None` unless both were measured.
    pub chatd_over_gossipsub: Option<Ratios>,
}

pub fn skipped(system: &str, nodes: usize, why: String) -> Row {
    Row {
        system: system.to_owned(),
        nodes,
        skipped: Some(why),
        step: None,
    }
}

pub fn measured(system: &str, nodes: usize, step: StepReport) -> Row {
    Row {
        system: system.to_owned(),
        nodes,
        skipped: None,
        step: Some(step),
    }
}

pub fn describe(row: &Row) -> String {
    match (&row.step, &row.skipped) {
        (Some(s), _) => format!(
            "  {}: p50 {:.2} ms, p99 {:.2} ms, {:.0} µs server CPU per delivery, {} of {} \
             delivered",
            row.system,
            s.p50_ms,
            s.p99_ms,
            s.cpu_us_per_delivery,
            s.delivered,
            s.deliveries_expected
        ),
        (None, Some(why)) => format!("  {}: SKIPPED — {why}", row.system),
        (None, None) => format!("  {}: not measured", row.system),
    }
}

/// chatd ÷ the best (lowest) figure of the measured anchors that `over` picks, for each of
/// p50, p99 and CPU per delivery.
pub fn ratios(rows: &[Row], over: impl Fn(&Row) -> bool) -> Option<Ratios> {
    let chatd = rows.iter().find(|r| r.system == "chatd")?.step.as_ref()?;
    let anchors: Vec<&StepReport> = rows
        .iter()
        .filter(|r| r.system != "chatd" && over(r))
        .filter_map(|r| r.step.as_ref())
        .collect();
    let best =
        |f: fn(&StepReport) -> f64| anchors.iter().map(|s| f(s)).fold(f64::INFINITY, f64::min);
    let div = |a: f64, b: f64| {
        if b > 0.0 && b.is_finite() {
            a / b
        } else {
            f64::NAN
        }
    };
    if anchors.is_empty() {
        return None;
    }
    Some(Ratios {
        p50: div(chatd.p50_ms, best(|s| s.p50_ms)),
        p99: div(chatd.p99_ms, best(|s| s.p99_ms)),
        cpu_per_delivery: div(chatd.cpu_us_per_delivery, best(|s| s.cpu_us_per_delivery)),
    })
}

/// Prints the table (Markdown, so that it can go into docs/performance.md as it is).
pub fn print_table(r: &CompareReport) {
    println!(
        "one publisher at {:.0} msg/s for {} s, one subscriber per node",
        r.rate, r.seconds
    );
    println!();
    println!("| system | nodes | p50 | p99 | server CPU per delivery | delivered / expected |");
    println!("|---|---|---|---|---|---|");
    for row in &r.rows {
        match (&row.step, &row.skipped) {
            (Some(s), _) => println!(
                "| {} | {} | {:.2} ms | {:.2} ms | {:.0} µs | {} / {}{} |",
                row.system,
                row.nodes,
                s.p50_ms,
                s.p99_ms,
                s.cpu_us_per_delivery,
                s.delivered,
                s.deliveries_expected,
                if s.duplicates > 0 {
                    format!(", {} duplicates", s.duplicates)
                } else {
                    String::new()
                }
            ),
            (None, why) => println!(
                "| {} | {} | — | — | — | skipped: {} |",
                row.system,
                row.nodes,
                cell(why.as_deref().unwrap_or("not measured"))
            ),
        }
    }
    let ratio_rows = [
        ("chatd ÷ best of ngircd/NATS", &r.chatd_over_best_anchor),
        ("chatd ÷ gossipsub", &r.chatd_over_gossipsub),
    ];
    for (name, q) in ratio_rows {
        if let Some(q) = q {
            println!(
                "| **{name}** | | **{:.2}×** | **{:.2}×** | **{:.2}×** | |",
                q.p50, q.p99, q.cpu_per_delivery
            );
        }
    }
}

/// `text` fit for one Markdown table cell: one line, no `|`, at most 300 characters (the whole
/// reason, with a server's log, went to stderr already).
fn cell(text: &str) -> String {
    let flat: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "/");
    match flat.char_indices().nth(300) {
        Some((i, _)) => format!("{} …", &flat[..i]),
        None => flat,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_fit_in_one_cell() {
        assert_eq!(
            cell("nats0 exited; log:\n a | b\n"),
            "nats0 exited; log: a / b"
        );
        assert_eq!(cell(&"x".repeat(400)).chars().count(), 302);
    }

    #[test]
    fn ratios_divide_by_the_best_anchor() {
        let row = |system: &str, p50: f64, p99: f64, cpu: f64| {
            let step = StepReport {
                p50_ms: p50,
                p99_ms: p99,
                cpu_us_per_delivery: cpu,
                ..StepReport::default()
            };
            measured(system, 20, step)
        };
        let rows = vec![
            row("irc", 2.0, 4.0, 100.0),
            row("nats", 1.0, 5.0, 200.0),
            skipped("other", 20, "absent".into()),
            row("chatd", 3.0, 8.0, 300.0),
        ];
        let q = ratios(&rows, |_| true).expect("ratios");
        assert_eq!((q.p50, q.p99, q.cpu_per_delivery), (3.0, 2.0, 3.0));
        assert!(ratios(&rows[2..], |_| true).is_none());
        let q = ratios(&rows, |r| r.system == "nats").expect("chatd ÷ nats");
        assert_eq!((q.p50, q.p99, q.cpu_per_delivery), (3.0, 1.6, 1.5));
        assert!(ratios(&rows, |r| r.system == GOSSIPSUB).is_none());
    }
}
