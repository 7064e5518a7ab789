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
//!
//! A full table makes room rather than refusing everyone new ([`Pool::make_room`]): the
//! victim is a connection that is not to a peer of the ring's routing state (successors,
//! predecessor, fingers: [`Pool::set_routing`]) and is older than the grace period; among
//! those, one we never sent anything on (an unproven peer: it only connected, perhaps to hold
//! a slot with keepalives) before one we did, then the least recently used. A connection to a
//! routing peer is never evicted to admit an inbound one; when every connection is protected,
//! the newcomer is refused.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chat_overlay::NodeId;

/// Two connections established within this window count as a simultaneous dial.
pub const RACE_WINDOW: Duration = Duration::from_secs(2);
/// A new connection is not evicted for this long (time to prove itself in a ring exchange).
pub const EVICT_GRACE: Duration = Duration::from_secs(10);

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
    /// Whether the peer is in the ring's routing state.
    pub routing: bool,
}

/// What the eviction rule looks at in one connection.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    /// Closed already.
    pub closed: bool,
    /// In the ring's routing state.
    pub routing: bool,
    /// We dialled it, or sent on it since it was established (a ring exchange took place).
    pub proven: bool,
    /// When it was established.
    pub since: Instant,
    /// When it was last used to send.
    pub last_used: Instant,
}

/// The connection to evict to make room at `now` (module docs), if any may go: a closed one
/// first; else, among those not in the routing state and older than `grace`, an unproven one
/// before a proven one, then the least recently used.
pub fn pick_victim(
    conns: impl IntoIterator<Item = (NodeId, Standing)>,
    now: Instant,
    grace: Duration,
) -> Option<NodeId> {
    conns
        .into_iter()
        .filter(|(_, s)| {
            s.closed || (!s.routing && now.saturating_duration_since(s.since) >= grace)
        })
        .min_by_key(|(id, s)| (!s.closed, s.proven, s.last_used, *id))
        .map(|(id, _)| id)
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
    grace: Duration,
    conns: HashMap<NodeId, Entry>,
    routing: HashSet<NodeId>,
}

impl Pool {
    /// An empty table for node `me`, holding at most `max` connections.
    pub fn new(me: NodeId, max: usize) -> Pool {
        Pool::with_grace(me, max, EVICT_GRACE)
    }

    /// The same with another grace period for new connections.
    pub fn with_grace(me: NodeId, max: usize, grace: Duration) -> Pool {
        Pool {
            me,
            max: max.max(1),
            grace,
            conns: HashMap::new(),
            routing: HashSet::new(),
        }
    }

    /// The peers of the ring's routing state now: their connections are kept when the table
    /// is full.
    pub fn set_routing(&mut self, ids: HashSet<NodeId>) {
        for (id, e) in &mut self.conns {
            e.routing = ids.contains(id);
        }
        self.routing = ids;
    }

    fn standing(e: &Entry) -> Standing {
        Standing {
            closed: e.conn.close_reason().is_some(),
            routing: e.routing,
            proven: e.outbound || e.last_used > e.since,
            since: e.since,
            last_used: e.last_used,
        }
    }

    /// The connection that would be evicted now to make room, if any may go.
    pub fn victim(&self) -> Option<NodeId> {
        pick_victim(
            self.conns.iter().map(|(id, e)| (*id, Pool::standing(e))),
            Instant::now(),
            self.grace,
        )
    }

    /// Whether a new connection could be admitted now (there is room, or a victim).
    pub fn can_admit(&self) -> bool {
        !self.is_full() || self.victim().is_some()
    }

    /// Makes room for a connection to `id`: nothing to do if it has one already or the table
    /// is not full (`Ok(None)`); else the victim is removed and returned, to be closed
    /// (`Ok(Some)`); `Err(())` if every connection is protected.
    #[allow(clippy::result_unit_err)]
    pub fn make_room(&mut self, id: &NodeId) -> Result<Option<quinn::Connection>, ()> {
        if self.conns.contains_key(id) || !self.is_full() {
            return Ok(None);
        }
        let victim = self.victim().ok_or(())?;
        Ok(self.conns.remove(&victim).map(|e| e.conn))
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

    /// Removes and returns a connection to make room for a dial: the victim of the eviction
    /// rule, else (everything protected: we chose to dial, so someone goes) the least recently
    /// used one.
    pub fn evict_for_dial(&mut self) -> Option<quinn::Connection> {
        let id = match self.victim() {
            Some(id) => id,
            None => *self.conns.iter().min_by_key(|(_, e)| e.last_used)?.0,
        };
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
            routing: self.routing.contains(&id),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> NodeId {
        NodeId([n; 32])
    }

    fn standing(now: Instant, age_s: u64, used_s_ago: Option<u64>) -> Standing {
        let since = now - Duration::from_secs(age_s);
        Standing {
            closed: false,
            routing: false,
            proven: used_s_ago.is_some(),
            since,
            last_used: used_s_ago.map_or(since, |a| now - Duration::from_secs(a)),
        }
    }

    #[test]
    fn a_full_table_evicts_an_idle_unproven_peer_never_a_routing_one() {
        let now = Instant::now() + Duration::from_secs(3600);
        let grace = EVICT_GRACE;
        // 256 fresh keys that only connected (and hold the slot with keepalives), a routing
        // peer and a proven one that is not in the routing state.
        let mut conns: Vec<(NodeId, Standing)> = (0..=255u8)
            .map(|n| (id(n), standing(now, 60 + u64::from(n), None)))
            .collect();
        conns[10].1.routing = true;
        conns[10].1.proven = true;
        conns[20].1 = standing(now, 600, Some(500));
        let victim = pick_victim(conns.clone(), now, grace).expect("a victim");
        // The unproven one that has been idle longest (the oldest), not the routing or
        // proven ones even though they are older.
        assert_eq!(victim, id(255));
        // Once only protected and proven ones are left: the least recently used proven one.
        let rest: Vec<(NodeId, Standing)> =
            vec![conns[10], conns[20], (id(30), standing(now, 100, Some(1)))];
        assert_eq!(pick_victim(rest, now, grace), Some(id(20)));
        // Routing peers are never evicted, nor connections within their grace period.
        let protected = vec![conns[10], (id(40), standing(now, 1, None))];
        assert_eq!(pick_victim(protected, now, grace), None);
        // A closed one goes first, whatever it is.
        let mut closed = conns[10];
        closed.1.closed = true;
        assert_eq!(
            pick_victim(vec![conns[0], closed], now, grace),
            Some(id(10))
        );
    }
}
