//! Uploads and downloads through the client operations on one node (no ring): bad uploads
//! leave nothing behind, a good one is stored and downloaded whole.

use std::sync::Arc;

use chat_blobs::StoreConfig;
use chat_overlay::wire::Message;
use ed25519_dalek::SigningKey;
use tokio::sync::mpsc;

use super::*;
use crate::transport::{Config, Inbound, Transport};

struct One {
    ops: FileOps,
    dir: tempfile::TempDir,
    _inbound: mpsc::Receiver<Inbound<Message>>,
}

fn one() -> One {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = SigningKey::from_bytes(&[3; 32]);
    let (tx, inbound) = mpsc::channel(16);
    let cfg = Config::new("127.0.0.1:0".parse().expect("addr"), 8);
    let t: Transport<Message> = Transport::bind(&key, cfg, tx).expect("binds");
    let store = StoreConfig {
        max_file_bytes: 1 << 20,
        quota_bytes: 8 << 20,
    };
    let files = Files::open(dir.path(), store, t, None).expect("opens");
    One {
        ops: FileOps::new(Arc::clone(&files)),
        dir,
        _inbound: inbound,
    }
}

fn meta(size: u64) -> Result<UploadItem, ApiError> {
    Ok(UploadItem::Metadata(UploadMetadata {
        name: "x".into(),
        size,
        ..Default::default()
    }))
}

fn chunk(b: &[u8]) -> Result<UploadItem, ApiError> {
    Ok(UploadItem::Chunk(b.to_vec()))
}

/// Nothing in the store's `tmp/` or complete blobs.
fn left_behind(o: &One) -> usize {
    ["blobs/tmp", "blobs/complete"]
        .iter()
        .map(|d| std::fs::read_dir(o.dir.path().join(d)).map_or(0, |r| r.count()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_and_leave_nothing() {
    let o = one();
    let cases: Vec<(&str, Vec<Result<UploadItem, ApiError>>)> = vec![
        ("no metadata", vec![chunk(b"abc")]),
        ("empty", vec![]),
        ("too many bytes", vec![meta(2), chunk(b"abc")]),
        ("too few bytes", vec![meta(4), chunk(b"abc")]),
        ("metadata twice", vec![meta(3), meta(3), chunk(b"abc")]),
        ("over the limit", vec![meta(2 << 20), chunk(b"abc")]),
        (
            "cut by the client",
            vec![
                meta(6),
                chunk(b"abc"),
                Err(ApiError::Unavailable("cut".into())),
            ],
        ),
    ];
    for (what, items) in cases {
        let err = o
            .ops
            .upload(tokio_stream::iter(items))
            .await
            .expect_err(what);
        assert!(
            matches!(err, ApiError::InvalidArgument(_) | ApiError::Unavailable(_)),
            "{what}: {err:?}"
        );
        assert_eq!(left_behind(&o), 0, "{what}: nothing left behind");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_stored_and_downloaded_whole() {
    let o = one();
    let png = b"\x89PNG\r\n\x1a\n and the rest".to_vec();
    let mut bytes = png.clone();
    bytes.resize(200_000, 7);
    let items = vec![
        meta(bytes.len() as u64),
        chunk(&bytes[..100_000]),
        chunk(&bytes[100_000..]),
    ];
    let up = o
        .ops
        .upload(tokio_stream::iter(items))
        .await
        .expect("uploads");
    let file = up.file.expect("file");
    assert_eq!(file.hash, blake3::hash(&bytes).to_hex().to_string());
    assert_eq!(file.media_type, "image/png", "checked from the bytes");
    assert_eq!(o.ops.stat(&file.hash).await.expect("stat").size, 200_000);
    assert_eq!(o.ops.list().await.expect("list").files.len(), 1);
    let mut rx = o
        .ops
        .download(&file.hash, 0, false)
        .await
        .expect("downloads");
    let mut got = Vec::new();
    while let Some(m) = rx.recv().await {
        if let Some(download_response::Item::Chunk(c)) = m.expect("no error").item {
            assert!(c.len() <= CHUNK);
            got.extend_from_slice(&c);
        }
    }
    assert!(got == bytes, "the same bytes");
    let bad = o
        .ops
        .download("zz", 0, false)
        .await
        .expect_err("a bad hash");
    assert!(matches!(bad, ApiError::InvalidArgument(_)), "{bad:?}");
    let unknown = blake3::hash(b"nobody has this").to_hex().to_string();
    let none = o
        .ops
        .download(&unknown, 0, false)
        .await
        .expect_err("no provider");
    assert!(matches!(none, ApiError::NotFound(_)), "{none:?}");
    let none = o.ops.stat(&unknown).await.expect_err("not held");
    assert!(matches!(none, ApiError::NotFound(_)), "{none:?}");
}
