//! The engine end to end between accounts over a simulated, lossy, reordering network, and
//! the hostile cases: wrong keys, re-wrapped ciphertexts, replays, forged bundles and group
//! states, the size bound.

use std::collections::HashMap;

use ed25519_dalek::SigningKey;

use crate::bundle::{Bundle, BundleError};
use crate::engine::{Action, Delivery, Engine, Shown, Status};
use crate::payload::{Body, Payload};
use crate::seal::{Inner, seal};
use crate::{Dropped, MAX_TEXT};

mod junk;

const TTL: u64 = 30 * 24 * 3_600_000;

fn account(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

/// Accounts, and the items in flight between them.
struct Net {
    now: u64,
    engines: HashMap<[u8; 32], Engine>,
    /// (recipient, value)
    wire: Vec<([u8; 32], Vec<u8>)>,
    shown: HashMap<[u8; 32], Vec<Shown>>,
    status: HashMap<[u8; 16], Status>,
    changes: HashMap<[u8; 32], Vec<crate::Changed>>,
}

impl Net {
    fn new(n: u8) -> Net {
        let mut engines = HashMap::new();
        for i in 1..=n {
            let e = Engine::new(account(i), TTL, 1_000);
            engines.insert(e.me(), e);
        }
        Net {
            now: 1_000,
            engines,
            wire: Vec::new(),
            shown: HashMap::new(),
            status: HashMap::new(),
            changes: HashMap::new(),
        }
    }

    fn key(n: u8) -> [u8; 32] {
        account(n).verifying_key().to_bytes()
    }

    /// Carries out `actions` of `who`: bundles are fetched at once, sends go on the wire and
    /// count as stored.
    fn run(&mut self, who: [u8; 32], actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::FetchBundle { peer } => {
                    let b = self.engines.get(&peer).map(Engine::bundle);
                    let now = self.now;
                    let more = self
                        .engines
                        .get_mut(&who)
                        .expect("engine")
                        .bundle_fetched(peer, b, now);
                    self.run(who, more);
                }
                Action::Send(crate::engine::Outgoing { to, seq, value, .. }) => {
                    assert!(value.len() <= 4096, "a sealed item fits a record value");
                    self.wire.push((to, value.clone()));
                    if seq > 0 {
                        let now = self.now;
                        let rec = crate::engine::item_record(&to, value, now, now + 1000);
                        let more = self.engines.get_mut(&who).expect("engine").outcome(
                            to,
                            seq,
                            Delivery::Stored(rec),
                            now,
                        );
                        self.run(who, more);
                    }
                }
                Action::Show(s) => self.shown.entry(who).or_default().push(s),
                Action::Change(c) => self.changes.entry(who).or_default().push(c),
                Action::Status { id, status, .. } => {
                    self.status.insert(id, status);
                }
                Action::Reput { .. } | Action::Remove(_) | Action::Group(_) => {}
            }
        }
    }

    fn tick_all(&mut self) {
        let keys: Vec<[u8; 32]> = self.engines.keys().copied().collect();
        for k in keys {
            let now = self.now;
            let a = self.engines.get_mut(&k).expect("engine").tick(now);
            self.run(k, a);
        }
    }

    /// Delivers everything on the wire (in the order given by `order`), repeatedly.
    fn deliver_all(&mut self, mut order: impl FnMut(&mut Vec<([u8; 32], Vec<u8>)>)) {
        for _ in 0..20 {
            if self.wire.is_empty() {
                return;
            }
            let mut batch = std::mem::take(&mut self.wire);
            order(&mut batch);
            let mut per: HashMap<[u8; 32], Vec<crate::engine::Item>> = HashMap::new();
            for (to, v) in batch {
                per.entry(to).or_default().push((None, v));
            }
            for (to, items) in per {
                let now = self.now;
                let a = self
                    .engines
                    .get_mut(&to)
                    .expect("engine")
                    .receive(items, now);
                self.run(to, a);
            }
        }
    }

    /// Runs `f` on `who`'s engine at the network's time.
    fn with<R>(&mut self, who: [u8; 32], f: impl FnOnce(&mut Engine, u64) -> R) -> R {
        let now = self.now;
        f(self.engines.get_mut(&who).expect("engine"), now)
    }

    /// Account `from`'s message `text` to `to`, sealed, as it left (taken off the wire).
    fn sealed(&mut self, from: u8, to: u8, text: &str) -> Vec<u8> {
        self.with(Net::key(from), |e, now| {
            e.send_text(Net::key(to), text, now)
        })
        .expect("sends");
        self.tick_all();
        self.wire.remove(0).1
    }

    fn texts(&self, who: u8) -> Vec<String> {
        self.shown
            .get(&Net::key(who))
            .map(|v| v.iter().map(|s| s.text.clone()).collect())
            .unwrap_or_default()
    }
}

