//! The daemon's private-message driver (`daemon/src/dm/`) on the simulator: one
//! [`chat_dm::Engine`] per hosted account, its [`Action`]s carried out through the simulated
//! node's records and direct sub-protocols, and what they answer fed back to the engine.
//!
//! - `FetchBundle` → a records get of kind `Keys`, key = the peer's account; the bundle is
//!   decoded and checked ([`Bundle::decode`]) and reported with [`Engine::bundle_fetched`].
//! - `Send` → unless `mailbox`, a direct send (body = recipient account ‖ value) to the node
//!   the directory names for the recipient; if that fails, or with `mailbox`, a records put of
//!   [`chat_dm::item_record`] (`own: false`); then [`Engine::outcome`] (not for acks, seq 0).
//! - `Reput` → the same record put again; a `Removed` refusal → [`Engine::item_removed`].
//! - `Remove` → a mailbox removal (`Value::Removed`, at most [`MAX_REMOVED`] hashes a record),
//!   signed by the account, put with `own: true`; the hashes of one tick go together (a
//!   mailbox read whose senders' bundles arrive one by one makes one `Remove` per sender).
//!   With `direct_only` (an item already stored, sent again because its recipient came back)
//!   a failed direct send is reported as `Failed`, never stored again. A stored item (not an
//!   ack) pokes the recipient's node when it is a member: a direct body of the account alone.
//! - Once the node is a member after a start, the account publishes its bundle and reads its
//!   own mailbox, handing the items to [`Engine::receive`], when the daemon's
//!   [`Schedule`] says (at start, then after 2 s doubling up to every 120 s, within a second
//!   of a poke); one read or publication at a time, as the daemon awaits each.
//! - Presence: each tick, a sender with unacknowledged messages for an account whose node is a
//!   member again since it last looked (a new incarnation, as the daemon's directory sees a
//!   fresh announcement) calls [`Engine::peer_online`], as the daemon's [`OnlineWatch`] says.
//!
//! The formats (the direct body `account ‖ sealed`, a poke, a mailbox read's items, a bundle
//! found), the schedule, the watch and the retry delays are the daemon's own, from
//! [`chat_dm::delivery`].
//!
//! Like the daemon, the driver persists what the engine changed ([`Engine::take_dirty`]) to the
//! host's "disk" before it carries out any action, so a crash loses nothing the network saw;
//! a restart restores the engine from that disk ([`Engine::restore`], then [`Engine::resume`]:
//! sends in flight at the crash are made again at once) and publishes the bundle again.
//!
//! The directory of online accounts is deliberately stale: it names every account's node, so
//! each first attempt goes direct and, when the recipient is away, fails (`NotInRing`) and
//! falls back to the mailbox — the path a presence directory that has not yet heard of a
//! departure takes.
//!
//! Determinism: the engines iterate hash maps, so the actions of one call are put in a fixed
//! order before they are carried out, and nothing the driver schedules depends on the
//! (unseedable) randomness of the cryptography — only on the seeded simulator.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chat_dm::delivery::{self, DirectBody, OnlineWatch, Route, Schedule};
use chat_dm::{Action, Delivery, Engine, Shown, Status};
use chat_overlay::DirectEvent;
use chat_overlay::direct::DirectError;
use chat_overlay::records::{Hash, Kind, MAX_REMOVED, Record, RecordError, RecordsEvent, Value};
use chat_overlay::sim::Sim;
use ed25519_dalek::SigningKey;

#[path = "dm_presence.rs"]
mod presence;

/// How often an online account reads its mailbox at most (the daemon's period).
pub const DRAIN_EVERY: Duration = Duration::from_millis(delivery::DRAIN_MS);
/// Lifetime of a published bundle record.
pub const BUNDLE_TTL_MS: u64 = 7 * 24 * 3_600_000;
/// Undelivered messages are given up after this long (the engine's `ttl_ms`).
pub const MESSAGE_TTL_MS: u64 = 30 * 24 * 3_600_000;
/// A removal outlives every item it names (items live at most `ITEM_LIFE_MS`).
const REMOVAL_TTL_MS: u64 = chat_dm::engine::ITEM_LIFE_MS + 3_600_000;

/// What a crash must not lose: the engine's persisted parts.
#[derive(Default)]
struct Disk {
    core: Vec<u8>,
    peers: BTreeMap<[u8; 32], Vec<u8>>,
}

