//! The service between two nodes over an in-memory network: a records store and direct
//! sends that reach a node only while it is online.

use std::collections::{BTreeMap, BTreeSet};

use chat_overlay::records::{Kind, Record, Value};
use ed25519_dalek::SigningKey;

use super::*;

/// A node's store: the engine's written core and peers.
type Written = (Vec<u8>, BTreeMap<[u8; 32], Vec<u8>>);

/// Two nodes, `a` and `b`, one account each.
struct Net {
    nodes: [Service; 2],
    signers: [SigningKey; 2],
    online: [bool; 2],
    /// (kind, key) → records.
    store: BTreeMap<(u8, Vec<u8>), Vec<Record>>,
    shown: Vec<(usize, String)>,
    committed: usize,
    sends: usize,
    /// A node whose store fails every write (a full disk).
    full: [bool; 2],
    /// Each node's store: the engine's written core and peers.
    written: [Written; 2],
    /// "Delivered" statuses written on each node.
    delivered: [usize; 2],
}

struct Dir<'a>(&'a [bool; 2], [[u8; 32]; 2]);

impl Directory for Dir<'_> {
    fn online(&self, account: &[u8; 32]) -> Option<Online> {
        let i = self.1.iter().position(|a| a == account)?;
        self.0[i].then_some(Online {
            node: [i as u8; 32],
            since: 1,
        })
    }
}

impl Net {
    fn new() -> Net {
        let signers = [
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        ];
        let nodes = [0, 1].map(|i| {
            let mut s = Service::new();
            s.add(Engine::new(signers[i].clone(), 86_400_000, 1_000));
            s.member(true);
            s
        });
        Net {
            nodes,
            signers,
            online: [true, true],
            store: BTreeMap::new(),
            shown: Vec::new(),
            committed: 0,
            sends: 0,
            full: [false, false],
            written: Default::default(),
            delivered: [0, 0],
        }
    }

    /// Node `i`'s engine as its store holds it.
    fn stored_engine(&self, i: usize) -> Engine {
        let (core, peers) = &self.written[i];
        let peers = peers.iter().map(|(k, v)| (*k, v.clone())).collect();
        Engine::restore(self.signers[i].clone(), 86_400_000, core, peers)
            .expect("a written engine restores")
            .0
    }

    fn account(&self, i: usize) -> [u8; 32] {
        self.signers[i].verifying_key().to_bytes()
    }

    fn accounts(&self) -> [[u8; 32]; 2] {
        [self.account(0), self.account(1)]
    }

    /// Carries out every request until none is left.
    fn pump(&mut self, now: u64) {
        loop {
            let mut idle = true;
            for i in 0..2 {
                let outs = self.nodes[i].take();
                idle &= outs.is_empty();
                let mut outs = outs.into_iter();
                while let Some(o) = outs.next() {
                    if self.full[i] && matches!(o, Out::Commit(_)) {
                        // As the daemon does: nothing after the failed commit goes out, and
                        // the engine goes back to what the store holds.
                        self.nodes[i].dropped(outs.by_ref().collect());
                        let engine = self.stored_engine(i);
                        assert!(self.nodes[i].restore(engine, now));
                        break;
                    }
                    self.carry_out(i, o, now);
                }
            }
            if idle {
                return;
            }
        }
    }

    fn carry_out(&mut self, i: usize, o: Out, now: u64) {
        let accounts = self.accounts();
        let online = self.online;
        let dir = Dir(&online, accounts);
        match o {
            Out::Commit(c) => {
                self.committed += 1;
                if let Some(core) = c.core {
                    self.written[i].0 = core;
                }
                for (p, state) in c.peers {
                    match state {
                        Some(st) => self.written[i].1.insert(p, st),
                        None => self.written[i].1.remove(&p),
                    };
                }
                for a in c.local {
                    match a {
                        Action::Show(s) => self.shown.push((i, s.text)),
                        Action::Status {
                            status: crate::engine::Status::Delivered,
                            ..
                        } => self.delivered[i] += 1,
                        _ => {}
                    }
                }
            }
            Out::Get { token, kind, key } => {
                let rs = self
                    .store
                    .get(&(kind as u8, key))
                    .cloned()
                    .unwrap_or_default();
                self.nodes[i].get_done(token, Some(rs), now, &dir);
            }
            Out::Put { token, record, .. } => {
                let key = (record.kind, record.key.clone());
                self.store.entry(key).or_default().push(record);
                self.nodes[i].put_done(token, Ok(()), now, &dir);
            }
            Out::Publish {
                token,
                account,
                bundle,
            } => {
                let r = Record::sign(
                    Kind::Keys,
                    account.to_vec(),
                    Value::Data(bundle.encode()),
                    &self.signers[i],
                    now,
                    now,
                    now + 3_600_000,
                );
                self.store
                    .insert((Kind::Keys as u8, account.to_vec()), vec![r]);
                self.nodes[i].put_done(token, Ok(()), now, &dir);
            }
            Out::Remove {
                token,
                account,
                hashes,
            } => {
                let gone: BTreeSet<_> = hashes.into_iter().collect();
                if let Some(rs) = self.store.get_mut(&(Kind::Mailbox as u8, account.to_vec())) {
                    rs.retain(|r| !gone.contains(&r.hash()));
                }
                self.nodes[i].put_done(token, Ok(()), now, &dir);
            }
            Out::Send { token, node, body } => {
                self.sends += 1;
                let to = node[0] as usize;
                let ok = online[to];
                if ok {
                    self.nodes[to].direct_received(&body, now, &dir);
                }
                self.nodes[i].direct_done(token, ok, now, &dir);
            }
        }
    }

