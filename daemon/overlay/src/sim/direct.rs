//! The simulator's side of direct delivery: hosts send bodies to node ids; outcomes and
//! deliveries land in [`Sim::direct_events`].

use super::Sim;
use crate::direct::{DirectError, DirectEvent, DirectInput};
use crate::{Input, NodeId};

impl Sim {
    /// Host `i` sends `body` to the node `to` now (answered in [`Sim::direct_events`] with
    /// `token`).
    pub fn send_direct(&mut self, i: u32, token: u64, to: NodeId, body: Vec<u8>) {
        self.apply(i, Input::Direct(DirectInput::Send { token, to, body }));
    }

    /// The outcome of host `i`'s send `token`, once it finished.
    pub fn direct_done(&self, i: u32, token: u64) -> Option<Result<(), DirectError>> {
        self.direct_events.iter().find_map(|(h, e)| match e {
            DirectEvent::Done { token: t, result } if *h == i && *t == token => {
                Some(result.clone())
            }
            _ => None,
        })
    }

    /// The bodies host `i` received, with their senders.
    pub fn direct_received(&self, i: u32) -> Vec<(NodeId, &[u8])> {
        self.direct_events
            .iter()
            .filter_map(|(h, e)| match e {
                DirectEvent::Received { from, body } if *h == i => Some((from.id, body.as_slice())),
                _ => None,
            })
            .collect()
    }
}
