//! The numbered stream from one account to another: what the sender keeps until the
//! recipient acknowledges it ([`OutStream`]), and how the recipient turns items that arrive
//! late, twice or out of order into each message shown once, in order ([`InStream`]).
//!
//! Acknowledgements are cumulative (`upto`): a lost one is repaired by the next, and a replayed
//! one changes nothing. The sender's `floor` (its lowest unacknowledged number) lets the
//! recipient skip numbers that expired at the sender without ever arriving.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::payload::{Body, Payload};

/// Where a sent message stands, as its sender sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Waiting to go out (the recipient's keys are being fetched, or a retry is due).
    Queued,
    /// Handed to the recipient's node directly; no acknowledgement yet.
    Sent,
    /// In the recipient's mailbox; it reads it when it comes back.
    Stored,
    /// The recipient acknowledged it.
    Delivered,
    /// Not acknowledged within the mailbox lifetime: given up.
    Expired,
}

impl Status {
    /// Its name (CLI, API).
    pub fn name(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Sent => "sent",
            Status::Stored => "stored",
            Status::Delivered => "delivered",
            Status::Expired => "expired",
        }
    }
}

/// A message waiting for its acknowledgement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub body: Body,
    pub sent_ms: u64,
    /// Given up at this time.
    pub deadline_ms: u64,
    pub status: Status,
    /// When to act on it next (send, or fall back to the mailbox, or retry).
    pub next_ms: u64,
    /// Attempts made.
    pub attempts: u32,
    /// The mailbox item holding it, if any: re-put (same bytes) while it is pending.
    pub item: Option<chat_overlay::records::Record>,
    /// When to re-put the item next.
    pub reput_ms: u64,
}

/// The sender's side.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OutStream {
    /// The next number to use (from 1).
    pub next: u64,
    pub pending: BTreeMap<u64, Pending>,
}

impl OutStream {
    /// Numbers the next message.
    pub fn push(&mut self, p: Pending) -> u64 {
        if self.next == 0 {
            self.next = 1;
        }
        let seq = self.next;
        self.next += 1;
        self.pending.insert(seq, p);
        seq
    }

    /// The lowest number not yet acknowledged nor expired.
    pub fn floor(&self) -> u64 {
        self.pending
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next.max(1))
    }

    /// The recipient has everything up to `upto`: returns what that delivers, or `None` for
    /// an acknowledgement of numbers never sent.
    pub fn ack(&mut self, upto: u64) -> Option<Vec<(u64, Pending)>> {
        if upto >= self.next.max(1) {
            return None;
        }
        let rest = self.pending.split_off(&(upto + 1));
        let done = std::mem::replace(&mut self.pending, rest);
        Some(done.into_iter().collect())
    }
}

/// What the recipient makes of an arriving item.
#[derive(Debug, PartialEq)]
pub enum Accepted {
    /// Already shown or already held: acknowledge again, show nothing.
    Duplicate,
    /// Held until the numbers before it arrive.
    Held,
    /// Over the held bound: dropped (the sender sends it again).
    Full,
    /// These can be shown now, in order.
    Ready(Vec<Payload>),
}

/// The recipient's side.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InStream {
    /// The next number to show (from 1).
    pub next: u64,
    pub held: BTreeMap<u64, Payload>,
}

impl InStream {
    /// Takes item `p` (numbered, `p.seq ≥ 1`), holding at most `max_held`.
    pub fn accept(&mut self, p: Payload, max_held: usize) -> Accepted {
        if self.next == 0 {
            self.next = 1;
        }
        if p.seq < self.next || self.held.contains_key(&p.seq) {
            // Its floor may still move us on (the sender gave up on what is missing).
            return match self.advance(p.floor) {
                r if r.is_empty() => Accepted::Duplicate,
                r => Accepted::Ready(r),
            };
        }
        let floor = p.floor;
        if p.seq > self.next && p.seq >= floor && self.held.len() >= max_held {
            return Accepted::Full;
        }
        self.held.insert(p.seq, p);
        match self.advance(floor) {
            r if r.is_empty() => Accepted::Held,
            r => Accepted::Ready(r),
        }
    }

    /// Everything up to which the stream is complete (for acknowledgements).
    pub fn upto(&self) -> u64 {
        self.next.max(1) - 1
    }

    fn advance(&mut self, floor: u64) -> Vec<Payload> {
        let mut out = Vec::new();
        if floor > self.next {
            // The sender no longer has what is missing below `floor`: show what is held there
            // and move on.
            let rest = self.held.split_off(&floor);
            out.extend(std::mem::replace(&mut self.held, rest).into_values());
            self.next = floor;
        }
        while let Some(p) = self.held.remove(&self.next) {
            out.push(p);
            self.next += 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn item(seq: u64, floor: u64) -> Payload {
        Payload {
            from: [1; 32],
            to: [2; 32],
            seq,
            floor,
            sent_ms: 0,
            body: Body::Ack { upto: 0 },
        }
    }

    proptest! {
        /// Whatever the order, duplication and loss of deliveries, each number is released at
        /// most once, in increasing order, and with every number delivered at least once all
        /// of them are released.
        #[test]
        fn exactly_once_in_order(
            order in proptest::collection::vec(1u64..40, 0..200),
        ) {
            let mut s = InStream::default();
            let mut shown = Vec::new();
            for seq in order.iter().copied() {
                if let Accepted::Ready(r) = s.accept(item(seq, 1), 64) {
                    shown.extend(r.into_iter().map(|p| p.seq));
                }
            }
            prop_assert!(shown.windows(2).all(|w| w[0] < w[1]), "{shown:?}");
            let complete = (1..40).all(|x| order.contains(&x));
            if complete {
                prop_assert_eq!(shown, (1..40).collect::<Vec<_>>());
            }
            prop_assert_eq!(s.upto() + 1, s.next.max(1));
        }

        /// A floor releases what is held below it and skips what never came.
        #[test]
        fn a_floor_moves_past_what_expired(gap in 2u64..20, extra in 0u64..5) {
            let mut s = InStream::default();
            prop_assert_eq!(s.accept(item(gap + 1, 1), 64), Accepted::Held);
            let r = s.accept(item(gap + 2 + extra, gap + 1), 64);
            let Accepted::Ready(r) = r else { panic!("released") };
            let seqs: Vec<u64> = r.iter().map(|p| p.seq).collect();
            if extra == 0 {
                prop_assert_eq!(seqs, vec![gap + 1, gap + 2]);
            } else {
                prop_assert_eq!(seqs, vec![gap + 1]);
            }
        }
    }

    #[test]
    fn acknowledgements_are_cumulative_and_bounded() {
        let mut o = OutStream::default();
        for _ in 0..5 {
            o.push(Pending {
                body: Body::Ack { upto: 0 },
                sent_ms: 0,
                deadline_ms: 1,
                status: Status::Queued,
                next_ms: 0,
                attempts: 0,
                item: None,
                reput_ms: 0,
            });
        }
        assert_eq!(o.floor(), 1);
        assert_eq!(o.ack(3).map(|d| d.len()), Some(3));
        assert_eq!(
            o.ack(3).map(|d| d.len()),
            Some(0),
            "a replayed ack changes nothing"
        );
        assert_eq!(o.floor(), 4);
        assert!(o.ack(6).is_none(), "an ack of numbers never sent");
        assert_eq!(o.ack(5).map(|d| d.len()), Some(2));
    }
}
