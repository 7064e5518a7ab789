//! Auto-fetch: every image a public message references, up to `files.auto_fetch_kb`, is
//! fetched at once in the background, so it shows without waiting (and this node then serves
//! it too). Bounded: at most [`AT_ONCE`] fetches run, at most [`WAITING`] wait for a turn
//! (more are skipped: they are fetched on demand); a reference whose thumbnail failed its
//! check, or that is not a raster image, or over the limit, is never fetched automatically.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast};

use super::Files;
use crate::chat::Stored;
use crate::chat::attachment::Attachment;

/// Fetches running at once.
pub const AT_ONCE: usize = 4;
/// Fetches waiting for a turn; past it a reference is left for an on-demand fetch.
pub const WAITING: usize = 64;
/// Tries per file (the sender's provider record may still be on its way).
const TRIES: u32 = 3;

/// Whether `a` is fetched automatically under a limit of `limit` bytes.
pub fn wanted(a: &Attachment, limit: u64) -> bool {
    a.media.is_raster_image() && a.size <= limit && !a.thumbnail_refused && a.size > 0
}

/// Runs until the feed closes: fetches each wanted reference of `feed`'s messages.
pub async fn run(files: Arc<Files>, mut feed: broadcast::Receiver<Arc<Stored>>, limit: u64) {
    let turns = Arc::new(Semaphore::new(AT_ONCE));
    let queued = Arc::new(AtomicUsize::new(0));
    loop {
        let stored = match feed.recv().await {
            Ok(s) => s,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!(missed = n, "auto-fetch fell behind the message feed");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(a) = stored.message.attachment.clone() else {
            continue;
        };
        if !wanted(&a, limit) {
            continue;
        }
        if queued.fetch_add(1, Ordering::Relaxed) >= WAITING {
            queued.fetch_sub(1, Ordering::Relaxed);
            tracing::debug!(hash = %a.hash_hex(), "auto-fetch queue full; left for on demand");
            continue;
        }
        let (files, turns, queued) = (files.clone(), turns.clone(), queued.clone());
        tokio::spawn(async move {
            let permit = turns.acquire_owned().await;
            queued.fetch_sub(1, Ordering::Relaxed);
            let Ok(_permit) = permit else { return };
            fetch(&files, &a).await;
        });
    }
}

async fn fetch(files: &Files, a: &Attachment) {
    let hash = chat_blobs::Hash(a.hash);
    for attempt in 1..=TRIES {
        if attempt > 1 && files.was_released(&hash) {
            // Its message was deleted meanwhile.
            return;
        }
        match files.fetch_found(hash, Some(a.size)).await {
            Ok(_) => {
                tracing::debug!(hash = %a.hash_hex(), "auto-fetched");
                return;
            }
            Err(e) => {
                tracing::debug!(hash = %a.hash_hex(), attempt, error = %e, "auto-fetch failed");
                tokio::time::sleep(Duration::from_secs(u64::from(attempt * attempt))).await;
            }
        }
    }
}
