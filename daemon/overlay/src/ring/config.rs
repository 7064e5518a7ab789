//! The ring core's config section: membership, maintenance periods, the RPC engine's and the
//! lookups' bounds, with the defaults documented in `docs/protocol.md`.

use std::time::Duration;

/// Ring-maintenance parameters. Every bound the ring core enforces lives here.
#[derive(Clone, Debug)]
pub struct RingConfig {
    /// Length `r` of the successor list.
    pub successors: usize,
    /// Period of stabilize (ask the successor for its predecessor and list).
    pub stabilize_interval: Duration,
    /// Shortest period of fix-fingers; used while fingers keep changing.
    pub fix_fingers_min: Duration,
    /// Longest period of fix-fingers; reached while every refresh confirms the table.
    pub fix_fingers_max: Duration,
    /// Period of check-predecessor.
    pub check_predecessor_interval: Duration,
    /// How long to wait for a response before resending or giving up.
    pub rpc_timeout: Duration,
    /// Resends of a request after its first timeout, before the peer counts as failed.
    pub rpc_retries: u8,
    /// A lookup that has not finished after this long fails.
    pub lookup_timeout: Duration,
    /// A lookup that has not finished after this many hops fails.
    pub lookup_max_hops: u32,
    /// Outstanding requests at once; beyond this new work is refused.
    pub max_pending_rpcs: usize,
    /// Outstanding lookups at once; beyond this new lookups fail at once.
    pub max_lookups: usize,
    /// How long a peer that failed stays out of routing unless it speaks to us first.
    pub suspect_ttl: Duration,
    /// Bound on remembered suspects.
    pub max_suspects: usize,
    /// Peers lost without a goodbye that we keep probing, for merging partitions.
    pub graveyard_size: usize,
    /// How long a lost peer is kept and probed.
    pub graveyard_ttl: Duration,
    /// Period of the probe round.
    pub probe_interval: Duration,
    /// Lost peers probed per round.
    pub probe_batch: usize,
    /// Longest gap between two probes of one lost peer (probes back off up to this).
    pub probe_backoff_max: Duration,
    /// First retry delay of a failed join; doubles up to `join_retry_max`.
    pub join_retry_min: Duration,
    /// Longest delay between join attempts.
    pub join_retry_max: Duration,
    /// Candidates returned by a routing step.
    pub closer_candidates: usize,
    /// Peers in the random sample a node asks for in a state answer, and the most unconfirmed
    /// merge candidates one source may hold (issue 37; `ring/sample.rs`). 0 turns sampling off.
    pub sample_size: usize,
    /// How often a member asks its successor for a sample (in one stabilize request).
    pub sample_interval: Duration,
    /// Bound on the merge-candidate table.
    pub candidates: usize,
    /// Merge candidates probed per probe round while the node has lost a peer within
    /// `candidate_window`.
    pub candidate_probes: usize,
    /// See `candidate_probes`.
    pub candidate_window: Duration,
    /// A joiner also asks the peer its join lookup started at (its bootstrap) for a sample of
    /// up to [`super::wire::MAX_SAMPLE`] members, once per join (`ring/sample.rs`). Off by
    /// default for now: see `docs/performance.md`, "A ring cut young".
    pub door_sample: bool,
    /// Members a joiner announces itself to (a `Ping`: the receiver keeps it as a merge
    /// candidate), drawn at random from its join samples, once per join; 0 (the default for
    /// now, as `door_sample`) turns it off.
    pub announce: usize,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            successors: 16,
            stabilize_interval: Duration::from_millis(1000),
            fix_fingers_min: Duration::from_millis(500),
            fix_fingers_max: Duration::from_secs(8),
            check_predecessor_interval: Duration::from_millis(2000),
            rpc_timeout: Duration::from_millis(500),
            rpc_retries: 1,
            lookup_timeout: Duration::from_secs(20),
            lookup_max_hops: 64,
            max_pending_rpcs: 4096,
            max_lookups: 1024,
            suspect_ttl: Duration::from_secs(30),
            max_suspects: 1024,
            graveyard_size: 64,
            graveyard_ttl: Duration::from_secs(3600),
            probe_interval: Duration::from_secs(5),
            probe_batch: 4,
            probe_backoff_max: Duration::from_secs(60),
            join_retry_min: Duration::from_millis(500),
            join_retry_max: Duration::from_secs(30),
            closer_candidates: 4,
            sample_size: 4,
            sample_interval: Duration::from_secs(10),
            candidates: 32,
            candidate_probes: 1,
            candidate_window: Duration::from_secs(120),
            door_sample: false,
            announce: 0,
        }
    }
}
