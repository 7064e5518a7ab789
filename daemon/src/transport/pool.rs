//! The connection table: at most one connection per peer NodeId, and at most a configured
//! number in all.
//!
//! Either side may dial, so two connections between the same pair can appear (both dial at once,
//! or a peer restarted and dialled us while we still hold the old connection). [`Pool::insert`]
//! decides which one stays with a rule both sides evaluate alike: a closed connection always
//! loses; if both were dialled by the same side, or the older one is past the race window (the
//! other side has evidently replaced it, e.g. after a restart), the newer wins; otherwise (a
//! simultaneous dial) the connection dialled by the lower NodeId wins. The loser is closed after
//! a short grace period so that frames already in flight on it are still read.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chat_overlay::NodeId;

/// Two connections established within this window count as a simultaneous dial.
pub const RACE_WINDOW: Duration = Duration::from_secs(2);

/// One live connection.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The connection.
    pub conn: quinn::Connection,
    /// The peer's address.
    pub addr: SocketAddr,
    /// Whether we dialled it.
    pub outbound: bool,
    /// When it was established.
    pub since: Instant,
    /// When it was last used to send.
    pub last_used: Instant,
}

/// What [`Pool::insert`] did.
#[derive(Debug)]
pub enum Inserted {
    /// The new connection is in; a replaced one (if any) must be closed.
    Kept(Option<quinn::Connection>),
    /// The existing connection stays; the new one must be closed. Carries the one that stays.
    Lost(quinn::Connection),
}

/// The table.
#[derive(Debug)]
pub struct Pool {
    me: NodeId,
    max: usize,
    conns: HashMap<NodeId, Entry>,
}

impl Pool {
    /// An empty table for node `me`, holding at most `max` connections.
    pub fn new(me: NodeId, max: usize) -> Pool {
        Pool {
            me,
            max: max.max(1),
            conns: HashMap::new(),
        }
    }

    /// The live connection to `id`, marked as used now.
    pub fn get(&mut self, id: &NodeId) -> Option<quinn::Connection> {
        let entry = self.conns.get_mut(id)?;
        if entry.conn.close_reason().is_some() {
            self.conns.remove(id);
            return None;
        }
        entry.last_used = Instant::now();
        Some(entry.conn.clone())
    }

    /// Whether the table is full.
    pub fn is_full(&self) -> bool {
        self.conns.len() >= self.max
    }

    /// Removes and returns the least recently used connection (to make room for a dial).
    pub fn evict_lru(&mut self) -> Option<quinn::Connection> {
        let id = *self.conns.iter().min_by_key(|(_, e)| e.last_used)?.0;
        self.conns.remove(&id).map(|e| e.conn)
    }

    /// Adds a connection to `id`, deciding between it and an existing one (module docs).
    pub fn insert(&mut self, id: NodeId, conn: quinn::Connection, outbound: bool) -> Inserted {
        let now = Instant::now();
        let entry = Entry {
            addr: canonical(conn.remote_address()),
            conn,
            outbound,
            since: now,
            last_used: now,
        };
        let Some(old) = self.conns.get(&id) else {
            self.conns.insert(id, entry);
            return Inserted::Kept(None);
        };
        let new_wins = old.conn.close_reason().is_some()
            || old.outbound == outbound
            || now.duration_since(old.since) > RACE_WINDOW
            || (outbound == (self.me < id));
        if new_wins {
            Inserted::Kept(self.conns.insert(id, entry).map(|e| e.conn))
        } else {
            Inserted::Lost(old.conn.clone())
        }
    }

    /// Forgets the connection to `id` if it is the one with `stable_id`.
    pub fn remove(&mut self, id: &NodeId, stable_id: usize) -> bool {
        if self
            .conns
            .get(id)
            .is_some_and(|e| e.conn.stable_id() == stable_id)
        {
            self.conns.remove(id);
            return true;
        }
        false
    }

    /// Every live connection.
    pub fn entries(&self) -> impl Iterator<Item = (&NodeId, &Entry)> {
        self.conns
            .iter()
            .filter(|(_, e)| e.conn.close_reason().is_none())
    }

    /// Number of connections held.
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether no connection is held.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Removes every connection (at shutdown).
    pub fn drain(&mut self) -> Vec<quinn::Connection> {
        self.conns.drain().map(|(_, e)| e.conn).collect()
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`, so a peer's address reads the same whatever the socket family.
pub fn canonical(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}
