//! The IRC front door's mapping onto chatd's services: the same in-process objects the gRPC
//! handlers use (the chat core, the people service, the private-conversation service, the
//! ring's handle), never the gRPC handlers themselves.
//!
//! - a public message: numbered, signed for the session's account and broadcast through
//!   `OverlayHandle::originate` exactly as `ChatService.Send` does it — "sent" only once the
//!   overlay took it — under the same per-client limit (`control.send_rate`/`send_burst`,
//!   one bucket per IRC session's account and address);
//! - a private message: `Dm::send_to` (end-to-end encrypted, offline delivery by mailbox),
//!   refusing a changed key as the API does;
//! - NICK and AWAY: `People::set_nick` and `People::set_away`;
//! - the user directory (`People::list`) for NAMES, WHO and WHOIS.

use std::sync::Arc;
use std::time::Duration;

use crate::chat::ratelimit::{Keyed, Rate};
use crate::chat::{Chat, FeedEvent, Room, Start};
use crate::dm::{Dm, PrivateError};
use crate::node::Node;
use crate::offload::{Offload, Work};
use crate::people::directory::User;
use crate::people::{People, PeopleError, Presence, Who};

use super::secret::Secret;
use crate::ops::access::failed_logins;

/// Sessions remembered by the send limiter.
const RATE_KEYS: usize = 4096;

/// Why a request of an IRC client was not carried out; its text goes back to the client.
#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// Not a ring member yet.
    #[error("this node has not joined a ring yet; try again shortly")]
    NotJoined,
    /// Over `control.send_rate`.
    #[error("sending too fast (control.send_rate); retry in {} ms", .0.as_millis().max(1))]
    TooFast(Duration),
    /// A channel name chatd cannot use as a room.
    #[error("{0}: not a chatd room name ({1})")]
    Room(String, crate::chat::room::RoomError),
    /// The chat core refused.
    #[error("{0}")]
    Chat(String),
    /// The people service refused.
    #[error(transparent)]
    People(#[from] PeopleError),
    /// The private-conversation service refused.
    #[error(transparent)]
    Private(#[from] PrivateError),
    /// This node runs without private conversations.
    #[error("private messages are not available on this node")]
    NoPrivate,
    /// Too many reads of this kind under way on this node.
    #[error(transparent)]
    Busy(#[from] crate::offload::OffloadError),
}

/// A person as IRC replies show them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    pub account: [u8; 32],
    pub node: [u8; 32],
    pub presence: Presence,
    pub away: String,
}

impl From<&User> for Person {
    fn from(u: &User) -> Person {
        Person {
            account: u.account,
            node: u.node,
            presence: u.presence,
            away: u.away.clone(),
        }
    }
}

/// What every IRC session shares.
pub struct Bridge {
    pub chat: Chat,
    pub people: Arc<People>,
    pub node: Arc<Node>,
    pub dm: Option<Arc<Dm>>,
    pub secret: Secret,
    /// The TCP token, for guests.
    pub token: Option<String>,
    /// `irc.guests`: clients without a password are guests of this node.
    pub guests: bool,
    /// The node's connected IRC clients.
    pub local: Arc<super::local::Local>,
    limiter: Keyed<String>,
    /// Failed logins per address.
    failures: Keyed<std::net::IpAddr>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").finish_non_exhaustive()
    }
}

impl Bridge {
    /// The bridge over the node's services; sends limited to `rate` per session.
    pub fn new(
        chat: Chat,
        people: Arc<People>,
        node: Arc<Node>,
        secret: Secret,
        token: Option<String>,
        rate: Rate,
        guests: bool,
    ) -> Bridge {
        let dm = node.private();
        Bridge {
            chat,
            people,
            node,
            dm,
            secret,
            token,
            guests,
            local: Arc::default(),
            limiter: Keyed::new(rate, RATE_KEYS),
            failures: Keyed::new(failed_logins(), RATE_KEYS),
        }
    }

    /// The account a password opens: an account's IRC password, or the TCP token (its guest).
    pub fn login(&self, password: &str) -> Option<Who> {
        if let Some(who) = self.secret.check(password) {
            return Some(who);
        }
        let token = self.token.as_deref()?;
        super::secret::constant_time_eq(token.as_bytes(), password.trim().as_bytes())
            .then_some(Who::Token)
    }

    /// Whether a guest may take `nick`: not another IRC client's here (but `except`), not a
    /// name in the people directory (a guest never claims a network name).
    pub fn guest_nick_free(&self, nick: &str, except: Option<u64>) -> bool {
        !self.local.taken(nick, except) && self.people.find(nick).is_none()
    }

    /// Whether `ip` may try a password now (not too many failures lately).
    pub fn may_try(&self, ip: std::net::IpAddr) -> bool {
        self.failures.allows(&ip)
    }

    /// Counts a failed login from `ip`.
    pub fn failed(&self, ip: std::net::IpAddr) {
        let _ = self.failures.take(&ip);
    }

    fn ring(&self) -> Result<&crate::overlay::OverlayHandle, BridgeError> {
        if !self.node.is_joined() {
            return Err(BridgeError::NotJoined);
        }
        self.node.overlay().ok_or(BridgeError::NotJoined)
    }

    /// Takes a token of the session's send bucket (`key`: its account and address).
    pub fn take(&self, key: &str) -> Result<(), BridgeError> {
        self.limiter
            .take(&key.to_owned())
            .map_err(BridgeError::TooFast)
    }

