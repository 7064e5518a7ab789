//! The IRC clients connected to this node, as IRC sees them: their nicks (unique among the
//! node's clients), the channels each has joined (IRC's per-connection membership, on top of
//! chatd rooms that have none), guests' away messages, and which guest sent which public
//! message (all guests share the node's guest account, so the feed alone cannot tell them
//! apart).
//!
//! Every session registers here; JOIN, PART, NICK and QUIT of one client are shown to the
//! node's other clients sharing a channel, and guests (`irc.guests`, no password) talk to
//! each other privately through [`Local::deliver`] — a node-local line, never stored nor
//! sent over the network (guests have no end-to-end keys). Bounded: at most
//! [`super::MAX_CONNECTIONS`] clients; [`SENT`] message ids remembered.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use crate::chat::{MessageId, Room};

use super::caps::Caps;
use super::line::Message;
use super::session::Out;

/// Public messages of guests remembered (id → sending client).
pub const SENT: usize = 4096;

/// One connected, registered client.
#[derive(Clone, Debug)]
pub struct Client {
    /// The nick shown on IRC.
    pub nick: String,
    /// `nick!user@host`.
    pub mask: String,
    /// The USER command's user name and real name.
    pub user: String,
    pub realname: String,
    /// Registered without a password (`irc.guests`).
    pub guest: bool,
    /// The account the client acts as.
    pub account: [u8; 32],
    pub caps: Caps,
    pub joined: BTreeSet<Room>,
    /// A guest's away message (an account's is its presence).
    pub away: Option<String>,
    out: Out,
}

#[derive(Default)]
struct Inner {
    next: u64,
    clients: BTreeMap<u64, Client>,
    sent: HashMap<MessageId, (u64, String, bool)>,
    order: VecDeque<MessageId>,
}

/// The node's IRC clients.
#[derive(Default)]
pub struct Local {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local").finish_non_exhaustive()
    }
}

/// Whether two nicks are the same (`CASEMAPPING=ascii`).
pub fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

impl Local {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether another client (not `except`) has `nick`.
    pub fn taken(&self, nick: &str, except: Option<u64>) -> bool {
        self.lock()
            .clients
            .iter()
            .any(|(id, c)| Some(*id) != except && same(&c.nick, nick))
    }

    /// Adds a client; `None` if `unique` and its nick is another client's (an account's
    /// session keeps its network name even if a guest here took it first).
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &self,
        nick: &str,
        mask: String,
        user: &str,
        realname: &str,
        guest: bool,
        account: [u8; 32],
        caps: Caps,
        out: Out,
        unique: bool,
    ) -> Option<u64> {
        let mut g = self.lock();
        if unique && g.clients.values().any(|c| same(&c.nick, nick)) {
            return None;
        }
        g.next += 1;
        let id = g.next;
        g.clients.insert(
            id,
            Client {
                nick: nick.to_owned(),
                mask,
                user: user.to_owned(),
                realname: realname.to_owned(),
                guest,
                account,
                caps,
                joined: BTreeSet::new(),
                away: None,
                out,
            },
        );
        Some(id)
    }

    /// Whether `account` is the account of a guest connected here (the node's guest account).
    pub fn is_guest_account(&self, account: &[u8; 32]) -> bool {
        self.lock()
            .clients
            .values()
            .any(|c| c.guest && c.account == *account)
    }

    /// The client `id`, if connected.
    pub fn get(&self, id: u64) -> Option<Client> {
        self.lock().clients.get(&id).cloned()
    }

    /// The client with `nick`.
    pub fn find(&self, nick: &str) -> Option<(u64, Client)> {
        self.lock()
            .clients
            .iter()
            .find(|(_, c)| same(&c.nick, nick))
            .map(|(id, c)| (*id, c.clone()))
    }

    /// Updates a client's fields.
    pub fn update(&self, id: u64, f: impl FnOnce(&mut Client)) {
        if let Some(c) = self.lock().clients.get_mut(&id) {
            f(c);
        }
    }

    /// Renames `id` to `nick` (with its new mask) and shows it to the clients sharing a
    /// channel; `false` if `unique` and another client has the nick.
    pub fn rename(&self, id: u64, nick: &str, mask: String, unique: bool) -> bool {
        let mut g = self.lock();
        if unique
            && g.clients
                .iter()
                .any(|(other, c)| *other != id && same(&c.nick, nick))
        {
            return false;
        }
        let Some(c) = g.clients.get_mut(&id) else {
            return false;
        };
        let old = std::mem::replace(&mut c.mask, mask);
        c.nick = nick.to_owned();
        let line = Message::new(Some(&old), "NICK", &[nick]);
        let rooms = c.joined.clone();
        peers(&g, id, |c| !c.joined.is_disjoint(&rooms), &line);
        true
    }

    /// `id` joins `room`; the others in it see `line` (its JOIN).
    pub fn join(&self, id: u64, room: &Room, line: &Message) {
        let mut g = self.lock();
        if let Some(c) = g.clients.get_mut(&id) {
            c.joined.insert(room.clone());
        }
        peers(&g, id, |c| c.joined.contains(room), line);
    }

    /// `id` leaves `room`; the others in it see `line` (its PART).
    pub fn part(&self, id: u64, room: &Room, line: &Message) {
        let mut g = self.lock();
        peers(&g, id, |c| c.joined.contains(room), line);
        if let Some(c) = g.clients.get_mut(&id) {
            c.joined.remove(room);
        }
    }

    /// `id` is gone; the clients sharing a channel with it see `line` (its QUIT).
    pub fn remove(&self, id: u64, line: &Message) {
        let mut g = self.lock();
        let Some(c) = g.clients.remove(&id) else {
            return;
        };
        peers(&g, id, |o| !o.joined.is_disjoint(&c.joined), line);
    }

    /// The clients in `room`, by id.
    pub fn members(&self, room: &Room) -> Vec<(u64, Client)> {
        self.lock()
            .clients
            .iter()
            .filter(|(_, c)| c.joined.contains(room))
            .map(|(id, c)| (*id, c.clone()))
            .collect()
    }

    /// Every client.
    pub fn all(&self) -> Vec<(u64, Client)> {
        let g = self.lock();
        g.clients.iter().map(|(id, c)| (*id, c.clone())).collect()
    }

    /// Sends `line` to client `id` (a guest's private message); `false` if its queue is full
    /// or it is gone (the line is dropped: a client that does not read gets nothing more).
    pub fn deliver(&self, id: u64, line: Message) -> bool {
        self.lock()
            .clients
            .get(&id)
            .is_some_and(|c| c.out.send(line).is_ok())
    }

    /// Runs `send` (a public message of client `id` being stored and broadcast) with the registry
    /// held, and records the message as sent by client `id` with `mask` before anyone can
    /// look it up: every session reads [`Local::sent_by`] under the same lock.
    pub fn sending<T, E>(
        &self,
        id: u64,
        mask: String,
        notice: bool,
        send: impl FnOnce() -> Result<(T, MessageId), E>,
    ) -> Result<(T, MessageId), E> {
        let mut g = self.lock();
        let (t, mid) = send()?;
        if g.order.len() == SENT
            && let Some(old) = g.order.pop_front()
        {
            g.sent.remove(&old);
        }
        g.order.push_back(mid);
        g.sent.insert(mid, (id, mask, notice));
        Ok((t, mid))
    }

    /// Which client here sent the public message `mid`, with the mask it had and whether as
    /// a NOTICE.
    pub fn sent_by(&self, mid: &MessageId) -> Option<(u64, String, bool)> {
        self.lock().sent.get(mid).cloned()
    }
}

