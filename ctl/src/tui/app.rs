//! The chat window's state and what keys and chatd's events do to it — no terminal and no
//! network here, so every behaviour is testable (`view.rs` draws it, `net.rs` feeds it).

use std::collections::{HashMap, HashSet, VecDeque};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::input::Input;
use super::text::{mentions, sanitize};

/// Lines kept per conversation.
pub const SCROLLBACK: usize = 10_000;
/// Message ids remembered against showing one twice.
const SEEN: usize = 50_000;

/// Commands the input line understands (for `/help` and Tab completion).
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "/join",
        "ROOM — open a room (it exists once somebody writes in it)",
    ),
    ("/part", "— close this room's window"),
    ("/nick", "NAME — change your nickname"),
    ("/away", "[MESSAGE] — show as away"),
    ("/back", "— show as online again"),
    ("/me", "TEXT — say what you do"),
    ("/users", "— list the people of the network here"),
    (
        "/search",
        "WORDS — find stored messages holding every word (newest first)",
    ),
    (
        "/msg",
        "NICK [TEXT] — a private message in NICK's window (`@nick text` too)",
    ),
    (
        "/block",
        "NICK — refuse NICK's private messages, hide their public ones",
    ),
    ("/unblock", "NICK — undo /block"),
    ("/help", "— this list"),
    ("/quit", "— leave (Ctrl-C too)"),
];

/// Commands of features this chatd does not have yet: said so, not pretended.
const LATER: &[&str] = &["/edit", "/delete"];

/// A line of a conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// chatd's message id (empty for local notices).
    pub id: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Who wrote it (empty for events and notices).
    pub from: String,
    /// The text, safe to draw.
    pub text: String,
    /// What kind of line.
    pub kind: LineKind,
    /// Written by this user.
    pub mine: bool,
    /// Mentions this user's nickname.
    pub mention: bool,
}

/// What kind of line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// A message.
    Text,
    /// `/me`.
    Action,
    /// Joins, leaves, away, renames.
    Event,
    /// Said by this program (errors, help).
    Notice,
}

/// A room's window.
#[derive(Debug)]
pub struct Conversation {
    /// The room.
    pub room: String,
    /// Its lines, oldest first.
    pub lines: VecDeque<Line>,
    /// Lines arrived while another window was shown.
    pub unread: usize,
    /// One of them mentions this user.
    pub highlight: bool,
    /// chatd may hold older lines than those loaded (PgUp at the top asks for them).
    pub older: bool,
    /// Older lines have been asked for and not yet come.
    pub loading: bool,
}

impl Conversation {
    /// What the window is called: `#room`, `@nick` (a private conversation) or `+group`.
    pub fn title(&self) -> String {
        if self.room.starts_with('@') || self.room.starts_with('+') {
            self.room.clone()
        } else {
            format!("#{}", self.room)
        }
    }

    fn new(room: &str) -> Conversation {
        Conversation {
            room: room.to_owned(),
            lines: VecDeque::new(),
            unread: 0,
            highlight: false,
            older: true,
            loading: false,
        }
    }

    fn push(&mut self, line: Line) {
        self.lines.push_back(line);
        if self.lines.len() > SCROLLBACK {
            self.lines.pop_front();
        }
    }
}

/// A person of the network.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// The nickname (`*nick` for guests).
    pub nickname: String,
    /// `online`, `away` or `offline`.
    pub presence: String,
    /// The away message.
    pub away: String,
    /// This user.
    pub me: bool,
}

/// The node's state, for the status line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Status {
    /// The node's id (hex).
    pub node_id: String,
    /// This user's nickname.
    pub nickname: String,
    /// Ring size estimate.
    pub ring_size: u64,
    /// Connected peers.
    pub peers: u32,
}

/// The connection to chatd.
#[derive(Clone, Debug, PartialEq)]
pub enum Conn {
    /// Not yet connected.
    Connecting,
    /// Connected.
    Up,
    /// Lost; reconnecting. Why.
    Down(String),
}

