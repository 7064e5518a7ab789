//! The service's task: per hosted account, publish the key bundle (and again after each
//! rotation, every [`chat_dm::engine::ROTATE_MS`] of running time), tick the engine every
//! second, and read the mailbox when [`chat_dm::delivery::Schedule`] says (at start, then
//! after 2 s doubling up to every 120 s, and within a second of a poke: a sender's node said
//! it stored an item); take what other nodes deliver directly; prune messages past
//! `chat.retention_days`.
//!
//! Each second it also looks at the presence of every account this node's accounts have
//! unacknowledged messages for ([`chat_dm::delivery::OnlineWatch`]): one seen online again
//! (back from offline, or announced anew from a restarted node) gets them all directly at once
//! ([`chat_dm::Engine::peer_online`]), instead of waiting for an acknowledgement's timeout or
//! its next mailbox read; one seen online for the first time (this node just started) gets at
//! once what waits in its mailbox. The simulator (`tests/sim/src/dm_driver.rs`) drives the
//! same schedule and watch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chat_dm::Engine;
use chat_dm::delivery::{self, DirectBody, OnlineWatch, Schedule};
use chat_overlay::records::Kind;
use ed25519_dalek::SigningKey;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::Dm;
use crate::direct::Received;
use crate::offload::{Offload, Work};
use crate::people::event::Presence;
use crate::records::unix_ms;

/// How often the engines are ticked.
const TICK: Duration = Duration::from_secs(1);
/// Lifetime of a published key bundle (renewed by the records layer while the node runs).
const BUNDLE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// What an account that messages wait for looked like when last seen online: when its
/// presence began and its node. A change means it came back.
type Seen = OnlineWatch<(u64, [u8; 32])>;

impl Dm {
    /// Runs the service until the process ends (the app supervises it; direct deliveries are
    /// taken by [`Dm::take_direct`], a supervised task of its own). Panics if one of the
    /// engines' network actions panicked, so that the daemon stops.
    pub async fn run(self: Arc<Self>, mut joined: watch::Receiver<bool>) {
        while !*joined.borrow() {
            if joined.changed().await.is_err() {
                return;
            }
        }
        let mut clocks: HashMap<[u8; 32], Schedule> = HashMap::new();
        let mut seen: HashMap<[u8; 32], Seen> = HashMap::new();
        let mut prune_ms = 0;
        loop {
            let now = unix_ms();
            for (_, signer) in self.people.hosted_keys() {
                let account = signer.verifying_key().to_bytes();
                let clock = clocks.entry(account).or_default();
                if self.take_poke(&account) {
                    clock.poked();
                }
                let due = clock.due(unix_ms());
                if due.drain {
                    self.drain(&signer).await;
                    clock.drained(unix_ms());
                }
                if due.publish {
                    clock.published(self.publish(&signer, false).await);
                }
                self.retry_online(&signer, seen.entry(account).or_default())
                    .await;
                let rotate = self
                    .act_owed(&signer, |e, now| (e.rotation_due(now), e.tick(now)))
                    .await
                    .unwrap_or(false);
                if rotate {
                    self.drain(&signer).await;
                    self.publish(&signer, true).await;
                }
            }
            self.flush_removals();
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
                _ = self.wake.notified() => {
                    // Something changed: drain everyone soon (a bundle arrived, a new account,
                    // a poke).
                    let now = unix_ms();
                    for c in clocks.values_mut() {
                        c.soon(now);
                    }
                }
            }
        }
    }

    /// Whether `account`'s node was poked since the last call.
    fn take_poke(&self, account: &[u8; 32]) -> bool {
        self.poked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(account)
    }

    /// Sends again, directly, what `signer`'s account has unacknowledged for each account
    /// seen online again since the last call (see the module's comment).
    async fn retry_online(self: &Arc<Self>, signer: &SigningKey, seen: &mut Seen) {
        let account = signer.verifying_key().to_bytes();
        // The engines' lock may be held by a call committing: read it on the blocking pool.
        let dm = self.clone();
        let (waiting, stored) = Offload::shared()
            .run_owed(Work::Private, move || {
                dm.engines()
                    .get(&account)
                    .map(delivery::waiting)
                    .unwrap_or_default()
            })
            .await
            .unwrap_or_default();
        let back = seen.look(&waiting, &stored, |to| match self.people.user(to) {
            Some((_, u)) if u.presence != Presence::Offline => Some((u.since_ms, u.node)),
            _ => None,
        });
        for to in back {
            debug!("a recipient of waiting private messages is online: sending them directly");
            let _ = self
                .act_owed(signer, move |e, now| ((), e.peer_online(to, now)))
                .await;
        }
    }

    /// Publishes `signer`'s key bundle (rotating the keys first if `rotate`); whether it was
    /// stored.
    async fn publish(self: &Arc<Self>, signer: &SigningKey, rotate: bool) -> bool {
        let Ok(bundle) = self
            .act_owed(signer, move |e: &mut Engine, now| {
                if rotate {
                    e.rotate(now);
                }
                (e.bundle(), Vec::new())
            })
            .await
        else {
            return false;
        };
        let account = signer.verifying_key().to_bytes();
        match self
            .records
            .put_as(
                signer,
                Kind::Keys,
                account.to_vec(),
                bundle.encode(),
                BUNDLE_TTL,
                None,
            )
            .await
        {
            Ok(_) => {
                debug!(rotated = rotate, "published the private-message key bundle");
                true
            }
            Err(e) => {
                warn!(error = %e, "could not publish the private-message key bundle; retrying");
                false
            }
        }
    }

    /// Reads `signer`'s mailbox and hands the items to its engine.
    async fn drain(self: &Arc<Self>, signer: &SigningKey) {
        let account = signer.verifying_key().to_bytes();
        let items = match self.records.get(Kind::Mailbox, account.to_vec()).await {
            Ok(items) => items,
            Err(e) => {
                debug!(error = %e, "reading the mailbox failed");
                return;
            }
        };
        let items = delivery::mailbox_items(items);
        if items.is_empty() {
            return;
        }
        debug!(items = items.len(), "drained the mailbox");
        let _ = self
            .act_owed(signer, move |e, now| ((), e.receive(items, now)))
            .await;
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
            let hosts = |to: &[u8; 32]| {
                self.people
                    .hosted_keys()
                    .into_iter()
                    .find(|(_, k)| k.verifying_key().to_bytes() == *to)
            };
            match delivery::parse_body(&body) {
                None => {}
                // A sender's node stored an item in this account's mailbox.
                Some(DirectBody::Poke(to)) if hosts(&to).is_some() => {
                    self.poked
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(to);
                    self.wake.notify_one();
                }
                Some(DirectBody::Poke(_)) => {}
                Some(DirectBody::Item { account, value }) => {
                    let Some((_, signer)) = hosts(&account) else {
                        debug!("a direct item for an account this node does not host");
                        continue;
                    };
                    let value = value.to_vec();
                    let _ = self
                        .act_owed(&signer, move |e, now| {
                            ((), e.receive(vec![(None, value)], now))
                        })
                        .await;
                }
            }
        }
    }
}
