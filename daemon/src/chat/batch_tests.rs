//! Unit tests for [`super`]: a batch of good signatures passes in one check, a forged one
//! among them is found by the single checks that follow and only it is refused, and encodings
//! a batch would read differently from a single check are kept out of batches.

use ed25519_dalek::SigningKey;

use super::*;
use crate::chat::envelope::{self, Draft};
use crate::chat::hlc::Timestamp;
use crate::chat::room::Room;
use crate::chat::{Chat, MessageId};

/// Message `i`, signed by key `i`.
fn signed(i: u8) -> ChatMessage {
    let room = Room::lobby();
    let text = format!("message {i}");
    envelope::sign(
        &SigningKey::from_bytes(&[i; 32]),
        &Draft {
            seq: u64::from(i),
            hlc: Timestamp::new(1_700_000_000_000, 0),
            room: &room,
            text: &text,
            event: None,
            author: None,
            nick: None,
            change: None,
        },
    )
    .expect("signs")
}

/// `msg`'s wire form with one bit of its signature's `s` flipped (the signature is the last
/// 64 bytes; this byte is in the middle of `s`, so `s` stays canonical).
fn forged(msg: &ChatMessage) -> Vec<u8> {
    let mut wire = msg.wire.clone();
    let at = wire.len() - 16;
    wire[at] ^= 1;
    wire
}

fn unchecked(wires: &[Vec<u8>], keys: &OriginKeys) -> Vec<Unchecked> {
    wires
        .iter()
        .map(|w| envelope::decode_with(w, keys).expect("decodes"))
        .collect()
}

#[test]
fn good_signatures_pass_as_one_batch_and_their_keys_are_remembered() {
    let msgs: Vec<ChatMessage> = (1..=8).map(signed).collect();
    let wires: Vec<Vec<u8>> = msgs.iter().map(|m| m.wire.clone()).collect();
    let mut keys = OriginKeys::default();
    let batch = unchecked(&wires, &keys);
    assert!(
        batchable(&batch) && verify(&batch),
        "the fast path is taken"
    );
    let results = check(batch, &mut keys);
    assert_eq!(results, msgs.into_iter().map(Ok).collect::<Vec<_>>());
    assert_eq!(keys.len(), 8);
}

#[test]
fn a_forged_envelope_among_good_ones_is_refused_alone() {
    for at in [0, 4, 8] {
        let msgs: Vec<ChatMessage> = (1..=9).map(signed).collect();
        let mut wires: Vec<Vec<u8>> = msgs.iter().map(|m| m.wire.clone()).collect();
        wires[at] = forged(&msgs[at]);
        assert_eq!(
            envelope::open(&wires[at]),
            Err(envelope::EnvelopeError::BadSignature)
        );
        let mut keys = OriginKeys::default();
        let batch = unchecked(&wires, &keys);
        assert!(!verify(&batch), "the batch fails as a whole");
        let results = check(batch, &mut keys);
        for (i, (result, msg)) in results.into_iter().zip(&msgs).enumerate() {
            if i == at {
                assert_eq!(result, Err(wires[at].clone()), "the forged one is refused");
            } else {
                assert_eq!(result, Ok(msg.clone()), "good envelope {i} is kept");
            }
        }
        assert_eq!(keys.len(), 8, "the forged envelope's key is not remembered");
    }
}

#[test]
fn a_small_batch_is_checked_one_by_one_with_the_same_verdicts() {
    let msgs: Vec<ChatMessage> = (1..=2).map(signed).collect();
    let wires = vec![msgs[0].wire.clone(), forged(&msgs[1])];
    let mut keys = OriginKeys::default();
    let results = check(unchecked(&wires, &keys), &mut keys);
    assert_eq!(results, vec![Ok(msgs[0].clone()), Err(wires[1].clone())]);
}

/// `msg` re-signed with the identity point as origin key, `R` = identity and `s` = 0: RFC
/// 8032's equation holds for any message with this key; only the small-order test refuses it.
fn with_identity_key(msg: &ChatMessage) -> Vec<u8> {
    use ciborium::Value;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let outer: Value = ciborium::from_reader(msg.wire.as_slice()).expect("cbor");
    let Value::Array(outer) = outer else {
        panic!("an envelope is an array")
    };
    let Some(Value::Bytes(signed)) = outer.first() else {
        panic!("the signed part is bytes")
    };
    let inner: Value = ciborium::from_reader(signed.as_slice()).expect("cbor");
    let Value::Array(mut fields) = inner else {
        panic!("the signed part is an array")
    };
    fields[1] = Value::Bytes(identity.to_vec());
    let mut signed = Vec::new();
    ciborium::into_writer(&Value::Array(fields), &mut signed).expect("encodes");
    let mut sig = identity.to_vec();
    sig.extend_from_slice(&[0; 32]);
    let mut wire = Vec::new();
    ciborium::into_writer(
        &Value::Array(vec![Value::Bytes(signed), Value::Bytes(sig)]),
        &mut wire,
    )
    .expect("encodes");
    wire
}

