//! The private-conversations service: end-to-end encrypted direct and group messages of the
//! accounts this node hosts (`docs/protocol.md`, "Private messages"; `docs/security.md`).
//!
//! The rules live in the sans-IO `chat-dm` crate: the engines ([`chat_dm::Engine`], one per
//! hosted account) and their delivery ([`chat_dm::service::Service`]: schedules, routes,
//! pokes, the watch for recipients back online — the code the simulator runs too). This
//! module is its I/O:
//! - `store.rs`: `dm.sqlite3` — engine state and the accounts' own private messages;
//! - `net.rs`: the service's network requests — records reads and puts, bundles and removals
//!   signed by the accounts, direct sends — and their answers, fed back by token;
//! - `trust.rs` and `contacts.rs`: whom a direct message goes to — the account the DHT
//!   names for the nickname — and the conversation's binding to that key (trust on first
//!   use), safety numbers;
//! - `rollback.rs`: a commit the store cannot write — the engines go back to their stored
//!   state, direct deliveries are refused for a while, a log line and a counter;
//! - `run.rs`: the service's task — ticking the service every second, taking direct
//!   deliveries, pruning;
//! - this file: the service and what the control API calls.
//!
//! Every engine call's changes, with the messages it shows, are committed to the store before
//! its actions (acknowledgements, removals) go out; a commit the store cannot write (a full
//! disk) puts the engine back to its stored state and refuses direct deliveries for a while
//! (`rollback.rs`), so nothing is acknowledged that was not written. No plaintext is logged.
//!
//! The engine calls (vodozemac) and the store's commits block: they never run on an async
//! worker. The service's tasks call [`Dm::step`] on the blocking pool ([`crate::offload`],
//! kind `Private`); the control API runs its calls of this service ([`Dm::act`]) there too
//! (`control/private_service.rs`). The service's lock and the store's are plain mutexes
//! taken only inside such blocking calls, never across an await.

pub mod actions;
pub mod contacts;
mod net;
mod rollback;
mod run;
pub mod store;
pub mod trust;
mod voice;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chat_dm::group::GroupState;
use chat_dm::service::{Commit, Out, Service};
use chat_dm::{Action, DmError, Engine, Shown, Status};
use ed25519_dalek::SigningKey;
use tokio::sync::{Notify, broadcast};
use tracing::warn;

use crate::direct::Direct;
use crate::offload::OffloadError;
use crate::people::{People, PeopleError, Who};
use crate::records::{Records, unix_ms};
pub(crate) use net::Online;
use store::{Batch, Change, Row, Store, StoreError};

/// Events a slow watcher may fall behind by.
const WATCH_QUEUE: usize = 1024;

/// The service's settings.
#[derive(Clone, Copy, Debug)]
pub struct DmConfig {
    /// How long an undelivered message is tried (`chat.mailbox_ttl_days`).
    pub ttl: Duration,
    /// How long private messages are kept (`chat.retention_days`; `None`: by count only).
    pub retention: Option<Duration>,
}

/// Why a private-conversation call failed.
#[derive(Debug, thiserror::Error)]
pub enum PrivateError {
    /// The engine refused (size, rate, backlog, group rules).
    #[error(transparent)]
    Engine(#[from] DmError),
    /// No account shows this name.
    #[error("nobody is called {0} (chatctl users lists who is known)")]
    UnknownNick(String),
    /// No group of the caller's has this id or name.
    #[error("you are in no group {0:?} (chatctl group list)")]
    UnknownGroup(String),
    /// Not a message id.
    #[error("{0:?} is not a private message id (32 hex digits)")]
    BadId(String),
    /// No such message of the caller's (or it was deleted).
    #[error("no private message {0} of yours (unknown, expired or deleted)")]
    NoMessage(String),
    /// A message the caller received.
    #[error("private message {0} is not yours: only its sender can edit or delete it")]
    NotYours(String),
    /// Two groups of the caller's have this name.
    #[error("several of your groups are called {0:?}: name it by id")]
    AmbiguousGroup(String),
    /// The name stands for another key than the conversation is bound to.
    #[error(
        "{name}'s key changed (the conversation is bound to key {old}…, the name now stands \
         for key {new}…): this may be a new device or somebody else. Compare the safety \
         number with `chatctl verify {name}` and then send with `chatctl dm --accept-new-key \
         {name} …` (or `chatctl verify --confirm {name}`)"
    )]
    KeyChanged {
        name: String,
        old: String,
        new: String,
    },
    /// A key form (`nick#abcd`) where a name is needed.
    #[error("verify {0:?} by the nickname the network knows it by, not by a key form")]
    VerifyByName(String),
    /// The caller's account.
    #[error(transparent)]
    People(#[from] PeopleError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking pool refused or failed the call.
    #[error(transparent)]
    Offload(#[from] OffloadError),
}

/// A private message as watchers and the history see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The local account it belongs to.
    pub account: [u8; 32],
    pub row: Row,
}

