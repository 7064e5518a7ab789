//! Tests of records: each kind's policy and the store's bounds on their own, then puts, gets,
//! crashes, leaves and a healed partition on small simulated rings, checked against the
//! true holders.

use std::time::Duration;

use ed25519_dalek::SigningKey;

use super::policy::{self, Merge, Policy, Via};
use super::store::{Offered, Store};
use super::*;
use crate::sim::{Sim, SimConfig, oracle};

pub(super) const NOW: u64 = 1_800_000_000_000;
pub(super) const HOUR: u64 = 3_600_000;

pub(super) fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

pub(super) fn nick(name: &str, owner: u8, version: u64, created: u64) -> Record {
    Record::sign(
        Kind::Nick,
        name.as_bytes().to_vec(),
        Value::Data(b"profile".to_vec()),
        &key(owner),
        version,
        created,
        created + HOUR,
    )
}

fn profile(owner: u8, version: u64, value: &[u8]) -> Record {
    let k = key(owner);
    Record::sign(
        Kind::Profile,
        k.verifying_key().to_bytes().to_vec(),
        Value::Data(value.to_vec()),
        &k,
        version,
        NOW,
        NOW + HOUR,
    )
}

fn item(recipient: u8, author: u8, nonce: u64, bytes: usize) -> Record {
    Record::sign(
        Kind::Mailbox,
        key(recipient).verifying_key().to_bytes().to_vec(),
        Value::Data(vec![7; bytes]),
        &key(author),
        nonce,
        NOW,
        NOW + HOUR,
    )
}

fn cfg() -> RecordsConfig {
    RecordsConfig::default()
}

fn offer(s: &mut Store, r: Record, via: Via) -> Offered {
    let kind = policy::validate(&r, &cfg(), NOW).expect("valid");
    s.offer(r, kind, via, NOW, &cfg())
}

#[test]
fn a_record_verifies_and_any_change_breaks_its_signature() {
    let r = profile(1, 1, b"hello");
    assert_eq!(policy::validate(&r, &cfg(), NOW), Ok(Kind::Profile));
    let mut bad = r.clone();
    bad.value = Value::Data(b"hellO".to_vec());
    assert_eq!(
        policy::validate(&bad, &cfg(), NOW),
        Err(RecordError::BadSignature)
    );
    let mut bad = r.clone();
    bad.version = 2;
    assert_eq!(
        policy::validate(&bad, &cfg(), NOW),
        Err(RecordError::BadSignature)
    );
    let mut bad = r;
    bad.sig = vec![0; 63];
    assert_eq!(
        policy::validate(&bad, &cfg(), NOW),
        Err(RecordError::BadSignature)
    );
}

