//! Signed chat envelopes: the unit every node verifies, stores and forwards.
//!
//! Wire form (CBOR, ciborium): `[signed: bytes, signature: bytes(64)]`, where `signed` is the
//! CBOR encoding of `[2 (version), origin: bytes(32), seq: uint, hlc: uint, kind: uint,
//! room: text, body, nick: text, author: bytes(32)]`; `body` is text for a message (kind 1)
//! and bytes for a people event (kind 2: an account's signed profile or a node-down report,
//! `people/event.rs`); `author` is the public key of the account the node sends for (a node
//! hosts several: its operator's, local Unix users', guests'), absent in people events and in
//! envelopes of the first format. A text message may carry a file reference as a second CBOR
//! item after that array, inside `signed` (`attachment.rs`; older builds read only the first
//! item and see a plain text message). A node can only sign as itself, and a receiver names the
//! author only if that account's verified profile says this node hosts it. The ed25519 signature covers exactly the `signed`
//! bytes, and the message id is `blake3(signed)`, so re-encoding the outer array cannot change
//! a message's identity. Every limit is checked before anything is trusted: the whole frame is
//! at most [`MAX_WIRE_BYTES`], the text at most [`MAX_TEXT_BYTES`], the room a valid [`Room`],
//! the nickname empty or a valid [`Nickname`]. A text is signed only without control
//! characters (but newline and tab); one from the network that has them (a modified node's) is
//! kept and shown with each replaced by U+FFFD, and forwarded unchanged.
//!
//! Decompressing an origin's public key costs about a fifth of a signature check; a receiver
//! that opens many messages keeps the keys of recently verified origins in [`OriginKeys`]
//! (bounded) and decompresses only new ones.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chat_overlay::NodeId;
use ciborium::Value;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use super::attachment::{self, Attachment, AttachmentError};
use super::hlc::Timestamp;
use super::room::Room;
use super::transcript::{self, Transcript};
use crate::nickname::Nickname;

/// Envelope format version: 2 since the signature covers the [`crate::sigctx::ENVELOPE`]
/// context (a node of an older build refuses these as an unknown version, not as forged).
const VERSION: u64 = 2;
/// Longest message text, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 4096;
/// Longest encoded envelope accepted from anywhere.
pub const MAX_WIRE_BYTES: usize = 16 * 1024;

/// A message id: blake3 of the signed envelope bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub [u8; 32]);

impl MessageId {
    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A string that is not a message id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a message id (expected 64 hex digits)")]
pub struct BadMessageId;

impl FromStr for MessageId {
    type Err = BadMessageId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| BadMessageId)?;
        Ok(MessageId(out))
    }
}

/// What a message does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An ordinary text message.
    Text,
    /// A people event (join, leave, away, back, nickname change, node down): the body is the
    /// event's bytes, read by `people::event`.
    People,
    /// A new text for an earlier message of the same author: the body is
    /// `[target: bytes(32), text]`.
    Edit,
    /// The end of an earlier message of the same author and of every edit of it: the body is
    /// `target: bytes(32)`.
    Delete,
    /// A text message that was deleted, as the store keeps it: no text, and the wire form of
    /// the delete instead of its own. Never on the wire.
    Deleted,
}

impl Kind {
    /// The number on the wire and in the store.
    pub fn code(self) -> u64 {
        match self {
            Kind::Text => 1,
            Kind::People => 2,
            Kind::Edit => 3,
            Kind::Delete => 4,
            Kind::Deleted => 5,
        }
    }

    /// The kind for a wire number.
    pub fn from_code(code: u64) -> Option<Kind> {
        match code {
            1 => Some(Kind::Text),
            2 => Some(Kind::People),
            3 => Some(Kind::Edit),
            4 => Some(Kind::Delete),
            5 => Some(Kind::Deleted),
            _ => None,
        }
    }

    /// The kind for a number on the wire (where [`Kind::Deleted`] never is).
    pub fn from_wire(code: u64) -> Option<Kind> {
        Kind::from_code(code).filter(|k| *k != Kind::Deleted)
    }
}

/// Longest people event body, in bytes.
pub const MAX_EVENT_BYTES: usize = 14 * 1024;

