//! Ping, a sub-protocol for tests only: the smallest service that uses every part of the
//! [`Service`] interface, added by this folder and one line in `services::registered` (and
//! its `mod` line in `lib.rs`). It proves that a sub-protocol needs nothing outside its folder:
//! its own service number ([`PING`]), messages in its own encoding ([`PingMsg`], carried as
//! [`crate::wire::Opaque`] bodies), its config section ([`PingConfig`]), its timers
//! ([`Timer::Service`]), its events ([`PingEvent`] in [`crate::Event::Service`]) and its
//! inputs (methods run through [`crate::Overlay::call`]).
//!
//! A node asked to ping a peer sends it a request; the peer answers with the same nonce. The
//! asker reports the round trip ([`PingEvent::Pong`]), or a failure: the peer does not speak
//! ping or never answered ([`PingEvent::Failed`]), or the answer took longer than the
//! deadline ([`PingEvent::TimedOut`]). A node can also say hello (a notice, no answer).

#[cfg(test)]
mod tests;

use std::any::Any;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::overlay::{Event, Timer};
use crate::protocol::{
    Ctx, Reply, RingEvent, Service, ServiceEvent, decode_body, encode_body, unsupported,
};
use crate::time::Time;
use crate::wire::{Message, Notice, Peer, Request, Response};

/// Ping's service number (in the range kept for tests).
pub const PING: u16 = 0x7e58;
/// Ping's wire version.
pub const VERSION: u16 = 1;

/// Ping's config section (its defaults are here and nowhere else).
#[derive(Clone, Debug)]
pub struct PingConfig {
    /// A ping not answered after this long is reported [`PingEvent::TimedOut`].
    pub deadline: Duration,
    /// Pings outstanding at once; beyond this new ones are refused.
    pub max_outstanding: usize,
}

impl Default for PingConfig {
    fn default() -> Self {
        PingConfig {
            deadline: Duration::from_millis(800),
            max_outstanding: 64,
        }
    }
}

/// Ping's messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PingMsg {
    /// Request: answer with the same nonce.
    Ping { nonce: u64 },
    /// The answer.
    Pong { nonce: u64 },
    /// Notice: nothing to answer.
    Hello,
}

/// What ping tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PingEvent {
    /// Ping `token` was answered by `from` after `rtt`.
    Pong {
        token: u64,
        from: Peer,
        rtt: Duration,
    },
    /// Ping `token` to `to` failed: the peer does not speak ping, or never answered.
    Failed { token: u64, to: Peer },
    /// Ping `token` to `to` was not answered within [`PingConfig::deadline`].
    TimedOut { token: u64, to: Peer },
    /// `from` said hello.
    Heard { from: Peer },
}

/// Why a ping was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PingError {
    /// Too many pings outstanding (this node's or the ring's RPC engine's bound).
    #[error("too many pings outstanding")]
    Busy,
    /// The message could not be encoded.
    #[error("ping could not be encoded")]
    Encode,
}

/// What ping counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PingStats {
    /// Pings sent, answered, failed, timed out.
    pub sent: u64,
    pub answered: u64,
    pub failed: u64,
    pub timed_out: u64,
    /// Pings this node answered.
    pub served: u64,
    /// Hellos received.
    pub heard: u64,
    /// Peers the ring core reported suspected while this node ran ping.
    pub suspected: u64,
}

/// Ping's state on one node.
#[derive(Debug)]
pub struct Ping {
    cfg: PingConfig,
    /// Outstanding pings by token: the peer and when it was sent.
    outstanding: BTreeMap<u64, (Peer, Time)>,
    next: u64,
    stats: PingStats,
}

impl Ping {
    /// Ping with its config section.
    pub fn new(cfg: PingConfig) -> Ping {
        Ping {
            cfg,
            outstanding: BTreeMap::new(),
            next: 1,
            stats: PingStats::default(),
        }
    }

    /// What it counted.
    pub fn stats(&self) -> &PingStats {
        &self.stats
    }