#[test]
fn keys_sizes_and_times_follow_the_kind_rules() {
    let c = cfg();
    let k = key(1);
    let signed =
        |kind, key: Vec<u8>, value, expires| Record::sign(kind, key, value, &k, 1, NOW, expires);
    let me = k.verifying_key().to_bytes().to_vec();
    let other = key(2).verifying_key().to_bytes().to_vec();
    let data = || Value::Data(b"x".to_vec());
    let bad_key = |r: &Record| matches!(policy::validate(r, &c, NOW), Err(RecordError::BadKey(_)));
    assert!(bad_key(&signed(
        Kind::Profile,
        other.clone(),
        data(),
        NOW + HOUR
    )));
    assert!(bad_key(&signed(
        Kind::Nick,
        b"Alice".to_vec(),
        data(),
        NOW + HOUR
    )));
    assert!(bad_key(&signed(
        Kind::Nick,
        b"-x".to_vec(),
        data(),
        NOW + HOUR
    )));
    assert!(bad_key(&signed(
        Kind::Nick,
        vec![b'a'; 33],
        data(),
        NOW + HOUR
    )));
    assert!(bad_key(&signed(
        Kind::Mailbox,
        b"short".to_vec(),
        data(),
        NOW + HOUR
    )));
    // Only the recipient removes items; removals only in mailboxes.
    let rm = Value::Removed(vec![Hash([1; 32])]);
    assert!(bad_key(&signed(
        Kind::Mailbox,
        other.clone(),
        rm.clone(),
        NOW + HOUR
    )));
    assert!(bad_key(&signed(Kind::Profile, me.clone(), rm, NOW + HOUR)));
    assert_eq!(
        policy::validate(
            &signed(
                Kind::Profile,
                me.clone(),
                Value::Data(vec![0; MAX_VALUE + 1]),
                NOW + HOUR
            ),
            &c,
            NOW
        ),
        Err(RecordError::TooLarge { max: MAX_VALUE })
    );
    assert_eq!(
        policy::validate(&signed(Kind::Profile, me.clone(), data(), NOW), &c, NOW),
        Err(RecordError::Expired)
    );
    let far = NOW + c.max_ttl.as_millis() as u64 + c.max_skew.as_millis() as u64 + 1;
    assert!(matches!(
        policy::validate(&signed(Kind::Profile, me.clone(), data(), far), &c, NOW),
        Err(RecordError::ExpiryTooFar { .. })
    ));
    let mut unknown = signed(Kind::Profile, me, data(), NOW + HOUR);
    unknown.kind = 99;
    assert_eq!(
        policy::validate(&unknown, &c, NOW),
        Err(RecordError::UnknownKind(99))
    );
}

#[test]
fn latest_keeps_the_highest_version_and_refuses_stale_ones_and_replays() {
    let mut s = Store::default();
    assert!(matches!(
        offer(&mut s, profile(1, 2, b"b"), Via::Put),
        Offered::Stored { .. }
    ));
    assert_eq!(offer(&mut s, profile(1, 2, b"b"), Via::Put), Offered::Same);
    assert_eq!(
        offer(&mut s, profile(1, 1, b"a"), Via::Put),
        Offered::Refused(RecordError::Stale { have: 2 })
    );
    let v3 = profile(1, 3, b"c");
    let Offered::Stored { released, .. } = offer(&mut s, v3.clone(), Via::Put) else {
        panic!("v3 refused")
    };
    assert_eq!(released, vec![profile(1, 2, b"b").hash()]);
    assert_eq!(s.len(), 1);
    let loc = v3.location();
    assert_eq!(s.get(&loc, v3.kind, &v3.key, NOW), vec![&v3]);
    s.check(&cfg()).expect("accounting");
}

#[test]
fn a_held_claim_is_replaced_by_no_put_or_copy_only_by_a_settled_dispute() {
    let alice = nick("alice", 1, 1, NOW);
    let mallory = nick("alice", 2, 1, NOW - 1000);
    let mut s = Store::default();
    assert!(matches!(
        offer(&mut s, alice.clone(), Via::Put),
        Offered::Stored { .. }
    ));
    // A client's later claim is refused with the holder's key, whatever its creation time.
    assert_eq!(
        offer(&mut s, mallory.clone(), Via::Put),
        Offered::Refused(RecordError::Taken {
            holder: alice.owner
        })
    );
    // The owner renews.
    assert!(matches!(
        offer(&mut s, nick("alice", 1, 2, NOW), Via::Put),
        Offered::Stored { .. }
    ));
    // A copy naming another owner never replaces the live claim, whatever its creation time:
    // it is a dispute, for the holders' answers to settle.
    assert_eq!(
        offer(&mut s, mallory.clone(), Via::Copy),
        Offered::Disputed(alice.owner)
    );
    assert_eq!(
        policy::merge(Policy::Claim, Some(&alice), &mallory, Via::Copy, NOW),
        Merge::Disputed
    );
    // Only a settled dispute's winner replaces it.
    let Offered::Stored { conflict, .. } = offer(&mut s, mallory.clone(), Via::Settle) else {
        panic!("the settled winner is stored");
    };
    assert_eq!(conflict, Some((mallory.owner, alice.owner)));
    // A released name (the owner's tombstone) is free for a copy of another's claim.
    let mut t = Store::default();
    let gone = Record::sign(
        Kind::Nick,
        b"dave".to_vec(),
        Value::Deleted,
        &key(5),
        2,
        NOW,
        NOW + HOUR,
    );
    offer(&mut t, gone, Via::Put);
    assert!(matches!(
        offer(&mut t, nick("dave", 6, 1, NOW), Via::Copy),
        Offered::Stored { .. }
    ));
}