/// One hosted account.
struct Hosted {
    signer: SigningKey,
    /// `None` while the node is down.
    engine: Option<Engine>,
    disk: Disk,
    /// When to publish the bundle and read the mailbox (the daemon's).
    schedule: Schedule,
    /// A publication or read is under way (the daemon awaits each before the next step).
    busy: u8,
    /// How many times the node became a member (what other nodes' presence shows).
    incarnation: u64,
    was_member: bool,
    /// Per recipient with messages waiting: its incarnation when last seen online.
    seen: OnlineWatch<u64>,
    /// Versions of this account's removals (a mailbox item's version is a nonce).
    removals: u64,
    /// Items taken since the last tick, removed together then (one removal record for up
    /// to [`MAX_REMOVED`] of them rather than one per engine call).
    removing: Vec<Hash>,
}

/// What a records token or a direct token was for.
enum Op {
    PublishBundle,
    Fetch {
        peer: [u8; 32],
    },
    Item {
        to: [u8; 32],
        seq: u64,
        record: Record,
    },
    Reput {
        to: [u8; 32],
        seq: u64,
    },
    Remove,
    Drain,
    Direct {
        to: [u8; 32],
        seq: u64,
        value: Vec<u8>,
        expires_ms: u64,
        direct_only: bool,
    },
    Poke,
}

/// The driver's counters.
#[derive(Clone, Debug, Default)]
pub struct DmStats {
    /// Bundles published (puts accepted).
    pub bundles_published: u64,
    /// Bundle fetches, and of those the ones that found no valid bundle.
    pub bundle_fetches: u64,
    pub bundles_missing: u64,
    /// Direct sends accepted by the recipient's node, and failed.
    pub direct_ok: u64,
    pub direct_failed: u64,
    /// Mailbox items put (messages and acks), accepted and refused or failed.
    pub items_put: u64,
    pub items_failed: u64,
    /// Re-puts of pending items, and of those refused because the recipient removed the item.
    pub reputs: u64,
    pub reputs_removed: u64,
    /// Mailbox reads, and the items they handed to the engines.
    pub drains: u64,
    pub items_drained: u64,
    /// Removal records put, and of those refused or failed.
    pub removals: u64,
    pub removals_failed: u64,
    /// Direct bodies received that named another account or were too short.
    pub misaddressed: u64,
    /// Pokes sent after a stored item, and senders' direct retries to a recipient seen online.
    pub pokes: u64,
    pub online_retries: u64,
}

/// The driver for every hosted account of a simulation.
#[derive(Default)]
pub struct Driver {
    hosts: BTreeMap<u32, Hosted>,
    by_account: HashMap<[u8; 32], u32>,
    ops: HashMap<(u32, u64), Op>,
    next_token: u64,
    /// Messages shown, by the host that showed them, in order.
    pub shown: Vec<(u32, Shown)>,
    /// Edits and deletes to apply, by the host that got them, in order.
    pub changes: Vec<(u32, chat_dm::Changed)>,
    /// Status changes reported to the senders: (sender host, message id, status).
    pub statuses: Vec<(u32, [u8; 16], Status)>,
    /// Mailbox items (of messages, not acks) accepted by the DHT: (recipient, record).
    pub stored: Vec<([u8; 32], Record)>,
    /// Counters.
    pub stats: DmStats,
}

/// Wall-clock milliseconds of the simulation's now (records' time base).
pub fn now_ms(sim: &Sim) -> u64 {
    sim.cfg.chord.records.wall_ms(sim.now())
}

/// Puts one call's actions in a fixed order (the engine's hash maps give them in any order);
/// the relative order of what is shown is kept.
fn order(actions: &mut [Action]) {
    actions.sort_by_key(|a| match a {
        Action::FetchBundle { peer } => (1u8, *peer, 0u64),
        Action::Send { to, seq, .. } => (2, *to, *seq),
        Action::Reput { to, seq, .. } => (3, *to, *seq),
        _ => (0, [0; 32], 0),
    });
}

impl Driver {
    /// An empty driver.
    pub fn new() -> Driver {
        Driver::default()
    }

    /// The account hosted on `host`, if any.
    pub fn account(&self, host: u32) -> Option<[u8; 32]> {
        self.hosts
            .get(&host)
            .map(|h| h.signer.verifying_key().to_bytes())
    }