    /// Pings outstanding.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Input: pings `to`; the outcome comes back as a [`PingEvent`] with the returned token.
    pub fn ping(&mut self, cx: &mut Ctx<'_>, to: Peer) -> Result<u64, PingError> {
        if self.outstanding.len() >= self.cfg.max_outstanding {
            return Err(PingError::Busy);
        }
        let token = self.next;
        let body = encode_body(PING, VERSION, &PingMsg::Ping { nonce: token })
            .map_err(|_| PingError::Encode)?;
        if !cx.request(to, Request::Other(body), PING, token) {
            return Err(PingError::Busy);
        }
        self.next += 1;
        self.stats.sent += 1;
        self.outstanding.insert(token, (to, cx.now()));
        let at = cx.now() + self.cfg.deadline;
        cx.set_timer(
            at,
            Timer::Service {
                service: PING,
                id: token,
            },
        );
        Ok(token)
    }

    /// Input: says hello to `to` (a notice).
    pub fn hello(&mut self, cx: &mut Ctx<'_>, to: Peer) -> Result<(), PingError> {
        let body = encode_body(PING, VERSION, &PingMsg::Hello).map_err(|_| PingError::Encode)?;
        cx.send(to, Message::Notice(Notice::Other(body)));
        Ok(())
    }

    fn event(cx: &mut Ctx<'_>, e: PingEvent) {
        cx.event(Event::Service(ServiceEvent::new(PING, e)));
    }
}

impl Service for Ping {
    fn service(&self) -> u16 {
        PING
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn on_ring_event(&mut self, _cx: &mut Ctx<'_>, ev: &RingEvent) {
        if let RingEvent::PeerSuspected(_) = ev {
            self.stats.suspected += 1;
        }
    }

    fn on_timer(&mut self, cx: &mut Ctx<'_>, timer: Timer) {
        if let Timer::Service { id, .. } = timer
            && let Some((to, _)) = self.outstanding.remove(&id)
        {
            self.stats.timed_out += 1;
            Self::event(cx, PingEvent::TimedOut { token: id, to });
        }
    }

    fn wants_timer(&self, timer: &Timer) -> bool {
        matches!(timer, Timer::Service { id, .. } if self.outstanding.contains_key(id))
    }

    fn on_notice(&mut self, cx: &mut Ctx<'_>, from: Peer, notice: Notice) {
        match notice {
            Notice::Other(o) if decode_body(&o, PING, VERSION) == Some(PingMsg::Hello) => {
                self.stats.heard += 1;
                Self::event(cx, PingEvent::Heard { from });
            }
            _ => cx.count_invalid(),
        }
    }

    fn on_request(&mut self, cx: &mut Ctx<'_>, _from: Peer, _id: u64, body: Request) -> Response {
        let Request::Other(o) = body else {
            return unsupported(cx);
        };
        match decode_body(&o, PING, VERSION) {
            Some(PingMsg::Ping { nonce }) => {
                match encode_body(PING, VERSION, &PingMsg::Pong { nonce }) {
                    Ok(b) => {
                        self.stats.served += 1;
                        Response::Other(b)
                    }
                    Err(_) => Response::Unsupported,
                }
            }
            _ => {
                cx.count_invalid();
                Response::Unsupported
            }
        }
    }

    fn on_reply(&mut self, cx: &mut Ctx<'_>, token: u64, reply: Reply) {
        // Not outstanding: it timed out already.
        let Some((to, sent)) = self.outstanding.remove(&token) else {
            return;
        };
        let pong = match &reply {
            Reply::Answer {
                from,
                body: Response::Other(o),
            } => match decode_body(o, PING, VERSION) {
                Some(PingMsg::Pong { nonce }) if nonce == token => Some(*from),
                _ => None,
            },
            _ => None,
        };
        match pong {
            Some(from) => {
                self.stats.answered += 1;
                let rtt = cx.now().since(sent);
                Self::event(cx, PingEvent::Pong { token, from, rtt });
            }
            None => {
                self.stats.failed += 1;
                Self::event(cx, PingEvent::Failed { token, to });
            }
        }
    }

    fn check_invariants(&self) -> Result<(), String> {
        if self.outstanding.len() > self.cfg.max_outstanding {
            return Err(format!(
                "ping: {} outstanding over the bound {}",
                self.outstanding.len(),
                self.cfg.max_outstanding
            ));
        }
        Ok(())
    }
}
