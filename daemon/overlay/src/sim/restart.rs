//! The simulator's model of a daemon restarting after its whole ring went down: first contact
//! with the peers it remembered, then `JoinOrFound` through those that answer, `Create` when
//! none does, and the silent ones handed over as lost peers (`daemon/src/ring/bootstrap.rs`).

use super::Sim;
use crate::Input;
use crate::wire::Peer;

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
}
