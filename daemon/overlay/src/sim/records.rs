//! The simulator's side of DHT records: hosts put and read records, and the oracle's view of
//! which live members should hold a record.

use super::Sim;
use crate::records::{Record, RecordsInput};
use crate::{Input, NodeId};

impl Sim {
    /// Host `i` puts `record` now (answered in [`Sim::record_events`] with `token`); `own`:
    /// it re-puts it every renewal period.
    pub fn put_record(&mut self, i: u32, token: u64, record: Record, own: bool) {
        self.apply(i, Input::Records(RecordsInput::Put { token, record, own }));
    }

    /// Host `i` reads `kind` and `key` now (answered in [`Sim::record_events`]).
    pub fn get_record(&mut self, i: u32, token: u64, kind: u8, key: Vec<u8>) {
        self.apply(i, Input::Records(RecordsInput::Get { token, kind, key }));
    }

    /// A modified node: host `i` (if live) plants `record` in its own store with no policy,
    /// and answers and pushes it as if it held it ([`crate::Overlay::plant_record`]).
    pub fn plant_record(&mut self, i: u32, record: Record) {
        if let Some(node) = self.hosts[i as usize].node.as_mut() {
            node.plant_record(record);
        }
    }

    /// The `k` live members that should hold a record located at `loc`: its successor and
    /// the next `k − 1`.
    pub fn true_holders(&self, loc: &NodeId, k: usize) -> Vec<NodeId> {
        self.members
            .range(loc..)
            .chain(self.members.range(..loc))
            .take(k)
            .copied()
            .collect()
    }
}
