//! The service's task: per hosted account, publish the key bundle (and again after each
//! rotation, every [`chat_dm::engine::ROTATE_MS`] of running time), tick the engine every
//! second, drain the mailbox at start and every [`DRAIN`]; take what other nodes deliver
//! directly; prune messages past `chat.retention_days`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chat_dm::Engine;
use chat_overlay::records::{Kind, Value};
use ed25519_dalek::SigningKey;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::Dm;
use crate::direct::Received;
use crate::records::unix_ms;

/// How often each account's mailbox is read.
pub const DRAIN: Duration = Duration::from_secs(120);
/// How often the engines are ticked.
const TICK: Duration = Duration::from_secs(1);
/// Lifetime of a published key bundle (renewed by the records layer while the node runs).
const BUNDLE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

#[derive(Default)]
struct AccountClock {
    published: bool,
    drained_ms: u64,
}

impl Dm {
    /// Runs the service until the process ends.
    pub async fn run(
        self: Arc<Self>,
        mut joined: watch::Receiver<bool>,
        received: Option<tokio::sync::mpsc::Receiver<Received>>,
    ) {
        // Direct deliveries are taken by a task of their own.
        if let Some(rx) = received {
            tokio::spawn(self.clone().take_direct(rx));
        }
        while !*joined.borrow() {
            if joined.changed().await.is_err() {
                return;
            }
        }
        let mut clocks: HashMap<[u8; 32], AccountClock> = HashMap::new();
        let mut prune_ms = 0;
        loop {
            let now = unix_ms();
            for (_, signer) in self.people.hosted_keys() {
                let account = signer.verifying_key().to_bytes();
                let clock = clocks.entry(account).or_default();
                if !clock.published {
                    // Drain before publishing: items sealed to the keys of before a rotation
                    // are read while those keys are still held.
                    self.drain(&signer).await;
                    clock.drained_ms = unix_ms();
                    clock.published = self.publish(&signer, false).await;
                } else if unix_ms().saturating_sub(clock.drained_ms) >= DRAIN.as_millis() as u64 {
                    self.drain(&signer).await;
                    clock.drained_ms = unix_ms();
                }
                let rotate = self
                    .act(&signer, |e, now| (e.rotation_due(now), e.tick(now)))
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
                match self.store().prune(before) {
                    Ok(0) => {}
                    Ok(n) => info!(
                        messages = n,
                        "deleted private messages older than chat.retention_days"
                    ),
                    Err(e) => warn!(error = %e, "pruning private messages failed"),
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = self.wake.notified() => {
                    // Something changed: drain everyone soon (a bundle arrived, a new account).
                    for c in clocks.values_mut() {
                        c.drained_ms = c.drained_ms.min(unix_ms().saturating_sub(DRAIN.as_millis() as u64 - 2_000));
                    }
                }
            }
        }
    }

    /// Publishes `signer`'s key bundle (rotating the keys first if `rotate`); whether it was
    /// stored.
    async fn publish(self: &Arc<Self>, signer: &SigningKey, rotate: bool) -> bool {
        let Ok(bundle) = self.act(signer, |e: &mut Engine, now| {
            if rotate {
                e.rotate(now);
            }
            (e.bundle(), Vec::new())
        }) else {
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
        let items: Vec<chat_dm::Item> = items
            .into_iter()
            .filter_map(|r| match &r.value {
                Value::Data(v) => Some((Some(r.hash()), v.clone())),
                _ => None,
            })
            .collect();
        if items.is_empty() {
            return;
        }
        debug!(items = items.len(), "drained the mailbox");
        let _ = self.act(signer, |e, now| ((), e.receive(items, now)));
    }

    /// Takes items other nodes delivered directly: `recipient account ‖ sealed value`.
    async fn take_direct(self: Arc<Self>, mut rx: tokio::sync::mpsc::Receiver<Received>) {
        while let Some((_from, body)) = rx.recv().await {
            if body.len() <= 32 {
                continue;
            }
            let mut to = [0u8; 32];
            to.copy_from_slice(&body[..32]);
            let Some((_, signer)) = self
                .people
                .hosted_keys()
                .into_iter()
                .find(|(_, k)| k.verifying_key().to_bytes() == to)
            else {
                debug!("a direct item for an account this node does not host");
                continue;
            };
            let value = body[32..].to_vec();
            let _ = self.act(&signer, |e, now| ((), e.receive(vec![(None, value)], now)));
        }
    }
}
