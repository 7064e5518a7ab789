//! Unit tests of edits and deletes (`changes.rs`) through the [`Chat`] handle: two cores
//! exchange envelopes in every order, as the broadcast and its anti-entropy may bring them.

use std::time::Duration;

use super::*;

fn core(seed: u8) -> Chat {
    Chat::in_memory(
        SigningKey::from_bytes(&[seed; 32]),
        None,
        &ChatConfig::default(),
    )
    .expect("chat core")
}

const ALICE: Option<[u8; 32]> = Some([0xa1; 32]);

/// What `chat` shows of the history, as (text, edited, deleted).
fn shown(chat: &Chat) -> Vec<(String, bool, bool)> {
    chat.after(0, None, 100)
        .expect("history")
        .into_iter()
        .map(|s| {
            let m = s.message;
            (m.text, m.edited.is_some(), m.kind == Kind::Deleted)
        })
        .collect()
}

fn row(text: &str, edited: bool, deleted: bool) -> (String, bool, bool) {
    (text.to_owned(), edited, deleted)
}

#[test]
fn concurrent_edits_resolve_alike_in_every_order() {
    let alice = core(1);
    let lobby = Room::lobby();
    let m = alice.send_as(&lobby, "frist", ALICE).expect("sent");
    let id = m.stored.message.id;
    let e1 = alice.change_as(id, Some("first"), ALICE).expect("edit");
    let e2 = alice.change_as(id, Some("first!"), ALICE).expect("edit");
    assert_eq!(shown(&alice), [row("first!", true, false)]);
    // Every order of arrival gives the same text on another node.
    let wires = [&m.wire, &e1.wire, &e2.wire];
    for order in [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ] {
        let bob = core(2);
        for i in order {
            let _ = bob.accept_remote(wires[i]);
        }
        assert_eq!(shown(&bob), [row("first!", true, false)], "{order:?}");
        // Again, as anti-entropy may: nothing changes.
        for w in wires {
            assert!(bob.accept_remote(w).is_err());
        }
        assert_eq!(shown(&bob), [row("first!", true, false)], "{order:?}");
    }
}

#[test]
fn a_delete_removes_the_text_and_every_edit_in_any_order() {
    let alice = core(1);
    let lobby = Room::lobby();
    let m = alice.send_as(&lobby, "secret words", ALICE).expect("sent");
    let id = m.stored.message.id;
    let e = alice
        .change_as(id, Some("more secret words"), ALICE)
        .expect("edit");
    let d = alice.change_as(id, None, ALICE).expect("delete");
    assert!(matches!(
        alice.change_as(id, Some("again"), ALICE),
        Err(ChangeError::Deleted(_))
    ));
    let wires = [&m.wire, &e.wire, &d.wire];
    for order in [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]] {
        let bob = core(2);
        for i in order {
            let _ = bob.accept_remote(wires[i]);
        }
        for w in wires {
            let _ = bob.accept_remote(w);
        }
        assert_eq!(shown(&bob), [row("", false, true)], "{order:?}");
        let found = bob.find(&id).expect("find").expect("kept as deleted");
        assert!(found.message.text.is_empty());
        // Nothing of either text is left in any stored row.
        let state = bob.state();
        let all = state
            .store
            .after_rows(0, None, 100, Rows::Feed)
            .expect("rows");
        for s in all {
            let wire = String::from_utf8_lossy(&s.message.wire).into_owned();
            assert!(
                !s.message.text.contains("secret") && !wire.contains("secret"),
                "{order:?}"
            );
        }
    }
}

#[test]
fn only_the_author_changes_a_message() {
    let alice = core(1);
    let mallory = core(3);
    let lobby = Room::lobby();
    let m = alice.send_as(&lobby, "mine", ALICE).expect("sent");
    let id = m.stored.message.id;
    // Mallory's node has the message; its API refuses to change it.
    mallory.accept_remote(&m.wire).expect("accepted");
    assert!(matches!(
        mallory.change_as(id, Some("hacked"), ALICE),
        Err(ChangeError::NotYours(_))
    ));
    // Another account on Alice's own node cannot either.
    assert!(matches!(
        alice.change_as(id, None, Some([0xb0; 32])),
        Err(ChangeError::NotYours(_))
    ));
    assert!(matches!(
        alice.change_as(MessageId([9; 32]), None, ALICE),
        Err(ChangeError::NotFound(_))
    ));
    // A forged edit signed by Mallory's node, naming Alice's account, is refused by every
    // receiver, whether it comes after the message or before it.
    let forged = sign_change(
        &SigningKey::from_bytes(&[3; 32]),
        1,
        id,
        Some("hacked"),
        ALICE,
    );
    let bob = core(2);
    bob.accept_remote(&m.wire).expect("accepted");
    assert!(matches!(
        bob.accept_remote(&forged),
        Err(AcceptError::NotAuthor)
    ));
    let carol = core(4);
    assert!(
        carol.accept_remote(&forged).is_ok(),
        "held: its target is not here yet"
    );
    carol.accept_remote(&m.wire).expect("accepted");
    assert_eq!(shown(&bob), [row("mine", false, false)]);
    assert_eq!(shown(&carol), [row("mine", false, false)]);
    // And the held forgery is gone for good.
    assert_eq!(
        carol
            .state()
            .store
            .after_rows(0, None, 100, Rows::Feed)
            .expect("rows")
            .len(),
        1
    );
}