/// What chatd said (from `net.rs`).
#[derive(Clone, Debug)]
pub enum NetEvent {
    /// Connected (again).
    Up,
    /// The connection is gone; reconnecting.
    Down(String),
    /// A message or event.
    Message {
        id: String,
        room: String,
        from: String,
        text: String,
        at_ms: i64,
        event: bool,
    },
    /// A private message (received, or sent by this user from anywhere).
    Private {
        id: String,
        from: String,
        /// The other person of a direct conversation (empty for a group).
        peer: String,
        /// The group's name (empty for a direct conversation).
        group: String,
        text: String,
        at_ms: i64,
        outgoing: bool,
    },
    /// The user list.
    Users(Vec<User>),
    /// The node's status.
    Status(Status),
    /// A send went through.
    Sent(u64),
    /// A send failed: its reference and why.
    NotSent(u64, String),
    /// An answer worth showing (nickname changed, away set, an error).
    Notice(String),
    /// Older lines of `room` (oldest first), and whether chatd holds more still.
    Older {
        room: String,
        lines: Vec<NetEvent>,
        more: bool,
    },
}

/// What the window asks chatd to do (for `net.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `text` to `room`; `reference` comes back in `Sent` or `NotSent`.
    Send {
        reference: u64,
        room: String,
        text: String,
    },
    /// Send `text` privately to `to` (a nickname) or, with `group`, to a group.
    SendPrivate {
        reference: u64,
        to: String,
        group: String,
        text: String,
    },
    /// Block (`true`) or unblock a nickname.
    Block(String, bool),
    /// Change the nickname.
    Nick(String),
    /// Show as away.
    Away(String),
    /// Show as online.
    Back,
    /// Load lines of `room` older than message `before`.
    Older { room: String, before: String },
    /// Search the stored messages.
    Search(String),
}

/// The whole window.
#[derive(Debug)]
pub struct App {
    /// Conversations, in the order opened.
    pub convs: Vec<Conversation>,
    /// The one shown.
    pub current: usize,
    /// The people of the network.
    pub users: Vec<User>,
    /// The node.
    pub status: Status,
    /// The connection.
    pub conn: Conn,
    /// The input line.
    pub input: Input,
    /// Rows scrolled up from the bottom of the timeline.
    pub scroll: usize,
    /// Time to leave.
    pub quit: bool,
    /// The newest message id seen (the feed resumes after it).
    pub last_id: String,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
    pending: HashMap<u64, String>,
    next_ref: u64,
}

impl App {
    /// A window showing `room`.
    pub fn new(room: &str) -> App {
        App {
            convs: vec![Conversation::new(room)],
            current: 0,
            users: Vec::new(),
            status: Status::default(),
            conn: Conn::Connecting,
            input: Input::default(),
            scroll: 0,
            quit: false,
            last_id: String::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            pending: HashMap::new(),
            next_ref: 0,
        }
    }

    /// The conversation shown.
    pub fn shown(&self) -> &Conversation {
        &self.convs[self.current]
    }

    fn conv(&mut self, room: &str) -> usize {
        match self.convs.iter().position(|c| c.room == room) {
            Some(i) => i,
            None => {
                self.convs.push(Conversation::new(room));
                self.convs.len() - 1
            }
        }
    }

    /// Shows a line from this program in the current window.
    pub fn notice(&mut self, text: &str) {
        let line = Line {
            id: String::new(),
            at_ms: crate::time::now_ms(),
            from: String::new(),
            text: sanitize(text),
            kind: LineKind::Notice,
            mine: false,
            mention: false,
        };
        let i = self.current;
        self.convs[i].push(line);
    }

