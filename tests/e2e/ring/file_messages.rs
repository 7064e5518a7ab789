//! Messages with files on real daemons: `chatctl send --file` of a generated PNG on A reaches B
//! and C with its reference (hash, name, size, type, image size and a JPEG thumbnail that the
//! receivers checked), B and C fetch the image by themselves (auto-fetch), `tail` shows the
//! `📎` line, `chatctl files` lists the messages with files and `chatctl get` downloads a
//! 3 MB file on C byte-identical (refusing to overwrite without `--force`), and a `Send` naming a file the node does not
//! hold is refused with INVALID_ARGUMENT.

use std::time::Duration;

use base64::Engine as _;
use chat_proto::v1::chat_service_client::ChatServiceClient;
use chat_proto::v1::file_service_client::FileServiceClient;
use chat_proto::v1::{ListFilesRequest, SendRequest};

use crate::client;
use crate::cluster::{Cluster, poll};

/// How long a message may take to arrive.
const ARRIVE: Duration = Duration::from_secs(30);

fn ctl(c: &Cluster, i: usize, args: &[&str]) -> std::process::Output {
    c.sandbox
        .chatctl_at(&c.members[i].dir.join("run/control.sock"), args)
}

fn lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

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

fn ring(net: u8, n: usize) -> Cluster {
    let mut c = Cluster::new(net);
    let first = c.add(&[]);
    for _ in 1..n {
        c.add(&[c.addr(first)]);
    }
    c.await_ring(Duration::from_secs(60));
    c
}

#[test]
fn an_image_sent_with_send_file_shows_with_its_thumbnail_everywhere() {
    let c = ring(143, 3);
    let bytes = png();
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let path = c.members[0].dir.join("photo.png");
    std::fs::write(&path, &bytes).expect("writes the image");
    let path = path.to_str().expect("utf-8 path");
    let out = ctl(&c, 0, &["send", "--json", "--file", path, "a", "sunset"]);
    assert!(
        out.status.success(),
        "send --file failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = lines(&out).pop().expect("the sent message as JSON");
    assert_eq!(sent["text"], "a sunset");
    assert_eq!(sent["attachment"]["hash"], hash.as_str());
    let id = sent["id"].as_str().expect("an id").to_owned();
    for i in [1, 2] {
        let got = poll(ARRIVE, Duration::from_millis(300), || {
            lines(&ctl(&c, i, &["tail", "-n", "50", "--json"]))
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
        let plain = ctl(&c, i, &["tail", "-n", "50"]);
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
    let out = ctl(&c, 0, &["send", "--json", "--file", path]);
    let sent = lines(&out).pop().expect("the sent message as JSON");
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
    let out = ctl(
        &c,
        0,
        &[
            "send",
            "--json",
            "--file",
            big_path.to_str().expect("utf-8"),
        ],
    );
    let big_id = lines(&out).pop().expect("sent")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let listed = poll(ARRIVE, Duration::from_millis(300), || {
        let files = lines(&ctl(&c, 2, &["files", "--json"]));
        (files.iter().any(|m| m["id"] == big_id.as_str()) && files.len() == 3).then_some(files)
    })
    .expect("C lists the three messages with files");
    assert_eq!(
        listed[2]["attachment"]["media_type"],
        "application/octet-stream"
    );
    let dest = c.members[2].dir.join("got.bin");
    let dest_s = dest.to_str().expect("utf-8");
    let out = ctl(&c, 2, &["get", &big_id, "-o", dest_s]);
    assert!(
        out.status.success(),
        "get failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read(&dest).expect("saved") == big,
        "not byte-identical"
    );
    let out = ctl(&c, 2, &["get", &big_id, "-o", dest_s]);
    assert!(!out.status.success(), "overwrote without --force");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    let out = ctl(&c, 2, &["get", &big_id, "-o", dest_s, "--force"]);
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
        })
        .await
    });
    let status = refused.expect_err("a hash the node does not hold is refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(status.message().contains("attachment_hash"), "{status:?}");
    // And a file that cannot be read is a clear error, nothing sent.
    let out = ctl(&c, 0, &["send", "--file", "/nonexistent/file.png"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}