#[test]
fn a_message_is_shown_once_and_acknowledged() {
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    let sent = net
        .with(a, |e, now| e.send_text(b, "hello bob", now))
        .expect("sends");
    net.tick_all();
    net.deliver_all(|_| {});
    assert_eq!(net.texts(2), vec!["hello bob"]);
    assert_eq!(net.status.get(&sent.id), Some(&Status::Delivered));
    assert!(net.engines[&a].pending().is_empty());
    // The reply goes the other way in the now established session.
    net.with(b, |e, now| e.send_text(a, "hi alice", now))
        .expect("sends");
    net.tick_all();
    net.deliver_all(|_| {});
    assert_eq!(net.texts(1), vec!["hi alice"]);
}

#[test]
fn shuffled_duplicated_items_show_each_message_once_in_order() {
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    for i in 0..25 {
        net.with(a, |e, now| e.send_text(b, &format!("m{i}"), now))
            .expect("sends");
    }
    net.tick_all();
    // Every item twice, in a scrambled order (a fixed permutation).
    let mut seed = 7u64;
    net.deliver_all(|batch| {
        let copy = batch.clone();
        batch.extend(copy);
        for i in (1..batch.len()).rev() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            batch.swap(i, (seed >> 33) as usize % (i + 1));
        }
    });
    let want: Vec<String> = (0..25).map(|i| format!("m{i}")).collect();
    assert_eq!(net.texts(2), want);
    assert!(net.engines[&a].pending().is_empty(), "all acknowledged");
    assert!(
        net.engines[&b]
            .drops()
            .get(&Dropped::Replay)
            .copied()
            .unwrap_or(0)
            > 0
    );
}

#[test]
fn a_lost_item_is_sent_again_and_nothing_is_shown_twice() {
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    for i in 0..5 {
        net.with(a, |e, now| e.send_text(b, &format!("m{i}"), now))
            .expect("sends");
    }
    net.tick_all();
    // The second item is lost.
    net.wire.remove(1);
    net.deliver_all(|_| {});
    assert_eq!(net.texts(2), vec!["m0"]);
    // Retries come once the outcome's wait passed; the fresh items fill the gap.
    net.now += crate::engine::OUTCOME_WAIT_MS * 200;
    net.tick_all();
    net.deliver_all(|_| {});
    let want: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
    assert_eq!(net.texts(2), want);
    assert!(net.engines[&a].pending().is_empty());
}

