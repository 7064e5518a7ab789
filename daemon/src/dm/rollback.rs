//! A commit the store cannot write (a full disk, an I/O error): nothing of it counts as done.
//!
//! The engines whose changes were not written go back to the state the store holds
//! ([`chat_dm::service::Service::restore`]): what the call took — a message received
//! directly or read from the mailbox — is taken again when it comes again, and no
//! acknowledgement, removal or status of it went out (the requests after the failed commit
//! are handed back, [`chat_dm::service::Service::dropped`]). Meanwhile the overlay answers
//! direct deliveries to this node with a refusal for [`REFUSE_FOR`] (renewed by each
//! failure, lifted by the next commit written or by a probe of the store that writes, made
//! once a tick while commits fail — then every mailbox is read at once), so senders put their
//! items in the mailbox at once instead of waiting for an acknowledgement that cannot come.
//! The first failure after a success is logged as a warning, the return of space as an info
//! line; every failure is counted (`commit_failed` in the drops).

use std::sync::atomic::Ordering;
use std::time::Duration;

use chat_dm::service::{Out, Service};
use tracing::{debug, info, warn};

use super::{Dm, PrivateError};
use crate::records::unix_ms;

/// How long direct deliveries are refused after a failed commit (each failure renews it).
pub const REFUSE_FOR: Duration = Duration::from_secs(10);
/// The refusal's words, as the sender's node sees them.
pub const REFUSAL: &str = "the recipient's node cannot store private messages now";

impl Dm {
    /// The commits of `unwritten` accounts failed with `error` (the first of them) and
    /// `dropped` requests were not carried out: the service forgets those requests, each
    /// such engine goes back to its stored state, and direct deliveries are refused for a
    /// while.
    pub(super) fn roll_back(
        &self,
        service: &mut Service,
        mut unwritten: Vec<[u8; 32]>,
        dropped: Vec<Out>,
        error: &PrivateError,
    ) {
        let n = self.commit_failures.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.failing.swap(true, Ordering::Relaxed) {
            warn!(
                error = %error,
                failures = n,
                "private messages: the store could not write; nothing of it is acknowledged, \
                 and direct deliveries to this node are refused until it can (senders use \
                 the mailbox)"
            );
        } else {
            debug!(error = %error, failures = n, "private messages: the store still cannot write");
        }
        self.direct.refuse(REFUSE_FOR, REFUSAL);
        service.dropped(dropped);
        unwritten.sort_unstable();
        unwritten.dedup();
        let now = unix_ms();
        for account in unwritten {
            let Some(signer) = self.signer(&account) else {
                // Not loaded through `Dm::load` (cannot happen): the engine goes rather than
                // run on unwritten state.
                service.remove(&account);
                continue;
            };
            match self.load_engine(&signer, now, false) {
                Ok(engine) => {
                    self.blocked
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(account, engine.blocked().copied().collect());
                    service.restore(engine, now);
                }
                Err(e) => {
                    // The store cannot even be read: the engine goes, and is loaded again
                    // at the next call that needs it.
                    warn!(error = %e, "private messages: the stored state could not be read");
                    service.remove(&account);
                }
            }
        }
    }

    /// While commits fail, once a tick: whether the store writes again (a small write,
    /// [`super::store::Store::probe`]); if it does, direct deliveries are accepted again and
    /// every mailbox is read at once ([`Service::store_back`]).
    pub(super) fn probe_store(&self) {
        if !self.failing.load(Ordering::Relaxed) {
            return;
        }
        let writes = self.store().probe().is_ok();
        if writes {
            self.store_writes();
            self.service().store_back(unix_ms());
        }
    }

    /// A commit was written: if commits failed before, space is back.
    pub(super) fn store_writes(&self) {
        if self.failing.swap(false, Ordering::Relaxed) {
            info!("private messages: the store writes again; direct deliveries accepted");
            self.direct.accept();
        }
    }

    /// Commits the store could not write, since start.
    pub fn commit_failures(&self) -> u64 {
        self.commit_failures.load(Ordering::Relaxed)
    }
}
