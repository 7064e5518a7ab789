//! Per-origin token buckets, enforced at every hop so that a flooding origin is muted
//! network-wide, not only at its own node. Bounded: the least recently used bucket is evicted.

use std::collections::BTreeMap;

use crate::id::NodeId;
use crate::time::Time;

#[derive(Clone, Copy, Debug)]
struct Tokens {
    /// Tokens in millionths.
    micros: u64,
    last: Time,
}

/// Token buckets keyed by origin.
#[derive(Debug)]
pub struct RateLimiter {
    rate_per_sec: u64,
    burst: u64,
    max: usize,
    buckets: BTreeMap<NodeId, Tokens>,
}

impl RateLimiter {
    /// `rate_per_sec` sustained, `burst` at once, at most `max` origins remembered.
    pub fn new(rate_per_sec: u32, burst: u32, max: usize) -> RateLimiter {
        RateLimiter {
            rate_per_sec: u64::from(rate_per_sec),
            burst: u64::from(burst.max(1)),
            max: max.max(1),
            buckets: BTreeMap::new(),
        }
    }

    /// How long until `origin` has a token at `now` (zero: it has one). Takes nothing.
    pub fn wait(&self, origin: &NodeId, now: Time) -> std::time::Duration {
        let Some(b) = self.buckets.get(origin) else {
            return std::time::Duration::ZERO;
        };
        let full = self.burst * 1_000_000;
        let elapsed = now.since(b.last).as_micros() as u64;
        let micros = (b.micros + elapsed.saturating_mul(self.rate_per_sec)).min(full);
        if micros >= 1_000_000 {
            return std::time::Duration::ZERO;
        }
        // Each microsecond adds `rate_per_sec` millionths of a token.
        let missing = 1_000_000 - micros;
        std::time::Duration::from_micros(missing.div_ceil(self.rate_per_sec.max(1)))
    }

    /// Takes a token for `origin` if it has one.
    pub fn allow(&mut self, origin: &NodeId, now: Time) -> bool {
        let full = self.burst * 1_000_000;
        if !self.buckets.contains_key(origin) && self.buckets.len() >= self.max {
            // Forget the origin heard from longest ago (it refills to a full bucket anyway).
            if let Some(k) = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(k, _)| *k)
            {
                self.buckets.remove(&k);
            }
        }
        let b = self.buckets.entry(*origin).or_insert(Tokens {
            micros: full,
            last: now,
        });
        let elapsed = now.since(b.last).as_micros() as u64;
        b.micros = (b.micros + elapsed.saturating_mul(self.rate_per_sec)).min(full);
        b.last = now;
        if b.micros >= 1_000_000 {
            b.micros -= 1_000_000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let mut r = RateLimiter::new(10, 5, 4);
        let o = NodeId([1; 32]);
        let t0 = Time::ZERO;
        assert_eq!((0..8).filter(|_| r.allow(&o, t0)).count(), 5);
        // 10 per second: one more token every 100 ms.
        assert!(r.allow(&o, t0 + Duration::from_millis(100)));
        assert!(!r.allow(&o, t0 + Duration::from_millis(150)));
        // Another origin has its own bucket.
        assert!(r.allow(&NodeId([2; 32]), t0));
    }

    #[test]
    fn wait_says_when_the_next_token_comes_and_takes_nothing() {
        let mut r = RateLimiter::new(10, 2, 4);
        let o = NodeId([1; 32]);
        let t0 = Time::ZERO;
        assert_eq!(r.wait(&o, t0), Duration::ZERO);
        assert!(r.allow(&o, t0) && r.allow(&o, t0));
        assert_eq!(r.wait(&o, t0), Duration::from_millis(100));
        assert_eq!(
            r.wait(&o, t0 + Duration::from_millis(40)),
            Duration::from_millis(60)
        );
        assert_eq!(r.wait(&o, t0 + Duration::from_millis(100)), Duration::ZERO);
        // Asking took nothing: the token is still there.
        assert!(r.allow(&o, t0 + Duration::from_millis(100)));
        assert!(!r.allow(&o, t0 + Duration::from_millis(100)));
    }

    #[test]
    fn bounded_origins() {
        let mut r = RateLimiter::new(1, 1, 3);
        for i in 0..10u8 {
            r.allow(
                &NodeId([i; 32]),
                Time::ZERO + Duration::from_secs(u64::from(i)),
            );
        }
        assert_eq!(r.buckets.len(), 3);
    }
}