#[test]
fn the_holders_elect_an_owner_and_nothing_the_claimer_chose_counts() {
    let loc = nick("erin", 1, 1, NOW).location();
    let holder = |n: u8| loc.wrapping_add(&NodeId::from_high_u64(u64::from(n) << 40));
    let a = nick("erin", 1, 1, NOW);
    // Backdated to the epoch: still one vote.
    let m = Record::sign(
        Kind::Nick,
        b"erin".to_vec(),
        Value::Data(b"profile".to_vec()),
        &key(2),
        1,
        1,
        NOW + HOUR,
    );
    let gone = Record::sign(
        Kind::Nick,
        b"erin".to_vec(),
        Value::Deleted,
        &key(3),
        9,
        NOW,
        NOW + HOUR,
    );
    let elect = |answers: &[(u8, &Record)], inc: Option<[u8; 32]>| {
        let none: [(NodeId, &Record); 0] = [];
        policy::elect(
            &loc,
            answers.iter().map(|(h, r)| (holder(*h), *r)),
            none,
            inc,
        )
    };
    // The majority wins, in any order of answers, whoever holds it now.
    assert_eq!(elect(&[(1, &m), (2, &a), (3, &a)], None), Some(a.owner));
    assert_eq!(
        elect(&[(3, &a), (1, &m), (2, &a)], Some(m.owner)),
        Some(a.owner)
    );
    // A lying holder answering twice is still one vote; a tombstone is nobody's vote.
    assert_eq!(
        elect(&[(1, &m), (1, &m), (2, &a), (3, &gone)], None),
        Some(m.owner),
        "one vote each: the nearest holder breaks the 1-1 tie"
    );
    // A tie keeps the incumbent where one is given (a holder keeps what it holds) …
    assert_eq!(elect(&[(1, &m), (2, &a)], Some(a.owner)), Some(a.owner));
    assert_eq!(elect(&[(1, &m), (2, &a)], Some(m.owner)), Some(m.owner));
    // … and otherwise goes to the holder nearest the key, not to the earlier `created`.
    assert_eq!(elect(&[(2, &m), (1, &a)], None), Some(a.owner));
    assert_eq!(elect(&[(1, &m), (2, &a)], None), Some(m.owner));
    // Nothing live answered: no owner.
    assert_eq!(elect(&[(1, &gone)], None), None);
    // A reader's resolve returns the elected owner's newest version.
    let a2 = nick("erin", 1, 2, NOW);
    let votes = vec![
        (holder(1), m.hash()),
        (holder(2), a.hash()),
        (holder(3), a2.hash()),
    ];
    assert_eq!(
        policy::resolve(
            Policy::Claim,
            &loc,
            vec![m.clone(), a.clone(), a2.clone()],
            &policy::Ballot {
                holders: votes,
                next: Vec::new()
            }
        ),
        vec![a2]
    );
}

