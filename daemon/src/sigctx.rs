//! Signature contexts: what chatd's keys sign always starts with a prefix naming the purpose,
//! and the verifier puts the same prefix in front, so a signature made for one purpose never
//! verifies as another.
//!
//! The node's key signs chat envelopes ([`ENVELOPE`]; people events travel in them too),
//! DHT records (the overlay's own prefix, `chatd/record/v1\0`, followed by the kind), and the
//! presence epochs' items, which are mailbox records whose value starts with
//! [`PRESENCE_EPOCH_ITEM`]; an account's key signs its profile ([`PROFILE`]) and its records.
//! The TLS handshake's signatures carry TLS 1.3's own context strings, and the certificate's
//! self-signature is over DER, which starts with a SEQUENCE tag, never with `chatd/`.

/// A chat envelope's signed fields (signed by the originating node).
pub const ENVELOPE: &[u8] = b"chatd/v1/envelope\0";
/// An account's profile (signed by the account).
pub const PROFILE: &[u8] = b"chatd/v1/profile\0";
/// The value of a presence epoch's item, before the people event it carries (the record is
/// signed by the publishing node); defined with the presence engine that makes the items.
pub const PRESENCE_EPOCH_ITEM: &[u8] = chat_people::engine::ITEM_CONTEXT;

/// `bytes` behind the `context` prefix: what is signed and verified.
pub fn with(context: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(context.len() + bytes.len());
    out.extend_from_slice(context);
    out.extend_from_slice(bytes);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_are_distinct_and_none_is_a_prefix_of_another() {
        let all = [
            ENVELOPE,
            PROFILE,
            PRESENCE_EPOCH_ITEM,
            b"chatd/record/v1\0".as_slice(),
        ];
        for (i, a) in all.iter().enumerate() {
            assert!(a.ends_with(b"\0"));
            for (j, b) in all.iter().enumerate() {
                if i != j {
                    assert!(!b.starts_with(a), "{a:?} is a prefix of {b:?}");
                }
            }
        }
        assert_eq!(with(PROFILE, b"x"), b"chatd/v1/profile\0x");
    }
}
