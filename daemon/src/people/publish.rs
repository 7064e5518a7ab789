//! How a people event leaves this node: into its presence epoch (`chat_overlay::presence`) as a mailbox
//! item under the epoch's key (its value the event behind `sigctx::PRESENCE_EPOCH_ITEM`), confirmed when it comes back in the epoch's batch, put again
//! when it does not, broadcast on its own as the last resort; and, on the node that holds an
//! epoch, the batch broadcast when the epoch is over.

use std::time::{Duration, Instant};

use chat_overlay::NodeId;
use chat_overlay::records::{Hash, Kind as RecordKind};
use tracing::{debug, warn};

use super::event::Event;
use super::{People, PeopleError};
use crate::records::unix_ms;
use crate::ring::RingHandle;
use chat_overlay::presence::{self as batch, EPOCH, GRACE, ITEM_TTL};

/// Events waiting for their batch, at most (past it the oldest is broadcast on its own).
pub const MAX_PENDING: usize = 1024;
/// How long putting an item into its epoch may take before the event is broadcast on its own.
const PUT_WAIT: Duration = Duration::from_millis(800);
/// Puts of one event before it is broadcast on its own.
const TRIES: u32 = 3;

/// An event this node published and has not yet seen in a batch.
#[derive(Debug)]
pub(super) struct Pending {
    hash: Hash,
    bytes: Vec<u8>,
    line: String,
    at: Instant,
    tries: u32,
}

impl People {
    /// Publishes a people event (`line`: how it reads here) through its epoch.
    pub(super) async fn publish_event(
        &self,
        ring: &RingHandle,
        bytes: Vec<u8>,
        line: String,
    ) -> Result<(), PeopleError> {
        self.put_item(ring, bytes, line, 1).await
    }

    async fn put_item(
        &self,
        ring: &RingHandle,
        bytes: Vec<u8>,
        line: String,
        tries: u32,
    ) -> Result<(), PeopleError> {
        let key = batch::epoch_key(batch::epoch_of(unix_ms())).to_vec();
        // The value names its purpose: a record the node signed for anything else is never
        // taken for one of its people events (`crate::sigctx`).
        let value = crate::sigctx::with(crate::sigctx::PRESENCE_EPOCH_ITEM, &bytes);
        let put = self
            .records
            .put(RecordKind::Mailbox, key, Some(value), ITEM_TTL);
        match tokio::time::timeout(PUT_WAIT, put).await {
            Ok(Ok((record, _))) => {
                let overflow = {
                    let mut pending = self.pending();
                    pending.push(Pending {
                        hash: record.hash(),
                        bytes,
                        line,
                        at: Instant::now(),
                        tries,
                    });
                    (pending.len() > MAX_PENDING).then(|| pending.remove(0))
                };
                if let Some(p) = overflow {
                    self.broadcast_direct(ring, p.bytes, p.line).await?;
                }
                Ok(())
            }
            Ok(Err(e)) => {
                debug!(error = %e, "could not put a people event into its epoch; broadcasting it alone");
                self.broadcast_direct(ring, bytes, line).await
            }
            Err(_) => {
                debug!(
                    "putting a people event into its epoch took too long; broadcasting it alone"
                );
                self.broadcast_direct(ring, bytes, line).await
            }
        }
    }

    /// Broadcasts one event on its own.
    pub(super) async fn broadcast_direct(
        &self,
        ring: &RingHandle,
        bytes: Vec<u8>,
        line: String,
    ) -> Result<(), PeopleError> {
        let chat = self.chat.clone();
        ring.originate(move || chat.send_event(&bytes, &line).map(|l| (l.seq, l.wire, ())))
            .await
            .map_err(|e| PeopleError::Ring(e.to_string()))
    }

    /// An item of ours came back in a batch: it is published; the line kept for it.
    pub(super) fn confirm(&self, hash: &Hash) -> Option<String> {
        let mut pending = self.pending();
        let i = pending.iter().position(|p| &p.hash == hash)?;
        Some(pending.swap_remove(i).line)
    }

    /// Puts again the events whose batch did not come (the epoch's holder failed), and
    /// broadcasts on their own those that failed [`TRIES`] times.
    pub(super) async fn resubmit(&self, ring: &RingHandle) {
        let late = 3 * EPOCH + GRACE;
        let stale: Vec<Pending> = {
            let mut pending = self.pending();
            let (stale, keep): (Vec<Pending>, Vec<Pending>) =
                pending.drain(..).partition(|p| p.at.elapsed() > late);
            *pending = keep;
            stale
        };
        for p in stale {
            let result = if p.tries < TRIES {
                debug!(
                    tries = p.tries,
                    "a people event did not come back in its batch; putting it again"
                );
                self.put_item(ring, p.bytes, p.line, p.tries + 1).await
            } else {
                warn!("a people event never came back in a batch; broadcasting it alone");
                self.broadcast_direct(ring, p.bytes, p.line).await
            };
            if let Err(e) = result {
                warn!(error = %e, "a people event could not be published");
            }
        }
    }

    /// On the node holding an ended epoch: broadcasts its items (in as few events as fit).
    pub(super) async fn flush_epochs(&self, ring: &RingHandle) {
        let me = NodeId(self.node);
        let pred = *ring.predecessor().borrow();
        let due = self.held_items().due(unix_ms(), |loc| match pred {
            None => true,
            Some(p) => *loc == me || loc.in_open(&p.id, &me),
        });
        for (epoch, items) in due {
            for part in batch::chunks(items) {
                let n = part.len();
                let line = self.apply_batch(&part, true);
                let bytes = Event::Batch(part).encode();
                if let Err(e) = self.broadcast_direct(ring, bytes, line).await {
                    warn!(epoch, items = n, error = %e, "could not broadcast a presence batch");
                }
            }
        }
    }
}