#[test]
fn a_mailbox_takes_items_within_quota_and_the_recipients_removal_keeps_them_out() {
    let c = RecordsConfig {
        mailbox_items: 4,
        ..cfg()
    };
    let mut s = Store::default();
    let items: Vec<Record> = (0..5).map(|n| item(9, 1 + n as u8, n, 100)).collect();
    for it in &items[..4] {
        let k = policy::validate(it, &c, NOW).expect("valid");
        assert!(matches!(
            s.offer(it.clone(), k, Via::Put, NOW, &c),
            Offered::Stored { .. }
        ));
    }
    let k = policy::validate(&items[4], &c, NOW).expect("valid");
    assert!(matches!(
        s.offer(items[4].clone(), k, Via::Put, NOW, &c),
        Offered::Refused(RecordError::Quota(_))
    ));
    let rk = key(9);
    let removal = Record::sign(
        Kind::Mailbox,
        rk.verifying_key().to_bytes().to_vec(),
        Value::Removed(vec![items[0].hash(), items[1].hash()]),
        &rk,
        100,
        NOW,
        NOW + HOUR,
    );
    let k = policy::validate(&removal, &c, NOW).expect("valid");
    let Offered::Stored { released, .. } = s.offer(removal.clone(), k, Via::Copy, NOW, &c) else {
        panic!("removal refused")
    };
    assert_eq!(released.len(), 2);
    // A replayed item stays out.
    let k = policy::validate(&items[0], &c, NOW).expect("valid");
    assert_eq!(
        s.offer(items[0].clone(), k, Via::Copy, NOW, &c),
        Offered::Refused(RecordError::Removed)
    );
    let loc = removal.location();
    let all: Vec<Record> = s
        .get(&loc, removal.kind, &removal.key, NOW)
        .into_iter()
        .cloned()
        .collect();
    assert_eq!(
        policy::resolve(Policy::Set, &NodeId::ZERO, all, &policy::Ballot::default()),
        items[2..4].to_vec()
    );
    s.check(&c).expect("accounting");
    // Everything expires.
    assert_eq!(s.sweep(NOW + 2 * HOUR).len(), 3);
    assert!(s.is_empty());
}

#[test]
fn owner_and_node_bounds_refuse_with_a_reason() {
    let c = RecordsConfig {
        max_per_owner: 2,
        ..cfg()
    };
    let mut s = Store::default();
    for n in 0..2 {
        let r = item(9, 1, n, 10);
        let k = policy::validate(&r, &c, NOW).expect("valid");
        assert!(matches!(
            s.offer(r, k, Via::Put, NOW, &c),
            Offered::Stored { .. }
        ));
    }
    let r = item(9, 1, 2, 10);
    let k = policy::validate(&r, &c, NOW).expect("valid");
    assert!(matches!(
        s.offer(r, k, Via::Put, NOW, &c),
        Offered::Refused(RecordError::Quota(_))
    ));
    let c = RecordsConfig {
        max_bytes: 1000,
        ..cfg()
    };
    let mut s = Store::default();
    let r = profile(1, 1, &[0; 900]);
    let k = policy::validate(&r, &c, NOW).expect("valid");
    assert!(matches!(
        s.offer(r, k, Via::Put, NOW, &c),
        Offered::Refused(RecordError::Quota(_))
    ));
}

// ---- on a simulated ring ---------------------------------------------------------------------

pub(super) fn ring(seed: u64, n: u32) -> Sim {
    let mut sim = Sim::new(SimConfig {
        seed,
        checks: true,
        wire: true,
        ..SimConfig::default()
    });
    for _ in 0..n {
        sim.add_host();
    }
    // A stable ring: every successor list complete (lookups are exact).
    sim.form_ring(n, true);
    sim
}

pub(super) fn wall(sim: &Sim) -> u64 {
    sim.cfg.chord.records.wall_ms(sim.now())
}

pub(super) fn signed_profile(sim: &Sim, owner: u8, version: u64) -> Record {
    let k = key(owner);
    let now = wall(sim);
    Record::sign(
        Kind::Profile,
        k.verifying_key().to_bytes().to_vec(),
        Value::Data(format!("profile {owner} v{version}").into_bytes()),
        &k,
        version,
        now,
        now + HOUR,
    )
}

