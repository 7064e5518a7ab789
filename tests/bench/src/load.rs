//! The load: one subscriber per node — a `Subscribe` stream on the lobby, new messages only —
//! and one publisher calling `Send` on node 0 at a fixed rate.
//!
//! The publisher is open loop: message `seq` of a step is due at `t0 + seq / rate`, and its
//! `Send` call starts then (in its own task, whatever earlier calls are doing). Latency at a
//! subscriber is measured from the moment the call started; how late calls started against
//! their due time (tokio's timer has millisecond resolution) is reported apart, as the
//! publisher's slip. Each message's text names its step and sequence number; subscribers
//! record when each arrives.
//!
//! With `--reader search`, [`read_until`] is the client that loops on `Search` and `History`
//! beside a step (issue 33: reads must not move delivery's p99).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chat_proto::v1::{SendRequest, SubscribeRequest, subscribe_response};
use tokio::sync::Semaphore;

/// Sends in flight at most; beyond this the publisher waits (and the wait counts as latency).
const MAX_IN_FLIGHT: usize = 512;
/// The room every message goes to.
const ROOM: &str = "lobby";

/// One arrival: step, sequence number, when.
pub type Arrival = (u32, u64, Instant);

/// What one subscriber saw.
#[derive(Default)]
struct Seen {
    arrivals: Vec<Arrival>,
    lagged: u64,
    errors: u64,
}

/// The subscribers, one per node, running until dropped.
pub struct Subscribers {
    seen: Vec<Arc<Mutex<Seen>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Subscribers {
    /// Subscribes to every socket and waits until each stream is open.
    pub async fn start(sockets: &[PathBuf]) -> Result<Subscribers> {
        let mut subs = Subscribers {
            seen: Vec::new(),
            tasks: Vec::new(),
        };
        for socket in sockets {
            let mut client =
                chatctl::client::chat_stream(&chatctl::client::Target::unix(socket)).await?;
            let request = SubscribeRequest {
                room: ROOM.into(),
                resume_after_id: String::new(),
                backlog: 0,
            };
            let stream = client
                .subscribe(request)
                .await
                .with_context(|| format!("subscribing at {}", socket.display()))?
                .into_inner();
            let seen = Arc::new(Mutex::new(Seen::default()));
            subs.tasks
                .push(tokio::spawn(follow(client, stream, seen.clone())));
            subs.seen.push(seen);
        }
        Ok(subs)
    }

    /// Arrivals of `step` so far, summed over subscribers.
    fn count(&self, step: u32) -> u64 {
        self.seen
            .iter()
            .map(|s| lock(s).arrivals.iter().filter(|a| a.0 == step).count() as u64)
            .sum()
    }
}

impl Drop for Subscribers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn lock(m: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads one subscription; after a lag notice it resubscribes where the stream stopped.
async fn follow(
    mut client: chat_proto::v1::chat_service_client::ChatServiceClient<chatctl::client::Conn>,
    mut stream: tonic::Streaming<chat_proto::v1::SubscribeResponse>,
    seen: Arc<Mutex<Seen>>,
) {
    loop {
        let resume = match stream.message().await {
            Ok(Some(r)) => match r.event {
                Some(subscribe_response::Event::Message(m)) => {
                    if let Some((step, seq)) = parse_text(&m.text) {
                        lock(&seen).arrivals.push((step, seq, Instant::now()));
                    }
                    continue;
                }
                Some(subscribe_response::Event::Lagged(l)) => {
                    lock(&seen).lagged += l.missed;
                    l.resume_after_id
                }
                None => continue,
            },
            Ok(None) | Err(_) => {
                lock(&seen).errors += 1;
                return;
            }
        };
        let request = SubscribeRequest {
            room: ROOM.into(),
            resume_after_id: resume,
            backlog: 0,
        };
        match client.subscribe(request).await {
            Ok(s) => stream = s.into_inner(),
            Err(_) => {
                lock(&seen).errors += 1;
                return;
            }
        }
    }
}

/// The text of message `seq` of step `step`.
pub fn text(step: u32, seq: u64) -> String {
    format!("bench {step} {seq}")
}

/// The step and sequence number of a message's text, if it is one of [`text`]'s.
pub fn parse_text(text: &str) -> Option<(u32, u64)> {
    let mut words = text.strip_prefix("bench ")?.split(' ');
    let step = words.next()?.parse().ok()?;
    let seq = words.next()?.parse().ok()?;
    words.next().is_none().then_some((step, seq))
}

/// One step of load: `rate` messages per second for `messages` messages.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// Its number (distinguishes its messages from earlier steps' stragglers).
    pub id: u32,
    /// Messages per second.
    pub rate: f64,
    /// Messages sent.
    pub messages: u64,
}

/// What a step measured.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Messages the publisher sent successfully.
    pub sent: u64,
    /// Sends that failed.
    pub send_errors: u64,
    /// Deliveries expected: sent × subscribers.
    pub expected: u64,
    /// Distinct deliveries seen.
    pub delivered: u64,
    /// Deliveries seen twice or more by the same subscriber.
    pub duplicates: u64,
    /// Messages dropped for slow subscribers (lag notices), since the last [`clear`].
    pub lagged: u64,
    /// Subscriptions that ended with an error, since the last [`clear`].
    pub stream_errors: u64,
    /// Each subscriber's median latency, in node order (node 0 is the publisher's).
    pub node_p50: Vec<Duration>,
    /// Round trip of every successful `Send` call, sorted, in microseconds.
    pub send_us: Vec<u64>,
    /// How late each `Send` call started against its due time, sorted, in microseconds.
    pub slip_us: Vec<u64>,
    /// Latency of every delivery, sorted, in microseconds.
    pub latencies_us: Vec<u64>,
    /// From the first message's due time to the last delivery.
    pub span: Duration,
}

