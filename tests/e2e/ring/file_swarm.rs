//! Issue 35's judged scenarios for public files, on real daemons: a 50 MB file sent to #lobby
//! on A is fetched by four nodes at once from A and B (which fetched it earlier); A is killed
//! with SIGKILL when the four are about halfway (their progress, with providers slowed to
//! 4 MiB/s an answer so that halfway can be seen), and each completes from B, byte-identical.
//! A provider that serves wrong bytes (a test build's `CHAT_FILES_TEST_CORRUPT_SERVE`) is
//! detected, counted (`files_bad_providers` in `/metrics`) and bypassed: the download
//! completes byte-identical from the honest provider and only verified bytes were stored.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chat_proto::v1::file_service_client::FileServiceClient;
use chat_proto::v1::{DownloadRequest, download_response};

use crate::client;
use crate::cluster::{Cluster, json_lines, poll};
use crate::files::{await_providers, data, runtime, socket, upload};

/// How long a whole fetch may take (on two loaded cores, debug build).
const FETCH: Duration = Duration::from_secs(120);

/// What arrived of one download: its BLAKE3 hash (hex) and length.
type Got = Result<(String, u64), tonic::Status>;

/// Downloads `hash` (`size` bytes) on the node of `socket`, keeping `have` up to date from
/// the progress messages; hashes the bytes as they come.
async fn download_watched(socket: &Path, hash: &str, size: u64, have: &AtomicU64) -> Got {
    let mut files =
        FileServiceClient::new(client::unix(socket).await).max_decoding_message_size(1 << 20);
    let mut stream = files
        .download(DownloadRequest {
            hash: hash.to_owned(),
            size,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut hasher = blake3::Hasher::new();
    let mut n = 0u64;
    while let Some(m) = stream.message().await? {
        match m.item {
            Some(download_response::Item::Progress(p)) => have.store(p.have, Ordering::Relaxed),
            Some(download_response::Item::Chunk(c)) => {
                hasher.update(&c);
                n += c.len() as u64;
            }
            None => {}
        }
    }
    Ok((hasher.finalize().to_hex().to_string(), n))
}

/// Starts a download on node `i` in a thread of its own; its progress goes to `have`.
fn spawn_download(
    c: &Cluster,
    i: usize,
    hash: &str,
    size: u64,
    have: Arc<AtomicU64>,
) -> std::thread::JoinHandle<Got> {
    let socket = socket(c, i);
    let hash = hash.to_owned();
    std::thread::spawn(move || {
        let rt = runtime();
        rt.block_on(async {
            tokio::time::timeout(FETCH, download_watched(&socket, &hash, size, &have))
                .await
                .unwrap_or_else(|_| {
                    Err(tonic::Status::deadline_exceeded("the fetch took too long"))
                })
        })
    })
}

/// Files of the blob store's fetches under way, in node `i`'s data directory.
fn partials(c: &Cluster, i: usize) -> usize {
    let dir = c.members[i].dir.join("data/blobs/partial");
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[test]
fn a_50_mb_file_reaches_four_fetchers_while_its_sender_dies_halfway() {
    // Providers serve each answer at 4 MiB/s (a test build's `CHAT_FILES_TEST_SERVE_KIB_S`):
    // unthrottled, the four fetch 50 MB in about a second on loopback, too fast to catch
    // halfway.
    let slow = [("CHAT_FILES_TEST_SERVE_KIB_S", "4096")];
    let mut c = Cluster::new(191);
    let first = c.add_with_env(&[], &slow);
    for _ in 1..6 {
        c.add_with_env(&[c.addr(first)], &slow);
    }
    c.await_ring(Duration::from_secs(60));
    let (a, seed, fetchers) = (0, 1, [2usize, 3, 4, 5]);
    // A sends the file to #lobby.
    let bytes = data(50 << 20);
    let want = blake3::hash(&bytes).to_hex().to_string();
    let path = c.members[a].dir.join("big.bin");
    std::fs::write(&path, &bytes).expect("writes the file");
    drop(bytes);
    let sent = c.send_file(a, &path, "big");
    assert_eq!(sent["attachment"]["hash"], want.as_str());
    let id = sent["id"].as_str().expect("an id").to_owned();
    // Every fetcher sees the message with its reference (and too big to fetch by itself).
    let mut size = 0;
    for &i in fetchers.iter().chain([&seed]) {
        let m = poll(Duration::from_secs(30), Duration::from_millis(300), || {
            json_lines(&c.ctl(i, &["tail", "-n", "20", "--json"]))
                .into_iter()
                .find(|m| m["id"] == id.as_str())
        })
        .unwrap_or_else(|| panic!("node {i} never showed the message"));
        size = m["attachment"]["size"].as_u64().expect("a size");
    }
    assert_eq!(size, 50 << 20);

    // B fetches it first: a second provider.
    let b = spawn_download(&c, seed, &want, size, Arc::default())
        .join()
        .expect("B's download");
    assert_eq!(b.expect("B downloads"), (want.clone(), size));
    await_providers(&c, fetchers[0], &want, 2);

    // The four fetch at once; A dies when they are halfway.
    let started = Instant::now();
    let haves: Vec<Arc<AtomicU64>> = fetchers.iter().map(|_| Arc::default()).collect();
    let running: Vec<_> = fetchers
        .iter()
        .zip(&haves)
        .map(|(&i, have)| spawn_download(&c, i, &want, size, have.clone()))
        .collect();
    let progress = || -> Vec<u64> { haves.iter().map(|h| h.load(Ordering::Relaxed)).collect() };
    let halfway = poll(FETCH, Duration::from_millis(20), || {
        let p = progress();
        (p.iter().sum::<u64>() >= 2 * size).then_some(p)
    })
    .expect("the fetchers never got halfway");
    c.kill(a);
    eprintln!(
        "A killed after {:?}, the fetchers had {halfway:?} of {size} bytes",
        started.elapsed()
    );
    assert!(
        halfway.iter().all(|&h| h < size),
        "a fetcher was done before A died: {halfway:?}"
    );
    for (k, r) in running.into_iter().enumerate() {
        let i = fetchers[k];
        let got = r.join().expect("a download thread");
        let (hash, n) = got.unwrap_or_else(|e| panic!("node {i}'s fetch failed: {e:?}"));
        assert_eq!(n, size, "node {i} got every byte");
        assert_eq!(hash, want, "node {i}'s copy is byte-identical");
        assert_eq!(partials(&c, i), 0, "node {i} keeps no partial blob");
    }
    eprintln!("all four complete after {:?}", started.elapsed());
    assert!(started.elapsed() < FETCH);
}

/// A loopback port free now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The value of counter `name` in `/metrics` at `web`.
fn metric(web: SocketAddr, name: &str) -> Option<u64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(web).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {web}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.split([' ', '{']).next().is_some_and(|m| m.contains(name)))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

#[test]
fn a_provider_serving_wrong_bytes_is_detected_counted_and_bypassed() {
    let mut c = Cluster::new(192);
    let a = c.add(&[]);
    // H fetches honestly but flips a bit of every answer it serves.
    let h = c.add_with_env(&[c.addr(a)], &[("CHAT_FILES_TEST_CORRUPT_SERVE", "20000")]);
    let web: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    let web_s = web.to_string();
    let f = c.add_with_env(&[c.addr(a)], &[("CHATD_WEB__LISTEN", &web_s)]);
    c.await_ring(Duration::from_secs(60));
    let rt = runtime();
    let bytes = data(8 << 20);
    let (hash, size, _) = rt
        .block_on(upload(&socket(&c, a), &bytes))
        .expect("uploads");
    let got = spawn_download(&c, h, &hash, size, Arc::default())
        .join()
        .expect("H's download");
    assert_eq!(got.expect("H downloads"), (hash.clone(), size));
    await_providers(&c, f, &hash, 2);
    assert_eq!(metric(web, "files_bad_providers"), Some(0), "none yet");

    // F asks A and H for a piece each: H's does not verify.
    let got = spawn_download(&c, f, &hash, size, Arc::default())
        .join()
        .expect("F's download");
    assert_eq!(
        got.expect("F downloads from the honest provider"),
        (hash.clone(), size),
        "F's copy is byte-identical"
    );
    assert_eq!(
        metric(web, "files_bad_providers"),
        Some(1),
        "H was counted as a bad provider"
    );
    // Only verified bytes were stored: F's stored copy is the file, and no partial is left.
    let stored = std::fs::read(c.members[f].dir.join("data/blobs/complete").join(&hash))
        .expect("F stores the file");
    assert!(stored == bytes, "F's stored copy is byte-identical");
    assert_eq!(partials(&c, f), 0);
    let log = c.members[f]
        .daemon
        .as_ref()
        .map(|d| d.log_tail(400))
        .unwrap_or_default();
    assert!(
        log.contains("a provider sent bytes that do not verify"),
        "F's log says why H was dropped"
    );
}