/// Live members holding exactly `r`.
pub(super) fn copies(sim: &Sim, r: &Record) -> Vec<NodeId> {
    let h = r.hash();
    sim.members()
        .iter()
        .filter(|id| {
            sim.node(id)
                .is_some_and(|n| n.records().store().contains(&h))
        })
        .copied()
        .collect()
}

pub(super) fn put_done(sim: &Sim, token: u64) -> Option<Result<u8, RecordError>> {
    sim.record_events.iter().find_map(|(_, e)| match e {
        RecordsEvent::PutDone { token: t, result } if *t == token => Some(result.clone()),
        _ => None,
    })
}

pub(super) fn get_done(sim: &Sim, token: u64) -> Option<Result<Vec<Record>, RecordError>> {
    sim.record_events.iter().find_map(|(_, e)| match e {
        RecordsEvent::GetDone { token: t, result } if *t == token => Some(result.clone()),
        _ => None,
    })
}

pub(super) fn wait<T>(sim: &mut Sim, limit: Duration, mut f: impl FnMut(&Sim) -> Option<T>) -> T {
    let deadline = sim.now() + limit;
    loop {
        if let Some(v) = f(sim) {
            return v;
        }
        assert!(sim.now() < deadline, "no outcome within {limit:?}");
        sim.run_for(Duration::from_millis(100));
    }
}

#[test]
fn a_put_lands_on_the_k_true_holders_and_survives_two_of_them_crashing() {
    let mut sim = ring(21, 24);
    let r = signed_profile(&sim, 1, 1);
    let k = sim.cfg.chord.records.replicas;
    sim.put_record(5, 1, r.clone(), true);
    assert_eq!(
        wait(&mut sim, Duration::from_secs(10), |s| put_done(s, 1)),
        Ok(3)
    );
    // The k holders (and the witness after them, if kept), and no other node.
    let witness = usize::from(sim.cfg.chord.records.witness);
    let truth = sim.true_holders(&r.location(), k + witness);
    wait(&mut sim, Duration::from_secs(5), |s| {
        (copies(s, &r) == {
            let mut t = truth.clone();
            t.sort();
            t
        })
        .then_some(())
    });
    // Kill two of the three holders (not the owner's node); the third and the repair keep it.
    let owner = sim.hosts[5].peer.id;
    let victims: Vec<u32> = truth
        .iter()
        .filter(|id| **id != owner)
        .take(2)
        .filter_map(|id| sim.host_of(id))
        .collect();
    for v in &victims {
        sim.crash(*v);
    }
    let reader = (0..24)
        .find(|i| sim.is_up(*i) && *i != 5)
        .expect("a reader");
    sim.get_record(reader, 2, r.kind, r.key.clone());
    assert_eq!(
        wait(&mut sim, Duration::from_secs(30), |s| get_done(s, 2)),
        Ok(vec![r.clone()])
    );
    // Within 30 virtual seconds the new true holders have it again.
    wait(&mut sim, Duration::from_secs(30), |s| {
        let t = s.true_holders(&r.location(), k);
        let c = copies(s, &r);
        t.iter().all(|id| c.contains(id)).then_some(())
    });
}

