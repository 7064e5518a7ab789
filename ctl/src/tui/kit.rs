//! What the tests of the chat window share: keys, typing, messages, users, a window.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::app::{Action, App, Body, NetEvent, Status, User};

/// A key without modifiers.
pub fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

/// Types `s` and Enter.
pub fn typed(app: &mut App, s: &str) -> Vec<Action> {
    for c in s.chars() {
        app.on_key(key(KeyCode::Char(c)));
    }
    app.on_key(key(KeyCode::Enter))
}

/// A public message, sent at 12:34:56 UTC.
pub fn msg(id: &str, room: &str, from: &str, text: &str) -> NetEvent {
    NetEvent::Message {
        room: room.into(),
        event: false,
        body: Body {
            id: id.into(),
            from: from.into(),
            text: text.into(),
            at_ms: 45_296_000,
            ..Body::default()
        },
    }
}

/// A private message: from `from`, with `peer` (direct) or in `group`.
pub fn private(
    id: &str,
    from: &str,
    peer: &str,
    group: &str,
    text: &str,
    outgoing: bool,
) -> NetEvent {
    NetEvent::Private {
        peer: peer.into(),
        group: group.into(),
        outgoing,
        body: Body {
            id: id.into(),
            from: from.into(),
            text: text.into(),
            at_ms: 45_296_000,
            ..Body::default()
        },
    }
}

/// A user of the users pane.
pub fn user(nickname: &str, presence: &str, me: bool) -> User {
    User {
        nickname: nickname.into(),
        presence: presence.into(),
        away: String::new(),
        me,
        verified: false,
        key_changed: false,
    }
}

/// A window in the lobby, connected, as `alice`.
pub fn as_alice() -> App {
    let mut app = App::new("lobby");
    app.on_net(NetEvent::Up);
    app.on_net(NetEvent::Status(Status {
        node_id: "abcdef0123456789".into(),
        nickname: "alice".into(),
        ring_size: 4,
        ring_exact: true,
        peers: 3,
    }));
    app
}
