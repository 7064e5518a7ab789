//! Writes the seed corpora (`tests/fuzz/corpus/TARGET/`): a few valid encodings per target,
//! made with the daemon's own encoders and fixed keys, so every run starts past the first
//! layer of each decoder. `tests/fuzz/run.sh --seeds` runs it; the output is committed.
//! Not a fuzz target (it never calls `fuzz!`).

// Built instrumented like the targets: link honggfuzz's coverage runtime.
extern crate honggfuzz;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use chat_dm::bundle::Bundle;
use chat_dm::group::{GroupState, group_id};
use chat_dm::payload::{Body, Conv, Payload};
use chat_dm::seal::{self, Inner, SealKey};
use chat_overlay::NodeId;
use chat_overlay::broadcast::wire::{Bcast, BroadcastRequest};
use chat_overlay::broadcast::{Envelope, MsgId};
use chat_overlay::protocol::encode_body;
use chat_overlay::records::wire::RecordsRequest;
use chat_overlay::records::{Kind, Record, Value};
use chat_overlay::ring::wire::{RingNotice, RingRequest, RingResponse};
use chat_overlay::wire::{self, Message, Notice, Peer, Request, Response};
use chatd::chat::envelope::{self, Change, Draft};
use chatd::chat::hlc::Timestamp;
use chatd::chat::room::Room;
use chatd::nickname::Nickname;
use ed25519_dalek::SigningKey;
use serde::Serialize;

fn cbor<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(v, &mut out).expect("CBOR into a Vec");
    out
}

fn put(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    std::fs::create_dir_all(&d).expect("corpus directory");
    std::fs::write(d.join(name), bytes).expect("write a seed");
}

fn peer(n: u64) -> Peer {
    let addr: SocketAddr = format!("127.0.0.1:{}", 7400 + n)
        .parse()
        .expect("an address");
    Peer {
        id: NodeId::from_high_u64(n << 56),
        addr,
    }
}

