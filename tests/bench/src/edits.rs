//! The edit load (`chat-bench --edits`): node 0 sends a message and then edits it, `rate`
//! edits a second (open loop, after a warm-up send of each message); one `Subscribe` stream
//! per node records when each EDIT event arrives. Latency is from the `Edit` call's start to
//! the event at each node, so it is the propagation of a change through the ring (the same
//! broadcast as a message, with the author check and the store's apply at every node).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chat_proto::v1::{EditRequest, MessageKind, SendRequest, SubscribeRequest, subscribe_response};
use serde::Serialize;

use crate::load::quantile;

/// The figures of one run.
#[derive(Serialize, Clone, Default)]
pub struct EditReport {
    pub rate: f64,
    pub edits: u64,
    /// EDIT events expected (edits × nodes) and seen.
    pub expected: u64,
    pub seen: u64,
    /// Edit call → EDIT event at a node.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

type Seen = Arc<Mutex<Vec<(String, Instant)>>>;
/// Text messages a subscriber has seen.
type Texts = Arc<std::sync::atomic::AtomicU64>;

/// Runs `edits` edits at `rate` a second through `sockets[0]`, watched on every socket.
pub async fn run(sockets: &[PathBuf], rate: f64, edits: u64) -> Result<EditReport> {
    let mut seen: Vec<Seen> = Vec::new();
    let mut texts: Vec<Texts> = Vec::new();
    let mut tasks = Vec::new();
    for socket in sockets {
        let mut client =
            chatctl::client::chat_stream(&chatctl::client::Target::unix(socket)).await?;
        let mut stream = client
            .subscribe(SubscribeRequest {
                room: "lobby".into(),
                ..Default::default()
            })
            .await
            .with_context(|| format!("subscribing at {}", socket.display()))?
            .into_inner();
        let s: Seen = Arc::default();
        let t: Texts = Arc::default();
        let (mine, my_texts) = (s.clone(), t.clone());
        tasks.push(tokio::spawn(async move {
            let _keep = client;
            while let Ok(Some(r)) = stream.message().await {
                let Some(subscribe_response::Event::Message(m)) = r.event else {
                    continue;
                };
                if m.kind == MessageKind::Edit as i32 {
                    let mut v = mine.lock().unwrap_or_else(|e| e.into_inner());
                    v.push((m.target_id, Instant::now()));
                } else if m.kind == MessageKind::Text as i32 {
                    my_texts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
        seen.push(s);
        texts.push(t);
    }
    let target = chatctl::client::Target::unix(&sockets[0]);
    let mut api = chatctl::client::chat_service(&target).await?;
    // The messages to edit, sent first (their arrival is not measured).
    let mut ids = Vec::new();
    for i in 0..edits {
        let m = api
            .send(SendRequest {
                room: "lobby".into(),
                text: format!("to be edited {i}"),
                ..Default::default()
            })
            .await?
            .into_inner()
            .message
            .context("a sent message")?;
        ids.push(m.id);
    }
    // Every node has every message before the first edit (else an edit could wait, held,
    // for its message and measure the message's delay).
    let deadline = Instant::now() + Duration::from_secs(20);
    while texts
        .iter()
        .any(|t| t.load(std::sync::atomic::Ordering::Relaxed) < edits)
    {
        if Instant::now() > deadline {
            anyhow::bail!("the messages to edit did not reach every node within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let t0 = Instant::now();
    let mut started: HashMap<String, Instant> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let due = t0 + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        started.insert(id.clone(), Instant::now());
        api.edit(EditRequest {
            id: id.clone(),
            text: format!("edited {i}"),
        })
        .await?;
    }
    let expected = edits * sockets.len() as u64;
    let deadline = Instant::now() + Duration::from_secs(20);
    let count = |seen: &[Seen]| -> u64 {
        seen.iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len() as u64)
            .sum()
    };
    while count(&seen) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in &tasks {
        t.abort();
    }
    let mut us: Vec<u64> = Vec::new();
    for s in &seen {
        for (id, at) in s.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            if let Some(start) = started.get(id) {
                us.push(at.saturating_duration_since(*start).as_micros() as u64);
            }
        }
    }
    us.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(EditReport {
        rate,
        edits,
        expected,
        seen: us.len() as u64,
        p50_ms: ms(quantile(&us, 0.5)),
        p99_ms: ms(quantile(&us, 0.99)),
        max_ms: ms(quantile(&us, 1.0)),
    })
}
