//! Items waiting for their sender's key bundle, and the fetches of those bundles.
//!
//! A pre-key message from an account whose bundle is not known cannot be authenticated yet:
//! the sender it names is only *claimed*. So nothing is kept per claimed sender outside this
//! one queue, which is bounded in items, in bytes and per sender; when it is over a bound the
//! oldest item of the sender holding the most items goes first (then of the one whose fetches
//! failed most often, then of the one waiting longest; a sender over its own share loses its
//! own oldest item), so junk from one made-up sender cannot push out another sender's items
//! beyond its share. A sender's entry lives exactly as long as it has items.
//!
//! Bundle fetches for waiting senders are de-duplicated per sender, at most [`MAX_FETCHES`]
//! at once (a fetch without an answer is counted as failed after [`FETCH_TIMEOUT_MS`]), retried
//! with a doubling backoff from [`super::FETCH_RETRY_MS`] up to [`MAX_BACKOFF_MS`], and given
//! up with the sender's items after [`super::UNBUNDLED_WAIT_MS`]. Free slots go alternately to
//! the sender that became due most recently (a new correspondent arriving after a flood is
//! asked for at once) and to the one that has been due longest (a sender waiting through a
//! flood of new made-up senders is not starved).

use std::collections::{HashMap, VecDeque};

use super::{FETCH_RETRY_MS, Item, UNBUNDLED_WAIT_MS};
use chat_overlay::records::Hash;

/// Most items waiting, over all senders.
pub const MAX_WAITING_ITEMS: usize = 512;
/// Most bytes of items waiting, over all senders.
pub const MAX_WAITING_BYTES: usize = 1 << 20;
/// Most items waiting from one (claimed) sender.
pub const MAX_WAITING_PER_SENDER: usize = 64;
/// Most bundle fetches for waiting senders in flight at once.
pub const MAX_FETCHES: usize = 8;
/// A fetch not answered within this long counts as failed.
pub const FETCH_TIMEOUT_MS: u64 = 30_000;
/// Longest wait between two fetches of one sender's bundle.
pub const MAX_BACKOFF_MS: u64 = 120_000;

/// One waiting item.
struct Entry {
    sender: [u8; 32],
    hash: Option<Hash>,
    raw: Vec<u8>,
}

/// What is known of a claimed sender while it has waiting items.
#[derive(Clone, Copy, Debug)]
struct Sender {
    items: usize,
    bytes: usize,
    /// When its first (still waiting) item arrived.
    first_ms: u64,
    /// Its first item's place in the arrival order.
    first_seq: u64,
    /// Fetches that found nothing (or timed out).
    failures: u32,
    /// Not fetched again before this.
    next_fetch_ms: u64,
    /// When the fetch in flight started.
    in_flight: Option<u64>,
}

/// The numbers of the queue (status, tests).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WaitingStats {
    pub items: usize,
    pub bytes: usize,
    pub senders: usize,
    pub fetching: usize,
}

/// What became of an item offered to the queue.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// Items that left the queue to make room (this one included, if it did not stay).
    pub evicted: usize,
    /// The same item waits already (counted as a replay).
    pub duplicate: bool,
}

/// The queue.
#[derive(Default)]
pub(crate) struct Waiting {
    /// In arrival order.
    items: VecDeque<Entry>,
    bytes: usize,
    senders: HashMap<[u8; 32], Sender>,
    in_flight: usize,
    /// Items offered so far (the arrival order).
    seq: u64,
}

impl Waiting {
    pub fn stats(&self) -> WaitingStats {
        WaitingStats {
            items: self.items.len(),
            bytes: self.bytes,
            senders: self.senders.len(),
            fetching: self.in_flight,
        }
    }

    /// Whether `sender` has items waiting.
    #[cfg(test)]
    pub fn has(&self, sender: &[u8; 32]) -> bool {
        self.senders.contains_key(sender)
    }

