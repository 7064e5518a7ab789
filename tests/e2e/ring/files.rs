//! Files on real daemons, through the gRPC `FileService`: a 5 MB file uploaded on A is
//! downloaded byte-identical on C (found through A's provider record in the DHT) and, with A
//! killed, on D (from C, which announced itself once it had the file); a file whose only
//! provider's copy is damaged on disk gives a clear error and nothing is stored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chat_proto::v1::file_service_client::FileServiceClient;
use chat_proto::v1::record_service_client::RecordServiceClient;
use chat_proto::v1::{
    DownloadRequest, GetRecordRequest, ListFilesRequest, UploadMetadata, UploadRequest,
    download_response, upload_request,
};

use crate::client;
use crate::cluster::{Cluster, poll};

/// Deterministic bytes that do not repeat at any small period.
pub fn data(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[5]
        })
        .collect()
}

pub fn socket(c: &Cluster, i: usize) -> PathBuf {
    c.members[i].dir.join("run/control.sock")
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

pub async fn upload(socket: &Path, bytes: &[u8]) -> Result<(String, u64, String), tonic::Status> {
    let mut files =
        FileServiceClient::new(client::unix(socket).await).max_decoding_message_size(1 << 20);
    let mut msgs = vec![UploadRequest {
        item: Some(upload_request::Item::Metadata(UploadMetadata {
            name: "test.bin".into(),
            size: bytes.len() as u64,
            ..Default::default()
        })),
    }];
    for c in bytes.chunks(64 * 1024) {
        msgs.push(UploadRequest {
            item: Some(upload_request::Item::Chunk(c.to_vec())),
        });
    }
    let file = files
        .upload(tokio_stream::iter(msgs))
        .await?
        .into_inner()
        .file
        .expect("a file");
    Ok((file.hash, file.size, file.media_type))
}

/// Downloads `hash` at the node of `socket` (a progress message must come first).
async fn download(socket: &Path, hash: &str) -> Result<Vec<u8>, tonic::Status> {
    let mut files =
        FileServiceClient::new(client::unix(socket).await).max_decoding_message_size(1 << 20);
    let mut stream = files
        .download(DownloadRequest {
            hash: hash.to_owned(),
            size: 0,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut out = Vec::new();
    let mut progress = false;
    while let Some(m) = stream.message().await? {
        match m.item {
            Some(download_response::Item::Progress(_)) => {
                assert!(out.is_empty(), "progress after data");
                progress = true;
            }
            Some(download_response::Item::Chunk(c)) => out.extend_from_slice(&c),
            None => {}
        }
    }
    assert!(progress, "a progress message comes first");
    Ok(out)
}

pub async fn held(socket: &Path) -> usize {
    let mut files = FileServiceClient::new(client::unix(socket).await);
    files
        .list_files(ListFilesRequest {})
        .await
        .expect("lists")
        .into_inner()
        .files
        .len()
}

/// The provider records the DHT holds for `hash`, asked at the node of `socket`.
pub async fn providers(socket: &Path, hash: &str) -> usize {
    let Ok(key) = hex::decode(hash) else {
        return 0;
    };
    let mut records = RecordServiceClient::new(client::unix(socket).await);
    records
        .get_record(GetRecordRequest {
            kind: "provider".into(),
            key,
        })
        .await
        .map_or(0, |r| r.into_inner().records.len())
}

/// Waits until the DHT names `n` providers of `hash` (asked at node `at`).
pub fn await_providers(c: &Cluster, at: usize, hash: &str, n: usize) {
    let rt = runtime();
    let seen = poll(Duration::from_secs(30), Duration::from_millis(300), || {
        let k = rt.block_on(providers(&socket(c, at), hash));
        (k >= n).then_some(k)
    });
    assert!(
        seen.is_some(),
        "the DHT never named {n} providers of {hash}"
    );
}

/// `n` daemons joined through the first, once they form one ring.
pub fn ring(net: u8, n: usize) -> Cluster {
    let mut c = Cluster::new(net);
    let first = c.add(&[]);
    for _ in 1..n {
        c.add(&[c.addr(first)]);
    }
    c.await_ring(Duration::from_secs(60));
    c
}

#[test]
fn a_file_reaches_other_nodes_after_its_uploader_dies() {
    let mut c = ring(137, 4);
    let rt = runtime();
    let bytes = data(5 << 20);
    let (hash, size, media) = rt
        .block_on(upload(&socket(&c, 0), &bytes))
        .expect("uploads");
    assert_eq!(hash, blake3::hash(&bytes).to_hex().to_string());
    assert_eq!(size, bytes.len() as u64);
    assert_eq!(media, "application/octet-stream");
    // C finds A through its provider record and fetches it.
    let got = poll(Duration::from_secs(30), Duration::from_millis(300), || {
        rt.block_on(download(&socket(&c, 2), &hash)).ok()
    })
    .expect("C downloads the file");
    assert!(got == bytes, "C's copy is byte-identical");
    // With A gone, D fetches it from C.
    c.kill(0);
    let got = poll(Duration::from_secs(60), Duration::from_millis(300), || {
        rt.block_on(download(&socket(&c, 3), &hash)).ok()
    })
    .expect("D downloads the file with A dead");
    assert!(got == bytes, "D's copy is byte-identical");
    // B never asked: it holds nothing.
    assert_eq!(rt.block_on(held(&socket(&c, 1))), 0);
}

#[test]
fn a_damaged_only_copy_gives_a_clear_error_and_stores_nothing() {
    let c = ring(138, 3);
    let rt = runtime();
    let bytes = data(1 << 20);
    let (hash, _, _) = rt
        .block_on(upload(&socket(&c, 0), &bytes))
        .expect("uploads");
    // Damage A's copy on disk: A's own check while serving catches it.
    let path = c.members[0].dir.join("data/blobs/complete").join(&hash);
    let mut on_disk = std::fs::read(&path).expect("the stored file");
    on_disk[600_000] ^= 0x40;
    std::fs::write(&path, on_disk).expect("damages it");
    let err = rt
        .block_on(download(&socket(&c, 1), &hash))
        .expect_err("no good copy anywhere");
    // B found A through the DHT (not NOT_FOUND) and A could not deliver a verified copy.
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(
        err.message().contains("no provider could deliver") && err.message().contains(&hash),
        "the error says what failed: {}",
        err.message()
    );
    assert_eq!(rt.block_on(held(&socket(&c, 1))), 0, "nothing stored on B");
    let complete = c.members[1].dir.join("data/blobs/complete");
    let stored = std::fs::read_dir(&complete).map_or(0, |d| d.count());
    assert_eq!(stored, 0, "no complete blob in B's data directory");
}
