//! The people service: the accounts this node hosts, their network-wide unique nicknames and
//! presence, and the directory of every account on the network.
//!
//! - `account.rs`: hosted accounts — the operator's, local Unix users', the TCP token's guest
//!   — with their keys and own state;
//! - `event.rs`: people events on the wire (signed profiles, node-down reports);
//! - `directory.rs`: the user list built from verified events;
//! - `publish.rs`: how events travel — gathered per presence epoch at one node and broadcast
//!   together, so presence costs each node a bounded number of messages per second whatever
//!   the network's size. The decisions (which epoch, when to put again or broadcast alone,
//!   which epochs this node broadcasts, which vanished neighbours it reports down) are the
//!   sans-IO presence engine's, `chat_people::Engine`, which the simulator drives too; this
//!   service does its actions;
//! - `names.rs`: names resolved through the DHT — who holds a nickname is what the claim's
//!   holders answer (cached briefly), never what a profile says;
//! - `life.rs`: an account's life — claiming its nickname (a *claim* record signed by the
//!   account; a taken name gets a random numeric suffix and the person is told why),
//!   announcing its profile, going away after `chat.away_after_secs` without activity,
//!   renaming when the name's holders say it is another's. The decisions are the sans-IO
//!   `chat_people::Life`'s (one per hosted account, in `account.rs`'s `Me`); this service
//!   carries out its claims, announcements and reads of a name's holders;
//! - this file: the service — accounts by client, the directory, the events the chat core
//!   hands over, the service's task (ticks, dead predecessors, lost names), and going offline
//!   at a graceful stop.
//!
//! See `docs/protocol.md`, "People", and `docs/security.md` for who holds which key.

pub mod account;
pub mod directory;
pub mod event;
mod life;
pub mod names;
mod publish;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chat_overlay::NodeId;
use chat_people::{Engine, Gather};
use tokio::sync::{Notify, broadcast, watch};
use tracing::{debug, info, warn};

use crate::chat::envelope::Kind;
use crate::chat::{Chat, ChatMessage, PeopleSink};
use crate::client::ClientInfo;
use crate::identity::IdentityError;
use crate::nickname::{Nickname, NicknameError};
use crate::overlay::OverlayHandle;
use crate::records::{Records, RecordsError, unix_ms};
pub use account::Who;
use account::{Hosted, MAX_HOSTED, login_name};
use chat_overlay::records::{Kind as RecordKind, Record, Value};
pub use directory::Change;
use directory::{Directory, User};
pub use event::Presence;
use event::{Event, MAX_AWAY_BYTES};

/// How often the service looks at its clocks (claims, auto-away, renewals, announcements).
const TICK: Duration = Duration::from_secs(2);
/// How often the presence engine looks at its clock (ended epochs this node holds, down
/// reports due, events to put again).
const FLUSH: Duration = Duration::from_millis(chat_people::engine::TICK_MS);
/// User events a slow watcher may fall behind by.
const WATCH_QUEUE: usize = 1024;

/// The service's settings.
#[derive(Clone, Debug)]
pub struct PeopleConfig {
    /// The nickname the operator wishes for.
    pub wish: Nickname,
    /// Inactivity after which an account goes away (`chat.away_after_secs`; zero: never).
    pub away_after: Duration,
    /// Lifetime of a nickname claim that is no longer renewed (`chat.nick_release_days`).
    pub nick_ttl: Duration,
}

