//! The service's task: once the node is a ring member, tick the delivery service
//! ([`chat_dm::service::Service::tick`]) every second — it publishes each account's key
//! bundle (again after each rotation, every [`chat_dm::engine::ROTATE_MS`] of running time),
//! ticks the engines, reads the mailboxes when [`chat_dm::delivery::Schedule`] says (at
//! start, then after 2 s doubling up to every 120 s, and within a second of a poke: a
//! sender's node said it stored an item), and sends directly what waits for a recipient seen
//! online again ([`chat_dm::delivery::OnlineWatch`]); take what other nodes deliver
//! directly; prune messages past `chat.retention_days`; read the mailboxes again within 2 s
//! of a change of the node's predecessor (a merge into another ring, a neighbour gone). The simulator
//! (`tests/sim/src/dm_driver.rs`) runs the same service.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::Dm;
use crate::direct::Received;
use crate::offload::{Offload, Work};
use crate::records::unix_ms;
use chat_overlay::Peer;

/// How often the service is ticked.
const TICK: Duration = Duration::from_secs(1);

impl Dm {
    /// Runs the service until the process ends (the app supervises it; direct deliveries are
    /// taken by [`Dm::take_direct`], a supervised task of its own). Panics if one of the
    /// service's network requests panicked, so that the daemon stops.
    pub async fn run(
        self: Arc<Self>,
        mut joined: watch::Receiver<bool>,
        mut predecessor: watch::Receiver<Option<Peer>>,
    ) {
        while !*joined.borrow() {
            if joined.changed().await.is_err() {
                return;
            }
        }
        self.service().member(true);
        let mut prune_ms = 0;
        loop {
            let now = unix_ms();
            let dm = self.clone();
            let ticked = Offload::shared()
                .run_owed(Work::Private, move || {
                    let ticked = dm.step(true, |s, now, dir| s.tick(now, dir));
                    // After failed commits: does the store write again?
                    dm.probe_store();
                    ticked
                })
                .await;
            match ticked {
                Ok(Ok(())) => {}
                Ok(Err(e)) => warn!(error = %e, "private messages: a tick failed"),
                Err(e) => warn!(error = %e, "private messages: a tick was not run"),
            }
            if let Some(keep) = self.cfg.retention
                && now.saturating_sub(prune_ms) >= 60_000
            {
                prune_ms = now;
                let before = now.saturating_sub(keep.as_millis() as u64);
                let dm = self.clone();
                let pruned = Offload::shared()
                    .run_owed(Work::Private, move || dm.store().prune(before))
                    .await
                    .map_err(super::PrivateError::from)
                    .and_then(|r| r.map_err(super::PrivateError::from));
                match pruned {
                    Ok(0) => {}
                    Ok(n) => info!(
                        messages = n,
                        "deleted private messages older than chat.retention_days"
                    ),
                    Err(e) => warn!(error = %e, "pruning private messages failed"),
                }
            }
            self.actions.reap_now();
            if let Some(panic) = self.actions.take_panic() {
                std::panic::resume_unwind(panic);
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                // A new account: its bundle is published and its mailbox read at once.
                _ = self.wake.notified() => {}
                // The node's place in the ring changed (it joined the others' ring after
                // founding one of its own, a merge): read the mailboxes again soon.
                changed = predecessor.changed() => {
                    if changed.is_ok() {
                        debug!("predecessor changed: reading the mailboxes again soon");
                        self.service().ring_changed(unix_ms());
                    } else {
                        // The overlay is gone; the daemon is stopping.
                        tokio::time::sleep(TICK).await;
                    }
                }
            }
        }
    }

    /// Takes items other nodes delivered directly: `recipient account ‖ sealed value`.
    /// Takes what other nodes deliver directly, until the direct-delivery service drops its
    /// sender (never while the daemon runs: the app supervises this task, so its end stops
    /// the daemon instead of leaving the overlay acknowledging bodies nobody reads).
    pub async fn take_direct(self: Arc<Self>, mut rx: tokio::sync::mpsc::Receiver<Received>) {
        if crate::supervise::fault("direct-intake") {
            panic!("injected fault: the private direct deliveries' task panics");
        }
        while let Some((_from, body)) = rx.recv().await {
            let dm = self.clone();
            let taken = Offload::shared()
                .run_owed(Work::Private, move || {
                    dm.step(true, |s, now, dir| s.direct_received(&body, now, dir))
                })
                .await;
            if let Ok(Err(e)) | Err(e) = taken.map_err(super::PrivateError::from) {
                debug!(error = %e, "a direct private-message delivery was not taken");
            }
        }
    }
}
