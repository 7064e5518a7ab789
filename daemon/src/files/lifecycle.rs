//! The store's lifecycle beyond eviction: files whose messages went leave the store.
//!
//! The chat store notes the file of every text message a delete, `chat.retention_days` or
//! `chat.retention_messages` removes (`chat/released.rs`). Every [`SWEEP_EVERY`] this task
//! takes those hashes and, for each one no kept message references any more, removes the blob
//! (complete or partial, pinned or not) from the store: this node then answers requests for it
//! "not found" and stops renewing its provider record, which expires within
//! [`super::provide::PROVIDE_TTL`] (a *set* item of the DHT has no tombstone). A hash whose
//! fetch is running is looked at again once the fetch ended, so a fetch racing a delete does
//! not leave the file behind.

use std::sync::Arc;
use std::time::Duration;

use chat_blobs::Hash;

use super::Files;
use crate::chat::Chat;

/// How often the noted hashes are taken.
pub const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Hashes waiting for their fetch to end, at most (more are left to eviction).
const MAX_WAITING: usize = 1024;

/// Runs until the runtime stops.
pub async fn run(files: Arc<Files>, chat: Chat) {
    let mut waiting: Vec<Hash> = Vec::new();
    let mut tick = tokio::time::interval(SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let c = chat.clone();
        let taken = match tokio::task::spawn_blocking(move || c.take_released()).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not read the files of deleted messages");
                continue;
            }
            Err(_) => return,
        };
        let mut candidates = std::mem::take(&mut waiting);
        for h in taken.into_iter().map(Hash) {
            if !candidates.contains(&h) {
                candidates.push(h);
            }
        }
        for hash in candidates {
            if files.is_fetching(&hash) {
                if waiting.len() < MAX_WAITING {
                    waiting.push(hash);
                }
                continue;
            }
            sweep(&files, &chat, hash).await;
        }
    }
}

/// Removes `hash` unless a kept message references it.
async fn sweep(files: &Files, chat: &Chat, hash: Hash) {
    let c = chat.clone();
    match tokio::task::spawn_blocking(move || c.references(&hash.0)).await {
        Ok(Ok(false)) => {}
        Ok(Ok(true)) => {
            tracing::debug!(blob = %hash, "a message of this file went, another keeps it");
            return;
        }
        Ok(Err(e)) => {
            tracing::warn!(blob = %hash, error = %e, "could not check a file's references; kept");
            return;
        }
        Err(_) => return,
    }
    match files.release(hash).await {
        Ok(true) => {
            tracing::info!(blob = %hash, "the file's messages went: removed from the store")
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(blob = %hash, error = %e, "could not remove a released file"),
    }
}

#[cfg(test)]
#[path = "lifecycle_tests.rs"]
mod tests;
