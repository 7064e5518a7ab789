//! The simulator's event-queue entry, ordered by time and then by the order it was pushed in
//! (so runs are deterministic).

use crate::Time;

/// A queue entry: the event itself waits in the slab, so heap moves stay small.
pub(super) struct Queued {
    pub(super) at: Time,
    pub(super) seq: u64,
    pub(super) slot: u32,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}
