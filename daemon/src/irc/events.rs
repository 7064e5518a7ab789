//! What the network does, as IRC lines for one session: public messages of the joined rooms
//! (PRIVMSG with the message's own time as `server-time`), their edits and deletes (a NOTICE
//! in the room naming the message), people coming and going anywhere on the network (JOIN
//! and QUIT in every joined channel), their away changes (AWAY, with away-notify), renames
//! (NICK), and the account's private messages (PRIVMSG to the client's nick; later edits
//! and deletes as a NOTICE).

use std::sync::Arc;

use crate::chat::Stored;
use crate::chat::envelope::Kind;
use crate::dm::DmEvent;
use crate::people::{Change, UserEvent};

use super::commands::channel;
use super::line::{MAX_BODY, Message, clean};
use super::reply;
use super::session::{End, Session};

impl Session {
    fn mask_of(&self, name: &str, account: &[u8; 32]) -> String {
        let node = self
            .bridge
            .people
            .user(account)
            .map_or([0; 32], |(_, u)| u.node);
        reply::mask(name, account, &node)
    }

    /// A public message (or an edit or delete of one) from the chat feed.
    pub fn on_message(&mut self, stored: &Arc<Stored>) -> Result<(), End> {
        let m = &stored.message;
        if m.kind == Kind::People || !self.joined.contains(&m.room) {
            return Ok(());
        }
        let mine = match self.bridge.local.sent_by(&m.id) {
            Some((id, _, _)) => id == self.id,
            None => {
                !self.guest
                    && self
                        .bridge
                        .people
                        .author_of(m.author.as_ref(), &m.from_id())
                        == Some(self.account)
            }
        };
        if mine && !self.caps.echo_message && self.sent.contains(&m.id) {
            return Ok(());
        }
        self.out.all(self.public_lines(stored, None))
    }

    /// The lines showing a stored public message (several for a long or multi-line text),
    /// tagged as the client asked, and in `batch` if given.
    pub fn public_lines(&self, stored: &Stored, batch: Option<&str>) -> Vec<Message> {
        let m = &stored.message;
        let people = &self.bridge.people;
        let author = people.author_of(m.author.as_ref(), &m.from_id());
        let local = self.bridge.local.sent_by(&m.id);
        let command = if local.as_ref().is_some_and(|l| l.2) {
            "NOTICE"
        } else {
            "PRIVMSG"
        };
        let source = if let Some((id, mask, _)) = local {
            // An IRC client of this node sent it (guests share one account): shown as its.
            if id == self.id { self.me() } else { mask }
        } else if author == Some(self.account) && !self.guest {
            self.me()
        } else {
            let name = people.name_for(m.author.as_ref(), &m.from_id());
            match author {
                Some(a) => self.mask_of(&name, &a),
                None => reply::mask(&name, &[0; 32], &m.from_id().0),
            }
        };
        let ch = channel(&m.room);
        let id = m.id.to_hex();
        let target = m.target.map(|t| t.to_hex()).unwrap_or_default();
        let short = target.get(..8).unwrap_or("").to_owned();
        let mut lines = match m.kind {
            Kind::Text => {
                // A long or multi-line message is several lines, each within the bound.
                let room = MAX_BODY.saturating_sub(source.len() + ch.len() + 16);
                split_text(&m.text, room)
                    .into_iter()
                    .map(|part| {
                        let text = match part.strip_prefix("/me ") {
                            Some(action) => format!("\u{1}ACTION {action}\u{1}"),
                            None => part,
                        };
                        Message::new(Some(&source), command, &[&ch, &text])
                    })
                    .collect()
            }
            Kind::Deleted => vec![Message::new(
                Some(&source),
                "NOTICE",
                &[&ch, "(a deleted message)"],
            )],
            Kind::Edit | Kind::Delete => {
                let text = match m.kind {
                    Kind::Edit => format!("(edited message {short}) {}", clean(&m.text)),
                    _ => format!("(deleted message {short})"),
                };
                let mut line = Message::new(Some(&source), "NOTICE", &[&ch, &text]);
                if self.caps.message_tags {
                    line = line.tag("+draft/reply", Some(&target));
                }
                vec![line]
            }
            Kind::People => Vec::new(),
        };
        for l in &mut lines {
            *l = self.tags(std::mem::take(l), m.hlc.millis(), &id);
            if let Some(b) = batch {
                *l = std::mem::take(l).tag("batch", Some(b));
            }
        }
        lines
    }

