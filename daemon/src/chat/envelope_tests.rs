//! Unit tests for [`super`]: round trip, tampering, limits and malformed input.

use super::*;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[4; 32])
}

fn draft<'a>(room: &'a Room, text: &'a str, nick: Option<&'a Nickname>) -> Draft<'a> {
    Draft {
        seq: 1,
        hlc: Timestamp::new(1_700_000_000_000, 0),
        room,
        text,
        event: None,
        author: None,
        nick,
        change: None,
    }
}

#[test]
fn signed_messages_open_to_the_same_message() {
    let room = Room::lobby();
    let nick: Nickname = "alice".parse().expect("nick");
    let msg = sign(&key(), &draft(&room, "hello", Some(&nick))).expect("signs");
    let opened = open(&msg.wire).expect("opens");
    assert_eq!(opened, msg);
    assert_eq!(
        opened.from_id(),
        crate::identity::node_id(&key().verifying_key())
    );
    assert_eq!(opened.id.to_hex().parse::<MessageId>(), Ok(opened.id));
}

#[test]
fn any_flipped_bit_is_refused() {
    let room = Room::lobby();
    let msg = sign(&key(), &draft(&room, "hello", None)).expect("signs");
    for i in 0..msg.wire.len() {
        for bit in 0..8 {
            let mut bad = msg.wire.clone();
            bad[i] ^= 1 << bit;
            if let Ok(m) = open(&bad) {
                // A flip in CBOR framing can only re-encode the same content.
                assert_eq!(m.id, msg.id, "byte {i} bit {bit} changed the message");
            }
        }
    }
}

#[test]
fn a_signature_from_another_key_is_refused() {
    let room = Room::lobby();
    let msg = sign(&key(), &draft(&room, "hello", None)).expect("signs");
    let forged = resigned(&msg, &SigningKey::from_bytes(&[5; 32]));
    assert_eq!(open(&forged), Err(EnvelopeError::BadSignature));
}

#[test]
fn a_signature_without_the_envelope_context_is_refused() {
    let room = Room::lobby();
    let msg = sign(&key(), &draft(&room, "hello", None)).expect("signs");
    let outer: Value = ciborium::from_reader(msg.wire.as_slice()).expect("cbor");
    let [signed, _] = array::<2>(outer).expect("pair");
    let signed = bytes(signed).expect("bytes");
    // The origin's own key over the same fields, for another purpose (or none): refused.
    for context in [b"".as_slice(), crate::sigctx::PROFILE, b"chatd/record/v1\0"] {
        let wire = to_vec(&Value::Array(vec![
            Value::Bytes(signed.clone()),
            Value::Bytes(
                key()
                    .sign(&crate::sigctx::with(context, &signed))
                    .to_bytes()
                    .to_vec(),
            ),
        ]));
        assert_eq!(open(&wire), Err(EnvelopeError::BadSignature));
    }
    assert_eq!(open(&resigned(&msg, &key())).map(|m| m.id), Ok(msg.id));
}

/// What an envelope's signature covers.
fn ctx(signed: &[u8]) -> Vec<u8> {
    crate::sigctx::with(crate::sigctx::ENVELOPE, signed)
}

/// `msg`'s signed part with a signature by `by`.
fn resigned(msg: &ChatMessage, by: &SigningKey) -> Vec<u8> {
    let outer: Value = ciborium::from_reader(msg.wire.as_slice()).expect("cbor");
    let [signed, _] = array::<2>(outer).expect("pair");
    let signed = bytes(signed).expect("bytes");
    to_vec(&Value::Array(vec![
        Value::Bytes(signed.clone()),
        Value::Bytes(by.sign(&ctx(&signed)).to_bytes().to_vec()),
    ]))
}

/// The encoding of the curve's identity point (y = 1): a key of small order.
const IDENTITY: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 1;
    b
};

#[test]
fn a_key_of_small_order_is_refused_even_with_a_signature_that_fits_every_message() {
    // With the identity as key, R = identity and s = 0 satisfy RFC 8032's equation for any
    // message: only the small-order check refuses it.
    let room = Room::lobby();
    let msg = sign(&key(), &draft(&room, "hello", None)).expect("signs");
    let outer: Value = ciborium::from_reader(msg.wire.as_slice()).expect("cbor");
    let [signed, _] = array::<2>(outer).expect("pair");
    let inner: Value =
        ciborium::from_reader(bytes(signed).expect("bytes").as_slice()).expect("cbor");
    let Value::Array(mut fields) = inner else {
        panic!("fields")
    };
    fields[1] = Value::Bytes(IDENTITY.to_vec());
    let signed = to_vec(&Value::Array(fields));
    let mut sig = IDENTITY.to_vec();
    sig.extend_from_slice(&[0; 32]);
    let forged = to_vec(&Value::Array(vec![Value::Bytes(signed), Value::Bytes(sig)]));
    let weak = VerifyingKey::from_bytes(&IDENTITY).expect("decompresses");
    assert!(weak.is_weak());
    assert_eq!(open(&forged), Err(EnvelopeError::BadSignature));
    let mut keys = OriginKeys::default();
    assert_eq!(
        open_with(&forged, &mut keys),
        Err(EnvelopeError::BadSignature)
    );
    assert!(keys.is_empty(), "a refused key is not remembered");
}

