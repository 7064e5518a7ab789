//! The private-message delivery service of one node, without I/O: the hosted accounts'
//! [`Engine`]s, each with its [`Schedule`] (publishing the key bundle, reading the mailbox)
//! and its [`OnlineWatch`], and what their [`Action`]s become on the network. The daemon
//! (`daemon/src/dm/`) and the simulator (`tests/sim/src/dm_driver.rs`) run this same code;
//! they only carry out its [`Out`] requests (records reads and puts, direct sends, commits to
//! disk) and hand back the answers by token.
//!
//! Inputs, each with the time (Unix ms) and, where a route is chosen, the node's view of who
//! is online ([`Directory`]):
//! - [`Service::tick`] (every second): each account looks at the recipients of its waiting
//!   messages (one seen online again gets them directly, [`Engine::peer_online`]), ticks its
//!   engine (attempts, re-puts, bundle fetches, expiries), rotates its keys when due, and
//!   reads its mailbox and publishes its bundle when its schedule says (only while the node
//!   is a member, [`Service::member`]); the items accounts took from their mailboxes since
//!   the last tick are removed together (one removal per [`MAX_REMOVED`] hashes).
//! - [`Service::call`]: the local user's request on one engine (send, edit, group, block…).
//! - [`Service::direct_received`]: a direct body (`account ‖ sealed`, or a poke).
//! - [`Service::get_done`], [`Service::put_done`], [`Service::direct_done`]: answers.
//!
//! What each [`Action`] becomes: `FetchBundle` a read of the peer's `Keys` record, checked
//! ([`delivery::bundle_in`]) and reported ([`Engine::bundle_fetched`]; a bundle found makes
//! the account read its mailbox soon); `Send` a direct send to the recipient's node when the
//! directory shows it online ([`delivery::route`]), the mailbox item ([`crate::item_record`])
//! when not or when that fails (never again for an item stored already, `direct_only`), then
//! [`Engine::outcome`] (not for acknowledgements, `seq` 0); a stored item pokes its recipient's
//! node (a direct body of the account alone) when the directory shows it online; `Reput` the
//! same record put again (refused as removed: [`Engine::item_removed`]); `Remove` batched
//! until the tick; `Show`, `Status`, `Change`, `Group` go to the driver in the
//! [`Out::Commit`] that precedes every network request of the same call.
//!
//! **Persist before acting**: every engine call's changes ([`Engine::take_dirty`]) come out
//! as one [`Out::Commit`] before the requests of that call, so a crash loses nothing the
//! network saw; the driver must write it before carrying out what follows it.
//!
//! **Nothing taken without a commit**: when the driver cannot write a commit (a full disk),
//! it carries out nothing that follows it (handing those requests back,
//! [`Service::dropped`]) and puts the engines whose commits were not written back to their
//! stored state ([`Service::restore`]). So an item is acknowledged to its sender and removed
//! from the mailbox only after the recipient's node wrote it; one the node could not write
//! is taken again when it comes again, once space returns.
//!
//! **Determinism**: accounts go in key order and one call's actions in a fixed order (the
//! engines' hash maps give them in any order), so the requests depend only on the inputs.

mod answers;
pub use answers::PutResult;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use chat_overlay::records::{Hash, Kind, MAX_REMOVED, Record};

use crate::bundle::Bundle;
use crate::delivery::{self, OnlineWatch, Route, Schedule};
use crate::engine::{Action, Engine, Outgoing};

/// Ticks (seconds) after which an unanswered request is forgotten: longer than any answer
/// takes (the daemon's records calls give up after 120 s, its direct sends after 30 s).
pub const GIVE_UP_TICKS: u64 = 600;

/// What the directory shows of an online account: its node, and what its presence looks
/// like (when it began, or how many times its node came up): a change means it came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Online {
    /// The node the account is on (where direct bodies go).
    pub node: [u8; 32],
    /// When the presence began (a restarted node announces itself anew).
    pub since: u64,
}

/// The node's view of who is online (the daemon's people directory; the simulator's members).
pub trait Directory {
    /// `account`'s presence if the directory shows it online.
    fn online(&self, account: &[u8; 32]) -> Option<Online>;