/// A verified chat message (or one this node just signed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatMessage {
    /// blake3 of the signed bytes.
    pub id: MessageId,
    /// The origin's public key.
    pub origin: VerifyingKey,
    /// The origin's sequence number (1, 2, …).
    pub seq: u64,
    /// The origin's hybrid logical timestamp.
    pub hlc: Timestamp,
    /// What the message does.
    pub kind: Kind,
    /// The room.
    pub room: Room,
    /// The text (of a people event: the line shown for it, filled in by this node; of an
    /// edit: the new text; of a text message read from the store: its newest edit's text).
    pub text: String,
    /// The message an edit or delete changes.
    pub target: Option<MessageId>,
    /// When a stored text message was last edited (the winning edit's timestamp).
    pub edited: Option<Timestamp>,
    /// A people event's bytes (empty for a text message).
    pub event: Vec<u8>,
    /// The account the message is from (`None`: the node's own, in the first format).
    pub author: Option<[u8; 32]>,
    /// The origin's nickname when it sent the message.
    pub nick: Option<Nickname>,
    /// A text message's file reference (`attachment.rs`), checked; `None` for any other kind.
    pub attachment: Option<Attachment>,
    /// A voice message's transcript item (`transcript.rs`), checked; `None` for any other
    /// kind and for text messages without one.
    pub transcript: Option<Transcript>,
    /// The wire form, to forward unchanged.
    pub wire: Vec<u8>,
}

impl ChatMessage {
    /// The origin's node id.
    pub fn from_id(&self) -> NodeId {
        crate::identity::node_id(&self.origin)
    }
}

/// Why bytes are not a valid envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Larger than [`MAX_WIRE_BYTES`].
    #[error("envelope of {0} bytes exceeds the limit of {MAX_WIRE_BYTES}")]
    Oversized(usize),
    /// Not the expected CBOR structure, or a field out of range.
    #[error("malformed envelope: {0}")]
    Malformed(&'static str),
    /// The signature does not verify with the origin key.
    #[error("bad signature")]
    BadSignature,
}

/// Why a local message cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Empty or only whitespace.
    #[error("must not be empty or only whitespace")]
    Empty,
    /// Longer than [`MAX_TEXT_BYTES`].
    #[error("is {0} bytes; at most {MAX_TEXT_BYTES} are allowed")]
    TooLong(usize),
    /// Holds a control character other than newline and tab ([`chat_dm::text`]).
    #[error("contains the control character U+{0:04X}; only newline and tab are allowed")]
    Control(u32),
    /// A file reference that breaks a bound.
    #[error("attachment: {0}")]
    Attachment(#[from] AttachmentError),
    /// The whole envelope would be over [`MAX_WIRE_BYTES`].
    #[error("the message would be {0} bytes; at most {MAX_WIRE_BYTES} are allowed")]
    Oversized(usize),
}

/// Checks a text before it is signed: its size ([`check_size`]) and its characters (no
/// control characters but newline and tab, the rule of [`chat_dm::text`]).
pub fn check_text(text: &str) -> Result<(), TextError> {
    check_size(text)?;
    if let Some(c) = chat_dm::text::first_forbidden(text) {
        return Err(TextError::Control(u32::from(c)));
    }
    Ok(())
}

/// Checks a text's size only: not empty or only whitespace, at most [`MAX_TEXT_BYTES`]. A
/// text from the network is checked so and then sanitised (its envelope is signed, so it
/// cannot be changed on the wire and is forwarded as it came).
pub fn check_size(text: &str) -> Result<(), TextError> {
    if text.trim().is_empty() {
        return Err(TextError::Empty);
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(TextError::TooLong(text.len()));
    }
    Ok(())
}

/// A text from the network as it is kept and shown: each control character other than
/// newline and tab replaced by U+FFFD.
fn sanitized(text: String) -> String {
    match chat_dm::text::sanitize(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(clean) => clean,
    }
}

/// The fields of a message to sign.
#[derive(Debug, Clone)]
pub struct Draft<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Timestamp.
    pub hlc: Timestamp,
    /// Room.
    pub room: &'a Room,
    /// Text (checked with [`check_text`]).
    pub text: &'a str,
    /// A people event's bytes: when set, the envelope is of kind [`Kind::People`] and
    /// `text` is only kept locally.
    pub event: Option<&'a [u8]>,
    /// The account the message is from.
    pub author: Option<[u8; 32]>,
    /// Nickname.
    pub nick: Option<&'a Nickname>,
    /// When set, the envelope edits (kind [`Kind::Edit`], `text` the new text) or deletes
    /// (kind [`Kind::Delete`], `text` unused) this earlier message.
    pub change: Option<Change>,
}