#[test]
fn held_changes_are_bounded() {
    let bob = core(2);
    let key = SigningKey::from_bytes(&[1; 32]);
    let n = changes::MAX_HELD as u64 + 10;
    for i in 0..n {
        let mut t = [0u8; 32];
        t[..8].copy_from_slice(&i.to_le_bytes());
        let wire = sign_change(&key, i + 1, MessageId(t), Some("x"), ALICE);
        bob.accept_remote(&wire).expect("held");
    }
    let held: i64 = bob.state().store.count_held().expect("count");
    assert_eq!(held, changes::MAX_HELD);
}

/// A change signed by `key` directly (the core's `change_as` checks ownership first).
fn sign_change(
    key: &SigningKey,
    seq: u64,
    target: MessageId,
    edit: Option<&str>,
    author: Option<[u8; 32]>,
) -> Vec<u8> {
    envelope::sign(
        key,
        &Draft {
            seq,
            hlc: hlc::Timestamp::new(hlc::wall_millis(), 0),
            room: &Room::lobby(),
            text: edit.unwrap_or(""),
            event: None,
            author,
            nick: None,
            change: Some(match edit {
                Some(_) => Change::Edit(target),
                None => Change::Delete(target),
            }),
        },
    )
    .expect("signs")
    .wire
}

#[tokio::test]
async fn subscribers_see_edits_and_deletes_live_and_on_replay() {
    let alice = core(1);
    let lobby = Room::lobby();
    let mut live = alice
        .subscribe(None, Start::Backlog(0))
        .expect("sub")
        .expect("room");
    let mut next = async || {
        let event = tokio::time::timeout(Duration::from_secs(5), live.recv())
            .await
            .expect("in time")
            .expect("open");
        let FeedEvent::Message(s) = event else {
            panic!("lag")
        };
        (s.message.kind, s.message.target, s.message.text.clone())
    };
    let m = alice.send_as(&lobby, "hello", ALICE).expect("sent");
    let id = m.stored.message.id;
    assert_eq!(next().await, (Kind::Text, None, "hello".to_owned()));
    alice.change_as(id, Some("hello!"), ALICE).expect("edit");
    assert_eq!(next().await, (Kind::Edit, Some(id), "hello!".to_owned()));
    alice.change_as(id, None, ALICE).expect("delete");
    assert_eq!(next().await, (Kind::Delete, Some(id), String::new()));
    // A replay from the start shows the message deleted (its edit is gone with its text).
    let mut replay = alice
        .subscribe(None, Start::Backlog(10))
        .expect("sub")
        .expect("room");
    let FeedEvent::Message(first) = replay.recv().await.expect("open") else {
        panic!("lag")
    };
    assert_eq!(
        (first.message.kind, first.message.text.as_str()),
        (Kind::Deleted, "")
    );
}

#[test]
fn search_finds_the_edited_text_and_never_a_deleted_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let chat = Chat::open(
        dir.path(),
        SigningKey::from_bytes(&[7; 32]),
        None,
        &ChatConfig::default(),
    )
    .expect("chat");
    let lobby = Room::lobby();
    let a = chat
        .send_as(&lobby, "meet at the harbour", ALICE)
        .expect("send");
    let b = chat
        .send_as(&lobby, "bring the lantern", ALICE)
        .expect("send");
    let find = |q: &str| -> Vec<String> {
        let s = search::Search {
            expression: search::expression(q).expect("query"),
            room: None,
            since_hlc: 0,
            before_pos: i64::MAX,
            limit: 10,
        };
        chat.search(&s)
            .expect("search")
            .expect("on disk")
            .into_iter()
            .map(|m| m.message.text)
            .collect()
    };
    let wait = |q: &str, want: &[&str]| {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while find(q) != want && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(find(q), want, "{q}");
    };
    wait("harbour", &["meet at the harbour"]);
    wait("lantern", &["bring the lantern"]);
    // Indexed first, changed after: the index is told.
    chat.change_as(a.stored.message.id, Some("meet at the station"), ALICE)
        .expect("edit");
    chat.change_as(b.stored.message.id, None, ALICE)
        .expect("delete");
    wait("station", &["meet at the station"]);
    wait("harbour", &[]);
    wait("lantern", &[]);
    // Changed before the indexer saw it: indexed with its current text.
    let c = chat.send_as(&lobby, "old words", ALICE).expect("send");
    chat.change_as(c.stored.message.id, Some("new words"), ALICE)
        .expect("edit");
    wait("words", &["new words"]);
    wait("old", &[]);
}
