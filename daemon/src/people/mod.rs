//! The people service: the account this node hosts, its network-wide unique nickname, its
//! presence, and the directory of every account on the network.
//!
//! - `event.rs`: people events on the wire (signed profiles, node-down reports);
//! - `directory.rs`: the user list built from verified events;
//! - this file: the hosted account's life — claiming its nickname (a *claim* record signed by
//!   the account; a taken name gets a random numeric suffix, and the person is told why),
//!   announcing its profile (a people event broadcast like a message), going away after
//!   `chat.away_after_secs` without activity, going offline at a graceful stop, reporting a
//!   predecessor that died without leaving, renaming itself when a partition heals and its
//!   name turns out to be another's, and refuting a false report of its own death.
//!
//! See `docs/protocol.md`, "People", and `docs/security.md` for who holds which key.

pub mod directory;
pub mod event;

use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use chat_overlay::records::{Kind as RecordKind, Record, RecordError};
use chat_overlay::{Event as RingEvent, NodeId, Peer};
use ed25519_dalek::SigningKey;
use tokio::sync::{Notify, broadcast, watch};
use tracing::{debug, info, warn};

use crate::chat::envelope::Kind;
use crate::chat::ratelimit::{Bucket, Rate};
use crate::chat::{Chat, ChatMessage, PeopleSink};
use crate::identity::{Identity, IdentityError};
use crate::nickname::{MAX_LEN, Nickname, NicknameError};
use crate::records::{LostName, Records, RecordsError, unix_ms};
use crate::ring::RingHandle;
use directory::{Directory, User};
use event::{Event, MAX_AWAY_BYTES, Presence, Profile};

/// The file of the node operator's account key in the data directory.
pub const ACCOUNT_KEY_FILE: &str = "account.key";
/// The file remembering the nickname held (and the configured wish it came from), so that a
/// name changed with `chatctl nick` or suffixed survives a restart.
pub const NICK_FILE: &str = "account.nick";
/// Suffixed names tried when the wished one is taken.
const SUFFIX_ATTEMPTS: usize = 8;
/// How often the service looks at its clocks (auto-away, claim renewal, pending announces).
const TICK: Duration = Duration::from_secs(2);
/// How often the nickname claim is signed again with a fresh expiry.
const RECLAIM: Duration = Duration::from_secs(24 * 3600);
/// Name and presence changes an account may make: per second, and in a burst.
const CHANGES: Rate = Rate {
    per_second: 0.2,
    burst: 10.0,
};
/// User events a slow watcher may fall behind by.
const WATCH_QUEUE: usize = 1024;

/// The service's settings.
#[derive(Clone, Debug)]
pub struct PeopleConfig {
    /// The nickname wished for.
    pub wish: Nickname,
    /// Inactivity after which the account goes away (`chat.away_after_secs`; zero: never).
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
    /// Not a ring member yet.
    #[error("this node has not joined a ring yet")]
    NotJoined,
    /// The name and every suffixed form tried are taken.
    #[error("{0} and {SUFFIX_ATTEMPTS} suffixed forms of it are taken; choose another name")]
    AllTaken(String),
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
    /// The account (zero for a node-down report).
    pub account: [u8; 32],
    /// When (Unix milliseconds).
    pub at_ms: u64,
}

/// The hosted account's own state.
#[derive(Debug)]
struct Me {
    nick: Option<String>,
    claim: Option<Record>,
    /// Why the name is not the one wished for (empty when it is).
    note: String,
    presence: Presence,
    away: String,
    /// Away because of inactivity (activity brings it back).
    auto_away: bool,
    since_ms: u64,
    version: u64,
    last_active: Instant,
    claimed_at: Option<Instant>,
    /// A profile waits to be broadcast (the last try was refused, or a refutation is due).
    dirty: bool,
    changes: Bucket,
}

/// The people service.
#[derive(Debug)]
pub struct People {
    key: SigningKey,
    nick_file: std::path::PathBuf,
    account: [u8; 32],
    node: [u8; 32],
    cfg: PeopleConfig,
    chat: Chat,
    records: Arc<Records>,
    dir: Mutex<Directory>,
    me: Mutex<Me>,
    events: broadcast::Sender<UserEvent>,
    wake: Notify,
}

