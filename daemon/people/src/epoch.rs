//! Presence in epochs: people events are not broadcast one by one but gathered for a few
//! seconds at one node and broadcast together, so that what presence costs each node per
//! second is bounded by the epoch length, not by the network's size times its churn.
//!
//! Pure rules over records: the publishing side of them is [`crate::Engine`], which the
//! daemon's people service (`daemon/src/people/`) and the simulator's presence scenario both
//! drive.
//!
//! Time is cut into epochs of [`EPOCH`]. A node publishing an event puts it as a mailbox item
//! (a *set* record, signed by the node's key) under the epoch's key, `blake3("chatd presence
//! epoch" ‖ epoch)`; the records layer takes it to the key's holders. When the epoch has ended
//! ([`GRACE`] later), the primary holder — the node whose arc holds the key's location —
//! broadcasts every item it holds for the epoch in one people event (split when large).
//! A publisher that does not see its item come back in a batch within three epochs puts it
//! again under the epoch of the moment, twice; then it broadcasts it on its own.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chat_overlay::NodeId;
use chat_overlay::records::{Kind as RecordKind, Record, location};

/// Length of an epoch.
pub const EPOCH: Duration = Duration::from_millis(2500);
/// How long after an epoch ends its holder waits for late items before broadcasting.
pub const GRACE: Duration = Duration::from_millis(300);
/// Lifetime of an epoch's items at their holders.
pub const ITEM_TTL: Duration = Duration::from_secs(120);
/// Items held for broadcasting, at most (the oldest epochs go first).
pub const MAX_HELD: usize = 4096;
/// How many epochs back items are still collected and broadcast.
const KEEP_EPOCHS: u64 = 30;
/// Most bytes of items in one batch event (the envelope's limit leaves room for the rest).
pub const BATCH_BYTES: usize = 12 * 1024;

/// The epoch at Unix time `ms`.
pub fn epoch_of(ms: u64) -> u64 {
    ms / EPOCH.as_millis() as u64
}

/// The key of epoch `e`'s items.
pub fn epoch_key(e: u64) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("chatd presence epoch");
    h.update(&e.to_be_bytes());
    *h.finalize().as_bytes()
}

/// Where epoch `e`'s items live on the ring.
pub fn epoch_location(e: u64) -> NodeId {
    location(RecordKind::Mailbox as u8, &epoch_key(e))
}

/// The items this node holds for recent epochs, and which it has broadcast.
#[derive(Debug, Default)]
pub struct Held {
    epochs: BTreeMap<u64, Vec<Record>>,
    flushed: HashSet<u64>,
    count: usize,
}

impl Held {
    /// Takes a mailbox item this node now holds, if it is an item of a recent epoch.
    pub fn offer(&mut self, r: Record, now_ms: u64) {
        if r.kind != RecordKind::Mailbox as u8 {
            return;
        }
        let now = epoch_of(now_ms);
        let Some(e) =
            (now.saturating_sub(KEEP_EPOCHS)..=now + 1).find(|e| epoch_key(*e) == r.key[..])
        else {
            return;
        };
        let items = self.epochs.entry(e).or_default();
        let h = r.hash();
        if items.iter().any(|x| x.hash() == h) {
            return;
        }
        items.push(r);
        self.count += 1;
        while self.count > MAX_HELD {
            let Some((_, old)) = self.epochs.pop_first() else {
                break;
            };
            self.count -= old.len();
        }
    }

