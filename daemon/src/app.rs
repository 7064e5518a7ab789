//! Running the node: the startup sequence and the shutdown path.
//!
//! Startup: install signal handlers → lock and open the data directory → load or create the
//! node key → bind the control socket (refusing if another chatd serves it) → bind the QUIC
//! endpoint on the listen address and start the ring driver (founding a ring, or joining
//! through `--bootstrap`) → serve.
//!
//! Shutdown on SIGINT/SIGTERM (or the `Leave` RPC): leave the ring gracefully — the overlay
//! hands our neighbours to each other and the goodbyes are flushed, within [`LEAVE_DEADLINE`] —
//! then close the QUIC endpoint, stop accepting control calls, give in-flight calls [`GRACE`] to
//! finish, remove the socket, return `Ok` (exit 0). The whole path is bounded by a few seconds.

use std::sync::Arc;
use std::time::Duration;

use tracing::{Instrument, info, info_span, warn};

use crate::config::Settings;
use crate::control::ControlSocket;
use crate::error::Error;
use crate::identity::{Identity, Origin};
use crate::node::Node;
use crate::ring::{self, RingConfig};
use crate::{paths, shutdown, transport};

/// How long in-flight control calls may run after a shutdown signal.
pub const GRACE: Duration = Duration::from_millis(1000);
/// How long leaving the ring may take at shutdown.
pub const LEAVE_DEADLINE: Duration = Duration::from_millis(1500);
/// How long closing the QUIC endpoint may take at shutdown.
const CLOSE_DEADLINE: Duration = Duration::from_millis(500);

/// Runs the node until SIGINT or SIGTERM.
pub async fn run(settings: Settings) -> Result<(), Error> {
    let signal = shutdown::signal().map_err(Error::Signals)?;
    let _lock = paths::lock_data_dir(&settings.data_dir)?;
    let (identity, origin) = Identity::load_or_create(&settings.data_dir)?;
    let span = info_span!("node", id = %identity.id().short());
    async move {
        match origin {
            Origin::Created => info!(node_id = %identity.id(), data_dir = %settings.data_dir.display(), "created a new node identity"),
            Origin::Loaded => info!(node_id = %identity.id(), data_dir = %settings.data_dir.display(), "loaded node identity"),
        }
        let control = ControlSocket::bind(&settings.control_socket).await?;
        // Bound here (not in the transport) to learn the real port before anything else runs.
        let udp = std::net::UdpSocket::bind(settings.listen)
            .map_err(|source| Error::Listen { addr: settings.listen, source })?;
        let listen_addr = udp.local_addr().map_err(|source| Error::Listen { addr: settings.listen, source })?;
        let node = Arc::new(Node::new(
            identity.public_key(),
            settings.nickname.clone(),
            listen_addr,
            settings.bootstrap.clone(),
        ));
        if node.bootstrap().is_empty() {
            info!("no bootstrap peers: this node founds a new ring");
        } else {
            info!(peers = ?node.bootstrap(), "joining through the bootstrap peers");
        }
        let ring_cfg = RingConfig {
            transport: transport::Config::new(listen_addr, settings.max_connections),
            chord: settings.ring.chord_config(),
            bootstrap: settings.bootstrap.clone(),
        };
        let (ring, _driver) = ring::start(node.clone(), identity.signing_key(), ring_cfg, udp)?;
        node.attach_ring(ring.clone());

        let (trigger, stop) = shutdown::channel();
        info!(control = %control.path().display(), listen = %listen_addr, "chatd is running");
        let server = control.serve(node.clone(), stop);
        tokio::pin!(server);
        tokio::select! {
            sig = signal => info!(signal = ?sig, "shutting down"),
            () = node.stop_requested() => info!("stop requested over the control API"),
            result = &mut server => return result.map_err(Error::from),
        }
        if ring.leave(LEAVE_DEADLINE).await {
            info!("left the ring");
        } else {
            warn!("could not leave the ring gracefully within {LEAVE_DEADLINE:?}");
        }
        ring.close(CLOSE_DEADLINE).await;
        trigger.fire();
        match tokio::time::timeout(GRACE, &mut server).await {
            Ok(result) => result?,
            Err(_) => warn!("control calls still running after {GRACE:?}; closing them"),
        }
        info!("stopped");
        Ok(())
    }
    .instrument(span)
    .await
}
