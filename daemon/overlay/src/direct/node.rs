//! [`Direct`]: one node's part of direct delivery — its sends in flight (lookup of the
//! target's id, then the request), the small cache of targets' addresses, and the receiving
//! side (size, per-origin rate, resends recognised, delivery, acknowledgement). No timers: the
//! ring bounds every lookup by its deadline and every request by its resends.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::wire::{DirectRequest, DirectResponse};
use super::{
    DirectConfig, DirectError, DirectEvent, DirectInput, DirectStats, MAX_BODY, MAX_REASON,
};
use crate::common::rate::RateLimiter;
use crate::id::NodeId;
use crate::overlay::Event;
use crate::protocol::{Ctx, Reply, RingEvent};
use crate::time::Time;
use crate::wire::{DIRECT, Peer, Request, Response};

/// A send in flight.
#[derive(Debug)]
struct Send {
    /// The application's token.
    token: u64,
    to: NodeId,
    /// Kept while a retry may need it (the target's address came from the cache).
    body: Vec<u8>,
    stage: Stage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Waiting for the lookup of `to`.
    Lookup,
    /// Waiting for the target's answer; `cached`: its address came from the cache.
    Asked { cached: bool },
}

/// The direct-delivery sub-protocol of one node.
#[derive(Debug)]
pub struct Direct {
    cfg: DirectConfig,
    sends: BTreeMap<u64, Send>,
    next: u64,
    /// Targets' addresses and when they were learnt.
    cache: BTreeMap<NodeId, (Peer, Time)>,
    limiter: RateLimiter,
    /// Requests delivered lately, by origin and request id, oldest first (with `seen_set`).
    seen: VecDeque<(Time, NodeId, u64)>,
    seen_set: BTreeSet<(NodeId, u64)>,
    /// Bodies are refused until then, with these words ([`DirectInput::Refuse`]).
    refusing: Option<(Time, String)>,
    stats: DirectStats,
}