    /// Sends `text` to `room` as `who`; returns the stored message's id and time (Unix ms).
    /// `local`: the IRC client here sending it (id, mask, whether as a NOTICE), recorded in
    /// [`super::local::Local`] as the message is stored, so the node's other IRC clients
    /// show it as that client's (guests share one account).
    pub async fn send_public(
        &self,
        who: Who,
        key: &str,
        room: &Room,
        text: &str,
        guest: Option<(u64, String, bool)>,
    ) -> Result<(crate::chat::MessageId, u64), BridgeError> {
        crate::chat::envelope::check_text(text).map_err(|e| BridgeError::Chat(e.to_string()))?;
        let ring = self.ring()?.clone();
        self.take(key)?;
        let _waiting = self
            .chat
            .sending_permit()
            .map_err(|e| BridgeError::Chat(e.to_string()))?;
        let author = self.people.account_of(who)?;
        self.people.touch(who);
        let chat = self.chat.clone();
        let (room, text) = (room.clone(), text.to_owned());
        let local = self.local.clone();
        let stored = ring
            .originate(move |floor| {
                chat.number_above(floor);
                let send = || {
                    chat.send_as(&room, &text, Some(author)).map(|l| {
                        let id = l.stored.message.id;
                        ((l.seq, l.wire, l.stored), id)
                    })
                };
                match guest {
                    Some((id, mask, notice)) => {
                        local.sending(id, mask, notice, send).map(|(t, _)| t)
                    }
                    None => send().map(|(t, _)| t),
                }
            })
            .await
            .map_err(|e| BridgeError::Chat(crate::ops::ApiError::from(e).to_string()))?;
        Ok((stored.message.id, stored.message.hlc.millis()))
    }

    /// Sends `text` privately to `nick` as `who` (end-to-end encrypted).
    pub async fn send_private(
        &self,
        who: Who,
        key: &str,
        nick: &str,
        text: &str,
    ) -> Result<crate::dm::Message, BridgeError> {
        let dm = self.dm.clone().ok_or(BridgeError::NoPrivate)?;
        self.ring()?;
        self.take(key)?;
        let m = dm.send_to(who, nick, text, false).await?;
        self.people.touch(who);
        Ok(m)
    }

    /// Claims `wish` for `who`; the name got and, when it differs, why.
    pub async fn set_nick(&self, who: Who, wish: &str) -> Result<(String, String), BridgeError> {
        let ring = self.ring()?;
        Ok(self.people.set_nick(ring, who, wish).await?)
    }

    /// `who` goes away with `message` (`None`: back).
    pub async fn set_away(&self, who: Who, message: Option<String>) -> Result<(), BridgeError> {
        let ring = self.ring()?;
        Ok(self.people.set_away(ring, who, message).await?)
    }

    /// Every account shown online or away, by shown name.
    pub fn present(&self) -> Vec<(String, Person)> {
        self.people
            .list()
            .into_iter()
            .filter(|(_, u)| u.presence != Presence::Offline)
            .map(|(n, u)| (n, Person::from(&u)))
            .collect()
    }

    /// The session's own account as WHO and WHOIS show it (the directory may not list it
    /// yet).
    pub fn self_view(&self, who: Who, account: [u8; 32], node: [u8; 32]) -> Person {
        match self.people.user(&account) {
            Some((_, u)) => Person::from(&u),
            None => Person {
                account,
                node,
                presence: self.people.presence(who),
                away: String::new(),
            },
        }
    }

    /// A subscription to every room's new messages, after message `resume_after` if this
    /// node still has it, else from now; `None` when `chat.max_subscribers` are open. The
    /// store is read on the blocking pool.
    pub async fn subscribe(
        &self,
        resume_after: Option<crate::chat::MessageId>,
    ) -> Result<Option<tokio::sync::mpsc::Receiver<FeedEvent>>, BridgeError> {
        let chat = self.chat.clone();
        Offload::shared()
            .run(Work::Read, move || {
                let at = resume_after
                    .and_then(|id| chat.position(&id).ok().flatten().map(|pos| (id, pos)));
                let start = match at {
                    Some((id, pos)) => Start::After { id, pos },
                    None => Start::Backlog(0),
                };
                chat.subscribe(None, start)
            })
            .await?
            .map_err(|e| BridgeError::Chat(e.to_string()))
    }

    /// The rooms with stored messages, read on the blocking pool.
    pub async fn rooms(&self) -> Result<Vec<crate::chat::store::RoomSummary>, BridgeError> {
        let chat = self.chat.clone();
        Offload::shared()
            .run(Work::Read, move || chat.rooms())
            .await?
            .map_err(|e| BridgeError::Chat(e.to_string()))
    }

    /// The room a channel names (`#Lobby` → `lobby`).
    pub fn room(channel: &str) -> Result<Room, BridgeError> {
        let name = channel.trim_start_matches(['#', '&']).to_ascii_lowercase();
        name.parse()
            .map_err(|e| BridgeError::Room(channel.to_owned(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_name_rooms_case_insensitively() {
        assert_eq!(
            Bridge::room("#lobby").map(|r| r.to_string()).ok(),
            Some("lobby".into())
        );
        assert_eq!(
            Bridge::room("#Rust-Dev").map(|r| r.to_string()).ok(),
            Some("rust-dev".into())
        );
        let long = format!("#{}", "r".repeat(65));
        for bad in ["#", "#a b", "#caf\u{e9}", "#-x", long.as_str()] {
            assert!(
                matches!(Bridge::room(bad), Err(BridgeError::Room(..))),
                "{bad:?}"
            );
        }
        assert_eq!(
            super::super::commands::channel(&"lobby".parse().expect("room")),
            "#lobby"
        );
    }
}
