//! Iterative lookups: the asking node walks towards the key one routing step at a time, so it
//! sees every timeout and routes around dead nodes itself, and it confirms that the successor it
//! was given is alive before it reports it.

use super::wire::{ErrorCode, RingRequest, RingResponse};
use super::{Event, LookupError, Phase, Purpose as RpcPurpose, Ring, RingTimer, Up};
use crate::id::NodeId;
use crate::time::Time;
use crate::wire::{MAX_PEER_LIST, Peer};

/// Longest shortlist of candidates a lookup keeps.
const SHORTLIST: usize = 16;

/// Why a lookup runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum LookupFor {
    /// Asked by the application.
    App(u64),
    /// A joining node looks for its successor.
    Join,
    /// Fix-fingers refreshes finger `k` (exponent `bit`).
    Finger { k: usize, bit: u32 },
    /// A rediscovered peer may lead into another ring: find our successor there.
    Merge,
    /// Asked by a sub-protocol: the result goes back to `service` with `token`.
    Service { service: u16, token: u64 },
}

/// State of one iterative lookup.
#[derive(Clone, Debug)]
pub(super) struct Lookup {
    key: NodeId,
    purpose: LookupFor,
    /// Nodes preceding the key not yet asked, closest to the key first.
    shortlist: Vec<Peer>,
    /// Nodes already asked.
    asked: Vec<NodeId>,
    /// The successor candidates from a `Found` answer, to confirm in order.
    found: Vec<Peer>,
    /// The candidate being asked for its state (its predecessor decides whether it is the
    /// key's successor).
    confirming: Option<NodeId>,
    hops: u32,
    /// The nodes after the successor found, nearest first, as the lookup learnt them (the
    /// successor's own successor list when it was asked for its state): the key's further
    /// successors, for the application ([`Event::LookupDone`]).
    followers: Vec<Peer>,
}