fn main() {
    let dir: PathBuf = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("corpus"));
    let signer = SigningKey::from_bytes(&[3; 32]);
    let now = 1_800_000_000_000u64;

    // The overlay's frames and each service's bodies.
    let env = Envelope {
        origin: NodeId::from_high_u64(9),
        seq: 1,
        payload: b"hello".to_vec(),
    };
    let record = Record::sign(
        Kind::Profile,
        signer.verifying_key().to_bytes().to_vec(),
        Value::Data(b"profile".to_vec()),
        &signer,
        1,
        now - 1000,
        now + 3_600_000,
    );
    let bodies: Vec<(u8, &str, Vec<u8>)> = vec![
        (
            0,
            "ring-find",
            cbor(&RingRequest::FindSuccessor {
                key: NodeId::from_high_u64(7),
            }),
        ),
        (
            0,
            "ring-state",
            cbor(&RingRequest::GetState {
                fingers: true,
                sample: 4,
            }),
        ),
        (
            1,
            "ring-state-answer",
            cbor(&RingResponse::State {
                pred: Some(peer(1)),
                succs: vec![peer(2), peer(3)],
                fingers: vec![peer(4)],
                sample: vec![peer(5)],
            }),
        ),
        (
            2,
            "ring-leaving",
            cbor(&RingNotice::Leaving {
                pred: Some(peer(1)),
                succs: vec![peer(2)],
            }),
        ),
        (
            3,
            "bcast-trace",
            cbor(&BroadcastRequest::Trace {
                origin: NodeId::from_high_u64(9),
                seq: 4,
            }),
        ),
        (
            5,
            "bcast-data",
            cbor(&Bcast::Data {
                hop: 1,
                limit: NodeId::from_high_u64(u64::MAX),
                depth: 0,
                id: env.id(),
                env: env.clone(),
            }),
        ),
        (
            5,
            "bcast-digest",
            cbor(&Bcast::Digest {
                heads: vec![(NodeId::from_high_u64(9), 3)],
                complete: true,
                reply: false,
            }),
        ),
        (6, "records-put", cbor(&RecordsRequest::Put(record.clone()))),
        (
            6,
            "records-get",
            cbor(&RecordsRequest::Get {
                kind: 1,
                key: b"alice".to_vec(),
                after: None,
            }),
        ),
    ];
    for (which, name, body) in &bodies {
        let mut seed = vec![*which];
        seed.extend_from_slice(body);
        put(&dir, "services", name, &seed);
    }
    let ping = encode_body(0x10, 1, &"a service this build does not know").expect("a body");
    let frames = [
        ("notify", Message::Notice(Notice::Ring(RingNotice::Notify))),
        (
            "ping",
            Message::Request {
                id: 1,
                body: Request::Ring(RingRequest::Ping),
            },
        ),
        (
            "found",
            Message::Response {
                id: 2,
                body: Response::Ring(RingResponse::Found {
                    succs: vec![peer(5), peer(6)],
                }),
            },
        ),
        (
            "unsupported",
            Message::Response {
                id: 3,
                body: Response::Unsupported,
            },
        ),
        (
            "bcast",
            Message::Notice(Notice::Broadcast(Bcast::Data {
                hop: 2,
                limit: NodeId::ZERO,
                depth: 1,
                id: MsgId(env.id().0),
                env,
            })),
        ),
        (
            "records-put",
            Message::Request {
                id: 4,
                body: Request::Records(RecordsRequest::Put(record.clone())),
            },
        ),
        (
            "other-service",
            Message::Request {
                id: 5,
                body: Request::Other(ping),
            },
        ),
    ];
    for (name, msg) in &frames {
        put(
            &dir,
            "wire_frame",
            name,
            &wire::encode(msg).expect("a frame"),
        );
    }

    // Records.
    put(&dir, "record", "profile", &cbor(&record));
    let nick = Record::sign(
        Kind::Nick,
        b"alice".to_vec(),
        Value::Data(signer.verifying_key().to_bytes().to_vec()),
        &signer,
        1,
        now,
        now + 86_400_000,
    );
    put(&dir, "record", "nick", &cbor(&nick));
    let gone = Record::sign(
        Kind::Mailbox,
        vec![1; 32],
        Value::Removed(Vec::new()),
        &signer,
        2,
        now,
        now + 1000,
    );
    put(&dir, "record", "mailbox-removed", &cbor(&gone));

    // Chat envelopes.
    let room: Room = "general".parse().expect("a room");
    let alice: Nickname = "alice".parse().expect("a nickname");
    let draft = |seq: u64, text: &'static str, change: Option<Change>| Draft {
        seq,
        hlc: Timestamp(now << 16),
        room: &room,
        text,
        event: None,
        author: Some([5; 32]),
        nick: Some(&alice),
        change,
    };
    let first = envelope::sign(&signer, &draft(1, "hello, world", None)).expect("an envelope");
    put(&dir, "envelope", "text", &first.wire);
    let edit = envelope::sign(
        &signer,
        &draft(2, "hello again", Some(Change::Edit(first.id))),
    )
    .expect("an edit");
    put(&dir, "envelope", "edit", &edit.wire);
    let delete =
        envelope::sign(&signer, &draft(3, "", Some(Change::Delete(first.id)))).expect("a delete");
    put(&dir, "envelope", "delete", &delete.wire);

    // Private-message items.
    let seal_key = SealKey::from_secret([7; 32]).expect("a seal key");
    let account = [0x11; 32];
    let inner = Inner {
        sender: [0x22; 32],
        olm_type: 0,
        olm: vec![0xab; 40],
    };
    let sealed = seal::seal(&inner, &seal_key.public(), &account).expect("sealed");
    put(&dir, "dm_items", "sealed", &[&[0u8][..], &sealed].concat());
    let body = cbor(&inner);
    let mut padded = (body.len() as u16).to_be_bytes().to_vec();
    padded.extend_from_slice(&body);
    padded.resize(seal::PAD, 0);
    put(
        &dir,
        "dm_items",
        "padded-inner",
        &[&[1u8][..], &padded].concat(),
    );
    let bundle = Bundle {
        v: 1,
        account,
        olm_ed25519: [0x33; 32],
        olm_curve25519: [0x44; 32],
        fallback: [0x55; 32],
        seal: seal_key.public(),
        rotated_ms: now,
        olm_sig: vec![0; 64],
    };
    put(
        &dir,
        "dm_items",
        "bundle",
        &[&[2u8][..], &bundle.encode()].concat(),
    );
    let creator = SigningKey::from_bytes(&[9; 32]);
    let nonce = [1; 16];
    let creator_key = creator.verifying_key().to_bytes();
    let mut state = GroupState {
        id: group_id(&creator_key, &nonce),
        creator: creator_key,
        nonce,
        name: "friends".into(),
        version: 1,
        members: Vec::new(),
    };
    state.set_members(vec![creator_key, [0x22; 32]]);
    let group = state.sign(&creator);
    let payloads = [
        (
            "text",
            Body::Text {
                conv: Conv::Direct,
                nonce: [2; 16],
                text: "hi bob".into(),
                file: None,
            },
        ),
        ("ack", Body::Ack { upto: 3 }),
        ("group", Body::Group(group.clone())),
        (
            "change",
            Body::Change {
                conv: Conv::Group([4; 16]),
                id: [5; 16],
                text: None,
            },
        ),
    ];
    for (name, body) in payloads {
        let p = Payload {
            from: [0x22; 32],
            to: account,
            seq: 1,
            floor: 1,
            sent_ms: now,
            body,
        };
        put(
            &dir,
            "dm_items",
            &format!("payload-{name}"),
            &[&[3u8][..], &p.encode()].concat(),
        );
    }
    put(
        &dir,
        "dm_items",
        "signed-group",
        &[&[4u8][..], &cbor(&group)].concat(),
    );

    // Config files.
    put(&dir, "config", "empty", b"");
    put(
        &dir,
        "config",
        "small",
        b"[node]\nlisten = \"127.0.0.1:7400\"\nbootstrap = [\"localhost:7401\"]\nnickname = \"alice\"\n\n[web]\nlisten = \"127.0.0.1:7480\"\n",
    );
    put(
        &dir,
        "config",
        "bad-key",
        b"[node]\nlisten = 7\nnope = true\n",
    );

    // The web view's page frames.
    for (name, text) in [
        ("auth", r#"{"t":"auth"}"#),
        ("auth-ticket", r#"{"t":"auth","ticket":"abc"}"#),
        ("auth-session", r#"{"t":"auth","session":"s1"}"#),
        (
            "send",
            r#"{"t":"send","ref":1,"room":"general","text":"hi"}"#,
        ),
        ("psend", r#"{"t":"psend","ref":2,"to":"bob","text":"hi"}"#),
        (
            "psend-group",
            r#"{"t":"psend","ref":3,"group":"00112233445566778899aabbccddeeff","text":"hi"}"#,
        ),
        (
            "trace",
            r#"{"t":"trace","id":"0000000000000000000000000000000000000000000000000000000000000000"}"#,
        ),
    ] {
        put(&dir, "web_frames", name, text.as_bytes());
    }

    // Files as the blob store's media checks and thumbnailer see them.
    for (name, bytes) in thumbnail_seeds() {
        put(&dir, "thumbnail", name, &bytes);
    }
}

/// The `thumbnail` target's seeds: small images in each of the four formats (an alpha channel,
/// a grey one, an animation), made with `image`'s encoders, and a few non-images.
fn thumbnail_seeds() -> Vec<(&'static str, Vec<u8>)> {
    use image::{DynamicImage, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
    fn enc(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        image.write_to(&mut out, format).expect("encode a seed");
        out.into_inner()
    }
    let rgb = DynamicImage::ImageRgb8(RgbImage::from_fn(24, 16, |x, y| {
        Rgb([(x * 10) as u8, (y * 15) as u8, ((x ^ y) * 8) as u8])
    }));
    let rgba = DynamicImage::ImageRgba8(RgbaImage::from_fn(8, 8, |x, y| {
        Rgba([200, (x * 30) as u8, 40, (y * 32) as u8])
    }));
    let mut animation = Vec::new();
    {
        let mut gif = image::codecs::gif::GifEncoder::new(&mut animation);
        for i in 0..3u8 {
            let frame = RgbaImage::from_pixel(6, 6, Rgba([i * 80, 0, 255 - i * 80, 255]));
            gif.encode_frame(image::Frame::new(frame))
                .expect("a GIF frame");
        }
    }
    vec![
        ("png-rgb", enc(&rgb, ImageFormat::Png)),
        ("png-rgba", enc(&rgba, ImageFormat::Png)),
        (
            "png-grey",
            enc(&DynamicImage::ImageLuma8(rgb.to_luma8()), ImageFormat::Png),
        ),
        ("jpeg", enc(&rgb, ImageFormat::Jpeg)),
        ("gif", enc(&rgb, ImageFormat::Gif)),
        ("gif-animated", animation),
        ("webp-lossless", enc(&rgba, ImageFormat::WebP)),
        (
            "svg",
            br#"<svg xmlns="http://www.w3.org/2000/svg"/>"#.to_vec(),
        ),
        (
            "name",
            "../../etc/passwd\u{202e}gnp.exe".as_bytes().to_vec(),
        ),
        ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec()),
    ]
}
