//! A file's life after its message, on real daemons: A sends a file (a PNG under the
//! auto-fetch limit), B and C fetch it by themselves, `chatctl status` shows it held (pinned on
//! A); A deletes the message and within seconds no node holds the file any more, `status`
//! counts it released, and a fresh node D cannot download it from anyone: a clear error and
//! nothing written.

use std::time::Duration;

use crate::cluster::{Cluster, json_lines, poll};

/// How long a message or a removal may take to spread.
const SPREAD: Duration = Duration::from_secs(30);

fn status(c: &Cluster, i: usize) -> serde_json::Value {
    let out = c.ctl(i, &["status", "--json"]);
    assert!(out.status.success(), "status on node {i} failed");
    json_lines(&out).pop().expect("status as JSON")
}

/// A 300 × 200 PNG with a gradient.
fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(300, 200, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encodes");
    out
}

/// Whether node `i` lists the file `hash` (`chatctl files` lists messages; ListFiles the
/// store, as `status` counts it).
fn holds(c: &Cluster, i: usize, hash: &str) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let socket = c.members[i].dir.join("run/control.sock");
    rt.block_on(async {
        use chat_proto::v1::ListFilesRequest;
        use chat_proto::v1::file_service_client::FileServiceClient;
        let mut f = FileServiceClient::new(crate::client::unix(&socket).await);
        f.list_files(ListFilesRequest {}).await
    })
    .map(|r| r.into_inner().files.iter().any(|f| f.hash == hash))
    .unwrap_or(true)
}

#[test]
fn deleting_a_message_removes_its_file_from_every_store() {
    let mut c = Cluster::new(171);
    let first = c.add(&[]);
    for _ in 1..3 {
        c.add(&[c.addr(first)]);
    }
    c.await_ring(Duration::from_secs(60));
    let bytes = png();
    let hash = blake3::hash(&bytes).to_hex().to_string();
    let path = c.members[0].dir.join("plan.png");
    std::fs::write(&path, &bytes).expect("writes");
    let id = c.send_file(0, &path, "the plan")["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    // B and C fetch it by themselves (an image under files.auto_fetch_kb).
    for i in [1, 2] {
        let held = poll(SPREAD, Duration::from_millis(300), || {
            holds(&c, i, &hash).then_some(())
        });
        assert!(held.is_some(), "node {i} never fetched the file");
    }
    let a = status(&c, 0);
    assert_eq!(a["file_store"]["files"], 1, "{a}");
    assert_eq!(
        a["file_store"]["pinned_files"], 1,
        "A's own sent file is pinned: {a}"
    );
    assert_eq!(a["file_store"]["pinned_bytes"], bytes.len() as u64, "{a}");
    let b = status(&c, 1);
    assert_eq!(b["file_store"]["files"], 1, "{b}");
    assert_eq!(b["file_store"]["pinned_files"], 0, "{b}");
    assert!(
        b["file_store"]["bytes_fetched"].as_u64() >= Some(bytes.len() as u64),
        "{b}"
    );
    let human = String::from_utf8_lossy(&c.ctl(1, &["status"]).stdout).into_owned();
    assert!(human.contains("1 held, "), "{human}");

    let out = c.ctl(0, &["delete", &id]);
    assert!(
        out.status.success(),
        "delete: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..3 {
        let gone = poll(SPREAD, Duration::from_millis(200), || {
            (!holds(&c, i, &hash)).then_some(())
        });
        assert!(
            gone.is_some(),
            "node {i} still holds the deleted message's file"
        );
        let s = status(&c, i);
        assert_eq!(s["file_store"]["files"], 0, "node {i}: {s}");
        assert_eq!(s["file_store"]["files_released"], 1, "node {i}: {s}");
        assert_eq!(s["file_store"]["pinned_files"], 0, "node {i}: {s}");
    }

    // A fresh node finds at most the stale provider records, and nobody serves the file.
    let d = c.add(&[c.addr(first)]);
    c.await_ring(Duration::from_secs(60));
    let dest = c.members[d].dir.join("plan.png");
    let out = c.ctl(d, &["get", &hash, "-o", dest.to_str().expect("utf-8")]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "D downloaded a deleted file");
    assert!(err.contains("no provider"), "not a clear error: {err}");
    assert!(!dest.exists(), "a failed download left a file");
    assert!(!holds(&c, d, &hash));
}
