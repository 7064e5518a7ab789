//! Messages with files on real daemons: `chatctl send --file` of a generated PNG on A reaches B
//! and C with its reference (hash, name, size, type, image size and a JPEG thumbnail that the
//! receivers checked), B and C fetch the image by themselves (auto-fetch), `tail` shows the
//! `📎` line, `chatctl files` lists the messages with files and `chatctl get` downloads a
//! 3 MB file on C byte-identical (refusing to overwrite without `--force`), and a `Send` naming a file the node does not
//! hold is refused with INVALID_ARGUMENT. Forged references (a thumbnail that is markup, a
//! size of 1 TiB) are shown without thumbnail, never fetched, and `get` fails cleanly.

use std::time::Duration;

use base64::Engine as _;
use chat_proto::v1::chat_service_client::ChatServiceClient;
use chat_proto::v1::file_service_client::FileServiceClient;
use chat_proto::v1::{ListFilesRequest, SendRequest};

use chat_overlay::broadcast::Envelope;
use chat_overlay::broadcast::wire::Bcast;
use chat_overlay::wire::{Message, Notice};
use chatd::chat::envelope::{self, Draft};
use chatd::chat::hlc::{Timestamp, wall_millis};
use chatd::chat::room::Room;
use chatd::transport::{self, Transport};
use ciborium::Value as CborValue;
use ed25519_dalek::{Signer, SigningKey};

use crate::client;
use crate::cluster::{json_lines, poll};
use crate::files::ring;

/// How long a message may take to arrive.
const ARRIVE: Duration = Duration::from_secs(30);

/// A 400 × 300 PNG with a gradient (so its thumbnail is not trivial).
fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(400, 300, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encodes");
    out
}

