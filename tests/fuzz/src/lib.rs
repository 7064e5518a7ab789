//! Helpers shared by the fuzz targets in `src/bin/` (one binary per target, each a honggfuzz
//! loop around one real decoder; `tests/fuzz/run.sh` runs them, docs/security.md "Fuzzing").
//!
//! Each target calls the code the daemon runs on hostile bytes, and where it is cheap checks
//! more than "no panic": a decoded value re-encodes and decodes to itself, and the checks that
//! follow decoding (`validate`) hold their bounds.

use chat_overlay::NodeId;
use chat_overlay::wire::{self, Message, Notice, Request, Response};

/// A fixed sender for the checks that need one.
pub fn sender() -> NodeId {
    NodeId::from_high_u64(0x5eed)
}

/// Runs every check the overlay applies to a decoded message; the result does not matter,
/// only that nothing panics.
pub fn validate(msg: &Message) {
    let from = sender();
    match msg {
        Message::Request { body, .. } => match body {
            Request::Broadcast(_) | Request::Ring(_) | Request::Other(_) => {}
            Request::Records(r) => drop(r.validate()),
            Request::Direct(d) => drop(d.validate()),
        },
        Message::Response { body, .. } => match body {
            Response::Ring(r) => drop(r.validate(&from)),
            Response::Records(r) => drop(r.validate()),
            Response::Broadcast(_)
            | Response::Direct(_)
            | Response::Other(_)
            | Response::Unsupported => {}
        },
        Message::Notice(n) => match n {
            Notice::Ring(r) => drop(r.validate(&from)),
            Notice::Broadcast(b) => drop(b.validate()),
            Notice::Records(r) => drop(r.validate()),
            Notice::Other(_) => {}
        },
    }
}

/// A decoded message encodes, and its encoding decodes to the same message.
pub fn round_trip(msg: &Message) {
    let bytes = wire::encode(msg).expect("a decoded message encodes");
    let again = wire::decode(&bytes).expect("an encoded message decodes");
    assert_eq!(&again, msg, "a message changed on a round trip");
}
