//! The chat window's state and what chatd's events and keys do to it — no terminal and no
//! network here, so every behaviour is testable (`view.rs` draws it, `net.rs` feeds it,
//! `commands.rs` holds what the input line's Enter does).

use std::collections::{HashMap, HashSet, VecDeque};

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::commands::COMMANDS;
use super::input::Input;
use super::text::{mentions, sanitize};

/// Lines kept per conversation.
pub const SCROLLBACK: usize = 10_000;
/// Message ids remembered against showing one twice.
const SEEN: usize = 50_000;

/// A line of a conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    /// chatd's message id (empty for local notices).
    pub id: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// Who wrote it (empty for events and notices).
    pub from: String,
    /// The text, safe to draw (empty once deleted).
    pub text: String,
    /// What kind of line.
    pub kind: LineKind,
    /// Written by this user.
    pub mine: bool,
    /// Mentions this user's nickname.
    pub mention: bool,
    /// Its author edited it (`text` is the newest edit).
    pub edited: bool,
    /// Its author deleted it.
    pub deleted: bool,
    /// The file it references (public messages; gone once deleted).
    pub file: Option<FileRef>,
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
        if self.is_private() {
            self.room.clone()
        } else {
            format!("#{}", self.room)
        }
    }

    /// A private conversation (`@nick`) or a group's (`+group`).
    pub fn is_private(&self) -> bool {
        self.room.starts_with('@') || self.room.starts_with('+')
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

    pub(super) fn push(&mut self, line: Line) {
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
    /// The safety number was confirmed (`chatctl verify --confirm`): shown ✓.
    pub verified: bool,
    /// The conversation under this name is bound to another key: shown ⚠.
    pub key_changed: bool,
}

/// The node's state, for the status line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Status {
    /// The node's id (hex).
    pub node_id: String,
    /// This user's nickname.
    pub nickname: String,
    /// Ring size: exact when `ring_exact`, else the estimate.
    pub ring_size: u64,
    /// Whether `ring_size` is the exact count (else an estimate, shown as `≈N`).
    pub ring_exact: bool,
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

/// A message as chatd states it now (public or private).
#[derive(Clone, Debug, Default)]
pub struct Body {
    /// Its id.
    pub id: String,
    /// Who wrote it.
    pub from: String,
    /// Its text: the newest edit's; empty when deleted.
    pub text: String,
    /// When it was sent, Unix milliseconds.
    pub at_ms: i64,
    /// Its author edited it.
    pub edited: bool,
    /// Its author deleted it.
    pub deleted: bool,
    /// The file it references, if any.
    pub file: Option<FileRef>,
}

/// A message's file, as `/get` fetches it (`files.rs`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileRef {
    /// The file's hash, 64 hex digits.
    pub hash: String,
    /// The name its sender gave (made safe before it names a file here).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
}