    /// A change in the user directory.
    pub fn on_user(&mut self, e: &UserEvent) -> Result<(), End> {
        if e.account == [0; 32] {
            return Ok(());
        }
        // The node's guest account is shown as its guests here (their own JOIN, NICK and
        // QUIT), not as one network person.
        if (self.guest && e.account == self.account)
            || self.bridge.local.is_guest_account(&e.account)
        {
            return Ok(());
        }
        let Some((name, user)) = self.bridge.people.user(&e.account) else {
            return Ok(());
        };
        let before = self.names.insert(e.account, name.clone());
        if e.account == self.account {
            // Our own name as the network shows it (a first claim, a rename made elsewhere —
            // chatctl nick —, a name lost to an earlier claim): follow it.
            return self.rename(name);
        }
        let mask = reply::mask(&name, &e.account, &user.node);
        match e.change {
            Change::Join => {
                for room in self.joined.clone() {
                    let line = Message::new(Some(&mask), "JOIN", &[&channel(&room)]);
                    self.out.send(self.tags(line, e.at_ms, ""))?;
                }
                Ok(())
            }
            Change::Leave | Change::NodeDown => {
                if self.joined.is_empty() {
                    return Ok(());
                }
                let why = if e.change == Change::Leave {
                    "left the network"
                } else {
                    "its node stopped answering"
                };
                let line = Message::new(Some(&mask), "QUIT", &[why]);
                self.out.send(self.tags(line, e.at_ms, ""))
            }
            Change::Presence => {
                if !self.caps.away_notify {
                    return Ok(());
                }
                let line = match user.presence {
                    crate::people::Presence::Away => Message::new(
                        Some(&mask),
                        "AWAY",
                        &[&clean(if user.away.is_empty() {
                            "away"
                        } else {
                            &user.away
                        })],
                    ),
                    _ => Message::new(Some(&mask), "AWAY", &[]),
                };
                self.out.send(line)
            }
            Change::Nick => match before {
                Some(old) if old != name => {
                    let old_mask = reply::mask(&old, &e.account, &user.node);
                    self.out
                        .send(Message::new(Some(&old_mask), "NICK", &[&name]))
                }
                _ => Ok(()),
            },
        }
    }

    /// A private-conversation event: a message to or from this session's account.
    pub fn on_private(&mut self, e: &DmEvent) -> Result<(), End> {
        let DmEvent::Message(m) = e else {
            return Ok(());
        };
        if m.account != self.account || m.row.group.is_some() {
            return Ok(());
        }
        let row = &m.row;
        let state = (row.edited_ms, row.deleted);
        let before = self.private_state(row.id, state);
        let people = &self.bridge.people;
        let peer = row.peer.unwrap_or(row.from);
        let peer_name = people.display_account(&peer);
        let id = hex::encode(row.id);
        let (source, target) = if row.outgoing {
            (self.me(), peer_name.clone())
        } else {
            (self.mask_of(&peer_name, &peer), self.nick.clone())
        };
        match before {
            None => {
                if row.outgoing && !self.caps.echo_message {
                    return Ok(());
                }
                if row.deleted {
                    return Ok(());
                }
                let room = MAX_BODY.saturating_sub(source.len() + target.len() + 16);
                for part in split_text(&row.text, room) {
                    let line = Message::new(Some(&source), "PRIVMSG", &[&target, &part]);
                    self.out.send(self.tags(line, row.sent_ms, &id))?;
                }
                Ok(())
            }
            Some(old) if old == state => Ok(()),
            Some(_) => {
                let short = id.get(..8).unwrap_or("");
                let text = if row.deleted {
                    format!("(deleted private message {short})")
                } else {
                    format!("(edited private message {short}) {}", clean(&row.text))
                };
                let line = Message::new(Some(&source), "NOTICE", &[&target, &text]);
                self.out
                    .send(self.tags(line, row.edited_ms.max(row.sent_ms), &id))
            }
        }
    }
}

/// `text` as IRC message texts: one per line, each cut (on a character boundary) to at most
/// `max` bytes; control characters other than the line breaks become spaces.
pub fn split_text(text: &str, max: usize) -> Vec<String> {
    let max = max.max(16);
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = clean(line.trim_end_matches('\r'));
        let mut rest = line.as_str();
        while rest.len() > max {
            let mut cut = max;
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push(rest[..cut].to_owned());
            rest = &rest[cut..];
        }
        if !rest.is_empty() || out.is_empty() {
            out.push(rest.to_owned());
        }
    }
    out.retain(|l| !l.is_empty());
    if out.is_empty() {
        out.push(" ".to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_and_multi_line_texts_become_several_lines() {
        assert_eq!(split_text("a\nb\r\n\nc", 100), vec!["a", "b", "c"]);
        let long = "é".repeat(100);
        let parts = split_text(&long, 51);
        assert!(parts.iter().all(|p| p.len() <= 51));
        assert_eq!(parts.concat(), long);
        assert_eq!(split_text("x\0y", 100), vec!["x y"]);
        assert_eq!(split_text("", 100), vec![" "]);
    }
}