    /// Two nodes that ticked three times from 1 s (bundles published), and the time after.
    fn started() -> (Net, u64) {
        let mut n = Net::new();
        let mut now = 1_000;
        for _ in 0..3 {
            n.tick(now);
            now += 1_000;
        }
        (n, now)
    }

    /// `count` ticks a second apart after `now` (which moves on).
    fn ticks(&mut self, now: &mut u64, count: usize) {
        for _ in 0..count {
            *now += 1_000;
            self.tick(*now);
        }
    }

    fn tick(&mut self, now: u64) {
        let accounts = self.accounts();
        let online = self.online;
        for i in 0..2 {
            if online[i] {
                self.nodes[i].tick(now, &Dir(&online, accounts));
            }
        }
        self.pump(now);
    }

    fn send(&mut self, from: usize, to: usize, text: &str, now: u64) {
        let (me, peer) = (self.account(from), self.account(to));
        let accounts = self.accounts();
        let online = self.online;
        let r = self.nodes[from].call(&me, now, &Dir(&online, accounts), |e, now| {
            let r = e.send_text(peer, text, now);
            (r, e.tick(now))
        });
        assert!(matches!(r, Some(Ok(_))));
        self.pump(now);
    }

    fn pending(&self, i: usize) -> usize {
        self.nodes[i]
            .engine(&self.account(i))
            .map_or(0, |e| e.pending().len())
    }
}

#[test]
fn an_online_recipient_gets_it_directly_and_acknowledges() {
    let (mut n, mut now) = Net::started();
    assert_eq!(n.nodes[0].stats().bundles_published, 1);
    n.send(0, 1, "hello", now);
    n.ticks(&mut now, 5);
    assert_eq!(n.shown, vec![(1, "hello".to_string())]);
    assert_eq!(n.pending(0), 0, "acknowledged");
    assert!(n.nodes[0].stats().direct_ok >= 1);
    assert_eq!(n.nodes[0].stats().items_put, 0, "no mailbox item");
    assert!(n.committed > 0);
}

#[test]
fn an_offline_recipient_reads_its_mailbox_when_back_and_is_poked() {
    let (mut n, mut now) = Net::started();
    n.online[1] = false;
    n.send(0, 1, "while away", now);
    assert_eq!(n.nodes[0].stats().items_put, 1, "into the mailbox");
    assert!(n.shown.is_empty());
    assert_eq!(n.nodes[0].stats().pokes, 0, "nobody to poke");
    // Back: its next read (at most 2 s after the last, then doubling) finds the item; the
    // sender sees it online again and sends directly what waits too.
    n.online[1] = true;
    for _ in 0..200 {
        now += 1_000;
        n.tick(now);
        if n.pending(0) == 0 {
            break;
        }
    }
    assert_eq!(n.shown, vec![(1, "while away".to_string())], "shown once");
    assert_eq!(n.pending(0), 0);
    assert!(n.nodes[0].stats().online_retries >= 1);
    // The item is removed from the mailbox after a read (the removals of a tick go out at
    // the next one).
    n.ticks(&mut now, 130);
    assert_eq!(n.shown.len(), 1, "still shown once");
    let left = n
        .store
        .get(&(Kind::Mailbox as u8, n.account(1).to_vec()))
        .map_or(0, |v| v.len());
    assert_eq!(left, 0, "removed after the read");
    // A later message while online goes direct; a stored one would poke.
    n.send(0, 1, "again", now);
    n.ticks(&mut now, 1);
    assert_eq!(n.shown.len(), 2);
}

#[test]
fn misaddressed_bodies_are_counted_and_pokes_shorten_the_read() {
    let mut n = Net::new();
    let dir = Dir(&[true, true], n.accounts());
    n.nodes[0].direct_received(&[9; 40], 1_000, &dir);
    n.nodes[0].direct_received(&[1; 5], 1_000, &dir);
    assert_eq!(n.nodes[0].stats().misaddressed, 2);
    let me = n.account(0);
    n.nodes[0].direct_received(&delivery::poke_body(&me), 1_000, &dir);
    assert_eq!(
        n.nodes[0].stats().misaddressed,
        2,
        "a poke for a hosted account"
    );
    // Answers to unknown tokens change nothing.
    n.nodes[0].put_done(999, Ok(()), 1_000, &dir);
    n.nodes[0].direct_done(999, true, 1_000, &dir);
    assert_eq!(n.nodes[0].in_flight(), 0);
}

