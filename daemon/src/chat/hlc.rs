//! A hybrid logical clock (Kulkarni et al., 2014): timestamps that stay close to wall-clock
//! time but never go backwards and always order a message after every message its sender had
//! seen.
//!
//! A timestamp is one `u64`: milliseconds since the Unix epoch in the upper 48 bits, a logical
//! counter in the lower 16. [`Clock::tick`] stamps a local event; [`Clock::observe`] merges a
//! remote timestamp. A sender with a wrong clock must not drag everyone's clock into the
//! future, nor lose its messages: a timestamp up to [`MAX_AHEAD`] ahead of our wall clock is
//! accepted but moves our clock at most [`MAX_DRIFT`] ahead (so a reply may sort up to
//! `MAX_AHEAD - MAX_DRIFT` before the message it answers); one further ahead is refused (it
//! would stay at the end of every history).

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Bits of the logical counter.
const LOGICAL_BITS: u32 = 16;
/// How far ahead of our wall clock a remote timestamp may move our clock.
pub const MAX_DRIFT: Duration = Duration::from_secs(60);
/// How far ahead of our wall clock a remote timestamp may be at all (the records' clock skew
/// allowance, `records::Config::max_skew`, is the same 5 minutes).
pub const MAX_AHEAD: Duration = Duration::from_secs(300);

/// A hybrid logical timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// A timestamp from milliseconds and a logical counter.
    pub fn new(millis: u64, logical: u16) -> Timestamp {
        Timestamp((millis << LOGICAL_BITS) | u64::from(logical))
    }

    /// The physical part: milliseconds since the Unix epoch.
    pub fn millis(self) -> u64 {
        self.0 >> LOGICAL_BITS
    }

    /// The logical counter.
    pub fn logical(self) -> u16 {
        (self.0 & 0xffff) as u16
    }
}

/// A remote timestamp was too far in the future.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("timestamp is {ahead_ms} ms ahead of this node's clock (at most {} s allowed)", MAX_AHEAD.as_secs())]
pub struct TooFarAhead {
    /// By how much.
    pub ahead_ms: u64,
}

/// The node's hybrid logical clock.
#[derive(Debug, Default)]
pub struct Clock {
    last: Mutex<u64>,
}

/// Milliseconds since the Unix epoch now (0 if the system clock is before 1970).
pub fn wall_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Clock {
    /// A clock that never goes below `floor` (e.g. the newest timestamp in the store).
    pub fn starting_at(floor: Timestamp) -> Clock {
        Clock {
            last: Mutex::new(floor.0),
        }
    }

    /// A timestamp for a local event now.
    pub fn tick(&self) -> Timestamp {
        self.tick_at(wall_millis())
    }

    /// A timestamp for a local event at wall-clock time `wall_ms`.
    pub fn tick_at(&self, wall_ms: u64) -> Timestamp {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let candidate = Timestamp::new(wall_ms, 0).0;
        *last = if candidate > *last {
            candidate
        } else {
            *last + 1
        };
        Timestamp(*last)
    }

    /// Merges a remote timestamp seen now.
    pub fn observe(&self, remote: Timestamp) -> Result<(), TooFarAhead> {
        self.observe_at(remote, wall_millis())
    }

    /// Merges a remote timestamp seen at wall-clock time `wall_ms`: our clock moves to it, but
    /// never more than [`MAX_DRIFT`] ahead of `wall_ms`; one more than [`MAX_AHEAD`] ahead is
    /// refused.
    pub fn observe_at(&self, remote: Timestamp, wall_ms: u64) -> Result<(), TooFarAhead> {
        if remote.millis() > wall_ms.saturating_add(MAX_AHEAD.as_millis() as u64) {
            return Err(TooFarAhead {
                ahead_ms: remote.millis() - wall_ms,
            });
        }
        let cap = Timestamp::new(wall_ms.saturating_add(MAX_DRIFT.as_millis() as u64), 0);
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        *last = (*last).max(remote.min(cap).0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_wall_clock_and_never_goes_back() {
        let clock = Clock::default();
        let a = clock.tick_at(1000);
        assert_eq!((a.millis(), a.logical()), (1000, 0));
        let b = clock.tick_at(1000);
        assert_eq!((b.millis(), b.logical()), (1000, 1));
        let c = clock.tick_at(900); // wall clock stepped back
        assert!(c > b);
        let d = clock.tick_at(2000);
        assert_eq!((d.millis(), d.logical()), (2000, 0));
    }

    #[test]
    fn orders_after_observed_remote_timestamps() {
        let clock = Clock::default();
        clock
            .observe_at(Timestamp::new(5000, 7), 4990)
            .expect("10 ms ahead is fine");
        let t = clock.tick_at(4990);
        assert!(t > Timestamp::new(5000, 7));
    }

    #[test]
    fn refuses_timestamps_far_in_the_future() {
        let clock = Clock::starting_at(Timestamp::new(10, 0));
        let far = Timestamp::new(1000 + 301_000, 0);
        assert_eq!(
            clock.observe_at(far, 1000),
            Err(TooFarAhead { ahead_ms: 301_000 })
        );
        assert_eq!(clock.tick_at(1000).millis(), 1000, "clock unaffected");
    }

    #[test]
    fn accepts_a_clock_minutes_ahead_without_following_it_all_the_way() {
        // A sender whose clock is 3 minutes ahead (issue 37's chaos run: refused before, so
        // every node but its own lost its messages).
        let clock = Clock::starting_at(Timestamp::new(10, 0));
        let ahead = Timestamp::new(1000 + 180_000, 5);
        assert_eq!(clock.observe_at(ahead, 1000), Ok(()));
        let t = clock.tick_at(1000);
        assert!(t < ahead, "our clock must not follow it 3 minutes ahead");
        assert_eq!(t.millis(), 1000 + MAX_DRIFT.as_millis() as u64);
        // Within MAX_DRIFT it is followed as before.
        let near = Timestamp::new(2000 + 30_000, 3);
        clock.observe_at(near, 2000).expect("30 s ahead");
        assert!(clock.tick_at(2000) > near);
    }
}
