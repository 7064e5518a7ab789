//! Reading the log for `NodeService.ReadLog`: the newest `last` records of a [`Snapshot`],
//! then (when following) every record written after it, without gap or repeat.
//!
//! The snapshot's files are read off the async threads, twice: once to count the lines, once
//! to send the last `last` of them, in chunks, so memory stays bounded however large the log
//! is; the client's pace holds the reader back (a small bounded channel). A follower that
//! falls more than the live channel's capacity behind is told how many lines it missed.

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use super::file::{Part, for_each_line};
use super::writer::Snapshot;

/// Lines per chunk sent to the client.
const CHUNK: usize = 256;
/// Chunks buffered for the client.
const QUEUE: usize = 4;

/// What the client receives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    /// Records, oldest first, one JSON object each (no newline).
    pub lines: Vec<String>,
    /// Records a follower missed because it read too slowly.
    pub missed: u64,
}

/// Streams the newest `last` records of `snapshot` and, with `follow`, the ones written
/// after it, until the client goes away or (following) the log closes.
pub fn stream(snapshot: Snapshot, last: usize, follow: bool) -> mpsc::Receiver<Chunk> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let Snapshot { parts, live } = snapshot;
    tokio::spawn(async move {
        let history = tx.clone();
        let read = tokio::task::spawn_blocking(move || send_tail(parts, last, &history));
        match read.await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return, // the client went away
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not read the event log");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the event log failed");
                return;
            }
        }
        if follow {
            forward(live, &tx).await;
        }
    });
    rx
}

/// Sends the last `last` lines of `parts`; `Ok(false)` once the client is gone.
fn send_tail(parts: Vec<Part>, last: usize, tx: &mpsc::Sender<Chunk>) -> std::io::Result<bool> {
    if last == 0 {
        return Ok(true);
    }
    let mut total = 0usize;
    let mut kept = Vec::with_capacity(parts.len());
    for (file, len) in parts {
        let counter = file.try_clone()?;
        for_each_line(counter, len, |_| {
            total += 1;
            true
        })?;
        kept.push((file, len));
    }
    let mut skip = total.saturating_sub(last);
    let mut chunk = Vec::with_capacity(CHUNK.min(last));
    let mut open = true;
    for (file, len) in kept {
        for_each_line(file, len, |line| {
            if skip > 0 {
                skip -= 1;
                return true;
            }
            chunk.push(line.trim_end_matches('\n').to_owned());
            if chunk.len() >= CHUNK {
                let lines = std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK));
                open = tx.blocking_send(Chunk { lines, missed: 0 }).is_ok();
            }
            open
        })?;
        if !open {
            return Ok(false);
        }
    }
    if !chunk.is_empty() {
        return Ok(tx
            .blocking_send(Chunk {
                lines: chunk,
                missed: 0,
            })
            .is_ok());
    }
    Ok(true)
}

/// Sends each line written from now on, a chunk at a time, until the client goes away or
/// the log closes.
async fn forward(mut live: broadcast::Receiver<Arc<str>>, tx: &mpsc::Sender<Chunk>) {
    loop {
        let first = tokio::select! {
            () = tx.closed() => return,
            r = live.recv() => r,
        };
        let mut chunk = Chunk::default();
        match first {
            Ok(line) => chunk.lines.push(line.trim_end_matches('\n').to_owned()),
            Err(broadcast::error::RecvError::Lagged(n)) => chunk.missed = n,
            Err(broadcast::error::RecvError::Closed) => return,
        }
        while chunk.lines.len() < CHUNK {
            match live.try_recv() {
                Ok(line) => chunk.lines.push(line.trim_end_matches('\n').to_owned()),
                Err(broadcast::error::TryRecvError::Lagged(n)) => chunk.missed += n,
                Err(_) => break,
            }
        }
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
}