/// What watchers are told.
#[derive(Clone, Debug)]
pub enum DmEvent {
    Message(Message),
    Status {
        account: [u8; 32],
        id: [u8; 16],
        to: [u8; 32],
        status: Status,
    },
    Group {
        account: [u8; 32],
        state: GroupState,
    },
}

/// The service.
pub struct Dm {
    cfg: DmConfig,
    people: Arc<People>,
    records: Arc<Records>,
    direct: Arc<Direct>,
    store: Mutex<Store>,
    /// The hosted accounts' engines and their delivery ([`chat_dm::service`]): what the
    /// network is asked for comes from it, and the answers go back to it.
    service: Mutex<Service>,
    /// The hosted accounts' keys, for signing their bundles and removals (`net.rs`).
    signers: Mutex<HashMap<[u8; 32], SigningKey>>,
    events: broadcast::Sender<DmEvent>,
    /// Wakes the task (a new engine to publish at once).
    wake: Notify,
    /// Whom each loaded engine's account blocked, as of its last call: read by
    /// [`Dm::blocks`] on async workers without waiting for an engine call's commit.
    blocked: Mutex<HashMap<[u8; 32], std::collections::HashSet<[u8; 32]>>>,
    /// The service's network requests, running (bounded) ([`actions`]).
    actions: actions::Pool,
    /// Commits the store could not write, and whether the last one failed (`rollback.rs`).
    commit_failures: std::sync::atomic::AtomicU64,
    failing: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Dm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dm").finish_non_exhaustive()
    }
}

/// The store's number for a status.
pub fn status_code(s: Status) -> u8 {
    match s {
        Status::Queued => 1,
        Status::Sent => 2,
        Status::Stored => 3,
        Status::Delivered => 4,
        Status::Expired => 5,
    }
}

impl Dm {
    /// Opens the store in `data_dir`.
    pub fn open(
        data_dir: &Path,
        cfg: DmConfig,
        people: Arc<People>,
        records: Arc<Records>,
        direct: Arc<Direct>,
    ) -> Result<Arc<Dm>, StoreError> {
        Ok(Arc::new(Dm {
            cfg,
            people,
            records,
            direct,
            store: Mutex::new(Store::open(data_dir)?),
            service: Mutex::new(Service::new()),
            signers: Mutex::new(HashMap::new()),
            events: broadcast::channel(WATCH_QUEUE).0,
            wake: Notify::new(),
            blocked: Mutex::new(HashMap::new()),
            actions: actions::Pool::default(),
            commit_failures: Default::default(),
            failing: Default::default(),
        }))
    }

    fn service(&self) -> MutexGuard<'_, Service> {
        self.service.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Events from now on.
    pub fn watch(&self) -> broadcast::Receiver<DmEvent> {
        self.events.subscribe()
    }

    /// The account of `who` and its key.
    fn account(&self, who: Who) -> Result<([u8; 32], SigningKey), PrivateError> {
        let key = self.people.signer_of(who)?;
        Ok((key.verifying_key().to_bytes(), key))
    }

    /// Runs `f` on `signer`'s engine (loaded or made on first use) through the delivery
    /// service, commits what changed with the messages it shows, tells watchers, and carries
    /// out the network requests.
    fn act<R>(
        self: &Arc<Self>,
        signer: &SigningKey,
        f: impl FnOnce(&mut Engine, u64) -> (R, Vec<Action>),
    ) -> Result<R, PrivateError> {
        let account = signer.verifying_key().to_bytes();
        let mut service = self.service();
        self.load(&mut service, signer)?;
        let dir = Online(&self.people);
        let r = service
            .call(&account, unix_ms(), &dir, f)
            .ok_or_else(|| PrivateError::Engine(DmError::Backlog("no engine".into())))?;
        self.finish(service)?;
        Ok(r)
    }