#[test]
fn remembered_keys_verify_like_fresh_ones() {
    let room = Room::lobby();
    let mut keys = OriginKeys::default();
    let msg = sign(&key(), &draft(&room, "hello", None)).expect("signs");
    let forged = resigned(&msg, &SigningKey::from_bytes(&[5; 32]));
    // A forgery teaches the cache nothing; a good message is remembered.
    assert_eq!(
        open_with(&forged, &mut keys),
        Err(EnvelopeError::BadSignature)
    );
    assert!(keys.is_empty());
    assert_eq!(open_with(&msg.wire, &mut keys), Ok(msg.clone()));
    assert_eq!(keys.len(), 1);
    // With the key remembered, the forgery is still refused and the message still opens.
    assert_eq!(
        open_with(&forged, &mut keys),
        Err(EnvelopeError::BadSignature)
    );
    assert_eq!(open_with(&msg.wire, &mut keys), Ok(msg));
    assert_eq!(keys.len(), 1);
}

#[test]
fn origin_keys_are_bounded_and_keep_the_busy_ones() {
    let room = Room::lobby();
    let mut keys = OriginKeys::default();
    let busy = sign(&key(), &draft(&room, "busy", None)).expect("signs");
    for i in 0..MAX_ORIGIN_KEYS as u64 + 10 {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&i.to_le_bytes());
        seed[8] = 1;
        let msg = sign(&SigningKey::from_bytes(&seed), &draft(&room, "hi", None)).expect("signs");
        assert!(open_with(&msg.wire, &mut keys).is_ok());
        assert!(open_with(&busy.wire, &mut keys).is_ok());
        assert!(keys.len() <= MAX_ORIGIN_KEYS);
    }
    assert_eq!(keys.len(), MAX_ORIGIN_KEYS);
    assert!(keys.keys.contains_key(busy.origin.as_bytes()));
}

#[test]
fn limits_and_garbage_are_refused() {
    let room = Room::lobby();
    assert_eq!(
        sign(&key(), &draft(&room, " \n", None)),
        Err(TextError::Empty)
    );
    let long = "x".repeat(MAX_TEXT_BYTES + 1);
    assert_eq!(
        sign(&key(), &draft(&room, &long, None)),
        Err(TextError::TooLong(MAX_TEXT_BYTES + 1))
    );
    let max = "x".repeat(MAX_TEXT_BYTES);
    let big = sign(&key(), &draft(&room, &max, None)).expect("largest text signs");
    assert!(big.wire.len() <= MAX_WIRE_BYTES);
    assert!(open(&big.wire).is_ok());
    assert_eq!(
        open(&vec![0u8; MAX_WIRE_BYTES + 1]),
        Err(EnvelopeError::Oversized(MAX_WIRE_BYTES + 1))
    );
    for garbage in [&b""[..], b"\xff\xff", b"\x80", b"\x82\x01\x02"] {
        assert!(
            matches!(open(garbage), Err(EnvelopeError::Malformed(_))),
            "{garbage:?}"
        );
    }
}

#[test]
fn people_events_carry_bytes_and_round_trip() {
    let room = Room::lobby();
    let mut d = draft(&room, "", None);
    let event = [7u8; 40];
    d.event = Some(&event);
    let msg = sign(&key(), &d).expect("signs");
    assert_eq!(msg.kind, Kind::People);
    let opened = open(&msg.wire).expect("opens");
    assert_eq!(opened.event, event.to_vec());
    let extra = stored_extra(&msg.wire).expect("extra");
    assert_eq!((extra.event, extra.author), (event.to_vec(), None));
    let big = vec![1u8; MAX_EVENT_BYTES + 1];
    d.event = Some(&big);
    assert!(sign(&key(), &d).is_err());
}