    /// Applies what chatd said.
    pub fn on_net(&mut self, ev: NetEvent) {
        match ev {
            NetEvent::Up => {
                if matches!(self.conn, Conn::Down(_)) {
                    self.notice("connected to chatd again");
                }
                self.conn = Conn::Up;
            }
            NetEvent::Down(why) => self.conn = Conn::Down(sanitize(&why)),
            NetEvent::Message {
                id,
                room,
                from,
                text,
                at_ms,
                event,
            } => self.message(id, &sanitize(&room), &from, &text, at_ms, event),
            NetEvent::Private {
                id,
                from,
                peer,
                group,
                text,
                at_ms,
                outgoing,
            } => {
                let key = if group.is_empty() {
                    format!("@{}", sanitize(&peer))
                } else {
                    format!("+{}", sanitize(&group))
                };
                self.private(id, &key, &from, &text, at_ms, outgoing);
            }
            NetEvent::Users(users) => {
                self.users = users
                    .into_iter()
                    .map(|u| User {
                        nickname: sanitize(&u.nickname),
                        away: sanitize(&u.away),
                        ..u
                    })
                    .collect();
            }
            NetEvent::Status(s) => {
                self.status = Status {
                    node_id: sanitize(&s.node_id),
                    nickname: sanitize(&s.nickname),
                    ..s
                };
            }
            NetEvent::Sent(r) => {
                self.pending.remove(&r);
            }
            NetEvent::NotSent(r, why) => {
                let text = self.pending.remove(&r).unwrap_or_default();
                if self.input.text().is_empty() {
                    self.input.set(&text);
                    self.notice(&format!("not sent: {why} — your line is back in the input"));
                } else {
                    self.input.remember(&text);
                    self.notice(&format!("not sent: {why} — ↑ brings the line back: {text}"));
                }
            }
            NetEvent::Notice(text) => {
                for line in text.lines() {
                    self.notice(line);
                }
            }
            NetEvent::Older { room, lines, more } => self.older(&sanitize(&room), lines, more),
        }
    }

    /// An action chatd could not be asked to do (the link is busy): said so, and a line to
    /// send comes back.
    pub fn not_sent(&mut self, action: Action) {
        match action {
            Action::Send { reference, .. } | Action::SendPrivate { reference, .. } => {
                self.on_net(NetEvent::NotSent(reference, "chatd is busy".into()));
            }
            Action::Older { room, .. } => {
                let i = self.conv(&room);
                self.convs[i].loading = false;
            }
            _ => self.notice("chatd is busy; try again in a moment"),
        }
    }

    fn older(&mut self, room: &str, lines: Vec<NetEvent>, more: bool) {
        let i = self.conv(room);
        let mut got = Vec::new();
        for ev in lines {
            if let NetEvent::Message {
                id,
                from,
                text,
                at_ms,
                event,
                ..
            } = ev
                && self.seen.insert(id.clone())
            {
                got.push(self.line(id, &from, &text, at_ms, event));
            }
        }
        let conv = &mut self.convs[i];
        conv.loading = false;
        conv.older = more;
        let room_left = SCROLLBACK.saturating_sub(conv.lines.len());
        for line in got.into_iter().rev().take(room_left) {
            conv.lines.push_front(line);
        }
    }

    /// The line for a message (sanitised, marked mine or mentioning me).
    fn line(&self, id: String, from: &str, text: &str, at_ms: i64, event: bool) -> Line {
        let me = &self.status.nickname;
        let mine = !event && !me.is_empty() && from == me;
        let (kind, text) = match text.strip_prefix("/me ") {
            Some(rest) if !event => (LineKind::Action, rest),
            _ if event => (LineKind::Event, text),
            _ => (LineKind::Text, text),
        };
        Line {
            id,
            at_ms,
            from: sanitize(from),
            mention: !mine && !event && mentions(text, me),
            text: sanitize(text),
            kind,
            mine,
        }
    }

    /// Whether `id` is new (then it is remembered, up to [`SEEN`] ids).
    fn remember(&mut self, id: String) -> bool {
        if !self.seen.insert(id.clone()) {
            return false;
        }
        self.seen_order.push_back(id);
        if self.seen_order.len() > SEEN
            && let Some(old) = self.seen_order.pop_front()
        {
            self.seen.remove(&old);
        }
        true
    }

    /// A private message: its window opens (or lights up) on arrival.
    fn private(
        &mut self,
        id: String,
        key: &str,
        from: &str,
        text: &str,
        at_ms: i64,
        outgoing: bool,
    ) {
        if !self.remember(format!("dm:{id}")) {
            return;
        }
        let mut line = self.line(String::new(), from, text, at_ms, false);
        line.mine = outgoing;
        let i = self.conv(key);
        let shown = i == self.current;
        let conv = &mut self.convs[i];
        conv.older = false;
        if !shown && !outgoing {
            conv.unread += 1;
            // Somebody wrote to you in person: that deserves attention like a mention.
            conv.highlight = true;
        }
        conv.push(line);
        if shown && self.scroll > 0 {
            self.scroll += 1;
        }
    }

