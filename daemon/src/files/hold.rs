//! Holding private files for offline recipients (docs/protocol.md, "Holding ciphertext").
//!
//! Before a private message with a file of at most `files.offline_max_mb` is reported sent,
//! the sender's node asks the `k` successors of the ciphertext's hash on the ring
//! (`k` = `ring.record_replicas`; which nodes, and the fallbacks, in [`super::place`]) to
//! hold it, over a bulk stream of kind [`kind::FILE_HOLD`]:
//!
//! ```text
//! request = version:u8 (1) ‖ hash:[u8; 32] ‖ size:u64 LE ‖ ttl_s:u64 LE     (49 bytes)
//! answer  = 0 (held)  |  1 ‖ reason: UTF-8 (≤ 200 bytes)                    (refused)
//! ```
//!
//! A holder checks its bounds (the size at most its `offline_max_mb`; per origin node at most
//! [`PER_ORIGIN_FILES`] × that; in all at most a quarter of `files.store_mb`), then fetches the
//! blob from the asking node with the ordinary verified transfer, pins it, answers, and
//! announces itself as a provider (so the recipient finds it when the sender is gone). The
//! hold lasts the asked lifetime, at most the holder's own `chat.mailbox_ttl_days`; then the
//! blob is unpinned and removed (unless this node's own accounts sent or received it).
//! Holds are written to `blobs/holds` so a restart keeps their expiry. Holders only ever see
//! ciphertext: its hash, size, the asking node and the time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chat_blobs::Hash;
use chat_overlay::{NodeId, Peer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};

use super::Files;
use crate::records::unix_ms;
use crate::transport::{BulkHeader, BulkStream, bulk::kind};

/// The bulk header of a hold request.
pub const HEADER: BulkHeader = BulkHeader {
    kind: kind::FILE_HOLD,
    version: 1,
};
/// A request's length.
pub(super) const REQUEST: usize = 49;
/// The longest reason in a refusal.
pub(super) const MAX_REASON: usize = 200;
/// Hold requests answered at once.
const AT_ONCE: usize = 4;
/// Hold requests waiting, at most (the transport refuses more).
const QUEUED: usize = 16;
/// Holds kept at most.
pub const MAX_HOLDS: usize = 4096;
/// One origin node's holds, in bytes, at most this many times `offline_max_mb`.
pub const PER_ORIGIN_FILES: u64 = 4;
/// How long the asking node waits for a holder (which fetches the file meanwhile).
pub(super) const ANSWER_WAIT: Duration = Duration::from_secs(300);
/// How often expired holds are removed.
const EXPIRE_EVERY: Duration = Duration::from_secs(60);

/// The holding's settings.
#[derive(Clone, Copy, Debug)]
pub struct Offline {
    /// The largest file kept for an offline recipient (`files.offline_max_mb`).
    pub max_bytes: u64,
    /// Holders asked (`ring.record_replicas`).
    pub replicas: usize,
    /// How long a hold lasts at most (`chat.mailbox_ttl_days`).
    pub ttl: Duration,
    /// Bytes held for all origins together, at most.
    pub total_bytes: u64,
}

impl Default for Offline {
    fn default() -> Self {
        Offline {
            max_bytes: 25 << 20,
            replicas: 3,
            ttl: Duration::from_secs(30 * 86_400),
            total_bytes: 512 << 20,
        }
    }
}

/// One blob held for another node.
#[derive(Clone, Copy, Debug)]
struct Hold {
    origin: NodeId,
    size: u64,
    expires_ms: u64,
    /// This node keeps the blob for itself too: the hold's expiry leaves it.
    kept: bool,
}

/// The holds, by blob.
#[derive(Debug, Default)]
pub(super) struct Holds(HashMap<Hash, Hold>);

impl Holds {
    fn origin_bytes(&self, origin: &NodeId) -> u64 {
        self.0
            .values()
            .filter(|h| h.origin == *origin)
            .map(|h| h.size)
            .sum()
    }

    fn total_bytes(&self) -> u64 {
        self.0.values().map(|h| h.size).sum()
    }

    fn encode(&self) -> String {
        let mut out = String::new();
        for (hash, h) in &self.0 {
            out.push_str(&format!(
                "{} {} {} {} {}\n",
                hash.to_hex(),
                h.origin.to_hex(),
                h.size,
                h.expires_ms,
                u8::from(h.kept)
            ));
        }
        out
    }

