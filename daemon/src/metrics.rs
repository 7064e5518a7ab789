//! Measurements no status counter holds, kept for `/metrics` (`web/metrics.rs`): how long
//! messages from the ring took to arrive, how long the history's group commits take, the
//! peers' round-trip times, and how many messages went out to local subscribers.
//!
//! Counters that `GetStatus` already reports (sent, received, forwarded, drops, records) are
//! not duplicated here: `/metrics` reads them from the same place at each scrape, so the two
//! always agree.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// The daemon's histograms and delivery counter; share it by `Arc`.
#[derive(Debug)]
pub struct Metrics {
    /// Seconds from a message's timestamp (its sender's clock) to its acceptance here.
    pub delivery_latency: Histogram,
    /// Seconds one group commit of the history took.
    pub commit_seconds: Histogram,
    /// Round-trip times of the open peer connections, sampled every few seconds.
    pub peer_rtt: Histogram,
    /// Messages handed to local subscribers (API streams and web pages).
    pub deliveries: Counter,
    /// Times the overlay driver waited for room in the chat store thread's queue.
    pub store_queue_waits: Counter,
    /// Messages shown before they were stored that the store then did not take as new (the
    /// check before showing should make this stay 0).
    pub shown_not_stored: Counter,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            // 100 µs … 13 s.
            delivery_latency: Histogram::new(exponential_buckets(0.0001, 2.0, 18)),
            // 10 µs … 0.65 s.
            commit_seconds: Histogram::new(exponential_buckets(0.00001, 2.0, 17)),
            // 50 µs … 3.3 s.
            peer_rtt: Histogram::new(exponential_buckets(0.00005, 2.0, 17)),
            deliveries: Counter::default(),
            store_queue_waits: Counter::default(),
            shown_not_stored: Counter::default(),
        }
    }
}