    /// The node a send to `account` goes to directly, if any: by default its node while
    /// online. (The simulator names every account's node, as a directory that has not yet
    /// heard of a departure does.)
    fn route_to(&self, account: &[u8; 32]) -> Option<[u8; 32]> {
        self.online(account).map(|o| o.node)
    }
}

/// What the driver is to do, in order.
#[derive(Debug)]
pub enum Out {
    /// Write what `account`'s engine changed, and the local effects of the call (`Show`,
    /// `Status`, `Change`, `Group`, in order), before carrying out any request after it.
    Commit(Commit),
    /// Read the records of `kind` and `key`; answer with [`Service::get_done`].
    Get {
        token: u64,
        kind: Kind,
        key: Vec<u8>,
    },
    /// Put `record`, signed elsewhere (a mailbox item, `own: false`: the node does not renew
    /// it); answer with [`Service::put_done`]. `item`: the recipient and sequence number of a
    /// message's item (`seq` 0: an acknowledgement), `None` for a re-put.
    Put {
        token: u64,
        record: Record,
        item: Option<([u8; 32], u64)>,
    },
    /// Sign `account`'s key bundle as its `Keys` record and put it as the node's own
    /// (renewed); answer with [`Service::put_done`].
    Publish {
        token: u64,
        account: [u8; 32],
        bundle: Bundle,
    },
    /// Remove `hashes` (at most [`MAX_REMOVED`]) from `account`'s mailbox: a removal record
    /// signed by the account, living longer than any item; answer with [`Service::put_done`].
    Remove {
        token: u64,
        account: [u8; 32],
        hashes: Vec<Hash>,
    },
    /// Deliver `body` straight to `node`; answer with [`Service::direct_done`] (a poke's
    /// answer is only counted).
    Send {
        token: u64,
        node: [u8; 32],
        body: Vec<u8>,
    },
}

/// One engine call's changes, to write before anything of the call goes out.
#[derive(Debug, Default)]
pub struct Commit {
    /// The account.
    pub account: [u8; 32],
    /// The engine's core, if it changed ([`Engine::export_core`]).
    pub core: Option<Vec<u8>>,
    /// Peers that changed: their state, or `None` when forgotten ([`Engine::export_peer`]).
    pub peers: Vec<([u8; 32], Option<Vec<u8>>)>,
    /// What to show and record: `Show`, `Status`, `Change`, `Group`, in the engine's order.
    pub local: Vec<Action>,
}

impl Commit {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.core.is_none() && self.peers.is_empty() && self.local.is_empty()
    }
}

/// The service's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bundles published (puts accepted).
    pub bundles_published: u64,
    /// Bundle fetches answered, and of those the ones that found no valid bundle.
    pub bundle_fetches: u64,
    pub bundles_missing: u64,
    /// Direct sends of items accepted by the recipient's node, and failed.
    pub direct_ok: u64,
    pub direct_failed: u64,
    /// Mailbox items put (messages and acks), accepted and refused or failed.
    pub items_put: u64,
    pub items_failed: u64,
    /// Re-puts of pending items, and of those refused because the recipient removed the item.
    pub reputs: u64,
    pub reputs_removed: u64,
    /// Mailbox reads started, and the items they handed to the engines.
    pub drains: u64,
    pub items_drained: u64,
    /// Removal records put, and of those refused or failed.
    pub removals: u64,
    pub removals_failed: u64,
    /// Direct bodies received that named an account not hosted here, or were too short.
    pub misaddressed: u64,
    /// Pokes sent after a stored item; direct retries to recipients seen online again.
    pub pokes: u64,
    pub online_retries: u64,
    /// Engines put back to their last written state after the driver could not write a
    /// commit ([`Service::restore`]), and requests the driver dropped after such a failure
    /// ([`Service::dropped`]).
    pub restores: u64,
    pub dropped: u64,
}