impl People {
    /// Loads (or creates) the operator's account key in `data_dir`, registers it with the
    /// records service and rebuilds the directory from the stored people events.
    pub fn open(
        data_dir: &Path,
        node: NodeId,
        chat: Chat,
        records: Arc<Records>,
        cfg: PeopleConfig,
    ) -> Result<Arc<People>, IdentityError> {
        let (identity, _) = Identity::load_or_create_file(data_dir, ACCOUNT_KEY_FILE)?;
        let key = identity.signing_key().clone();
        records.add_signer(key.clone());
        let now = Instant::now();
        let people = Arc::new(People {
            nick_file: data_dir.join(NICK_FILE),
            account: key.verifying_key().to_bytes(),
            key,
            node: node.0,
            cfg,
            chat: chat.clone(),
            records,
            dir: Mutex::new(Directory::default()),
            me: Mutex::new(Me {
                nick: None,
                claim: None,
                note: String::new(),
                presence: Presence::Online,
                away: String::new(),
                auto_away: false,
                since_ms: unix_ms(),
                version: 0,
                last_active: now,
                claimed_at: None,
                dirty: false,
                changes: Bucket::full(CHANGES, now),
            }),
            events: broadcast::channel(WATCH_QUEUE).0,
            wake: Notify::new(),
        });
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
        // Our own last profile, from before the restart, is history now.
        if let Some(u) = people.directory().get(&people.account) {
            people.lock_me().version = u.version;
        }
        chat.set_people(people.clone());
        Ok(people)
    }

    fn directory(&self) -> MutexGuard<'_, Directory> {
        self.dir.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_me(&self) -> MutexGuard<'_, Me> {
        self.me.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The account's public key.
    pub fn account(&self) -> [u8; 32] {
        self.account
    }

    /// The effective nickname (none until claimed) and why it differs from the wish.
    pub fn nickname(&self) -> (Option<String>, String) {
        let me = self.lock_me();
        (me.nick.clone(), me.note.clone())
    }

    /// The hosted account's presence and away message.
    pub fn presence(&self) -> (Presence, String) {
        let me = self.lock_me();
        (me.presence, me.away.clone())
    }

    /// Every account known, by shown name.
    pub fn list(&self) -> Vec<(String, User)> {
        self.directory().list()
    }

    /// User events from now on.
    pub fn watch(&self) -> broadcast::Receiver<UserEvent> {
        self.events.subscribe()
    }

    /// The name shown for messages signed by node `node`: its account's verified nickname,
    /// or `?` and the node's short id when no verified profile names that node.
    pub fn name_for_node(&self, node: &NodeId) -> String {
        let dir = self.directory();
        match dir.host_of(&node.0) {
            Some(u) => dir.display(u),
            None => format!("?{}", node.short()),
        }
    }

    /// The person did something (sent, changed presence): resets the inactivity clock and
    /// ends an automatic away.
    pub fn touch(&self) {
        let mut me = self.lock_me();
        me.last_active = Instant::now();
        if me.auto_away && me.presence == Presence::Away {
            me.auto_away = false;
            me.presence = Presence::Online;
            me.away.clear();
            me.since_ms = unix_ms();
            me.dirty = true;
            drop(me);
            self.wake.notify_one();
        }
    }

    fn take_change(&self) -> Result<(), PeopleError> {
        let mut me = self.lock_me();
        me.changes
            .take(CHANGES, Instant::now())
            .map_err(PeopleError::TooFast)
    }

    /// Goes away with `message` (`None`: back online). Announced at once.
    pub async fn set_away(
        &self,
        ring: &RingHandle,
        message: Option<String>,
    ) -> Result<(), PeopleError> {
        if let Some(m) = &message
            && (m.len() > MAX_AWAY_BYTES || m.chars().any(char::is_control))
        {
            return Err(PeopleError::AwayTooLong);
        }
        self.take_change()?;
        {
            let mut me = self.lock_me();
            me.last_active = Instant::now();
            me.auto_away = false;
            me.presence = if message.is_some() {
                Presence::Away
            } else {
                Presence::Online
            };
            me.away = message.unwrap_or_default();
            me.since_ms = unix_ms();
        }
        self.announce(ring).await
    }

