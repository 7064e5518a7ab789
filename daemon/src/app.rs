//! Running the node: the startup sequence and the shutdown path.
//!
//! Startup: install signal handlers → lock and open the data directory → load or create the
//! node key → bind the control socket (refusing if another chatd serves it) → bind the UDP
//! listen address → serve. The UDP socket is bound to prove the address is usable and to report
//! the real port (`--listen 127.0.0.1:0` picks a free one); nothing reads it yet — the QUIC
//! transport of a later issue takes it over.
//!
//! Shutdown on SIGINT/SIGTERM: stop accepting, give in-flight calls [`GRACE`] to finish, remove
//! the socket, return `Ok` (exit 0). The whole path is bounded well under two seconds.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use tracing::{Instrument, info, info_span, warn};

use crate::chat::Chat;
use crate::config::Settings;
use crate::control::ControlSocket;
use crate::error::Error;
use crate::identity::{Identity, Origin};
use crate::node::Node;
use crate::{paths, shutdown};

/// How long in-flight control calls may run after a shutdown signal.
pub const GRACE: Duration = Duration::from_millis(1000);

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
        let group = settings.access.group.as_ref().map(|g| g.1);
        let control = ControlSocket::bind_for_group(&settings.control_socket, group).await?;
        let udp = UdpSocket::bind(settings.listen)
            .map_err(|source| Error::Listen { addr: settings.listen, source })?;
        let listen_addr = udp.local_addr().map_err(|source| Error::Listen { addr: settings.listen, source })?;
        let node = Arc::new(Node::new(
            identity.public_key(),
            settings.nickname.clone(),
            listen_addr,
            settings.bootstrap.clone(),
        ));
        let (chat, outbound) = Chat::open(
            &settings.data_dir,
            identity.signing_key().clone(),
            settings.nickname.clone(),
            &settings.chat,
        )?;
        // The broadcast layer (QUIC transport) takes `outbound` and feeds
        // `chat.accept_remote`; until it is wired in, local messages only reach local
        // subscribers and the queue is drained here so that it never fills.
        let mut outbound = outbound;
        tokio::spawn(async move { while outbound.recv().await.is_some() {} });
        if node.bootstrap().is_empty() {
            info!("no bootstrap peers: this node founds a new ring");
            // Founding a ring makes the node its only member at once.
            node.set_joined(true);
        } else {
            info!(peers = ?node.bootstrap(), "bootstrap peers configured (joining arrives with the QUIC transport)");
        }

        let (trigger, stop) = shutdown::channel();
        info!(control = %control.path().display(), listen = %listen_addr, "chatd is running");
        let server = control.serve(node, chat, &settings.access, stop);
        tokio::pin!(server);
        tokio::select! {
            sig = signal => {
                info!(signal = ?sig, "shutting down");
                trigger.fire();
            }
            result = &mut server => return result.map_err(Error::from),
        }
        match tokio::time::timeout(GRACE, &mut server).await {
            Ok(result) => result?,
            Err(_) => warn!("control calls still running after {GRACE:?}; closing them"),
        }
        drop(udp);
        info!("stopped");
        Ok(())
    }
    .instrument(span)
    .await
}
