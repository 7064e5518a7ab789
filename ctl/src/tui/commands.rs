//! What Enter does with the input line: a message to the window shown, `@nick text`, or a
//! `/command` — among them `/edit [N] TEXT` and `/delete [N]` of one's own N-th last message
//! in the window shown, `/file` and `/get` (`files.rs`). A line that cannot be carried out comes back into the input, so nothing
//! typed is lost.

use super::app::{Action, App, LineKind, Pending, SCROLLBACK};

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
    (
        "/edit",
        "[N] TEXT — your last message here now reads TEXT (N: your N-th last; `/edit 1 3 cats` to start with a number)",
    ),
    (
        "/delete",
        "[N] — delete your last message here (or your N-th last)",
    ),
    (
        "/file",
        "PATH [CAPTION] — send a file to this room (\"quotes\" around a path with spaces)",
    ),
    (
        "/voice",
        "PATH — send a recording as a voice message here (transcribed by your node)",
    ),
    (
        "/get",
        "[N|ID] [--force] — save the N-th last file shown here (1) in the current directory",
    ),
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

/// The keys, for `/help`.
const KEYS: &str = "Keys: Tab completes, ↑/↓ history, PgUp/PgDn scroll, Ctrl-N/Ctrl-P (or Alt-→/←) switch windows, Alt-U (or F2) chooses a user (↑/↓, Enter opens a private window, Esc returns), Ctrl-C quits; //text sends /text";

