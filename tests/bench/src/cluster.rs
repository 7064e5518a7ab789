//! A ring of real chatd processes on loopback: node `i` listens on 127.0.`net`.(10+i) with a
//! system-chosen UDP port, keeps its data and control socket in a private temporary directory,
//! and joins through node 0. Dropping the cluster stops every daemon (SIGTERM, then SIGKILL).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chat_proto::v1::{GetRingRequest, GetStatusRequest};

/// How long one daemon may take to serve its control socket.
const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long the daemons get to leave after SIGTERM before they are killed.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// One running daemon.
pub struct Daemon {
    child: Child,
    /// Its control socket.
    pub socket: PathBuf,
    /// Its NodeId, hex.
    pub id: String,
    /// Its QUIC address.
    pub listen: String,
    log: PathBuf,
}

impl Daemon {
    /// The process id (for `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        text.get(start..).unwrap_or_default().to_owned()
    }
}

/// The running daemons and their directory.
pub struct Cluster {
    dir: tempfile::TempDir,
    worker_threads: u16,
    /// The daemons, in start order (node 0 founded the ring).
    pub nodes: Vec<Daemon>,
}

impl Cluster {
    /// Starts `n` daemons of `chatd` with the config file text `config` and `worker_threads`
    /// async worker threads each, their data in a new directory under `base` (default: the
    /// system's temporary directory), one after the other, each waited for until it answers
    /// on its control socket.
    pub async fn start(
        chatd: &Path,
        n: usize,
        net: u8,
        config: &str,
        worker_threads: u16,
        base: Option<&Path>,
    ) -> Result<Cluster> {
        let dir = match base {
            Some(b) => tempfile::tempdir_in(b),
            None => tempfile::tempdir(),
        }
        .context("temporary directory")?;
        let config_path = dir.path().join("chatd.toml");
        std::fs::write(&config_path, config).context("writing the config")?;
        let mut cluster = Cluster {
            dir,
            worker_threads,
            nodes: Vec::with_capacity(n),
        };
        for i in 0..n {
            let bootstrap = cluster.nodes.first().map(|d| d.listen.clone());
            let node = cluster.spawn(chatd, &config_path, i, net, bootstrap.as_deref())?;
            cluster.nodes.push(node);
            let status = cluster.await_status(i).await?;
            let node = &mut cluster.nodes[i];
            node.id = status.node_id;
            node.listen = status.listen_addr;
        }
        Ok(cluster)
    }

    fn spawn(
        &self,
        chatd: &Path,
        config: &Path,
        i: usize,
        net: u8,
        bootstrap: Option<&str>,
    ) -> Result<Daemon> {
        let home = self.dir.path().join(format!("n{i}"));
        std::fs::create_dir_all(&home).context("node directory")?;
        let socket = home.join("control.sock");
        let log = home.join("chatd.log");
        let mut cmd = Command::new(chatd);
        cmd.env_clear()
            .env("HOME", &home)
            .env("XDG_RUNTIME_DIR", &home)
            .env("CHATD_LOG", "warn")
            .env("TOKIO_WORKER_THREADS", self.worker_threads.to_string())
            .arg("--config")
            .arg(config)
            .arg("--listen")
            .arg(format!("127.0.{net}.{}:0", 10 + i))
            .arg("--data-dir")
            .arg(home.join("data"))
            .arg("--control")
            .arg(&socket)
            .arg("--nick")
            .arg(format!("bench{i}"));
        if let Some(b) = bootstrap {
            cmd.arg("--bootstrap").arg(b);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).context("log file")?)
            .spawn()
            .with_context(|| format!("starting {}", chatd.display()))?;
        Ok(Daemon {
            child,
            socket,
            id: String::new(),
            listen: String::new(),
            log,
        })
    }

    async fn await_status(&mut self, i: usize) -> Result<chat_proto::v1::GetStatusResponse> {
        let end = Instant::now() + START_DEADLINE;
        loop {
            let node = &mut self.nodes[i];
            if let Some(status) = node.child.try_wait().context("waiting for chatd")? {
                bail!("chatd {i} exited ({status}); log:\n{}", node.log_tail());
            }
            if let Ok(mut client) =
                chatctl::client::node_service(&chatctl::client::Target::unix(&node.socket)).await
                && let Ok(r) = client.get_status(GetStatusRequest {}).await
            {
                return Ok(r.into_inner());
            }
            if Instant::now() >= end {
                bail!(
                    "chatd {i} did not answer within {START_DEADLINE:?}; log:\n{}",
                    node.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every node's successor and predecessor are its neighbours in NodeId order;
    /// returns how long that took, or the last mismatch when `deadline` passes.
    pub async fn await_ring(&self, deadline: Duration) -> Result<Duration> {
        let start = Instant::now();
        let mut ids: Vec<&str> = self.nodes.iter().map(|d| d.id.as_str()).collect();
        ids.sort_unstable();
        loop {
            let problem = self.ring_problem(&ids).await;
            match problem {
                None => return Ok(start.elapsed()),
                Some(p) if start.elapsed() >= deadline => {
                    bail!("the ring is not correct after {deadline:?}: {p}")
                }
                Some(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    async fn ring_problem(&self, ids: &[&str]) -> Option<String> {
        for (i, node) in self.nodes.iter().enumerate() {
            let ring =
                match chatctl::client::node_service(&chatctl::client::Target::unix(&node.socket))
                    .await
                {
                    Ok(mut c) => c.get_ring(GetRingRequest {}).await.map(|r| r.into_inner()),
                    Err(e) => return Some(format!("node {i}: {e}")),
                };
            let ring = match ring {
                Ok(r) => r,
                Err(e) => return Some(format!("node {i}: {}", e.message())),
            };
            let pos = ids.iter().position(|id| *id == node.id)?;
            let want_succ = ids[(pos + 1) % ids.len()];
            let want_pred = ids[(pos + ids.len() - 1) % ids.len()];
            let succ = ring.successors.first().map(|p| p.node_id.as_str());
            let pred = ring.predecessor.as_ref().map(|p| p.node_id.as_str());
            if succ != Some(want_succ) || pred != Some(want_pred) {
                return Some(format!("node {i} does not have its neighbours yet"));
            }
        }
        None
    }
}

impl Cluster {
    /// Every node's drop counters, summed by reason.
    pub async fn drops(&self) -> Result<BTreeMap<String, u64>> {
        let mut sum = BTreeMap::new();
        for node in &self.nodes {
            let mut client =
                chatctl::client::node_service(&chatctl::client::Target::unix(&node.socket)).await?;
            let status = client
                .get_status(GetStatusRequest {})
                .await
                .context("status")?
                .into_inner();
            for (reason, n) in status.dropped {
                *sum.entry(reason).or_insert(0) += n;
            }
        }
        Ok(sum)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &self.nodes {
            let pid = rustix::process::Pid::from_child(&node.child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let end = Instant::now() + STOP_DEADLINE;
        for node in &mut self.nodes {
            while matches!(node.child.try_wait(), Ok(None)) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
}
