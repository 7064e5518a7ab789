//! The driver's presence and pokes (`daemon/src/dm/run.rs`, `net.rs`): which accounts the
//! directory shows online and since which start of their node, senders sending directly what
//! waits for an account seen online again (the daemon's [`chat_dm::delivery::OnlineWatch`]),
//! and a stored item's poke to its recipient's node.

use std::collections::HashMap;

use chat_dm::delivery;
use chat_overlay::sim::Sim;

use super::{Driver, Op, now_ms};

impl Driver {
    /// What every node's presence shows: the accounts online, each with the number of times
    /// its node became a member (a restarted node announces itself anew).
    pub(super) fn online(&mut self, sim: &Sim) -> HashMap<[u8; 32], u64> {
        let mut online = HashMap::new();
        for (&host, h) in &mut self.hosts {
            let member = sim.members().contains(&sim.hosts[host as usize].peer.id);
            if member && !h.was_member {
                h.incarnation += 1;
            }
            h.was_member = member && h.engine.is_some();
            if h.was_member {
                online.insert(h.signer.verifying_key().to_bytes(), h.incarnation);
            }
        }
        online
    }

    /// Sends again, directly, what `host`'s account has unacknowledged for each account seen
    /// online (in `online`, by incarnation) since it last looked.
    pub(super) fn retry_online(
        &mut self,
        sim: &mut Sim,
        host: u32,
        online: &HashMap<[u8; 32], u64>,
    ) {
        let now = now_ms(sim);
        let Some(h) = self.hosts.get_mut(&host) else {
            return;
        };
        if !h.was_member {
            return;
        }
        let Some(e) = h.engine.as_mut() else { return };
        let (waiting, stored) = delivery::waiting(e);
        let back = h.seen.look(&waiting, &stored, |to| online.get(to).copied());
        let mut actions = Vec::new();
        for to in back {
            self.stats.online_retries += 1;
            actions.extend(e.peer_online(to, now));
        }
        if !actions.is_empty() {
            self.run(sim, host, actions);
        }
    }

    /// Tells `to`'s node, if it is a member, that its mailbox has a new item.
    pub(super) fn poke(&mut self, sim: &mut Sim, host: u32, to: [u8; 32]) {
        let Some(&th) = self.by_account.get(&to) else {
            return;
        };
        let node = sim.hosts[th as usize].peer.id;
        if !sim.members().contains(&node) || th == host {
            return;
        }
        self.stats.pokes += 1;
        let t = self.token(host, Op::Poke);
        sim.send_direct(host, t, node, delivery::poke_body(&to));
    }
}
