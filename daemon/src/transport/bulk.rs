//! Bulk streams: bidirectional QUIC streams on the pooled, identity-bound connections, for
//! byte streams that must not travel as overlay frames (file transfers).
//!
//! The opener writes a 4-byte header first — a `u16` kind and a `u16` version, big-endian —
//! then the stream is the kind's owner's to use both ways. On the accepting side a stream is
//! admitted only within the bounds ([`BulkConfig`]: at most `per_peer` open streams per peer
//! NodeId and `total` in all, counted from the moment the stream is accepted, before its header);
//! its header must arrive within `header_deadline`; its kind must have an owner
//! ([`super::Transport::bulk_listen`]) whose bounded queue has room. Anything else is reset and
//! stopped with one of the [`reset`] codes and counted in [`super::Drops`]; nothing waits in an
//! unbounded queue. The owner receives a [`BulkStream`] carrying the peer taken from the
//! connection's verified certificate.
//!
//! Bulk streams send at [`BULK_PRIORITY`], below the overlay's frames, and the QUIC windows
//! (`tls.rs`) are sized so that the bulk streams of one connection can never use up the
//! connection's send buffer: a saturating transfer delays frames by queueing at most.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat_overlay::{NodeId, Peer};
use quinn::VarInt;
use tokio::sync::mpsc;
use tracing::Instrument;

pub use super::bulk_stream::BulkStream;
use super::{Inner, Reason, TransportError, Wire, lock};

/// Bytes of the header.
pub const HEADER_LEN: usize = 4;
/// Send priority of bulk streams (the frames' streams have quinn's default, 0: they go first).
pub const BULK_PRIORITY: i32 = -1;
/// Longest wait to open a bulk stream and write its header once connected.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);

/// The registry of bulk kinds: one `u16` per protocol carried on bulk streams.
pub mod kind {
    /// Content-addressed blob transfer (`chat-blobs`, issue 35): verified ranges.
    pub const BLOBS: u16 = 1;
    /// Holding a private file's ciphertext for an offline recipient (`files::hold`).
    pub const FILE_HOLD: u16 = 0x20;
    /// Reserved for tests and benchmarks; no daemon service owns it.
    pub const TEST: u16 = 0xfff0;
}

/// Stream error codes (RESET_STREAM / STOP_SENDING) of bulk streams. Codes below `0x100` are
/// the transport's; a kind's owner uses its own from `0x100` up.
pub mod reset {
    /// No owner for the header's kind on this node.
    pub const UNKNOWN_KIND: u32 = 0x10;
    /// Over the bound of open bulk streams (from this peer, or in all).
    pub const REFUSED: u32 = 0x11;
    /// The header did not arrive within the deadline.
    pub const HEADER_TIMEOUT: u32 = 0x12;
    /// Neither direction moved for the idle timeout.
    pub const IDLE: u32 = 0x13;
    /// The kind's owner has too many streams waiting to be taken.
    pub const BUSY: u32 = 0x14;
    /// The owner does not speak the header's version.
    pub const VERSION: u32 = 0x15;
    /// The transport is shutting down.
    pub const CLOSING: u32 = 0x16;
    /// The stream was dropped without being finished: what was sent is not the whole.
    pub const CANCELLED: u32 = 0x17;
}

/// A bulk stream's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkHeader {
    /// The protocol ([`kind`]).
    pub kind: u16,
    /// The protocol's version, for its owner to judge.
    pub version: u16,
}

impl BulkHeader {
    /// The header's bytes.
    pub fn encode(self) -> [u8; HEADER_LEN] {
        let k = self.kind.to_be_bytes();
        let v = self.version.to_be_bytes();
        [k[0], k[1], v[0], v[1]]
    }

    /// The header from its bytes.
    pub fn decode(b: [u8; HEADER_LEN]) -> BulkHeader {
        BulkHeader {
            kind: u16::from_be_bytes([b[0], b[1]]),
            version: u16::from_be_bytes([b[2], b[3]]),
        }
    }
}

/// Bounds of incoming bulk streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkConfig {
    /// Open incoming bulk streams from one peer at most.
    pub per_peer: usize,
    /// Open incoming bulk streams in all at most.
    pub total: usize,
    /// The header must arrive within this once the stream is accepted.
    pub header_deadline: Duration,
    /// A stream on which neither direction moves for this long is reset.
    pub idle: Duration,
}

impl Default for BulkConfig {
    fn default() -> Self {
        BulkConfig {
            per_peer: 4,
            total: 64,
            header_deadline: Duration::from_secs(5),
            idle: Duration::from_secs(30),
        }
    }
}

/// Open incoming streams, per peer and in all.
#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_peer: HashMap<NodeId, usize>,
}

/// The accepting side's state: the bounds' counts and the owners by kind.
#[derive(Debug)]
pub(super) struct Bulk {
    cfg: BulkConfig,
    counts: Arc<Mutex<Counts>>,
    owners: Mutex<HashMap<u16, mpsc::Sender<BulkStream>>>,
}

/// One admitted incoming stream's place in the counts; given back when dropped.
#[derive(Debug)]
pub(super) struct Slot {
    counts: Arc<Mutex<Counts>>,
    peer: NodeId,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut c = lock(&self.counts);
        c.total = c.total.saturating_sub(1);
        if let Some(n) = c.per_peer.get_mut(&self.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.per_peer.remove(&self.peer);
            }
        }
    }
}