#[test]
fn a_newer_version_wins_on_every_holder_and_a_forged_one_is_never_read() {
    let mut sim = ring(22, 16);
    let v1 = signed_profile(&sim, 2, 1);
    sim.put_record(3, 1, v1.clone(), false);
    assert!(wait(&mut sim, Duration::from_secs(10), |s| put_done(s, 1)).is_ok());
    let v2 = signed_profile(&sim, 2, 2);
    sim.put_record(7, 2, v2.clone(), false);
    assert!(wait(&mut sim, Duration::from_secs(10), |s| put_done(s, 2)).is_ok());
    // The old version again: refused as stale.
    sim.put_record(9, 3, v1.clone(), false);
    assert_eq!(
        wait(&mut sim, Duration::from_secs(10), |s| put_done(s, 3)),
        Err(RecordError::Stale { have: 2 })
    );
    // A forged version 3 (signature of version 2): refused before it leaves the node.
    let mut forged = v2.clone();
    forged.version = 3;
    sim.put_record(9, 4, forged.clone(), false);
    assert_eq!(
        wait(&mut sim, Duration::from_secs(10), |s| put_done(s, 4)),
        Err(RecordError::BadSignature)
    );
    // Pushed straight at a holder as a copy: refused and counted.
    let holder = sim.true_holders(&v2.location(), 1)[0];
    let h = sim.host_of(&holder).expect("holder");
    let invalid_before = sim
        .node(&holder)
        .map_or(0, |n| n.records().stats().refused_invalid);
    let from = sim.hosts[9].peer;
    sim.input(
        h,
        crate::Input::Message {
            from,
            msg: crate::Message::Notice(crate::wire::Notice::Records(wire::RecordsNotice::Store(
                vec![forged],
            ))),
        },
    );
    let node = sim.node(&holder).expect("holder");
    assert_eq!(node.records().stats().refused_invalid, invalid_before + 1);
    sim.run_for(Duration::from_secs(10));
    sim.get_record(11, 5, v2.kind, v2.key.clone());
    assert_eq!(
        wait(&mut sim, Duration::from_secs(10), |s| get_done(s, 5)),
        Ok(vec![v2.clone()])
    );
    for id in sim.true_holders(&v2.location(), 3) {
        let n = sim.node(&id).expect("holder");
        let held = n
            .records()
            .store()
            .get(&v2.location(), v2.kind, &v2.key, wall(&sim));
        assert_eq!(held, vec![&v2]);
    }
}

#[test]
fn a_leaving_holder_hands_over_and_a_joiner_receives_its_range() {
    let mut sim = ring(23, 12);
    let records: Vec<Record> = (1..=20).map(|o| signed_profile(&sim, o, 1)).collect();
    for (t, r) in records.iter().enumerate() {
        sim.put_record((t % 12) as u32, t as u64, r.clone(), false);
    }
    sim.run_for(Duration::from_secs(10));
    for t in 0..records.len() as u64 {
        assert!(
            matches!(put_done(&sim, t), Some(Ok(_))),
            "put {t}: {:?}",
            put_done(&sim, t)
        );
    }
    // Two holders leave gracefully, and a new node joins.
    let first = sim.true_holders(&records[0].location(), 1)[0];
    let h = sim.host_of(&first).expect("host");
    sim.leave(h);
    let j = sim.add_host();
    sim.join(j, 1);
    sim.run_for(Duration::from_secs(20));
    for r in &records {
        let t = sim.true_holders(&r.location(), 3);
        let c = copies(&sim, r);
        assert!(
            t.iter().all(|id| c.contains(id)),
            "{r:?} on {c:?}, holders {t:?}"
        );
    }
}