impl App {
    /// Enter: carries out the input line.
    pub(super) fn submit(&mut self) -> Vec<Action> {
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
                self.notice(KEYS);
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
            "/edit" => return self.edit_own(rest, &line),
            "/delete" => return self.delete_own(rest, &line),
            "/file" => return self.send_file(rest, &line),
            "/voice" => return self.send_voice(rest, &line),
            "/get" => return self.get_file(rest, &line),
            "/users" => {
                let list: Vec<String> = self
                    .listed_users()
                    .iter()
                    .map(|u| format!("{} ({})", u.nickname, u.presence))
                    .collect();
                self.notice(&format!("{} here: {}", list.len(), list.join(", ")));
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

    /// Sends `text` to the window shown (a room, a person, a group).
    pub(super) fn send(&mut self, text: String) -> Vec<Action> {
        let reference = self.pend(&text, "not sent");
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

    /// Remembers `line` until chatd answers; its reference.
    pub(super) fn pend(&mut self, line: &str, failed: &'static str) -> u64 {
        self.next_ref += 1;
        let reference = self.next_ref;
        self.pending.insert(
            reference,
            Pending {
                line: line.to_owned(),
                failed,
            },
        );
        reference
    }

    /// Opens (and shows) the private window with `nick`; sends `text` there if any.
    pub(super) fn query(&mut self, nick: &str, text: &str) -> Vec<Action> {
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

    /// `/edit [N] TEXT`, typed as `line`.
    fn edit_own(&mut self, rest: &str, line: &str) -> Vec<Action> {
        // A leading number counts back, when text follows it.
        let (n, text) = match rest.split_once(' ') {
            Some((first, more)) if is_count(first) => (first.parse().ok(), more.trim()),
            _ if is_count(rest) => (rest.parse().ok(), ""),
            _ => (Some(1), rest),
        };
        let Some(n) = n.filter(|n| (1..=SCROLLBACK).contains(n)) else {
            return self.back(line, "/edit: N counts your messages back from the last (1)");
        };
        if text.is_empty() {
            return self.back(line, "/edit: what should it say? /edit [N] TEXT");
        }
        let Some((id, private, action)) = self.own(n) else {
            return self.back(line, &nothing_to_change(n));
        };
        // A `/me` line stays one.
        let text = if action && !text.starts_with("/me ") {
            format!("/me {text}")
        } else {
            text.to_owned()
        };
        let reference = self.pend(line, "not edited");
        vec![Action::Change {
            reference,
            id,
            private,
            text: Some(text),
        }]
    }

    /// `/delete [N]`, typed as `line`.
    fn delete_own(&mut self, rest: &str, line: &str) -> Vec<Action> {
        let n = if rest.is_empty() {
            Some(1)
        } else if is_count(rest) {
            rest.parse().ok().filter(|n| (1..=SCROLLBACK).contains(n))
        } else {
            None
        };
        let Some(n) = n else {
            return self.back(
                line,
                "/delete [N]: N counts your messages back from the last (1)",
            );
        };
        let Some((id, private, _)) = self.own(n) else {
            return self.back(line, &nothing_to_change(n));
        };
        let reference = self.pend(line, "not deleted");
        vec![Action::Change {
            reference,
            id,
            private,
            text: None,
        }]
    }

    /// This user's `n`-th last message (1: the last) of the window shown that is not deleted:
    /// its id, whether it is private, whether it is a `/me` line.
    fn own(&self, n: usize) -> Option<(String, bool, bool)> {
        let conv = self.shown();
        let private = conv.is_private();
        let me = &self.status.nickname;
        conv.lines
            .iter()
            .rev()
            .filter(|l| {
                !l.id.is_empty()
                    && !l.deleted
                    && matches!(l.kind, LineKind::Text | LineKind::Action)
                    // In a private window only what this user sent; in a room, lines in this
                    // user's name (also those shown before the status said who that is).
                    && (l.mine || (!private && !me.is_empty() && l.from == *me))
            })
            .nth(n - 1)
            .map(|l| (l.id.clone(), private, l.kind == LineKind::Action))
    }

    /// A line that cannot be carried out: said why, and the line goes back into the input.
    pub(super) fn back(&mut self, line: &str, why: &str) -> Vec<Action> {
        self.notice(why);
        if self.input.text().is_empty() {
            self.input.set(line);
        } else {
            self.input.remember(line);
        }
        Vec::new()
    }
}

/// A count for `/edit N`, `/delete N`: digits only.
fn is_count(s: &str) -> bool {
    !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit())
}

fn nothing_to_change(n: usize) -> String {
    if n == 1 {
        "no message of yours in this window to change (only what is loaded here counts)".into()
    } else {
        format!("you have fewer than {n} messages in this window (only what is loaded here counts)")
    }
}

#[cfg(test)]
mod tests {
    use super::super::app::{NetEvent, Status};
    use super::super::kit::*;
    use super::*;

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
        typed(&mut app, "/help");
        let help: Vec<&str> = app.shown().lines.iter().map(|l| l.text.as_str()).collect();
        assert!(
            help.iter().any(|l| l.starts_with("/edit [N] TEXT")),
            "{help:?}"
        );
        assert!(
            help.iter().any(|l| l.starts_with("/delete [N]")),
            "{help:?}"
        );
        assert!(help.iter().any(|l| l.contains("Alt-U")), "{help:?}");
        typed(&mut app, "/quit");
        assert!(app.quit);
    }

    #[test]
    fn tab_completes_the_new_commands() {
        let mut app = App::new("lobby");
        for c in "/ed".chars() {
            app.on_key(key(crossterm::event::KeyCode::Char(c)));
        }
        app.on_key(key(crossterm::event::KeyCode::Tab));
        assert_eq!(app.input.text(), "/edit ");
        app.input.set("/del");
        app.on_key(key(crossterm::event::KeyCode::Tab));
        assert_eq!(app.input.text(), "/delete ");
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
        app.on_net(private("x1", "dave", "dave", "", "hi alice", false));
        let dave = app
            .convs
            .iter()
            .find(|c| c.room == "@dave")
            .expect("opened");
        assert_eq!((dave.unread, dave.highlight), (1, true));
        // The same message again (history after a reconnect) is not shown twice.
        app.on_net(private("x1", "dave", "dave", "", "hi alice", false));
        let dave = app
            .convs
            .iter()
            .find(|c| c.room == "@dave")
            .expect("opened");
        assert_eq!(dave.lines.len(), 1);
        // A group's messages go to its window, and typing there sends to the group.
        app.on_net(private("g1", "erin", "", "team", "standup?", false));
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

    /// The `Change` an action list holds: (id, private, text).
    fn change(acts: &[Action]) -> (String, bool, Option<String>) {
        match acts {
            [
                Action::Change {
                    id, private, text, ..
                },
            ] => (id.clone(), *private, text.clone()),
            other => panic!("not one change: {other:?}"),
        }
    }

    #[test]
    fn edit_and_delete_pick_ones_own_nth_last_message_here() {
        let mut app = as_alice();
        app.on_net(msg("a1", "lobby", "alice", "first"));
        app.on_net(msg("b1", "lobby", "bob", "bob's"));
        app.on_net(msg("a2", "lobby", "alice", "/me waves"));
        app.on_net(msg("a3", "lobby", "alice", "thrid"));
        app.on_net(msg("x1", "dev", "alice", "elsewhere"));
        assert_eq!(
            change(&typed(&mut app, "/edit third")),
            ("a3".into(), false, Some("third".into()))
        );
        // N counts back; a `/me` line stays one.
        assert_eq!(
            change(&typed(&mut app, "/edit 2 dances")),
            ("a2".into(), false, Some("/me dances".into()))
        );
        assert_eq!(
            change(&typed(&mut app, "/edit 1 3 cats")),
            ("a3".into(), false, Some("3 cats".into()))
        );
        assert_eq!(
            change(&typed(&mut app, "/delete 3")),
            ("a1".into(), false, None)
        );
        assert_eq!(
            change(&typed(&mut app, "/delete")),
            ("a3".into(), false, None)
        );
        // A deleted line no longer counts.
        app.on_net(NetEvent::Change {
            id: "d".into(),
            room: "lobby".into(),
            target: "a3".into(),
            text: None,
        });
        assert_eq!(
            change(&typed(&mut app, "/delete")),
            ("a2".into(), false, None)
        );
        // Nothing to change, a bad count, a missing text: said, and the line comes back.
        for (line, why) in [
            ("/delete 9", "fewer than 9"),
            ("/delete x", "N counts"),
            ("/delete 0", "N counts"),
            ("/edit 0 zero", "N counts"),
            ("/edit", "what should it say"),
            ("/edit 2", "what should it say"),
        ] {
            assert!(typed(&mut app, line).is_empty(), "{line}");
            assert_eq!(app.input.text(), line, "nothing typed is lost");
            assert!(
                app.shown()
                    .lines
                    .back()
                    .is_some_and(|l| l.text.contains(why)),
                "{line}: {:?}",
                app.shown().lines.back()
            );
            app.input.set("");
        }
        // In a private window: one's own (outgoing) messages, as private changes.
        app.on_net(private("p1", "alice", "bob", "", "hi bob", true));
        app.on_net(private("p2", "bob", "bob", "", "hi alice", false));
        typed(&mut app, "/msg bob");
        assert_eq!(
            change(&typed(&mut app, "/edit hello bob")),
            ("p1".into(), true, Some("hello bob".into()))
        );
        assert!(typed(&mut app, "/delete 2").is_empty());
    }

    #[test]
    fn a_refused_change_gives_the_line_back() {
        let mut app = as_alice();
        app.on_net(msg("a1", "lobby", "alice", "mine"));
        let acts = typed(&mut app, "/edit better");
        let Action::Change { reference, .. } = acts[0] else {
            panic!("{acts:?}")
        };
        app.on_net(NetEvent::NotSent(
            reference,
            "only its author can change a message".into(),
        ));
        assert_eq!(app.input.text(), "/edit better");
        assert!(
            app.shown()
                .lines
                .back()
                .is_some_and(|l| l.text.starts_with("not edited: only its author")),
            "{:?}",
            app.shown().lines.back()
        );
        // While something else is being typed, ↑ brings it back.
        app.input.set("");
        let acts = typed(&mut app, "/delete");
        let Action::Change { reference, .. } = acts[0] else {
            panic!("{acts:?}")
        };
        app.input.set("new words");
        app.on_net(NetEvent::NotSent(reference, "UNIMPLEMENTED".into()));
        assert_eq!(app.input.text(), "new words");
        app.on_key(key(crossterm::event::KeyCode::Up));
        assert_eq!(app.input.text(), "/delete");
    }
}