/// What chatd said (from `net.rs`).
#[derive(Clone, Debug)]
pub enum NetEvent {
    /// Connected (again).
    Up,
    /// The connection is gone; reconnecting.
    Down(String),
    /// A message or (`event`) a people event of a room.
    Message {
        room: String,
        event: bool,
        body: Body,
    },
    /// A public message of `room` changed: `target` now reads `text`, or (`None`) was
    /// deleted. `id` is the change's own id (the feed resumes after it).
    Change {
        id: String,
        room: String,
        target: String,
        text: Option<String>,
    },
    /// A private message (received, or sent by this user from anywhere); the same id again
    /// is that message edited or deleted.
    Private {
        /// The other person of a direct conversation (empty for a group).
        peer: String,
        /// The group's name (empty for a direct conversation).
        group: String,
        outgoing: bool,
        body: Body,
    },
    /// The user list.
    Users(Vec<User>),
    /// The node's status.
    Status(Status),
    /// A send (or an edit, a delete) went through.
    Sent(u64),
    /// A send (or an edit, a delete) failed: its reference and why.
    NotSent(u64, String),
    /// An answer worth showing (nickname changed, away set, an error).
    Notice(String),
    /// Older lines of `room` (oldest first), and whether chatd holds more still.
    Older {
        room: String,
        lines: Vec<NetEvent>,
        more: bool,
    },
    /// How an upload or download goes, for the status line (empty: done).
    Progress(String),
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
    /// Edit (`text`) or delete (`None`) one's own message `id`, a `private` one or a public
    /// one; `reference` comes back in `Sent` or `NotSent`.
    Change {
        reference: u64,
        id: String,
        private: bool,
        text: Option<String>,
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
    /// Upload the file at `path` and send it to `room` with `caption` (`/file`).
    SendFile {
        reference: u64,
        room: String,
        path: String,
        caption: String,
    },
    /// Upload the recording at `path` and send it as a voice message `to` a room or
    /// privately (`/voice`).
    SendVoice {
        reference: u64,
        to: super::voice::VoiceTo,
        path: String,
    },
    /// Download `file` into the current directory (`/get`); `force` replaces a file there.
    GetFile { file: FileRef, force: bool },
}

/// A line handed to chatd and not yet answered: given back if it fails.
#[derive(Debug)]
pub(super) struct Pending {
    /// What was typed.
    pub line: String,
    /// What failing means: "not sent", "not edited"…
    pub failed: &'static str,
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
    /// Keys go to the users pane (↑/↓ choose, Enter opens a private window), not the input.
    pub picking: bool,
    /// The user chosen in the users pane (a nickname).
    pub picked: Option<String>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
    pub(super) pending: HashMap<u64, Pending>,
    pub(super) next_ref: u64,
    /// An upload's or download's progress, shown in the status line (empty: none).
    pub progress: String,
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
            picking: false,
            picked: None,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            pending: HashMap::new(),
            next_ref: 0,
            progress: String::new(),
        }
    }

    /// The conversation shown.
    pub fn shown(&self) -> &Conversation {
        &self.convs[self.current]
    }

    pub(super) fn conv(&mut self, room: &str) -> usize {
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
            edited: false,
            deleted: false,
            file: None,
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
            NetEvent::Message { room, event, body } => self.message(&sanitize(&room), event, body),
            NetEvent::Change {
                id,
                room,
                target,
                text,
            } => {
                // The feed comes in chatd's order: resume after the change too.
                self.last_id = id;
                self.change(&sanitize(&room), &target, text.as_deref());
            }
            NetEvent::Private {
                peer,
                group,
                outgoing,
                body,
            } => {
                let key = if group.is_empty() {
                    format!("@{}", sanitize(&peer))
                } else {
                    format!("+{}", sanitize(&group))
                };
                self.private(&key, outgoing, body);
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
                let Some(Pending { line, failed }) = self.pending.remove(&r) else {
                    self.notice(&format!("not done: {why}"));
                    return;
                };
                if self.input.text().is_empty() {
                    self.input.set(&line);
                    self.notice(&format!("{failed}: {why} — your line is back in the input"));
                } else {
                    self.input.remember(&line);
                    self.notice(&format!("{failed}: {why} — ↑ brings the line back: {line}"));
                }
            }
            NetEvent::Notice(text) => {
                for line in text.lines() {
                    self.notice(line);
                }
            }
            NetEvent::Older { room, lines, more } => self.older(&sanitize(&room), lines, more),
            NetEvent::Progress(p) => self.progress = sanitize(&p),
        }
    }

    /// An action chatd could not be asked to do (the link is busy): said so, and a line to
    /// send comes back.
    pub fn not_sent(&mut self, action: Action) {
        match action {
            Action::Send { reference, .. }
            | Action::SendPrivate { reference, .. }
            | Action::SendVoice { reference, .. }
            | Action::Change { reference, .. } => {
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
            if let NetEvent::Message { event, body, .. } = ev
                && self.remember(body.id.clone())
            {
                got.push(self.line(body, event));
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

    /// The line for a message (sanitised, marked mine or mentioning me, edited, deleted).
    fn line(&self, body: Body, event: bool) -> Line {
        let me = &self.status.nickname;
        let mine = !event && !me.is_empty() && body.from == *me;
        let text = if body.deleted { "" } else { &body.text };
        let (kind, text) = match text.strip_prefix("/me ") {
            Some(rest) if !event => (LineKind::Action, rest),
            _ if event => (LineKind::Event, text),
            _ => (LineKind::Text, text),
        };
        Line {
            from: sanitize(&body.from),
            mention: !mine && !event && mentions(text, me),
            text: sanitize(text),
            id: body.id,
            at_ms: body.at_ms,
            kind,
            mine,
            edited: body.edited && !body.deleted,
            deleted: body.deleted,
            file: body.file.filter(|_| !body.deleted),
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

    /// An edit (`Some(text)`) or delete of the message `target` of `room`: its line changes
    /// in place. A message no longer (or never) loaded here is left alone.
    fn change(&mut self, room: &str, target: &str, text: Option<&str>) {
        // A room's messages are in its window only (events, shown where one was, are never
        // changed): one window to look through, from its newest line.
        let Some(c) = self
            .convs
            .iter()
            .position(|c| c.room == room && !c.is_private())
        else {
            return;
        };
        let Some(i) = self.convs[c]
            .lines
            .iter()
            .rposition(|l| l.id == target && matches!(l.kind, LineKind::Text | LineKind::Action))
        else {
            return;
        };
        let old = &self.convs[c].lines[i];
        let body = Body {
            id: old.id.clone(),
            from: old.from.clone(),
            text: text.unwrap_or_default().to_owned(),
            at_ms: old.at_ms,
            edited: text.is_some(),
            deleted: text.is_none(),
            file: old.file.clone().filter(|_| text.is_some()),
        };
        let mine = old.mine;
        let mut line = self.line(body, false);
        line.mine |= mine;
        self.convs[c].lines[i] = line;
    }

    /// A private message: its window opens (or lights up) on arrival; the same message again
    /// (edited, deleted, or repeated after a reconnect) changes its line in place.
    fn private(&mut self, key: &str, outgoing: bool, body: Body) {
        let id = body.id.clone();
        let first = self.remember(format!("dm:{id}"));
        let mut line = self.line(body, false);
        line.mine = outgoing;
        if !first {
            if let Some(l) = self
                .convs
                .iter_mut()
                .find(|c| c.room == key)
                .and_then(|c| c.lines.iter_mut().rev().find(|l| l.id == id))
            {
                *l = line;
            }
            return;
        }
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

    fn message(&mut self, room: &str, event: bool, body: Body) {
        // The feed comes in chatd's order: resume after the newest, seen before or not.
        self.last_id = body.id.clone();
        if !self.remember(body.id.clone()) {
            return;
        }
        let line = self.line(body, event);
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
        if self.picking {
            if let Some(acts) = self.on_users_key(key) {
                return acts;
            }
            // Any other key goes back to the input line, and does there what it does.
            self.picking = false;
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
            KeyCode::Char('u') | KeyCode::Char('U') if alt => self.pick_users(),
            KeyCode::F(2) => self.pick_users(),
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

    pub(super) fn switch(&mut self, by: isize) {
        let n = self.convs.len() as isize;
        self.current = ((self.current as isize + by).rem_euclid(n)) as usize;
        self.scroll = 0;
        let c = &mut self.convs[self.current];
        c.unread = 0;
        c.highlight = false;
    }
}

#[cfg(test)]
#[path = "app_tests.rs"]
mod tests;
