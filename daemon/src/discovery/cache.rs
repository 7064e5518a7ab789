//! The remembered peers: a bounded list of ring members this node has recently seen, in
//! `peers` in the data directory, tried at the next start beside the configured bootstrap.
//!
//! One line per peer, `NODE_ID ADDRESS SEEN_UNIX_SECONDS`, newest first, at most
//! [`MAX_PEERS`]. The file is rewritten (to a temporary file, then renamed; mode 0600) from the
//! ring's view — predecessor, successors and fingers — when those changed (looked at every
//! [`CHECK_INTERVAL`]) and at least every [`SAVE_INTERVAL`]. Lines that do
//! not parse are skipped and counted in the log; peers not seen for [`MAX_AGE`] are dropped.
//! A remembered address is only a hint: the peer's certificate proves its NodeId on contact, as
//! for any bootstrap address.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chat_overlay::NodeId;
use tracing::{debug, warn};

use crate::overlay::OverlayHandle;

/// Peers remembered at most.
pub const MAX_PEERS: usize = 64;
/// How often the ring's view is looked at; the file is rewritten when the peers changed.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// How often the file is rewritten anyway (to refresh when the peers were last seen).
pub const SAVE_INTERVAL: Duration = Duration::from_secs(60);
/// A peer not seen for this long is forgotten.
pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The file's name in the data directory.
pub const FILE: &str = "peers";
/// Longest file read (a bound on a file somebody else wrote).
const MAX_FILE: u64 = 64 * 1024;

/// One remembered peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remembered {
    /// Its NodeId when last seen.
    pub id: NodeId,
    /// Where it listened.
    pub addr: SocketAddr,
    /// When it was last seen (Unix seconds).
    pub seen: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Parses the file's text; returns the peers (newest first, within the bounds) and the number
/// of lines skipped.
pub fn parse(text: &str, now: u64) -> (Vec<Remembered>, usize) {
    let mut bad = 0;
    let mut out: Vec<Remembered> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut parts = line.split_whitespace();
        let parsed = (|| {
            let id: NodeId = parts.next()?.parse().ok()?;
            let addr: SocketAddr = parts.next()?.parse().ok()?;
            let seen: u64 = parts.next()?.parse().ok()?;
            parts
                .next()
                .is_none()
                .then_some(Remembered { id, addr, seen })
        })();
        match parsed {
            Some(r) if now.saturating_sub(r.seen) <= MAX_AGE.as_secs() => {
                if !out.iter().any(|o| o.id == r.id) {
                    out.push(r);
                }
            }
            Some(_) => {}
            None => bad += 1,
        }
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.seen));
    out.truncate(MAX_PEERS);
    (out, bad)
}

