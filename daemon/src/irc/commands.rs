//! The commands of a registered IRC client, each carried out through the bridge
//! ([`super::bridge`]): JOIN, PART, PRIVMSG/NOTICE (a room or a person), NAMES, WHO, WHOIS,
//! TOPIC, LIST, AWAY, NICK, MODE, USERHOST, ISON, PING/PONG, QUIT, CHATHISTORY
//! (`history.rs`), and CAP after registration. Everything else gets `421`.

use crate::chat::Room;
use crate::chat::envelope::Kind;
use crate::offload::{Offload, Work};
use crate::people::Presence;

use super::bridge::{Bridge, BridgeError, Person};
use super::line::Message;
use super::register::valid_nick;
use super::reply::{self, server};
use super::session::{End, Session};

/// Messages replayed after a JOIN, at most.
const REPLAY: usize = 50;
/// The topic shown for every room (chatd rooms have no topics).
const NO_TOPIC: &str = "No topic is set (chatd rooms have no topics)";

impl Session {
    /// Handles one command of the registered client.
    pub async fn command(&mut self, m: Message) -> Result<(), End> {
        let p = |i: usize| m.param(i).to_owned();
        match m.command.as_str() {
            "PING" if m.params.is_empty() => self.num("461", &["PING", "Not enough parameters"]),
            "PING" => self.out.send(Message::new(
                Some(server()),
                "PONG",
                &[server(), m.param(0)],
            )),
            "PONG" => Ok(()),
            "QUIT" => {
                self.quit = Some(match m.params.first().filter(|r| !r.is_empty()) {
                    Some(r) => format!("Quit: {}", super::line::clean(r)),
                    None => "Quit".to_owned(),
                });
                Ok(())
            }
            "CAP" => self.cap(&m),
            "PASS" | "USER" => self.num("462", &["You may not reregister"]),
            "AUTHENTICATE" => self.num("907", &["You have already authenticated"]),
            "JOIN" if m.params.is_empty() => self.num("461", &["JOIN", "Not enough parameters"]),
            "JOIN" if m.param(0) == "0" => {
                for room in self.joined.clone() {
                    self.part(&channel(&room), None)?;
                }
                Ok(())
            }
            "JOIN" => {
                for c in p(0).split(',') {
                    self.join(c).await?;
                }
                Ok(())
            }
            "PART" if m.params.is_empty() => self.num("461", &["PART", "Not enough parameters"]),
            "PART" => {
                for c in p(0).split(',') {
                    self.part(c, m.params.get(1).map(String::as_str))?;
                }
                Ok(())
            }
            "PRIVMSG" | "NOTICE" => self.message(&m).await,
            "NAMES" if m.params.is_empty() => self.num("366", &["*", "End of /NAMES list"]),
            "NAMES" => {
                for c in p(0).split(',') {
                    self.names(c)?;
                }
                Ok(())
            }
            "WHO" => self.who(m.param(0), m.params.get(1).map(String::as_str)),
            "WHOIS" if m.params.is_empty() => self.num("431", &["No nickname given"]),
            "WHOIS" => self.whois(m.params.last().map_or("", String::as_str)),
            "TOPIC" if m.params.is_empty() => self.num("461", &["TOPIC", "Not enough parameters"]),
            "TOPIC" => self.topic(m.param(0), m.params.len() > 1),
            "LIST" => self.list().await,
            "AWAY" => self.away(m.params.first().filter(|a| !a.is_empty())).await,
            "NICK" if m.params.is_empty() => self.num("431", &["No nickname given"]),
            "NICK" => self.nick(m.param(0)).await,
            "MODE" => self.mode(&m),
            "KICK" if m.params.len() < 2 => self.num("461", &["KICK", "Not enough parameters"]),
            "KICK" => self.kick(m.param(0), m.param(1)),
            "USERHOST" => {
                let found: Vec<String> = m
                    .params
                    .iter()
                    .take(5)
                    .filter_map(|n| {
                        if let Some((_, c)) = self.bridge.local.find(n) {
                            let away = if c.away.is_some() { '-' } else { '+' };
                            let host = c.mask.split_once('!').map_or("", |(_, h)| h).to_owned();
                            return Some(format!("{}={away}{host}", c.nick));
                        }
                        self.person(n).map(|(name, u)| {
                            let away = if u.presence == Presence::Away {
                                '-'
                            } else {
                                '+'
                            };
                            format!("{name}={away}{}", host_of(&u))
                        })
                    })
                    .collect();
                self.num("302", &[&found.join(" ")])
            }
            "ISON" => {
                let on: Vec<String> = m
                    .params
                    .iter()
                    .flat_map(|p| p.split_whitespace())
                    .filter_map(|n| {
                        self.bridge
                            .local
                            .find(n)
                            .map(|(_, c)| c.nick)
                            .or_else(|| self.person(n).map(|(name, _)| name))
                    })
                    .collect();
                self.num("303", &[&on.join(" ")])
            }
            "CHATHISTORY" => self.chathistory(&m).await,
            "TIME" => self.num(
                "391",
                &[
                    server(),
                    &format!("{} UTC", reply::time_tag(crate::records::unix_ms())),
                ],
            ),
            "OPER" => self.num(
                "491",
                &["No O-lines for your host (chatd has no IRC operators)"],
            ),
            "MOTD" => self.num("422", &["MOTD File is missing"]),
            "LUSERS" => {
                let rooms = self.bridge.rooms().await.map_or(0, |r| r.len());
                self.lusers(rooms)
            }
            other => self.num("421", &[other, "Unknown command"]),
        }
    }