    /// Changes the nickname to `wish` (with a suffix if it is taken); returns the name got
    /// and, when it differs, why.
    pub async fn set_nick(
        &self,
        ring: &RingHandle,
        wish: &str,
    ) -> Result<(String, String), PeopleError> {
        let wish: Nickname = wish.parse()?;
        self.take_change()?;
        let (nick, claim, note) = self.claim(&wish).await?;
        {
            let mut me = self.lock_me();
            me.nick = Some(nick.clone());
            me.claim = Some(claim);
            me.note = note.clone();
            me.claimed_at = Some(Instant::now());
            me.last_active = Instant::now();
        }
        self.announce(ring).await?;
        Ok((nick, note))
    }

    /// Claims `wish` or, while it is taken, a suffixed form of it; the third value says why
    /// the name got differs from the wish (empty when it does not).
    async fn claim(&self, wish: &Nickname) -> Result<(String, Record, String), PeopleError> {
        for attempt in 0..=SUFFIX_ATTEMPTS {
            let name = if attempt == 0 {
                wish.to_string()
            } else {
                suffixed(wish.as_str())
            };
            let key = event::normalise(&name).into_bytes();
            // A claim of ours from before a restart keeps its first creation time.
            let created = match self.records.get(RecordKind::Nick, key.clone()).await {
                Ok(held) => held
                    .iter()
                    .find(|r| r.owner == self.account)
                    .map(|r| r.created),
                Err(_) => None,
            };
            let put = self
                .records
                .put_as(
                    &self.key,
                    RecordKind::Nick,
                    key,
                    name.clone().into_bytes(),
                    self.cfg.nick_ttl,
                    created,
                )
                .await;
            match put {
                Ok((record, _)) if attempt == 0 => {
                    info!(nickname = %name, "nickname claimed");
                    self.remember_nick(&name);
                    return Ok((name, record, String::new()));
                }
                Ok((record, _)) => {
                    warn!(wished = %wish, got = %name, "the nickname is taken by another user; using a suffixed form");
                    let note = format!(
                        "the nickname {wish} is taken by another user on the network; you are {name} instead"
                    );
                    self.remember_nick(&name);
                    return Ok((name, record, note));
                }
                Err(RecordsError::Refused(RecordError::Taken { .. })) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PeopleError::AllTaken(wish.to_string()))
    }

    /// The nickname held before a restart, if the configured wish is still the one it came
    /// from (a new `--nick` starts over).
    fn remembered_nick(&self) -> Option<Nickname> {
        let text = std::fs::read_to_string(&self.nick_file).ok()?;
        let mut lines = text.lines();
        let (wish, held) = (lines.next()?, lines.next()?);
        if wish != self.cfg.wish.as_str() {
            return None;
        }
        held.parse().ok()
    }

    /// Remembers the nickname held now (a failure is logged: the name is only re-derived
    /// from the configured one at the next start).
    fn remember_nick(&self, held: &str) {
        let tmp = self.nick_file.with_extension("nick.tmp");
        let result = std::fs::write(&tmp, format!("{}\n{held}\n", self.cfg.wish))
            .and_then(|()| std::fs::rename(&tmp, &self.nick_file));
        if let Err(e) = result {
            warn!(error = %e, file = %self.nick_file.display(), "could not remember the nickname");
        }
    }

    /// Signs the current profile and broadcasts it.
    async fn announce(&self, ring: &RingHandle) -> Result<(), PeopleError> {
        let Some(bytes) = self.profile_event() else {
            return Ok(());
        };
        let line = match Event::decode(&bytes) {
            Ok(Event::Profile(sp)) => match sp.open(&self.node) {
                Ok(p) => self.directory().apply(p),
                Err(_) => String::new(),
            },
            _ => String::new(),
        };
        let chat = self.chat.clone();
        let shown = line.clone();
        let result = ring
            .originate(move || chat.send_event(&bytes, &shown).map(|l| (l.seq, l.wire, ())))
            .await;
        match result {
            Ok(()) => {
                self.lock_me().dirty = false;
                if !line.is_empty() {
                    self.publish(line, self.account);
                }
                Ok(())
            }
            Err(e) => {
                self.lock_me().dirty = true;
                Err(PeopleError::Ring(e.to_string()))
            }
        }
    }

    /// The event bytes of the current profile with a new version (`None` before the
    /// nickname is claimed).
    fn profile_event(&self) -> Option<Vec<u8>> {
        let mut me = self.lock_me();
        let (nick, claim) = (me.nick.clone()?, me.claim.clone()?);
        me.version = unix_ms().max(me.version + 1);
        let p = Profile {
            account: self.account,
            node: self.node,
            nick,
            claim,
            guest: false,
            presence: me.presence,
            away: me.away.clone(),
            since_ms: me.since_ms,
            version: me.version,
        };
        Some(Event::Profile(p.sign(&self.key)).encode())
    }

    fn publish(&self, line: String, account: [u8; 32]) {
        let _ = self.events.send(UserEvent {
            line,
            account,
            at_ms: unix_ms(),
        });
    }

    /// Applies a stored or arriving people event; returns its line.
    fn apply_event(&self, m: &ChatMessage, live: bool) -> String {
        let from = m.from_id();
        match Event::decode(&m.event) {
            Ok(Event::Profile(sp)) => match sp.open(&from.0) {
                Ok(p) if p.account == self.account && live => String::new(),
                Ok(p) => {
                    let account = p.account;
                    let line = self.directory().apply(p);
                    if live && !line.is_empty() {
                        self.publish(line.clone(), account);
                    }
                    line
                }
                Err(e) => {
                    debug!(error = %e, from = %from.short(), "people event refused");
                    String::new()
                }
            },
            Ok(Event::NodeDown(node)) if node == self.node => {
                if live {
                    info!(reporter = %from.short(), "a neighbour reported this node dead; saying otherwise");
                    self.lock_me().dirty = true;
                    self.wake.notify_one();
                }
                String::new()
            }
            Ok(Event::NodeDown(node)) => {
                let lines = self.directory().node_down(&node, m.hlc.millis());
                if live {
                    for l in &lines {
                        self.publish(l.clone(), [0; 32]);
                    }
                }
                lines.join("; ")
            }
            Err(e) => {
                debug!(error = %e, from = %from.short(), "people event refused");
                String::new()
            }
        }
    }

    /// Reports node `dead` (our predecessor, gone without leaving) to everybody.
    async fn report_down(&self, ring: &RingHandle, dead: NodeId) {
        let lines = self.directory().node_down(&dead.0, unix_ms());
        if lines.is_empty() {
            // Its users said goodbye (a graceful stop), or it hosted nobody we know of.
            debug!(node = %dead.short(), "predecessor gone; nobody to report offline");
            return;
        }
        let line = lines.join("; ");
        let bytes = Event::NodeDown(dead.0).encode();
        let chat = self.chat.clone();
        let shown = line.clone();
        match ring
            .originate(move || chat.send_event(&bytes, &shown).map(|l| (l.seq, l.wire, ())))
            .await
        {
            Ok(()) => {
                info!(node = %dead.short(), "reported a dead neighbour's users offline");
                for l in lines {
                    self.publish(l, [0; 32]);
                }
            }
            Err(e) => warn!(node = %dead.short(), error = %e, "could not report a dead neighbour"),
        }
    }

    /// At a graceful stop: says the account is offline (bounded by `deadline`).
    pub async fn go_offline(&self, ring: &RingHandle, deadline: Duration) {
        {
            let mut me = self.lock_me();
            if me.nick.is_none() {
                return;
            }
            me.presence = Presence::Offline;
            me.away.clear();
            me.since_ms = unix_ms();
        }
        match tokio::time::timeout(deadline, self.announce(ring)).await {
            Ok(Ok(())) => info!("told the network this node's users are offline"),
            Ok(Err(e)) => warn!(error = %e, "could not announce going offline"),
            Err(_) => warn!("announcing going offline took longer than {deadline:?}"),
        }
    }

    /// The service's life: claim the name once joined, announce, then keep presence true.
    pub async fn run(self: Arc<Self>, ring: RingHandle, mut joined: watch::Receiver<bool>) {
        let mut lost = self.records.lost_names();
        let mut ring_events = ring.subscribe();
        while !*joined.borrow_and_update() {
            if joined.changed().await.is_err() {
                return;
            }
        }
        // The first claim: retried until it works (the ring may still be settling).
        let first = self
            .remembered_nick()
            .unwrap_or_else(|| self.cfg.wish.clone());
        loop {
            match self.claim(&first).await {
                Ok((nick, claim, note)) => {
                    let mut me = self.lock_me();
                    me.nick = Some(nick);
                    me.claim = Some(claim);
                    me.note = note;
                    me.claimed_at = Some(Instant::now());
                    me.dirty = true;
                    break;
                }
                Err(e) => {
                    warn!(error = %e, "could not claim the nickname yet; retrying");
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
            }
        }
        let mut predecessor: Option<Peer> = None;
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = tick.tick() => self.on_tick(&ring).await,
                () = self.wake.notified() => self.on_tick(&ring).await,
                ev = ring_events.recv() => match ev {
                    Ok(RingEvent::PredecessorChanged(new)) => {
                        if let Some(dead) = vanished(predecessor, new, NodeId(self.node)) {
                            self.report_down(&ring, dead).await;
                        }
                        predecessor = new;
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                Some(l) = recv_lost(&mut lost) => self.on_lost(&ring, l).await,
            }
        }
    }

    async fn on_tick(&self, ring: &RingHandle) {
        let (dirty, reclaim) = {
            let mut me = self.lock_me();
            let idle = me.last_active.elapsed();
            if !self.cfg.away_after.is_zero()
                && me.presence == Presence::Online
                && idle >= self.cfg.away_after
            {
                info!(idle_secs = idle.as_secs(), "inactive: away");
                me.presence = Presence::Away;
                me.auto_away = true;
                me.since_ms = unix_ms();
                me.dirty = true;
            }
            let reclaim = me.claimed_at.is_some_and(|t| t.elapsed() >= RECLAIM);
            (me.dirty, reclaim)
        };
        if reclaim {
            let wish = self.lock_me().nick.clone();
            if let Some(Ok(n)) = wish.map(|w| w.parse::<Nickname>()) {
                match self.claim(&n).await {
                    Ok((nick, claim, note)) => {
                        let mut me = self.lock_me();
                        me.dirty |= me.nick.as_deref() != Some(&nick);
                        if !note.is_empty() {
                            me.note = note;
                        }
                        me.nick = Some(nick);
                        me.claim = Some(claim);
                        me.claimed_at = Some(Instant::now());
                    }
                    Err(e) => warn!(error = %e, "could not renew the nickname claim"),
                }
            }
        }
        if dirty && let Err(e) = self.announce(ring).await {
            debug!(error = %e, "announcement not taken yet; retrying");
        }
        self.check_conflict(ring).await;
    }

    /// Another account shows our name with an earlier claim (both were granted at once, on
    /// both sides of a split or by holders that did not yet agree): ask the DHT who holds it,
    /// and take a suffixed name if it is not us.
    async fn check_conflict(&self, ring: &RingHandle) {
        if !self.directory().loses_name(&self.account) {
            return;
        }
        let Some(nick) = self.lock_me().nick.clone() else {
            return;
        };
        let name = event::normalise(&nick).into_bytes();
        match self.records.get(RecordKind::Nick, name.clone()).await {
            Ok(held) => {
                if let Some(holder) = held.first().map(|r| r.owner)
                    && holder != self.account
                {
                    self.on_lost(
                        ring,
                        LostName {
                            owner: self.account,
                            name,
                            holder,
                        },
                    )
                    .await;
                }
            }
            Err(e) => debug!(error = %e, "could not check who holds our nickname"),
        }
    }

    /// Our name is held by another account (a partition healed): take a suffixed form.
    async fn on_lost(&self, ring: &RingHandle, lost: LostName) {
        let current = self.lock_me().nick.clone();
        let Some(current) = current else {
            return;
        };
        if lost.owner != self.account || event::normalise(&current).into_bytes() != lost.name {
            return;
        }
        warn!(nickname = %current, "another user holds this nickname (claimed first, on the other side of a partition); renaming");
        let Ok(base) = current.parse::<Nickname>() else {
            return;
        };
        let base: Nickname = strip_suffix(base.as_str()).parse().unwrap_or(base);
        match self.claim_suffixed(&base).await {
            Ok((nick, claim)) => {
                let note = format!(
                    "the nickname {current} was also granted to another user who claimed it first (at the same time, or while the network was split); you are {nick} now"
                );
                {
                    let mut me = self.lock_me();
                    me.nick = Some(nick);
                    me.claim = Some(claim);
                    me.note = note;
                    me.claimed_at = Some(Instant::now());
                }
                if let Err(e) = self.announce(ring).await {
                    warn!(error = %e, "could not announce the new nickname yet");
                }
            }
            Err(e) => warn!(error = %e, "could not rename after losing the nickname"),
        }
    }

    async fn claim_suffixed(&self, base: &Nickname) -> Result<(String, Record), PeopleError> {
        for _ in 0..SUFFIX_ATTEMPTS {
            let name = suffixed(base.as_str());
            match self
                .records
                .put_as(
                    &self.key,
                    RecordKind::Nick,
                    event::normalise(&name).into_bytes(),
                    name.clone().into_bytes(),
                    self.cfg.nick_ttl,
                    None,
                )
                .await
            {
                Ok((record, _)) => {
                    self.remember_nick(&name);
                    return Ok((name, record));
                }
                Err(RecordsError::Refused(RecordError::Taken { .. })) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PeopleError::AllTaken(base.to_string()))
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

async fn recv_lost(lost: &mut Option<tokio::sync::mpsc::Receiver<LostName>>) -> Option<LostName> {
    match lost {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The predecessor `old` is gone (not merely passed by a node that joined between it and
/// us) when the new predecessor is none, or does not lie between `old` and `me`.
fn vanished(old: Option<Peer>, new: Option<Peer>, me: NodeId) -> Option<NodeId> {
    let old = old?;
    match new {
        Some(n) if n.id == old.id => None,
        Some(n) if n.id.in_open(&old.id, &me) => None,
        _ => Some(old.id),
    }
}

/// `base` with a random four-digit suffix, shortened to fit [`MAX_LEN`].
fn suffixed(base: &str) -> String {
    let n = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % 9000
        + 1000;
    let keep = base.len().min(MAX_LEN - 4);
    format!("{}{n}", &base[..keep])
}

/// `name` without a four-digit suffix a collision gave it.
fn strip_suffix(name: &str) -> &str {
    let b = name.as_bytes();
    if b.len() > 4 && b[b.len() - 4..].iter().all(u8::is_ascii_digit) {
        &name[..name.len() - 4]
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_overlay::Peer;

    fn peer(b: u8) -> Option<Peer> {
        Some(Peer {
            id: NodeId([b; 32]),
            addr: "127.0.0.1:1".parse().expect("addr"),
        })
    }

    #[test]
    fn a_predecessor_that_vanished_is_told_from_one_passed_by_a_joiner() {
        let me = NodeId([50; 32]);
        assert_eq!(
            vanished(peer(10), peer(20), me),
            None,
            "a node joined between"
        );
        assert_eq!(vanished(peer(10), peer(5), me), Some(NodeId([10; 32])));
        assert_eq!(vanished(peer(10), None, me), Some(NodeId([10; 32])));
        assert_eq!(vanished(None, peer(5), me), None);
    }

    #[test]
    fn suffixes_fit_and_come_off() {
        let long = "a".repeat(MAX_LEN);
        let s = suffixed(&long);
        assert_eq!(s.len(), MAX_LEN);
        assert!(s.parse::<Nickname>().is_ok());
        assert_eq!(strip_suffix("alice4821"), "alice");
        assert_eq!(strip_suffix("bob"), "bob");
    }
}
