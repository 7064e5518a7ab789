//! The simulator's model of a daemon restarting after its whole ring went down: first contact
//! with the peers it remembered, then `JoinOrFound` through those that answer, `Create` when
//! none does, and the silent ones handed over as lost peers (`daemon/src/ring/bootstrap.rs`).

use std::time::Duration;

use rand::Rng;

use super::Sim;
use crate::wire::Peer;
use crate::{Input, Time};

impl Sim {
    /// Starts host `i` again as the daemon does after a restart (`daemon/src/ring/bootstrap.rs`):
    /// of the peers it `remembered`, those that are up answer first contact, and it joins
    /// through them with [`Input::JoinOrFound`] (any of them may be waiting for a ring too);
    /// when none answers it founds a ring if `found_if_silent` (no bootstrap configured), else
    /// it does not start (the daemon retries its round: call again later). The silent ones are
    /// handed over first as [`Input::Lost`]. Returns whether the host started.
    pub fn restart_remembering(
        &mut self,
        i: u32,
        remembered: &[Peer],
        found_if_silent: bool,
    ) -> bool {
        let me = self.hosts[i as usize].peer.id;
        let (up, silent): (Vec<Peer>, Vec<Peer>) = remembered
            .iter()
            .filter(|p| p.id != me)
            .partition(|p| self.host_of(&p.id).is_some_and(|h| self.is_up(h)));
        let first = if !up.is_empty() {
            Input::JoinOrFound { via: up }
        } else if found_if_silent {
            Input::Create
        } else {
            return false;
        };
        self.boot(i, Input::Lost { peers: silent });
        self.apply(i, first);
        true
    }

    /// The whole ring goes down; 5 s later `back` of its hosts, chosen and ordered at random,
    /// restart `gap` apart, each through the peers it remembered (its routing view when it
    /// went down) with no bootstrap ([`Sim::restart_remembering`]). Returns the hosts that came
    /// back, in order, and when the first of them did.
    pub fn revive_subset(&mut self, back: usize, gap: Duration) -> (Vec<u32>, Time) {
        let n = self.hosts.len() as u32;
        let views: Vec<Vec<Peer>> = (0..n)
            .map(|i| {
                let id = self.hosts[i as usize].peer.id;
                self.node(&id)
                    .map(|o| o.ring().known_peers())
                    .unwrap_or_default()
            })
            .collect();
        for i in 0..n {
            self.crash(i);
        }
        self.run_for(Duration::from_secs(5));
        let mut order: Vec<u32> = (0..n).collect();
        for k in (1..order.len()).rev() {
            let j = self.rng().random_range(0..=k);
            order.swap(k, j);
        }
        order.truncate(back);
        let first = self.now();
        for &i in &order {
            // With no bootstrap a host founds when nobody it remembers is up: it always starts.
            let started = self.restart_remembering(i, &views[i as usize], true);
            assert!(started, "host {i} did not restart");
            self.run_for(gap);
        }
        (order, first)
    }
}