impl Direct {
    /// A node's direct part with `cfg`.
    pub fn new(cfg: DirectConfig) -> Direct {
        Direct {
            limiter: RateLimiter::new(cfg.rate_per_sec, cfg.rate_burst, cfg.max_origins),
            cfg,
            sends: BTreeMap::new(),
            next: 0,
            cache: BTreeMap::new(),
            seen: VecDeque::new(),
            seen_set: BTreeSet::new(),
            refusing: None,
            stats: DirectStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &DirectStats {
        &self.stats
    }

    /// The configuration in force.
    pub fn config(&self) -> &DirectConfig {
        &self.cfg
    }

    /// Sends in flight.
    pub fn in_flight(&self) -> usize {
        self.sends.len()
    }

    /// Targets whose address is remembered.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// An application request.
    pub fn on_input(&mut self, cx: &mut Ctx<'_>, input: DirectInput) {
        let (token, to, body) = match input {
            DirectInput::Send { token, to, body } => (token, to, body),
            DirectInput::Refuse {
                duration,
                reason: why,
            } => {
                self.refusing = Some((cx.now() + duration, reason(why)));
                return;
            }
            DirectInput::Accept => {
                self.refusing = None;
                return;
            }
        };
        let me = cx.me();
        let refused = if body.len() > MAX_BODY {
            Some(DirectError::TooLarge { max: MAX_BODY })
        } else if to == me.id
            && let Some(why) = self.refusal(cx.now())
        {
            // To this node itself while it refuses: refused as another node would be.
            self.stats.refused_app += 1;
            Some(DirectError::Refused(why))
        } else if to == me.id {
            // To this node itself: delivered here, no message.
            self.stats.received += 1;
            cx.event(Event::Direct(DirectEvent::Received { from: me, body }));
            self.finish_token(cx, token, Ok(()));
            return;
        } else if !cx.ring().is_member() {
            Some(DirectError::NotMember)
        } else if self.sends.len() >= self.cfg.max_outstanding {
            Some(DirectError::Busy)
        } else {
            None
        };
        if let Some(e) = refused {
            self.finish_token(cx, token, Err(e));
            return;
        }
        let id = self.next;
        self.next += 1;
        self.sends.insert(
            id,
            Send {
                token,
                to,
                body,
                stage: Stage::Lookup,
            },
        );
        match self.cached_peer(cx.now(), &to) {
            Some(peer) => self.ask(cx, id, peer, true),
            None => cx.lookup(to, DIRECT, id),
        }
    }

    /// What the ring did: a peer that failed is no longer a cached target.
    pub fn on_ring_event(&mut self, _cx: &mut Ctx<'_>, ev: &RingEvent) {
        if let RingEvent::Unreachable(id) | RingEvent::PeerSuspected(id) = ev {
            self.cache.remove(id);
        }
    }

    /// The lookup of a send's target finished.
    pub fn on_lookup(&mut self, cx: &mut Ctx<'_>, id: u64, result: Option<Peer>) {
        let Some(send) = self.sends.get(&id) else {
            return;
        };
        if send.stage != Stage::Lookup {
            return;
        }
        match result {
            None => self.finish(cx, id, Err(DirectError::Unreachable)),
            Some(p) if p.id != send.to => self.finish(cx, id, Err(DirectError::NotInRing)),
            Some(p) => {
                self.remember(p, cx.now());
                self.ask(cx, id, p, false);
            }
        }
    }

    /// Sends send `id`'s body to `peer`.
    fn ask(&mut self, cx: &mut Ctx<'_>, id: u64, peer: Peer, cached: bool) {
        let Some(send) = self.sends.get_mut(&id) else {
            return;
        };
        send.stage = Stage::Asked { cached };
        // Without the cache there is no retry: the body is not needed here any more.
        let body = if cached {
            send.body.clone()
        } else {
            std::mem::take(&mut send.body)
        };
        let req = Request::Direct(DirectRequest::Deliver { body });
        if !cx.request(peer, req, DIRECT, id) {
            self.finish(cx, id, Err(DirectError::Busy));
        }
    }

    /// The outcome of a send's request.
    pub fn on_reply(&mut self, cx: &mut Ctx<'_>, id: u64, reply: Reply) {
        let Some(send) = self.sends.get(&id) else {
            return;
        };
        let Stage::Asked { cached } = send.stage else {
            return;
        };
        let result = match reply {
            Reply::Answer {
                body: Response::Direct(answer),
                ..
            } => match answer {
                DirectResponse::Accepted => Ok(()),
                DirectResponse::RateLimited { retry_after_ms } => {
                    Err(DirectError::RateLimited { retry_after_ms })
                }
                DirectResponse::TooLarge { max } => Err(DirectError::TooLarge {
                    max: usize::try_from(max).unwrap_or(usize::MAX),
                }),
                DirectResponse::Refused(why) => Err(DirectError::Refused(reason(why))),
            },
            Reply::Answer { .. } => {
                cx.count_invalid();
                Err(DirectError::Refused("an answer of another service".into()))
            }
            Reply::Unsupported { .. } => Err(DirectError::Refused(
                "the target does not speak direct delivery".into(),
            )),
            Reply::Failed { to } => {
                self.cache.remove(&to.id);
                if cached {
                    // The address may be stale: look the id up afresh, once.
                    let target = send.to;
                    if let Some(s) = self.sends.get_mut(&id) {
                        s.stage = Stage::Lookup;
                    }
                    cx.lookup(target, DIRECT, id);
                    return;
                }
                Err(DirectError::Unreachable)
            }
        };
        self.finish(cx, id, result);
    }

    /// A request arrived from `from` (request id `rpc`); the answer goes back at once.
    pub fn on_request(
        &mut self,
        cx: &mut Ctx<'_>,
        from: Peer,
        rpc: u64,
        req: DirectRequest,
    ) -> DirectResponse {
        if req.validate().is_err() {
            self.stats.refused_size += 1;
            cx.count_invalid();
            return DirectResponse::TooLarge {
                max: MAX_BODY as u64,
            };
        }
        let DirectRequest::Deliver { body } = req;
        let now = cx.now();
        self.forget_seen(now);
        if self.seen_set.contains(&(from.id, rpc)) {
            // A resend of a request delivered already (its answer was lost or late).
            self.stats.duplicates += 1;
            return DirectResponse::Accepted;
        }
        if let Some(why) = self.refusal(now) {
            // The application cannot take it now: the sender keeps it (nothing delivered,
            // nothing remembered, so a resend after the period is delivered).
            self.stats.refused_app += 1;
            return DirectResponse::Refused(why);
        }
        if !self.limiter.allow(&from.id, now) {
            self.stats.refused_rate += 1;
            let wait = self.limiter.wait(&from.id, now);
            return DirectResponse::RateLimited {
                retry_after_ms: (wait.as_millis() as u64).max(1),
            };
        }
        if self.seen.len() >= self.cfg.dedup_entries
            && let Some((_, o, r)) = self.seen.pop_front()
        {
            self.seen_set.remove(&(o, r));
        }
        self.seen.push_back((now, from.id, rpc));
        self.seen_set.insert((from.id, rpc));
        self.stats.received += 1;
        cx.event(Event::Direct(DirectEvent::Received { from, body }));
        DirectResponse::Accepted
    }

    /// The refusal's words while the application's refusal lasts ([`DirectInput::Refuse`]).
    fn refusal(&mut self, now: Time) -> Option<String> {
        match &self.refusing {
            Some((until, why)) if now < *until => Some(why.clone()),
            Some(_) => {
                self.refusing = None;
                None
            }
            None => None,
        }
    }

    /// Whether bodies are refused at `now` ([`DirectInput::Refuse`]).
    pub fn refusing(&self, now: Time) -> bool {
        self.refusing
            .as_ref()
            .is_some_and(|(until, _)| now < *until)
    }

    /// The node leaves: every send in flight fails (their answers would not be heard).
    pub fn on_leave(&mut self, cx: &mut Ctx<'_>) {
        let ids: Vec<u64> = self.sends.keys().copied().collect();
        for id in ids {
            self.finish(cx, id, Err(DirectError::NotMember));
        }
    }

    fn finish(&mut self, cx: &mut Ctx<'_>, id: u64, result: Result<(), DirectError>) {
        if let Some(send) = self.sends.remove(&id) {
            self.finish_token(cx, send.token, result);
        }
    }

    fn finish_token(&mut self, cx: &mut Ctx<'_>, token: u64, result: Result<(), DirectError>) {
        match result {
            Ok(()) => self.stats.sent_ok += 1,
            Err(_) => self.stats.failed += 1,
        }
        cx.event(Event::Direct(DirectEvent::Done { token, result }));
    }

    /// `to`'s remembered address, if still fresh.
    fn cached_peer(&mut self, now: Time, to: &NodeId) -> Option<Peer> {
        let (peer, at) = *self.cache.get(to)?;
        if now.since(at) < self.cfg.cache_ttl {
            Some(peer)
        } else {
            self.cache.remove(to);
            None
        }
    }

    /// Remembers `peer`'s address, forgetting the oldest entry when full.
    fn remember(&mut self, peer: Peer, now: Time) {
        if self.cfg.cache_entries == 0 {
            return;
        }
        if !self.cache.contains_key(&peer.id)
            && self.cache.len() >= self.cfg.cache_entries
            && let Some(oldest) = self
                .cache
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| *k)
        {
            self.cache.remove(&oldest);
        }
        self.cache.insert(peer.id, (peer, now));
    }

    /// Drops delivered requests older than the window.
    fn forget_seen(&mut self, now: Time) {
        while let Some((at, o, r)) = self.seen.front().copied() {
            if now.since(at) < self.cfg.dedup_window {
                break;
            }
            self.seen.pop_front();
            self.seen_set.remove(&(o, r));
        }
    }

    /// Checks the bounds of what is in flight and remembered.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.sends.len() > self.cfg.max_outstanding {
            return Err(format!("{} direct sends in flight", self.sends.len()));
        }
        if self.cache.len() > self.cfg.cache_entries {
            return Err(format!("{} cached direct targets", self.cache.len()));
        }
        if self.seen.len() > self.cfg.dedup_entries || self.seen.len() != self.seen_set.len() {
            return Err(format!(
                "{} delivered direct requests remembered ({} indexed)",
                self.seen.len(),
                self.seen_set.len()
            ));
        }
        Ok(())
    }
}

/// A target's refusal text, cut to [`MAX_REASON`] bytes on a character boundary.
fn reason(mut s: String) -> String {
    if s.len() > MAX_REASON {
        let mut end = MAX_REASON;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
