//! The node's sub-protocols: the one list of the services every node runs ([`registered`]) and
//! the registry the node dispatches through by service number ([`Services`]).
//!
//! Adding a sub-protocol is a folder that implements [`Service`] and one line in
//! [`registered`] (the steps are in `docs/architecture.md`, "Adding a sub-protocol").

use std::fmt;

use crate::broadcast::Broadcast;
use crate::config::ChordConfig;
use crate::direct::Direct;
use crate::protocol::Service;
use crate::records::Records;
use crate::wire::{FRAME, Peer, RING};

/// The services a node with identity `me` runs, built from their config sections. The order is
/// the order in which they see ring events, per-input flushes and the node's leave.
pub(crate) fn registered(cfg: &ChordConfig, me: Peer, seed: u64) -> Vec<Box<dyn Service>> {
    let bseed = seed ^ me.id.high_u64().rotate_left(17);
    #[allow(unused_mut)] // it grows only in test and simulator builds
    let mut s: Vec<Box<dyn Service>> = vec![
        Box::new(Broadcast::new(cfg.broadcast.clone(), bseed)),
        Box::new(Records::new(cfg.records.clone())),
        Box::new(Direct::new(cfg.direct.clone())),
    ];
    #[cfg(any(test, feature = "sim"))]
    s.push(Box::new(crate::ping::Ping::new(Default::default())));
    s
}

/// Why [`Services::add`] refused a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddServiceError {
    /// The number belongs to the frame layer, the ring core or a service every node runs.
    #[error("service number {0} is reserved")]
    Reserved(u16),
}

/// The registry: services by number, in registration order.
pub(crate) struct Services {
    list: Vec<Box<dyn Service>>,
    /// The first `fixed` entries are [`registered`]'s and cannot be replaced.
    fixed: usize,
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.list.iter()).finish()
    }
}

impl Services {
    /// The registry of a node running `fixed` (from [`registered`]).
    pub(crate) fn new(fixed: Vec<Box<dyn Service>>) -> Services {
        Services {
            fixed: fixed.len(),
            list: fixed,
        }
    }

    /// Adds `s` (a service added at run time; one per number, a second replaces the first).
    pub(crate) fn add(&mut self, s: Box<dyn Service>) -> Result<(), AddServiceError> {
        let n = s.service();
        if n == FRAME || n == RING || self.list[..self.fixed].iter().any(|e| e.service() == n) {
            return Err(AddServiceError::Reserved(n));
        }
        match self.list.iter().position(|e| e.service() == n) {
            Some(i) => self.list[i] = s,
            None => self.list.push(s),
        }
        Ok(())
    }

    /// The service serving number `n`.
    pub(crate) fn get(&self, n: u16) -> Option<&dyn Service> {
        self.list
            .iter()
            .find(|e| e.service() == n)
            .map(|e| e.as_ref())
    }

    /// The service serving number `n`, to act on.
    pub(crate) fn get_mut(&mut self, n: u16) -> Option<&mut Box<dyn Service>> {
        self.list.iter_mut().find(|e| e.service() == n)
    }

    /// The service of type `T`.
    pub(crate) fn typed<T: Service>(&self) -> Option<&T> {
        self.list
            .iter()
            .find_map(|e| e.as_any().downcast_ref::<T>())
    }

    /// The service of type `T`, to act on.
    pub(crate) fn typed_mut<T: Service>(&mut self) -> Option<&mut T> {
        self.list
            .iter_mut()
            .find_map(|e| e.as_any_mut().downcast_mut::<T>())
    }

    /// Every service, in registration order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &dyn Service> {
        self.list.iter().map(|e| e.as_ref())
    }

    /// Every service, in registration order, to act on.
    pub(crate) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Box<dyn Service>> {
        self.list.iter_mut()
    }
}
