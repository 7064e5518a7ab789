//! Messages between overlay nodes: one envelope for every service, each service's messages in
//! its own module, and the frame format that lets the wire evolve.
//!
//! A [`Message`] is a request (answered with the same id), a response, or a notice (no answer);
//! its body belongs to one *service*: the ring core ([`RING`], `ring/wire.rs`), broadcast
//! ([`BROADCAST`], `broadcast/wire.rs`), records ([`RECORDS`], `records/wire.rs`), direct
//! delivery ([`DIRECT`], `direct/wire.rs`), or a service this build does not know, carried as
//! [`Opaque`] bytes. On the wire a message is one CBOR array
//! `[service, version, call, id, body]` whose body is the service's own CBOR. A receiver that
//! does not know a service, a version or a message type of a service gets an [`Opaque`] body
//! rather than a decoding error: the node counts it and ignores it, answering a request with
//! [`Response::Unsupported`] so the sender does not wait for a timeout and does not take a
//! healthy peer for a dead one. Only a frame whose header does not decode is an error (the
//! transport closes such a connection). The compatibility rules are in `docs/protocol.md`.
//!
//! The simulator passes the values directly (or, to test mixed versions, through
//! [`encode`]/[`decode`]).

use std::borrow::Cow;
use std::net::SocketAddr;

use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::broadcast::wire::{self as bwire, Bcast, BroadcastRequest, BroadcastResponse};
use crate::direct::wire::{self as xwire, DirectNotice, DirectRequest, DirectResponse};
use crate::id::NodeId;
use crate::records::wire::{self as dwire, RecordsNotice, RecordsRequest, RecordsResponse};
use crate::ring::wire::{self as rwire, RingNotice, RingRequest, RingResponse};

/// The frame layer itself (the body of [`Response::Unsupported`]).
pub const FRAME: u16 = 0;
/// The ring core: membership, stabilization, fingers, lookups.
pub const RING: u16 = 1;
/// Broadcast along the finger table.
pub const BROADCAST: u16 = 2;
/// DHT records.
pub const RECORDS: u16 = 3;
/// Direct delivery of one body to one node.
pub const DIRECT: u16 = 4;
/// A service used only by tests, to prove that nodes without it are not disturbed by it.
pub const TEST_ECHO: u16 = 0x7e57;

/// Longest list of peers in any message.
pub const MAX_PEER_LIST: usize = 64;

/// Upper bound of an encoded message (CBOR), checked by tests against the largest message.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// A node as others reach it: its identifier and its overlay address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Peer {
    /// The node's identifier (hash of its public key).
    pub id: NodeId,
    /// Where the node listens.
    pub addr: SocketAddr,
}

/// One overlay message.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A request; the answer carries the same `id`.
    Request { id: u64, body: Request },
    /// The answer to request `id`.
    Response { id: u64, body: Response },
    /// A message that expects no answer.
    Notice(Notice),
}

/// A request, by service.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Ring core.
    Ring(RingRequest),
    /// Broadcast.
    Broadcast(BroadcastRequest),
    /// Records.
    Records(RecordsRequest),
    /// Direct delivery.
    Direct(DirectRequest),
    /// Another service, or a message type or version of a known one this build cannot read.
    Other(Opaque),
}

/// A response, by service.
#[derive(Clone, Debug, PartialEq)]
pub enum Response {
    /// Ring core.
    Ring(RingResponse),
    /// Broadcast.
    Broadcast(BroadcastResponse),
    /// Records.
    Records(RecordsResponse),
    /// Direct delivery.
    Direct(DirectResponse),
    /// Another service (or one this build cannot read).
    Other(Opaque),
    /// The responder does not speak the request's service, version or message type.
    Unsupported,
}

/// A notice, by service.
#[derive(Clone, Debug, PartialEq)]
pub enum Notice {
    /// Ring core.
    Ring(RingNotice),
    /// Broadcast.
    Broadcast(Bcast),
    /// Records.
    Records(RecordsNotice),
    /// Another service (or one this build cannot read).
    Other(Opaque),
}

