//! Running the node: the startup sequence and the shutdown path.
//!
//! Startup: install signal handlers → lock and open the data directory → load or create the
//! node key → bind the control socket (refusing if another chatd serves it) → bind the UDP
//! listen address → serve. The UDP socket is bound to prove the address is usable and to report
//! the real port (`--listen 127.0.0.1:0` picks a free one); nothing reads it yet — the QUIC
//! transport of a later issue takes it over.
//!
//! Readiness: [`Node::set_joined`] drives READY=1 (see [`crate::notify`]). Until the QUIC driver
//! exists, the one place that sets it is the "founds a new ring" branch below; the driver will
//! call it on `Event::Joined` instead. STATUS= numbers come from the `ring_counts` closure below.
//!
//! SIGHUP re-reads the configuration and applies what can change at run time ([`Reloader`]).
//!
//! Shutdown on SIGINT/SIGTERM: STOPPING=1, stop accepting, give in-flight calls [`GRACE`] to
//! finish, remove the socket, return `Ok` (exit 0). The whole path is bounded well under two
//! seconds.

use std::net::UdpSocket;
use std::sync::Arc;
use std::time::Duration;

use tracing::{Instrument, error, info, info_span, warn};

use crate::config::Settings;
use crate::control::ControlSocket;
use crate::error::Error;
use crate::identity::{Identity, Origin};
use crate::node::Node;
use crate::notify::{Notifier, RingCounts};
use crate::reload::Reloader;
use crate::{paths, shutdown};

/// How long in-flight control calls may run after a shutdown signal.
pub const GRACE: Duration = Duration::from_millis(1000);

/// Runs the node until SIGINT or SIGTERM.
pub async fn run(settings: Settings, reloader: Reloader, notifier: Notifier) -> Result<(), Error> {
    let signal = shutdown::signal().map_err(Error::Signals)?;
    let mut hangups = crate::reload::hangups().map_err(Error::Signals)?;
    let mut reloader = reloader;
    let _lock = paths::lock_data_dir(&settings.data_dir)?;
    let (identity, origin) = Identity::load_or_create(&settings.data_dir)?;
    let span = info_span!("node", id = %identity.id().short());
    async move {
        match origin {
            Origin::Created => info!(node_id = %identity.id(), data_dir = %settings.data_dir.display(), "created a new node identity"),
            Origin::Loaded => info!(node_id = %identity.id(), data_dir = %settings.data_dir.display(), "loaded node identity"),
        }
        let control = ControlSocket::bind(&settings.control_socket).await?;
        let udp = UdpSocket::bind(settings.listen)
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
            // FOUNDING A RING — the only call that makes the node ready today. The QUIC driver
            // will make this call itself once the overlay reports `Event::Joined`.
            node.set_joined(true);
        } else {
            info!(peers = ?node.bootstrap(), "bootstrap peers configured (joining arrives with the QUIC transport)");
        }

        // STATUS= numbers. PLACEHOLDER until the QUIC driver: a founded ring of one, no peers.
        // The driver replaces this closure with its ring-size estimate and connection count.
        let ring_counts = {
            let node = node.clone();
            move || RingCounts {
                ring_size: u64::from(node.is_joined()),
                peers: 0,
            }
        };
        let notifier = Arc::new(notifier);
        let notify_task = tokio::spawn({
            let (notifier, joined, bootstrap) =
                (notifier.clone(), node.subscribe_joined(), node.bootstrap().len());
            async move { notifier.run(joined, ring_counts, bootstrap).await }
        });

        let (trigger, stop) = shutdown::channel();
        info!(control = %control.path().display(), listen = %listen_addr, "chatd is running");
        let server = control.serve(node, stop);
        tokio::pin!(server);
        tokio::pin!(signal);
        loop {
            tokio::select! {
                sig = &mut signal => {
                    notifier.stopping();
                    info!(signal = ?sig, "shutting down");
                    trigger.fire();
                    break;
                }
                Some(()) = hangups.recv() => reload(&mut reloader, &notifier),
                result = &mut server => {
                    notify_task.abort();
                    return result.map_err(Error::from);
                }
            }
        }
        match tokio::time::timeout(GRACE, &mut server).await {
            Ok(result) => result?,
            Err(_) => warn!("control calls still running after {GRACE:?}; closing them"),
        }
        drop(udp);
        notify_task.abort();
        info!("stopped");
        Ok(())
    }
    .instrument(span)
    .await
}

/// Handles one SIGHUP: reload, log what changed, tell systemd.
fn reload(reloader: &mut Reloader, notifier: &Notifier) {
    notifier.reloading();
    info!("SIGHUP: reloading the configuration");
    match reloader.reload() {
        Ok(outcome) => {
            for (key, old, new) in &outcome.applied {
                info!(key, old = %old, new = %new, "reloaded: {key} is now {new:?} (was {old:?})");
            }
            for key in &outcome.needs_restart {
                warn!(
                    key,
                    "{key} changed in the configuration but needs a restart to apply; keeping the running value"
                );
            }
            if outcome.applied.is_empty() && outcome.needs_restart.is_empty() {
                info!("reloaded: nothing changed");
            }
            notifier.reloaded();
        }
        Err(e) => {
            error!("reload refused, keeping the running configuration: {e}");
            notifier.reloaded();
        }
    }
}