#[test]
fn a_request_never_answered_is_given_up_and_the_mailbox_read_again() {
    let signer = SigningKey::from_bytes(&[3; 32]);
    let me = signer.verifying_key().to_bytes();
    let mut s = Service::new();
    s.add(Engine::new(signer, 86_400_000, 1_000));
    s.member(true);
    let dir = Dir(&[false, false], [[0; 32], [0; 32]]);
    let reads = |outs: &[Out]| {
        outs.iter()
            .filter(|o| matches!(o, Out::Get { kind: Kind::Mailbox, key, .. } if key[..] == me[..]))
            .count()
    };
    s.tick(1_000, &dir);
    let first = s.take();
    assert_eq!(reads(&first), 1);
    assert!(first.iter().any(|o| matches!(o, Out::Publish { .. })));
    // The driver drops both requests: nothing more while they are waited for.
    let mut now = 1_000;
    for _ in 0..GIVE_UP_TICKS {
        now += 1_000;
        s.tick(now, &dir);
        assert_eq!(reads(&s.take()), 0);
    }
    now += 1_000;
    s.tick(now, &dir);
    let again = s.take();
    assert_eq!(reads(&again), 1, "read again once given up");
    assert!(again.iter().any(|o| matches!(o, Out::Publish { .. })));
    assert_eq!(s.in_flight(), 2);
}

#[test]
fn an_item_the_recipient_cannot_write_is_not_acknowledged_and_comes_again() {
    let mut n = Net::new();
    let mut now = 1_000;
    for _ in 0..3 {
        n.tick(now);
        now += 1_000;
    }
    let mailbox = |n: &Net| {
        n.store
            .get(&(Kind::Mailbox as u8, n.account(1).to_vec()))
            .map_or(0, |v| v.len())
    };
    // b's disk is full: the direct delivery reaches its engine, whose commit fails.
    n.full[1] = true;
    n.send(0, 1, "while full", now);
    assert!(n.nodes[1].stats().restores >= 1, "b's engine went back");
    for _ in 0..60 {
        now += 1_000;
        n.tick(now);
    }
    assert!(n.shown.is_empty(), "nothing shown without a commit");
    assert_eq!(n.delivered[0], 0, "a was never told delivered");
    assert_eq!(n.pending(0), 1, "a keeps it");
    // Without an acknowledgement a put it into b's mailbox; b read it, could not write
    // it, and left it there.
    assert!(n.nodes[0].stats().items_put >= 1);
    assert!(n.nodes[1].stats().drains >= 2);
    assert!(mailbox(&n) >= 1, "the item stays in the mailbox");
    // Bounded: the reads back off while the failures go on (at most one per 2 s).
    let drains = n.nodes[1].stats().drains;
    for _ in 0..60 {
        now += 1_000;
        n.tick(now);
    }
    let more = n.nodes[1].stats().drains - drains;
    assert!(
        (1..=10).contains(&more),
        "{more} reads in 60 s while full: {:?} {:?}",
        n.nodes[0].stats(),
        n.nodes[1].stats()
    );
    // Space returns (the driver tells the service): b reads its mailbox at the next tick,
    // takes it once, and a is told delivered once.
    n.full[1] = false;
    n.nodes[1].store_back(now);
    for _ in 0..3 {
        now += 1_000;
        n.tick(now);
        if n.pending(0) == 0 {
            break;
        }
    }
    assert_eq!(n.shown, vec![(1, "while full".to_string())], "shown once");
    assert_eq!(n.pending(0), 0, "acknowledged once written");
    assert_eq!(n.delivered[0], 1);
    for _ in 0..130 {
        now += 1_000;
        n.tick(now);
    }
    assert_eq!(n.shown.len(), 1, "still shown once");
    assert_eq!(mailbox(&n), 0, "removed once written");
}

#[test]
fn a_ring_change_reads_the_mailboxes_again_within_two_seconds() {
    let (mut n, mut now) = Net::started();
    // A minute on: the reads' gap has doubled past 30 s.
    n.ticks(&mut now, 60);
    let drains = |n: &Net| n.nodes[1].stats().drains;
    let before = drains(&n);
    n.ticks(&mut now, 3);
    assert_eq!(
        drains(&n),
        before,
        "no read due in the next 3 s without a change"
    );
    // The node joined another ring (a merge): its mailbox's holders may be others now.
    n.nodes[1].ring_changed(now);
    n.ticks(&mut now, 3);
    assert_eq!(drains(&n), before + 1, "one read within 2 s of the change");
}