    /// Queues `raw` (the mailbox item `hash`, if any) from claimed `sender`. The same bytes
    /// from the same sender (a mailbox read again) are not queued twice.
    pub fn push(
        &mut self,
        sender: [u8; 32],
        hash: Option<Hash>,
        raw: &[u8],
        now_ms: u64,
    ) -> Pushed {
        if self.senders.get(&sender).is_some_and(|_| {
            self.items
                .iter()
                .any(|e| e.sender == sender && e.raw == raw)
        }) {
            return Pushed {
                evicted: 0,
                duplicate: true,
            };
        }
        self.seq += 1;
        let s = self.senders.entry(sender).or_insert(Sender {
            items: 0,
            bytes: 0,
            first_ms: now_ms,
            first_seq: self.seq,
            failures: 0,
            next_fetch_ms: 0,
            in_flight: None,
        });
        s.items += 1;
        s.bytes += raw.len();
        let over_share = s.items > MAX_WAITING_PER_SENDER;
        self.bytes += raw.len();
        self.items.push_back(Entry {
            sender,
            hash,
            raw: raw.to_vec(),
        });
        let mut pushed = Pushed::default();
        if over_share {
            self.evict_oldest_of(&sender);
            pushed.evicted += 1;
        }
        while self.items.len() > MAX_WAITING_ITEMS || self.bytes > MAX_WAITING_BYTES {
            let Some(victim) = self.largest() else {
                break;
            };
            self.evict_oldest_of(&victim);
            pushed.evicted += 1;
        }
        pushed
    }

    /// The sender holding the most items (then the one with the most failed fetches, then the
    /// one whose items came first).
    fn largest(&self) -> Option<[u8; 32]> {
        self.senders
            .iter()
            .max_by_key(|(k, s)| (s.items, s.failures, std::cmp::Reverse(s.first_seq), **k))
            .map(|(k, _)| *k)
    }

    fn evict_oldest_of(&mut self, sender: &[u8; 32]) {
        if let Some(i) = self.items.iter().position(|e| &e.sender == sender)
            && let Some(e) = self.items.remove(i)
        {
            self.forget_item(&e);
        }
    }

    /// Accounts for an item that left the queue.
    fn forget_item(&mut self, e: &Entry) {
        self.bytes -= e.raw.len();
        let gone = match self.senders.get_mut(&e.sender) {
            Some(s) => {
                s.items -= 1;
                s.bytes -= e.raw.len();
                s.items == 0
            }
            None => false,
        };
        if gone {
            self.drop_sender(&e.sender);
        }
    }

    fn drop_sender(&mut self, sender: &[u8; 32]) {
        if let Some(s) = self.senders.remove(sender)
            && s.in_flight.is_some()
        {
            self.in_flight -= 1;
        }
    }