#[test]
fn a_batch_with_a_key_of_small_order_is_checked_one_by_one() {
    let msgs: Vec<ChatMessage> = (1..=5).map(signed).collect();
    let mut wires: Vec<Vec<u8>> = msgs.iter().map(|m| m.wire.clone()).collect();
    wires[2] = with_identity_key(&msgs[2]);
    let mut keys = OriginKeys::default();
    let batch = unchecked(&wires, &keys);
    assert!(
        verify(&batch),
        "the batch equation alone accepts the forgery"
    );
    assert!(!batchable(&batch), "so such a batch is checked one by one");
    let results = check(batch, &mut keys);
    for (i, (result, msg)) in results.into_iter().zip(&msgs).enumerate() {
        if i == 2 {
            assert_eq!(result, Err(wires[2].clone()));
        } else {
            assert_eq!(result, Ok(msg.clone()));
        }
    }
}

#[test]
fn only_canonical_encodings_of_r_are_batched() {
    let p_minus_1 = {
        let mut b = [0xffu8; 32];
        b[0] = 0xec;
        b[31] = 0x7f;
        b
    };
    let p = {
        let mut b = p_minus_1;
        b[0] = 0xed;
        b
    };
    let one = {
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    };
    let signed_one = {
        let mut b = one;
        b[31] |= 0x80;
        b
    };
    let signed_p_minus_1 = {
        let mut b = p_minus_1;
        b[31] |= 0x80;
        b
    };
    let y_is_p_plus_1 = {
        let mut b = p;
        b[0] = 0xee;
        b
    };
    assert!(canonical_r(&one));
    assert!(canonical_r(&p_minus_1));
    assert!(canonical_r(&[0; 32]));
    assert!(!canonical_r(&p), "y = p");
    assert!(!canonical_r(&y_is_p_plus_1), "y = p + 1, which reads as 1");
    assert!(!canonical_r(&[0xff; 32]), "y = 2^255 - 1, sign set");
    assert!(!canonical_r(&signed_one), "x = 0 with the sign bit");
    assert!(!canonical_r(&signed_p_minus_1), "x = 0 with the sign bit");
    for i in 1..=16 {
        let msg = signed(i);
        let keys = OriginKeys::default();
        let u = envelope::decode_with(&msg.wire, &keys).expect("decodes");
        assert!(canonical_r(u.parts().1.r_bytes()), "a real signature's R");
    }
}

/// Nine envelopes through the ring's inbox the way the driver hands them over: judged as one
/// batch first, then validated and delivered one by one. `forge` names the one whose
/// signature is broken, if any. Returns each validation's verdict and the receiving core.
fn through_the_inbox(forge: Option<usize>) -> (Vec<bool>, crate::chat::Chat, Vec<ChatMessage>) {
    use crate::overlay::Inbox;
    let msgs: Vec<ChatMessage> = (1..=9).map(signed).collect();
    let envs: Vec<chat_overlay::broadcast::Envelope> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| chat_overlay::broadcast::Envelope {
            origin: m.from_id(),
            seq: m.seq,
            payload: if forge == Some(i) {
                forged(m)
            } else {
                m.wire.clone()
            },
        })
        .collect();
    let carol = crate::chat::Chat::in_memory(
        SigningKey::from_bytes(&[100; 32]),
        None,
        &crate::config::ChatConfig::default(),
    )
    .expect("chat core");
    let inbox = crate::chat::RingInbox::new(carol.clone());
    inbox.prevalidate(&envs.iter().collect::<Vec<_>>());
    let verdicts = envs
        .iter()
        .map(|env| {
            let valid = inbox.validate(env);
            if valid {
                inbox.deliver(env);
            }
            valid
        })
        .collect();
    (verdicts, carol, msgs)
}

/// The ids of the messages `chat`'s history shows.
fn shown(chat: &Chat) -> Vec<MessageId> {
    chat.after(0, None, 20)
        .expect("history")
        .into_iter()
        .map(|s| s.message.id)
        .collect()
}

#[test]
fn the_inbox_delivers_a_good_batch_from_its_one_check() {
    use std::sync::atomic::Ordering;
    let (verdicts, carol, msgs) = through_the_inbox(None);
    assert_eq!(verdicts, vec![true; 9]);
    assert_eq!(carol.counters().received.load(Ordering::Relaxed), 9);
    let shown = shown(&carol);
    assert_eq!(shown.len(), 9);
    assert!(msgs.iter().all(|m| shown.contains(&m.id)));
}

#[test]
fn the_inbox_never_forwards_or_shows_a_forged_envelope_of_a_batch() {
    use std::sync::atomic::Ordering;
    for at in [0, 5, 8] {
        let (verdicts, carol, msgs) = through_the_inbox(Some(at));
        let expected: Vec<bool> = (0..9).map(|i| i != at).collect();
        // The overlay forwards and delivers only what `validate` accepts.
        assert_eq!(verdicts, expected, "forged envelope {at}");
        assert_eq!(carol.counters().received.load(Ordering::Relaxed), 8);
        let shown = shown(&carol);
        assert_eq!(shown.len(), 8);
        assert!(
            !shown.contains(&msgs[at].id),
            "the forged message is not shown"
        );
    }
}