/// What an edit or delete envelope does to its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Gives the message the draft's text.
    Edit(MessageId),
    /// Removes the message.
    Delete(MessageId),
}

/// Signs a draft with `key`.
pub fn sign(key: &SigningKey, draft: &Draft<'_>) -> Result<ChatMessage, TextError> {
    sign_with(key, draft, None)
}

/// Signs a draft with `key`, a text message carrying `attachment` (ignored for other kinds).
pub fn sign_with(
    key: &SigningKey,
    draft: &Draft<'_>,
    attachment: Option<&Attachment>,
) -> Result<ChatMessage, TextError> {
    sign_voice(key, draft, attachment, None)
}

/// Signs a draft with `key`, a text message carrying `attachment` and a voice message's
/// `transcript` (`transcript.rs`; both ignored for other kinds).
pub fn sign_voice(
    key: &SigningKey,
    draft: &Draft<'_>,
    attachment: Option<&Attachment>,
    voice: Option<&Transcript>,
) -> Result<ChatMessage, TextError> {
    let (kind, body) = match (draft.event, draft.change) {
        (Some(event), _) if event.is_empty() || event.len() > MAX_EVENT_BYTES => {
            return Err(TextError::TooLong(event.len()));
        }
        (Some(event), _) => (Kind::People, Value::Bytes(event.to_vec())),
        (None, Some(Change::Edit(target))) => {
            check_text(draft.text)?;
            let body = vec![
                Value::Bytes(target.0.to_vec()),
                Value::Text(draft.text.to_owned()),
            ];
            (Kind::Edit, Value::Array(body))
        }
        (None, Some(Change::Delete(target))) => (Kind::Delete, Value::Bytes(target.0.to_vec())),
        (None, None) => {
            check_text(draft.text)?;
            (Kind::Text, Value::Text(draft.text.to_owned()))
        }
    };
    let text = match kind {
        Kind::Delete => "",
        _ => draft.text,
    };
    let target = match draft.change {
        Some(Change::Edit(t) | Change::Delete(t)) if draft.event.is_none() => Some(t),
        _ => None,
    };
    let origin = key.verifying_key();
    let mut fields = vec![
        Value::from(VERSION),
        Value::Bytes(origin.as_bytes().to_vec()),
        Value::from(draft.seq),
        Value::from(draft.hlc.0),
        Value::from(kind.code()),
        Value::Text(draft.room.as_str().to_owned()),
        body,
        Value::Text(draft.nick.map(|n| n.to_string()).unwrap_or_default()),
    ];
    if let Some(author) = draft.author {
        fields.push(Value::Bytes(author.to_vec()));
    }
    let signed_value = Value::Array(fields);
    let mut signed = to_vec(&signed_value);
    let attachment = match attachment {
        Some(a) if kind == Kind::Text => {
            attachment::check(a)?;
            signed.extend(to_vec(&attachment::encode(a)));
            Some(a.clone())
        }
        _ => None,
    };
    let transcript = match voice {
        Some(t) if kind == Kind::Text => {
            if attachment.is_none() {
                signed.extend(to_vec(&Value::Null));
            }
            let item = transcript::encode_bounded(t);
            let kept: Value = ciborium::from_reader(item.as_slice()).unwrap_or(Value::Null);
            signed.extend(item);
            transcript::decode(kept)
        }
        _ => None,
    };
    let signature = key.sign(&crate::sigctx::with(crate::sigctx::ENVELOPE, &signed));
    let wire = to_vec(&Value::Array(vec![
        Value::Bytes(signed.clone()),
        Value::Bytes(signature.to_bytes().to_vec()),
    ]));
    if wire.len() > MAX_WIRE_BYTES {
        return Err(TextError::Oversized(wire.len()));
    }
    Ok(ChatMessage {
        id: MessageId(blake3::hash(&signed).into()),
        origin,
        seq: draft.seq,
        hlc: draft.hlc,
        kind,
        room: draft.room.clone(),
        text: text.to_owned(),
        target,
        edited: None,
        event: draft.event.map(<[u8]>::to_vec).unwrap_or_default(),
        author: draft.author,
        nick: draft.nick.cloned(),
        attachment,
        transcript,
        wire,
    })
}

fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = ciborium::into_writer(value, &mut out);
    out
}

/// Origin keys [`OriginKeys`] holds at most; past it the one that verified least recently is
/// forgotten.
pub const MAX_ORIGIN_KEYS: usize = 512;

/// Decompressed public keys of origins whose messages verified, by their 32 bytes.
///
/// Only a key that verified a signature is remembered, so garbage cannot fill the cache; a
/// flood of validly signed messages from fresh keys only costs the decompressions it saves.
#[derive(Debug, Default)]
pub struct OriginKeys {
    keys: HashMap<[u8; 32], (VerifyingKey, u64)>,
    /// Counts verifications: each key carries the count at its latest, to forget the least
    /// recently used one.
    tick: u64,
}

impl OriginKeys {
    /// The key for `bytes`: remembered, or decompressed (not remembered: see
    /// [`OriginKeys::remember`]).
    fn key(&self, bytes: &[u8; 32]) -> Option<VerifyingKey> {
        match self.keys.get(bytes) {
            Some((key, _)) => Some(*key),
            None => VerifyingKey::from_bytes(bytes).ok(),
        }
    }

    /// Remembers `key`, which just verified a signature.
    fn remember(&mut self, key: VerifyingKey) {
        self.tick += 1;
        if let Some((_, used)) = self.keys.get_mut(key.as_bytes()) {
            *used = self.tick;
            return;
        }
        if self.keys.len() >= MAX_ORIGIN_KEYS {
            // Linear, but only when a new origin arrives at a full cache.
            let oldest = self
                .keys
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(b, _)| *b);
            if let Some(oldest) = oldest {
                self.keys.remove(&oldest);
            }
        }
        self.keys.insert(key.to_bytes(), (key, self.tick));
    }

    /// Keys remembered.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Decodes and verifies an envelope from anywhere (peer, store).
pub fn open(wire: &[u8]) -> Result<ChatMessage, EnvelopeError> {
    open_with(wire, &mut OriginKeys::default())
}

/// [`open`], taking the origin's key from `keys` when it is there and remembering it there
/// once the signature verifies.
pub fn open_with(wire: &[u8], keys: &mut OriginKeys) -> Result<ChatMessage, EnvelopeError> {
    decode_with(wire, keys)?.check(keys)
}

/// An envelope decoded and checked in everything but its signature ([`decode_with`]): it must
/// not be trusted until [`Unchecked::check`] or a batch check (`chat/batch.rs`) passes.
#[derive(Debug)]
pub struct Unchecked {
    message: ChatMessage,
    /// The signed bytes with their context, as the signature covers them.
    signed: Vec<u8>,
    sig: Signature,
}

impl Unchecked {
    /// The origin's node id, as the envelope claims it.
    pub fn from_id(&self) -> NodeId {
        self.message.from_id()
    }

    /// The sequence number the envelope claims.
    pub fn seq(&self) -> u64 {
        self.message.seq
    }

    /// The wire form.
    pub fn wire(&self) -> &[u8] {
        &self.message.wire
    }

    /// What a batch check needs: the signed bytes, the signature, the origin key.
    pub(super) fn parts(&self) -> (&[u8], &Signature, &VerifyingKey) {
        (&self.signed, &self.sig, &self.message.origin)
    }

    /// The message, trusted because a batch check (`chat/batch.rs`) covered its signature;
    /// its key is remembered.
    pub(super) fn verified(self, keys: &mut OriginKeys) -> ChatMessage {
        keys.remember(self.message.origin);
        self.message
    }

    /// Checks the signature alone ([`check_signature`]) and returns the message; its key is
    /// remembered.
    pub fn check(self, keys: &mut OriginKeys) -> Result<ChatMessage, EnvelopeError> {
        check_signature(&self.message.origin, &self.signed, &self.sig)?;
        Ok(self.verified(keys))
    }