/// A body kept as bytes: a service this build does not know, or one it knows but whose
/// version or message type it cannot read. Services this module does not list
/// ([`crate::protocol::Service`]) speak through it ([`crate::protocol::encode_body`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opaque {
    /// The service number.
    pub service: u16,
    /// The service's wire version.
    pub version: u16,
    /// The service's own encoding of the message.
    pub body: Vec<u8>,
}

impl Opaque {
    /// The service number of `self`.
    pub fn service(&self) -> u16 {
        self.service
    }
}

impl From<RingRequest> for Request {
    fn from(r: RingRequest) -> Self {
        Request::Ring(r)
    }
}

impl From<RingResponse> for Response {
    fn from(r: RingResponse) -> Self {
        Response::Ring(r)
    }
}

impl Request {
    /// The service the request belongs to.
    pub fn service(&self) -> u16 {
        match self {
            Request::Ring(_) => RING,
            Request::Broadcast(_) => BROADCAST,
            Request::Records(_) => RECORDS,
            Request::Direct(_) => DIRECT,
            Request::Other(o) => o.service,
        }
    }
}

impl Notice {
    /// The service the notice belongs to.
    pub fn service(&self) -> u16 {
        match self {
            Notice::Ring(_) => RING,
            Notice::Broadcast(_) => BROADCAST,
            Notice::Records(_) => RECORDS,
            Notice::Other(o) => o.service,
        }
    }
}

/// Why a message was rejected before reaching the state machine.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidMessage {
    /// A peer list is longer than [`MAX_PEER_LIST`].
    #[error("peer list of {0} entries exceeds the bound")]
    ListTooLong(usize),
    /// A list is not strictly clockwise from the sender, or repeats an entry.
    #[error("peer list is not in ring order from the sender")]
    NotInRingOrder,
    /// A message names the sender as its own neighbour.
    #[error("message names the sender as its own neighbour")]
    SelfReference,
    /// A routing answer does not move towards the key.
    #[error("routing answer does not lie between the responder and the key")]
    OutOfRange,
    /// A broadcast's id is not the hash of its envelope.
    #[error("broadcast id does not match its envelope")]
    BadId,
    /// A broadcast payload or path is over its bound.
    #[error("broadcast payload or path over its bound")]
    Oversized,
}

/// Checks that `list` runs strictly clockwise from `origin` without repeats or `origin` itself.
pub fn check_ring_order(origin: &NodeId, list: &[Peer]) -> Result<(), InvalidMessage> {
    if list.len() > MAX_PEER_LIST {
        return Err(InvalidMessage::ListTooLong(list.len()));
    }
    let mut last = NodeId::ZERO;
    for p in list {
        let d = origin.distance_to(&p.id);
        if d == NodeId::ZERO {
            return Err(InvalidMessage::SelfReference);
        }
        if d <= last {
            return Err(InvalidMessage::NotInRingOrder);
        }
        last = d;
    }
    Ok(())
}

// ---- the frame -------------------------------------------------------------------------------

/// `call` of a notice, a request and a response in the frame header.
const NOTICE: u8 = 0;
const REQUEST: u8 = 1;
const RESPONSE: u8 = 2;

/// The frame as it is read: `[service, version, call, id, body]`.
#[derive(Deserialize)]
struct RawFrame(u16, u16, u8, u64, #[serde(with = "serde_bytes")] Vec<u8>);

/// The frame as it is written.
#[derive(Serialize)]
struct FrameRef<'a>(u16, u16, u8, u64, &'a serde_bytes::Bytes);

type Body<'a> = (u16, u16, Cow<'a, [u8]>);

fn cbor<T: Serialize>(service: u16, version: u16, v: &T) -> Result<Body<'static>, String> {
    let mut buf = Vec::with_capacity(128);
    ciborium::into_writer(v, &mut buf).map_err(|e| e.to_string())?;
    Ok((service, version, Cow::Owned(buf)))
}

fn opaque(o: &Opaque) -> Body<'_> {
    (o.service, o.version, Cow::Borrowed(&o.body))
}

/// Reads a known service's body, or keeps it opaque when this build cannot read it.
fn read<T: serde::de::DeserializeOwned>(o: &Opaque, service: u16, version: u16) -> Option<T> {
    if o.service != service || o.version != version {
        return None;
    }
    ciborium::from_reader(o.body.as_slice()).ok()
}

