//! chatd's private conversations, without I/O: the cryptography and the rules that make a
//! private message reach exactly its recipients, once and in order, even when they were
//! offline (`docs/protocol.md`, "Private messages"; `docs/security.md`).
//!
//! - [`keys`]: an account's Olm account (vodozemac) and its *seal* key, published as a signed
//!   key bundle ([`bundle`]) in the DHT.
//! - [`seal`]: the envelope every private message travels in. The Olm ciphertext and the
//!   sender's account are sealed (HPKE, RFC 9180) to the recipient's seal key and padded, so
//!   the nodes that store or forward it see the recipient, a size bucket and times only.
//! - [`payload`]: what is inside: a text of a conversation, an acknowledgement, a group's
//!   membership.
//! - [`stream`]: sequence numbers per (sender, recipient): exactly once, in order, cumulative
//!   end-to-end acknowledgements, expiry.
//! - [`engine`]: one hosted account's state machine. The daemon (`daemon/src/dm/`) and the
//!   simulator drive the same engine: they hand it what arrived and the time, and carry out
//!   what it asks for (put a mailbox item, deliver directly, fetch a bundle, persist, show).
//! - [`delivery`]: how an account's messages travel, the same for the daemon and the
//!   simulator: the direct body `recipient account ‖ sealed value`, what a mailbox read
//!   answers, when the bundle is published and the mailbox read, which recipients came back.
//! - [`service`]: one node's delivery service: the hosted accounts' engines, schedules and
//!   watches, their actions turned into records reads and puts and direct sends (requests
//!   with tokens), the answers fed back. The daemon and the simulator carry out its requests;
//!   neither re-implements it.
//! - [`group`]: group conversations (membership signed by the group's creator; messages sent
//!   pairwise to every member).
//! - [`text`]: the characters a message's text may hold (shared with the public chat).

pub mod bundle;
pub mod delivery;
pub mod engine;
mod error;
pub mod group;
pub mod keys;
pub mod payload;
pub mod seal;
pub mod service;
pub mod stream;
#[cfg(test)]
mod tests;
pub mod text;

pub use engine::{Action, Changed, Delivery, Engine, Item, Outgoing, Shown, Status, item_record};
pub use error::{DmError, Dropped};

/// Longest text of one private message, in bytes (UTF-8). With every header, the sealed item
/// stays within the DHT's 4 KiB value bound (a unit test checks the worst case).
pub const MAX_TEXT: usize = 3000;
/// Most members of a group, its creator included.
pub const MAX_GROUP_MEMBERS: usize = 32;
/// Most groups one account is a member of.
pub const MAX_GROUPS: usize = 64;
/// Most messages waiting for one recipient's acknowledgement.
pub const MAX_PENDING_PER_PEER: usize = 100;
/// Most messages waiting for acknowledgements, over all recipients of one account.
pub const MAX_PENDING: usize = 1000;
/// Most out-of-order messages held from one sender.
pub const MAX_HELD_PER_PEER: usize = 256;
/// Most peers (accounts this one talks to) remembered; the least recently active go first.
pub const MAX_PEERS: usize = 4096;
/// Messages one account may send to one recipient per minute (burst the same).
pub const SEND_PER_MIN: u32 = 30;
/// Domain of message ids.
const ID_DOMAIN: &[u8] = b"chatd dm id v1";

/// A message's id: the same at the sender and at every recipient.
pub fn message_id(from: &[u8; 32], nonce: &[u8; 16]) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(ID_DOMAIN);
    h.update(from);
    h.update(nonce);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize().as_bytes()[..16]);
    id
}

/// Random bytes from the operating system.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    // The OS random source does not fail on Linux after boot; a failure is unrecoverable.
    getrandom::fill(&mut b).expect("the OS random source works");
    b
}
