//! IRC-level channel membership and guests, on top of [`super::local::Local`]: the NAMES
//! and WHO lists (the node's IRC clients in the channel, then the network's people as the
//! directory shows them), WHO/WHOIS of a guest, LUSERS, KICK (chatd rooms have no
//! operators: `482`), and what a guest without a password (`irc.guests`) does instead of
//! acting on an account: a local nick (NICK), a local away message (AWAY) and node-local
//! private messages to other guests (no end-to-end keys, nothing stored).

use std::collections::BTreeSet;

use crate::chat::Room;
use crate::people::Presence;

use super::bridge::{Bridge, Person};
use super::line::Message;
use super::local::{Client, same};
use super::register::valid_nick;
use super::reply::{self, server};
use super::session::{End, Session};

/// A guest's `nick!~user@host`: the user name it gave (letters, digits, `_.-`; at most 9),
/// on this node's host.
pub fn guest_mask(nick: &str, username: &str, node: &[u8; 32]) -> String {
    let user: String = username
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(9)
        .collect();
    let user = if user.is_empty() {
        "guest".into()
    } else {
        user
    };
    format!("{nick}!~{user}@{}.chatd", hex::encode(&node[..4]))
}

impl Session {
    /// The people of the network shown in `room` besides the node's IRC clients: everyone
    /// present (chatd rooms have no membership), but the node's guest account (shown as its
    /// guests) and the names IRC clients here already show.
    pub fn network_names(&self) -> Vec<(String, Person)> {
        let local = self.bridge.local.all();
        let guest_accounts: BTreeSet<[u8; 32]> = local
            .iter()
            .filter(|(_, c)| c.guest)
            .map(|(_, c)| c.account)
            .collect();
        let mut people: Vec<(String, Person)> = self
            .bridge
            .present()
            .into_iter()
            .filter(|(n, u)| {
                !guest_accounts.contains(&u.account)
                    && (self.guest || u.account != self.account)
                    && !local.iter().any(|(_, c)| same(&c.nick, n))
            })
            .collect();
        people.sort_by(|a, b| a.0.cmp(&b.0));
        people
    }

    /// NAMES of `room`: this client first, the node's other IRC clients in it, then the
    /// network's people.
    /// With `masks` (`userhost-in-names`), each as `nick!user@host`.
    pub fn channel_names(&self, room: &Room, masks: bool) -> Vec<String> {
        let mut names = vec![if masks { self.me() } else { self.nick.clone() }];
        let mut local: Vec<(String, String)> = self
            .bridge
            .local
            .members(room)
            .into_iter()
            .filter(|(id, _)| *id != self.id)
            .map(|(_, c)| (c.nick, c.mask))
            .collect();
        local.sort();
        names.extend(local.into_iter().map(|(n, m)| if masks { m } else { n }));
        names.extend(self.network_names().into_iter().map(|(n, u)| {
            if masks {
                reply::mask(&n, &u.account, &u.node)
            } else {
                n
            }
        }));
        names
    }

    pub(super) fn away_account(&self, c: &Client) -> bool {
        !c.guest
            && self
                .bridge
                .people
                .user(&c.account)
                .is_some_and(|(_, u)| u.presence == Presence::Away)
    }

    /// WHOIS of a guest of this node.
    pub fn whois_local(&self, c: &Client) -> Result<(), End> {
        let (user, host) = user_host(&c.mask);
        self.num("311", &[&c.nick, &user, &host, "*", &c.realname])?;
        self.num(
            "312",
            &[&c.nick, server(), "a guest of this node (irc.guests)"],
        )?;
        if let Some(away) = &c.away {
            self.num("301", &[&c.nick, away])?;
        }
        self.num("318", &[&c.nick, "End of /WHOIS list"])
    }

    /// Whether `room` exists for IRC: an IRC client here is in it, or this node stores
    /// messages of it.
    pub fn channel_exists(&self, room: &Room) -> bool {
        !self.bridge.local.members(room).is_empty()
            || self
                .bridge
                .chat
                .rooms()
                .is_ok_and(|rs| rs.iter().any(|r| r.name == room.to_string()))
    }

    /// LUSERS: the node's IRC clients and the network's people (`rooms`: the rooms with
    /// stored messages, read beforehand on the blocking pool).
    pub fn lusers(&self, rooms: usize) -> Result<(), End> {
        let local = self.bridge.local.all().len();
        let network = self.network_names().len();
        let all = (local + network).to_string();
        self.num(
            "251",
            &[&format!(
                "There are {all} users and 0 invisible on 1 servers"
            )],
        )?;
        self.num("252", &["0", "operator(s) online"])?;
        let rooms = rooms.to_string();
        self.num("254", &[&rooms, "channels formed"])?;
        self.num("255", &[&format!("I have {local} clients and 0 servers")])?;
        let l = local.to_string();
        self.num(
            "265",
            &[&l, &l, &format!("Current local users {l}, max {l}")],
        )?;
        self.num(
            "266",
            &[
                &all,
                &all,
                &format!("Current global users {all}, max {all}"),
            ],
        )
    }