    /// Hosts `signer`'s engine in the service if it is not yet (restored from the store, or
    /// new).
    fn load(&self, service: &mut Service, signer: &SigningKey) -> Result<(), PrivateError> {
        let account = signer.verifying_key().to_bytes();
        if service.hosts(&account) {
            return Ok(());
        }
        let engine = self.load_engine(signer, unix_ms(), true)?;
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(account, engine.blocked().copied().collect());
        service.add(engine);
        self.signers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(account, signer.clone());
        self.wake.notify_one();
        Ok(())
    }

    /// Runs `f` on the service (with `load_all`, every account the node hosts loaded
    /// first), then commits and carries out what it asked for; for the service's own tasks,
    /// on the blocking pool.
    pub(super) fn step(
        self: &Arc<Self>,
        load_all: bool,
        f: impl FnOnce(&mut Service, u64, &Online<'_>),
    ) -> Result<(), PrivateError> {
        let mut service = self.service();
        if load_all {
            for (_, signer) in self.people.hosted_keys() {
                self.load(&mut service, &signer)?;
            }
        }
        f(&mut service, unix_ms(), &Online(&self.people));
        self.finish(service)
    }

    /// Commits the service's [`Out::Commit`]s in order (each with the messages it shows),
    /// releases the service, tells watchers and starts the network requests.
    fn finish(self: &Arc<Self>, mut service: MutexGuard<'_, Service>) -> Result<(), PrivateError> {
        let outs = service.take();
        let mut events = Vec::new();
        let mut network = Vec::new();
        let mut received = Vec::new();
        let mut failed = None;
        let mut wrote = false;
        // Once a commit fails, it and everything after it: not carried out.
        let mut unwritten = Vec::new();
        let mut dropped = Vec::new();
        for o in outs {
            if failed.is_some() {
                if let Out::Commit(c) = &o {
                    unwritten.push(c.account);
                }
                dropped.push(o);
                continue;
            }
            let Out::Commit(c) = o else {
                network.push(o);
                continue;
            };
            let account = c.account;
            if let Some(e) = service.engine(&account) {
                self.blocked
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(account, e.blocked().copied().collect());
            }
            match self.commit(c, &mut events, &mut received) {
                Ok(()) => wrote = true,
                Err(e) => {
                    unwritten.push(account);
                    failed = Some(e);
                }
            }
        }
        if let Some(e) = &failed {
            // Nothing after a failed commit goes out, and the engines whose changes were not
            // written go back to what the store holds (`rollback.rs`).
            self.roll_back(&mut service, unwritten, dropped, e);
        } else if wrote {
            self.store_writes();
        }
        drop(service);
        for (account, from) in received {
            self.bind_received(&account, &from);
        }
        for e in events {
            let _ = self.events.send(e);
        }
        // What preceded the failed commit was written: it goes out.
        self.execute(network);
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Writes one engine call's changes and local effects to the store; what it shows and
    /// binds is added to `events` and `received` only once written.
    fn commit(
        &self,
        c: Commit,
        all_events: &mut Vec<DmEvent>,
        all_received: &mut Vec<([u8; 32], [u8; 32])>,
    ) -> Result<(), PrivateError> {
        let mut events = Vec::new();
        let mut received = Vec::new();
        let account = c.account;
        let mut batch = Batch {
            core: c.core,
            ..Batch::default()
        };
        batch.peers = c
            .peers
            .into_iter()
            .filter_map(|(p, state)| state.map(|s| (p, s)))
            .collect();
        for a in c.local {
            match a {
                Action::Show(s) => {
                    if !s.outgoing && s.group.is_none() {
                        received.push((account, s.from));
                    }
                    let m = Message {
                        account,
                        row: row_of(&s),
                    };
                    batch.messages.push(m.row.clone());
                    events.push(DmEvent::Message(m));
                }
                Action::Status { id, to, status } => {
                    batch.statuses.push((id, status_code(status)));
                    events.push(DmEvent::Status {
                        account,
                        id,
                        to,
                        status,
                    });
                }
                Action::Group(state) => events.push(DmEvent::Group { account, state }),
                Action::Change(c) => batch.changes.push(Change {
                    id: c.id,
                    from: c.from,
                    text: c.text,
                    sent_ms: c.sent_ms,
                }),
                _ => {}
            }
        }
        if !batch.is_empty() {
            let mut store = self.store();
            for id in store.commit(&account, &batch)? {
                if let Some(row) = store.get(&account, &id)? {
                    events.push(DmEvent::Message(Message { account, row }));
                }
            }
        }
        all_events.append(&mut events);
        all_received.append(&mut received);
        Ok(())
    }

    /// `signer`'s engine as the store holds it (new if it holds none); with `resume`, the
    /// sends in flight when the node stopped are due now.
    fn load_engine(
        &self,
        signer: &SigningKey,
        now: u64,
        resume: bool,
    ) -> Result<Engine, PrivateError> {
        let account = signer.verifying_key().to_bytes();
        let ttl = u64::try_from(self.cfg.ttl.as_millis()).unwrap_or(u64::MAX);
        if let Some((core, peers)) = self.store().load(&account)? {
            match Engine::restore(signer.clone(), ttl, &core, peers) {
                Some((mut e, bad)) => {
                    // Sends in flight when the node stopped will not report: due now.
                    if resume {
                        e.resume(now);
                    }
                    if bad > 0 {
                        warn!(
                            bad,
                            "private conversations: some peer states did not decode"
                        );
                    }
                    return Ok(e);
                }
                None => warn!(
                    "private conversations: the stored keys do not decode; making new ones \
                     (messages sealed to the old keys cannot be read)"
                ),
            }
        }
        Ok(Engine::new(signer.clone(), ttl, now))
    }

    /// The caller's outgoing message to group `group` (id or name).
    pub fn send_group(
        self: &Arc<Self>,
        who: Who,
        group: &str,
        text: &str,
    ) -> Result<Message, PrivateError> {
        self.send_group_with(who, group, text, None)
    }

    /// [`Dm::send_group`] with a private file's reference `file` (`files::private`).
    pub fn send_group_with(
        self: &Arc<Self>,
        who: Who,
        group: &str,
        text: &str,
        file: Option<Vec<u8>>,
    ) -> Result<Message, PrivateError> {
        let (account, signer) = self.account(who)?;
        let id = self.group_id(&signer, group)?;
        let shown = self.act(&signer, |e, now| {
            send_and_tick(e, now, |e| e.send_group_with(&id, text, file, now))
        })??;
        Ok(Message {
            account,
            row: row_of(&shown),
        })
    }

    /// Edits (`text`) or deletes the caller's own message `id` (hex), at the caller and at
    /// its recipients; returns it as it now stands.
    pub fn change(
        self: &Arc<Self>,
        who: Who,
        id: &str,
        text: Option<&str>,
    ) -> Result<Message, PrivateError> {
        let (account, signer) = self.account(who)?;
        let mut key = [0u8; 16];
        hex::decode_to_slice(id, &mut key).map_err(|_| PrivateError::BadId(id.to_owned()))?;
        let row = self
            .store()
            .get(&account, &key)?
            .filter(|r| !r.deleted)
            .ok_or_else(|| PrivateError::NoMessage(id.to_owned()))?;
        if !row.outgoing || row.from != account {
            return Err(PrivateError::NotYours(id.to_owned()));
        }
        self.act(&signer, |e, now| {
            let (r, mut actions) = then_tick(e, now, |e| match (row.group, row.peer) {
                (Some(g), _) => e.change_group(g, key, text, now),
                (None, Some(p)) => e.change_direct(p, key, text, now),
                (None, None) => Err(DmError::Backlog("a message without a recipient".into())),
            });
            if let Ok(c) = &r {
                actions.insert(0, Action::Change(c.clone()));
            }
            (r, actions)
        })??;
        let row = self
            .store()
            .get(&account, &key)?
            .ok_or_else(|| PrivateError::NoMessage(id.to_owned()))?;
        Ok(Message { account, row })
    }

    /// The group of the caller's with this id (hex) or name.
    fn group_id(
        self: &Arc<Self>,
        signer: &SigningKey,
        group: &str,
    ) -> Result<[u8; 16], PrivateError> {
        let groups = self.act(signer, |e, _| (e.groups(), Vec::new()))?;
        let group = group.trim().trim_start_matches('#');
        if let Some(g) = groups.iter().find(|g| hex::encode(g.id) == group) {
            return Ok(g.id);
        }
        let named: Vec<&GroupState> = groups
            .iter()
            .filter(|g| g.name.eq_ignore_ascii_case(group))
            .collect();
        match named.as_slice() {
            [g] => Ok(g.id),
            [] => Err(PrivateError::UnknownGroup(group.to_owned())),
            _ => Err(PrivateError::AmbiguousGroup(group.to_owned())),
        }
    }

    /// The caller's message `id` (hex), if it is there and not deleted.
    pub fn message_of(self: &Arc<Self>, who: Who, id: &str) -> Result<Message, PrivateError> {
        let (account, _) = self.account(who)?;
        let mut key = [0u8; 16];
        hex::decode_to_slice(id.trim(), &mut key)
            .map_err(|_| PrivateError::BadId(id.to_owned()))?;
        let row = self
            .store()
            .get(&account, &key)?
            .filter(|r| !r.deleted)
            .ok_or_else(|| PrivateError::NoMessage(id.to_owned()))?;
        Ok(Message { account, row })
    }

    /// How long an undelivered message is tried (the mailbox's lifetime).
    pub fn mailbox_ttl(&self) -> Duration {
        self.cfg.ttl
    }

    /// The caller's private messages (with `with`: one person's or one group's).
    pub fn history(
        self: &Arc<Self>,
        who: Who,
        with: &str,
        before: Option<&[u8; 16]>,
        limit: u32,
    ) -> Result<Vec<Message>, PrivateError> {
        let (account, signer) = self.account(who)?;
        let with = with.trim();
        let (peer, group) = if with.is_empty() {
            (None, None)
        } else if let Some(u) = self.people.find(with) {
            (Some(u.account), None)
        } else {
            match self.group_id(&signer, with) {
                Ok(g) => (None, Some(g)),
                Err(_) => return Err(PrivateError::UnknownNick(with.to_owned())),
            }
        };
        let rows = self
            .store()
            .history(&account, peer.as_ref(), group.as_ref(), before, limit)?;
        Ok(rows
            .into_iter()
            .map(|row| Message { account, row })
            .collect())
    }

    /// The caller's private messages holding every word of `expression` (an FTS5 expression
    /// from [`crate::chat::search::expression`]), from `from` (a shown name) if given, sent at
    /// or after `since_ms`; newest first.
    pub fn search(
        self: &Arc<Self>,
        who: Who,
        expression: &str,
        from: &str,
        since_ms: u64,
        limit: u32,
    ) -> Result<Vec<Message>, PrivateError> {
        let (account, _) = self.account(who)?;
        let from = from.trim();
        let author = if from.is_empty() {
            None
        } else {
            match self.people.find(from) {
                Some(u) => Some(u.account),
                // Nobody by that name: no private message from them either (as the public
                // search, which filters by shown name, finds nothing).
                None => return Ok(Vec::new()),
            }
        };
        // With an author filter, look further and keep theirs.
        let scan = if author.is_some() {
            limit.saturating_mul(20).min(20_000)
        } else {
            limit
        };
        let rows = self.store().search(&account, expression, since_ms, scan)?;
        Ok(rows
            .into_iter()
            .filter(|r| author.is_none_or(|a| r.from == a))
            .take(limit as usize)
            .map(|row| Message { account, row })
            .collect())
    }

    /// Creates a group of the caller and the people named.
    pub fn create_group(
        self: &Arc<Self>,
        who: Who,
        name: &str,
        members: &[String],
    ) -> Result<GroupState, PrivateError> {
        let (_, signer) = self.account(who)?;
        let keys = self.resolve(members)?;
        let state = self.act(&signer, |e, now| {
            then_tick(e, now, |e| e.create_group(name, &keys, now))
        })??;
        Ok(state)
    }

    /// Adds and removes members of a group of the caller's.
    pub fn change_group(
        self: &Arc<Self>,
        who: Who,
        group: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<GroupState, PrivateError> {
        let (_, signer) = self.account(who)?;
        let id = self.group_id(&signer, group)?;
        let (add, remove) = (self.resolve(add)?, self.resolve(remove)?);
        let state = self.act(&signer, |e, now| {
            then_tick(e, now, |e| e.change_members(&id, &add, &remove, now))
        })??;
        Ok(state)
    }

    /// Leaves a group.
    pub fn leave_group(self: &Arc<Self>, who: Who, group: &str) -> Result<(), PrivateError> {
        let (_, signer) = self.account(who)?;
        let id = self.group_id(&signer, group)?;
        self.act(&signer, |e, now| {
            then_tick(e, now, |e| e.leave_group(&id, now))
        })??;
        Ok(())
    }

    /// The caller's groups.
    pub fn groups(self: &Arc<Self>, who: Who) -> Result<Vec<GroupState>, PrivateError> {
        let (account, signer) = self.account(who)?;
        if let Some(e) = self.service().engine(&account) {
            return Ok(e.groups());
        }
        self.act(&signer, |e, _| (e.groups(), Vec::new()))
    }

    /// Blocks (`true`) or unblocks the person shown as `nick`; whether that changed anything.
    pub fn set_blocked(
        self: &Arc<Self>,
        who: Who,
        nick: &str,
        block: bool,
    ) -> Result<bool, PrivateError> {
        let (_, signer) = self.account(who)?;
        let target = self
            .people
            .find(nick.trim())
            .ok_or_else(|| PrivateError::UnknownNick(nick.trim().to_owned()))?
            .account;
        self.act(&signer, |e, _| {
            let changed = if block {
                e.block(target)
            } else {
                e.unblock(&target)
            };
            (changed, Vec::new())
        })
    }

    /// The accounts the caller blocked.
    pub fn blocked(self: &Arc<Self>, who: Who) -> Result<Vec<[u8; 32]>, PrivateError> {
        let (_, signer) = self.account(who)?;
        self.act(&signer, |e, _| (e.blocked().copied().collect(), Vec::new()))
    }

    /// Whether `account`'s owner (a hosted account) blocked `author` (hides public messages).
    /// Never waits for an engine call (a copy kept by [`Dm::act`]).
    pub fn blocks(&self, account: &[u8; 32], author: &[u8; 32]) -> bool {
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(account)
            .is_some_and(|b| b.contains(author))
    }

    fn resolve(&self, names: &[String]) -> Result<Vec<[u8; 32]>, PrivateError> {
        names
            .iter()
            .map(|n| {
                self.people
                    .find(n.trim())
                    .map(|u| u.account)
                    .ok_or_else(|| PrivateError::UnknownNick(n.trim().to_owned()))
            })
            .collect()
    }

    /// Dropped network input by reason, over every engine (metrics).
    pub fn drops(&self) -> HashMap<&'static str, u64> {
        let mut out = HashMap::new();
        for e in self.service().engines() {
            for (d, n) in e.drops() {
                *out.entry(d.name()).or_insert(0) += n;
            }
        }
        let refused = self.actions.refused();
        if refused > 0 {
            out.insert("actions_full", refused);
        }
        let failed = self.commit_failures();
        if failed > 0 {
            out.insert("commit_failed", failed);
        }
        out
    }
}

/// Runs a user's request on the engine and, if it was taken, ticks at once so its first
/// attempt goes out now rather than at the next tick.
fn then_tick<T>(
    e: &mut Engine,
    now: u64,
    f: impl FnOnce(&mut Engine) -> Result<T, DmError>,
) -> (Result<T, DmError>, Vec<Action>) {
    match f(e) {
        Ok(v) => {
            let a = e.tick(now);
            (Ok(v), a)
        }
        Err(err) => (Err(err), Vec::new()),
    }
}

/// [`then_tick`] for a message the user sends: it is shown (stored, told to watchers) in the
/// same transaction as the engine's changes.
fn send_and_tick(
    e: &mut Engine,
    now: u64,
    f: impl FnOnce(&mut Engine) -> Result<Shown, DmError>,
) -> (Result<Shown, DmError>, Vec<Action>) {
    let (r, mut actions) = then_tick(e, now, f);
    if let Ok(s) = &r {
        actions.insert(0, Action::Show(s.clone()));
    }
    (r, actions)
}

/// The stored row of a message shown; an outgoing one starts queued.
fn row_of(s: &Shown) -> Row {
    Row {
        id: s.id,
        from: s.from,
        peer: match (s.group, s.outgoing) {
            (Some(_), _) => None,
            (None, true) => Some(s.to),
            (None, false) => Some(s.from),
        },
        group: s.group,
        text: s.text.clone(),
        sent_ms: s.sent_ms,
        outgoing: s.outgoing,
        status: if s.outgoing {
            status_code(Status::Queued)
        } else {
            0
        },
        edited_ms: 0,
        deleted: false,
        file: s.file.clone(),
    }
}