#[test]
fn the_author_is_signed_and_read_back() {
    let room = Room::lobby();
    let mut d = draft(&room, "hello", None);
    d.author = Some([8; 32]);
    let msg = sign(&key(), &d).expect("signs");
    let opened = open(&msg.wire).expect("opens");
    assert_eq!(opened.author, Some([8; 32]));
    let extra = stored_extra(&msg.wire).expect("extra");
    assert_eq!((extra.event, extra.author), (Vec::new(), Some([8; 32])));
    // Without an author: the first format, still read.
    let plain = sign(&key(), &draft(&room, "hello", None)).expect("signs");
    assert_eq!(open(&plain.wire).expect("opens").author, None);
}

#[test]
fn edits_and_deletes_name_their_target_under_the_signature() {
    let room = Room::lobby();
    let target = MessageId([7; 32]);
    let mut d = draft(&room, "new words", None);
    d.seq = 2;
    d.author = Some([8; 32]);
    d.change = Some(Change::Edit(target));
    let edit = sign(&key(), &d).expect("signs");
    let opened = open(&edit.wire).expect("opens");
    assert_eq!(opened.kind, Kind::Edit);
    assert_eq!(opened.target, Some(target));
    assert_eq!(opened.text, "new words");
    assert_eq!(
        stored_extra(&edit.wire).expect("extra").target,
        Some(target)
    );
    d.change = Some(Change::Delete(target));
    let delete = sign(&key(), &d).expect("signs");
    let opened = open(&delete.wire).expect("opens");
    assert_eq!((opened.kind, opened.target), (Kind::Delete, Some(target)));
    assert_eq!(opened.text, "", "a delete carries no text");
    // An edit's text obeys the message bounds.
    let long = "x".repeat(MAX_TEXT_BYTES + 1);
    let mut d = draft(&room, &long, None);
    d.change = Some(Change::Edit(target));
    assert!(sign(&key(), &d).is_err());
    // A target that is not a 32-byte id is refused by a receiver, however well signed.
    let short = |n: usize| Value::Bytes(vec![1; n]);
    for (kind, body) in [
        (3u64, Value::Array(vec![short(5), Value::Text("x".into())])),
        (3, short(32)),
        (4, short(31)),
        (4, Value::Text("x".into())),
    ] {
        let signed = to_vec(&Value::Array(vec![
            Value::from(VERSION),
            Value::Bytes(key().verifying_key().as_bytes().to_vec()),
            Value::from(3u64),
            Value::from(Timestamp::new(1_700_000_000_000, 0).0),
            Value::from(kind),
            Value::Text("lobby".into()),
            body,
            Value::Text(String::new()),
        ]));
        let wire = to_vec(&Value::Array(vec![
            Value::Bytes(signed.clone()),
            Value::Bytes(key().sign(&ctx(&signed)).to_bytes().to_vec()),
        ]));
        assert!(matches!(open(&wire), Err(EnvelopeError::Malformed(_))));
    }
}

#[test]
fn control_characters_are_not_signed_and_are_neutralised_when_received() {
    let room = Room::lobby();
    assert_eq!(
        sign(&key(), &draft(&room, "hi\u{1b}[2J", None)),
        Err(TextError::Control(0x1b))
    );
    assert_eq!(
        sign(&key(), &draft(&room, "C1 \u{9b}31m", None)),
        Err(TextError::Control(0x9b))
    );
    let fine = sign(&key(), &draft(&room, "two\nlines\tand a tab", None)).expect("signs");
    assert_eq!(
        open(&fine.wire).expect("opens").text,
        "two\nlines\tand a tab"
    );
    // A modified node signs one anyway: it opens (and is forwarded as it came), its text
    // neutralised.
    let hostile = "\u{1b}]0;owned\u{7}\rhi\u{85}";
    let signed = to_vec(&Value::Array(vec![
        Value::from(VERSION),
        Value::Bytes(key().verifying_key().as_bytes().to_vec()),
        Value::from(3u64),
        Value::from(Timestamp::new(1_700_000_000_000, 0).0),
        Value::from(Kind::Text.code()),
        Value::Text("lobby".into()),
        Value::Text(hostile.into()),
        Value::Text(String::new()),
    ]));
    let wire = to_vec(&Value::Array(vec![
        Value::Bytes(signed.clone()),
        Value::Bytes(key().sign(&ctx(&signed)).to_bytes().to_vec()),
    ]));
    let opened = open(&wire).expect("opens");
    assert_eq!(opened.text, "\u{fffd}]0;owned\u{fffd}\u{fffd}hi\u{fffd}");
    assert_eq!(opened.wire, wire, "forwarded unchanged");
}
