//! How a hosted account's messages travel, without I/O: the formats and the timing decisions
//! of the delivery service ([`crate::service`]), which the daemon (`daemon/src/dm/`) and the
//! simulator (`tests/sim/src/dm_driver.rs`) both run.
//!
//! - The direct body: `recipient account ‖ sealed value` ([`item_body`]), or the account alone,
//!   a *poke* telling its node that the mailbox has a new item ([`poke_body`]); read back by
//!   [`parse_body`].
//! - What a records read answers: the mailbox items ([`mailbox_items`]), a peer's key bundle
//!   ([`bundle_in`]).
//! - When an account publishes its bundle and reads its mailbox ([`Schedule`]): at start
//!   (read first, then publish), then after [`FIRST_REDRAIN_MS`], the gap doubling up to
//!   [`DRAIN_MS`]; at most [`POKE_GAP_MS`] after a poke; within [`FIRST_REDRAIN_MS`] when
//!   something changed (a bundle arrived).
//! - Which recipients of waiting messages came back online ([`OnlineWatch`]): they get what
//!   waits for them directly at once ([`crate::Engine::peer_online`]).
//! - Where a send goes ([`route`], [`after_direct_failure`]): direct to an online
//!   recipient's node, else (or when that fails) its mailbox, never the mailbox again for an
//!   item stored already.
//! - How long a failed attempt waits before the engine tries again ([`FAILED_RETRY_MS`]), and
//!   the shortest life of a mailbox item put ([`item_expiry`]).

use std::collections::HashMap;

use chat_overlay::records::{Record, RecordError, Value};

use crate::bundle::Bundle;
use crate::engine::{Delivery, Engine, Item, Status};

/// How often each account's mailbox is read, at most.
pub const DRAIN_MS: u64 = 120_000;
/// The second read after the first, at start; the gap doubles up to [`DRAIN_MS`].
pub const FIRST_REDRAIN_MS: u64 = 2_000;
/// Shortest gap between two reads a poke asks for (pokes come from anyone).
pub const POKE_GAP_MS: u64 = 1_000;
/// After a failed attempt (neither direct delivery nor the mailbox worked), the engine tries
/// again after this long.
pub const FAILED_RETRY_MS: u64 = 15_000;
/// The shortest life of a mailbox item from its put.
pub const MIN_ITEM_LIFE_MS: u64 = 60_000;
/// After the node could not store what a read took ([`Schedule::failed`]), the next read is
/// made this soon; the gap doubles up to [`FAILED_REDRAIN_MAX_MS`] while the failures go on.
pub const FAILED_REDRAIN_MS: u64 = 2_000;
/// Longest gap between reads while the node cannot store what they take.
pub const FAILED_REDRAIN_MAX_MS: u64 = 30_000;

/// A direct body as read by the recipient's node.
#[derive(Debug, PartialEq, Eq)]
pub enum DirectBody<'a> {
    /// The sender's node stored an item in `account`'s mailbox: read it soon.
    Poke([u8; 32]),
    /// A sealed item for `account`.
    Item {
        /// The recipient.
        account: [u8; 32],
        /// The sealed value, as a mailbox item would hold it.
        value: &'a [u8],
    },
}

/// The direct body carrying the sealed `value` to account `to`.
pub fn item_body(to: &[u8; 32], value: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(32 + value.len());
    body.extend_from_slice(to);
    body.extend_from_slice(value);
    body
}

/// The direct body telling account `to`'s node that its mailbox has a new item.
pub fn poke_body(to: &[u8; 32]) -> Vec<u8> {
    to.to_vec()
}

/// Reads a direct body; `None` if it is too short to name an account.
pub fn parse_body(body: &[u8]) -> Option<DirectBody<'_>> {
    let (account, value) = body.split_first_chunk::<32>()?;
    Some(if value.is_empty() {
        DirectBody::Poke(*account)
    } else {
        DirectBody::Item {
            account: *account,
            value,
        }
    })
}

/// The items of a mailbox read, for [`Engine::receive`] (removals and other values skipped).
pub fn mailbox_items(records: impl IntoIterator<Item = Record>) -> Vec<Item> {
    records
        .into_iter()
        .filter_map(|r| {
            let hash = r.hash();
            match r.value {
                Value::Data(v) => Some((Some(hash), v)),
                _ => None,
            }
        })
        .collect()
}