    /// The host of `account`, if it is hosted here.
    pub fn host_of(&self, account: &[u8; 32]) -> Option<u32> {
        self.by_account.get(account).copied()
    }

    /// The engine of `host` while it is up.
    pub fn engine(&self, host: u32) -> Option<&Engine> {
        self.hosts.get(&host).and_then(|h| h.engine.as_ref())
    }

    /// The engine of `host` while it is up, mutably (for the local user's sends).
    pub fn engine_mut(&mut self, host: u32) -> Option<&mut Engine> {
        self.hosts.get_mut(&host).and_then(|h| h.engine.as_mut())
    }

    /// Hosts a new account of `signer` on the running `host`: a fresh engine; its bundle is
    /// published and its mailbox read once the node is a member.
    pub fn host(&mut self, sim: &Sim, host: u32, signer: SigningKey) {
        let now = now_ms(sim);
        let engine = Engine::new(signer.clone(), MESSAGE_TTL_MS, now);
        self.by_account.insert(engine.me(), host);
        let mut h = Hosted {
            signer,
            engine: Some(engine),
            disk: Disk::default(),
            schedule: Schedule::new(),
            busy: 0,
            incarnation: 0,
            was_member: false,
            seen: OnlineWatch::new(),
            removals: 0,
            removing: Vec::new(),
        };
        persist(&mut h);
        self.hosts.insert(host, h);
    }

    /// The user sends `text` to `to` from `host`: the engine's answer (the message as shown,
    /// or why not).
    pub fn send_text(
        &mut self,
        sim: &mut Sim,
        host: u32,
        to: [u8; 32],
        text: &str,
    ) -> Result<Shown, chat_dm::DmError> {
        let now = now_ms(sim);
        let h = self
            .hosts
            .get_mut(&host)
            .expect("sends only from hosted accounts");
        let e = h.engine.as_mut().expect("sends only from a running node");
        let shown = e.send_text(to, text, now)?;
        // Due at once: carry the attempt out now rather than at the next tick.
        let actions = e.tick(now);
        self.run(sim, host, actions);
        Ok(shown)
    }

    /// The user of `host` edits its message `id` to `to` (the driver's
    /// [`Driver::send_text`] for a change).
    pub fn edit_text(
        &mut self,
        sim: &mut Sim,
        host: u32,
        to: [u8; 32],
        id: [u8; 16],
        text: &str,
    ) -> Result<(), chat_dm::DmError> {
        let now = now_ms(sim);
        let h = self
            .hosts
            .get_mut(&host)
            .expect("edits only from hosted accounts");
        let e = h.engine.as_mut().expect("edits only from a running node");
        e.change_direct(to, id, Some(text), now)?;
        let actions = e.tick(now);
        self.run(sim, host, actions);
        Ok(())
    }

    /// `host` stops: gracefully (`leave`) or by a crash. What was persisted stays.
    pub fn stop(&mut self, sim: &mut Sim, host: u32, leave: bool) {
        self.pump(sim);
        let removing = self
            .hosts
            .get_mut(&host)
            .map(|h| std::mem::take(&mut h.removing))
            .unwrap_or_default();
        if leave && !removing.is_empty() {
            self.remove(sim, host, removing);
        }
        if leave {
            sim.leave(host);
        } else {
            sim.crash(host);
        }
        if let Some(h) = self.hosts.get_mut(&host) {
            h.engine = None;
            h.busy = 0;
            h.was_member = false;
        }
        self.ops.retain(|(h, _), _| *h != host);
    }

    /// `host` starts again (same node id) through the member `via`, its engine restored from
    /// its disk; it publishes its bundle and reads its mailbox once it is a member.
    pub fn restart(&mut self, sim: &mut Sim, host: u32, via: u32) {
        sim.join(host, via);
        let Some(h) = self.hosts.get_mut(&host) else {
            return;
        };
        let peers: Vec<([u8; 32], Vec<u8>)> =
            h.disk.peers.iter().map(|(k, v)| (*k, v.clone())).collect();
        let (mut engine, bad) =
            Engine::restore(h.signer.clone(), MESSAGE_TTL_MS, &h.disk.core, peers)
                .expect("the engine's own export restores");
        engine.resume(now_ms(sim));
        assert_eq!(bad, 0, "every peer the engine exported restores");
        h.engine = Some(engine);
        h.schedule = Schedule::new();
        h.busy = 0;
        h.seen = OnlineWatch::new();
    }