#[test]
fn an_image_sent_with_send_file_shows_with_its_thumbnail_everywhere() {
    let c = ring(143, 3);
    let bytes = png();
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let path = c.members[0].dir.join("photo.png");
    std::fs::write(&path, &bytes).expect("writes the image");
    let path = path.to_str().expect("utf-8 path");
    let out = c.ctl(0, &["send", "--json", "--file", path, "a", "sunset"]);
    assert!(
        out.status.success(),
        "send --file failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = json_lines(&out).pop().expect("the sent message as JSON");
    assert_eq!(sent["text"], "a sunset");
    assert_eq!(sent["attachment"]["hash"], hash.as_str());
    let id = sent["id"].as_str().expect("an id").to_owned();
    for i in [1, 2] {
        let got = poll(ARRIVE, Duration::from_millis(300), || {
            json_lines(&c.ctl(i, &["tail", "-n", "50", "--json"]))
                .into_iter()
                .find(|m| m["id"] == id.as_str())
        })
        .unwrap_or_else(|| panic!("node {i} never showed the message"));
        let a = &got["attachment"];
        assert_eq!(a["hash"], hash.as_str(), "node {i}: {got}");
        assert_eq!(a["name"], "photo.png");
        assert_eq!(a["size"], bytes.len() as u64);
        assert_eq!(a["media_type"], "image/png");
        assert_eq!((&a["width"], &a["height"]), (&400.into(), &300.into()));
        assert_eq!(a["thumbnail_refused"], false);
        let thumb = base64::engine::general_purpose::STANDARD
            .decode(a["thumbnail"].as_str().expect("a thumbnail"))
            .expect("base64");
        assert!(
            thumb.starts_with(&[0xFF, 0xD8, 0xFF]),
            "node {i}: not a JPEG"
        );
        assert!(thumb.len() <= 6 * 1024, "node {i}: {} bytes", thumb.len());
        // The plain tail shows the file line after the caption.
        let plain = c.ctl(i, &["tail", "-n", "50"]);
        let plain = String::from_utf8_lossy(&plain.stdout);
        assert!(
            plain
                .lines()
                .any(|l| l.contains("a sunset") && l.contains("📎 photo.png")),
            "node {i}: {plain}"
        );
    }
    // B and C fetched the image without anyone asking (files.auto_fetch_kb, 1024 by default).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for i in [1, 2] {
        let socket = c.members[i].dir.join("run/control.sock");
        let held = poll(ARRIVE, Duration::from_millis(300), || {
            let files = rt.block_on(async {
                let mut f = FileServiceClient::new(client::unix(&socket).await);
                f.list_files(ListFilesRequest {}).await
            });
            files
                .ok()?
                .into_inner()
                .files
                .iter()
                .any(|f| f.hash == hash)
                .then_some(())
        });
        assert!(held.is_some(), "node {i} did not fetch the image by itself");
    }
    // Without a caption the text is the file line (what older builds show).
    let out = c.ctl(0, &["send", "--json", "--file", path]);
    let sent = json_lines(&out).pop().expect("the sent message as JSON");
    assert!(
        sent["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("📎 photo.png ")),
        "{sent}"
    );
    // A larger file that is not an image: not fetched by itself, downloaded on demand on C
    // by its message id, byte-identical; an existing file is kept without --force.
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let big_path = c.members[0].dir.join("data.bin");
    std::fs::write(&big_path, &big).expect("writes");
    let big_id = c.send_file(0, &big_path, "")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let listed = poll(ARRIVE, Duration::from_millis(300), || {
        let files = json_lines(&c.ctl(2, &["files", "--json"]));
        (files.iter().any(|m| m["id"] == big_id.as_str()) && files.len() == 3).then_some(files)
    })
    .expect("C lists the three messages with files");
    assert_eq!(
        listed[2]["attachment"]["media_type"],
        "application/octet-stream"
    );
    let dest = c.members[2].dir.join("got.bin");
    let dest_s = dest.to_str().expect("utf-8");
    let out = c.ctl(2, &["get", &big_id, "-o", dest_s]);
    assert!(
        out.status.success(),
        "get failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read(&dest).expect("saved") == big,
        "not byte-identical"
    );
    let out = c.ctl(2, &["get", &big_id, "-o", dest_s]);
    assert!(!out.status.success(), "overwrote without --force");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let out = c.ctl(2, &["get", &big_id, "-o", dest_s, "--force"]);
    assert!(out.status.success());
    // A file the node does not hold cannot be referenced.
    let socket = c.members[0].dir.join("run/control.sock");
    let refused = rt.block_on(async {
        let mut chat = ChatServiceClient::new(client::unix(&socket).await);
        chat.send(SendRequest {
            room: String::new(),
            text: "x".into(),
            attachment_hash: "ab".repeat(32),
            attachment_name: String::new(),
            voice: false,
        })
        .await
    });
    let status = refused.expect_err("a hash the node does not hold is refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("attachment_hash"), "{status:?}");
    // And a file that cannot be read is a clear error, nothing sent.
    let out = c.ctl(0, &["send", "--file", "/nonexistent/file.png"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

/// A text message from `key`'s node with `reference` (any CBOR, unchecked) after its fields:
/// what a hostile node can sign.
fn forged_message(key: &SigningKey, seq: u64, text: &str, reference: &CborValue) -> Message {
    let now = wall_millis();
    let plain = envelope::sign(
        key,
        &Draft {
            seq,
            hlc: Timestamp::new(now, 0),
            room: &Room::lobby(),
            text,
            event: None,
            author: None,
            nick: None,
            change: None,
        },
    )
    .expect("signs");
    let outer: CborValue = ciborium::from_reader(plain.wire.as_slice()).expect("cbor");
    let CborValue::Array(outer) = outer else {
        panic!("not an array")
    };
    let Some(CborValue::Bytes(mut signed)) = outer.into_iter().next() else {
        panic!("no signed part")
    };
    ciborium::into_writer(reference, &mut signed).expect("writes");
    let sig = key.sign(&chatd::sigctx::with(chatd::sigctx::ENVELOPE, &signed));
    let mut wire = Vec::new();
    ciborium::into_writer(
        &CborValue::Array(vec![
            CborValue::Bytes(signed),
            CborValue::Bytes(sig.to_bytes().to_vec()),
        ]),
        &mut wire,
    )
    .expect("writes");
    let env = Envelope {
        origin: chatd::identity::node_id(&key.verifying_key()),
        seq,
        payload: wire,
    };
    Message::Notice(Notice::Broadcast(Bcast::Repair { id: env.id(), env }))
}

/// `[1, hash, name, size, media 1 (PNG), 400, 300, thumbnail]`.
fn reference(hash: [u8; 32], size: u64, thumbnail: &[u8]) -> CborValue {
    CborValue::Array(vec![
        CborValue::from(1u64),
        CborValue::Bytes(hash.to_vec()),
        CborValue::Text("evil.png".into()),
        CborValue::from(size),
        CborValue::from(1u64),
        CborValue::from(400u64),
        CborValue::from(300u64),
        CborValue::Bytes(thumbnail.to_vec()),
    ])
}

/// Sends `msg` to the node listening at `to` from a peer of key `key` on `from` (a hostile
/// peer: the message as it chose to make it).
pub fn inject(key: &SigningKey, from: &str, to: std::net::SocketAddr, msg: &Message) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (tx, _rx) = tokio::sync::mpsc::channel(8);
        let cfg = transport::Config::new(from.parse().expect("addr"), 8);
        let t: Transport<Message> = Transport::bind(key, cfg, tx).expect("bind");
        let peer = t.first_contact(to).await.expect("handshake");
        t.send(peer, msg);
        t.flush(Duration::from_secs(5)).await;
        t.close(Duration::from_secs(1)).await;
    });
}

#[test]
fn hostile_references_are_shown_without_thumbnail_and_never_fetched() {
    let c = ring(145, 2);
    let key = SigningKey::from_bytes(&[0x45; 32]);
    // A thumbnail that is markup, not a JPEG; and a size far over files.max_file_mb.
    let svg = reference([0x11; 32], 1000, b"<svg onload=alert(1)></svg>");
    let huge = reference([0x22; 32], 1 << 40, &[]);
    inject(
        &key,
        "127.0.145.200:0",
        c.addr(0),
        &forged_message(&key, 1, "svg", &svg),
    );
    inject(
        &key,
        "127.0.145.201:0",
        c.addr(0),
        &forged_message(&key, 2, "huge", &huge),
    );
    for i in [0, 1] {
        let got = poll(ARRIVE, Duration::from_millis(300), || {
            let all = json_lines(&c.ctl(i, &["tail", "-n", "50", "--json"]));
            let svg = all.iter().find(|m| m["text"] == "svg")?.clone();
            let huge = all.iter().find(|m| m["text"] == "huge")?.clone();
            Some((svg, huge))
        })
        .unwrap_or_else(|| panic!("node {i} never showed the forged messages"));
        let (svg, huge) = got;
        assert_eq!(svg["attachment"]["thumbnail_refused"], true, "{svg}");
        assert_eq!(svg["attachment"]["thumbnail"], "", "{svg}");
        assert_eq!(huge["attachment"]["size"], 1u64 << 40, "{huge}");
        // Asking for the huge one is a clear error; the daemon lives on.
        let id = huge["id"].as_str().expect("id");
        let dest = c.members[i].dir.join("huge.png");
        let out = c.ctl(i, &["get", id, "-o", dest.to_str().expect("utf-8")]);
        assert!(!out.status.success());
        assert!(!dest.exists(), "a failed get left a file");
        assert!(c.status(i).is_some(), "node {i} died");
    }
    // Neither was fetched (nor could a fetch of the huge one have started).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    for i in [0, 1] {
        let socket = c.members[i].dir.join("run/control.sock");
        let files = rt
            .block_on(async {
                let mut f = FileServiceClient::new(client::unix(&socket).await);
                f.list_files(ListFilesRequest {}).await
            })
            .expect("lists")
            .into_inner()
            .files;
        assert!(files.is_empty(), "node {i} holds {files:?}");
    }
}