/// Sends `line` to every client but `except` that `pick` selects (a full queue drops it).
fn peers(g: &Inner, except: u64, pick: impl Fn(&Client) -> bool, line: &Message) {
    for (id, c) in &g.clients {
        if *id != except && pick(c) {
            let _ = c.out.send(line.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(local: &Local, nick: &str) -> (Option<u64>, tokio::sync::mpsc::Receiver<String>) {
        let (out, rx) = Out::pair(8);
        let id = local.add(
            nick,
            format!("{nick}!u@h"),
            "u",
            "R",
            true,
            [0; 32],
            Caps::default(),
            out,
            true,
        );
        (id, rx)
    }

    #[test]
    fn nicks_are_unique_case_insensitively_and_membership_is_per_client() {
        let local = Local::default();
        let (a, mut ra) = client(&local, "Alice");
        let a = a.expect("added");
        assert!(client(&local, "alice").0.is_none(), "a collision");
        let (b, mut rb) = client(&local, "bob");
        let b = b.expect("added");
        let room: Room = "lobby".parse().expect("room");
        local.join(
            a,
            &room,
            &Message::new(Some("Alice!u@h"), "JOIN", &["#lobby"]),
        );
        assert!(rb.try_recv().is_err(), "bob is not in #lobby");
        local.join(
            b,
            &room,
            &Message::new(Some("bob!u@h"), "JOIN", &["#lobby"]),
        );
        assert_eq!(
            ra.try_recv().ok().as_deref(),
            Some(":bob!u@h JOIN #lobby\r\n")
        );
        assert_eq!(local.members(&room).len(), 2);
        assert!(!local.rename(b, "ALICE", "ALICE!u@h".into(), true));
        assert!(local.rename(b, "carol", "carol!u@h".into(), true));
        assert_eq!(
            ra.try_recv().ok().as_deref(),
            Some(":bob!u@h NICK carol\r\n")
        );
        local.remove(b, &Message::new(Some("carol!u@h"), "QUIT", &["bye"]));
        assert_eq!(
            ra.try_recv().ok().as_deref(),
            Some(":carol!u@h QUIT :bye\r\n")
        );
        assert!(local.find("carol").is_none() && local.find("ALICE").is_some());
    }

    #[test]
    fn sent_ids_are_bounded() {
        let local = Local::default();
        for i in 0..(SENT + 10) {
            let mut raw = [0u8; 32];
            raw[..8].copy_from_slice(&(i as u64).to_be_bytes());
            let mid = MessageId(raw);
            local
                .sending(1, "m".into(), false, || Ok::<_, ()>(((), mid)))
                .expect("sent");
        }
        assert_eq!(local.lock().sent.len(), SENT);
    }
}