    /// Messages every running engine still waits to have acknowledged.
    pub fn pending(&self) -> usize {
        self.hosts
            .values()
            .filter_map(|h| h.engine.as_ref())
            .map(|e| e.pending().len())
            .sum()
    }

    /// Dropped network input over all running engines, by reason.
    pub fn drops(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for e in self.hosts.values().filter_map(|h| h.engine.as_ref()) {
            for (d, n) in e.drops() {
                *out.entry(format!("{d:?}")).or_insert(0) += n;
            }
        }
        out
    }

    fn token(&mut self, host: u32, op: Op) -> u64 {
        self.next_token += 1;
        self.ops.insert((host, self.next_token), op);
        self.next_token
    }

    /// Ticks every running engine, publishes bundles and reads mailboxes that are due (on
    /// nodes that are ring members).
    pub fn tick(&mut self, sim: &mut Sim) {
        self.pump(sim);
        let now = now_ms(sim);
        let hosts: Vec<u32> = self.hosts.keys().copied().collect();
        let online = self.online(sim);
        for &host in &hosts {
            self.retry_online(sim, host, &online);
        }
        for host in hosts {
            let member = sim.members().contains(&sim.hosts[host as usize].peer.id);
            let Some(h) = self.hosts.get_mut(&host) else {
                continue;
            };
            let Some(e) = h.engine.as_mut() else {
                continue;
            };
            let actions = e.tick(now);
            let me = e.me();
            let due = if member && h.busy == 0 {
                h.schedule.due(now)
            } else {
                delivery::Due::default()
            };
            let bundle = due.publish.then(|| e.bundle());
            let drain = due.drain;
            if drain {
                // Counted from the read's start (the simulator's reads answer within the
                // records layer's timeouts, as the daemon's await does).
                h.schedule.drained(now);
            }
            h.busy += u8::from(due.publish) + u8::from(due.drain);
            self.run(sim, host, actions);
            if let Some(b) = bundle {
                let record = Record::sign(
                    Kind::Keys,
                    me.to_vec(),
                    Value::Data(b.encode()),
                    &self.hosts[&host].signer,
                    now,
                    now,
                    now + BUNDLE_TTL_MS,
                );
                let t = self.token(host, Op::PublishBundle);
                sim.put_record(host, t, record, true);
            }
            let removing = std::mem::take(&mut self.hosts.get_mut(&host).expect("hosted").removing);
            if !removing.is_empty() {
                self.remove(sim, host, removing);
            }
            if drain {
                self.stats.drains += 1;
                let t = self.token(host, Op::Drain);
                sim.get_record(host, t, Kind::Mailbox as u8, me.to_vec());
            }
        }
        self.pump(sim);
    }

    /// Hands the simulator's records and direct events to the engines, until none is left.
    pub fn pump(&mut self, sim: &mut Sim) {
        loop {
            let records = std::mem::take(&mut sim.record_events);
            let directs = std::mem::take(&mut sim.direct_events);
            if records.is_empty() && directs.is_empty() {
                return;
            }
            for (host, e) in records {
                match e {
                    RecordsEvent::PutDone { token, result } => {
                        if let Some(op) = self.ops.remove(&(host, token)) {
                            self.put_done(sim, host, op, result);
                        }
                    }
                    RecordsEvent::GetDone { token, result } => {
                        if let Some(op) = self.ops.remove(&(host, token)) {
                            self.get_done(sim, host, op, result);
                        }
                    }
                    _ => {}
                }
            }
            for (host, e) in directs {
                match e {
                    DirectEvent::Done { token, result } => {
                        if let Some(op) = self.ops.remove(&(host, token)) {
                            self.direct_done(sim, host, op, result);
                        }
                    }
                    DirectEvent::Received { body, .. } => self.direct_received(sim, host, body),
                }
            }
        }
    }

