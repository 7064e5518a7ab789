//! What can go wrong: [`DmError`] for the local user's requests (shown to them), [`Dropped`] for
//! what came from the network and is dropped and counted.

use thiserror::Error;

/// A request of the local user that cannot be done.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DmError {
    /// The text is empty or over [`crate::MAX_TEXT`].
    #[error("a private message is 1 to {max} bytes of text (this one has {len})")]
    TextSize { len: usize, max: usize },
    /// The text holds a control character other than newline and tab ([`crate::text`]).
    #[error(
        "a private message may not contain control characters (found U+{code:04X}); only newline and tab are allowed"
    )]
    ControlChar { code: u32 },
    /// Messages to oneself are pointless.
    #[error("you cannot send a private message to yourself")]
    ToSelf,
    /// Too many messages wait for this recipient, or for all of them.
    #[error("{0}")]
    Backlog(String),
    /// The per-recipient send rate.
    #[error("too many private messages to this person; retry in {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    /// The group does not exist here.
    #[error("no such group")]
    NoGroup,
    /// A group operation this account may not do.
    #[error("{0}")]
    NotAllowed(String),
    /// A group's bounds.
    #[error("{0}")]
    GroupLimit(String),
}

/// Why something from the network was dropped (counted by reason, never shown).
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dropped {
    #[error("malformed")]
    Malformed,
    #[error("sealed to a key this account does not hold")]
    Unsealable,
    #[error("no session decrypts it")]
    Undecryptable,
    #[error("replayed")]
    Replay,
    #[error("the payload names another sender or recipient")]
    Misaddressed,
    #[error("the sender's key bundle is unknown or invalid")]
    NoBundle,
    #[error("held messages are over their bound")]
    HeldFull,
    #[error("from a blocked account")]
    Blocked,
    #[error("a group operation by a non-member or non-creator")]
    NotMember,
    #[error("an acknowledgement of messages never sent")]
    BadAck,
    #[error("pushed out of the full queue of items waiting for their sender's key bundle")]
    WaitEvicted,
    #[error("the sender's key bundle was not found in time")]
    WaitExpired,
}

impl Dropped {
    /// The reason's name (metrics label).
    pub fn name(self) -> &'static str {
        match self {
            Dropped::Malformed => "malformed",
            Dropped::Unsealable => "unsealable",
            Dropped::Undecryptable => "undecryptable",
            Dropped::Replay => "replay",
            Dropped::Misaddressed => "misaddressed",
            Dropped::NoBundle => "no_bundle",
            Dropped::HeldFull => "held_full",
            Dropped::Blocked => "blocked",
            Dropped::NotMember => "not_member",
            Dropped::BadAck => "bad_ack",
            Dropped::WaitEvicted => "waiting_evicted",
            Dropped::WaitExpired => "waiting_expired",
        }
    }
}
