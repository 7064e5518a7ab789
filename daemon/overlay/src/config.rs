//! The overlay's configuration: one section per part, each defined (with its defaults) in
//! the folder of the part it tunes. A new sub-protocol with settings adds its section here.

use crate::broadcast::BroadcastConfig;
use crate::direct::DirectConfig;
use crate::records::RecordsConfig;
use crate::ring::RingConfig;

/// Every section of the overlay's configuration.
#[derive(Clone, Debug, Default)]
pub struct ChordConfig {
    /// The ring core: maintenance, RPCs, lookups.
    pub ring: RingConfig,
    /// Broadcast tunables.
    pub broadcast: BroadcastConfig,
    /// Records tunables.
    pub records: RecordsConfig,
    /// Direct delivery tunables.
    pub direct: DirectConfig,
}
