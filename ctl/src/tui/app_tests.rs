//! Unit tests of the chat window's state (`app.rs`): messages to their windows, sends that
//! fail, older lines, edits and deletes in place.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::super::kit::*;
use super::*;

#[test]
fn a_line_is_sent_to_the_room_shown_and_comes_back_if_it_fails() {
    let mut app = App::new("lobby");
    let acts = typed(&mut app, "hello");
    assert_eq!(
        acts,
        vec![Action::Send {
            reference: 1,
            room: "lobby".into(),
            text: "hello".into()
        }]
    );
    assert_eq!(app.input.text(), "");
    app.on_net(NetEvent::NotSent(1, "chatd is not reachable".into()));
    assert_eq!(app.input.text(), "hello", "nothing typed is lost");
    assert!(
        app.shown()
            .lines
            .back()
            .is_some_and(|l| l.text.contains("not sent"))
    );
}

#[test]
fn messages_go_to_their_room_once_with_unread_counts_and_mentions() {
    let mut app = App::new("lobby");
    app.status.nickname = "alice".into();
    app.on_net(msg("1", "lobby", "bob", "hi"));
    app.on_net(msg("1", "lobby", "bob", "hi"));
    app.on_net(msg("2", "dev", "bob", "ping alice"));
    assert_eq!(app.convs[0].lines.len(), 1, "shown once");
    assert_eq!(app.convs[1].unread, 1);
    assert!(app.convs[1].highlight);
    assert_eq!(app.last_id, "2");
    app.on_key(KeyEvent::new(KeyCode::Char('n'), KeyModifiers::CONTROL));
    assert_eq!(app.shown().room, "dev");
    assert_eq!(app.shown().unread, 0);
}

#[test]
fn paging_up_loads_older_lines_once_and_puts_them_first() {
    let mut app = App::new("lobby");
    for i in 10..15 {
        app.on_net(msg(&i.to_string(), "lobby", "bob", &format!("m{i}")));
    }
    let acts = app.on_key(key(KeyCode::PageUp));
    assert_eq!(
        acts,
        vec![Action::Older {
            room: "lobby".into(),
            before: "10".into()
        }]
    );
    assert!(
        app.on_key(key(KeyCode::PageUp)).is_empty(),
        "one request at a time"
    );
    let older = (8..11)
        .map(|i| msg(&i.to_string(), "lobby", "bob", &format!("m{i}")))
        .collect();
    app.on_net(NetEvent::Older {
        room: "lobby".into(),
        lines: older,
        more: false,
    });
    let texts: Vec<&str> = app.shown().lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, ["m8", "m9", "m10", "m11", "m12", "m13", "m14"]);
    assert!(
        app.on_key(key(KeyCode::PageUp)).is_empty(),
        "nothing older left"
    );
}

#[test]
fn edits_and_deletes_change_the_line_in_place_wherever_it_is() {
    let mut app = as_alice();
    app.on_net(msg("1", "lobby", "bob", "helo"));
    app.on_net(msg("2", "dev", "bob", "/me waves"));
    app.on_net(msg("3", "lobby", "bob", "later"));
    let change = |id: &str, room: &str, target: &str, text: Option<&str>| NetEvent::Change {
        id: id.into(),
        room: room.into(),
        target: target.into(),
        text: text.map(str::to_owned),
    };
    app.on_net(change("e1", "lobby", "1", Some("hello \u{1b}[2J alice")));
    let l = &app.convs[0].lines[0];
    assert_eq!(
        (l.text.as_str(), l.edited, l.deleted, l.mention),
        ("hello ␛[2J alice", true, false, true)
    );
    assert_eq!(app.convs[0].lines.len(), 2, "in place, not a new line");
    assert_eq!(app.last_id, "e1", "the feed resumes after the change");
    // An action in another window stays an action; a delete empties it.
    app.on_net(change("e2", "dev", "2", Some("/me dances")));
    assert_eq!(app.convs[1].lines[0].kind, LineKind::Action);
    assert_eq!(app.convs[1].lines[0].text, "dances");
    app.on_net(change("d1", "dev", "2", None));
    let l = &app.convs[1].lines[0];
    assert!(l.deleted && !l.edited && l.text.is_empty(), "{l:?}");
    // A change of a message not shown here is ignored.
    app.on_net(change("e3", "lobby", "unknown", Some("nothing")));
    app.on_net(change("e4", "nowhere", "1", Some("nothing")));
    assert_eq!(app.convs.len(), 2, "no window opens for it");
    assert_eq!(app.convs.iter().map(|c| c.lines.len()).sum::<usize>(), 3);
    // The history states edits and deletes itself.
    let mut edited = msg("4", "lobby", "bob", "fixed");
    if let NetEvent::Message { body, .. } = &mut edited {
        body.edited = true;
    }
    let mut deleted = msg("5", "lobby", "bob", "");
    if let NetEvent::Message { body, .. } = &mut deleted {
        body.deleted = true;
    }
    app.on_net(edited);
    app.on_net(deleted);
    let marks: Vec<(bool, bool)> = app.convs[0]
        .lines
        .iter()
        .map(|l| (l.edited, l.deleted))
        .collect();
    assert_eq!(
        marks,
        [(true, false), (false, false), (true, false), (false, true)]
    );
}

#[test]
fn a_private_message_seen_again_replaces_its_line() {
    let mut app = as_alice();
    app.on_net(private("p1", "bob", "bob", "", "hi alcie", false));
    app.on_net(private("p2", "bob", "bob", "", "second", false));
    let mut edited = private("p1", "bob", "bob", "", "hi alice", false);
    if let NetEvent::Private { body, .. } = &mut edited {
        body.edited = true;
    }
    app.on_net(edited);
    let bob = app.convs.iter().find(|c| c.room == "@bob").expect("bob");
    assert_eq!(bob.lines.len(), 2);
    assert_eq!(
        (bob.lines[0].text.as_str(), bob.lines[0].edited),
        ("hi alice", true)
    );
    assert_eq!(bob.unread, 2, "a change is not news");
    let mut deleted = private("p2", "bob", "bob", "", "", false);
    if let NetEvent::Private { body, .. } = &mut deleted {
        body.deleted = true;
    }
    app.on_net(deleted);
    let bob = app.convs.iter().find(|c| c.room == "@bob").expect("bob");
    assert!(bob.lines[1].deleted && bob.lines[1].text.is_empty());
}

#[test]
fn hostile_text_is_made_harmless() {
    let mut app = App::new("lobby");
    app.on_net(msg(
        "9",
        "lobby",
        "e\u{1b}[31mvil",
        "\u{1b}]0;owned\u{7}\u{1b}[2J",
    ));
    let l = app.shown().lines.back().expect("line");
    assert!(!l.text.contains('\u{1b}') && !l.from.contains('\u{1b}'));
    assert!(!l.text.chars().any(char::is_control));
}