    fn cap(&mut self, m: &Message) -> Result<(), End> {
        let n = self.nick.clone();
        match m.param(0).to_ascii_uppercase().as_str() {
            "LS" => {
                let list: Vec<&str> = super::caps::LS.iter().map(|(k, _)| *k).collect();
                self.out.send(Message::new(
                    Some(server()),
                    "CAP",
                    &[&n, "LS", &list.join(" ")],
                ))
            }
            "LIST" => self.out.send(Message::new(
                Some(server()),
                "CAP",
                &[&n, "LIST", &self.caps.names().join(" ")],
            )),
            "REQ" => {
                let asked = m.param(1);
                // SASL cannot be turned on or off once registered.
                let ok = !asked.contains("sasl") && self.caps.request(asked);
                let verb = if ok { "ACK" } else { "NAK" };
                self.out
                    .send(Message::new(Some(server()), "CAP", &[&n, verb, asked]))
            }
            "END" => Ok(()),
            sub => self.num("410", &[sub, "Invalid CAP command"]),
        }
    }

    /// The person `name` shows, with the name shown.
    pub(super) fn person(&self, name: &str) -> Option<(String, Person)> {
        let u = self.bridge.people.find(name)?;
        self.bridge
            .people
            .user(&u.account)
            .map(|(n, u)| (n, Person::from(&u)))
    }

    async fn join(&mut self, c: &str) -> Result<(), End> {
        let room = match Bridge::room(c) {
            Ok(r) if c.starts_with('#') => r,
            Ok(_) | Err(_) => {
                return self.num(
                    "403",
                    &[c, "No such channel (chatd room names: #a-z0-9_-.)"],
                );
            }
        };
        if !self.joined.insert(room.clone()) {
            return Ok(());
        }
        let ch = channel(&room);
        let line = Message::new(Some(&self.me()), "JOIN", &[&ch]);
        self.bridge.local.join(self.id, &room, &line);
        self.out.send(line)?;
        self.names(&ch)?;
        self.replay(&room).await
    }