    fn message(&mut self, id: String, room: &str, from: &str, text: &str, at_ms: i64, event: bool) {
        // The feed comes in chatd's order: resume after the newest, seen before or not.
        self.last_id = id.clone();
        if !self.remember(id.clone()) {
            return;
        }
        let line = self.line(id, from, text, at_ms, event);
        // Events (joins, leaves…) belong to the network, not a room: show them where you are.
        let i = if event { self.current } else { self.conv(room) };
        let shown = i == self.current;
        let conv = &mut self.convs[i];
        if !shown {
            conv.unread += 1;
            conv.highlight |= line.mention;
        }
        conv.push(line);
        if shown && self.scroll > 0 {
            self.scroll += 1;
        }
    }

    /// Handles a key; returns what to ask chatd (the loop hands it on without waiting; see
    /// [`App::not_sent`] for what cannot be handed on).
    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Action> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let alt = key.modifiers.contains(KeyModifiers::ALT);
        match key.code {
            KeyCode::Char('c') | KeyCode::Char('d') if ctrl => self.quit = true,
            KeyCode::Char('u') if ctrl => self.input.delete_to_start(),
            KeyCode::Char('w') if ctrl => self.input.delete_word(),
            KeyCode::Char('a') if ctrl => self.input.home(false),
            KeyCode::Char('e') if ctrl => self.input.home(true),
            KeyCode::Char('n') if ctrl => self.switch(1),
            KeyCode::Char('p') if ctrl => self.switch(-1),
            KeyCode::Right if alt => self.switch(1),
            KeyCode::Left if alt => self.switch(-1),
            KeyCode::Char(c) if !ctrl => self.input.insert(c),
            KeyCode::Backspace => self.input.backspace(),
            KeyCode::Delete => self.input.delete(),
            KeyCode::Left => self.input.move_by(-1),
            KeyCode::Right => self.input.move_by(1),
            KeyCode::Home => self.input.home(false),
            KeyCode::End => self.input.home(true),
            KeyCode::Up => self.input.walk(true),
            KeyCode::Down => self.input.walk(false),
            KeyCode::PageUp => {
                // At most back to the oldest line loaded (each is one row or more).
                let most = self.shown().lines.len().saturating_sub(1);
                self.scroll = self.scroll.saturating_add(10).min(most);
                return self.maybe_older();
            }
            KeyCode::PageDown => self.scroll = self.scroll.saturating_sub(10),
            KeyCode::Tab => {
                let mut names: Vec<String> = if self.input.completing_command() {
                    COMMANDS.iter().map(|(c, _)| (*c).to_owned()).collect()
                } else {
                    self.users.iter().map(|u| u.nickname.clone()).collect()
                };
                names.sort();
                self.input.complete(&names);
            }
            KeyCode::Enter => return self.submit(),
            _ => {}
        }
        Vec::new()
    }

    /// Near the top of what is loaded: ask chatd for older lines (once at a time).
    fn maybe_older(&mut self) -> Vec<Action> {
        let scroll = self.scroll;
        let conv = &mut self.convs[self.current];
        if !conv.older || conv.loading || scroll + 20 < conv.lines.len() {
            return Vec::new();
        }
        let Some(before) = conv
            .lines
            .iter()
            .find(|l| !l.id.is_empty())
            .map(|l| l.id.clone())
        else {
            return Vec::new();
        };
        conv.loading = true;
        vec![Action::Older {
            room: conv.room.clone(),
            before,
        }]
    }

    fn switch(&mut self, by: isize) {
        let n = self.convs.len() as isize;
        self.current = ((self.current as isize + by).rem_euclid(n)) as usize;
        self.scroll = 0;
        let c = &mut self.convs[self.current];
        c.unread = 0;
        c.highlight = false;
    }

    fn send(&mut self, text: String) -> Vec<Action> {
        self.next_ref += 1;
        let reference = self.next_ref;
        self.pending.insert(reference, text.clone());
        self.scroll = 0;
        let room = self.shown().room.clone();
        if let Some(nick) = room.strip_prefix('@') {
            return vec![Action::SendPrivate {
                reference,
                to: nick.to_owned(),
                group: String::new(),
                text,
            }];
        }
        if let Some(group) = room.strip_prefix('+') {
            return vec![Action::SendPrivate {
                reference,
                to: String::new(),
                group: group.to_owned(),
                text,
            }];
        }
        vec![Action::Send {
            reference,
            room,
            text,
        }]
    }

    /// Opens (and shows) the private window with `nick`; sends `text` there if any.
    fn query(&mut self, nick: &str, text: &str) -> Vec<Action> {
        let nick = nick.trim_start_matches('@');
        if nick.is_empty() {
            self.notice("whom? /msg NICK [TEXT]");
            return Vec::new();
        }
        self.current = self.conv(&format!("@{nick}"));
        self.convs[self.current].older = false;
        self.switch(0);
        if text.is_empty() {
            Vec::new()
        } else {
            self.send(text.to_owned())
        }
    }

    fn submit(&mut self) -> Vec<Action> {
        let line = self.input.take();
        let trimmed = line.trim();
        if trimmed.is_empty() {
            return Vec::new();
        }
        // `@nick text`: the seeds' way to write to somebody privately.
        if let Some(rest) = trimmed.strip_prefix('@')
            && let Some((nick, text)) = rest.split_once(' ')
            && !nick.is_empty()
            && !text.trim().is_empty()
        {
            return self.query(nick, text.trim());
        }
        if !trimmed.starts_with('/') || trimmed.starts_with("//") {
            // "//text" sends "/text".
            let text = line.strip_prefix('/').filter(|_| trimmed.starts_with("//"));
            return self.send(text.map_or(line.clone(), str::to_owned));
        }
        let (cmd, rest) = trimmed.split_once(' ').unwrap_or((trimmed, ""));
        let rest = rest.trim();
        match cmd {
            "/quit" | "/exit" => self.quit = true,
            "/help" => {
                for (c, what) in COMMANDS {
                    self.notice(&format!("{c} {what}"));
                }
                self.notice("Keys: Tab completes, ↑/↓ history, PgUp/PgDn scroll, Ctrl-N/Ctrl-P (or Alt-→/←) switch windows, Ctrl-C quits; //text sends /text");
            }
            "/join" if !rest.is_empty() => {
                let room = rest.trim_start_matches('#').to_owned();
                self.current = self.conv(&room);
                self.switch(0);
            }
            "/part" if self.convs.len() > 1 => {
                self.convs.remove(self.current);
                self.current = self.current.min(self.convs.len() - 1);
                self.switch(0);
            }
            "/part" => self.notice("this is the last window; /quit leaves"),
            "/msg" | "/query" if !rest.is_empty() => {
                let (nick, text) = rest.split_once(' ').unwrap_or((rest, ""));
                return self.query(nick, text.trim());
            }
            "/block" | "/unblock" if !rest.is_empty() => {
                return vec![Action::Block(
                    rest.trim_start_matches('@').to_owned(),
                    cmd == "/block",
                )];
            }
            "/nick" if !rest.is_empty() => return vec![Action::Nick(rest.to_owned())],
            "/away" => return vec![Action::Away(rest.to_owned())],
            "/back" => return vec![Action::Back],
            "/search" if !rest.is_empty() => return vec![Action::Search(rest.to_owned())],
            "/me" if !rest.is_empty() => return self.send(format!("/me {rest}")),
            "/users" => {
                let list: Vec<String> = self
                    .users
                    .iter()
                    .filter(|u| u.presence != "offline")
                    .map(|u| format!("{} ({})", u.nickname, u.presence))
                    .collect();
                self.notice(&format!("{} here: {}", list.len(), list.join(", ")));
            }
            c if LATER.contains(&c) => {
                self.notice(&format!("{c}: not available with this chatd yet"));
            }
            "/join" | "/nick" | "/me" | "/search" | "/msg" | "/query" | "/block" | "/unblock" => {
                self.notice(&format!(
                    "{cmd} needs an argument; /help lists the commands"
                ))
            }
            _ => self.notice(&format!("unknown command {cmd}; /help lists the commands")),
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    fn typed(app: &mut App, s: &str) -> Vec<Action> {
        for c in s.chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
        app.on_key(key(KeyCode::Enter))
    }

    pub fn msg(id: &str, room: &str, from: &str, text: &str) -> NetEvent {
        NetEvent::Message {
            id: id.into(),
            room: room.into(),
            from: from.into(),
            text: text.into(),
            at_ms: 0,
            event: false,
        }
    }

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
    fn commands_do_what_they_say() {
        let mut app = App::new("lobby");
        assert_eq!(
            typed(&mut app, "/nick robert"),
            vec![Action::Nick("robert".into())]
        );
        assert_eq!(
            typed(&mut app, "/away lunch"),
            vec![Action::Away("lunch".into())]
        );
        assert_eq!(typed(&mut app, "/back"), vec![Action::Back]);
        assert_eq!(
            typed(&mut app, "/search tea time"),
            vec![Action::Search("tea time".into())]
        );
        typed(&mut app, "/join #dev");
        assert_eq!(app.shown().room, "dev");
        let acts = typed(&mut app, "/me waves");
        assert!(
            matches!(&acts[0], Action::Send { text, room, .. } if text == "/me waves" && room == "dev")
        );
        let acts = typed(&mut app, "//not a command");
        assert!(matches!(&acts[0], Action::Send { text, .. } if text == "/not a command"));
        typed(&mut app, "/frobnicate");
        assert!(
            app.shown()
                .lines
                .back()
                .is_some_and(|l| l.text.contains("unknown command"))
        );
        typed(&mut app, "/edit 1 better");
        assert!(
            app.shown()
                .lines
                .back()
                .is_some_and(|l| l.text.contains("not available"))
        );
        typed(&mut app, "/quit");
        assert!(app.quit);
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

    /// A private message received: from `from`, with `peer` (direct) or in `group`.
    fn private(id: &str, from: &str, peer: &str, group: &str, text: &str, at_ms: i64) -> NetEvent {
        NetEvent::Private {
            id: id.into(),
            from: from.into(),
            peer: peer.into(),
            group: group.into(),
            text: text.into(),
            at_ms,
            outgoing: false,
        }
    }

    #[test]
    fn private_conversations_get_their_own_windows() {
        let mut app = App::new("lobby");
        app.on_net(NetEvent::Status(Status {
            nickname: "alice".into(),
            ..Status::default()
        }));
        // `@bob text` opens bob's window and sends there privately.
        let acts = typed(&mut app, "@bob hello there");
        assert!(matches!(
            &acts[0],
            Action::SendPrivate { to, text, group, .. } if to == "bob" && text == "hello there" && group.is_empty()
        ));
        assert_eq!(app.shown().title(), "@bob");
        // What is typed in it goes to bob too.
        let acts = typed(&mut app, "and more");
        assert!(matches!(&acts[0], Action::SendPrivate { to, .. } if to == "bob"));
        // `/msg carol` opens a window without sending.
        assert!(typed(&mut app, "/msg carol").is_empty());
        assert_eq!(app.shown().title(), "@carol");
        // A message from dave opens his window in the background, lit.
        app.on_net(private("x1", "dave", "dave", "", "hi alice", 1));
        let dave = app
            .convs
            .iter()
            .find(|c| c.room == "@dave")
            .expect("opened");
        assert_eq!((dave.unread, dave.highlight), (1, true));
        // The same message again (history after a reconnect) is not shown twice.
        app.on_net(private("x1", "dave", "dave", "", "hi alice", 1));
        let dave = app
            .convs
            .iter()
            .find(|c| c.room == "@dave")
            .expect("opened");
        assert_eq!(dave.lines.len(), 1);
        // A group's messages go to its window, and typing there sends to the group.
        app.on_net(private("g1", "erin", "", "team", "standup?", 2));
        app.current = app
            .convs
            .iter()
            .position(|c| c.room == "+team")
            .expect("group");
        let acts = typed(&mut app, "yes");
        assert!(matches!(&acts[0], Action::SendPrivate { group, .. } if group == "team"));
        // Blocking.
        assert_eq!(
            typed(&mut app, "/block @mallory"),
            vec![Action::Block("mallory".into(), true)]
        );
        assert_eq!(
            typed(&mut app, "/unblock mallory"),
            vec![Action::Block("mallory".into(), false)]
        );
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
}