    fn put_done(&mut self, sim: &mut Sim, host: u32, op: Op, result: Result<u8, RecordError>) {
        let now = now_ms(sim);
        let actions = match op {
            Op::PublishBundle => {
                if result.is_ok() {
                    self.stats.bundles_published += 1;
                }
                if let Some(h) = self.hosts.get_mut(&host) {
                    // Published again at the next tick if it failed.
                    h.schedule.published(result.is_ok());
                    h.busy = h.busy.saturating_sub(1);
                }
                return;
            }
            Op::Item { to, seq, record } => {
                let ok = result.is_ok();
                if ok {
                    self.stats.items_put += 1;
                } else {
                    self.stats.items_failed += 1;
                }
                if seq == 0 {
                    return;
                }
                let Some(e) = self.hosts.get_mut(&host).and_then(|h| h.engine.as_mut()) else {
                    return;
                };
                let d = match result {
                    Ok(_) => {
                        self.stored.push((to, record.clone()));
                        Delivery::Stored(record)
                    }
                    Err(e) => delivery::put_failed(Some(&e)),
                };
                let actions = e.outcome(to, seq, d, now);
                if ok {
                    self.poke(sim, host, to);
                }
                actions
            }
            Op::Reput { to, seq } => {
                if result != Err(RecordError::Removed) {
                    return;
                }
                self.stats.reputs_removed += 1;
                let Some(e) = self.hosts.get_mut(&host).and_then(|h| h.engine.as_mut()) else {
                    return;
                };
                e.item_removed(to, seq, now);
                Vec::new()
            }
            Op::Remove => {
                if let Err(e) = result {
                    self.stats.removals_failed += 1;
                    if sim.progress {
                        eprintln!("host {host}: removal refused: {e}");
                    }
                }
                return;
            }
            Op::Fetch { .. } | Op::Drain | Op::Direct { .. } | Op::Poke => return,
        };
        self.run(sim, host, actions);
    }

    fn get_done(
        &mut self,
        sim: &mut Sim,
        host: u32,
        op: Op,
        result: Result<Vec<Record>, RecordError>,
    ) {
        let now = now_ms(sim);
        let Some(h) = self.hosts.get_mut(&host) else {
            return;
        };
        let actions = match op {
            Op::Fetch { peer } => {
                self.stats.bundle_fetches += 1;
                let bundle = result.ok().and_then(|rs| delivery::bundle_in(rs, &peer));
                if bundle.is_none() {
                    self.stats.bundles_missing += 1;
                }
                let Some(e) = h.engine.as_mut() else { return };
                e.bundle_fetched(peer, bundle, now)
            }
            Op::Drain => {
                h.busy = h.busy.saturating_sub(1);
                // A failed read: read again when the schedule says (as the daemon does).
                let Ok(records) = result else { return };
                let items = delivery::mailbox_items(records);
                if items.is_empty() {
                    return;
                }
                self.stats.items_drained += items.len() as u64;
                let Some(e) = h.engine.as_mut() else { return };
                e.receive(items, now)
            }
            _ => return,
        };
        self.run(sim, host, actions);
    }

    fn direct_done(&mut self, sim: &mut Sim, host: u32, op: Op, result: Result<(), DirectError>) {
        let Op::Direct {
            to,
            seq,
            value,
            expires_ms,
            direct_only,
        } = op
        else {
            return;
        };
        if result.is_ok() {
            self.stats.direct_ok += 1;
            if seq == 0 {
                return;
            }
            let now = now_ms(sim);
            let Some(e) = self.hosts.get_mut(&host).and_then(|h| h.engine.as_mut()) else {
                return;
            };
            let actions = e.outcome(to, seq, Delivery::Direct, now);
            self.run(sim, host, actions);
        } else {
            self.stats.direct_failed += 1;
            if delivery::after_direct_failure(direct_only) == Route::Mailbox {
                self.put_item(sim, host, to, seq, value, expires_ms);
                return;
            }
            let now = now_ms(sim);
            let Some(e) = self.hosts.get_mut(&host).and_then(|h| h.engine.as_mut()) else {
                return;
            };
            let actions = e.outcome(to, seq, delivery::direct_failed(), now);
            self.run(sim, host, actions);
        }
    }

    fn direct_received(&mut self, sim: &mut Sim, host: u32, body: Vec<u8>) {
        let now = now_ms(sim);
        let Some(h) = self.hosts.get_mut(&host) else {
            return;
        };
        let Some(e) = h.engine.as_mut() else { return };
        let value = match delivery::parse_body(&body) {
            Some(DirectBody::Poke(to)) if to == e.me() => {
                // Read the mailbox within a second (at most one read at a time).
                h.schedule.poked();
                return;
            }
            Some(DirectBody::Item { account, value }) if account == e.me() => value.to_vec(),
            _ => {
                self.stats.misaddressed += 1;
                return;
            }
        };
        let actions = e.receive(vec![(None, value)], now);
        self.run(sim, host, actions);
    }