/// Why a people call failed.
#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    /// A nickname that breaks the rules.
    #[error("nickname {0}")]
    Nickname(#[from] NicknameError),
    /// An away message over its bound.
    #[error("away message must be at most {MAX_AWAY_BYTES} bytes without control characters")]
    AwayTooLong,
    /// Too many changes.
    #[error("changing name or presence too often; retry in {} s", .0.as_secs().max(1))]
    TooFast(Duration),
    /// Not a ring member yet, or the account has no name yet.
    #[error("this node has not joined a ring yet")]
    NotJoined,
    /// The name and every suffixed form tried are taken.
    #[error("{0} and several suffixed forms of it are taken; choose another name")]
    AllTaken(String),
    /// The node hosts as many accounts as it may.
    #[error("this node already hosts {MAX_HOSTED} accounts")]
    TooManyAccounts,
    /// An account's key could not be loaded or created.
    #[error("account key: {0}")]
    Key(#[from] IdentityError),
    /// The records layer failed.
    #[error(transparent)]
    Records(#[from] RecordsError),
    /// The ring refused the announcement.
    #[error("the ring did not take the announcement: {0}")]
    Ring(String),
}

/// One change in the directory, for watchers.
#[derive(Clone, Debug)]
pub struct UserEvent {
    /// The line shown for it.
    pub line: String,
    /// What kind of change it is.
    pub change: Change,
    /// The account (zero for a node-down report).
    pub account: [u8; 32],
    /// When (Unix milliseconds).
    pub at_ms: u64,
}

/// The people service.
#[derive(Debug)]
pub struct People {
    data_dir: PathBuf,
    own_uid: u32,
    node: [u8; 32],
    cfg: PeopleConfig,
    chat: Chat,
    records: Arc<Records>,
    hosted: Mutex<HashMap<Who, Arc<Hosted>>>,
    dir: Mutex<Directory>,
    events: broadcast::Sender<UserEvent>,
    wake: Notify,
    /// The presence engine: events on their way, epochs held, predecessors watched.
    engine: Mutex<Engine>,
    /// The holders' recent answers for names used as recipients.
    names: Mutex<names::NameCache>,
    /// Names waiting for a background look-up, and what wakes the look-ups.
    checks: Mutex<names::CheckQueue>,
    check_wake: Notify,
}

impl People {
    /// Opens the operator's account (its key in `data_dir`, created if missing) and the
    /// accounts hosted before, and rebuilds the directory from the stored people events.
    pub fn open(
        data_dir: &Path,
        node: NodeId,
        chat: Chat,
        records: Arc<Records>,
        cfg: PeopleConfig,
    ) -> Result<Arc<People>, PeopleError> {
        let people = Arc::new(People {
            data_dir: data_dir.to_owned(),
            own_uid: rustix::process::geteuid().as_raw(),
            node: node.0,
            cfg,
            chat: chat.clone(),
            records,
            hosted: Mutex::new(HashMap::new()),
            dir: Mutex::new(Directory::default()),
            events: broadcast::channel(WATCH_QUEUE).0,
            wake: Notify::new(),
            engine: Mutex::new(Engine::new(node, Gather::Epochs)),
            names: Mutex::new(names::NameCache::default()),
            checks: Mutex::new(names::CheckQueue::default()),
            check_wake: Notify::new(),
        });
        people.host(Who::Operator)?;
        for who in hosted_before(data_dir) {
            if let Err(e) = people.host(who) {
                warn!(?who, error = %e, "could not open a hosted account");
            }
        }
        match chat.people_events() {
            Ok(stored) => {
                for m in &stored {
                    people.apply_event(m, false);
                }
                let n = people.directory().len();
                if n > 0 {
                    info!(users = n, "user directory rebuilt from the history");
                }
            }
            Err(e) => warn!(error = %e, "could not read the stored people events"),
        }
        // Our own last profiles, from before the restart, are history: sign newer ones.
        for h in people.all_hosted() {
            if let Some(u) = people.directory().get(&h.account) {
                h.me().life.signed_before(u.version);
            }
        }
        chat.set_people(people.clone());
        Ok(people)
    }

    fn directory(&self) -> MutexGuard<'_, Directory> {
        self.dir.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn cache(&self) -> MutexGuard<'_, names::NameCache> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn checks(&self) -> MutexGuard<'_, names::CheckQueue> {
        self.checks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Presence items (mailbox records of recent epochs) this node holds for broadcasting.
    pub fn presence_items_held(&self) -> usize {
        self.engine().held_items()
    }

    fn all_hosted(&self) -> Vec<Arc<Hosted>> {
        let mut all: Vec<Arc<Hosted>> = self
            .hosted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|h| h.who);
        all
    }

    /// The account hosted for `who`, opened (key created) on first use.
    fn host(&self, who: Who) -> Result<Arc<Hosted>, PeopleError> {
        let mut hosted = self.hosted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = hosted.get(&who) {
            return Ok(h.clone());
        }
        if hosted.len() >= MAX_HOSTED {
            return Err(PeopleError::TooManyAccounts);
        }
        let wish = match who {
            Who::Operator => self.cfg.wish.clone(),
            Who::Unix(uid) => login_name(uid),
            Who::Token => "guest".parse().unwrap_or_else(|_| Nickname::user()),
        };
        let h = Arc::new(Hosted::open(&self.data_dir, who, wish)?);
        self.records.add_signer(h.key.clone());
        if who != Who::Operator {
            info!(?who, account = %hex::encode(&h.account[..6]), "hosting an account for a new control client");
        }
        hosted.insert(who, h.clone());
        drop(hosted);
        self.wake.notify_one();
        Ok(h)
    }

    /// The account of a control client.
    pub fn who(&self, client: Option<&ClientInfo>) -> Who {
        Who::of(client, self.own_uid)
    }

    /// The public key of `who`'s account (opening it if needed).
    pub fn account_of(&self, who: Who) -> Result<[u8; 32], PeopleError> {
        Ok(self.host(who)?.account)
    }

    /// The signing key of `who`'s account (opening it if needed).
    pub fn signer_of(&self, who: Who) -> Result<ed25519_dalek::SigningKey, PeopleError> {
        Ok(self.host(who)?.key.clone())
    }

    /// Every hosted account: whose, and its signing key.
    pub fn hosted_keys(&self) -> Vec<(Who, ed25519_dalek::SigningKey)> {
        self.all_hosted()
            .into_iter()
            .map(|h| (h.who, h.key.clone()))
            .collect()
    }

    /// The account shown as `name` (see [`Directory::find`]).
    pub fn find(&self, name: &str) -> Option<User> {
        self.directory().find(name).cloned()
    }

    /// What the directory knows of `account`, and the name it shows.
    pub fn user(&self, account: &[u8; 32]) -> Option<(String, User)> {
        let dir = self.directory();
        dir.get(account).map(|u| (dir.display(u), u.clone()))
    }

    /// The name shown for `account` (`?` and its short key when unknown).
    pub fn display_account(&self, account: &[u8; 32]) -> String {
        self.user(account)
            .map_or_else(|| format!("?{}", hex::encode(&account[..4])), |(n, _)| n)
    }

    /// `who`'s nickname (none until claimed) and why it differs from the wish.
    pub fn nickname(&self, who: Who) -> (Option<String>, String) {
        match self.host(who) {
            Ok(h) => {
                let me = h.me();
                (me.life.nick().map(str::to_owned), me.life.note().to_owned())
            }
            Err(e) => (None, e.to_string()),
        }
    }

    /// `who`'s presence.
    pub fn presence(&self, who: Who) -> Presence {
        self.host(who)
            .map_or(Presence::Offline, |h| h.me().life.presence())
    }

    /// Every account known, by shown name.
    pub fn list(&self) -> Vec<(String, User)> {
        self.directory().list()
    }

    /// The names shown for the accounts each of `nodes` hosts, at most `per_node` a node
    /// ([`Directory::names_by_node`]).
    pub fn names_by_node(
        &self,
        nodes: &std::collections::HashSet<[u8; 32]>,
        per_node: usize,
    ) -> std::collections::HashMap<[u8; 32], Vec<String>> {
        self.directory().names_by_node(nodes, per_node)
    }

    /// User events from now on.
    pub fn watch(&self) -> broadcast::Receiver<UserEvent> {
        self.events.subscribe()
    }

    /// The name shown for a message from `author` (`None`: the node's operator, in envelopes
    /// of the first format) signed by node `node`: the account's verified nickname if its
    /// profile says `node` hosts it; else `?` and the node's short id.
    pub fn name_for(&self, author: Option<&[u8; 32]>, node: &NodeId) -> String {
        let dir = self.directory();
        match verified_author(&dir, author, node) {
            Some(u) => dir.display(u),
            None => format!("?{}", node.short()),
        }
    }

    /// The account that wrote a message from `author` signed by `node`, as [`People::name_for`]
    /// resolves it.
    pub fn author_of(&self, author: Option<&[u8; 32]>, node: &NodeId) -> Option<[u8; 32]> {
        verified_author(&self.directory(), author, node).map(|u| u.account)
    }

    /// `who` did something: resets its inactivity clock and ends an automatic away.
    pub fn touch(&self, who: Who) {
        let Ok(h) = self.host(who) else {
            return;
        };
        let announce = h.me().life.touch(unix_ms());
        if announce {
            self.wake.notify_one();
        }
    }

    /// `who` goes away with `message` (`None`: back online); announced at once.
    pub async fn set_away(
        &self,
        ring: &OverlayHandle,
        who: Who,
        message: Option<String>,
    ) -> Result<(), PeopleError> {
        if let Some(m) = &message
            && (m.len() > MAX_AWAY_BYTES || m.chars().any(char::is_control))
        {
            return Err(PeopleError::AwayTooLong);
        }
        let h = self.host(who)?;
        if h.me().life.nick().is_none() {
            return Err(PeopleError::NotJoined);
        }
        life::take_change(&h)?;
        let announce = h.me().life.set_away(message, unix_ms());
        match announce {
            Some(_) => self.announce(ring, &h).await,
            None => Err(PeopleError::NotJoined),
        }
    }

    /// `who` changes nickname to `wish` (a suffixed form if it is taken); returns the name
    /// got and, when it differs, why.
    pub async fn set_nick(
        &self,
        ring: &OverlayHandle,
        who: Who,
        wish: &str,
    ) -> Result<(String, String), PeopleError> {
        let wish: Nickname = wish.parse()?;
        let h = self.host(who)?;
        life::take_change(&h)?;
        let claim = chat_people::Claim::new(wish.as_str(), chat_people::Why::Set);
        let (nick, note) = self.carry_claim(&h, &claim).await?;
        self.announce(ring, &h).await?;
        Ok((nick, note))
    }

    fn notify_watchers(&self, line: String, account: [u8; 32], change: Change) {
        let _ = self.events.send(UserEvent {
            line,
            change,
            account,
            at_ms: unix_ms(),
        });
    }

    /// Applies a stored or arriving people event; returns its line.
    fn apply_event(&self, m: &ChatMessage, live: bool) -> String {
        let from = m.from_id();
        match Event::decode(&m.event) {
            Ok(Event::Batch(items)) => self.apply_batch(&items, live),
            Ok(e) => self.apply_one(e, from, m.hlc.millis(), live),
            Err(e) => {
                debug!(error = %e, from = %from.short(), "people event refused");
                String::new()
            }
        }
    }

    /// Applies the items of an epoch's batch, each as from the node that signed it; our own
    /// items confirm what we published (and show the line we kept for them).
    fn apply_batch(&self, items: &[Record], live: bool) -> String {
        let mut lines = Vec::new();
        for r in items {
            if r.kind != RecordKind::Mailbox as u8 || !r.verify() {
                debug!("a batch item that is not a verified mailbox record; skipped");
                continue;
            }
            let Value::Data(value) = &r.value else {
                continue;
            };
            let Some(bytes) = chat_people::engine::item_event(value) else {
                debug!("a batch item not made as a presence epoch item; skipped");
                continue;
            };
            let from = crate::identity::node_id_of_bytes(&r.owner);
            if from.0 == self.node {
                if let Some(p) = self.engine().confirm(&r.hash()) {
                    lines.push(p.note);
                    continue;
                }
                if live {
                    continue;
                }
            }
            match Event::decode(bytes) {
                Ok(Event::Batch(_)) | Err(_) => {
                    debug!("a batch item that is not one event; skipped")
                }
                Ok(e) => lines.push(self.apply_one(e, from, r.created, live)),
            }
        }
        lines.retain(|l| !l.is_empty());
        lines.join("; ")
    }

    /// Applies one event from node `from` (seen at `at_ms`); returns its line.
    fn apply_one(&self, e: Event, from: NodeId, at_ms: u64, live: bool) -> String {
        match e {
            Event::Profile(sp) => match sp.open(&from.0) {
                Ok(_) if from.0 == self.node && live => {
                    // Our own, back through anti-entropy: already applied when signed.
                    String::new()
                }
                Ok(p) => {
                    let account = p.account;
                    let nick = p.nick.clone();
                    let (line, change) = self.directory().apply_change(p);
                    // Its claim is only its word: ask the holders who has the name.
                    self.want_check(&nick);
                    if live && !line.is_empty() {
                        self.notify_watchers(line.clone(), account, change);
                    }
                    line
                }
                Err(e) => {
                    debug!(error = %e, from = %from.short(), "people event refused");
                    String::new()
                }
            },
            Event::NodeDown(node) if node == self.node => {
                if live {
                    info!(reporter = %from.short(), "a neighbour reported this node dead; saying otherwise");
                    for h in self.all_hosted() {
                        h.me().life.deny_down();
                    }
                    self.wake.notify_one();
                }
                String::new()
            }
            Event::NodeDown(node) => {
                let lines = self.directory().node_down(&node, at_ms);
                if live {
                    for l in &lines {
                        self.notify_watchers(l.clone(), [0; 32], Change::NodeDown);
                    }
                }
                lines.join("; ")
            }
            Event::Batch(_) => String::new(),
        }
    }

    /// Node `dead` (our predecessor, gone without leaving) is to be reported: its users go
    /// offline here, and the report is published if the directory showed any online (none:
    /// they said goodbye, or it hosted nobody we know of).
    fn report_down(&self, dead: NodeId) -> Option<chat_people::Action> {
        let lines = self.directory().node_down(&dead.0, unix_ms());
        if lines.is_empty() {
            debug!(node = %dead.short(), "predecessor gone; nobody to report offline");
            return None;
        }
        for l in &lines {
            self.notify_watchers(l.clone(), [0; 32], Change::NodeDown);
        }
        info!(node = %dead.short(), "reporting a dead neighbour's users offline");
        let bytes = Event::NodeDown(dead.0).encode();
        Some(self.engine().publish(bytes, lines.join("; "), unix_ms()))
    }

    /// At a graceful stop: every hosted account goes offline (bounded by `deadline`).
    pub async fn go_offline(&self, ring: &OverlayHandle, deadline: Duration) {
        let all = self.all_hosted();
        let work = async {
            for h in &all {
                if h.me().life.go_offline(unix_ms()).is_none() {
                    continue;
                }
                if let Err(e) = self.announce(ring, h).await {
                    warn!(error = %e, "could not announce going offline");
                }
            }
        };
        match tokio::time::timeout(deadline, work).await {
            Ok(()) => info!("told the network this node's users are offline"),
            Err(_) => warn!("announcing going offline took longer than {deadline:?}"),
        }
    }

    /// The service's life: once joined, claim every hosted account's name and announce it,
    /// then keep presence true.
    pub async fn run(self: Arc<Self>, ring: OverlayHandle, mut joined: watch::Receiver<bool>) {
        let mut lost = self.records.lost_names();
        let mut held = self.records.held_items();
        let mut predecessors = ring.predecessor();
        while !*joined.borrow_and_update() {
            if joined.changed().await.is_err() {
                return;
            }
        }
        let mut tick = tokio::time::interval(TICK);
        let mut flush = tokio::time::interval(FLUSH);
        let checker = self.check_names();
        tokio::pin!(checker);
        loop {
            tokio::select! {
                () = &mut checker => return,
                _ = tick.tick() => self.on_tick(&ring).await,
                _ = flush.tick() => {
                    // Ended epochs this node holds first, predecessors gone long enough for
                    // their goodbyes to have arrived and still outside the ring, events that
                    // did not come back in their batch.
                    let actions = self.engine().tick(unix_ms());
                    for a in actions {
                        if let Err(e) = self.carry(&ring, a).await {
                            warn!(error = %e, "a people event could not be published");
                        }
                    }
                }
                Some(r) = recv(&mut held) => self.engine().held(r, unix_ms()),
                () = self.wake.notified() => self.on_tick(&ring).await,
                changed = predecessors.changed() => {
                    if changed.is_err() {
                        return; // the overlay driver is gone
                    }
                    let new = *predecessors.borrow_and_update();
                    // The directory's nodes shown online between the new predecessor and us.
                    let me = NodeId(self.node);
                    let online = new
                        .map(|p| self.directory().online_nodes_between(&p.id, &me))
                        .unwrap_or_default();
                    self.engine().predecessor_changed(new, |_, _| online, unix_ms());
                }
                Some(l) = recv(&mut lost) => {
                    let h = self.all_hosted().into_iter().find(|h| h.account == l.owner);
                    if let Some(h) = h {
                        self.on_lost(&ring, &h, l).await;
                    }
                }
            }
        }
    }

    async fn on_tick(&self, ring: &OverlayHandle) {
        for h in self.all_hosted() {
            self.tick_account(ring, &h).await;
        }
    }
}

impl PeopleSink for People {
    fn apply(&self, m: &ChatMessage) -> String {
        if m.kind != Kind::People {
            return String::new();
        }
        self.apply_event(m, true)
    }
}

/// The accounts whose keys lie in the data directory from an earlier run.
fn hosted_before(data_dir: &Path) -> Vec<Who> {
    let Ok(dir) = std::fs::read_dir(data_dir.join("accounts")) else {
        return Vec::new();
    };
    let mut out: Vec<Who> = dir
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let stem = name.strip_suffix(".key")?;
            match stem {
                "token" => Some(Who::Token),
                s => s.strip_prefix("uid-")?.parse().ok().map(Who::Unix),
            }
        })
        .collect();
    out.sort();
    out.truncate(MAX_HOSTED - 1);
    out
}

async fn recv<T>(rx: &mut Option<tokio::sync::mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The account a message from `author` (`None`: the node's operator, in envelopes of the
/// first format) signed by node `node` is from: only if its profile says `node` hosts it.
fn verified_author<'a>(
    dir: &'a Directory,
    author: Option<&[u8; 32]>,
    node: &NodeId,
) -> Option<&'a User> {
    match author {
        Some(a) => dir.get(a).filter(|u| u.node == node.0),
        None => dir.host_of(&node.0),
    }
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod batch_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_hosted_before_are_found_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("accounts")).expect("dir");
        for f in ["uid-7.key", "token.key", "uid-x.key", "uid-8.nick", "other"] {
            std::fs::write(dir.path().join("accounts").join(f), "").expect("write");
        }
        assert_eq!(hosted_before(dir.path()), vec![Who::Unix(7), Who::Token]);
    }
}