    /// The room's recent messages after a JOIN, for a client with server-time (it shows
    /// them at their own times): in a `chathistory` batch when the client has `batch`.
    async fn replay(&self, room: &Room) -> Result<(), End> {
        // A client with draft/chathistory asks for what it wants itself.
        if !self.caps.server_time || self.caps.chathistory {
            return Ok(());
        }
        let (chat, r) = (self.bridge.chat.clone(), room.clone());
        let read = Offload::shared()
            .run(Work::Read, move || chat.before(i64::MAX, Some(&r), REPLAY))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        let rows = match read {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "irc: no history to replay");
                return Ok(());
            }
        };
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|s| matches!(s.message.kind, Kind::Text))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let batch = self.caps.batch.then(|| format!("h{}", rows[0].pos));
        if let Some(b) = &batch {
            self.out.send(Message::new(
                Some(server()),
                "BATCH",
                &[&format!("+{b}"), "chathistory", &channel(room)],
            ))?;
        }
        for s in &rows {
            self.out.all(self.public_lines(s, batch.as_deref()))?;
        }
        if let Some(b) = &batch {
            self.out
                .send(Message::new(Some(server()), "BATCH", &[&format!("-{b}")]))?;
        }
        Ok(())
    }

    fn part(&mut self, c: &str, reason: Option<&str>) -> Result<(), End> {
        let Ok(room) = Bridge::room(c) else {
            return self.num("403", &[c, "No such channel"]);
        };
        if !self.joined.remove(&room) {
            return self.num("442", &[c, "You're not on that channel"]);
        }
        let ch = channel(&room);
        let mut params = vec![ch.as_str()];
        if let Some(r) = reason {
            params.push(r);
        }
        let line = Message::new(Some(&self.me()), "PART", &params);
        self.bridge.local.part(self.id, &room, &line);
        self.out.send(line)
    }

    fn names(&self, c: &str) -> Result<(), End> {
        if let Ok(room) = Bridge::room(c)
            && self.joined.contains(&room)
        {
            let ch = channel(&room);
            let names = self.channel_names(&room, self.caps.userhost_in_names);
            // Several lines if needed, each well under the line bound.
            let mut line = String::new();
            for n in names {
                if line.len() + n.len() > 400 {
                    self.num("353", &["=", &ch, &line])?;
                    line.clear();
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(&n);
            }
            if !line.is_empty() {
                self.num("353", &["=", &ch, &line])?;
            }
            return self.num("366", &[&ch, "End of /NAMES list"]);
        }
        self.num("366", &[c, "End of /NAMES list"])
    }

    fn whois(&self, nick: &str) -> Result<(), End> {
        if let Some((_, c)) = self.bridge.local.find(nick)
            && c.guest
        {
            return self.whois_local(&c);
        }
        let found = if nick.eq_ignore_ascii_case(&self.nick) {
            let node = self.bridge.node.id().0;
            Some((
                self.nick.clone(),
                self.bridge.self_view(self.who, self.account, node),
            ))
        } else {
            self.person(nick)
        };
        let Some((name, u)) = found else {
            self.num("401", &[nick, "No such nick"])?;
            return self.num("318", &[nick, "End of /WHOIS list"]);
        };
        let (user, host) = split_mask(&reply::mask(&name, &u.account, &u.node));
        self.num(
            "311",
            &[
                &name,
                &user,
                &host,
                "*",
                &format!("account {}", hex::encode(u.account)),
            ],
        )?;
        self.num(
            "312",
            &[
                &name,
                server(),
                &format!("hosted by node {}", hex::encode(&u.node[..8])),
            ],
        )?;
        if u.presence == Presence::Away {
            self.num(
                "301",
                &[&name, if u.away.is_empty() { "away" } else { &u.away }],
            )?;
        }
        if u.presence == Presence::Offline {
            self.num(
                "320",
                &[&name, "is offline (private messages wait in the mailbox)"],
            )?;
        }
        self.num("318", &[&name, "End of /WHOIS list"])
    }

    fn topic(&self, c: &str, set: bool) -> Result<(), End> {
        let Ok(room) = Bridge::room(c) else {
            return self.num("403", &[c, "No such channel"]);
        };
        if !self.joined.contains(&room) {
            if !self.channel_exists(&room) {
                return self.num("403", &[c, "No such channel"]);
            }
            return self.num("442", &[c, "You're not on that channel"]);
        }
        if set {
            return self.num("482", &[c, "chatd rooms have no topics"]);
        }
        self.num("331", &[&channel(&room), NO_TOPIC])
    }

    async fn list(&self) -> Result<(), End> {
        self.num("321", &["Channel", "Users  Name"])?;
        let users = self.bridge.present().len().to_string();
        if let Ok(rooms) = self.bridge.rooms().await {
            for r in rooms {
                let text = format!("{} messages", r.count);
                self.num("322", &[&format!("#{}", r.name), &users, &text])?;
            }
        }
        self.num("323", &["End of /LIST"])
    }

    async fn away(&mut self, message: Option<&String>) -> Result<(), End> {
        if self.guest {
            return self.guest_away(message);
        }
        match self.bridge.set_away(self.who, message.cloned()).await {
            Ok(()) if message.is_some() => self.num("306", &["You have been marked as being away"]),
            Ok(()) => self.num("305", &["You are no longer marked as being away"]),
            Err(e) => self.fail("AWAY", &e),
        }
    }

    async fn nick(&mut self, wish: &str) -> Result<(), End> {
        if self.guest {
            return self.guest_nick(wish);
        }
        if self.who == crate::people::Who::Token {
            return self.num(
                "484",
                &["guests (*nick) keep the name their node gave them"],
            );
        }
        if !valid_nick(wish) || wish.parse::<crate::nickname::Nickname>().is_err() {
            return self.num(
                "432",
                &[
                    wish,
                    "Erroneous nickname (letters, digits, _ - . ; at most 32)",
                ],
            );
        }
        if wish == self.nick {
            return Ok(());
        }
        match self.bridge.set_nick(self.who, wish).await {
            Ok((got, note)) => {
                if !got.eq_ignore_ascii_case(wish) {
                    self.num(
                        "433",
                        &[
                            wish,
                            &format!("Nickname is already in use; you are now {got} ({note})"),
                        ],
                    )?;
                }
                self.rename(got)
            }
            Err(BridgeError::People(crate::people::PeopleError::AllTaken(n))) => self.num(
                "433",
                &[
                    &n,
                    "Nickname is already in use, and so are its suffixed forms",
                ],
            ),
            Err(e) => self.fail("NICK", &e),
        }
    }

    /// The client's nick becomes `got` (told with a NICK line).
    pub fn rename(&mut self, got: String) -> Result<(), End> {
        if got == self.nick {
            return Ok(());
        }
        let old = self.me();
        self.nick = got.clone();
        if !self.guest {
            self.names.insert(self.account, got.clone());
        }
        self.bridge
            .local
            .rename(self.id, &got, self.me(), self.guest);
        self.out.send(Message::new(Some(&old), "NICK", &[&got]))
    }

    fn mode(&self, m: &Message) -> Result<(), End> {
        let target = m.param(0);
        if target.starts_with('#') {
            let Ok(room) = Bridge::room(target) else {
                return self.num("403", &[target, "No such channel"]);
            };
            let Some(change) = m.params.get(1) else {
                return self.num("324", &[target, "+n"]);
            };
            // Ban, exception and invite lists are empty; other modes chatd does not know.
            for c in change.chars().filter(|c| !matches!(c, '+' | '-')) {
                match c {
                    'b' if m.params.len() == 2 => {
                        return self.num("368", &[target, "End of channel ban list"]);
                    }
                    'e' if m.params.len() == 2 => {
                        return self.num("349", &[target, "End of channel exception list"]);
                    }
                    'I' if m.params.len() == 2 => {
                        return self.num("347", &[target, "End of channel invite list"]);
                    }
                    'n' | 'b' | 'e' | 'I' | 'o' | 'v' | 'i' | 'k' | 'l' | 'm' | 's' | 't' => {}
                    other => {
                        return self.num(
                            "472",
                            &[&other.to_string(), "is an unknown mode char to me"],
                        );
                    }
                }
            }
            if !self.joined.contains(&room) {
                return self.num("442", &[target, "You're not on that channel"]);
            }
            return self.num(
                "482",
                &[
                    target,
                    "You're not channel operator (chatd rooms have no operators or modes)",
                ],
            );
        }
        if !target.eq_ignore_ascii_case(&self.nick) {
            if self.bridge.local.find(target).is_none() && self.person(target).is_none() {
                return self.num("401", &[target, "No such nick"]);
            }
            return self.num("502", &["Can't change mode for other users"]);
        }
        // Everyone is +i (invisible to WHO masks outside shared channels); nothing changes.
        if m.params.len() > 1 {
            if m.param(1).chars().all(|c| matches!(c, '+' | '-' | 'i')) {
                return Ok(());
            }
            return self.num("501", &["Unknown MODE flag"]);
        }
        self.num("221", &["+i"])
    }

    /// PRIVMSG or NOTICE: to a room, or to a person (end-to-end encrypted).
    async fn message(&mut self, m: &Message) -> Result<(), End> {
        let notice = m.command == "NOTICE";
        let (target, text) = (m.param(0).to_owned(), m.param(1).to_owned());
        if target.is_empty() {
            return self.num("411", &[&format!("No recipient given ({})", m.command)]);
        }
        if m.params.len() < 2 || text.is_empty() {
            return self.num("412", &["No text to send"]);
        }
        // CTCP other than ACTION is not carried (clients send VERSION and the like on their own).
        let text = match text.strip_prefix('\u{1}') {
            Some(ctcp) => match ctcp.strip_prefix("ACTION ") {
                Some(action) => format!("/me {}", action.trim_end_matches('\u{1}')),
                None => return Ok(()),
            },
            None => text,
        };
        if target.starts_with('#') {
            let room = match Bridge::room(&target) {
                Ok(r) => r,
                Err(_) if notice => return Ok(()),
                Err(_) => return self.num("403", &[&target, "No such channel"]),
            };
            if !self.joined.contains(&room) {
                if notice {
                    return Ok(());
                }
                if !self.channel_exists(&room) {
                    return self.num("403", &[&target, "No such channel"]);
                }
                return self.num("404", &[&target, "Cannot send to channel (join it first)"]);
            }
            let guest = Some((self.id, self.me(), notice));
            match self
                .bridge
                .send_public(self.who, &self.key, &room, &text, guest)
                .await
            {
                Ok((id, _)) => {
                    self.remember_sent(id);
                    Ok(())
                }
                Err(e) if notice => {
                    tracing::debug!(error = %e, "irc: a NOTICE to a room was not sent");
                    Ok(())
                }
                Err(e) => self.num("404", &[&target, &format!("Cannot send to channel: {e}")]),
            }
        } else {
            self.private(&target, &text, notice).await
        }
    }

    async fn private(&mut self, target: &str, text: &str, notice: bool) -> Result<(), End> {
        if self.guest {
            return self.guest_private(target, text, notice);
        }
        // A name not in the directory may still be known to the DHT: the send resolves it.
        let person = self.person(target);
        match self
            .bridge
            .send_private(self.who, &self.key, target, text)
            .await
        {
            Ok(sent) => {
                let row = &sent.row;
                self.private_state(row.id, (row.edited_ms, row.deleted));
                if self.caps.echo_message {
                    let shown = person
                        .as_ref()
                        .map_or(target.to_owned(), |(n, _)| n.clone());
                    let mut line = Message::new(Some(&self.me()), "PRIVMSG", &[&shown, text]);
                    line = self.tags(line, row.sent_ms, &hex::encode(row.id));
                    self.out.send(line)?;
                }
                if let Some((name, u)) = person
                    && u.presence == Presence::Away
                    && !notice
                {
                    self.num(
                        "301",
                        &[&name, if u.away.is_empty() { "away" } else { &u.away }],
                    )?;
                }
                Ok(())
            }
            Err(BridgeError::Private(crate::dm::PrivateError::UnknownNick(_))) => {
                self.num("401", &[target, "No such nick"])
            }
            Err(BridgeError::Private(e @ crate::dm::PrivateError::KeyChanged { .. })) => {
                // Never sent: the person must check the safety number first.
                self.notice(&format!("NOT SENT to {target}: {e}"))
            }
            Err(e) if notice => {
                tracing::debug!(error = %e, "irc: a private NOTICE was not sent");
                Ok(())
            }
            Err(e) => self.notice(&format!("NOT SENT to {target}: {e}")),
        }
    }

    /// A failed command: `FAIL` with the reason.
    fn fail(&self, command: &str, e: &BridgeError) -> Result<(), End> {
        self.out.send(Message::new(
            Some(server()),
            "FAIL",
            &[command, "CANNOT_DO", &super::line::clean(&e.to_string())],
        ))
    }

    /// Adds the `time` and `msgid` tags the client asked for.
    pub fn tags(&self, mut m: Message, unix_ms: u64, id: &str) -> Message {
        if self.caps.server_time {
            m = m.tag("time", Some(&reply::time_tag(unix_ms)));
        }
        if self.caps.message_tags && !id.is_empty() {
            m = m.tag("msgid", Some(id));
        }
        m
    }
}

/// The channel of a room.
pub fn channel(room: &Room) -> String {
    format!("#{room}")
}

fn host_of(u: &Person) -> String {
    let mask = reply::mask("x", &u.account, &u.node);
    mask.split_once('!')
        .map_or(mask.clone(), |(_, h)| h.to_owned())
}

fn split_mask(mask: &str) -> (String, String) {
    let uh = mask.split_once('!').map_or(mask, |(_, r)| r);
    let (u, h) = uh.split_once('@').unwrap_or((uh, server()));
    (u.to_owned(), h.to_owned())
}