    /// [`Unchecked::check`], returning a refused envelope's wire form (its only error is a bad
    /// signature).
    pub(super) fn check_or_wire(self, keys: &mut OriginKeys) -> Result<ChatMessage, Vec<u8>> {
        match check_signature(&self.message.origin, &self.signed, &self.sig) {
            Ok(()) => Ok(self.verified(keys)),
            Err(_) => Err(self.message.wire),
        }
    }
}

/// Decodes an envelope and checks every field and limit, but not its signature.
pub fn decode_with(wire: &[u8], keys: &OriginKeys) -> Result<Unchecked, EnvelopeError> {
    use EnvelopeError::Malformed;
    if wire.len() > MAX_WIRE_BYTES {
        return Err(EnvelopeError::Oversized(wire.len()));
    }
    let outer: Value = ciborium::from_reader(wire).map_err(|_| Malformed("not CBOR"))?;
    let [signed, sig] = array::<2>(outer).ok_or(Malformed("expected [signed, signature]"))?;
    let signed = bytes(signed).ok_or(Malformed("signed part is not bytes"))?;
    let sig: [u8; 64] = bytes(sig)
        .and_then(|b| b.try_into().ok())
        .ok_or(Malformed("signature is not 64 bytes"))?;
    let (inner, attachment, voice) =
        transcript::split(&signed).ok_or(Malformed("signed part is not CBOR"))?;
    let (fields, author) =
        split_author(inner).ok_or(Malformed("expected 8 or 9 envelope fields"))?;
    let author = match author {
        None => None,
        Some(a) => Some(
            bytes(a)
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or(Malformed("author is not a 32-byte key"))?,
        ),
    };
    let [version, origin, seq, hlc, kind, room, body, nick] = fields;
    if uint(version) != Some(VERSION) {
        return Err(Malformed("unknown envelope version"));
    }
    let origin: [u8; 32] = bytes(origin)
        .and_then(|b| b.try_into().ok())
        .ok_or(Malformed("origin is not a 32-byte key"))?;
    let origin = keys.key(&origin).ok_or(Malformed("origin is not a key"))?;
    let in_range = |v: Option<u64>| v.filter(|n| (1..=i64::MAX as u64).contains(n));
    let seq = in_range(uint(seq)).ok_or(Malformed("sequence number out of range"))?;
    let hlc = in_range(uint(hlc)).ok_or(Malformed("timestamp out of range"))?;
    let kind = uint(kind)
        .and_then(Kind::from_wire)
        .ok_or(Malformed("unknown kind"))?;
    let room: Room = text(room)
        .and_then(|r| r.parse().ok())
        .ok_or(Malformed("invalid room"))?;
    let (body, event, target) = match kind {
        Kind::Text => {
            let body = text(body).ok_or(Malformed("body is not text"))?;
            check_size(&body).map_err(|_| Malformed("empty or oversized text"))?;
            (sanitized(body), Vec::new(), None)
        }
        Kind::People => {
            let event = bytes(body).ok_or(Malformed("event is not bytes"))?;
            if event.is_empty() || event.len() > MAX_EVENT_BYTES {
                return Err(Malformed("empty or oversized event"));
            }
            (String::new(), event, None)
        }
        Kind::Edit => {
            let [target, body] = array::<2>(body).ok_or(Malformed("edit is not [target, text]"))?;
            let target = message_id(target).ok_or(Malformed("edit target is not an id"))?;
            let body = text(body).ok_or(Malformed("edit text is not text"))?;
            check_size(&body).map_err(|_| Malformed("empty or oversized edit text"))?;
            (sanitized(body), Vec::new(), Some(target))
        }
        Kind::Delete => {
            let target = message_id(body).ok_or(Malformed("delete target is not an id"))?;
            (String::new(), Vec::new(), Some(target))
        }
        Kind::Deleted => return Err(Malformed("unknown kind")),
    };
    let nick = match text(nick).ok_or(Malformed("nickname is not text"))? {
        n if n.is_empty() => None,
        n => Some(n.parse().map_err(|_| Malformed("invalid nickname"))?),
    };
    let message = ChatMessage {
        id: MessageId(blake3::hash(&signed).into()),
        origin,
        seq,
        hlc: Timestamp(hlc),
        kind,
        room,
        text: body,
        target,
        edited: None,
        event,
        author,
        nick,
        attachment: attachment.filter(|_| kind == Kind::Text),
        transcript: voice.filter(|_| kind == Kind::Text),
        wire: wire.to_vec(),
    };
    Ok(Unchecked {
        message,
        signed: crate::sigctx::with(crate::sigctx::ENVELOPE, &signed),
        sig: Signature::from_bytes(&sig),
    })
}