/// The first valid key bundle of `peer` among the records a read of its `Keys` key answered
/// (only records `peer` signed).
pub fn bundle_in(records: impl IntoIterator<Item = Record>, peer: &[u8; 32]) -> Option<Bundle> {
    records.into_iter().find_map(|r| match &r.value {
        Value::Data(v) if &r.owner == peer => Bundle::decode(v, peer).ok(),
        _ => None,
    })
}

/// How a [`crate::Action::Send`] goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Straight to the recipient's node ([`item_body`]); if that fails, see
    /// [`after_direct_failure`].
    Direct,
    /// Into the recipient's mailbox ([`crate::item_record`]).
    Mailbox,
    /// Nowhere now: report [`direct_failed`] to the engine.
    Failed,
}

/// The route of a `Send` (its `mailbox` and `direct_only` flags) when the directory shows
/// its recipient `online` or not: direct when online and the mailbox is not asked for;
/// otherwise the mailbox, unless the item is there already (`direct_only`).
pub fn route(mailbox: bool, direct_only: bool, online: bool) -> Route {
    if online && !mailbox {
        Route::Direct
    } else if direct_only {
        Route::Failed
    } else {
        Route::Mailbox
    }
}

/// Where a `Send` goes after its direct delivery failed: the mailbox, unless the item is
/// there already (`direct_only`).
pub fn after_direct_failure(direct_only: bool) -> Route {
    if direct_only {
        Route::Failed
    } else {
        Route::Mailbox
    }
}

/// What a failed put of a mailbox item means for the engine ([`crate::Engine::outcome`]):
/// try again after the time a rate limit asks for (at least a second), else after
/// [`FAILED_RETRY_MS`]. `refused` is the holders' answer, if they gave one.
pub fn put_failed(refused: Option<&RecordError>) -> Delivery {
    let retry_ms = match refused {
        Some(RecordError::RateLimited { retry_after_ms }) => (*retry_after_ms).max(1000),
        _ => FAILED_RETRY_MS,
    };
    Delivery::Failed { retry_ms }
}

/// A failed direct delivery of an item already in the mailbox: try again later.
pub fn direct_failed() -> Delivery {
    Delivery::Failed {
        retry_ms: FAILED_RETRY_MS,
    }
}

/// When a mailbox item put at `now_ms` for a message expiring at `expires_ms` expires: never
/// sooner than [`MIN_ITEM_LIFE_MS`] from now.
pub fn item_expiry(now_ms: u64, expires_ms: u64) -> u64 {
    expires_ms.max(now_ms + MIN_ITEM_LIFE_MS)
}

/// What a hosted account is to do now (see [`Schedule::due`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Due {
    /// Read the mailbox (before publishing, when both: items sealed to the keys of before a
    /// rotation are read while those keys are still held).
    pub drain: bool,
    /// Publish the key bundle; report how it went with [`Schedule::published`].
    pub publish: bool,
}

/// One hosted account's clock for publishing its bundle and reading its mailbox.
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    published: bool,
    drained_ms: u64,
    /// When the next read is due.
    next_drain_ms: u64,
    /// The gap to the read after it (0 before the first read).
    gap_ms: u64,
    /// The gap after the last failure to store ([`Schedule::failed`]) and when it was.
    failed_gap_ms: u64,
    failed_ms: u64,
}

impl Schedule {
    /// A fresh account (or one whose node just started): read and publish at once.
    pub fn new() -> Schedule {
        Schedule::default()
    }

    /// What is due at `now_ms`; report a read when it is over ([`Schedule::drained`]). Until
    /// a publication succeeds, every call asks for a read and a publication.
    pub fn due(&self, now_ms: u64) -> Due {
        Due {
            drain: !self.published || now_ms >= self.next_drain_ms,
            publish: !self.published,
        }
    }

    /// Whether the publication [`Schedule::due`] asked for was stored.
    pub fn published(&mut self, ok: bool) {
        self.published = ok;
    }

    /// The bundle is to be published again (after a rotation, or a restart of the node).
    pub fn republish(&mut self) {
        self.published = false;
    }

    /// A read was over at `now_ms`: the next one after the current gap, which doubles.
    pub fn drained(&mut self, now_ms: u64) {
        self.drained_ms = now_ms;
        self.gap_ms = if self.gap_ms == 0 {
            FIRST_REDRAIN_MS
        } else {
            (self.gap_ms * 2).min(DRAIN_MS)
        };
        self.next_drain_ms = now_ms + self.gap_ms;
    }

    /// A sender's node said it stored an item: read within [`POKE_GAP_MS`] of the last read.
    pub fn poked(&mut self) {
        self.next_drain_ms = self.next_drain_ms.min(self.drained_ms + POKE_GAP_MS);
    }