#[test]
fn items_to_another_key_or_rewrapped_are_refused() {
    let mut net = Net::new(3);
    let (a, b, c) = (Net::key(1), Net::key(2), Net::key(3));
    net.with(a, |e, now| e.send_text(b, "for bob only", now))
        .expect("sends");
    net.tick_all();
    let (_, item) = net.wire[0].clone();
    // Carol cannot open it.
    let acts = net
        .engines
        .get_mut(&c)
        .expect("c")
        .receive(vec![(None, item.clone())], net.now);
    assert!(acts.iter().all(|a| !matches!(a, Action::Show(_))));
    assert_eq!(net.engines[&c].drops().get(&Dropped::Unsealable), Some(&1));
    // Carol re-wraps an Olm message under her own name for Bob: refused.
    let inner = Inner {
        sender: c,
        olm_type: 0,
        olm: vec![1, 2, 3],
    };
    let bundle = net.engines[&b].bundle();
    let forged = seal(&inner, &bundle.seal, &b).expect("seals");
    let acts = net.with(b, |e, now| e.receive(vec![(None, forged)], now));
    net.run(b, acts);
    assert!(net.texts(2).is_empty());
    // The genuine item still works once, and its replay is refused.
    net.deliver_all(|_| {});
    assert_eq!(net.texts(2), vec!["for bob only"]);
    let acts = net.with(b, |e, now| e.receive(vec![(None, item)], now));
    net.run(b, acts);
    assert_eq!(net.texts(2).len(), 1);
}

#[test]
fn a_forged_bundle_is_refused() {
    let e = Engine::new(account(1), TTL, 0);
    let other = Engine::new(account(2), TTL, 0);
    let me = e.me();
    let good = e.bundle();
    assert_eq!(Bundle::decode(&good.encode(), &me), Ok(good.clone()));
    assert_eq!(
        Bundle::decode(&good.encode(), &other.me()),
        Err(BundleError::WrongAccount)
    );
    // Another account's Olm keys under this account.
    let mut stolen = other.bundle();
    stolen.account = me;
    assert_eq!(
        Bundle::decode(&stolen.encode(), &me),
        Err(BundleError::BadSignature)
    );
    let mut swapped = good.clone();
    swapped.seal = [9; 32];
    assert_eq!(
        Bundle::decode(&swapped.encode(), &me),
        Err(BundleError::BadSignature)
    );
    assert_eq!(
        Bundle::decode(b"\xff\x00", &me),
        Err(BundleError::Malformed)
    );
}

#[test]
fn the_largest_message_fits_a_record() {
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    let text: String = "€".repeat(MAX_TEXT / 3);
    assert!(text.len() <= MAX_TEXT);
    net.with(a, |e, now| e.send_text(b, &text, now))
        .expect("sends");
    let too_long = "x".repeat(MAX_TEXT + 1);
    assert!(
        net.with(a, |e, now| e.send_text(b, &too_long, now))
            .is_err()
    );
    net.tick_all();
    let (_, item) = &net.wire[0];
    assert!(item.len() <= 3700, "{} bytes", item.len());
    net.deliver_all(|_| {});
    assert_eq!(net.texts(2), vec![text]);
}

#[test]
fn keys_rotated_twice_still_reach_the_account_through_a_fresh_bundle() {
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    // Alice fetches Bob's bundle, then Bob rotates twice before her message arrives.
    net.with(a, |e, now| e.send_text(b, "old keys", now))
        .expect("sends");
    net.tick_all();
    let lost = std::mem::take(&mut net.wire);
    for _ in 0..2 {
        net.engines.get_mut(&b).expect("b").rotate(net.now);
    }
    let acts = net
        .engines
        .get_mut(&b)
        .expect("b")
        .receive(vec![(None, lost[0].1.clone())], net.now);
    net.run(b, acts);
    assert!(net.texts(2).is_empty(), "sealed to a key Bob no longer has");
    // Alice's retry fetches the new bundle (her session was never answered) and gets through.
    net.now += crate::engine::BUNDLE_MAX_AGE_MS + crate::engine::OUTCOME_WAIT_MS * 200;
    net.tick_all();
    net.deliver_all(|_| {});
    assert_eq!(net.texts(2), vec!["old keys"]);
}

