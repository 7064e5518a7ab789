//! `Download` with `stream_verified` on real daemons (issue 35's throughput work): the bytes
//! reach the client while the node is still fetching the file (the copy out overlaps the
//! fetch), every byte is the file's, and when the only provider dies halfway the stream ends
//! with an error after some bytes — the client is never told the download is done.

use std::path::Path;
use std::time::{Duration, Instant};

use chat_proto::v1::file_service_client::FileServiceClient;
use chat_proto::v1::{DownloadRequest, download_response};

use crate::client;
use crate::cluster::Cluster;
use crate::files::{await_providers, data, runtime, socket, upload};

/// How long a whole download may take (on two loaded cores, debug build).
const FETCH: Duration = Duration::from_secs(120);

/// What one streamed download brought: the bytes, how many of them arrived before the node
/// reported the file complete (a progress message with `have == size`), and how it ended.
struct Streamed {
    bytes: Vec<u8>,
    before_complete: usize,
    end: Result<(), tonic::Status>,
}

/// Downloads `hash` with `stream_verified`; calls `on_bytes` with the count so far after each
/// chunk (it may kill a provider).
async fn streamed(socket: &Path, hash: &str, mut on_bytes: impl FnMut(usize)) -> Streamed {
    let mut files =
        FileServiceClient::new(client::unix(socket).await).max_decoding_message_size(1 << 20);
    let mut out = Streamed {
        bytes: Vec::new(),
        before_complete: 0,
        end: Ok(()),
    };
    let mut complete = false;
    let started = Instant::now();
    let stream = files
        .download(DownloadRequest {
            hash: hash.to_owned(),
            stream_verified: true,
            ..Default::default()
        })
        .await;
    let mut stream = match stream {
        Ok(s) => s.into_inner(),
        Err(e) => {
            out.end = Err(e);
            return out;
        }
    };
    while started.elapsed() < FETCH {
        match stream.message().await {
            Ok(Some(m)) => match m.item {
                Some(download_response::Item::Progress(p)) => {
                    complete |= p.size > 0 && p.have == p.size;
                }
                Some(download_response::Item::Chunk(c)) => {
                    out.bytes.extend_from_slice(&c);
                    if !complete {
                        out.before_complete = out.bytes.len();
                    }
                    on_bytes(out.bytes.len());
                }
                None => {}
            },
            Ok(None) => return out,
            Err(e) => {
                out.end = Err(e);
                return out;
            }
        }
    }
    out.end = Err(tonic::Status::deadline_exceeded("the test's deadline"));
    out
}

#[test]
fn streamed_bytes_arrive_while_the_file_is_fetched_and_a_dead_provider_ends_the_stream() {
    // A serves each answer at 2 MiB/s (a test build's `CHAT_FILES_TEST_SERVE_KIB_S`): the
    // 8 MiB fetch takes about 4 s, long enough to see bytes arrive before it completes.
    let slow = [("CHAT_FILES_TEST_SERVE_KIB_S", "2048")];
    let mut c = Cluster::new(147);
    let first = c.add_with_env(&[], &slow);
    for _ in 1..3 {
        c.add_with_env(&[c.addr(first)], &slow);
    }
    c.await_ring(Duration::from_secs(60));
    let rt = runtime();
    let bytes = data(8 << 20);
    let (hash, _, _) = rt
        .block_on(upload(&socket(&c, 0), &bytes))
        .expect("uploads");

    // B streams it once the DHT names A as its provider (NOT_FOUND before): byte-identical,
    // much of it before the fetch completed.
    await_providers(&c, 1, &hash, 1);
    let got = rt.block_on(streamed(&socket(&c, 1), &hash, |_| {}));
    got.end.as_ref().expect("B's download completes");
    assert!(got.bytes == bytes, "B's copy is byte-identical");
    eprintln!(
        "{} of {} bytes reached the client before the fetch completed",
        got.before_complete,
        bytes.len()
    );
    assert!(
        got.before_complete >= 1 << 20,
        "at least 1 MiB arrived while the fetch ran ({} bytes)",
        got.before_complete
    );

    // C streams it from A alone (B is stopped), and A dies when C has 2 MiB: the stream
    // ends with an error, after only verified bytes.
    c.kill(1);
    await_providers(&c, 2, &hash, 1);
    let mut killed = false;
    let got = rt.block_on(streamed(&socket(&c, 2), &hash, |n| {
        if n >= 2 << 20 && !killed {
            c.kill(0);
            killed = true;
        }
    }));
    assert!(killed, "C got 2 MiB while A was alive");
    let err = got
        .end
        .expect_err("the download cannot complete without a provider");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert!(
        got.bytes.len() >= 2 << 20 && got.bytes.len() < bytes.len(),
        "some bytes came, not all: {}",
        got.bytes.len()
    );
    assert!(
        got.bytes[..] == bytes[..got.bytes.len()],
        "every byte that came is the file's"
    );
}
