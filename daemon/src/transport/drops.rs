//! Counters of things the transport dropped, by reason: what `GetStatus.dropped` reports.
//!
//! Every drop of hostile or broken input is counted here (and logged at debug level by the
//! code that drops it), so an operator sees an attack or a broken peer in `chatctl status`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why something was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A frame announced more than the maximum frame size.
    OversizedFrame,
    /// A frame's payload was not one valid CBOR message of the expected type.
    UndecodableFrame,
    /// A stream ended in the middle of a frame.
    TruncatedFrame,
    /// A frame did not arrive completely within the read deadline.
    SlowFrame,
    /// A dialled peer presented a valid certificate for another NodeId than expected.
    PeerIdMismatch,
    /// A peer presented a certificate that is malformed, not ed25519 or not self-signed.
    BadCertificate,
    /// A connection was refused because the connection bound was reached.
    ConnectionLimit,
    /// An outgoing message was dropped because the peer's send queue was full.
    SendQueueFull,
    /// An outgoing message was dropped because the peer could not be reached.
    Unreachable,
    /// An outgoing message was larger than the maximum frame size.
    OversizedOutgoing,
    /// An idle, unproven connection was closed to admit a new peer into the full pool.
    Evicted,
    /// An incoming bulk stream was refused: over the per-peer or total bound, or its owner's
    /// queue was full.
    BulkRefused,
    /// An incoming bulk stream's kind has no owner on this node.
    BulkUnknownKind,
    /// An incoming bulk stream's header did not arrive within the deadline.
    BulkSlowHeader,
    /// A bulk stream was cut after its idle timeout.
    BulkIdle,
}

impl Reason {
    /// Every reason, in the order reported.
    pub const ALL: [Reason; 15] = [
        Reason::OversizedFrame,
        Reason::UndecodableFrame,
        Reason::TruncatedFrame,
        Reason::SlowFrame,
        Reason::PeerIdMismatch,
        Reason::BadCertificate,
        Reason::ConnectionLimit,
        Reason::SendQueueFull,
        Reason::Unreachable,
        Reason::OversizedOutgoing,
        Reason::Evicted,
        Reason::BulkRefused,
        Reason::BulkUnknownKind,
        Reason::BulkSlowHeader,
        Reason::BulkIdle,
    ];

    /// The name reported in `GetStatus.dropped`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OversizedFrame => "oversized_frame",
            Reason::UndecodableFrame => "undecodable_frame",
            Reason::TruncatedFrame => "truncated_frame",
            Reason::SlowFrame => "slow_frame",
            Reason::PeerIdMismatch => "peer_id_mismatch",
            Reason::BadCertificate => "bad_certificate",
            Reason::ConnectionLimit => "connection_limit",
            Reason::SendQueueFull => "send_queue_full",
            Reason::Unreachable => "unreachable",
            Reason::OversizedOutgoing => "oversized_outgoing",
            Reason::Evicted => "evicted_idle",
            Reason::BulkRefused => "bulk_refused",
            Reason::BulkUnknownKind => "bulk_unknown_kind",
            Reason::BulkSlowHeader => "bulk_slow_header",
            Reason::BulkIdle => "bulk_idle",
        }
    }
}

/// Drop counters, shared by every transport task.
#[derive(Debug, Default)]
pub struct Drops {
    counts: [AtomicU64; Reason::ALL.len()],
}

impl Drops {
    /// Counts one drop.
    pub fn count(&self, reason: Reason) {
        self.add(reason, 1);
    }

    /// Counts `n` drops.
    pub fn add(&self, reason: Reason, n: u64) {
        self.counts[reason as usize].fetch_add(n, Ordering::Relaxed);
    }

    /// The count for one reason.
    pub fn get(&self, reason: Reason) -> u64 {
        self.counts[reason as usize].load(Ordering::Relaxed)
    }

    /// Every reason with its count (zeros included, so clients see every key).
    pub fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        Reason::ALL
            .iter()
            .map(|&r| (r.as_str(), self.get(r)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_reason_and_names_are_distinct() {
        let d = Drops::default();
        d.count(Reason::OversizedFrame);
        d.add(Reason::PeerIdMismatch, 3);
        let s = d.snapshot();
        assert_eq!(s.len(), Reason::ALL.len(), "names are distinct");
        assert_eq!(s["oversized_frame"], 1);
        assert_eq!(s["peer_id_mismatch"], 3);
        assert_eq!(s["undecodable_frame"], 0);
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i, "ALL is in declaration order");
        }
    }
}