/// The body read as the service it names, when this build speaks that service's version and
/// the body is one of its message types; otherwise kept opaque. The one place that lists the
/// services a build reads.
fn typed<T, R, B, D, X>(
    o: Opaque,
    ring: impl FnOnce(R) -> T,
    broadcast: impl FnOnce(B) -> T,
    records: impl FnOnce(D) -> T,
    direct: impl FnOnce(X) -> T,
    other: impl FnOnce(Opaque) -> T,
) -> T
where
    R: serde::de::DeserializeOwned,
    B: serde::de::DeserializeOwned,
    D: serde::de::DeserializeOwned,
    X: serde::de::DeserializeOwned,
{
    if let Some(r) = read(&o, RING, rwire::VERSION) {
        ring(r)
    } else if let Some(b) = read(&o, BROADCAST, bwire::VERSION) {
        broadcast(b)
    } else if let Some(d) = read(&o, RECORDS, dwire::VERSION) {
        records(d)
    } else if let Some(x) = read(&o, DIRECT, xwire::VERSION) {
        direct(x)
    } else {
        other(o)
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (call, id, body) = match self {
            Message::Notice(n) => (
                NOTICE,
                0,
                match n {
                    Notice::Ring(r) => cbor(RING, rwire::VERSION, r),
                    Notice::Broadcast(b) => cbor(BROADCAST, bwire::VERSION, b),
                    Notice::Records(d) => cbor(RECORDS, dwire::VERSION, d),
                    Notice::Other(o) => Ok(opaque(o)),
                },
            ),
            Message::Request { id, body } => (
                REQUEST,
                *id,
                match body {
                    Request::Ring(r) => cbor(RING, rwire::VERSION, r),
                    Request::Broadcast(b) => cbor(BROADCAST, bwire::VERSION, b),
                    Request::Records(d) => cbor(RECORDS, dwire::VERSION, d),
                    Request::Direct(x) => cbor(DIRECT, xwire::VERSION, x),
                    Request::Other(o) => Ok(opaque(o)),
                },
            ),
            Message::Response { id, body } => (
                RESPONSE,
                *id,
                match body {
                    Response::Ring(r) => cbor(RING, rwire::VERSION, r),
                    Response::Broadcast(b) => cbor(BROADCAST, bwire::VERSION, b),
                    Response::Records(d) => cbor(RECORDS, dwire::VERSION, d),
                    Response::Direct(x) => cbor(DIRECT, xwire::VERSION, x),
                    Response::Other(o) => Ok(opaque(o)),
                    Response::Unsupported => Ok((FRAME, 1, Cow::Borrowed(&[][..]))),
                },
            ),
        };
        let (service, version, bytes) = body.map_err(S::Error::custom)?;
        FrameRef(service, version, call, id, serde_bytes::Bytes::new(&bytes)).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Message {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let RawFrame(service, version, call, id, body) = RawFrame::deserialize(d)?;
        let o = Opaque {
            service,
            version,
            body,
        };
        Ok(match call {
            NOTICE => Message::Notice(typed(
                o,
                Notice::Ring,
                Notice::Broadcast,
                Notice::Records,
                |n: DirectNotice| match n {},
                Notice::Other,
            )),
            REQUEST => Message::Request {
                id,
                body: typed(
                    o,
                    Request::Ring,
                    Request::Broadcast,
                    Request::Records,
                    Request::Direct,
                    Request::Other,
                ),
            },
            RESPONSE if o.service == FRAME => Message::Response {
                id,
                body: Response::Unsupported,
            },
            RESPONSE => Message::Response {
                id,
                body: typed(
                    o,
                    Response::Ring,
                    Response::Broadcast,
                    Response::Records,
                    Response::Direct,
                    Response::Other,
                ),
            },
            other => return Err(D::Error::custom(format!("unknown call kind {other}"))),
        })
    }
}

/// Encodes `msg` as one CBOR frame.
pub fn encode(msg: &Message) -> Result<Vec<u8>, String> {
    let mut buf = Vec::with_capacity(256);
    ciborium::into_writer(msg, &mut buf).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Decodes one CBOR frame. Only a frame whose header is unreadable is an error.
pub fn decode(bytes: &[u8]) -> Result<Message, String> {
    ciborium::from_reader(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
