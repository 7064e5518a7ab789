//! Tests of the store's own thread (`pipeline.rs`): messages are shown before they are
//! stored, a stuck store neither hides nor loses them, a full queue makes the driver wait
//! (counted), and a message the store already holds is not shown again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;

use super::pipeline::QUEUE;
use super::{Chat, ChatConfig, ChatMessage, Room, envelope};

fn file_chat(dir: &std::path::Path) -> Chat {
    let config = ChatConfig {
        commit_delay: Duration::from_millis(20),
        ..ChatConfig::default()
    };
    let chat = Chat::open(dir, SigningKey::from_bytes(&[7; 32]), None, &config).expect("open");
    assert!(chat.pipelined(), "a file history stores on its own thread");
    chat
}

/// Another node's chat core (bob), whose messages are the remote ones of these tests.
fn bob() -> Chat {
    Chat::in_memory(
        SigningKey::from_bytes(&[8; 32]),
        None,
        &ChatConfig::default(),
    )
    .expect("bob")
}

/// `n` verified messages from another node, as the ring's validator hands them on.
fn remote(n: usize, first: usize) -> Vec<ChatMessage> {
    let bob = bob();
    let lobby = Room::lobby();
    (0..first + n)
        .map(|i| bob.send_local(&lobby, &format!("m{i}")).expect("sent"))
        .skip(first)
        .map(|l| envelope::open(&l.wire).expect("verifies"))
        .collect()
}

fn poll(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn committed(chat: &Chat) -> u64 {
    chat.rooms()
        .expect("rooms")
        .iter()
        .map(|s| s.count)
        .sum::<u64>()
}

#[test]
fn a_message_is_shown_while_the_store_is_stuck_and_stored_once_it_is_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chat = file_chat(dir.path());
    let mut hub = chat.hub_subscribe();
    let messages = remote(3, 0);
    let ids: Vec<_> = messages.iter().map(|m| m.id).collect();

    let stuck = chat.hold_writer();
    chat.hand_over(messages);
    // Shown at once, in order, though the store cannot write.
    for id in &ids {
        let got = hub.try_recv().expect("published before it is stored");
        assert_eq!(got.message.id, *id);
    }
    // Reads see them too, without the writer's lock.
    let history = chat.after(0, None, 10).expect("history");
    assert_eq!(
        history.iter().map(|s| s.message.id).collect::<Vec<_>>(),
        ids
    );
    assert_eq!(
        chat.position(&ids[1]).expect("position"),
        Some(history[1].pos)
    );
    assert_eq!(
        committed(&chat),
        0,
        "nothing written while the writer is held"
    );

    drop(stuck);
    chat.commit().expect("settle");
    assert_eq!(committed(&chat), 3, "stored once the store is free");
    let again = chat.after(0, None, 10).expect("history");
    let key = |rows: &[super::Stored]| {
        rows.iter()
            .map(|s| (s.pos, s.message.id))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&again), key(&history), "the same positions once stored");
    assert_eq!(chat.metrics().shown_not_stored.get(), 0);
    assert!(hub.try_recv().is_err(), "each message shown once");
}

#[test]
fn a_full_queue_makes_the_driver_wait_counted_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chat = Arc::new(file_chat(dir.path()));
    let mut all = remote(QUEUE + 2, 0).into_iter();
    let first: Vec<_> = all.by_ref().take(1).collect();
    let fill: Vec<_> = all.by_ref().take(QUEUE).collect();
    let over: Vec<_> = all.collect();
    assert_eq!(over.len(), 1);

    let stuck = chat.hold_writer();
    // The thread takes the first turn and then waits for the writer.
    chat.hand_over(first);
    poll("the thread to take the first turn", || chat.queued() == 0);
    chat.hand_over(fill);
    assert_eq!(chat.queued(), QUEUE);
    assert_eq!(chat.metrics().store_queue_waits.get(), 0);

    let driver = {
        let chat = chat.clone();
        std::thread::spawn(move || chat.hand_over(over))
    };
    poll("the driver to wait for room", || {
        chat.metrics().store_queue_waits.get() == 1
    });
    assert!(
        !driver.is_finished(),
        "the driver waits while the queue is full"
    );
    // Nothing it took is hidden meanwhile.
    assert_eq!(
        chat.after(0, None, 2 * QUEUE).expect("history").len(),
        QUEUE + 1
    );

    drop(stuck);
    driver
        .join()
        .expect("the driver goes on once there is room");
    chat.commit().expect("settle");
    assert_eq!(committed(&chat), (QUEUE + 2) as u64, "nothing lost");
    assert_eq!(chat.metrics().shown_not_stored.get(), 0);
}

#[test]
fn a_message_already_stored_is_not_shown_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chat = file_chat(dir.path());
    let messages = remote(2, 0);
    chat.hand_over(messages.clone());
    chat.commit().expect("settle");
    let mut hub = chat.hub_subscribe();
    // As after a restart, when the ring's memory of them is gone.
    chat.hand_over(messages);
    chat.commit().expect("settle");
    assert!(hub.try_recv().is_err(), "a duplicate is not shown");
    assert_eq!(committed(&chat), 2);
    assert_eq!(chat.metrics().shown_not_stored.get(), 0);
    // A new one after them is shown, after them.
    let next = remote(1, 2);
    chat.hand_over(next);
    let got = hub.try_recv().expect("shown");
    assert_eq!(got.message.text, "m2");
    let history = chat.after(0, None, 10).expect("history");
    assert_eq!(history.last().map(|s| s.pos), Some(got.pos));
}

#[test]
fn an_own_message_is_readable_as_soon_as_it_is_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chat = file_chat(dir.path());
    chat.hand_over(remote(2, 0));
    let own = chat.send_local(&Room::lobby(), "mine").expect("sent");
    let history = chat.before(i64::MAX, None, 10).expect("history");
    assert_eq!(history.len(), 3);
    assert_eq!(
        history.last().map(|s| s.message.id),
        Some(own.stored.message.id)
    );
    assert!(
        history.windows(2).all(|w| w[0].pos < w[1].pos),
        "in position order"
    );
}

#[test]
fn out_of_order_messages_are_checked_and_an_early_edit_is_applied_before_showing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chat = file_chat(dir.path());
    let bob = bob();
    let lobby = Room::lobby();
    let open = |l: super::Local| envelope::open(&l.wire).expect("verifies");
    let first = open(bob.send_local(&lobby, "first").expect("sent"));
    let second = open(bob.send_local(&lobby, "second").expect("sent"));
    let edit = open(
        bob.change_as(second.id, Some("second, edited"), None)
            .expect("edit"),
    );
    let mut hub = chat.hub_subscribe();

    // The edit first: held, not shown.
    chat.hand_over(vec![edit]);
    chat.commit().expect("settle");
    assert!(hub.try_recv().is_err(), "a held edit is not shown");
    // An older message, new here: shown at once (a read finds nothing of it).
    chat.hand_over(vec![first.clone()]);
    assert_eq!(hub.try_recv().expect("shown at once").message.id, first.id);
    // Its target: the store applies the held edit before it is shown.
    chat.hand_over(vec![second.clone()]);
    chat.commit().expect("settle");
    let got = hub.try_recv().expect("shown by the store");
    assert_eq!(got.message.id, second.id);
    assert_eq!(got.message.text, "second, edited");
    assert_eq!(chat.metrics().shown_not_stored.get(), 0);
}