    /// Something changed (a bundle arrived, an account was added): read within
    /// [`FIRST_REDRAIN_MS`] of `now_ms`.
    pub fn soon(&mut self, now_ms: u64) {
        self.next_drain_ms = self.next_drain_ms.min(now_ms + FIRST_REDRAIN_MS);
    }

    /// The node stores again: read at the next look, and a later failure backs off from the
    /// shortest gap.
    pub fn recovered(&mut self, now_ms: u64) {
        self.failed_gap_ms = 0;
        self.next_drain_ms = self.next_drain_ms.min(now_ms);
    }

    /// The node could not store what the account took (its disk is full): what a read took
    /// stays in the mailbox, so read again [`FAILED_REDRAIN_MS`] later, doubling up to
    /// [`FAILED_REDRAIN_MAX_MS`] while the failures go on (a failure more than
    /// [`FAILED_REDRAIN_MAX_MS`] after the last starts again from the shortest gap).
    pub fn failed(&mut self, now_ms: u64) {
        let streak = self.failed_gap_ms > 0
            && now_ms.saturating_sub(self.failed_ms) <= self.failed_gap_ms + FAILED_REDRAIN_MAX_MS;
        self.failed_gap_ms = if streak {
            (self.failed_gap_ms * 2).min(FAILED_REDRAIN_MAX_MS)
        } else {
            FAILED_REDRAIN_MS
        };
        self.failed_ms = now_ms;
        // Whatever an earlier step of the failed call asked (a bundle found asks for a read
        // soon): while the node cannot store, reads back off.
        self.next_drain_ms = now_ms + self.failed_gap_ms;
    }
}

/// Which recipients of an account's waiting messages came back online since it last looked.
/// `P` is what the directory shows of an online account's presence (when it began, its node):
/// a change means the account came back.
#[derive(Clone, Debug)]
pub struct OnlineWatch<P> {
    seen: HashMap<[u8; 32], P>,
}

impl<P> Default for OnlineWatch<P> {
    fn default() -> Self {
        OnlineWatch {
            seen: HashMap::new(),
        }
    }
}

/// The recipients `engine` waits on, and those of them with a message in their mailbox:
/// the input of [`OnlineWatch::look`].
pub fn waiting(engine: &Engine) -> (Vec<[u8; 32]>, Vec<[u8; 32]>) {
    let stored = engine
        .pending()
        .into_iter()
        .filter(|(_, _, st)| *st == Status::Stored)
        .map(|(to, _, _)| to)
        .collect();
    (engine.pending_peers(), stored)
}