impl Stats {
    /// Adds `o`'s counters to these.
    pub fn add(&mut self, o: &Stats) {
        self.bundles_published += o.bundles_published;
        self.bundle_fetches += o.bundle_fetches;
        self.bundles_missing += o.bundles_missing;
        self.direct_ok += o.direct_ok;
        self.direct_failed += o.direct_failed;
        self.items_put += o.items_put;
        self.items_failed += o.items_failed;
        self.reputs += o.reputs;
        self.reputs_removed += o.reputs_removed;
        self.drains += o.drains;
        self.items_drained += o.items_drained;
        self.removals += o.removals;
        self.removals_failed += o.removals_failed;
        self.misaddressed += o.misaddressed;
        self.pokes += o.pokes;
        self.online_retries += o.online_retries;
        self.restores += o.restores;
        self.dropped += o.dropped;
    }
}

/// One hosted account.
struct Account {
    engine: Engine,
    schedule: Schedule,
    /// Reads and publications under way (the next waits until they are answered).
    busy: u8,
    /// The keys are to be rotated once the read under way is over (items sealed to the old
    /// keys are read while they are still held), then the bundle published.
    rotating: bool,
    seen: OnlineWatch<Online>,
    /// Items taken since the last tick, removed together then.
    removing: Vec<Hash>,
}

/// What a token was for.
#[derive(Debug)]
enum Op {
    Publish {
        account: [u8; 32],
    },
    Fetch {
        account: [u8; 32],
        peer: [u8; 32],
    },
    Drain {
        account: [u8; 32],
    },
    Item {
        account: [u8; 32],
        to: [u8; 32],
        seq: u64,
        record: Record,
    },
    Reput {
        account: [u8; 32],
        to: [u8; 32],
        seq: u64,
    },
    Remove,
    Direct {
        account: [u8; 32],
        out: Outgoing,
    },
    Poke,
}

/// One node's private-message delivery service (see the module's comment).
#[derive(Default)]
pub struct Service {
    accounts: BTreeMap<[u8; 32], Account>,
    /// What each token is for, and the tick it was made at.
    ops: HashMap<u64, (u64, Op)>,
    next_token: u64,
    /// Ticks so far.
    ticks: u64,
    member: bool,
    out: Vec<Out>,
    stats: Stats,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("accounts", &self.accounts.len())
            .field("ops", &self.ops.len())
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

/// Puts one call's actions in a fixed order (the engine's hash maps give them in any order);
/// the relative order of the local effects is kept.
fn order(actions: &mut [Action]) {
    actions.sort_by_key(|a| match a {
        Action::FetchBundle { peer } => (1u8, *peer, 0u64),
        Action::Send(o) => (2, o.to, o.seq),
        Action::Reput { to, seq, .. } => (3, *to, *seq),
        _ => (0, [0; 32], 0),
    });
}

impl Service {
    /// A service hosting nobody, its node not yet a member.
    pub fn new() -> Service {
        Service::default()
    }

    /// Hosts `engine`'s account (new, or restored and resumed); its mailbox is read and its
    /// bundle published at the next tick once the node is a member. Its state is committed
    /// at once (a new engine's core). Replaces an engine of the same account.
    pub fn add(&mut self, engine: Engine) {
        let account = engine.me();
        self.accounts.insert(
            account,
            Account {
                engine,
                schedule: Schedule::new(),
                busy: 0,
                rotating: false,
                seen: OnlineWatch::new(),
                removing: Vec::new(),
            },
        );
        self.commit(account, Vec::new());
    }

    /// Stops hosting `account`; its engine, if it was hosted (what was committed stays).
    pub fn remove(&mut self, account: &[u8; 32]) -> Option<Engine> {
        self.accounts.remove(account).map(|a| a.engine)
    }

    /// Whether `account` is hosted here.
    pub fn hosts(&self, account: &[u8; 32]) -> bool {
        self.accounts.contains_key(account)
    }

    /// The hosted accounts, in order.
    pub fn accounts(&self) -> impl Iterator<Item = &[u8; 32]> {
        self.accounts.keys()
    }

    /// `account`'s engine, to read.
    pub fn engine(&self, account: &[u8; 32]) -> Option<&Engine> {
        self.accounts.get(account).map(|a| &a.engine)
    }

