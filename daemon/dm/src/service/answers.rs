//! The service's inputs from the network: the answers to its requests (by token) and the
//! direct bodies other nodes deliver.

use chat_overlay::records::{Record, RecordError};

use super::{Directory, Op, Out, Service};
use crate::delivery::{self, DirectBody, Route};
use crate::engine::Delivery;

/// How a put went, as the driver reports it: `Err(Some(_))` the holders refused it (their
/// reason), `Err(None)` no answer (or the node could not send it).
pub type PutResult = Result<(), Option<RecordError>>;

impl Service {
    /// The answer to a [`Out::Get`]: the records found, or `None` if the read failed.
    pub fn get_done(
        &mut self,
        token: u64,
        result: Option<Vec<Record>>,
        now_ms: u64,
        dir: &impl Directory,
    ) {
        match self.take_op(token) {
            Some(Op::Fetch { account, peer }) => {
                self.stats.bundle_fetches += 1;
                let bundle = result.and_then(|rs| delivery::bundle_in(rs, &peer));
                let found = bundle.is_some();
                if !found {
                    self.stats.bundles_missing += 1;
                }
                let Some(a) = self.accounts.get_mut(&account) else {
                    return;
                };
                let actions = a.engine.bundle_fetched(peer, bundle, now_ms);
                if found {
                    // Items may wait in the mailbox for this bundle: read it soon.
                    a.schedule.soon(now_ms);
                }
                self.act(account, actions, now_ms, dir);
            }
            Some(Op::Drain { account }) => {
                let Some(a) = self.accounts.get_mut(&account) else {
                    return;
                };
                a.busy = a.busy.saturating_sub(1);
                // A failed read: read again when the schedule says.
                let items = result.map(delivery::mailbox_items).unwrap_or_default();
                if !items.is_empty() {
                    self.stats.items_drained += items.len() as u64;
                    let actions = a.engine.receive(items, now_ms);
                    self.act(account, actions, now_ms, dir);
                }
                let Some(a) = self.accounts.get_mut(&account) else {
                    return;
                };
                if std::mem::take(&mut a.rotating) {
                    a.engine.rotate(now_ms);
                    a.schedule.republish();
                    a.busy += 1;
                    let bundle = a.engine.bundle();
                    self.commit(account, Vec::new());
                    self.publish(account, bundle);
                }
            }
            Some(other) => {
                self.ops.insert(token, (self.ticks, other));
            }
            None => {}
        }
    }

    /// The answer to a [`Out::Put`], [`Out::Publish`] or [`Out::Remove`].
    pub fn put_done(&mut self, token: u64, result: PutResult, now_ms: u64, dir: &impl Directory) {
        match self.take_op(token) {
            Some(Op::Publish { account }) => {
                if result.is_ok() {
                    self.stats.bundles_published += 1;
                }
                if let Some(a) = self.accounts.get_mut(&account) {
                    // Published again at the next tick if it failed.
                    a.schedule.published(result.is_ok());
                    a.busy = a.busy.saturating_sub(1);
                }
            }
            Some(Op::Item {
                account,
                to,
                seq,
                record,
            }) => {
                let ok = result.is_ok();
                if ok {
                    self.stats.items_put += 1;
                    self.poke(to, dir);
                } else {
                    self.stats.items_failed += 1;
                }
                if seq == 0 {
                    return;
                }
                let d = match result {
                    Ok(()) => Delivery::Stored(record),
                    Err(refused) => delivery::put_failed(refused.as_ref()),
                };
                let Some(a) = self.accounts.get_mut(&account) else {
                    return;
                };
                let actions = a.engine.outcome(to, seq, d, now_ms);
                self.act(account, actions, now_ms, dir);
            }
            Some(Op::Reput { account, to, seq }) => {
                if result != Err(Some(RecordError::Removed)) {
                    return;
                }
                self.stats.reputs_removed += 1;
                if let Some(a) = self.accounts.get_mut(&account) {
                    a.engine.item_removed(to, seq, now_ms);
                    self.commit(account, Vec::new());
                }
            }
            // The items stay until they expire; read again, they are known replays and are
            // removed then.
            Some(Op::Remove) if result.is_err() => self.stats.removals_failed += 1,
            Some(Op::Remove) => {}
            Some(other) => {
                self.ops.insert(token, (self.ticks, other));
            }
            None => {}
        }
    }

    /// The answer to a [`Out::Send`]: whether the node accepted the body.
    pub fn direct_done(&mut self, token: u64, ok: bool, now_ms: u64, dir: &impl Directory) {
        let Some(op) = self.take_op(token) else {
            return;
        };
        let Op::Direct { account, out } = op else {
            if !matches!(op, Op::Poke) {
                self.ops.insert(token, (self.ticks, op));
            }
            return;
        };
        let d = if ok {
            self.stats.direct_ok += 1;
            Delivery::Direct
        } else {
            self.stats.direct_failed += 1;
            if delivery::after_direct_failure(out.direct_only) == Route::Mailbox {
                self.put_item(account, out, now_ms);
                return;
            }
            delivery::direct_failed()
        };
        if out.seq == 0 {
            return;
        }
        let Some(a) = self.accounts.get_mut(&account) else {
            return;
        };
        let actions = a.engine.outcome(out.to, out.seq, d, now_ms);
        self.act(account, actions, now_ms, dir);
    }

    /// A direct body another node delivered: an item for a hosted account (taken by its
    /// engine) or a poke (its mailbox is read within a second). Anything else is counted as
    /// misaddressed.
    pub fn direct_received(&mut self, body: &[u8], now_ms: u64, dir: &impl Directory) {
        match delivery::parse_body(body) {
            Some(DirectBody::Poke(to)) if self.accounts.contains_key(&to) => {
                if let Some(a) = self.accounts.get_mut(&to) {
                    a.schedule.poked();
                }
            }
            Some(DirectBody::Item { account, value }) if self.accounts.contains_key(&account) => {
                let Some(a) = self.accounts.get_mut(&account) else {
                    return;
                };
                let actions = a.engine.receive(vec![(None, value.to_vec())], now_ms);
                self.act(account, actions, now_ms, dir);
            }
            _ => self.stats.misaddressed += 1,
        }
    }

    /// Tells account `to`'s node, if the directory shows it online, that its mailbox has a
    /// new item (hosted here: its read is made sooner at once). Best effort: the node reads
    /// it at start and periodically anyway.
    fn poke(&mut self, to: [u8; 32], dir: &impl Directory) {
        if let Some(a) = self.accounts.get_mut(&to) {
            a.schedule.poked();
            return;
        }
        let Some(online) = dir.online(&to) else {
            return;
        };
        self.stats.pokes += 1;
        let token = self.token(Op::Poke);
        self.out.push(Out::Send {
            token,
            node: online.node,
            body: delivery::poke_body(&to),
        });
    }
}
