//! In-process tests of bulk streams: two or more transports on loopback, and the figure of
//! docs/performance.md ("Bulk streams", an ignored test run in release).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_overlay::ring::RingNotice;
use chat_overlay::wire::{Message, Notice};
use ed25519_dalek::SigningKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::bulk::{kind, reset};
use super::*;

type Node = (Transport<Message>, mpsc::Receiver<Inbound<Message>>);

fn node_with(seed: u8, bulk: BulkConfig) -> Node {
    let key = SigningKey::from_bytes(&[seed; 32]);
    let (tx, rx) = mpsc::channel(1024);
    let cfg = Config {
        bulk,
        ..Config::new("127.0.0.1:0".parse().expect("addr"), 8)
    };
    (Transport::bind(&key, cfg, tx).expect("binds"), rx)
}

fn node(seed: u8) -> Node {
    node_with(seed, BulkConfig::default())
}

fn peer_of(t: &Transport<Message>) -> Peer {
    Peer {
        id: t.me(),
        addr: t.local_addr().expect("addr"),
    }
}

const TEST: BulkHeader = BulkHeader {
    kind: kind::TEST,
    version: 1,
};

fn notify() -> Message {
    Message::Notice(Notice::Ring(RingNotice::Notify))
}

/// Deterministic bytes that do not compress or repeat at any small period.
fn data(len: usize) -> Vec<u8> {
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

/// Polls `cond` until it holds or `secs` pass.
async fn poll(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What one measured transfer gave.
struct Run {
    /// Seconds from the first byte written to the last byte read.
    secs: f64,
    /// Whether the bytes read are the bytes written.
    identical: bool,
    /// The peer the receiving owner was handed.
    peer: Peer,
    /// Latency of every frame A sent to B while the transfer ran.
    frames: Vec<Duration>,
}

/// A sends `payload` to B on one bulk stream while it sends B a frame every `gap`.
async fn transfer(
    a: &Transport<Message>,
    b: &Transport<Message>,
    owner: &mut mpsc::Receiver<BulkStream>,
    b_rx: &mut mpsc::Receiver<Inbound<Message>>,
    payload: Arc<Vec<u8>>,
    gap: Duration,
) -> Run {
    let mut out = a.open_bulk(peer_of(b), TEST).await.expect("opens");
    let mut inc = tokio::time::timeout(Duration::from_secs(10), owner.recv())
        .await
        .expect("handed over in time")
        .expect("owner open");
    assert_eq!(inc.header(), TEST);
    let peer = inc.peer();
    let start = Instant::now();
    let want = blake3::hash(&payload);
    let len = payload.len();
    let reader = tokio::spawn(async move {
        let mut h = blake3::Hasher::new();
        let mut n = 0;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let k = inc.read(&mut buf).await.expect("reads");
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            n += k;
        }
        (n, h.finalize(), start.elapsed())
    });
    let writer = tokio::spawn(async move {
        for chunk in payload.chunks(64 * 1024) {
            out.write_all(chunk).await.expect("writes");
        }
        out.finish().expect("finishes");
        out.stopped().await.expect("delivered")
    });
    let frames = frames(a, b, b_rx, gap, || reader.is_finished()).await;
    let (n, got, elapsed) = reader.await.expect("reader");
    assert_eq!(
        writer.await.expect("writer"),
        None,
        "not stopped by the peer"
    );
    Run {
        secs: elapsed.as_secs_f64(),
        identical: n == len && got == want,
        peer,
        frames,
    }
}

/// A sends B a frame every `gap` until `done`; the latency of each (frames of one link arrive
/// in order).
async fn frames(
    a: &Transport<Message>,
    b: &Transport<Message>,
    b_rx: &mut mpsc::Receiver<Inbound<Message>>,
    gap: Duration,
    mut done: impl FnMut() -> bool,
) -> Vec<Duration> {
    let mut sent = VecDeque::new();
    let mut latencies = Vec::new();
    let mut tick = tokio::time::interval(gap);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if done() {
                    break;
                }
                a.send(peer_of(b), &notify());
                sent.push_back(Instant::now());
            }
            Some(m) = b_rx.recv() => {
                if let (Inbound::Message { at, .. }, Some(t)) = (m, sent.pop_front()) {
                    latencies.push(at.saturating_duration_since(t));
                }
            }
        }
    }
    while let Some(t) = sent.pop_front() {
        match tokio::time::timeout(Duration::from_secs(10), b_rx.recv()).await {
            Ok(Some(Inbound::Message { at, .. })) => {
                latencies.push(at.saturating_duration_since(t))
            }
            other => panic!("frame lost: {other:?}"),
        }
    }
    latencies
}