impl Ring {
    /// Starts a lookup for the successor of `key`. `seed` gives the first nodes to ask (joins
    /// and merges); otherwise the node starts from its own table.
    pub(super) fn start_lookup(
        &mut self,
        now: Time,
        key: NodeId,
        purpose: LookupFor,
        seed: Option<Vec<Peer>>,
    ) {
        let mut l = Lookup {
            key,
            purpose,
            shortlist: Vec::new(),
            asked: Vec::new(),
            found: Vec::new(),
            confirming: None,
            hops: 0,
            followers: Vec::new(),
        };
        if self.lookups.len() >= self.cfg.max_lookups {
            self.finish(now, l, Err(LookupError::Busy));
            return;
        }
        match seed {
            Some(mut via) => {
                via.retain(|p| p.id != self.t.me.id);
                via.truncate(SHORTLIST);
                l.shortlist = via;
            }
            None => {
                if self.phase != Phase::Member {
                    self.finish(now, l, Err(LookupError::NotMember));
                    return;
                }
                if self.t.owns(&key) {
                    let me = self.t.me;
                    l.followers = self.own_followers(now);
                    self.finish(now, l, Ok(me));
                    return;
                }
                if let Some(i) = self.t.successor_index(&key) {
                    l.found = self.t.succs[i..].to_vec();
                } else {
                    l.shortlist = self.t.closest_preceding(&key, SHORTLIST, now);
                }
            }
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.lookups.insert(id, l);
        self.set_timer(now + self.cfg.lookup_timeout, RingTimer::Lookup(id));
        self.lookup_step(now, id);
    }

    /// Sends the next request of lookup `id`: confirm a found successor, or ask the best
    /// remaining candidate for a routing step.
    pub(super) fn lookup_step(&mut self, now: Time, id: u64) {
        let me = self.t.me.id;
        let Some(l) = self.lookups.get_mut(&id) else {
            return;
        };
        if l.hops >= self.cfg.lookup_max_hops {
            self.finish_id(now, id, Err(LookupError::Timeout));
            return;
        }
        if !l.found.is_empty() {
            let s = l.found.remove(0);
            if s.id == me {
                let followers = self.own_followers(now);
                if let Some(l) = self.lookups.get_mut(&id) {
                    l.followers = followers;
                }
                self.finish_id(now, id, Ok(s));
                return;
            }
            l.hops += 1;
            // A candidate is confirmed by its own predecessor: a successor list that is still
            // filling in (nodes joined before the candidate) can name a node past the key's
            // true successor. A candidate asked once already (its predecessor, named instead,
            // did not answer) only has to be alive.
            let body = if l.asked.contains(&s.id) {
                l.confirming = None;
                RingRequest::Ping
            } else {
                l.asked.push(s.id);
                l.confirming = Some(s.id);
                RingRequest::GetState {
                    fingers: false,
                    sample: 0,
                }
            };
            if self.request(now, s, body, RpcPurpose::Lookup(id)).is_none() {
                self.finish_id(now, id, Err(LookupError::Busy));
            }
            return;
        }
        let next = loop {
            if l.shortlist.is_empty() {
                break None;
            }
            let c = l.shortlist.remove(0);
            if !l.asked.contains(&c.id) && !self.t.is_suspect(&c.id, now) {
                break Some(c);
            }
        };
        let Some(c) = next else {
            self.finish_id(now, id, Err(LookupError::NoRoute));
            return;
        };
        l.asked.push(c.id);
        l.hops += 1;
        let key = l.key;
        if self
            .request(
                now,
                c,
                RingRequest::FindSuccessor { key },
                RpcPurpose::Lookup(id),
            )
            .is_none()
        {
            self.finish_id(now, id, Err(LookupError::Busy));
        }
    }

    /// The responder's side of a routing step.
    pub(super) fn route_step(&self, now: Time, key: &NodeId) -> RingResponse {
        if self.phase != Phase::Member {
            return RingResponse::Error(ErrorCode::NotMember);
        }
        if self.t.owns(key) {
            // Itself, then its successors: the asker learns the key's further successors
            // (older nodes answer with themselves only; the asker then knows just the one).
            let mut succs = vec![self.t.me];
            succs.extend(self.own_followers(now));
            succs.truncate(MAX_PEER_LIST);
            return RingResponse::Found { succs };
        }
        if let Some(i) = self.t.successor_index(key) {
            let succs: Vec<Peer> = self.t.succs[i..]
                .iter()
                .filter(|p| !self.t.is_suspect(&p.id, now))
                .copied()
                .collect();
            if !succs.is_empty() {
                return RingResponse::Found { succs };
            }
        }
        let peers = self
            .t
            .closest_preceding(key, self.cfg.closer_candidates, now);
        if peers.is_empty() {
            return RingResponse::Error(ErrorCode::NoRoute);
        }
        RingResponse::Closer { peers }
    }

    pub(super) fn lookup_response(&mut self, now: Time, id: u64, from: Peer, body: RingResponse) {
        let me = self.t.me.id;
        let Some(l) = self.lookups.get_mut(&id) else {
            return;
        };
        let confirming = l.confirming.take() == Some(from.id);
        match body {
            RingResponse::Pong => {
                l.followers = std::mem::take(&mut l.found);
                self.finish_id(now, id, Ok(from));
                return;
            }
            RingResponse::State { pred, succs, .. } if confirming => {
                match pred {
                    // Its predecessor lies between the key and it: that node (or one before
                    // it) is the successor. Ask it, keeping this one as the fallback.
                    // Not when that node is the asker: a joiner whose earlier attempt made it
                    // the candidate's predecessor already is looking for exactly this node.
                    Some(p)
                        if !l.key.in_half_open(&p.id, &from.id)
                            && p.id != me
                            && !l.asked.contains(&p.id)
                            && !self.t.is_suspect(&p.id, now) =>
                    {
                        l.found.insert(0, from);
                        l.found.insert(0, p);
                    }
                    // The key lies between its predecessor and it, or it knows no predecessor
                    // (it cannot tell): it is the answer, and its successors follow it.
                    _ => {
                        l.followers = succs;
                        self.finish_id(now, id, Ok(from));
                        return;
                    }
                }
            }
            // A node that is not a member (yet) answers like a live one that cannot tell.
            RingResponse::Error(ErrorCode::NotMember) if confirming => {
                self.finish_id(now, id, Ok(from));
                return;
            }
            RingResponse::Found { succs } => {
                // The key must fall between the responder and the successor it names.
                let plausible =
                    succs[0].id == from.id || l.key.in_half_open(&from.id, &succs[0].id);
                if !plausible {
                    self.stats.invalid += 1;
                } else if succs[0].id == from.id {
                    l.followers = succs[1..].to_vec();
                    self.finish_id(now, id, Ok(from));
                    return;
                } else {
                    l.found = succs;
                }
            }
            RingResponse::Closer { peers } => {
                let key = l.key;
                if peers.iter().any(|p| !p.id.in_open(&from.id, &key)) {
                    // An answer that does not approach the key could make us loop.
                    self.stats.invalid += 1;
                } else {
                    for p in peers {
                        if p.id != me
                            && !l.asked.contains(&p.id)
                            && !l.shortlist.iter().any(|q| q.id == p.id)
                        {
                            l.shortlist.push(p);
                        }
                    }
                    l.shortlist.sort_by_key(|p| p.id.distance_to(&key));
                    l.shortlist.truncate(SHORTLIST);
                }
            }
            RingResponse::Error(ErrorCode::NotMember) if l.purpose == LookupFor::Join => {
                self.join_peer_waiting(from.id);
            }
            RingResponse::State { .. } | RingResponse::Error(_) => {}
        }
        self.lookup_step(now, id);
    }

    pub(super) fn on_lookup_deadline(&mut self, now: Time, id: u64) {
        if self.lookups.contains_key(&id) {
            self.finish_id(now, id, Err(LookupError::Timeout));
        }
    }

    fn finish_id(&mut self, now: Time, id: u64, result: Result<Peer, LookupError>) {
        if let Some(l) = self.lookups.remove(&id) {
            self.finish(now, l, result);
        }
    }

    /// This node's successors that are not suspected, for a lookup that ends here.
    fn own_followers(&self, now: Time) -> Vec<Peer> {
        let me = self.t.me.id;
        self.t
            .succs
            .iter()
            .filter(|p| p.id != me && !self.t.is_suspect(&p.id, now))
            .copied()
            .collect()
    }

    fn finish(&mut self, now: Time, mut l: Lookup, result: Result<Peer, LookupError>) {
        // Followers: in ring order after the successor, never it or this node twice, bounded.
        if let Ok(s) = &result {
            let mut seen = vec![s.id];
            l.followers.retain(|p| {
                let new = !seen.contains(&p.id);
                seen.push(p.id);
                new
            });
            l.followers.truncate(MAX_PEER_LIST);
        } else {
            l.followers.clear();
        }
        if result.is_ok() {
            self.stats.lookups_ok += 1;
        } else {
            self.stats.lookups_failed += 1;
        }
        match l.purpose {
            LookupFor::App(token) => self.event(Event::LookupDone {
                token,
                result,
                hops: l.hops,
                followers: l.followers,
            }),
            LookupFor::Join => match result {
                Ok(s) => self.join_found(now, s),
                Err(_) => self.join_failed(now),
            },
            LookupFor::Finger { k, bit } => self.finger_lookup_done(now, k, bit, result.ok()),
            LookupFor::Merge => self.merge_done(now, result.ok()),
            LookupFor::Service { service, token } => self.up.push_back(Up::Lookup {
                service,
                token,
                result: result.ok(),
            }),
        }
    }
}

#[cfg(test)]
#[path = "lookup_tests.rs"]
mod tests;
