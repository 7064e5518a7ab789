//! Driving a service's own inputs in the simulator: [`Sim::call`] runs a closure on a host's
//! service of a given type, as the daemon's driver does through [`Overlay::call`].

use super::Sim;
use crate::Overlay;
use crate::protocol::{Ctx, Service};

impl Sim {
    /// Runs `f` on host `i`'s service of type `T` now and carries out the outputs. `None`: the
    /// host is down or runs no such service.
    pub fn call<T: Service, R>(
        &mut self,
        i: u32,
        f: impl FnOnce(&mut T, &mut Ctx<'_>) -> R,
    ) -> Option<R> {
        let now = self.now;
        let node: &mut Overlay = self.hosts.get_mut(i as usize)?.node.as_mut()?;
        let (r, outs) = node.call(now, f)?;
        self.carry_out(i, outs);
        Some(r)
    }
}