    /// KICK: nobody is a channel operator in chatd rooms.
    pub fn kick(&self, c: &str, nick: &str) -> Result<(), End> {
        let Ok(room) = Bridge::room(c) else {
            return self.num("403", &[c, "No such channel"]);
        };
        if !self.joined.contains(&room) {
            return self.num("442", &[c, "You're not on that channel"]);
        }
        if self.bridge.local.find(nick).is_none() && self.person(nick).is_none() {
            return self.num("401", &[nick, "No such nick"]);
        }
        self.num(
            "482",
            &[
                c,
                "You're not channel operator (chatd rooms have no operators)",
            ],
        )
    }

    /// A guest's AWAY: kept on this node (the guest account's presence is shared).
    pub fn guest_away(&mut self, message: Option<&String>) -> Result<(), End> {
        let away = message.map(|m| super::line::clean(m));
        let back = away.is_none();
        self.bridge.local.update(self.id, |c| c.away = away);
        if back {
            self.num("305", &["You are no longer marked as being away"])
        } else {
            self.num("306", &["You have been marked as being away"])
        }
    }

    /// A guest's NICK: a local nick, free among the node's IRC clients and not a network
    /// name (`433`); never a claim on the network.
    pub fn guest_nick(&mut self, wish: &str) -> Result<(), End> {
        if !valid_nick(wish) || wish.len() > 32 {
            return self.num("432", &[wish, "Erroneous nickname"]);
        }
        if wish == self.nick {
            return Ok(());
        }
        if !self.bridge.guest_nick_free(wish, Some(self.id)) {
            return self.num(
                "433",
                &[
                    wish,
                    "Nickname is already in use (by a client of this node or on the network)",
                ],
            );
        }
        self.rename(wish.to_owned())
    }

    /// A guest's private message: only to another guest of this node, delivered at once and
    /// never stored nor sent over the network (guests have no end-to-end keys, and act as
    /// no account). Limited by the same send bucket as public messages.
    pub fn guest_private(&mut self, target: &str, text: &str, notice: bool) -> Result<(), End> {
        let Some((id, c)) = self.bridge.local.find(target) else {
            if notice {
                return Ok(());
            }
            if self.person(target).is_some() {
                return self.notice(&format!(
                    "NOT SENT to {target}: guests of this node cannot send private messages to the network's people"
                ));
            }
            return self.num("401", &[target, "No such nick"]);
        };
        if !c.guest {
            if notice {
                return Ok(());
            }
            return self.notice(&format!(
                "NOT SENT to {target}: guests of this node send private messages only to other guests"
            ));
        }
        if let Err(e) = self.bridge.take(&self.key) {
            if notice {
                return Ok(());
            }
            return self.num("404", &[target, &format!("Cannot send: {e}")]);
        }
        let command = if notice { "NOTICE" } else { "PRIVMSG" };
        let now = crate::records::unix_ms();
        let line = |caps: &super::caps::Caps| {
            let mut m = Message::new(Some(&self.me()), command, &[&c.nick, text]);
            if caps.server_time {
                m = m.tag("time", Some(&reply::time_tag(now)));
            }
            m
        };
        if id != self.id {
            self.bridge.local.deliver(id, line(&c.caps));
        }
        if self.caps.echo_message {
            self.out.send(line(&self.caps))?;
        }
        if let Some(away) = c.away.filter(|_| !notice) {
            self.num("301", &[&c.nick, &away])?;
        }
        Ok(())
    }
}

/// IRC wildcard matching (`*` any run, `?` one character), ASCII case-insensitive.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text.to_ascii_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

pub(super) fn user_host(mask: &str) -> (String, String) {
    let uh = mask.split_once('!').map_or(mask, |(_, r)| r);
    let (u, h) = uh.split_once('@').unwrap_or((uh, server()));
    (u.to_owned(), h.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_masks_keep_only_safe_user_names() {
        let node = [0xab; 32];
        assert_eq!(
            guest_mask("n", "myusername", &node),
            "n!~myusernam@abababab.chatd"
        );
        assert_eq!(guest_mask("n", "a@b!c d", &node), "n!~abcd@abababab.chatd");
        assert_eq!(guest_mask("n", "@@", &node), "n!~guest@abababab.chatd");
        assert_eq!(user_host("n!~u@h.chatd"), ("~u".into(), "h.chatd".into()));
    }

    #[test]
    fn wildcards_match_like_irc_masks() {
        assert!(glob("*", "anything"));
        assert!(glob("eva*", "Evan"));
        assert!(!glob("eva*", "shivaram"));
        assert!(glob("c?olnick!*@*", "coolNick!~u@h.chatd"));
        assert!(!glob("c?olnick!*@x", "coolNick!~u@h.chatd"));
        assert!(glob("*a*b*", "xxaxxbxx"));
    }
}
