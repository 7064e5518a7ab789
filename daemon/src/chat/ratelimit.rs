//! Token buckets, alone and keyed: the per-client send rate limit and the per-address limit
//! on failed logins. A keyed limiter holds at most a fixed number of keys, forgetting the
//! least recently used, so a flood of new keys cannot grow memory.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Clone, Debug)]
pub struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A rate: tokens per second and the bucket size.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: f64,
}

impl Bucket {
    /// A full bucket at `now`.
    pub fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst,
            updated: now,
        }
    }

    /// Takes one token at `now`, or says how long until one is available.
    pub fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.burst);
        self.updated = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else if rate.per_second > 0.0 {
            Err(Duration::from_secs_f64(
                (1.0 - self.tokens) / rate.per_second,
            ))
        } else {
            Err(Duration::MAX)
        }
    }

    /// Whether a token is available at `now`, without taking it.
    pub fn has_token(&self, rate: Rate, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        (self.tokens + elapsed * rate.per_second).min(rate.burst) >= 1.0
    }
}

/// Token buckets per key, at most `capacity` keys.
#[derive(Debug)]
pub struct Keyed<K> {
    rate: Rate,
    capacity: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    /// A limiter allowing `rate` per key, remembering at most `capacity` keys.
    pub fn new(rate: Rate, capacity: usize) -> Keyed<K> {
        Keyed {
            rate,
            capacity: capacity.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key` now, or says how long to wait.
    pub fn take(&self, key: &K) -> Result<(), Duration> {
        self.take_at(key, Instant::now())
    }

    /// Takes a token for `key` at `now`.
    pub fn take_at(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.capacity {
            // Forget the least recently used key (a full bucket then is the lenient choice).
            if let Some(oldest) = buckets
                .iter()
                .min_by_key(|(_, b)| b.updated)
                .map(|(k, _)| k.clone())
            {
                buckets.remove(&oldest);
            }
        }
        buckets
            .entry(key.clone())
            .or_insert_with(|| Bucket::full(self.rate, now))
            .take(self.rate, now)
    }

    /// Whether `key` has a token now (without taking one).
    pub fn allows(&self, key: &K) -> bool {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .get(key)
            .is_none_or(|b| b.has_token(self.rate, Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_the_rate() {
        let rate = Rate {
            per_second: 2.0,
            burst: 3.0,
        };
        let limiter = Keyed::new(rate, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take_at(&"a", t0), Ok(()));
        }
        let wait = limiter.take_at(&"a", t0).expect_err("burst used up");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
        assert_eq!(limiter.take_at(&"b", t0), Ok(()), "keys are independent");
        assert_eq!(
            limiter.take_at(&"a", t0 + Duration::from_millis(500)),
            Ok(())
        );
    }

    #[test]
    fn remembers_a_bounded_number_of_keys() {
        let rate = Rate {
            per_second: 0.0,
            burst: 1.0,
        };
        let limiter = Keyed::new(rate, 2);
        let t0 = Instant::now();
        for (i, key) in [1, 2, 3].iter().enumerate() {
            assert_eq!(
                limiter.take_at(key, t0 + Duration::from_millis(i as u64)),
                Ok(())
            );
        }
        assert_eq!(limiter.buckets.lock().expect("lock").len(), 2);
        assert!(limiter.take_at(&3, t0 + Duration::from_millis(5)).is_err());
    }
}