/// Verifies an envelope's signature over `signed` (its context, then the signed part): RFC
/// 8032's check (ed25519-dalek's `verify`: the scalar `s` canonical, `R` recomputed and compared byte for byte) by an origin key that is not of
/// small order. `verify_strict` also refuses a signature whose `R` is of small order, which
/// takes decompressing `R` — a sixth of each check. For a key of large order such a signature
/// verifies only if `s = k·a` (its large-order part vanishes): only the holder of the secret
/// `a` can make one, and it could sign anything anyway, so the refusal protects nothing here
/// (docs/security.md, "Signatures").
fn check_signature(
    origin: &VerifyingKey,
    signed: &[u8],
    sig: &Signature,
) -> Result<(), EnvelopeError> {
    if origin.is_weak() {
        return Err(EnvelopeError::BadSignature);
    }
    origin
        .verify(signed, sig)
        .map_err(|_| EnvelopeError::BadSignature)
}

fn message_id(v: Value) -> Option<MessageId> {
    Some(MessageId(bytes(v)?.try_into().ok()?))
}

/// The eight fields every envelope has, and the author where there is one.
fn split_author(inner: Value) -> Option<([Value; 8], Option<Value>)> {
    let Value::Array(mut items) = inner else {
        return None;
    };
    let author = match items.len() {
        8 => None,
        9 => items.pop(),
        _ => return None,
    };
    Some((items.try_into().ok()?, author))
}

/// What a stored envelope carries beyond the store's columns, read without checking the
/// signature again (it was verified before it was stored).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extra {
    /// A people event's bytes (empty for any other kind).
    pub event: Vec<u8>,
    /// The author, where the envelope names one.
    pub author: Option<[u8; 32]>,
    /// An edit's or delete's target.
    pub target: Option<MessageId>,
    /// A text message's file reference.
    pub attachment: Option<Attachment>,
    /// A voice message's transcript item.
    pub transcript: Option<Transcript>,
}

/// The [`Extra`] of a stored envelope.
pub fn stored_extra(wire: &[u8]) -> Option<Extra> {
    let outer: Value = ciborium::from_reader(wire).ok()?;
    let [signed, _] = array::<2>(outer)?;
    let (inner, attachment, voice) = transcript::split(&bytes(signed)?)?;
    let ([_, _, _, _, kind, _, body, _], author) = split_author(inner)?;
    let kind = uint(kind).and_then(Kind::from_wire)?;
    let attachment = attachment.filter(|_| kind == Kind::Text);
    let transcript = voice.filter(|_| matches!(kind, Kind::Text | Kind::Deleted));
    let (event, target) = match kind {
        Kind::People => (bytes(body)?, None),
        Kind::Text | Kind::Deleted => (Vec::new(), None),
        Kind::Edit => (
            Vec::new(),
            Some(message_id(array::<2>(body)?.into_iter().next()?)?),
        ),
        Kind::Delete => (Vec::new(), Some(message_id(body)?)),
    };
    let author = match author {
        Some(a) => Some(bytes(a)?.try_into().ok()?),
        None => None,
    };
    Some(Extra {
        event,
        author,
        target,
        attachment,
        transcript,
    })
}

fn array<const N: usize>(v: Value) -> Option<[Value; N]> {
    match v {
        Value::Array(items) => items.try_into().ok(),
        _ => None,
    }
}

fn bytes(v: Value) -> Option<Vec<u8>> {
    match v {
        Value::Bytes(b) => Some(b),
        _ => None,
    }
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::Text(t) => Some(t),
        _ => None,
    }
}

fn uint(v: Value) -> Option<u64> {
    match v {
        Value::Integer(i) => u64::try_from(i128::from(i)).ok(),
        _ => None,
    }
}

#[cfg(test)]
#[path = "envelope_tests.rs"]
mod tests;