impl Outcome {
    /// The `q` quantile (0..=1) of the latencies.
    pub fn quantile(&self, q: f64) -> Duration {
        quantile(&self.latencies_us, q)
    }

    /// Deliveries per second over the step.
    pub fn delivery_rate(&self) -> f64 {
        self.delivered as f64 / self.span.as_secs_f64().max(1e-9)
    }
}

/// The `q` quantile of sorted microsecond values (nearest rank).
pub fn quantile(sorted_us: &[u64], q: f64) -> Duration {
    if sorted_us.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted_us.len() as f64).ceil() as usize;
    Duration::from_micros(sorted_us[rank.clamp(1, sorted_us.len()) - 1])
}

/// Runs `step`: publishes on `publisher`, then waits up to `drain` after the last send for
/// every subscriber to have every message.
pub async fn run(
    publisher: &std::path::Path,
    subs: &Subscribers,
    step: Step,
    drain: Duration,
) -> Result<Outcome> {
    let client = chatctl::client::chat_service(&chatctl::client::Target::unix(publisher)).await?;
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let period = Duration::from_secs_f64(1.0 / step.rate);
    let t0 = Instant::now() + Duration::from_millis(50);
    let mut sends = Vec::with_capacity(step.messages as usize);
    for seq in 0..step.messages {
        let due = t0 + period.mul_f64(seq as f64);
        tokio::time::sleep_until(due.into()).await;
        let permit = permits.clone().acquire_owned().await?;
        let mut client = client.clone();
        sends.push(tokio::spawn(async move {
            let request = SendRequest {
                room: ROOM.into(),
                text: text(step.id, seq),
                ..Default::default()
            };
            let start = Instant::now();
            let ok = client.send(request).await.is_ok();
            drop(permit);
            ok.then(|| (start, start.elapsed()))
        }));
    }
    let mut out = Outcome::default();
    let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let mut starts = Vec::with_capacity(sends.len());
    for (seq, s) in sends.into_iter().enumerate() {
        let due = t0 + period.mul_f64(seq as f64);
        match s.await.ok().flatten() {
            Some((start, took)) => {
                out.sent += 1;
                out.send_us.push(micros(took));
                out.slip_us
                    .push(micros(start.saturating_duration_since(due)));
                starts.push(Some(start));
            }
            None => {
                out.send_errors += 1;
                starts.push(None);
            }
        }
    }
    out.send_us.sort_unstable();
    out.slip_us.sort_unstable();
    out.expected = out.sent * subs.seen.len() as u64;
    let end = Instant::now() + drain;
    while subs.count(step.id) < out.expected && Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut last = t0;
    for seen in &subs.seen {
        let seen = lock(seen);
        out.lagged += seen.lagged;
        out.stream_errors += seen.errors;
        if let Some(at) = tally(&mut out, step.id, &starts, &seen.arrivals) {
            last = last.max(at);
        }
    }
    finish(&mut out, t0, last);
    Ok(out)
}

