//! The presence engine's decisions: puts under the epoch of the moment, confirmations,
//! puts again and the broadcast alone, the epoch holder's batch, down reports.

use chat_overlay::records::{Kind, Value};
use ed25519_dalek::SigningKey;

use super::*;
use crate::down::REPORT_AFTER_MS;
use crate::epoch::{epoch_key, epoch_location};

const ME: NodeId = NodeId([50; 32]);
/// Past an item's wait for its batch.
const LATE: u64 = 3 * 2_500 + 300 + 1;

fn peer(id: NodeId) -> Option<Peer> {
    Some(Peer {
        id,
        addr: "127.0.0.1:1".parse().expect("addr"),
    })
}

fn the_put(a: Action) -> Put {
    match a {
        Action::Put(p) => p,
        other => panic!("not a put: {other:?}"),
    }
}

fn hash_of(n: u8) -> Hash {
    Hash([n; 32])
}

#[test]
fn an_event_is_put_under_its_epoch_and_confirmed_by_its_batch() {
    let mut e = Engine::new(ME, Gather::Epochs);
    assert!(e.idle());
    let now = 1_000_000;
    let p = the_put(e.publish(b"profile".to_vec(), "line".into(), now));
    assert_eq!(p.epoch, epoch::epoch_of(now));
    assert_eq!(p.key, epoch_key(p.epoch));
    assert_eq!(item_event(&p.value), Some(&b"profile"[..]));
    assert_eq!(p.publication.tries, 1);
    assert!(e.put_done(p.publication, hash_of(1), now).is_none());
    assert_eq!(e.pending(), 1);
    assert!(!e.idle());
    assert!(
        e.tick(now + LATE - 1).is_empty(),
        "still waits for its batch"
    );
    assert!(e.confirm(&hash_of(2)).is_none(), "not ours");
    let back = e.confirm(&hash_of(1)).expect("ours");
    assert_eq!((back.note.as_str(), back.born_ms), ("line", now));
    assert_eq!(e.pending(), 0);
    assert!(e.idle());
    assert!(
        e.tick(now + 10 * LATE).is_empty(),
        "confirmed: nothing more"
    );
}

#[test]
fn an_event_without_its_batch_is_put_again_then_broadcast_alone() {
    let mut e = Engine::new(ME, Gather::Epochs);
    let mut now = 1_000_000;
    let first = the_put(e.publish(b"ev".to_vec(), String::new(), now));
    e.put_done(first.publication, hash_of(1), now);
    for tries in 2..=TRIES {
        now += LATE;
        let mut acts = e.tick(now);
        assert_eq!(acts.len(), 1, "{acts:?}");
        let again = the_put(acts.remove(0));
        assert_eq!(again.publication.tries, tries);
        assert_eq!(
            again.epoch,
            epoch::epoch_of(now),
            "under the epoch of the moment"
        );
        assert_eq!(again.publication.born_ms, 1_000_000);
        e.put_done(again.publication, hash_of(tries as u8), now);
    }
    now += LATE;
    match e.tick(now).as_slice() {
        [Action::Broadcast { publication, why }] => {
            assert_eq!(*why, Alone::NeverBatched);
            assert_eq!(publication.event, b"ev");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.pending(), 0);
}

#[test]
fn direct_failed_and_overflowing_events_go_alone() {
    let mut d = Engine::new(ME, Gather::Direct);
    assert!(matches!(
        d.publish(b"x".to_vec(), String::new(), 5),
        Action::Broadcast {
            why: Alone::Direct,
            ..
        }
    ));
    let mut e = Engine::new(ME, Gather::Epochs);
    let p = the_put(e.publish(b"x".to_vec(), String::new(), 5));
    assert!(matches!(
        e.put_failed(p.publication),
        Action::Broadcast {
            why: Alone::PutFailed,
            ..
        }
    ));
    for i in 0..MAX_PENDING as u64 {
        let p = the_put(e.publish(i.to_be_bytes().to_vec(), String::new(), 5));
        assert!(e.put_done(p.publication, Hash([0; 32]), 5).is_none());
    }
    let p = the_put(e.publish(b"last".to_vec(), String::new(), 5));
    match e.put_done(p.publication, hash_of(9), 5) {
        Some(Action::Broadcast {
            publication,
            why: Alone::Overflow,
        }) => assert_eq!(publication.event, 0u64.to_be_bytes(), "the oldest"),
        other => panic!("{other:?}"),
    }
    assert_eq!(e.pending(), MAX_PENDING);
}

fn item(ep: u64, n: u8) -> Record {
    Record::sign(
        Kind::Mailbox,
        epoch_key(ep).to_vec(),
        Value::Data(item_value(&[n; 100])),
        &SigningKey::from_bytes(&[n; 32]),
        1,
        1,
        u64::MAX / 2,
    )
}

#[test]
fn the_epochs_first_holder_broadcasts_it_once_after_it_ended() {
    let ep = 400_000;
    let end = (ep + 1) * 2_500 + 300;
    // With no predecessor, the node holds everything.
    let mut e = Engine::new(ME, Gather::Epochs);
    e.held(item(ep, 1), end - 2_000);
    e.held(item(ep, 2), end - 1_000);
    assert_eq!(e.held_items(), 2);
    assert!(e.tick(end - 1).is_empty(), "not over yet");
    match e.tick(end).as_slice() {
        [Action::Batch { epoch, items }] => assert_eq!((*epoch, items.len()), (ep, 2)),
        other => panic!("{other:?}"),
    }
    assert!(e.tick(end + 100).is_empty(), "once");
    // A node whose arc does not hold the epoch's location does not broadcast it.
    let mut other = Engine::new(ME, Gather::Epochs);
    other.predecessor_changed(peer(epoch_location(ep)), |_, _| Vec::new(), 0);
    other.held(item(ep, 1), end - 2_000);
    assert!(other.tick(end).is_empty());
}

#[test]
fn a_vanished_predecessor_is_reported_after_the_wait() {
    let mut e = Engine::new(ME, Gather::Epochs);
    e.predecessor_changed(peer(NodeId([10; 32])), |_, _| Vec::new(), 0);
    e.predecessor_changed(peer(NodeId([5; 32])), |_, _| Vec::new(), 1_000);
    assert_eq!(e.suspects(), 1);
    assert!(e.tick(1_000 + REPORT_AFTER_MS - 1).is_empty());
    assert_eq!(
        e.tick(1_000 + REPORT_AFTER_MS),
        vec![Action::ReportDown(NodeId([10; 32]))]
    );
}

#[test]
fn an_items_value_names_its_purpose() {
    assert_eq!(item_event(&item_value(b"ev")), Some(&b"ev"[..]));
    assert_eq!(item_event(b"ev"), None);
    assert_eq!(item_event(b"chatd/v1/profile\0ev"), None);
}