fn percentile(v: &[Duration], p: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_mb_arrive_byte_identical_while_frames_keep_flowing() {
    let (a, _a_rx) = node(40);
    let (b, mut b_rx) = node(41);
    let mut owner = b.bulk_listen(kind::TEST, 4);
    // The connection exists already (a ring exchange came first), as in the daemon.
    let warm = frames(&a, &b, &mut b_rx, Duration::from_millis(1), {
        let mut n = 0;
        move || {
            n += 1;
            n > 3
        }
    })
    .await;
    assert_eq!(warm.len(), 3);
    let payload = Arc::new(data(20 * 1024 * 1024));
    let run = transfer(
        &a,
        &b,
        &mut owner,
        &mut b_rx,
        payload,
        Duration::from_millis(2),
    )
    .await;
    assert!(run.identical, "the bytes read are the bytes written");
    // The owner is handed the identity A's certificate proves, at A's address.
    assert_eq!(run.peer, peer_of(&a));
    assert!(
        !run.frames.is_empty(),
        "frames were sent during the transfer"
    );
    let worst = run.frames.iter().max().copied().unwrap_or_default();
    assert!(
        worst < Duration::from_millis(500),
        "a frame sent during the transfer took {worst:?} (transfer {:.3} s, {} frames)",
        run.secs,
        run.frames.len()
    );
    assert_eq!(b.bulk_open(), 0, "the finished stream gave its place back");
    assert_eq!(
        a.peers().len(),
        1,
        "the frames' connection carried the stream"
    );
}

#[tokio::test]
async fn an_unknown_kind_is_refused_and_counted() {
    let (a, _a_rx) = node(42);
    let (b, _b_rx) = node(43);
    let _owner = b.bulk_listen(kind::TEST, 4);
    let header = BulkHeader {
        kind: 0x7777,
        version: 1,
    };
    let mut s = a.open_bulk(peer_of(&b), header).await.expect("opens");
    let code = tokio::time::timeout(Duration::from_secs(10), s.stopped())
        .await
        .expect("refused in time")
        .expect("a stop, not a lost connection");
    assert_eq!(code, Some(reset::UNKNOWN_KIND));
    assert_eq!(b.drops().get(Reason::BulkUnknownKind), 1);
    let mut buf = [0u8; 1];
    assert!(s.read(&mut buf).await.is_err(), "reset both ways");
    // The known kind still works on the same connection.
    let mut ok = a.open_bulk(peer_of(&b), TEST).await.expect("opens");
    ok.write_all(b"x").await.expect("writes");
    ok.finish().expect("finishes");
    assert_eq!(ok.stopped().await.expect("delivered"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_peer_over_the_bounds_is_refused_while_an_honest_one_gets_through() {
    let bounds = BulkConfig {
        per_peer: 2,
        total: 3,
        ..BulkConfig::default()
    };
    let (b, _b_rx) = node_with(44, bounds);
    let (hostile, _h_rx) = node(45);
    let (honest, _g_rx) = node(46);
    let (late, _l_rx) = node(47);
    let mut owner = b.bulk_listen(kind::TEST, 16);
    // The hostile peer opens six streams at once: two are admitted, four refused.
    let mut opened = Vec::new();
    for _ in 0..6 {
        opened.push(hostile.open_bulk(peer_of(&b), TEST).await.expect("opens"));
    }
    poll(10, "four refusals", || {
        b.drops().get(Reason::BulkRefused) == 4
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..2 {
        let s = owner.recv().await.expect("admitted");
        assert_eq!(s.peer().id, hostile.me());
        held.push(s);
    }
    assert!(owner.try_recv().is_err(), "no third stream from one peer");
    let mut refused = 0;
    for mut s in opened {
        if let Ok(Ok(code)) = tokio::time::timeout(Duration::from_millis(200), s.stopped()).await {
            assert_eq!(code, Some(reset::REFUSED));
            refused += 1;
        }
    }
    assert_eq!(refused, 4, "the refused ones are told why");
    // The honest peer's stream is admitted and carries bytes both ways.
    let mut out = honest.open_bulk(peer_of(&b), TEST).await.expect("opens");
    out.write_all(b"ping").await.expect("writes");
    let mut inc = tokio::time::timeout(Duration::from_secs(10), owner.recv())
        .await
        .expect("in time")
        .expect("admitted");
    assert_eq!(inc.peer().id, honest.me());
    let mut buf = [0u8; 4];
    inc.read_exact(&mut buf).await.expect("reads");
    assert_eq!(&buf, b"ping");
    inc.write_all(b"pong").await.expect("answers");
    inc.finish().expect("finishes");
    out.read_exact(&mut buf).await.expect("reads the answer");
    assert_eq!(&buf, b"pong");
    // Three are open: a fourth peer meets the bound in all.
    let mut over = late.open_bulk(peer_of(&b), TEST).await.expect("opens");
    let code = tokio::time::timeout(Duration::from_secs(10), over.stopped())
        .await
        .expect("refused in time")
        .expect("a stop");
    assert_eq!(code, Some(reset::REFUSED));
    assert_eq!(b.drops().get(Reason::BulkRefused), 5);
    // Dropping the hostile peer's streams gives their places back.
    drop(held);
    poll(10, "places given back", || b.bulk_open() == 1).await;
}

#[tokio::test]
async fn a_stream_without_its_header_is_cut_after_the_deadline() {
    let deadline = Duration::from_millis(300);
    let (b, _b_rx) = node_with(
        48,
        BulkConfig {
            header_deadline: deadline,
            ..BulkConfig::default()
        },
    );
    let (hostile, _h_rx) = node(49);
    let _owner = b.bulk_listen(kind::TEST, 4);
    let conn = hostile
        .dial_raw(b.local_addr().expect("addr"), Expect::Id(b.me()))
        .await
        .expect("dials");
    let (mut send, _recv) = conn.open_bi().await.expect("opens");
    // Half a header makes the stream exist, and then nothing.
    send.write_all(&[0xff]).await.expect("writes");
    let start = Instant::now();
    let code = tokio::time::timeout(Duration::from_secs(10), send.stopped())
        .await
        .expect("cut in time")
        .expect("a stop");
    assert_eq!(code, Some(quinn::VarInt::from_u32(reset::HEADER_TIMEOUT)));
    assert!(start.elapsed() >= deadline - Duration::from_millis(50));
    assert_eq!(b.drops().get(Reason::BulkSlowHeader), 1);
    poll(10, "the place given back", || b.bulk_open() == 0).await;
    assert!(conn.close_reason().is_none(), "only the stream is cut");
}

#[tokio::test]
async fn a_stream_where_nothing_moves_is_cut_after_the_idle_timeout() {
    let idle = Duration::from_millis(400);
    let bulk = BulkConfig {
        idle,
        ..BulkConfig::default()
    };
    let (a, _a_rx) = node(50);
    let (b, _b_rx) = node_with(51, bulk);
    let mut owner = b.bulk_listen(kind::TEST, 4);
    let mut out = a.open_bulk(peer_of(&b), TEST).await.expect("opens");
    out.write_all(b"a little").await.expect("writes");
    let mut inc = owner.recv().await.expect("handed over");
    let mut buf = [0u8; 8];
    inc.read_exact(&mut buf).await.expect("reads");
    let start = Instant::now();
    let err = inc.read(&mut buf).await.expect_err("times out");
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
    assert!(start.elapsed() >= idle - Duration::from_millis(50));
    assert_eq!(b.drops().get(Reason::BulkIdle), 1);
    let code = tokio::time::timeout(Duration::from_secs(10), out.stopped())
        .await
        .expect("told in time")
        .expect("a stop");
    assert_eq!(code, Some(reset::IDLE));
}

#[tokio::test]
async fn a_stream_dropped_unfinished_reads_as_cancelled_not_as_complete() {
    let (a, _a_rx) = node(54);
    let (b, _b_rx) = node(55);
    let mut owner = b.bulk_listen(kind::TEST, 4);
    let mut out = a.open_bulk(peer_of(&b), TEST).await.expect("opens");
    out.write_all(b"half").await.expect("writes");
    let mut inc = tokio::time::timeout(Duration::from_secs(10), owner.recv())
        .await
        .expect("in time")
        .expect("handed over");
    drop(out);
    let mut got = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(10), inc.read_to_end(&mut got))
        .await
        .expect("in time");
    assert!(end.is_err(), "a cut stream must not end cleanly: {end:?}");
}

/// The figure of docs/performance.md: MB/s of one bulk stream on loopback, and the latency of
/// frames sent every 5 ms without and during it.
/// `cargo test --release -p chatd --lib bulk_figure -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run in release by hand"]
async fn bulk_figure() {
    let (a, _a_rx) = node(52);
    let (b, mut b_rx) = node(53);
    let mut owner = b.bulk_listen(kind::TEST, 4);
    let gap = Duration::from_millis(5);
    let quiet_until = Instant::now() + Duration::from_secs(2);
    let quiet = frames(&a, &b, &mut b_rx, gap, || Instant::now() >= quiet_until).await;
    let mb = 200;
    let before = a.connection_stats(&b.me()).expect("connected").path;
    let run = transfer(
        &a,
        &b,
        &mut owner,
        &mut b_rx,
        Arc::new(data(mb * 1024 * 1024)),
        gap,
    )
    .await;
    assert!(run.identical);
    let show = |name: &str, v: &[Duration]| {
        println!(
            "{name}: {} frames, p50 {:?}, p99 {:?}, max {:?}",
            v.len(),
            percentile(v, 0.5),
            percentile(v, 0.99),
            v.iter().max().copied().unwrap_or_default()
        );
    };
    println!(
        "bulk: {mb} MiB in {:.3} s = {:.0} MiB/s",
        run.secs,
        mb as f64 / run.secs
    );
    let after = a.connection_stats(&b.me()).expect("connected").path;
    println!(
        "A→B packets sent {}, lost {}, congestion events {}, rtt now {:?}, cwnd now {}",
        after.sent_packets - before.sent_packets,
        after.lost_packets - before.lost_packets,
        after.congestion_events - before.congestion_events,
        after.rtt,
        after.cwnd
    );
    show("frames without transfer", &quiet);
    show("frames during transfer", &run.frames);
}