    fn put_item(
        &mut self,
        sim: &mut Sim,
        host: u32,
        to: [u8; 32],
        seq: u64,
        value: Vec<u8>,
        expires_ms: u64,
    ) {
        let now = now_ms(sim);
        let record = chat_dm::item_record(&to, value, now, delivery::item_expiry(now, expires_ms));
        let t = self.token(
            host,
            Op::Item {
                to,
                seq,
                record: record.clone(),
            },
        );
        sim.put_record(host, t, record, false);
    }

    /// Persists what the engine of `host` changed, then carries out `actions`.
    fn run(&mut self, sim: &mut Sim, host: u32, mut actions: Vec<Action>) {
        let Some(h) = self.hosts.get_mut(&host) else {
            return;
        };
        persist(h);
        order(&mut actions);
        // What the engine answers to outcomes known at once (a send with nowhere to go).
        let mut follow = Vec::new();
        for a in actions {
            match a {
                Action::FetchBundle { peer } => {
                    let t = self.token(host, Op::Fetch { peer });
                    sim.get_record(host, t, Kind::Keys as u8, peer.to_vec());
                }
                Action::Send {
                    to,
                    seq,
                    value,
                    mailbox,
                    direct_only,
                    expires_ms,
                } => {
                    // The stale directory: every hosted account's node shows online.
                    let node = self
                        .by_account
                        .get(&to)
                        .map(|h| sim.hosts[*h as usize].peer.id);
                    match (delivery::route(mailbox, direct_only, node.is_some()), node) {
                        (Route::Direct, Some(node)) => {
                            let body = delivery::item_body(&to, &value);
                            let t = self.token(
                                host,
                                Op::Direct {
                                    to,
                                    seq,
                                    value,
                                    expires_ms,
                                    direct_only,
                                },
                            );
                            sim.send_direct(host, t, node, body);
                        }
                        (Route::Mailbox, _) => self.put_item(sim, host, to, seq, value, expires_ms),
                        _ => {
                            let now = now_ms(sim);
                            if seq > 0
                                && let Some(e) =
                                    self.hosts.get_mut(&host).and_then(|h| h.engine.as_mut())
                            {
                                let more = e.outcome(to, seq, delivery::direct_failed(), now);
                                follow.extend(more);
                            }
                        }
                    }
                }
                Action::Reput { to, seq, record } => {
                    self.stats.reputs += 1;
                    let t = self.token(host, Op::Reput { to, seq });
                    sim.put_record(host, t, record, false);
                }
                Action::Remove(hashes) => {
                    if let Some(h) = self.hosts.get_mut(&host) {
                        h.removing.extend(hashes);
                    }
                }
                Action::Show(s) => self.shown.push((host, s)),
                Action::Status { id, status, .. } => self.statuses.push((host, id, status)),
                Action::Change(c) => self.changes.push((host, c)),
                Action::Group(_) => {}
            }
        }
        if !follow.is_empty() {
            self.run(sim, host, follow);
        }
    }

    fn remove(&mut self, sim: &mut Sim, host: u32, hashes: Vec<Hash>) {
        let now = now_ms(sim);
        for chunk in hashes.chunks(MAX_REMOVED) {
            let Some(h) = self.hosts.get_mut(&host) else {
                return;
            };
            h.removals += 1;
            let me = h.signer.verifying_key().to_bytes();
            let record = Record::sign(
                Kind::Mailbox,
                me.to_vec(),
                Value::Removed(chunk.to_vec()),
                &h.signer,
                h.removals,
                now,
                now + REMOVAL_TTL_MS,
            );
            self.stats.removals += 1;
            let t = self.token(host, Op::Remove);
            sim.put_record(host, t, record, true);
        }
    }
}

/// Writes what changed of `h`'s engine to its disk (before anything goes out).
fn persist(h: &mut Hosted) {
    let Some(e) = h.engine.as_mut() else { return };
    let (core, peers) = e.take_dirty();
    if core || h.disk.core.is_empty() {
        h.disk.core = e.export_core();
    }
    for p in peers {
        match e.export_peer(&p) {
            Some(bytes) => {
                h.disk.peers.insert(p, bytes);
            }
            None => {
                h.disk.peers.remove(&p);
            }
        }
    }
}
