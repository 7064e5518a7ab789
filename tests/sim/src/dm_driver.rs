//! The daemon's private-message delivery service ([`chat_dm::service::Service`], the code
//! `daemon/src/dm/` runs) on the simulator: one service per host, its requests carried
//! through the simulated node's records and direct sub-protocols, the answers handed back by
//! token. Nothing of the delivery is re-modelled here; this file only moves bytes:
//!
//! - [`Out::Commit`] → the host's "disk" (what a crash keeps), and the messages shown, the
//!   statuses and the edits to the scenario's tallies;
//! - [`Out::Get`], [`Out::Put`] → `Sim::get_record`, `Sim::put_record` (`own: false`);
//! - [`Out::Publish`], [`Out::Remove`] → a `Keys` record or a mailbox removal signed by the
//!   account (as the daemon's records layer signs them), put with `own: true`;
//! - [`Out::Send`] → `Sim::send_direct`;
//! - the simulator's records and direct events → [`Service::get_done`],
//!   [`Service::put_done`], [`Service::direct_done`], [`Service::direct_received`].
//!
//! A change of a host's predecessor is told to its service ([`Service::ring_changed`]), as
//! the daemon's predecessor watch does.
//!
//! The directory ([`Directory`]): an account is online while its node is up and a member,
//! its presence the number of times its node became one (a restarted node announces itself
//! anew). Sends are routed by a deliberately stale directory that names every account's
//! node ([`Directory::route_to`]), so each first attempt to an absent recipient goes direct,
//! fails (`NotInRing`) and falls back to the mailbox — the path a presence directory that has
//! not yet heard of a departure takes.
//!
//! A restart restores the engine from the host's disk ([`Engine::restore`], then
//! [`Engine::resume`]: sends in flight at the crash are made again once the node is a member)
//! and hosts it in the service afresh (its bundle is published again). As in the daemon, a
//! host's service is ticked only once its node has been a member since it started.
//!
//! Determinism: the service orders its requests; nothing here depends on the (unseedable)
//! randomness of the cryptography, only on the seeded simulator.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chat_dm::delivery;
use chat_dm::service::{Directory, Online, Out, Service, Stats};
use chat_dm::{Action, Engine, Shown, Status};
use chat_overlay::records::{Kind, Record, RecordsEvent, Value};
use chat_overlay::sim::Sim;
use chat_overlay::{DirectEvent, NodeId};
use ed25519_dalek::SigningKey;

/// How often an online account reads its mailbox at most (the daemon's period).
pub const DRAIN_EVERY: Duration = Duration::from_millis(delivery::DRAIN_MS);
/// Lifetime of a published bundle record.
pub const BUNDLE_TTL_MS: u64 = 7 * 24 * 3_600_000;
/// Undelivered messages are given up after this long (the engine's `ttl_ms`).
pub const MESSAGE_TTL_MS: u64 = 30 * 24 * 3_600_000;
/// A removal outlives every item it names (items live at most `ITEM_LIFE_MS`).
const REMOVAL_TTL_MS: u64 = chat_dm::engine::ITEM_LIFE_MS + 3_600_000;

/// What a crash must not lose: the engine's committed parts.
#[derive(Default)]
struct Disk {
    core: Vec<u8>,
    peers: BTreeMap<[u8; 32], Vec<u8>>,
}

/// One host and its account.
struct Hosted {
    signer: SigningKey,
    service: Service,
    /// Whether the node runs.
    up: bool,
    disk: Disk,
    /// How many times the node became a member (what other nodes' presence shows).
    incarnation: u64,
    was_member: bool,
    /// The node has been a member since it started: only then is its service ticked, as the
    /// daemon's service loop waits for the first join (a restarted sender's resumed sends
    /// would otherwise go out before its node is back, fail, and wait for the engine's retry).
    joined: bool,
    /// The node's predecessor at the last tick: a change reads the mailboxes again soon, as
    /// the daemon's predecessor watch does.
    predecessor: Option<chat_overlay::NodeId>,
    /// Versions of this account's removals (a mailbox item's version is a nonce).
    removals: u64,
    /// Item puts of messages under way: token → (recipient, record), for [`Driver::stored`].
    items: HashMap<u64, ([u8; 32], Record)>,
}