    /// The items of every epoch that ended [`GRACE`] ago — but less than an epoch before
    /// that — and that this node has not broadcast yet, for the epochs `primary` says this
    /// node holds first; marks them broadcast. An epoch goes out once: items that reach a
    /// holder later (a put that took too long, records handed to a new holder after the old
    /// one broadcast) stay unsent, and their publishers put them again under a new epoch
    /// when they do not see them come back. Old epochs are forgotten.
    pub fn due(
        &mut self,
        now_ms: u64,
        primary: impl Fn(&NodeId) -> bool,
    ) -> Vec<(u64, Vec<Record>)> {
        let epoch_ms = EPOCH.as_millis() as u64;
        let grace = GRACE.as_millis() as u64;
        let now = epoch_of(now_ms);
        let mut out = Vec::new();
        for (e, items) in &self.epochs {
            let due_at = (e + 1) * epoch_ms + grace;
            if now_ms < due_at
                || now_ms >= due_at + epoch_ms
                || self.flushed.contains(e)
                || !primary(&epoch_location(*e))
            {
                continue;
            }
            self.flushed.insert(*e);
            out.push((*e, items.clone()));
        }
        let old = now.saturating_sub(KEEP_EPOCHS);
        while let Some((e, items)) = self.epochs.first_key_value() {
            if *e >= old {
                break;
            }
            self.count -= items.len();
            self.epochs.pop_first();
        }
        self.flushed.retain(|e| *e >= old);
        out
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether none are held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Splits `items` into groups of at most [`BATCH_BYTES`] (one item alone may exceed it).
pub fn chunks(items: Vec<Record>) -> Vec<Vec<Record>> {
    let mut out: Vec<Vec<Record>> = Vec::new();
    let mut size = 0;
    for r in items {
        let n = r.key.len() + r.value_len() + 160;
        if out.is_empty() || size + n > BATCH_BYTES {
            out.push(Vec::new());
            size = 0;
        }
        size += n;
        if let Some(last) = out.last_mut() {
            last.push(r);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_overlay::records::Value;
    use ed25519_dalek::SigningKey;

    fn item(e: u64, n: u8) -> Record {
        Record::sign(
            RecordKind::Mailbox,
            epoch_key(e).to_vec(),
            Value::Data(vec![n; 500]),
            &SigningKey::from_bytes(&[n; 32]),
            u64::from(n),
            1,
            u64::MAX / 2,
        )
    }

    #[test]
    fn an_epoch_is_broadcast_once_by_its_holder_after_it_ended() {
        let mut h = Held::default();
        let (len, grace) = (EPOCH.as_millis() as u64, GRACE.as_millis() as u64);
        let e = 1000;
        let start = e * len;
        let end = start + len;
        h.offer(item(e, 1), start + 10);
        h.offer(item(e, 1), start + 20);
        h.offer(item(e, 2), start + 30);
        // Not another kind's or a far epoch's.
        h.offer(item(e + 50, 3), start);
        assert_eq!(h.len(), 2);
        assert!(h.due(end - 1, |_| true).is_empty(), "not ended");
        assert!(h.due(end + grace - 1, |_| true).is_empty(), "grace");
        assert!(h.due(end + grace, |_| false).is_empty(), "not the holder");
        let due = h.due(end + grace, |_| true);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].1.len(), 2);
        assert!(h.due(end + grace + 200, |_| true).is_empty(), "once");
        // A late item is not broadcast again (its publisher puts it anew).
        h.offer(item(e, 4), end + grace + 300);
        assert!(
            h.due(end + grace + 400, |_| true).is_empty(),
            "no follow-up"
        );
        // A holder that gets an epoch's items only long after it ended (a handover) does
        // not broadcast them again.
        let mut late = Held::default();
        late.offer(item(e, 1), end + grace + len);
        assert!(late.due(end + grace + len, |_| true).is_empty(), "too old");
        // Old epochs are forgotten.
        h.due(start + len * (KEEP_EPOCHS + 3), |_| true);
        assert!(h.is_empty());
    }

    #[test]
    fn large_batches_are_split() {
        let items: Vec<Record> = (0..30).map(|n| item(5, n)).collect();
        let parts = chunks(items);
        assert!(parts.len() > 1);
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 30);
        assert!(
            parts
                .iter()
                .all(|p| p.iter().map(|r| r.value_len() + 200).sum::<usize>() <= BATCH_BYTES + 700)
        );
    }
}