#[test]
fn a_name_claimed_on_both_sides_of_a_partition_has_one_owner_after_the_heal() {
    let n = 20;
    let mut sim = ring(24, n);
    // Split: hosts 0..10 and 10..20.
    let groups: Vec<u8> = (0..n).map(|i| u8::from(i >= n / 2)).collect();
    sim.partition(&groups);
    sim.run_for(Duration::from_secs(30));
    let now = wall(&sim);
    let a = nick("carol", 1, 1, now);
    let b = nick("carol", 2, 1, now + 5);
    sim.put_record(1, 1, a.clone(), true);
    sim.put_record(15, 2, b.clone(), true);
    sim.run_for(Duration::from_secs(10));
    assert!(
        matches!(put_done(&sim, 1), Some(Ok(_))),
        "{:?}",
        put_done(&sim, 1)
    );
    assert!(
        matches!(put_done(&sim, 2), Some(Ok(_))),
        "{:?}",
        put_done(&sim, 2)
    );
    sim.heal();
    wait(&mut sim, Duration::from_secs(120), |s| {
        oracle::check(s).ring_correct.then_some(())
    });
    // The holders' answers elect one owner; every true holder ends with its claim and no
    // member keeps the other.
    let winner = wait(&mut sim, Duration::from_secs(60), |s| {
        let t = s.true_holders(&a.location(), 3);
        [&a, &b].into_iter().find_map(|w| {
            let l = if w == &a { &b } else { &a };
            let all = t.iter().all(|id| copies(s, w).contains(id));
            (all && copies(s, l).is_empty()).then(|| w.clone())
        })
    });
    let winner = &winner;
    sim.get_record(3, 3, a.kind, a.key.clone());
    assert_eq!(
        wait(&mut sim, Duration::from_secs(10), |s| get_done(s, 3)),
        Ok(vec![winner.clone()])
    );
    assert!(
        sim.record_events
            .iter()
            .any(|(_, e)| matches!(e, RecordsEvent::Conflict { .. }))
    );
}

/// Runs `sim` for `d` while the modified nodes `liars` keep `forged` planted in their stores
/// (so they answer reads and push copies with it, however often honest copies reach them).
pub(super) fn run_lying(sim: &mut Sim, d: Duration, liars: &[u32], forged: &Record) {
    let end = sim.now() + d;
    while sim.now() < end {
        for &l in liars {
            sim.plant_record(l, forged.clone());
        }
        sim.run_for(Duration::from_millis(250));
    }
}

/// A held name under attack by modified nodes: `lying_holder` of the name's true holders
/// (0 = its primary, which also wins ties of reads) and, if `outsider`, a node that holds no
/// copy keep a backdated claim by mallory planted in their stores, and mallory's node puts it
/// too. Honest holders keep alice's claim and every honest read names her.
fn attack_a_held_name(seed: u64, n: u32, lying_holder: usize, outsider: bool) {
    let mut sim = ring(seed, n);
    let now = wall(&sim);
    let alice = nick("alice", 1, 1, now);
    // Backdated to the epoch, expiring when alice's does.
    let forged = Record::sign(
        Kind::Nick,
        b"alice".to_vec(),
        Value::Data(b"profile".to_vec()),
        &key(9),
        1,
        1,
        alice.expires,
    );
    assert!(policy::validate(&forged, &sim.cfg.chord.records, now).is_ok());
    sim.put_record(0, 1, alice.clone(), true);
    assert!(wait(&mut sim, Duration::from_secs(10), |s| put_done(s, 1)).is_ok());
    let loc = alice.location();
    let truth = sim.true_holders(&loc, 3);
    wait(&mut sim, Duration::from_secs(10), |s| {
        truth
            .iter()
            .all(|id| copies(s, &alice).contains(id))
            .then_some(())
    });
    let mut liars = vec![sim.host_of(&truth[lying_holder]).expect("a holder's host")];
    if outsider {
        let far = (0..n)
            .find(|h| {
                let id = sim.hosts[*h as usize].peer.id;
                !sim.true_holders(&loc, 6).contains(&id) && *h != 0
            })
            .expect("a node far from the name");
        liars.push(far);
    }
    // Mallory's node claims the held name for itself too: refused, whatever its `created`.
    sim.put_record(liars[0], 2, forged.clone(), true);
    run_lying(&mut sim, Duration::from_secs(30), &liars, &forged);
    assert!(
        matches!(put_done(&sim, 2), Some(Err(_))),
        "mallory's put of a held name: {:?}",
        put_done(&sim, 2)
    );
    let liar_ids: Vec<NodeId> = liars
        .iter()
        .map(|h| sim.hosts[*h as usize].peer.id)
        .collect();
    for id in sim.true_holders(&loc, 3) {
        if !liar_ids.contains(&id) {
            assert!(
                copies(&sim, &alice).contains(&id),
                "seed {seed}: honest holder {} lost alice's claim",
                id.short()
            );
        }
    }
    // Reads from honest nodes name alice (reads while the liars keep lying).
    let readers: Vec<u32> = (0..n).filter(|h| !liars.contains(h)).take(6).collect();
    for (t, h) in readers.iter().enumerate() {
        sim.get_record(*h, 100 + t as u64, alice.kind, alice.key.clone());
    }
    run_lying(&mut sim, Duration::from_secs(10), &liars, &forged);
    for t in 0..readers.len() as u64 {
        assert_eq!(
            get_done(&sim, 100 + t),
            Some(Ok(vec![alice.clone()])),
            "seed {seed}: read {t}"
        );
    }
    // Where the dispute was settled, mallory is named the loser, never the winner.
    assert!(sim.record_events.iter().all(|(_, e)| !matches!(
        e,
        RecordsEvent::Conflict { winner, .. } if *winner == forged.owner
    )));
}

