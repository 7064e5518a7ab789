//! Carrying out what the engines ask of the network, each in a task of its own (at most
//! [`super::actions::MAX_RUNNING`] at once, the rest queued, bounded): fetching a
//! key bundle, delivering an item (straight to the recipient's node when the directory says
//! it is online, else into its mailbox), putting a pending item again, removing drained items.
//! Every outcome goes back to the engine through [`Dm::act`].

use std::sync::Arc;
use std::time::Duration;

use chat_dm::delivery::{self, Route};
use chat_dm::{Action, Delivery};
use chat_overlay::NodeId;
use chat_overlay::records::{Kind, MAX_REMOVED, RecordError};
use ed25519_dalek::SigningKey;
use tracing::debug;

use super::Dm;
use crate::people::event::Presence;
use crate::records::{RecordsError, unix_ms};

/// How long removals of drained items live at their holders: longer than any item.
const REMOVAL_TTL: Duration = Duration::from_secs(8 * 24 * 3600);

impl Dm {
    /// Starts the network actions of `signer`'s engine; removals wait for
    /// [`Dm::flush_removals`].
    pub(super) fn execute(self: &Arc<Self>, signer: &SigningKey, actions: Vec<Action>) {
        for a in actions {
            if let Action::Remove(hashes) = a {
                let account = signer.verifying_key().to_bytes();
                let mut removals = self.removals.lock().unwrap_or_else(|p| p.into_inner());
                let entry = removals
                    .entry(account)
                    .or_insert_with(|| (signer.clone(), Vec::new()));
                entry.1.extend(hashes);
                continue;
            }
            let dm = self.clone();
            let signer = signer.clone();
            self.actions
                .run(async move { dm.carry_out(&signer, a).await });
        }
    }

    /// Removes what each account took from its mailbox since the last call: one removal
    /// record per 128 items.
    pub(super) fn flush_removals(self: &Arc<Self>) {
        let all = std::mem::take(&mut *self.removals.lock().unwrap_or_else(|p| p.into_inner()));
        for (_, (signer, mut hashes)) in all {
            hashes.sort_unstable();
            hashes.dedup();
            let dm = self.clone();
            self.actions
                .run(async move { dm.carry_out(&signer, Action::Remove(hashes)).await });
        }
    }

    async fn carry_out(self: Arc<Self>, signer: &SigningKey, a: Action) {
        match a {
            Action::FetchBundle { peer } => {
                let bundle = match self.records.get(Kind::Keys, peer.to_vec()).await {
                    Ok(recs) => delivery::bundle_in(recs, &peer),
                    Err(e) => {
                        debug!(error = %e, "fetching a key bundle failed");
                        None
                    }
                };
                let found = bundle.is_some();
                if !found {
                    debug!("no key bundle found for a peer (yet); the engine asks again");
                }
                let _ = self
                    .act_owed(signer, move |e, now| {
                        ((), e.bundle_fetched(peer, bundle, now))
                    })
                    .await;
                if found {
                    // Items that waited in the mailbox for this bundle.
                    self.wake.notify_one();
                }
            }
            Action::Send {
                to,
                seq,
                value,
                mailbox,
                direct_only,
                expires_ms,
            } => {
                let outcome = self
                    .deliver(to, value, mailbox, direct_only, expires_ms)
                    .await;
                if matches!(outcome, Delivery::Stored(_)) {
                    self.poke(to).await;
                }
                if seq > 0 {
                    let _ = self
                        .act_owed(signer, move |e, now| ((), e.outcome(to, seq, outcome, now)))
                        .await;
                }
            }
            Action::Reput { to, seq, record } => {
                if let Err(RecordsError::Refused(RecordError::Removed)) =
                    self.records.put_record(record).await
                {
                    let _ = self
                        .act_owed(signer, move |e, now| {
                            e.item_removed(to, seq, now);
                            ((), Vec::new())
                        })
                        .await;
                }
            }
            Action::Remove(hashes) => {
                for chunk in hashes.chunks(MAX_REMOVED) {
                    if let Err(e) = self
                        .records
                        .remove_items(signer, chunk.to_vec(), REMOVAL_TTL)
                        .await
                    {
                        // The items stay until they expire; drained again, they are known
                        // replays and are removed then.
                        debug!(error = %e, items = chunk.len(), "removing drained items failed");
                    }
                }
            }
            Action::Show(_) | Action::Status { .. } | Action::Group(_) | Action::Change(_) => {}
        }
    }

    /// Tells account `to`'s node, if the directory shows it online, that its mailbox has a new
    /// item: a direct body of the account alone (32 bytes), which makes that node read the
    /// mailbox soon (`run.rs`). Best effort: the node reads it at start and periodically anyway.
    async fn poke(&self, to: [u8; 32]) {
        let Some(node) = self.online_node(&to) else {
            return;
        };
        if let Err(e) = self
            .direct
            .send(NodeId(node), delivery::poke_body(&to))
            .await
        {
            debug!(error = %e, "telling a recipient's node of its mailbox item failed");
        }
    }

    /// The node of account `to` if the directory shows it online.
    fn online_node(&self, to: &[u8; 32]) -> Option<[u8; 32]> {
        self.people
            .user(to)
            .filter(|(_, u)| u.presence != Presence::Offline)
            .map(|(_, u)| u.node)
    }

    /// Delivers `value` to account `to` the way [`delivery::route`] says: directly if its
    /// node is online (and `mailbox` is not asked for), else as a mailbox item; never stores
    /// it again when `direct_only` (the item is in the mailbox already).
    async fn deliver(
        &self,
        to: [u8; 32],
        value: Vec<u8>,
        mailbox: bool,
        direct_only: bool,
        expires_ms: u64,
    ) -> Delivery {
        let node = self.online_node(&to);
        let mut route = delivery::route(mailbox, direct_only, node.is_some());
        if route == Route::Direct
            && let Some(node) = node
        {
            match self
                .direct
                .send(NodeId(node), delivery::item_body(&to, &value))
                .await
            {
                Ok(()) => return Delivery::Direct,
                Err(e) => {
                    debug!(error = %e, stored = direct_only, "direct delivery failed");
                    route = delivery::after_direct_failure(direct_only);
                }
            }
        }
        if route != Route::Mailbox {
            return delivery::direct_failed();
        }
        let now = unix_ms();
        let record = chat_dm::item_record(&to, value, now, delivery::item_expiry(now, expires_ms));
        match self.records.put_record(record.clone()).await {
            Ok(_) => Delivery::Stored(record),
            Err(RecordsError::Refused(e)) => {
                debug!(error = %e, "a mailbox item was refused");
                delivery::put_failed(Some(&e))
            }
            Err(e) => {
                debug!(error = %e, "putting a mailbox item failed");
                delivery::put_failed(None)
            }
        }
    }
}
