//! The private-message load (`chat-bench --dm`): every node sends end-to-end encrypted
//! messages to four others (node `s` to `s+1 … s+4`), together `rate` a second, open loop;
//! one `WatchPrivate` stream per node records when each message is shown to its recipient
//! and when its sender sees it delivered (the recipient's end-to-end acknowledgement).
//!
//! Four recipients per sender keep each pair under the per-pair limit of 30 a minute at 50/s
//! on 30 nodes. Before the measurement, one message per pair establishes the Olm sessions
//! (key bundle fetched, pre-key message answered), so the figures are those of an ongoing
//! conversation; the first message of a pair costs one DHT lookup more.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chat_proto::v1::{
    DeliveryStatus, GetStatusRequest, ListUsersRequest, SendPrivateRequest, WatchPrivateRequest,
    watch_private_response,
};
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::load::quantile;

/// Recipients per sender.
const FAN: usize = 4;
/// Sends in flight at most.
const MAX_IN_FLIGHT: usize = 256;

/// What the watchers saw: shown at the recipient (by text), delivered at the sender (by id).
#[derive(Default)]
struct Seen {
    shown: Vec<(String, Instant)>,
    delivered: Vec<(String, Instant)>,
}

/// The figures of one run.
#[derive(Serialize, Clone, Default)]
pub struct DmReport {
    pub rate: f64,
    pub messages: u64,
    pub sent: u64,
    pub send_errors: u64,
    pub shown: u64,
    pub duplicates: u64,
    pub delivered: u64,
    /// Send call → shown on the recipient's stream.
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Send call → the sender sees it delivered (the recipient's acknowledgement back).
    pub ack_p50_ms: f64,
    pub ack_p99_ms: f64,
    pub send_p50_ms: f64,
    pub send_p99_ms: f64,
    pub cpu_us_per_message: f64,
}

fn lock(m: &Mutex<Seen>) -> std::sync::MutexGuard<'_, Seen> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn target(socket: &std::path::Path) -> chatctl::client::Target {
    chatctl::client::Target::unix(socket)
}