#[test]
fn a_backdated_claim_planted_by_a_lying_primary_never_takes_a_held_name() {
    attack_a_held_name(41, 16, 0, false);
}

#[test]
fn a_lying_replica_and_a_lying_outsider_never_take_a_held_name() {
    attack_a_held_name(42, 16, 2, true);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 6, ..Default::default() })]
    /// Any seed, ring size and lying holder, with or without a lying outsider.
    #[test]
    fn no_lying_holder_or_backdating_claimer_takes_a_held_name(
        seed in 100u64..10_000,
        n in 8u32..20,
        lying in 0usize..3,
        outsider in proptest::bool::ANY,
    ) {
        attack_a_held_name(seed, n, lying, outsider);
    }
}

#[test]
fn only_the_holders_the_reader_knows_of_count_and_a_node_past_them_is_no_vote() {
    let loc = nick("erin", 1, 1, NOW).location();
    let at = |n: u8| loc.wrapping_add(&NodeId::from_high_u64(u64::from(n) << 40));
    let (a, m) = (nick("erin", 1, 1, NOW), nick("erin", 2, 1, 1));
    let votes = [
        (at(1), a.hash()),
        (at(2), m.hash()),
        (at(4), m.hash()),
        (at(5), m.hash()),
    ];
    // The reader knows the three holders: the strays past them (4, 5) are no votes, and the
    // honest holder's claim is not outvoted by them.
    let known = [at(1), at(2), at(3), at(4)];
    let counted = policy::holders_votes(&loc, 3, &known, &votes);
    assert_eq!(counted, votes[..2].to_vec());
    let only = |holders: &[(NodeId, Hash)]| policy::Ballot {
        holders: holders.to_vec(),
        next: Vec::new(),
    };
    assert_eq!(
        policy::elect_read(&loc, &[a.clone(), m.clone()], &only(&votes), None),
        Some(m.owner)
    );
    assert_eq!(
        policy::elect_read(&loc, &[a.clone(), m.clone()], &only(&counted), None),
        Some(a.owner)
    );
    // Those past them are the next nodes, which only break a tie among the holders' votes.
    let ballot = policy::ranked_votes(&loc, 3, &known, &votes);
    assert_eq!(ballot.next, votes[2..].to_vec());
    // A reader that knows only itself (node 5) still ranks the answerers: 1, 2, 4 are nearest.
    let counted = policy::holders_votes(&loc, 3, &[at(5)], &votes);
    assert_eq!(counted, votes[..3].to_vec());
    // The key's primary is nearest even when it lies just before the wrap of the ring.
    let before = loc.wrapping_add(&NodeId::from_high_u64(u64::MAX));
    let counted =
        policy::holders_votes(&loc, 1, &[before], &[(before, m.hash()), (at(1), a.hash())]);
    assert_eq!(counted, vec![(at(1), a.hash())]);
}
