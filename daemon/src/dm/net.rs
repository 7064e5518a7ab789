//! Carrying out the network requests of the delivery service ([`chat_dm::service`]), each in
//! a task of its own (at most [`super::actions::MAX_RUNNING`] at once, the rest queued,
//! bounded): records reads and puts, the accounts' bundles and removals (signed by the
//! records layer, which renews a bundle while the node runs), direct sends. Every answer
//! goes back to the service by its token, on the blocking pool ([`Dm::step`]). Which request
//! an engine's action becomes, and what an answer means, is the service's (the simulator
//! runs the same); only the I/O is here.

use std::sync::Arc;
use std::time::Duration;

use chat_dm::service::{Directory, Out, PutResult};
use chat_overlay::NodeId;
use chat_overlay::records::Record;
use tracing::debug;

use super::Dm;
use crate::offload::{Offload, Work};
use crate::people::People;
use crate::people::event::Presence;
use crate::records::RecordsError;

/// How long removals of drained items live at their holders: longer than any item.
const REMOVAL_TTL: Duration = Duration::from_secs(8 * 24 * 3600);
/// Lifetime of a published key bundle (renewed by the records layer while the node runs).
const BUNDLE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The people directory as the delivery service sees it: an account is online while its
/// presence is not offline; its presence began at `since_ms`, on `node`.
pub(crate) struct Online<'a>(pub &'a People);

impl Directory for Online<'_> {
    fn online(&self, account: &[u8; 32]) -> Option<chat_dm::service::Online> {
        match self.0.user(account) {
            Some((_, u)) if u.presence != Presence::Offline => Some(chat_dm::service::Online {
                node: u.node,
                since: u.since_ms,
            }),
            _ => None,
        }
    }
}

/// What a request's answer is, for the service.
enum Answer {
    Get(Option<Vec<Record>>),
    Put(PutResult),
    Direct(bool),
}

/// A records layer's put outcome as the service reads it.
fn put_result<T>(r: Result<T, RecordsError>) -> PutResult {
    match r {
        Ok(_) => Ok(()),
        Err(RecordsError::Refused(e)) => {
            debug!(error = %e, "a private-message put was refused");
            Err(Some(e))
        }
        Err(e) => {
            debug!(error = %e, "a private-message put failed");
            Err(None)
        }
    }
}

impl Dm {
    /// Starts the service's network requests (commits are written already).
    pub(super) fn execute(self: &Arc<Self>, requests: Vec<Out>) {
        for o in requests {
            if matches!(o, Out::Commit(_)) {
                continue;
            }
            let dm = self.clone();
            self.actions.run(async move { dm.carry_out(o).await });
        }
    }

    async fn carry_out(self: Arc<Self>, o: Out) {
        let (token, answer) = match o {
            Out::Commit(_) => return,
            Out::Get { token, kind, key } => {
                let r = match self.records.get(kind, key).await {
                    Ok(rs) => {
                        debug!(?kind, records = rs.len(), "a private-message read answered");
                        Some(rs)
                    }
                    Err(e) => {
                        debug!(error = %e, "a private-message read failed");
                        None
                    }
                };
                (token, Answer::Get(r))
            }
            Out::Put { token, record, .. } => (
                token,
                Answer::Put(put_result(self.records.put_record(record).await)),
            ),
            Out::Publish {
                token,
                account,
                bundle,
            } => {
                let r = match self.signer(&account) {
                    Some(signer) => {
                        self.records
                            .put_as(
                                &signer,
                                chat_overlay::records::Kind::Keys,
                                account.to_vec(),
                                bundle.encode(),
                                BUNDLE_TTL,
                                None,
                            )
                            .await
                    }
                    None => Err(RecordsError::Busy),
                };
                match &r {
                    Ok(_) => debug!("published the private-message key bundle"),
                    Err(e) => tracing::warn!(
                        error = %e,
                        "could not publish the private-message key bundle; retrying"
                    ),
                }
                (token, Answer::Put(put_result(r)))
            }
            Out::Remove {
                token,
                account,
                hashes,
            } => {
                let n = hashes.len();
                let r = match self.signer(&account) {
                    Some(signer) => {
                        self.records
                            .remove_items(&signer, hashes, REMOVAL_TTL)
                            .await
                    }
                    None => Err(RecordsError::Busy),
                };
                if let Err(e) = &r {
                    // The items stay until they expire; drained again, they are known
                    // replays and are removed then.
                    debug!(error = %e, items = n, "removing drained items failed");
                }
                (token, Answer::Put(put_result(r)))
            }
            Out::Send { token, node, body } => {
                let ok = match self.direct.send(NodeId(node), body).await {
                    Ok(()) => true,
                    Err(e) => {
                        debug!(error = %e, "a private-message direct send failed");
                        false
                    }
                };
                (token, Answer::Direct(ok))
            }
        };
        let dm = self.clone();
        let fed = Offload::shared()
            .run_owed(Work::Private, move || {
                dm.step(false, |s, now, dir| match answer {
                    Answer::Get(r) => s.get_done(token, r, now, dir),
                    Answer::Put(r) => s.put_done(token, r, now, dir),
                    Answer::Direct(ok) => s.direct_done(token, ok, now, dir),
                })
            })
            .await;
        match fed {
            Ok(Ok(())) => {}
            Ok(Err(e)) => debug!(error = %e, "an answer to the private-message service failed"),
            Err(e) => debug!(error = %e, "an answer to the private-message service was not taken"),
        }
    }

    /// The key of hosted account `account`.
    pub(super) fn signer(&self, account: &[u8; 32]) -> Option<ed25519_dalek::SigningKey> {
        self.signers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(account)
            .cloned()
    }
}