impl<P: PartialEq> OnlineWatch<P> {
    /// An account that has not looked yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks at the recipients the account `waiting` on (and those of them with a message
    /// `stored` in their mailbox, see [`waiting`]), `online` giving the presence of those the
    /// directory shows online: the recipients to call [`Engine::peer_online`] for, in
    /// `waiting`'s order. One seen for the first time (just sent to, or this node just
    /// started) only if something waits in its mailbox (the rest is under way); one seen again
    /// with another presence (back from offline, or announced anew from a restarted node)
    /// always.
    pub fn look(
        &mut self,
        waiting: &[[u8; 32]],
        stored: &[[u8; 32]],
        mut online: impl FnMut(&[u8; 32]) -> Option<P>,
    ) -> Vec<[u8; 32]> {
        self.seen.retain(|to, _| waiting.contains(to));
        let mut back = Vec::new();
        for to in waiting {
            let Some(now) = online(to) else {
                self.seen.remove(to);
                continue;
            };
            let changed = match self.seen.get(to) {
                None => stored.contains(to),
                Some(was) => *was != now,
            };
            self.seen.insert(*to, now);
            if changed {
                back.push(*to);
            }
        }
        back
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Schedule {
        /// [`Schedule::due`], a read it asks for made at once.
        fn step(&mut self, now_ms: u64) -> Due {
            let due = self.due(now_ms);
            if due.drain {
                self.drained(now_ms);
            }
            due
        }
    }

    #[test]
    fn a_send_goes_direct_to_an_online_recipient_else_to_its_mailbox() {
        assert_eq!(route(false, false, true), Route::Direct);
        assert_eq!(
            route(true, false, true),
            Route::Mailbox,
            "the mailbox asked for"
        );
        assert_eq!(route(false, false, false), Route::Mailbox);
        assert_eq!(route(false, true, true), Route::Direct);
        assert_eq!(route(false, true, false), Route::Failed, "stored already");
        assert_eq!(after_direct_failure(false), Route::Mailbox);
        assert_eq!(after_direct_failure(true), Route::Failed);
    }

    #[test]
    fn reads_after_failures_to_store_back_off_and_start_short_again_later() {
        let mut s = Schedule::new();
        s.published(true);
        let mut now = 1_000;
        assert!(s.step(now).drain);
        // Failures in a row: 2 s, 4 s, 8 s, 16 s, 30 s, 30 s.
        let mut gaps = Vec::new();
        for _ in 0..6 {
            s.failed(now);
            let mut t = now + 1;
            while !s.due(t).drain {
                t += 1;
            }
            gaps.push(t - now);
            now = t;
            s.step(now);
        }
        assert_eq!(gaps, vec![2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
        // Long after the last failure, the next starts short again.
        now += 120_000;
        s.failed(now);
        assert!(!s.due(now + 1_999).drain);
        assert!(s.due(now + 2_000).drain);
    }

    #[test]
    fn bodies_read_back() {
        let to = [7u8; 32];
        assert_eq!(
            parse_body(&item_body(&to, b"sealed")),
            Some(DirectBody::Item {
                account: to,
                value: b"sealed"
            })
        );
        assert_eq!(parse_body(&poke_body(&to)), Some(DirectBody::Poke(to)));
        assert_eq!(parse_body(&[1u8; 31]), None);
        assert_eq!(parse_body(&[]), None);
    }

    #[test]
    fn reads_start_at_once_and_back_off_to_the_period() {
        let mut s = Schedule::new();
        assert_eq!(
            s.step(1_000),
            Due {
                drain: true,
                publish: true
            }
        );
        s.published(true);
        assert_eq!(s.step(1_500), Due::default());
        assert!(s.step(3_000).drain, "2 s after the first read");
        assert!(!s.step(6_999).drain);
        assert!(s.step(7_000).drain, "then 4 s");
        let mut t = 7_000;
        for _ in 0..20 {
            let mut next = t + 1;
            while !s.step(next).drain {
                next += 1_000;
            }
            assert!(next - t <= DRAIN_MS + 1_000);
            t = next;
        }
        assert!(!s.step(t + DRAIN_MS - 1_000).drain, "the period holds");
    }

    #[test]
    fn a_poke_reads_within_a_second_and_a_failed_publication_retries() {
        let mut s = Schedule::new();
        s.step(0);
        s.published(false);
        assert_eq!(
            s.step(500),
            Due {
                drain: true,
                publish: true
            },
            "until published, read and publish every call"
        );
        s.published(true);
        for t in [4_500, 12_500, 28_500] {
            assert!(!s.step(t - 1).drain);
            assert!(s.step(t).drain);
        }
        assert!(!s.step(29_000).drain);
        s.poked();
        assert!(!s.step(29_400).drain, "at most one read a second");
        assert!(s.step(29_500).drain);
        s.soon(40_000);
        assert!(s.step(42_000).drain);
        s.republish();
        assert!(s.step(42_001).publish);
    }

    #[test]
    fn a_recipient_back_online_is_retried_once_per_return() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let mut w: OnlineWatch<u64> = OnlineWatch::new();
        let waiting = [a, b];
        // First seen: only `b`, whose message is in its mailbox.
        assert_eq!(w.look(&waiting, &[b], |_| Some(1)), vec![b]);
        assert!(
            w.look(&waiting, &[b], |_| Some(1)).is_empty(),
            "same presence"
        );
        // `a` goes offline, then comes back: seen as for the first time (retried when
        // something waits in its mailbox).
        assert!(w.look(&waiting, &[], |t| (*t == b).then_some(1)).is_empty());
        assert!(
            w.look(&waiting, &[], |t| Some(if *t == a { 2 } else { 1 }))
                .is_empty()
        );
        assert!(w.look(&waiting, &[], |t| (*t == b).then_some(1)).is_empty());
        assert_eq!(
            w.look(&waiting, &[a], |t| Some(if *t == a { 2 } else { 1 })),
            vec![a]
        );
        // `b` restarts (a new presence): retried.
        assert_eq!(
            w.look(&waiting, &[], |t| Some(if *t == b { 3 } else { 2 })),
            vec![b]
        );
        // No longer waited on: forgotten.
        assert!(w.look(&[], &[], |_| Some(9)).is_empty());
        assert_eq!(w.look(&[a], &[a], |_| Some(9)), vec![a]);
    }
}