    /// Every hosted engine, in account order.
    pub fn engines(&self) -> impl Iterator<Item = &Engine> {
        self.accounts.values().map(|a| &a.engine)
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Requests waiting for an answer.
    pub fn in_flight(&self) -> usize {
        self.ops.len()
    }

    /// Whether the node is a ring member: reads, publications and the watch for recipients
    /// back online wait until it is.
    pub fn member(&mut self, member: bool) {
        self.member = member;
    }

    /// The node's place in the ring changed (its predecessor did: it joined another ring, a
    /// merge, a neighbour died): the holders of each mailbox may be others now, so every
    /// account reads its mailbox within [`delivery::FIRST_REDRAIN_MS`] (a node that founded a
    /// ring of its own and then joined the others would otherwise wait for its doubling gap).
    pub fn ring_changed(&mut self, now_ms: u64) {
        for a in self.accounts.values_mut() {
            a.schedule.soon(now_ms);
        }
    }

    /// The requests made since the last call, in order.
    pub fn take(&mut self) -> Vec<Out> {
        std::mem::take(&mut self.out)
    }

    /// Runs the local user's request `f` on `account`'s engine: its actions are carried out
    /// as the engine's own (commit first, then the network). `None` if not hosted here.
    pub fn call<R>(
        &mut self,
        account: &[u8; 32],
        now_ms: u64,
        dir: &impl Directory,
        f: impl FnOnce(&mut Engine, u64) -> (R, Vec<Action>),
    ) -> Option<R> {
        let a = self.accounts.get_mut(account)?;
        let (r, actions) = f(&mut a.engine, now_ms);
        self.act(*account, actions, now_ms, dir);
        Some(r)
    }

    /// A second has passed (see the module's comment).
    pub fn tick(&mut self, now_ms: u64, dir: &impl Directory) {
        self.ticks += 1;
        self.give_up();
        let accounts: Vec<[u8; 32]> = self.accounts.keys().copied().collect();
        for account in accounts {
            if self.member {
                self.retry_online(account, now_ms, dir);
            }
            let Some(a) = self.accounts.get_mut(&account) else {
                continue;
            };
            let actions = a.engine.tick(now_ms);
            self.act(account, actions, now_ms, dir);
            self.due(account, now_ms);
        }
        self.flush_removals(now_ms);
    }

    /// Removes what each account took from its mailbox since the last call (also before a
    /// graceful stop).
    pub fn flush_removals(&mut self, _now_ms: u64) {
        let accounts: Vec<[u8; 32]> = self.accounts.keys().copied().collect();
        for account in accounts {
            let Some(a) = self.accounts.get_mut(&account) else {
                continue;
            };
            let mut hashes = std::mem::take(&mut a.removing);
            if hashes.is_empty() {
                continue;
            }
            hashes.sort_unstable();
            hashes.dedup();
            for chunk in hashes.chunks(MAX_REMOVED) {
                self.stats.removals += 1;
                let token = self.token(Op::Remove);
                self.out.push(Out::Remove {
                    token,
                    account,
                    hashes: chunk.to_vec(),
                });
            }
        }
    }

    /// The node stops: every engine goes (what was committed stays), and answers to
    /// requests made before are ignored. Returns the engines.
    pub fn stop(&mut self) -> Vec<Engine> {
        self.ops.clear();
        self.out.clear();
        self.member = false;
        std::mem::take(&mut self.accounts)
            .into_values()
            .map(|a| a.engine)
            .collect()
    }

    fn token(&mut self, op: Op) -> u64 {
        self.next_token += 1;
        self.ops.insert(self.next_token, (self.ticks, op));
        self.next_token
    }

    /// The request of `token`, no longer waited for.
    fn take_op(&mut self, token: u64) -> Option<Op> {
        self.ops.remove(&token).map(|(_, op)| op)
    }

    /// Forgets requests unanswered for [`GIVE_UP_TICKS`] (a driver that dropped one: its
    /// queue was full), as if they failed: a read or publication is made again when due, and
    /// the engines' own waits cover the rest. A late answer is then ignored.
    fn give_up(&mut self) {
        let now = self.ticks;
        let old: Vec<u64> = self
            .ops
            .iter()
            .filter(|(_, (at, _))| now.saturating_sub(*at) > GIVE_UP_TICKS)
            .map(|(t, _)| *t)
            .collect();
        for t in old {
            self.forget(t);
        }
    }

    /// Forgets the request of `token` as if it failed (see [`Service::give_up`]).
    fn forget(&mut self, token: u64) {
        match self.take_op(token) {
            Some(Op::Drain { account }) => {
                if let Some(a) = self.accounts.get_mut(&account) {
                    a.busy = a.busy.saturating_sub(1);
                    a.rotating = false;
                }
            }
            Some(Op::Publish { account }) => {
                if let Some(a) = self.accounts.get_mut(&account) {
                    a.busy = a.busy.saturating_sub(1);
                    a.schedule.published(false);
                }
            }
            _ => {}
        }
    }

    /// **Commit failed**: the driver could not write a [`Out::Commit`] of `engine`'s account
    /// (its disk is full). The engine goes back to `engine` — the state last written, restored
    /// from the store by the driver — so that nothing the failed call took counts as taken:
    /// no acknowledgement of it went out (the driver drops every request after a failed
    /// commit, [`Service::dropped`]), a message it received is taken again when it comes
    /// again (the sender resends until acknowledged; a mailbox item stays, as the removals
    /// not yet sent are dropped — an item taken before is a known replay when read again and
    /// is removed then), and the mailbox is read again soon, backing off while the failures
    /// go on ([`Schedule::failed`]). The schedule, the watch and requests under way are kept.
    /// `false` if the account is not hosted here.
    pub fn restore(&mut self, engine: Engine, now_ms: u64) -> bool {
        let Some(a) = self.accounts.get_mut(&engine.me()) else {
            return false;
        };
        self.stats.restores += 1;
        a.engine = engine;
        a.removing.clear();
        a.schedule.failed(now_ms);
        true
    }

    /// The driver's store writes again after failures ([`Service::restore`]): every account
    /// reads its mailbox at the next tick, so what waited there while the node could not
    /// store it arrives now rather than after the backoff.
    pub fn store_back(&mut self, now_ms: u64) {
        for a in self.accounts.values_mut() {
            a.schedule.recovered(now_ms);
        }
    }

    /// The requests the driver did not carry out (they followed a commit it could not
    /// write): each is forgotten as if it failed, so a read or publication is made again
    /// when due and the engines' own waits cover the rest.
    pub fn dropped(&mut self, outs: Vec<Out>) {
        for o in outs {
            let token = match o {
                Out::Commit(_) => continue,
                Out::Get { token, .. }
                | Out::Put { token, .. }
                | Out::Publish { token, .. }
                | Out::Remove { token, .. }
                | Out::Send { token, .. } => token,
            };
            self.stats.dropped += 1;
            self.forget(token);
        }
    }

    /// Sends again, directly, what `account` has unacknowledged for each recipient seen
    /// online again since it last looked ([`OnlineWatch`]).
    fn retry_online(&mut self, account: [u8; 32], now_ms: u64, dir: &impl Directory) {
        let Some(a) = self.accounts.get_mut(&account) else {
            return;
        };
        let (waiting, stored) = delivery::waiting(&a.engine);
        let back = a.seen.look(&waiting, &stored, |to| dir.online(to));
        let mut actions = Vec::new();
        for to in back {
            self.stats.online_retries += 1;
            actions.extend(a.engine.peer_online(to, now_ms));
        }
        if !actions.is_empty() {
            self.act(account, actions, now_ms, dir);
        }
    }

    /// Starts the read and publication `account`'s schedule asks for (one at a time), or the
    /// read before a key rotation.
    fn due(&mut self, account: [u8; 32], now_ms: u64) {
        if !self.member {
            return;
        }
        let Some(a) = self.accounts.get_mut(&account) else {
            return;
        };
        if a.busy > 0 {
            return;
        }
        let mut due = a.schedule.due(now_ms);
        if a.engine.rotation_due(now_ms) {
            // Read first; rotate and publish when the read is over (`answers.rs`).
            a.rotating = true;
            due.drain = true;
            due.publish = false;
        }
        if due.drain {
            // Counted from the read's start.
            a.schedule.drained(now_ms);
        }
        a.busy += u8::from(due.publish) + u8::from(due.drain);
        let bundle = due.publish.then(|| a.engine.bundle());
        if let Some(bundle) = bundle {
            self.publish(account, bundle);
        }
        if due.drain {
            self.stats.drains += 1;
            let token = self.token(Op::Drain { account });
            self.out.push(Out::Get {
                token,
                kind: Kind::Mailbox,
                key: account.to_vec(),
            });
        }
    }

    fn publish(&mut self, account: [u8; 32], bundle: Bundle) {
        let token = self.token(Op::Publish { account });
        self.out.push(Out::Publish {
            token,
            account,
            bundle,
        });
    }

    /// Commits what `account`'s engine changed with the call's local effects, then turns its
    /// network actions into requests.
    fn act(
        &mut self,
        account: [u8; 32],
        mut actions: Vec<Action>,
        now_ms: u64,
        dir: &impl Directory,
    ) {
        let mut follow = Vec::new();
        order(&mut actions);
        let mut network = Vec::new();
        let mut local = Vec::new();
        for a in actions {
            match a {
                Action::Show(_) | Action::Status { .. } | Action::Change(_) | Action::Group(_) => {
                    local.push(a)
                }
                other => network.push(other),
            }
        }
        self.commit(account, local);
        for a in network {
            match a {
                Action::FetchBundle { peer } => {
                    let token = self.token(Op::Fetch { account, peer });
                    self.out.push(Out::Get {
                        token,
                        kind: Kind::Keys,
                        key: peer.to_vec(),
                    });
                }
                Action::Send(out) => {
                    let node = dir.route_to(&out.to);
                    match (
                        delivery::route(out.mailbox, out.direct_only, node.is_some()),
                        node,
                    ) {
                        (Route::Direct, Some(node)) => {
                            let body = delivery::item_body(&out.to, &out.value);
                            let token = self.token(Op::Direct { account, out });
                            self.out.push(Out::Send { token, node, body });
                        }
                        (Route::Mailbox, _) => self.put_item(account, out, now_ms),
                        _ => {
                            if out.seq > 0
                                && let Some(a) = self.accounts.get_mut(&account)
                            {
                                follow.extend(a.engine.outcome(
                                    out.to,
                                    out.seq,
                                    delivery::direct_failed(),
                                    now_ms,
                                ));
                            }
                        }
                    }
                }
                Action::Reput { to, seq, record } => {
                    self.stats.reputs += 1;
                    let token = self.token(Op::Reput { account, to, seq });
                    self.out.push(Out::Put {
                        token,
                        record,
                        item: None,
                    });
                }
                Action::Remove(hashes) => {
                    if let Some(a) = self.accounts.get_mut(&account) {
                        a.removing.extend(hashes);
                    }
                }
                Action::Show(_) | Action::Status { .. } | Action::Change(_) | Action::Group(_) => {}
            }
        }
        if !follow.is_empty() {
            self.act(account, follow, now_ms, dir);
        }
    }

    /// The commit of what `account`'s engine changed, with `local` (if anything).
    fn commit(&mut self, account: [u8; 32], local: Vec<Action>) {
        let Some(a) = self.accounts.get_mut(&account) else {
            return;
        };
        let (core, peers) = a.engine.take_dirty();
        let c = Commit {
            account,
            core: core.then(|| a.engine.export_core()),
            peers: peers
                .into_iter()
                .map(|p| {
                    let state = a.engine.export_peer(&p);
                    (p, state)
                })
                .collect(),
            local,
        };
        if !c.is_empty() {
            self.out.push(Out::Commit(c));
        }
    }

    /// Puts `out` as a mailbox item of `account`'s (reported with the item's answer).
    fn put_item(&mut self, account: [u8; 32], out: Outgoing, now_ms: u64) {
        let Outgoing {
            to,
            seq,
            value,
            expires_ms,
            ..
        } = out;
        let record = crate::item_record(
            &to,
            value,
            now_ms,
            delivery::item_expiry(now_ms, expires_ms),
        );
        let token = self.token(Op::Item {
            account,
            to,
            seq,
            record: record.clone(),
        });
        self.out.push(Out::Put {
            token,
            record,
            item: Some((to, seq)),
        });
    }
}