    fn decode(text: &str) -> Holds {
        let mut holds = Holds::default();
        for line in text.lines().take(MAX_HOLDS) {
            let f: Vec<&str> = line.split(' ').collect();
            let [hash, origin, size, expires, kept] = f.as_slice() else {
                continue;
            };
            let (Ok(hash), Ok(origin), Ok(size), Ok(expires_ms)) = (
                hash.parse::<Hash>(),
                origin.parse::<NodeId>(),
                size.parse::<u64>(),
                expires.parse::<u64>(),
            ) else {
                continue;
            };
            holds.0.insert(
                hash,
                Hold {
                    origin,
                    size,
                    expires_ms,
                    kept: *kept == "1",
                },
            );
        }
        holds
    }
}

/// Why a holder refused, as the asking node words it.
pub(super) fn refused(reason: &[u8]) -> String {
    let reason = &reason[..reason.len().min(MAX_REASON)];
    String::from_utf8_lossy(reason)
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

impl Files {
    /// Sets the holding's settings and loads the holds a previous run left; call once at
    /// start, before [`Files::run_holds`].
    pub fn configure_offline(&self, offline: Offline) {
        let _ = self.offline.set(offline);
        let text = std::fs::read_to_string(self.holds_path()).unwrap_or_default();
        *self.holds.lock().unwrap_or_else(|e| e.into_inner()) = Holds::decode(&text);
    }

    pub(super) fn offline(&self) -> Offline {
        self.offline.get().copied().unwrap_or_default()
    }

    pub(super) fn holds_path(&self) -> PathBuf {
        self.root.join("blobs").join("holds")
    }

    /// Writes the holds (through a temporary file and a rename).
    fn save_holds(&self) {
        let text = self
            .holds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .encode();
        let path = self.holds_path();
        let tmp = path.with_extension("tmp");
        let res = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = res {
            tracing::warn!(error = %e, "writing the file holds");
        }
    }

    /// Marks a held blob as kept for this node's own accounts too.
    pub(super) fn holds_keep(&self, hash: &Hash) {
        let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = holds.0.get_mut(hash) {
            h.kept = true;
        }
    }

    /// Takes the hold requests' bulk streams; call before [`Files::run_holds`].
    pub fn listen_holds(&self) -> mpsc::Receiver<BulkStream> {
        self.transport.bulk_listen(kind::FILE_HOLD, QUEUED)
    }

    /// Answers hold requests ([`AT_ONCE`] at a time) and removes expired holds, until the
    /// transport goes away.
    pub async fn run_holds(self: std::sync::Arc<Self>, mut streams: mpsc::Receiver<BulkStream>) {
        let turns = std::sync::Arc::new(Semaphore::new(AT_ONCE));
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(EXPIRE_EVERY).await;
                me.expire_holds(unix_ms()).await;
            }
        });
        while let Some(stream) = streams.recv().await {
            let Ok(turn) = turns.clone().acquire_owned().await else {
                return;
            };
            let me = self.clone();
            tokio::spawn(async move {
                me.answer_hold(stream).await;
                drop(turn);
            });
        }
    }

    async fn answer_hold(&self, mut stream: BulkStream) {
        if stream.header().version != HEADER.version {
            return stream.refuse(crate::transport::bulk::reset::VERSION);
        }
        let origin = stream.peer();
        let mut req = [0u8; REQUEST];
        let read =
            tokio::time::timeout(super::serve::REQUEST_DEADLINE, stream.read_exact(&mut req)).await;
        if !matches!(read, Ok(Ok(_))) || req[0] != 1 {
            return stream.refuse(super::serve::BAD_REQUEST);
        }
        let mut h = [0u8; 32];
        h.copy_from_slice(&req[1..33]);
        let hash = Hash(h);
        let size = u64::from_le_bytes(req[33..41].try_into().unwrap_or_default());
        let ttl_s = u64::from_le_bytes(req[41..49].try_into().unwrap_or_default());
        let answer = match self.hold(origin, hash, size, ttl_s).await {
            Ok(()) => vec![0],
            Err(reason) => {
                tracing::debug!(peer = %origin.id.short(), blob = %hash, %reason, "hold refused");
                let mut a = vec![1];
                a.extend_from_slice(&reason.as_bytes()[..reason.len().min(MAX_REASON)]);
                a
            }
        };
        if stream.write_all(&answer).await.is_ok() && stream.finish().is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(10), stream.stopped()).await;
        }
    }

    /// Holds `hash` for `origin`: the bounds, the fetch from `origin`, the pin.
    async fn hold(&self, origin: Peer, hash: Hash, size: u64, ttl_s: u64) -> Result<(), String> {
        let cfg = self.offline();
        let ttl_ms = Duration::from_secs(ttl_s).min(cfg.ttl).as_millis() as u64;
        let expires_ms = unix_ms().saturating_add(ttl_ms);
        if size == 0 || size > cfg.max_bytes {
            return Err(format!(
                "{size} bytes is over this node's limit of {} bytes (files.offline_max_mb)",
                cfg.max_bytes
            ));
        }
        let pinned_before = {
            let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(h) = holds.0.get_mut(&hash) {
                h.expires_ms = h.expires_ms.max(expires_ms);
                None
            } else {
                let per_origin = cfg.max_bytes.saturating_mul(PER_ORIGIN_FILES);
                if holds.origin_bytes(&origin.id) + size > per_origin {
                    return Err(format!(
                        "this node already keeps {per_origin} bytes for yours at most"
                    ));
                }
                if holds.total_bytes() + size > cfg.total_bytes || holds.0.len() >= MAX_HOLDS {
                    return Err("this node keeps as many files for others as it may".into());
                }
                // Reserved while it is fetched.
                holds.0.insert(
                    hash,
                    Hold {
                        origin: origin.id,
                        size,
                        expires_ms,
                        kept: true,
                    },
                );
                Some(())
            }
        };
        if pinned_before.is_none() {
            self.save_holds();
            return Ok(());
        }
        let was_pinned = self
            .blocking(move |s| Ok(s.is_pinned(&hash) || s.has(&hash)))
            .await
            .unwrap_or(true);
        let got = self.fetch(hash, size, vec![origin]).await;
        let pinned = match got {
            Ok(_) => self.blocking(move |s| Ok(s.pin(&hash)?)).await,
            Err(e) => Err(e),
        };
        let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
        match pinned {
            Ok(()) => {
                if let Some(h) = holds.0.get_mut(&hash) {
                    h.kept = was_pinned;
                }
                drop(holds);
                self.save_holds();
                tracing::debug!(peer = %origin.id.short(), blob = %hash, size, "holding a private file");
                Ok(())
            }
            Err(e) => {
                holds.0.remove(&hash);
                Err(format!("fetching it failed: {e}"))
            }
        }
    }

    /// Removes the holds expired at `now_ms`, and their blobs unless kept.
    pub async fn expire_holds(&self, now_ms: u64) {
        let gone: Vec<(Hash, Hold)> = {
            let mut holds = self.holds.lock().unwrap_or_else(|e| e.into_inner());
            let gone: Vec<(Hash, Hold)> = holds
                .0
                .iter()
                .filter(|(_, h)| h.expires_ms <= now_ms)
                .map(|(k, h)| (*k, *h))
                .collect();
            for (k, _) in &gone {
                holds.0.remove(k);
            }
            gone
        };
        if gone.is_empty() {
            return;
        }
        for (hash, h) in gone {
            if h.kept {
                continue;
            }
            let res = self
                .blocking(move |s| {
                    s.unpin(&hash)?;
                    Ok(s.remove(&hash)?)
                })
                .await;
            match res {
                Ok(()) => tracing::debug!(blob = %hash, "a held private file expired: removed"),
                Err(e) => tracing::debug!(blob = %hash, error = %e, "removing an expired hold"),
            }
        }
        self.save_holds();
    }

    /// Whether this node holds `hash` for another node (for tests and status).
    pub fn is_holding(&self, hash: &Hash) -> bool {
        self.holds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .contains_key(hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_survive_their_file() {
        let mut holds = Holds::default();
        holds.0.insert(
            Hash([3; 32]),
            Hold {
                origin: NodeId([4; 32]),
                size: 1234,
                expires_ms: 99,
                kept: false,
            },
        );
        let back = Holds::decode(&holds.encode());
        let h = back.0.get(&Hash([3; 32])).expect("read back");
        assert_eq!(
            (h.origin, h.size, h.expires_ms, h.kept),
            (NodeId([4; 32]), 1234, 99, false)
        );
        assert!(Holds::decode("junk\n1 2 3 4 5\n").0.is_empty());
        assert_eq!(back.origin_bytes(&NodeId([4; 32])), 1234);
        assert_eq!(back.origin_bytes(&NodeId([5; 32])), 0);
    }

    #[test]
    fn a_refusal_reason_is_bounded_and_printable() {
        let r = refused(&[b'a'; 500]);
        assert_eq!(r.len(), MAX_REASON);
        assert_eq!(refused(b"x\x1b[2Jy"), "x[2Jy");
    }
}