/// Adds one subscriber's arrivals of step `step` to `out`: the latency of each from the start of
/// its send (`starts[seq]`, `None` for a failed send), duplicates counted apart, and the
/// subscriber's median. Returns the last arrival's time, if any.
pub fn tally(
    out: &mut Outcome,
    step: u32,
    starts: &[Option<Instant>],
    arrivals: &[Arrival],
) -> Option<Instant> {
    let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    let mut last = None::<Instant>;
    let mut mine = Vec::new();
    let mut seqs = std::collections::HashSet::new();
    for &(_, seq, at) in arrivals.iter().filter(|a| a.0 == step) {
        if !seqs.insert(seq) {
            out.duplicates += 1;
            continue;
        }
        let Some(Some(start)) = starts.get(seq as usize) else {
            continue; // not a message of this step's successful sends
        };
        let us = micros(at.saturating_duration_since(*start));
        out.latencies_us.push(us);
        mine.push(us);
        last = Some(last.map_or(at, |l| l.max(at)));
    }
    mine.sort_unstable();
    out.node_p50.push(quantile(&mine, 0.5));
    last
}

/// Completes `out` after every subscriber was [`tally`]ed: delivered count, sorted latencies,
/// span from `t0` (the first message's due time) to `last` (the last arrival).
pub fn finish(out: &mut Outcome, t0: Instant, last: Instant) {
    out.delivered = out.latencies_us.len() as u64;
    out.latencies_us.sort_unstable();
    out.span = last.saturating_duration_since(t0);
}

/// What the reader beside a step did (`--reader`).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ReaderOutcome {
    /// Calls that answered OK.
    pub calls: u64,
    /// Calls that failed (RESOURCE_EXHAUSTED included).
    pub errors: u64,
    /// Round trip of the successful calls, median and 99th percentile, in milliseconds.
    pub call_p50_ms: f64,
    pub call_p99_ms: f64,
}

/// Most calls one reader makes in a step, whatever its length.
pub const READER_MAX_CALLS: u64 = 200_000;

/// A client looping on `Search` (every message's word) and `History` (100 messages),
/// alternately and one call at a time, on `socket` until `stop` is set, at most
/// [`READER_MAX_CALLS`] calls.
pub async fn read_until(
    socket: PathBuf,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> Result<ReaderOutcome> {
    use chat_proto::v1::{HistoryRequest, SearchRequest};
    use std::sync::atomic::Ordering;
    let mut client = chatctl::client::chat_service(&chatctl::client::Target::unix(&socket)).await?;
    let mut took_us = Vec::new();
    let mut out = ReaderOutcome::default();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) && n < READER_MAX_CALLS {
        let start = Instant::now();
        let ok = if n.is_multiple_of(2) {
            let request = SearchRequest {
                query: "bench".into(),
                room: ROOM.into(),
                limit: 50,
                ..SearchRequest::default()
            };
            client.search(request).await.is_ok()
        } else {
            let request = HistoryRequest {
                room: ROOM.into(),
                limit: 100,
                ..HistoryRequest::default()
            };
            client.history(request).await.is_ok()
        };
        n += 1;
        if ok {
            out.calls += 1;
            took_us.push(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX));
        } else {
            out.errors += 1;
            // A refused call (the node's read limit) is not retried at once.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    took_us.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    out.call_p50_ms = ms(quantile(&took_us, 0.5));
    out.call_p99_ms = ms(quantile(&took_us, 0.99));
    Ok(out)
}

/// Forgets what the subscribers saw so far (between steps).
pub fn clear(subs: &Subscribers) {
    for s in &subs.seen {
        let mut s = lock(s);
        s.arrivals.clear();
        s.lagged = 0;
        s.errors = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_and_others_are_ignored() {
        assert_eq!(parse_text(&text(3, 1234)), Some((3, 1234)));
        assert_eq!(parse_text("hello"), None);
        assert_eq!(parse_text("bench 1"), None);
        assert_eq!(parse_text("bench 1 2 3"), None);
    }

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), Duration::from_micros(50));
        assert_eq!(quantile(&v, 0.99), Duration::from_micros(99));
        assert_eq!(quantile(&v, 1.0), Duration::from_micros(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
        assert_eq!(quantile(&[7], 0.0), Duration::from_micros(7));
    }
}