/// The peers remembered in `dir` (empty when there is no file or it cannot be read).
pub fn load(dir: &Path) -> Vec<Remembered> {
    let path = dir.join(FILE);
    let text = match std::fs::File::open(&path) {
        Ok(f) => {
            let mut s = String::new();
            use std::io::Read;
            match f.take(MAX_FILE).read_to_string(&mut s) {
                Ok(_) => s,
                Err(e) => {
                    warn!(file = %path.display(), error = %e, "cannot read the remembered peers");
                    return Vec::new();
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            warn!(file = %path.display(), error = %e, "cannot read the remembered peers");
            return Vec::new();
        }
    };
    let (peers, bad) = parse(&text, now_secs());
    if bad > 0 {
        warn!(file = %path.display(), lines = bad, "skipped remembered peers that do not parse");
    }
    peers
}

/// Writes `peers` to `dir` (temporary file, then rename; mode 0600).
pub fn save(dir: &Path, peers: &[Remembered]) -> std::io::Result<()> {
    let tmp: PathBuf = dir.join(format!(".{FILE}.tmp"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    for p in peers.iter().take(MAX_PEERS) {
        writeln!(f, "{} {} {}", p.id.to_hex(), p.addr, p.seen)?;
    }
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(FILE))
}

/// Merges what the ring shows now into `known`: those seen now first, then the rest by age.
pub fn merge(known: &[Remembered], seen_now: &[(NodeId, SocketAddr)], now: u64) -> Vec<Remembered> {
    let mut by_id: BTreeMap<NodeId, Remembered> = known.iter().map(|r| (r.id, *r)).collect();
    for (id, addr) in seen_now {
        by_id.insert(
            *id,
            Remembered {
                id: *id,
                addr: *addr,
                seen: now,
            },
        );
    }
    let mut v: Vec<Remembered> = by_id
        .into_values()
        .filter(|r| now.saturating_sub(r.seen) <= MAX_AGE.as_secs())
        .collect();
    v.sort_by(|a, b| b.seen.cmp(&a.seen).then(a.id.cmp(&b.id)));
    v.truncate(MAX_PEERS);
    v
}

/// Keeps the file in step with the ring until the driver stops.
pub async fn run(ring: OverlayHandle, dir: PathBuf, mut known: Vec<Remembered>) {
    let mut tick = tokio::time::interval(CHECK_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut saved: Vec<(NodeId, SocketAddr)> = Vec::new();
    let mut saved_at: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        let Some(view) = ring.view().await else {
            // The driver stopped: the daemon is going down.
            std::future::pending::<()>().await;
            return;
        };
        if !view.member {
            continue;
        }
        let me = view.me.id;
        let mut seen: Vec<(NodeId, SocketAddr)> = view
            .predecessor
            .iter()
            .chain(view.successors.iter())
            .chain(view.fingers.iter().map(|f| &f.peer))
            .filter(|p| p.id != me)
            .map(|p| (p.id, p.addr))
            .collect();
        seen.sort();
        seen.dedup();
        let due = saved_at.is_none_or(|t| t.elapsed() >= SAVE_INTERVAL);
        if seen == saved && !due {
            continue;
        }
        known = merge(&known, &seen, now_secs());
        saved = seen;
        saved_at = Some(tokio::time::Instant::now());
        let (dir2, list) = (dir.clone(), known.clone());
        match tokio::task::spawn_blocking(move || save(&dir2, &list)).await {
            Ok(Ok(())) => debug!(peers = known.len(), "remembered peers saved"),
            Ok(Err(e)) => warn!(error = %e, "cannot save the remembered peers"),
            Err(e) => warn!(error = %e, "cannot save the remembered peers"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> NodeId {
        NodeId::from_high_u64(n)
    }

    #[test]
    fn the_file_round_trips_and_garbage_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let now = now_secs();
        let peers = vec![
            Remembered {
                id: id(1),
                addr: "127.0.0.1:7400".parse().expect("addr"),
                seen: now,
            },
            Remembered {
                id: id(2),
                addr: "[::1]:7401".parse().expect("addr"),
                seen: now - 5,
            },
        ];
        save(dir.path(), &peers).expect("save");
        assert_eq!(load(dir.path()), peers);
        let mode = std::fs::metadata(dir.path().join(FILE))
            .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
            .expect("meta");
        assert_eq!(mode, 0o600);
        let text = format!(
            "garbage\n{} 127.0.0.1:1 {}\n{} not-an-addr 1\n{} 127.0.0.1:2 1\n",
            id(3).to_hex(),
            now,
            id(4).to_hex(),
            id(5).to_hex()
        );
        let (got, bad) = parse(&text, now);
        assert_eq!(bad, 2, "the garbage line and the bad address");
        // id 5 was seen in 1970: older than MAX_AGE, forgotten.
        assert_eq!(got.iter().map(|r| r.id).collect::<Vec<_>>(), vec![id(3)]);
    }

    #[test]
    fn merging_keeps_the_newest_within_the_bound() {
        let old: Vec<Remembered> = (0..100)
            .map(|n| Remembered {
                id: id(n),
                addr: "127.0.0.1:9".parse().expect("addr"),
                seen: 1_000 + n,
            })
            .collect();
        let now_seen = vec![(id(500), "127.0.0.1:10".parse().expect("addr"))];
        let m = merge(&old, &now_seen, 2_000);
        assert_eq!(m.len(), MAX_PEERS);
        assert_eq!(m[0].id, id(500));
        assert_eq!(m[1].id, id(99), "then the most recently seen");
        assert!(load(Path::new("/nonexistent-dir-for-chatd-test")).is_empty());
    }
}
