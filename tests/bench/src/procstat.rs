//! CPU time and memory of a process, read from `/proc` (Linux only).
//!
//! CPU time is `utime + stime` of `/proc/PID/stat` (all threads), converted from clock ticks;
//! memory is `VmRSS` (now) and `VmHWM` (peak) of `/proc/PID/status`.

use std::time::Duration;

use anyhow::{Context, Result, bail};

/// One reading of a process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// CPU time used so far, user and system.
    pub cpu: Duration,
    /// Resident memory now, in bytes.
    pub rss: u64,
    /// Peak resident memory, in bytes.
    pub peak_rss: u64,
}

/// Reads process `pid`.
pub fn sample(pid: u32) -> Result<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let ticks = cpu_ticks(&stat)?;
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Ok(Sample {
        cpu: Duration::from_micros(ticks.saturating_mul(1_000_000) / hz),
        rss: status_kib(&status, "VmRSS:")? * 1024,
        peak_rss: status_kib(&status, "VmHWM:")? * 1024,
    })
}

/// `utime + stime` from the text of `/proc/PID/stat`. The command name (field 2) is in
/// parentheses and may contain spaces, so fields are counted after its closing parenthesis.
fn cpu_ticks(stat: &str) -> Result<u64> {
    let Some((_, rest)) = stat.rsplit_once(')') else {
        bail!("unexpected /proc/PID/stat: {stat:?}");
    };
    // After ")": state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("field {n} of /proc/PID/stat"))
    };
    Ok(field(14)? + field(15)?)
}

/// A `Name:   N kB` line of `/proc/PID/status`, in KiB.
fn status_kib(status: &str, name: &str) -> Result<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("{name} in /proc/PID/status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_the_name() {
        let stat = "1234 (chat d) S 1 1234 1234 0 -1 4194560 500 0 0 0 70 30 0 0 20 0 3 0 \
                    100 1000 200 18446744073709551615";
        assert_eq!(cpu_ticks(stat).expect("parses"), 100);
        assert!(cpu_ticks("garbage").is_err());
    }

    #[test]
    fn parses_status_lines() {
        let status = "Name:\tchatd\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_kib(status, "VmRSS:").expect("rss"), 10240);
        assert_eq!(status_kib(status, "VmHWM:").expect("hwm"), 20480);
        assert!(status_kib(status, "VmSwap:").is_err());
    }

    #[test]
    fn samples_this_process() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss > 0 && s.peak_rss >= s.rss);
    }
}