impl Bulk {
    pub(super) fn new(cfg: BulkConfig) -> Bulk {
        Bulk {
            cfg,
            counts: Arc::default(),
            owners: Mutex::new(HashMap::new()),
        }
    }

    pub(super) fn config(&self) -> BulkConfig {
        self.cfg
    }

    /// A place for one more stream from `peer`, if within both bounds.
    fn admit(&self, peer: NodeId) -> Option<Slot> {
        let mut c = lock(&self.counts);
        let mine = c.per_peer.get(&peer).copied().unwrap_or(0);
        if c.total >= self.cfg.total || mine >= self.cfg.per_peer {
            return None;
        }
        c.total += 1;
        *c.per_peer.entry(peer).or_insert(0) += 1;
        Some(Slot {
            counts: self.counts.clone(),
            peer,
        })
    }

    /// Open incoming bulk streams now (in all).
    pub(super) fn open(&self) -> usize {
        lock(&self.counts).total
    }

    pub(super) fn listen(&self, kind: u16, capacity: usize) -> mpsc::Receiver<BulkStream> {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        lock(&self.owners).insert(kind, tx);
        rx
    }

    fn owner(&self, kind: u16) -> Option<mpsc::Sender<BulkStream>> {
        let mut owners = lock(&self.owners);
        match owners.get(&kind) {
            Some(tx) if tx.is_closed() => {
                owners.remove(&kind);
                None
            }
            other => other.cloned(),
        }
    }
}

/// Refuses a stream: resets our side and asks the peer to stop sending, with `code`.
fn refuse(send: &mut quinn::SendStream, recv: &mut quinn::RecvStream, code: u32) {
    let _ = send.reset(VarInt::from_u32(code));
    let _ = recv.stop(VarInt::from_u32(code));
}

impl<M: Wire> Inner<M> {
    /// Opens a bulk stream to `to` (the pooled connection, or a dial that must prove `to.id`)
    /// and writes its header.
    pub(super) async fn open_bulk(
        self: &Arc<Self>,
        to: Peer,
        header: BulkHeader,
    ) -> Result<BulkStream, TransportError> {
        if to.id == self.me {
            return Err(TransportError::SelfDial { addr: to.addr });
        }
        let conn = self.connection(to).await?;
        let fail = |reason: String| TransportError::Bulk {
            peer: to.id,
            reason,
        };
        let open = async {
            let (mut send, recv) = conn.open_bi().await.map_err(|e| e.to_string())?;
            let _ = send.set_priority(BULK_PRIORITY);
            send.write_all(&header.encode())
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>((send, recv))
        };
        let (send, recv) = tokio::time::timeout(OPEN_TIMEOUT, open)
            .await
            .map_err(|_| fail("opening the stream timed out".into()))?
            .map_err(fail)?;
        Ok(BulkStream::new(
            to,
            header,
            send,
            recv,
            self.bulk.config().idle,
            self.drops.clone(),
            None,
        ))
    }

    /// Accepts the bulk streams `peer` opens on `conn` until the connection ends.
    pub(super) async fn accept_bulk(self: Arc<Self>, peer: Peer, conn: quinn::Connection) {
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            if self.closing.load(std::sync::atomic::Ordering::Relaxed) {
                refuse(&mut send, &mut recv, reset::CLOSING);
                continue;
            }
            let Some(slot) = self.bulk.admit(peer.id) else {
                self.drops.count(Reason::BulkRefused);
                tracing::debug!(peer = %peer.id.short(), "bulk stream refused: over the bound");
                refuse(&mut send, &mut recv, reset::REFUSED);
                continue;
            };
            tokio::spawn(
                self.clone()
                    .bulk_header(peer, send, recv, slot)
                    .in_current_span(),
            );
        }
    }

    /// Reads an admitted stream's header and hands the stream to its kind's owner.
    async fn bulk_header(
        self: Arc<Self>,
        peer: Peer,
        mut send: quinn::SendStream,
        mut recv: quinn::RecvStream,
        slot: Slot,
    ) {
        let mut buf = [0u8; HEADER_LEN];
        let deadline = self.bulk.config().header_deadline;
        match tokio::time::timeout(deadline, recv.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return, // the peer gave up, or the connection went away
            Err(_) => {
                self.drops.count(Reason::BulkSlowHeader);
                tracing::debug!(peer = %peer.id.short(), "bulk stream cut: no header in time");
                return refuse(&mut send, &mut recv, reset::HEADER_TIMEOUT);
            }
        }
        let header = BulkHeader::decode(buf);
        let Some(owner) = self.bulk.owner(header.kind) else {
            self.drops.count(Reason::BulkUnknownKind);
            tracing::debug!(peer = %peer.id.short(), kind = header.kind, "bulk stream refused: unknown kind");
            return refuse(&mut send, &mut recv, reset::UNKNOWN_KIND);
        };
        let _ = send.set_priority(BULK_PRIORITY);
        let stream = BulkStream::new(
            peer,
            header,
            send,
            recv,
            self.bulk.config().idle,
            self.drops.clone(),
            Some(slot),
        );
        if let Err(e) = owner.try_send(stream) {
            let (reason, code) = match e {
                mpsc::error::TrySendError::Full(_) => (Reason::BulkRefused, reset::BUSY),
                mpsc::error::TrySendError::Closed(_) => {
                    (Reason::BulkUnknownKind, reset::UNKNOWN_KIND)
                }
            };
            self.drops.count(reason);
            tracing::debug!(peer = %peer.id.short(), kind = header.kind, "bulk stream refused: {}", reason.as_str());
            e.into_inner().refuse(code);
        }
    }
}