#[test]
fn state_survives_a_restart_mid_conversation() {
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    net.with(a, |e, now| e.send_text(b, "one", now))
        .expect("sends");
    net.tick_all();
    net.deliver_all(|_| {});
    // Bob restarts from what he stored.
    let eb = net.engines.remove(&b).expect("b");
    let core = eb.export_core();
    let peer = eb.export_peer(&a).expect("alice known");
    let (restored, bad) =
        Engine::restore(account(2), TTL, &core, vec![(a, peer)]).expect("restores");
    assert_eq!(bad, 0);
    net.engines.insert(b, restored);
    net.with(a, |e, now| e.send_text(b, "two", now))
        .expect("sends");
    net.tick_all();
    net.deliver_all(|_| {});
    assert_eq!(net.texts(2), vec!["one", "two"]);
}

#[test]
fn a_blocked_sender_is_acknowledged_but_never_shown() {
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    net.engines.get_mut(&b).expect("b").block(a);
    let sent = net
        .with(a, |e, now| e.send_text(b, "let me in", now))
        .expect("sends");
    net.tick_all();
    net.deliver_all(|_| {});
    assert!(net.texts(2).is_empty());
    assert_eq!(net.status.get(&sent.id), Some(&Status::Delivered));
}

#[test]
fn a_group_reaches_its_members_and_no_one_else() {
    let mut net = Net::new(4);
    let (a, b, c, d) = (Net::key(1), Net::key(2), Net::key(3), Net::key(4));
    let g = net
        .with(a, |e, now| e.create_group("friends", &[b, c], now))
        .expect("creates");
    net.with(a, |e, now| e.send_group(&g.id, "hi all", now))
        .expect("sends");
    net.tick_all();
    net.deliver_all(|_| {});
    assert_eq!(net.texts(2), vec!["hi all"]);
    assert_eq!(net.texts(3), vec!["hi all"]);
    assert!(net.texts(4).is_empty());
    // Bob answers the group; Dan (not a member) cannot post into it.
    net.with(b, |e, now| e.send_group(&g.id, "hi from bob", now))
        .expect("sends");
    assert!(
        net.with(d, |e, now| e.send_group(&g.id, "me too", now))
            .is_err()
    );
    net.tick_all();
    net.deliver_all(|_| {});
    assert_eq!(net.texts(1), vec!["hi from bob"]);
    assert_eq!(net.texts(3), vec!["hi all", "hi from bob"]);
    // Only the creator removes; after Carol's removal she receives nothing more.
    assert!(
        net.with(b, |e, now| e.change_members(&g.id, &[], &[c], now))
            .is_err()
    );
    net.with(a, |e, now| e.change_members(&g.id, &[], &[c], now))
        .expect("removes");
    net.tick_all();
    net.deliver_all(|_| {});
    assert!(net.engines[&c].group(&g.id).is_none(), "Carol is out");
    net.with(b, |e, now| e.send_group(&g.id, "after carol", now))
        .expect("sends");
    net.tick_all();
    net.deliver_all(|_| {});
    assert_eq!(net.texts(1), vec!["hi from bob", "after carol"]);
    assert_eq!(net.texts(3), vec!["hi all", "hi from bob"]);
}

#[test]
fn a_group_message_from_a_non_member_is_dropped() {
    let mut net = Net::new(3);
    let (a, b, c) = (Net::key(1), Net::key(2), Net::key(3));
    let g = net
        .with(a, |e, now| e.create_group("pair", &[b], now))
        .expect("creates");
    net.tick_all();
    net.deliver_all(|_| {});
    // Carol crafts a group message for Bob (a genuine Olm message from her).
    let bundle = net.engines[&b].bundle();
    let ec = net.engines.get_mut(&c).expect("c");
    ec.learn_bundle(b, bundle, net.now);
    let spoof = Payload {
        from: c,
        to: b,
        seq: 1,
        floor: 1,
        sent_ms: 0,
        body: Body::Text {
            conv: crate::payload::Conv::Group(g.id),
            nonce: [1; 16],
            text: "spoof".into(),
            file: None,
        },
    };
    let value = ec.encrypt(&b, &spoof).expect("encrypts");
    let acts = net.with(b, |e, now| e.receive(vec![(None, value)], now));
    net.run(b, acts);
    assert!(net.texts(2).is_empty());
    assert_eq!(net.engines[&b].drops().get(&Dropped::NotMember), Some(&1));
}