/// The driver for every hosted account of a simulation.
#[derive(Default)]
pub struct Driver {
    hosts: BTreeMap<u32, Hosted>,
    by_account: HashMap<[u8; 32], u32>,
    /// Messages shown, by the host that showed them, in order.
    pub shown: Vec<(u32, Shown)>,
    /// Edits and deletes to apply, by the host that got them, in order.
    pub changes: Vec<(u32, chat_dm::Changed)>,
    /// Status changes reported to the senders: (sender host, message id, status).
    pub statuses: Vec<(u32, [u8; 16], Status)>,
    /// Mailbox items (of messages, not acks) accepted by the DHT: (recipient, record).
    pub stored: Vec<([u8; 32], Record)>,
}

/// Wall-clock milliseconds of the simulation's now (records' time base).
pub fn now_ms(sim: &Sim) -> u64 {
    sim.cfg.chord.records.wall_ms(sim.now())
}

/// The simulation's directory (see the module's comment).
struct Dir<'a> {
    sim: &'a Sim,
    hosts: &'a BTreeMap<u32, Hosted>,
    by_account: &'a HashMap<[u8; 32], u32>,
}

impl Directory for Dir<'_> {
    fn online(&self, account: &[u8; 32]) -> Option<Online> {
        let host = *self.by_account.get(account)?;
        let h = self.hosts.get(&host)?;
        let node = self.sim.hosts[host as usize].peer.id;
        (h.up && h.was_member && self.sim.members().contains(&node)).then_some(Online {
            node: node.0,
            since: h.incarnation,
        })
    }

    fn route_to(&self, account: &[u8; 32]) -> Option<[u8; 32]> {
        let host = *self.by_account.get(account)?;
        Some(self.sim.hosts[host as usize].peer.id.0)
    }
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
        let h = self.hosts.get(&host)?;
        h.service.engine(&h.signer.verifying_key().to_bytes())
    }

    /// The services' counters, summed.
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        for h in self.hosts.values() {
            s.add(h.service.stats());
        }
        s
    }

    /// Hosts a new account of `signer` on the running `host`: a fresh engine; its bundle is
    /// published and its mailbox read once the node is a member.
    pub fn host(&mut self, sim: &mut Sim, host: u32, signer: SigningKey) {
        let now = now_ms(sim);
        let engine = Engine::new(signer.clone(), MESSAGE_TTL_MS, now);
        self.by_account.insert(engine.me(), host);
        let mut service = Service::new();
        service.add(engine);
        self.hosts.insert(
            host,
            Hosted {
                signer,
                service,
                up: true,
                disk: Disk::default(),
                incarnation: 0,
                was_member: false,
                joined: false,
                predecessor: None,
                removals: 0,
                items: HashMap::new(),
            },
        );
        self.carry_out(sim, host);
    }

    /// The user of `host` makes a request of its engine (`f` answers and the actions to
    /// take, as the daemon's control calls do); `None` while the node is down.
    fn call<R>(
        &mut self,
        sim: &mut Sim,
        host: u32,
        f: impl FnOnce(&mut Engine, u64) -> (R, Vec<Action>),
    ) -> Option<R> {
        let now = now_ms(sim);
        let account = self.account(host)?;
        let mut service = std::mem::take(&mut self.hosts.get_mut(&host)?.service);
        let r = service.call(&account, now, &self.dir(sim), f);
        self.hosts.get_mut(&host)?.service = service;
        self.carry_out(sim, host);
        r
    }

    /// The user sends `text` to `to` from `host`: the engine's answer (the message as shown,
    /// or why not). Panics if `host` is down.
    pub fn send_text(
        &mut self,
        sim: &mut Sim,
        host: u32,
        to: [u8; 32],
        text: &str,
    ) -> Result<Shown, chat_dm::DmError> {
        self.call(sim, host, |e, now| match e.send_text(to, text, now) {
            // Due at once: the attempt goes out now rather than at the next tick.
            Ok(s) => (Ok(s), e.tick(now)),
            Err(err) => (Err(err), Vec::new()),
        })
        .expect("sends only from a running node")
    }

    /// The user of `host` edits its message `id` to `to`.
    pub fn edit_text(
        &mut self,
        sim: &mut Sim,
        host: u32,
        to: [u8; 32],
        id: [u8; 16],
        text: &str,
    ) -> Result<(), chat_dm::DmError> {
        self.call(sim, host, |e, now| {
            match e.change_direct(to, id, Some(text), now) {
                Ok(_) => (Ok(()), e.tick(now)),
                Err(err) => (Err(err), Vec::new()),
            }
        })
        .expect("edits only from a running node")
    }

    /// `host` stops: gracefully (`leave`: what its account took from its mailbox is removed
    /// first) or by a crash. What was committed stays.
    pub fn stop(&mut self, sim: &mut Sim, host: u32, leave: bool) {
        self.pump(sim);
        if leave && let Some(h) = self.hosts.get_mut(&host) {
            h.service.flush_removals(now_ms(sim));
            self.carry_out(sim, host);
        }
        if leave {
            sim.leave(host);
        } else {
            sim.crash(host);
        }
        if let Some(h) = self.hosts.get_mut(&host) {
            h.service.stop();
            h.up = false;
            h.was_member = false;
            h.joined = false;
            h.items.clear();
        }
    }

    /// `host` starts again (same node id) through the member `via`, its engine restored from
    /// its disk; it publishes its bundle and reads its mailbox once it is a member.
    pub fn restart(&mut self, sim: &mut Sim, host: u32, via: u32) {
        sim.join(host, via);
        let now = now_ms(sim);
        let Some(h) = self.hosts.get_mut(&host) else {
            return;
        };
        let peers: Vec<([u8; 32], Vec<u8>)> =
            h.disk.peers.iter().map(|(k, v)| (*k, v.clone())).collect();
        let (mut engine, bad) =
            Engine::restore(h.signer.clone(), MESSAGE_TTL_MS, &h.disk.core, peers)
                .expect("the engine's own export restores");
        assert_eq!(bad, 0, "every peer the engine exported restores");
        engine.resume(now);
        h.service.add(engine);
        h.up = true;
        self.carry_out(sim, host);
    }

    /// Messages every running engine still waits to have acknowledged.
    pub fn pending(&self) -> usize {
        self.hosts
            .values()
            .flat_map(|h| h.service.engines())
            .map(|e| e.pending().len())
            .sum()
    }

    /// Dropped network input over all running engines, by reason.
    pub fn drops(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for e in self.hosts.values().flat_map(|h| h.service.engines()) {
            for (d, n) in e.drops() {
                *out.entry(format!("{d:?}")).or_insert(0) += n;
            }
        }
        out
    }

    fn dir<'a>(&'a self, sim: &'a Sim) -> Dir<'a> {
        Dir {
            sim,
            hosts: &self.hosts,
            by_account: &self.by_account,
        }
    }

    /// Ticks every running host's service (after noting which nodes became members).
    pub fn tick(&mut self, sim: &mut Sim) {
        self.pump(sim);
        let now = now_ms(sim);
        for (&host, h) in &mut self.hosts {
            let member = h.up && sim.members().contains(&sim.hosts[host as usize].peer.id);
            if member && !h.was_member {
                h.incarnation += 1;
            }
            h.was_member = member;
            h.joined |= member;
            h.service.member(member);
            let id = sim.hosts[host as usize].peer.id;
            let pred = sim
                .node(&id)
                .and_then(|n| n.ring().predecessor().map(|p| p.id));
            if member && pred != h.predecessor {
                h.service.ring_changed(now);
            }
            h.predecessor = pred;
        }
        let hosts: Vec<u32> = self
            .hosts
            .iter()
            .filter(|(_, h)| h.joined)
            .map(|(k, _)| *k)
            .collect();
        for host in hosts {
            self.with_service(sim, host, |s, dir| s.tick(now, dir));
        }
        self.pump(sim);
    }

    /// Runs `f` on `host`'s running service with the directory, then carries out what it
    /// asked for.
    fn with_service(&mut self, sim: &mut Sim, host: u32, f: impl FnOnce(&mut Service, &Dir<'_>)) {
        let Some(h) = self.hosts.get_mut(&host) else {
            return;
        };
        if !h.up {
            return;
        }
        let mut service = std::mem::take(&mut h.service);
        f(&mut service, &self.dir(sim));
        if let Some(h) = self.hosts.get_mut(&host) {
            h.service = service;
        }
        self.carry_out(sim, host);
    }

    /// Hands the simulator's records and direct events to the services, until none is left.
    pub fn pump(&mut self, sim: &mut Sim) {
        loop {
            let records = std::mem::take(&mut sim.record_events);
            let directs = std::mem::take(&mut sim.direct_events);
            if records.is_empty() && directs.is_empty() {
                return;
            }
            let now = now_ms(sim);
            for (host, e) in records {
                match e {
                    RecordsEvent::PutDone { token, result } => {
                        let item = self
                            .hosts
                            .get_mut(&host)
                            .and_then(|h| h.items.remove(&token));
                        if result.is_ok()
                            && let Some(stored) = item
                        {
                            self.stored.push(stored);
                        }
                        let result = result.map(|_| ()).map_err(Some);
                        self.with_service(sim, host, |s, dir| s.put_done(token, result, now, dir));
                    }
                    RecordsEvent::GetDone { token, result } => {
                        self.with_service(sim, host, |s, dir| {
                            s.get_done(token, result.ok(), now, dir)
                        });
                    }
                    _ => {}
                }
            }
            for (host, e) in directs {
                match e {
                    DirectEvent::Done { token, result } => {
                        self.with_service(sim, host, |s, dir| {
                            s.direct_done(token, result.is_ok(), now, dir)
                        });
                    }
                    DirectEvent::Received { body, .. } => {
                        self.with_service(sim, host, |s, dir| s.direct_received(&body, now, dir));
                    }
                }
            }
        }
    }

    /// Carries out what `host`'s service asked for, in order.
    fn carry_out(&mut self, sim: &mut Sim, host: u32) {
        let now = now_ms(sim);
        let Some(h) = self.hosts.get_mut(&host) else {
            return;
        };
        for o in h.service.take() {
            match o {
                Out::Commit(c) => {
                    if let Some(core) = c.core {
                        h.disk.core = core;
                    }
                    for (p, state) in c.peers {
                        match state {
                            Some(bytes) => {
                                h.disk.peers.insert(p, bytes);
                            }
                            None => {
                                h.disk.peers.remove(&p);
                            }
                        }
                    }
                    for a in c.local {
                        match a {
                            Action::Show(s) => self.shown.push((host, s)),
                            Action::Status { id, status, .. } => {
                                self.statuses.push((host, id, status))
                            }
                            Action::Change(c) => self.changes.push((host, c)),
                            _ => {}
                        }
                    }
                }
                Out::Get { token, kind, key } => sim.get_record(host, token, kind as u8, key),
                Out::Put {
                    token,
                    record,
                    item,
                } => {
                    if let Some((to, seq)) = item
                        && seq > 0
                    {
                        h.items.insert(token, (to, record.clone()));
                    }
                    sim.put_record(host, token, record, false);
                }
                Out::Publish {
                    token,
                    account,
                    bundle,
                } => {
                    let record = Record::sign(
                        Kind::Keys,
                        account.to_vec(),
                        Value::Data(bundle.encode()),
                        &h.signer,
                        now,
                        now,
                        now + BUNDLE_TTL_MS,
                    );
                    sim.put_record(host, token, record, true);
                }
                Out::Remove {
                    token,
                    account,
                    hashes,
                } => {
                    h.removals += 1;
                    let record = Record::sign(
                        Kind::Mailbox,
                        account.to_vec(),
                        Value::Removed(hashes),
                        &h.signer,
                        h.removals,
                        now,
                        now + REMOVAL_TTL_MS,
                    );
                    sim.put_record(host, token, record, true);
                }
                Out::Send { token, node, body } => sim.send_direct(host, token, NodeId(node), body),
            }
        }
    }
}
