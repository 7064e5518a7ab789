//! The anchors' server processes: started with their output in a log file of a private
//! temporary directory, waited for until they listen (with a deadline, and an early exit
//! reported with the log's tail), and stopped by pid — SIGTERM, then SIGKILL after
//! [`STOP_DEADLINE`] — when [`Procs`] is dropped. Only the processes started here are ever
//! signalled.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// How long the servers get to exit after SIGTERM before they are killed.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// One started server.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

/// Started servers and the directory of their configuration and logs.
pub struct Procs {
    dir: tempfile::TempDir,
    procs: Vec<Proc>,
}

impl Procs {
    /// An empty set, with a new temporary directory.
    pub fn new() -> Result<Procs> {
        Ok(Procs {
            dir: tempfile::tempdir().context("temporary directory")?,
            procs: Vec::new(),
        })
    }

    /// The directory for configuration files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Starts `cmd` (its output going to `<name>.log`); returns its pid.
    pub fn spawn(&mut self, name: &str, mut cmd: Command) -> Result<u32> {
        let log = self.dir.path().join(format!("{name}.log"));
        let out = std::fs::File::create(&log).context("log file")?;
        let err = out.try_clone().context("log file")?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        let pid = child.id();
        self.procs.push(Proc {
            name: name.to_owned(),
            child,
            log,
        });
        Ok(pid)
    }

    /// The pids of the started servers, in start order.
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.child.id()).collect()
    }

    /// Fails, with the log's tail, if any server has exited.
    pub fn check_running(&mut self) -> Result<()> {
        for p in &mut self.procs {
            if let Some(status) = p.child.try_wait().context("waiting for a server")? {
                bail!("{} exited ({status}); log:\n{}", p.name, tail(&p.log));
            }
        }
        Ok(())
    }

    /// Waits until something accepts TCP connections on `addr` (the last started server's
    /// address), or fails when `deadline` passes or a server exits.
    pub async fn await_listening(&mut self, addr: SocketAddr, deadline: Duration) -> Result<()> {
        let end = Instant::now() + deadline;
        loop {
            self.check_running()?;
            let attempt =
                tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr))
                    .await;
            if let Ok(Ok(_)) = attempt {
                return Ok(());
            }
            if Instant::now() >= end {
                let name = self.procs.last().map_or("?", |p| p.name.as_str());
                bail!("{name} does not listen on {addr} after {deadline:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let start = text.len().saturating_sub(1500);
    text.get(start..).unwrap_or_default().to_owned()
}

impl Drop for Procs {
    fn drop(&mut self) {
        for p in &self.procs {
            let pid = rustix::process::Pid::from_child(&p.child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let end = Instant::now() + STOP_DEADLINE;
        for p in &mut self.procs {
            while matches!(p.child.try_wait(), Ok(None)) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: u32) -> bool {
        // A reaped child has no /proc entry; a zombie would say "Z".
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    }

    #[test]
    fn dropping_stops_what_was_started_and_only_that() {
        let mut other = Command::new("sleep").arg("30").spawn().expect("sleep runs");
        let mut procs = Procs::new().expect("procs");
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let pid = procs.spawn("sleeper", cmd).expect("spawn");
        assert!(alive(pid));
        procs.check_running().expect("running");
        drop(procs);
        assert!(!alive(pid));
        assert!(matches!(other.try_wait(), Ok(None)), "not ours to stop");
        let _ = other.kill();
        let _ = other.wait();
    }

    #[tokio::test]
    async fn an_early_exit_is_reported_with_the_log() {
        let mut procs = Procs::new().expect("procs");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo no such option >&2; exit 3"]);
        procs.spawn("broken", cmd).expect("spawn");
        let addr: SocketAddr = "127.0.0.1:9".parse().expect("addr");
        let err = procs
            .await_listening(addr, Duration::from_secs(5))
            .await
            .expect_err("exits");
        let text = format!("{err:#}");
        assert!(
            text.contains("broken exited") && text.contains("no such option"),
            "{text}"
        );
    }
}