#[test]
fn undelivered_messages_expire_and_the_sender_is_told() {
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    let sent = net
        .with(a, |e, now| e.send_text(b, "into the void", now))
        .expect("sends");
    net.tick_all();
    net.wire.clear();
    net.now += TTL;
    net.tick_all();
    assert_eq!(net.status.get(&sent.id), Some(&Status::Expired));
    assert!(net.engines[&a].pending().is_empty());
}

#[test]
fn a_mailbox_item_taken_after_its_senders_bundle_arrived_is_removed() {
    // Bob reads a first message from Alice, whose bundle he does not have yet: the item waits
    // for it, and once it came the item is shown and removed from his mailbox (not left there
    // for the next read to find again).
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    let value = net.sealed(1, 2, "first");
    let rec = crate::engine::item_record(&b, value.clone(), net.now, net.now + 1000);
    let hash = rec.hash();
    let now = net.now;
    let eb = net.engines.get_mut(&b).expect("b");
    let acts = eb.receive(vec![(Some(hash), value)], now);
    assert!(
        acts.iter()
            .any(|x| matches!(x, Action::FetchBundle { peer } if *peer == a)),
        "{acts:?}"
    );
    assert!(!acts.iter().any(|x| matches!(x, Action::Remove(_))));
    let bundle = net.engines[&a].bundle();
    let acts = net
        .engines
        .get_mut(&b)
        .expect("b")
        .bundle_fetched(a, Some(bundle), now);
    assert!(
        acts.iter()
            .any(|x| matches!(x, Action::Show(s) if s.text == "first"))
    );
    assert!(
        acts.iter()
            .any(|x| matches!(x, Action::Remove(h) if *h == vec![hash])),
        "{acts:?}"
    );
}

#[test]
fn a_failed_fetch_of_the_senders_bundle_is_retried_until_the_waiting_item_shows() {
    // Bob's first lookup of Alice's bundle finds nothing (not yet where the lookup went): the
    // item waits, the fetch is asked again on a later tick (not only when another item
    // comes), and once it succeeds the message shows. Items waiting too long are let go.
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    let value = net.sealed(1, 2, "first");
    let fetches = |acts: &[Action]| {
        acts.iter()
            .filter(|x| matches!(x, Action::FetchBundle { peer } if *peer == a))
            .count()
    };
    let acts = net.with(b, |e, now| e.receive(vec![(None, value.clone())], now));
    assert_eq!(fetches(&acts), 1, "{acts:?}");
    assert!(
        net.with(b, |e, now| e.bundle_fetched(a, None, now))
            .is_empty()
    );
    // Not again before the retry interval, then again.
    net.now += 1_000;
    assert_eq!(fetches(&net.with(b, Engine::tick)), 0);
    net.now += crate::engine::FETCH_RETRY_MS;
    let acts = net.with(b, Engine::tick);
    assert_eq!(fetches(&acts), 1, "{acts:?}");
    let bundle = net.engines[&a].bundle();
    let acts = net.with(b, |e, now| e.bundle_fetched(a, Some(bundle), now));
    assert!(
        acts.iter()
            .any(|x| matches!(x, Action::Show(s) if s.text == "first")),
        "{acts:?}"
    );
    // Nothing waits now: no more fetches.
    net.now += crate::engine::FETCH_RETRY_MS;
    assert_eq!(fetches(&net.with(b, Engine::tick)), 0);

    // A sender whose bundle never appears: retried until the items are let go, then not.
    let mut net = Net::new(2);
    let value = net.sealed(1, 2, "lost");
    net.with(b, |e, now| e.receive(vec![(None, value)], now));
    net.now += crate::engine::UNBUNDLED_WAIT_MS - 1;
    assert_eq!(fetches(&net.with(b, Engine::tick)), 1);
    net.now += 1;
    assert_eq!(fetches(&net.with(b, Engine::tick)), 0);
    net.now += crate::engine::FETCH_RETRY_MS;
    assert_eq!(fetches(&net.with(b, Engine::tick)), 0);
}