    /// Takes every item of `sender` (its bundle arrived), oldest first.
    pub fn take(&mut self, sender: &[u8; 32]) -> Vec<Item> {
        if !self.senders.contains_key(sender) {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut rest = VecDeque::with_capacity(self.items.len());
        for e in std::mem::take(&mut self.items) {
            if &e.sender == sender {
                self.bytes -= e.raw.len();
                out.push((e.hash, e.raw));
            } else {
                rest.push_back(e);
            }
        }
        self.items = rest;
        self.drop_sender(sender);
        out
    }

    /// A fetch of `sender`'s bundle ended (`found`: a valid bundle came). Without one, the
    /// next fetch waits for the backoff.
    pub fn fetched(&mut self, sender: &[u8; 32], found: bool, now_ms: u64) {
        let Some(s) = self.senders.get_mut(sender) else {
            return;
        };
        if s.in_flight.take().is_some() {
            self.in_flight -= 1;
        }
        if !found {
            s.failures = s.failures.saturating_add(1);
            s.next_fetch_ms = now_ms.saturating_add(backoff(s.failures));
        }
    }

    /// Lets go of senders that waited too long (returns how many items went) and counts
    /// fetches without an answer as failed.
    pub fn expire(&mut self, now_ms: u64) -> usize {
        let old: Vec<[u8; 32]> = self
            .senders
            .iter()
            .filter(|(_, s)| now_ms.saturating_sub(s.first_ms) >= UNBUNDLED_WAIT_MS)
            .map(|(k, _)| *k)
            .collect();
        let mut gone = 0;
        for k in old {
            gone += self.take(&k).len();
        }
        for s in self.senders.values_mut() {
            if let Some(since) = s.in_flight
                && now_ms.saturating_sub(since) >= FETCH_TIMEOUT_MS
            {
                s.in_flight = None;
                self.in_flight -= 1;
                s.failures = s.failures.saturating_add(1);
                s.next_fetch_ms = (since + FETCH_TIMEOUT_MS).saturating_add(backoff(s.failures));
            }
        }
        gone
    }

    /// The senders whose bundle to fetch now (marked as in flight), within the free slots.
    pub fn due_fetches(&mut self, now_ms: u64) -> Vec<[u8; 32]> {
        let free = MAX_FETCHES.saturating_sub(self.in_flight);
        if free == 0 {
            return Vec::new();
        }
        let mut due: Vec<(u64, [u8; 32])> = self
            .senders
            .iter()
            .filter(|(_, s)| s.in_flight.is_none() && s.next_fetch_ms <= now_ms)
            .map(|(k, s)| (s.next_fetch_ms.max(s.first_ms), *k))
            .collect();
        due.sort_unstable();
        let mut due = VecDeque::from(due);
        let mut picked = Vec::with_capacity(free.min(due.len()));
        while picked.len() < free {
            let next = if picked.len() % 2 == 0 {
                due.pop_back()
            } else {
                due.pop_front()
            };
            match next {
                Some((_, k)) => picked.push(k),
                None => break,
            }
        }
        for k in &picked {
            if let Some(s) = self.senders.get_mut(k) {
                s.in_flight = Some(now_ms);
                self.in_flight += 1;
            }
        }
        picked
    }
}

/// The wait before the next fetch after `failures` failed ones.
fn backoff(failures: u32) -> u64 {
    let shift = failures.saturating_sub(1).min(16);
    FETCH_RETRY_MS
        .saturating_mul(1 << shift)
        .min(MAX_BACKOFF_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u16) -> [u8; 32] {
        let mut k = [0u8; 32];
        k[..2].copy_from_slice(&n.to_be_bytes());
        k
    }

    #[test]
    fn the_queue_stays_within_its_bounds_and_shares() {
        let mut w = Waiting::default();
        // One sender floods: it keeps only its share.
        for i in 0..1000u32 {
            let mut item = vec![0u8; 300];
            item[..4].copy_from_slice(&i.to_be_bytes());
            w.push(key(1), None, &item, 0);
        }
        assert_eq!(w.stats().items, MAX_WAITING_PER_SENDER);
        // Many senders with one item each: the queue's bound holds.
        for n in 2..3000u16 {
            w.push(key(n), None, &[n as u8; 300], 1);
        }
        let s = w.stats();
        assert_eq!(s.items, MAX_WAITING_ITEMS);
        assert!(s.bytes <= MAX_WAITING_BYTES);
        assert!(s.senders <= MAX_WAITING_ITEMS);
        // The largest holder went first, then the oldest; the newest stay.
        assert!(!w.has(&key(1)));
        assert!(w.has(&key(2999)));
        // Big items: the byte bound holds too.
        for n in 3000..3600u16 {
            w.push(key(n), None, &[1u8; 4096], 2);
        }
        assert!(w.stats().bytes <= MAX_WAITING_BYTES);
    }

    #[test]
    fn the_same_item_twice_is_queued_once() {
        let mut w = Waiting::default();
        assert!(!w.push(key(1), None, b"abc", 0).duplicate);
        assert!(w.push(key(1), None, b"abc", 1).duplicate);
        assert_eq!(w.stats().items, 1);
    }

    #[test]
    fn fetches_are_bounded_deduplicated_and_backed_off() {
        let mut w = Waiting::default();
        for n in 0..20u16 {
            w.push(key(n), None, b"x", u64::from(n));
            w.push(key(n), None, b"y", u64::from(n));
        }
        let first = w.due_fetches(100);
        assert_eq!(first.len(), MAX_FETCHES);
        // The most recent and the longest due, alternately; none twice.
        assert_eq!(&first[..4], &[key(19), key(0), key(18), key(1)]);
        assert!(w.due_fetches(100).is_empty(), "all slots taken");
        for k in &first {
            w.fetched(k, false, 100);
        }
        let second = w.due_fetches(100);
        assert_eq!(second.len(), MAX_FETCHES);
        assert!(
            second.iter().all(|k| !first.contains(k)),
            "failed ones wait for their backoff"
        );
        // Unanswered fetches time out; failed ones come back after their backoff only.
        for k in &second {
            w.fetched(k, false, 100);
        }
        assert_eq!(w.due_fetches(100).len(), 4);
        assert!(
            w.due_fetches(100 + FETCH_RETRY_MS - 1).is_empty(),
            "failed ones wait for their backoff"
        );
        assert_eq!(w.due_fetches(100 + FETCH_RETRY_MS).len(), 4);
        assert_eq!(w.stats().fetching, MAX_FETCHES);
        // Unanswered fetches count as failed after the timeout (those started at 100 only).
        w.expire(100 + FETCH_TIMEOUT_MS);
        assert_eq!(w.stats().fetching, 4);
        assert_eq!(backoff(1), FETCH_RETRY_MS);
        assert_eq!(backoff(2), 2 * FETCH_RETRY_MS);
        assert_eq!(backoff(30), MAX_BACKOFF_MS);
        // Given up after the wait, with their fetches.
        assert_eq!(w.expire(UNBUNDLED_WAIT_MS + 19), 40);
        assert_eq!(w.stats(), WaitingStats::default());
    }
}
