//! The files service between in-process transports on loopback: fetching from several
//! providers, a lying provider dropped and counted, a provider cut mid-transfer and a fetch
//! that resumes.

use std::sync::Arc;
use std::time::Duration;

use chat_blobs::{BlobStore, Hash, StoreConfig};
use chat_overlay::Peer;
use chat_overlay::wire::Message;
use ed25519_dalek::SigningKey;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::*;
use crate::transport::{Config, Inbound};

const CFG: StoreConfig = StoreConfig {
    max_file_bytes: 64 << 20,
    quota_bytes: 256 << 20,
};

pub(super) fn transport(seed: u8) -> (Transport<Message>, mpsc::Receiver<Inbound<Message>>) {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let (tx, rx) = mpsc::channel(1024);
    let cfg = Config::new("127.0.0.1:0".parse().expect("addr"), 16);
    (Transport::bind(&key, cfg, tx).expect("binds"), rx)
}

pub(super) fn peer_of(t: &Transport<Message>) -> Peer {
    Peer {
        id: t.me(),
        addr: t.local_addr().expect("addr"),
    }
}

/// Deterministic bytes that do not repeat at any small period.
pub(super) fn data(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

/// A node running the files service; the temporary directory lives as long as it.
pub(super) struct Node {
    pub(super) files: Arc<Files>,
    pub(super) peer: Peer,
    _dir: tempfile::TempDir,
    _inbound: mpsc::Receiver<Inbound<Message>>,
}

pub(super) fn node(seed: u8) -> Node {
    let dir = tempfile::tempdir().expect("tempdir");
    let (t, inbound) = transport(seed);
    let peer = peer_of(&t);
    let files = Files::open(dir.path(), CFG, t, None).expect("opens");
    let streams = files.listen();
    tokio::spawn(files.clone().run(streams));
    Node {
        files,
        peer,
        _dir: dir,
        _inbound: inbound,
    }
}

/// How a fake provider spoils its honest answer.
#[derive(Clone, Copy)]
pub(super) enum Spoil {
    /// One byte flipped at this fraction of the answer.
    Flip(f64),
    /// Only this fraction of the answer, then the stream is dropped (reset).
    Cut(f64),
}

/// A provider holding `bytes` that answers requests with its honest encoding, spoiled.
pub(super) fn fake(seed: u8, bytes: &[u8], spoil: Spoil) -> (Peer, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = BlobStore::open(dir.path(), CFG).expect("store");
    let hash = store.import_bytes(bytes).expect("import").hash;
    let source = Arc::new(store.source(&hash).expect("source"));
    let (t, inbound) = transport(seed);
    let peer = peer_of(&t);
    let mut streams = t.bulk_listen(kind::BLOBS, 8);
    tokio::spawn(async move {
        let _keep = (t, inbound, store);
        while let Some(mut stream) = streams.recv().await {
            let Ok(req) = serve::read_request(&mut stream).await else {
                continue;
            };
            let mut answer = Vec::new();
            source.serve(&req.ranges, &mut answer).expect("serves");
            match spoil {
                Spoil::Flip(at) => {
                    let i = ((answer.len() as f64) * at) as usize;
                    answer[i] ^= 0x55;
                    let _ = stream.write_all(&answer).await;
                    let _ = stream.finish();
                    let _ = tokio::time::timeout(Duration::from_secs(5), stream.stopped()).await;
                }
                Spoil::Cut(at) => {
                    let n = ((answer.len() as f64) * at) as usize;
                    let _ = stream.write_all(&answer[..n]).await;
                    let _ = stream.flush().await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    drop(stream);
                }
            }
        }
    });
    (peer, dir)
}

async fn fetch(n: &Node, hash: Hash, size: u64, from: Vec<Peer>) -> Result<BlobInfo, FilesError> {
    tokio::time::timeout(Duration::from_secs(60), n.files.fetch(hash, size, from))
        .await
        .expect("the fetch ends within a minute")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_from_several_providers_byte_identical() {
    let bytes = data(3 << 20);
    let (a, b, c) = (node(1), node(2), node(3));
    let info = a.files.import_bytes(bytes.clone()).await.expect("import");
    b.files.import_bytes(bytes.clone()).await.expect("import");
    let got = fetch(&c, info.hash, info.size, vec![a.peer, b.peer])
        .await
        .expect("fetched");
    assert_eq!(got.hash, info.hash);
    assert_eq!(c.files.read_to_vec(info.hash).await.expect("read"), bytes);
    let (sa, sb) = (
        a.files.stats().bytes_served.load(Ordering::Relaxed),
        b.files.stats().bytes_served.load(Ordering::Relaxed),
    );
    assert!(sa > 0 && sb > 0, "both providers served: {sa} {sb}");
    assert_eq!(
        c.files.stats().bytes_fetched.load(Ordering::Relaxed),
        bytes.len() as u64
    );
    // Fetched, C serves it in turn.
    let d = node(4);
    fetch(&d, info.hash, info.size, vec![c.peer])
        .await
        .expect("fetched from the fetcher");
    assert_eq!(d.files.read_to_vec(info.hash).await.expect("read"), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_provider_is_dropped_and_counted() {
    let bytes = data(2 << 20);
    let a = node(11);
    let info = a.files.import_bytes(bytes.clone()).await.expect("import");
    let (liar, _d) = fake(12, &bytes, Spoil::Flip(0.6));
    // Only the liar: a clear error, nothing complete, the liar counted.
    let c = node(13);
    let err = fetch(&c, info.hash, info.size, vec![liar])
        .await
        .expect_err("only a liar");
    assert!(
        matches!(err, FilesError::NoProvider { bad: 1, .. }),
        "{err}"
    );
    assert!(c.files.list().await.expect("list").is_empty());
    assert_eq!(c.files.stats().bad_providers.load(Ordering::Relaxed), 1);
    // With an honest provider beside it, the fetch completes with the right bytes.
    let d = node(14);
    fetch(&d, info.hash, info.size, vec![liar, a.peer])
        .await
        .expect("fetched");
    assert_eq!(d.files.read_to_vec(info.hash).await.expect("read"), bytes);
    assert_eq!(d.files.stats().bad_providers.load(Ordering::Relaxed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_transfer_resumes_from_what_verified() {
    let bytes = data(2 << 20);
    let (cutter, _d) = fake(21, &bytes, Spoil::Cut(0.5));
    let c = node(22);
    let hash = Hash::of(&bytes);
    let size = bytes.len() as u64;
    let err = fetch(&c, hash, size, vec![cutter])
        .await
        .expect_err("only cut answers");
    assert!(
        matches!(
            err,
            FilesError::NoProvider {
                bad: 0,
                gone: 1,
                ..
            }
        ),
        "{err}"
    );
    let hash2 = hash;
    let kept = c
        .files
        .blocking(move |s| Ok(s.verified(&hash2)))
        .await
        .expect("store")
        .expect("a partial blob");
    assert!(!kept.is_empty(), "the cut answers' verified part is kept");
    // An honest provider completes it; only what was missing is fetched.
    let a = node(23);
    a.files.import_bytes(bytes.clone()).await.expect("import");
    let cut = c.files.stats().bytes_fetched.load(Ordering::Relaxed);
    assert!(cut > 0, "the cut answers' verified bytes count as fetched");
    fetch(&c, hash, size, vec![a.peer]).await.expect("resumed");
    assert_eq!(c.files.read_to_vec(hash).await.expect("read"), bytes);
    let fetched = c.files.stats().bytes_fetched.load(Ordering::Relaxed) - cut;
    assert!(fetched < size, "only what was missing: {fetched} of {size}");
    assert_eq!(fetched + cut, size, "every byte counted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_blob_is_never_served() {
    let bytes = data(1 << 20);
    let a = node(31);
    let info = a.files.import_bytes(bytes.clone()).await.expect("import");
    // Damage A's copy on disk.
    let path = a
        ._dir
        .path()
        .join("blobs/complete")
        .join(info.hash.to_string());
    let mut on_disk = std::fs::read(&path).expect("blob file");
    on_disk[700_000] ^= 1;
    std::fs::write(&path, on_disk).expect("damage");
    let c = node(32);
    let err = fetch(&c, info.hash, info.size, vec![a.peer])
        .await
        .expect_err("nothing right to fetch");
    assert!(matches!(err, FilesError::NoProvider { .. }), "{err}");
    assert!(c.files.list().await.expect("list").is_empty());
    assert_eq!(a.files.stats().corrupt.load(Ordering::Relaxed), 1);
    assert!(
        a.files.list().await.expect("list").is_empty(),
        "A removed it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_is_refused() {
    let a = node(41);
    let (t, _in) = transport(42);
    let mut s = t.open_bulk(a.peer, HEADER).await.expect("opens");
    s.write_all(&[9u8; 40]).await.expect("writes");
    let _ = s.finish();
    let mut buf = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut s, &mut buf).await;
    assert!(read.is_err(), "reset, not answered: {read:?} {buf:?}");
    assert_eq!(a.files.stats().bad_requests.load(Ordering::Relaxed), 1);
}

/// `len` bytes of [`data`] made distinct by `tag`.
fn tagged(len: usize, tag: u8) -> Vec<u8> {
    let mut b = data(len);
    b[0] ^= tag;
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_pressure_evicts_an_old_public_file_never_a_received_private_one() {
    let sender = node(60);
    let dir = tempfile::tempdir().expect("tempdir");
    let (t, _inbound) = transport(61);
    let tight = StoreConfig {
        max_file_bytes: 1 << 20,
        quota_bytes: 260_000,
    };
    let files = Files::open(dir.path(), tight, t, None).expect("opens");
    // A private file a local account received: pinned, then fetched (as `fetch_received`
    // does); the least recently used file of the store.
    let private = tagged(100_000, 1);
    let p = sender
        .files
        .import_bytes(private.clone())
        .await
        .expect("import");
    files.keep(p.hash).await.expect("pin");
    files
        .fetch(p.hash, p.size, vec![sender.peer])
        .await
        .expect("fetched");
    // Another node's public file, fetched later: evictable.
    let public = sender
        .files
        .import_bytes(tagged(100_000, 2))
        .await
        .expect("import");
    files
        .fetch(public.hash, public.size, vec![sender.peer])
        .await
        .expect("fetched");
    let s = files.summary().await.expect("summary");
    assert_eq!(
        (s.files, s.pinned_files, s.pinned_bytes, s.evictable_bytes),
        (2, 1, 100_000, 100_000)
    );
    // A third file needs room: the public one goes although the private one is older.
    let newer = files
        .import_bytes(tagged(100_000, 3))
        .await
        .expect("room made");
    assert!(files.info(p.hash).await.expect("info").is_some());
    assert!(files.info(public.hash).await.expect("info").is_none());
    assert!(files.info(newer.hash).await.expect("info").is_some());
    // More than the free and evictable bytes together: refused, naming the quota's setting,
    // and nothing is evicted for it.
    match files.import_bytes(tagged(200_000, 4)).await {
        Err(e @ FilesError::Store(chat_blobs::StoreError::QuotaFull { .. })) => {
            assert!(e.to_string().contains("files.store_mb"), "{e}")
        }
        other => panic!("expected the quota's refusal, got {other:?}"),
    }
    assert_eq!(files.read_to_vec(p.hash).await.expect("kept"), private);
    assert!(files.info(newer.hash).await.expect("info").is_some());
    // The message went: the private file is released like any other.
    assert!(files.release(p.hash).await.expect("released"));
    assert_eq!(files.summary().await.expect("summary").pinned_files, 0);
}
