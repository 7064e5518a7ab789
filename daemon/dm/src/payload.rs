//! What an Olm message carries between two accounts: [`Payload`], CBOR-encoded. The Olm
//! layer authenticates it as coming from the sender's session; the engine also checks that it
//! names that sender and this recipient, so a ciphertext cannot be re-wrapped under another
//! sender's name.

use serde::{Deserialize, Serialize};

use crate::group::SignedGroup;

/// Largest encoded payload accepted.
pub const MAX_BYTES: usize = 3400;
/// Largest file reference a text may carry; with it, the text and the reference together
/// stay within [`crate::MAX_TEXT`].
pub const MAX_FILE_REF: usize = 1024;

/// Which conversation a text belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Conv {
    /// The two accounts' private conversation.
    Direct,
    /// A group (its id).
    Group(#[serde(with = "serde_bytes")] [u8; 16]),
}

/// What a payload says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// A message. Its id is [`crate::message_id`] of the sender and `nonce` (the same for
    /// every member of a group).
    Text {
        conv: Conv,
        #[serde(with = "serde_bytes")]
        nonce: [u8; 16],
        text: String,
        /// A private file's reference (opaque here: the daemon's `files::private` format,
        /// at most [`MAX_FILE_REF`] bytes), or none. Absent from the encoding when none, and
        /// ignored by builds that do not know it: they show the text (docs/protocol.md,
        /// "Private files").
        #[serde(default, skip_serializing_if = "Option::is_none", with = "serde_bytes")]
        file: Option<Vec<u8>>,
    },
    /// Everything of the stream up to `upto` was received and stored (cumulative). Not
    /// itself numbered or acknowledged.
    Ack { upto: u64 },
    /// A group's membership, signed by its admin.
    Group(SignedGroup),
    /// The sender edits (`text`) or deletes (`None`) its own message `id` of `conv`.
    Change {
        conv: Conv,
        #[serde(with = "serde_bytes")]
        id: [u8; 16],
        text: Option<String>,
    },
    /// The sender leaves the group.
    Leave {
        #[serde(with = "serde_bytes")]
        group: [u8; 16],
    },
}

/// One numbered item of the stream from `from` to `to` (an [`Body::Ack`] has `seq` 0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    #[serde(with = "serde_bytes")]
    pub from: [u8; 32],
    #[serde(with = "serde_bytes")]
    pub to: [u8; 32],
    /// Position in the stream (from 1).
    pub seq: u64,
    /// The sender's lowest unacknowledged position: everything below was delivered or has
    /// expired, so the recipient need not wait for it.
    pub floor: u64,
    /// When the sender sent it (Unix ms, the sender's clock).
    pub sent_ms: u64,
    pub body: Body,
}

impl Payload {
    /// Encodes it.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing CBOR into a Vec cannot fail.
        ciborium::into_writer(self, &mut out).expect("CBOR into a Vec");
        out
    }

    /// Decodes one (bounded).
    pub fn decode(bytes: &[u8]) -> Option<Payload> {
        if bytes.len() > MAX_BYTES {
            return None;
        }
        ciborium::from_reader(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text body as builds before private files encoded it.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum OldBody {
        Text {
            conv: Conv,
            #[serde(with = "serde_bytes")]
            nonce: [u8; 16],
            text: String,
        },
    }

    fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(v, &mut out).expect("CBOR into a Vec");
        out
    }

    #[test]
    fn a_text_without_a_file_encodes_as_before() {
        let new = Body::Text {
            conv: Conv::Direct,
            nonce: [4; 16],
            text: "hi".into(),
            file: None,
        };
        let old = OldBody::Text {
            conv: Conv::Direct,
            nonce: [4; 16],
            text: "hi".into(),
        };
        assert_eq!(cbor(&new), cbor(&old), "no new bytes without a file");
        // An old body reads as a text without a file.
        let read: Body = ciborium::from_reader(&cbor(&old)[..]).expect("decodes");
        assert_eq!(read, new);
    }

    #[test]
    fn an_older_build_reads_the_text_of_a_file_message() {
        let new = Body::Text {
            conv: Conv::Group([9; 16]),
            nonce: [4; 16],
            text: "📎 report.pdf".into(),
            file: Some(vec![7; 300]),
        };
        let old: OldBody = ciborium::from_reader(&cbor(&new)[..]).expect("an old build decodes");
        assert_eq!(
            old,
            OldBody::Text {
                conv: Conv::Group([9; 16]),
                nonce: [4; 16],
                text: "📎 report.pdf".into(),
            }
        );
        let back: Body = ciborium::from_reader(&cbor(&new)[..]).expect("decodes");
        assert_eq!(back, new);
    }
}