/// Each node's nickname, once every node lists every other.
async fn nicknames(sockets: &[PathBuf], deadline: Duration) -> Result<Vec<String>> {
    let end = Instant::now() + deadline;
    loop {
        let mut names = Vec::new();
        for s in sockets {
            let mut api = chatctl::client::node_service(&target(s)).await?;
            let st = api.get_status(GetStatusRequest {}).await?.into_inner();
            names.push(st.nickname);
        }
        let mut all_listed = names.iter().all(|n| !n.is_empty());
        for s in sockets {
            if !all_listed {
                break;
            }
            let mut api = chatctl::client::user_service(&target(s)).await?;
            let users = api
                .list_users(ListUsersRequest {})
                .await?
                .into_inner()
                .users;
            all_listed = names.iter().all(|n| users.iter().any(|u| &u.nickname == n));
        }
        if all_listed {
            return Ok(names);
        }
        if Instant::now() > end {
            bail!("the nodes did not all list each other within {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Opens one `WatchPrivate` per node.
async fn watch(
    sockets: &[PathBuf],
) -> Result<(Vec<Arc<Mutex<Seen>>>, Vec<tokio::task::JoinHandle<()>>)> {
    let mut seen = Vec::new();
    let mut tasks = Vec::new();
    for s in sockets {
        let mut api = chatctl::client::private_service(&target(s), true).await?;
        let mut stream = api
            .watch_private(WatchPrivateRequest {})
            .await
            .with_context(|| format!("watching at {}", s.display()))?
            .into_inner();
        let mine = Arc::new(Mutex::new(Seen::default()));
        let out = mine.clone();
        tasks.push(tokio::spawn(async move {
            while let Ok(Some(ev)) = stream.message().await {
                let now = Instant::now();
                match ev.event {
                    Some(watch_private_response::Event::Message(m)) if !m.outgoing => {
                        lock(&out).shown.push((m.text, now));
                    }
                    Some(watch_private_response::Event::Status(st))
                        if st.status == DeliveryStatus::Delivered as i32 =>
                    {
                        lock(&out).delivered.push((st.id, now));
                    }
                    _ => {}
                }
            }
        }));
        seen.push(mine);
    }
    Ok((seen, tasks))
}

/// Message `m` of `n` nodes: (sender, recipient).
fn pair(m: u64, n: usize) -> (usize, usize) {
    let s = (m % n as u64) as usize;
    let k = 1 + ((m / n as u64) as usize % FAN);
    (s, (s + k) % n)
}

type Client = chat_proto::v1::private_service_client::PrivateServiceClient<chatctl::client::Conn>;

/// One client per node, kept for the whole run (as a user's program keeps its connection).
async fn clients(sockets: &[PathBuf]) -> Result<Vec<Client>> {
    let mut out = Vec::new();
    for s in sockets {
        out.push(chatctl::client::private_service(&target(s), false).await?);
    }
    Ok(out)
}

/// Sends `text` from node `from` to `to`; the message id and the call's duration.
async fn send(
    clients: &[Client],
    names: &[String],
    from: usize,
    to: usize,
    text: String,
) -> Option<(String, Duration)> {
    let mut api = clients[from].clone();
    let start = Instant::now();
    let r = api
        .send_private(SendPrivateRequest {
            to: names[to].clone(),
            group_id: String::new(),
            text,
            accept_new_key: false,
            ..Default::default()
        })
        .await
        .ok()?;
    Some((r.into_inner().message?.id, start.elapsed()))
}

/// Runs the private-message load: `rate` a second for `seconds`, after the warm-up.
pub async fn run(
    sockets: &[PathBuf],
    pids: &[u32],
    rate: f64,
    seconds: u64,
    say: &dyn Fn(String),
) -> Result<DmReport> {
    let n = sockets.len();
    if n < FAN + 1 {
        bail!("--dm needs at least {} nodes", FAN + 1);
    }
    let names = nicknames(sockets, Duration::from_secs(120)).await?;
    let (seen, tasks) = watch(sockets).await?;
    let clients = clients(sockets).await?;
    say(format!("dm: warming up {} pairs …", n * FAN));
    for m in 0..(n * FAN) as u64 {
        let (s, r) = pair(m, n);
        if send(&clients, &names, s, r, format!("dmwarm {m}"))
            .await
            .is_none()
        {
            bail!("a warm-up message from node {s} to node {r} was refused");
        }
    }
    let warm_end = Instant::now() + Duration::from_secs(120);
    loop {
        let shown: usize = seen
            .iter()
            .map(|s| {
                lock(s)
                    .shown
                    .iter()
                    .filter(|(t, _)| t.starts_with("dmwarm "))
                    .count()
            })
            .sum();
        if shown >= n * FAN {
            break;
        }
        if Instant::now() > warm_end {
            bail!("only {shown} of {} warm-up messages arrived", n * FAN);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The warm-up's acknowledgements are back too (every session answered), so the
    // measurement starts from quiet conversations.
    loop {
        let (_, delivered) = counts(&seen);
        if delivered >= (n * FAN) as u64 {
            break;
        }
        if Instant::now() > warm_end {
            bail!(
                "only {delivered} of {} warm-up messages were acknowledged",
                n * FAN
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for s in &seen {
        lock(s).delivered.clear();
    }
    say(format!("dm: {rate} messages/s for {seconds} s …"));
    let messages = (rate * seconds as f64).round().max(1.0) as u64;
    let before: Vec<_> = pids
        .iter()
        .map(|&p| crate::procstat::sample(p))
        .collect::<Result<_>>()?;
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let period = Duration::from_secs_f64(1.0 / rate);
    let t0 = Instant::now() + Duration::from_millis(50);
    let clients_a: Arc<Vec<Client>> = Arc::new(clients);
    let names_a: Arc<Vec<String>> = Arc::new(names.clone());
    let mut sends = Vec::new();
    for m in 0..messages {
        let due = t0 + period.mul_f64(m as f64);
        tokio::time::sleep_until(due.into()).await;
        let permit = permits.clone().acquire_owned().await?;
        let (s, r) = pair(m, n);
        let (cl, nm) = (clients_a.clone(), names_a.clone());
        sends.push(tokio::spawn(async move {
            let start = Instant::now();
            let out = send(&cl, &nm, s, r, format!("dmbench {m}")).await;
            drop(permit);
            out.map(|(id, took)| (start, id, took))
        }));
    }
    let mut report = DmReport {
        rate,
        messages,
        ..DmReport::default()
    };
    let mut starts: HashMap<String, Instant> = HashMap::new();
    let mut by_id: HashMap<String, Instant> = HashMap::new();
    let mut send_us = Vec::new();
    let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    for (m, h) in sends.into_iter().enumerate() {
        match h.await.ok().flatten() {
            Some((start, id, took)) => {
                report.sent += 1;
                send_us.push(micros(took));
                starts.insert(format!("dmbench {m}"), start);
                by_id.insert(id, start);
            }
            None => report.send_errors += 1,
        }
    }
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let (shown, delivered) = counts(&seen);
        if (shown >= report.sent && delivered >= report.sent) || Instant::now() > end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after: Vec<_> = pids
        .iter()
        .map(|&p| crate::procstat::sample(p))
        .collect::<Result<_>>()?;
    for t in tasks {
        t.abort();
    }
    let mut lat = Vec::new();
    let mut ack = Vec::new();
    let mut got = std::collections::HashSet::new();
    for s in &seen {
        let s = lock(s);
        for (text, at) in &s.shown {
            let Some(start) = starts.get(text) else {
                continue;
            };
            if !got.insert(text.clone()) {
                report.duplicates += 1;
                continue;
            }
            lat.push(micros(at.saturating_duration_since(*start)));
        }
        for (id, at) in &s.delivered {
            if let Some(start) = by_id.get(id) {
                ack.push(micros(at.saturating_duration_since(*start)));
            }
        }
    }
    lat.sort_unstable();
    ack.sort_unstable();
    send_us.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    report.shown = lat.len() as u64;
    report.delivered = ack.len() as u64;
    report.p50_ms = ms(quantile(&lat, 0.5));
    report.p90_ms = ms(quantile(&lat, 0.9));
    report.p99_ms = ms(quantile(&lat, 0.99));
    report.max_ms = ms(quantile(&lat, 1.0));
    report.ack_p50_ms = ms(quantile(&ack, 0.5));
    report.ack_p99_ms = ms(quantile(&ack, 0.99));
    report.send_p50_ms = ms(quantile(&send_us, 0.5));
    report.send_p99_ms = ms(quantile(&send_us, 0.99));
    let cpu: Duration = before
        .iter()
        .zip(&after)
        .map(|(b, a)| a.cpu.saturating_sub(b.cpu))
        .sum();
    report.cpu_us_per_message = cpu.as_secs_f64() * 1e6 / report.shown.max(1) as f64;
    Ok(report)
}

fn counts(seen: &[Arc<Mutex<Seen>>]) -> (u64, u64) {
    let mut shown = 0;
    let mut delivered = 0;
    for s in seen {
        let s = lock(s);
        shown += s
            .shown
            .iter()
            .filter(|(t, _)| t.starts_with("dmbench "))
            .count() as u64;
        delivered += s.delivered.len() as u64;
    }
    (shown, delivered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_sender_writes_to_four_others_in_turn() {
        let n = 30;
        let mut per_pair: HashMap<(usize, usize), u32> = HashMap::new();
        for m in 0..1200 {
            let (s, r) = pair(m, n);
            assert_ne!(s, r);
            *per_pair.entry((s, r)).or_default() += 1;
        }
        assert_eq!(per_pair.len(), n * FAN);
        assert!(per_pair.values().all(|&c| c == 10));
    }
}
