//! WHO, with WHOX (`WHO mask %fields[,token]`, answered with `354`): a channel lists the
//! node's IRC clients in it, then the network's people (chatd rooms have no membership); a
//! nick names one client or person; a mask with `*`/`?` matches this client, the node's
//! clients sharing a channel with it (everyone is `+i`) and the network's people.

use crate::people::Presence;

use super::bridge::{Bridge, Person};
use super::local::Client;
use super::members::{glob, user_host};
use super::reply::{self, server};
use super::session::{End, Session};

/// One WHO row.
struct Row {
    channel: String,
    user: String,
    host: String,
    nick: String,
    here: bool,
    realname: String,
    /// The account name WHOX shows (`0`: none, as for a guest).
    account: String,
}

impl Session {
    fn row_local(&self, channel: &str, c: &Client) -> Row {
        let (user, host) = user_host(&c.mask);
        Row {
            channel: channel.to_owned(),
            user,
            host,
            nick: c.nick.clone(),
            here: c.away.is_none() && !self.away_account(c),
            realname: c.realname.clone(),
            account: if c.guest { "0".into() } else { c.nick.clone() },
        }
    }

    fn row_person(channel: &str, name: &str, u: &Person) -> Row {
        let (user, host) = user_host(&reply::mask(name, &u.account, &u.node));
        Row {
            channel: channel.to_owned(),
            user,
            host,
            nick: name.to_owned(),
            here: u.presence != Presence::Away,
            realname: name.to_owned(),
            account: name.to_owned(),
        }
    }

    /// WHO `mask`, with WHOX fields when `opts` is `%fields[,token]`.
    pub fn who(&self, mask: &str, opts: Option<&str>) -> Result<(), End> {
        let mut rows = Vec::new();
        if mask.starts_with('#') {
            if let Ok(room) = Bridge::room(mask)
                && self.joined.contains(&room)
            {
                for (_, c) in self.bridge.local.members(&room) {
                    rows.push(self.row_local(mask, &c));
                }
                for (name, u) in self.network_names() {
                    rows.push(Self::row_person(mask, &name, &u));
                }
            }
        } else if mask.contains(['*', '?']) {
            for (id, c) in self.bridge.local.all() {
                let shares = id == self.id || !c.joined.is_disjoint(&self.joined);
                if shares && (glob(mask, &c.nick) || glob(mask, &c.mask)) {
                    rows.push(self.row_local("*", &c));
                }
            }
            for (name, u) in self.network_names() {
                let full = reply::mask(&name, &u.account, &u.node);
                if glob(mask, &name) || glob(mask, &full) {
                    rows.push(Self::row_person("*", &name, &u));
                }
            }
        } else if !mask.is_empty() {
            if let Some((_, c)) = self.bridge.local.find(mask) {
                rows.push(self.row_local("*", &c));
            } else if mask.eq_ignore_ascii_case(&self.nick) {
                let node = self.bridge.node.id().0;
                let me = self.bridge.self_view(self.who, self.account, node);
                rows.push(Self::row_person("*", &self.nick, &me));
            } else if let Some((name, u)) = self.person(mask) {
                rows.push(Self::row_person("*", &name, &u));
            }
        }
        let whox = opts.and_then(|o| o.strip_prefix('%'));
        for row in &rows {
            match whox {
                Some(fields) => self.whox_line(row, fields)?,
                None => self.num(
                    "352",
                    &[
                        &row.channel,
                        &row.user,
                        &row.host,
                        server(),
                        &row.nick,
                        if row.here { "H" } else { "G" },
                        &format!("0 {}", row.realname),
                    ],
                )?,
            }
        }
        self.num(
            "315",
            &[if mask.is_empty() { "*" } else { mask }, "End of WHO list"],
        )
    }

    /// A WHOX reply (`354`): the fields asked for, in the standard order `tcuihsnfdlaor`.
    fn whox_line(&self, row: &Row, spec: &str) -> Result<(), End> {
        let (fields, token) = spec.split_once(',').unwrap_or((spec, ""));
        let token: String = token.chars().filter(char::is_ascii_digit).take(3).collect();
        let mut out: Vec<String> = Vec::new();
        for f in "tcuihsnfdlaor".chars().filter(|f| fields.contains(*f)) {
            out.push(match f {
                't' => {
                    if token.is_empty() {
                        "0".into()
                    } else {
                        token.clone()
                    }
                }
                'c' => row.channel.clone(),
                'u' => row.user.clone(),
                'i' => "255.255.255.255".into(),
                'h' => row.host.clone(),
                's' => server().into(),
                'n' => row.nick.clone(),
                'f' => if row.here { "H" } else { "G" }.into(),
                'd' => "0".into(),
                'l' => "0".into(),
                'a' => row.account.clone(),
                'o' => "n/a".into(),
                _ => row.realname.clone(),
            });
        }
        let params: Vec<&str> = out.iter().map(String::as_str).collect();
        self.num("354", &params)
    }
}