#[test]
fn edits_and_deletes_follow_their_message_to_every_recipient() {
    let mut net = Net::new(3);
    let (a, b, c) = (Net::key(1), Net::key(2), Net::key(3));
    let direct = net
        .with(a, |e, now| e.send_text(b, "helo", now))
        .expect("sends");
    let mine = net
        .with(a, |e, now| {
            e.change_direct(b, direct.id, Some("hello"), now)
        })
        .expect("edit");
    assert_eq!((mine.from, mine.text.as_deref()), (a, Some("hello")));
    let group = net
        .with(a, |e, now| e.create_group("g", &[b, c], now))
        .expect("group");
    let said = net
        .with(a, |e, now| e.send_group(&group.id, "in the group", now))
        .expect("sends");
    net.with(a, |e, now| e.change_group(group.id, said.id, None, now))
        .expect("delete");
    net.tick_all();
    // Reversed delivery: the streams still put each change after its message.
    net.deliver_all(|batch| batch.reverse());
    assert_eq!(net.texts(2), ["helo", "in the group"]);
    let seen = |net: &Net, n: u8| -> Vec<([u8; 16], [u8; 32], Option<String>)> {
        net.changes
            .get(&Net::key(n))
            .map(|v| v.iter().map(|c| (c.id, c.from, c.text.clone())).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        seen(&net, 2),
        [(direct.id, a, Some("hello".to_owned())), (said.id, a, None)]
    );
    assert_eq!(
        seen(&net, 3),
        [(said.id, a, None)],
        "only the group's change"
    );
    // Bounded like a message: an oversized edit is refused before anything is queued.
    let long = "x".repeat(MAX_TEXT + 1);
    assert!(
        net.with(a, |e, now| e.change_direct(b, direct.id, Some(&long), now))
            .is_err()
    );
    // A blocked sender's changes are dropped like its messages.
    net.with(b, |e, _| e.block(a));
    net.with(a, |e, now| e.change_direct(b, direct.id, None, now))
        .expect("delete");
    net.tick_all();
    net.deliver_all(|_| {});
    assert_eq!(seen(&net, 2).len(), 2);
}

#[test]
fn control_characters_are_refused_when_sent_and_neutralised_when_received() {
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    let err = net
        .with(a, |e, now| e.send_text(b, "hi\u{1b}]0;owned\u{7}", now))
        .expect_err("refused");
    assert_eq!(err, crate::DmError::ControlChar { code: 0x1b });
    net.with(a, |e, now| e.send_text(b, "two\nlines\tand a tab", now))
        .expect("newline and tab are fine");
    net.tick_all();
    net.deliver_all(|_| {});
    assert_eq!(net.texts(2), vec!["two\nlines\tand a tab"]);
    // A modified sender's engine does not check: the text is neutralised on receipt.
    let bundle = net.engines[&b].bundle();
    let ea = net.engines.get_mut(&a).expect("a");
    let _ = ea.bundle_fetched(b, Some(bundle), net.now);
    let hostile = Payload {
        from: a,
        to: b,
        seq: 2,
        floor: 1,
        sent_ms: 0,
        body: Body::Text {
            conv: crate::payload::Conv::Direct,
            nonce: [3; 16],
            text: "\u{1b}[2Jgotcha\u{9b}".into(),
            file: None,
        },
    };
    let value = ea.encrypt(&b, &hostile).expect("encrypts");
    let acts = net.with(b, |e, now| e.receive(vec![(None, value)], now));
    net.run(b, acts);
    assert_eq!(
        net.texts(2),
        vec!["two\nlines\tand a tab", "\u{fffd}[2Jgotcha\u{fffd}"]
    );
}

#[test]
fn a_recipient_seen_online_gets_stored_messages_directly_and_each_once() {
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    for i in 0..6 {
        net.with(a, |e, now| e.send_text(b, &format!("m{i}"), now))
            .expect("sends");
    }
    net.tick_all();
    // Every item went to the mailbox, which the recipient has not read (yet).
    let stored = std::mem::take(&mut net.wire);
    assert_eq!(stored.len(), 6);
    assert!(
        net.engines[&a]
            .pending()
            .iter()
            .all(|(_, _, s)| *s == Status::Stored)
    );
    net.now += 2_000;
    // The recipient is seen online: every message goes straight to its node, and a direct
    // attempt that fails leaves the item in the mailbox rather than storing another.
    let actions = net.with(a, |e, now| e.peer_online(b, now));
    let mut direct = Vec::new();
    for x in actions {
        if let Action::Send(crate::engine::Outgoing {
            to,
            seq,
            value,
            mailbox,
            direct_only,
            ..
        }) = x
        {
            assert!(
                !mailbox && direct_only,
                "straight to the node, never stored again"
            );
            direct.push((to, seq, value));
        }
    }
    assert_eq!(direct.len(), 6);
    let (_, seq0, _) = direct[0];
    net.with(a, |e, now| {
        e.outcome(b, seq0, Delivery::Failed { retry_ms: 1_000 }, now)
    });
    assert!(
        net.engines[&a]
            .pending()
            .iter()
            .all(|(_, _, s)| *s == Status::Stored),
        "a failed direct attempt keeps the item stored"
    );
    // The direct copies arrive, then the recipient reads the mailbox too: each shown once.
    net.wire = direct.into_iter().map(|(to, _, v)| (to, v)).collect();
    net.deliver_all(|_| {});
    net.wire = stored;
    net.deliver_all(|_| {});
    let want: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
    assert_eq!(net.texts(2), want);
    assert!(net.engines[&a].pending().is_empty(), "all acknowledged");
    // Nothing left to send: seeing the recipient again does nothing.
    assert!(net.with(a, |e, now| e.peer_online(b, now)).is_empty());
}

#[test]
fn a_send_in_flight_when_the_node_stopped_is_made_again_at_once_after_the_restart() {
    let mut net = Net::new(2);
    let (a, b) = (Net::key(1), Net::key(2));
    net.with(a, |e, now| e.send_text(b, "in flight", now))
        .expect("sends");
    let sends = |actions: &[Action]| {
        actions
            .iter()
            .filter(|x| matches!(x, Action::Send(o) if o.seq > 0))
            .count()
    };
    // The attempt goes out (once Bob's bundle is fetched); its outcome never comes: the node
    // stops with the attempt persisted.
    let first = net.with(a, |e, now| e.tick(now));
    assert!(
        first
            .iter()
            .any(|x| matches!(x, Action::FetchBundle { .. }))
    );
    let bundle = net.engines[&b].bundle();
    let out = net.with(a, |e, now| e.bundle_fetched(b, Some(bundle), now));
    assert_eq!(sends(&out), 1, "the attempt");
    let ea = net.engines.remove(&a).expect("a");
    let core = ea.export_core();
    let peer = ea.export_peer(&b).expect("bob known");
    let restore = || Engine::restore(account(1), TTL, &core, vec![(b, peer.clone())]);
    let later = net.now + 1_000;
    let (mut plain, _) = restore().expect("restores");
    assert_eq!(
        sends(&plain.tick(later)),
        0,
        "without resume: waits for the outcome"
    );
    let (mut resumed, _) = restore().expect("restores");
    resumed.resume(later);
    assert_eq!(
        sends(&resumed.tick(later)),
        1,
        "resumed: sent again at once"
    );
}
