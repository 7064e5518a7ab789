//! Unit tests for [`super`]: references in signed envelopes, what older builds read of them,
//! and hostile references.

use ciborium::Value;
use ed25519_dalek::SigningKey;

use super::*;
use crate::chat::envelope::{Draft, Kind, MAX_WIRE_BYTES, open, sign_with, stored_extra};
use crate::chat::hlc::Timestamp;
use crate::chat::room::Room;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn draft<'a>(room: &'a Room, text: &'a str) -> Draft<'a> {
    Draft {
        seq: 1,
        hlc: Timestamp::new(1_700_000_000_000, 0),
        room,
        text,
        event: None,
        author: None,
        nick: None,
        change: None,
    }
}

/// A real thumbnail, made by chat-blobs from a generated PNG.
fn thumbnail() -> Vec<u8> {
    let img = image::RgbImage::from_fn(320, 200, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let made = chat_blobs::thumb::make(&png, &chat_blobs::DecodeLimits::default(), THUMB_BUDGET)
        .expect("decodes");
    made.thumbnail.expect("a thumbnail").jpeg
}

fn reference(thumb: Vec<u8>) -> Attachment {
    Attachment {
        hash: [9; 32],
        name: "sunset.png".into(),
        size: 123_456,
        media: MediaType::Png,
        width: 320,
        height: 200,
        thumbnail: thumb,
        thumbnail_refused: false,
    }
}

/// The signed bytes of an envelope.
fn signed_part(wire: &[u8]) -> Vec<u8> {
    let Value::Array(outer) = ciborium::from_reader::<Value, _>(wire).expect("cbor") else {
        panic!("not an array");
    };
    match &outer[0] {
        Value::Bytes(b) => b.clone(),
        _ => panic!("not bytes"),
    }
}

/// Re-signs `signed` as the envelope's origin would (a hostile node signs what it likes).
fn forged(signed: Vec<u8>) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let sig = key().sign(&crate::sigctx::with(crate::sigctx::ENVELOPE, &signed));
    let mut out = Vec::new();
    ciborium::into_writer(
        &Value::Array(vec![
            Value::Bytes(signed),
            Value::Bytes(sig.to_bytes().to_vec()),
        ]),
        &mut out,
    )
    .expect("writes");
    out
}

#[test]
fn a_reference_round_trips_through_the_wire_and_the_store() {
    let room = Room::lobby();
    let a = reference(thumbnail());
    let msg = sign_with(&key(), &draft(&room, "look"), Some(&a)).expect("signs");
    assert!(msg.wire.len() <= MAX_WIRE_BYTES);
    let opened = open(&msg.wire).expect("opens");
    assert_eq!(opened.attachment.as_ref(), Some(&a));
    assert_eq!(opened, msg);
    let extra = stored_extra(&msg.wire).expect("reads");
    assert_eq!(extra.attachment, Some(a));
}

#[test]
fn an_older_build_reads_the_text_message_in_front_of_the_reference() {
    // An older build decodes the first CBOR item of the signed bytes and ignores the rest:
    // it sees the eight fields of a plain text message.
    let room = Room::lobby();
    let msg = sign_with(
        &key(),
        &draft(&room, "caption"),
        Some(&reference(thumbnail())),
    )
    .expect("signs");
    let signed = signed_part(&msg.wire);
    let first: Value = ciborium::from_reader(signed.as_slice()).expect("first item");
    let Value::Array(fields) = first else {
        panic!("not an array");
    };
    assert_eq!(fields.len(), 8);
    assert_eq!(fields[4], Value::from(Kind::Text.code()));
    assert_eq!(fields[6], Value::Text("caption".into()));
    // And the id covers the reference: another reference is another message.
    let other = sign_with(
        &key(),
        &draft(&room, "caption"),
        Some(&reference(Vec::new())),
    )
    .expect("signs");
    assert_ne!(other.id, msg.id);
}

#[test]
fn a_thumbnail_that_is_not_an_image_is_dropped_and_the_message_kept() {
    let room = Room::lobby();
    let plain = sign_with(&key(), &draft(&room, "x"), None).expect("signs");
    let mut hostile = encode(&reference(Vec::new()));
    if let Value::Array(items) = &mut hostile {
        items[7] = Value::Bytes(b"<svg onload=alert(1)>".to_vec());
    }
    let mut signed = signed_part(&plain.wire);
    ciborium::into_writer(&hostile, &mut signed).expect("writes");
    let opened = open(&forged(signed)).expect("the text still opens");
    let a = opened.attachment.expect("the reference is kept");
    assert!(a.thumbnail.is_empty());
    assert!(a.thumbnail_refused);
    assert_eq!(opened.text, "x");
}

#[test]
fn a_reference_that_breaks_a_bound_is_dropped() {
    let room = Room::lobby();
    let plain = sign_with(&key(), &draft(&room, "x"), None).expect("signs");
    type Change = Box<dyn Fn(&mut Vec<Value>)>;
    let bad: Vec<Change> = vec![
        Box::new(|i| i[0] = Value::from(2u64)),
        Box::new(|i| i[1] = Value::Bytes(vec![1; 31])),
        Box::new(|i| i[2] = Value::Text("n".repeat(MAX_NAME_BYTES + 1))),
        Box::new(|i| i[2] = Value::Text(String::new())),
        Box::new(|i| i[2] = Value::Text("a\u{1b}b".into())),
        Box::new(|i| i[3] = Value::from(MAX_SIZE + 1)),
        Box::new(|i| i[5] = Value::from(u64::MAX)),
        Box::new(|i| i[7] = Value::Text("no".into())),
        Box::new(|i| {
            i.pop();
        }),
    ];
    for (n, change) in bad.iter().enumerate() {
        let mut v = encode(&reference(Vec::new()));
        if let Value::Array(items) = &mut v {
            change(items);
        }
        let mut signed = signed_part(&plain.wire);
        ciborium::into_writer(&v, &mut signed).expect("writes");
        let opened = open(&forged(signed)).expect("the text still opens");
        assert_eq!(opened.attachment, None, "case {n}");
    }
    // Garbage after the fields is no reference either.
    let mut signed = signed_part(&plain.wire);
    signed.extend([0xff, 0x00, 0x13]);
    let opened = open(&forged(signed)).expect("opens");
    assert_eq!(opened.attachment, None);
}

#[test]
fn a_sender_cannot_sign_a_bad_reference() {
    let room = Room::lobby();
    let mut a = reference(b"not a jpeg".to_vec());
    assert!(sign_with(&key(), &draft(&room, "x"), Some(&a)).is_err());
    a.thumbnail.clear();
    a.name = "x".repeat(MAX_NAME_BYTES + 1);
    assert!(sign_with(&key(), &draft(&room, "x"), Some(&a)).is_err());
}

#[test]
fn the_largest_caption_and_reference_fit_the_wire_bound() {
    let room = Room::lobby();
    let mut a = reference(thumbnail());
    a.name = "é".repeat(MAX_NAME_BYTES / 2);
    let caption = "w".repeat(crate::chat::envelope::MAX_TEXT_BYTES);
    let msg = sign_with(&key(), &draft(&room, &caption), Some(&a)).expect("fits");
    assert!(msg.wire.len() <= MAX_WIRE_BYTES);
    assert!(
        msg.wire.len() < 4096 + THUMB_BUDGET + 1024,
        "{}",
        msg.wire.len()
    );
}

#[test]
fn sizes_read_as_people_do() {
    assert_eq!(human_size(512), "512 B");
    assert_eq!(human_size(2_400_000), "2.4 MB");
    assert_eq!(human_size(1_500), "1.5 kB");
}
