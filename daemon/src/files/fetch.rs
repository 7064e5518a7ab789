//! The fetcher side: a blob from several providers at once, every byte verified.
//!
//! [`Files::fetch`] starts (or resumes) the partial blob, then runs chat-blobs'
//! [`FetchPlan`]: each idle provider is given a piece of what is neither verified nor asked
//! for, over a bulk stream of its own; each response is decoded on a blocking thread by a
//! `FetchWriter` that writes a chunk group only after it verified and records what verified
//! in the store. A provider whose bytes do not verify is dropped from the plan for good and
//! counted ([`super::FileStats::bad_providers`]); one that is gone, cut short or without the
//! blob is asked again a few times. The fetch ends when the blob is complete, or fails with
//! [`FilesError::NoProvider`] when no provider is left, keeping what verified for a later
//! fetch to resume; a failure of this node's own store (a full disk) removes the partial
//! blob instead.

use std::time::Duration;

use chat_blobs::plan::Failure;
use chat_blobs::wire::Request;
use chat_blobs::{BlobInfo, ChunkRanges, FetchError, FetchPlan, Hash};
use chat_overlay::Peer;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;

use super::{FileStats, Files, FilesError, bridge, lock};

/// Longest wait to open a stream to a provider and send the request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl Files {
    /// Fetches the blob `hash` of `size` bytes (from its reference) from `providers` into the
    /// store, resuming what an earlier fetch verified, and returns it as stored.
    ///
    /// One fetch per blob at a time: a call while another fetch of the same blob runs (a
    /// second download, the auto-fetch) waits for it instead of racing it, and then has the
    /// blob, or, if that fetch failed, makes its own attempt with its own providers.
    pub async fn fetch(
        &self,
        hash: Hash,
        size: u64,
        providers: Vec<Peer>,
    ) -> Result<BlobInfo, FilesError> {
        let _turn = loop {
            let waiting = {
                let mut fetching = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
                match fetching.get(&hash) {
                    Some(running) => running.subscribe(),
                    None => {
                        let (done, _) = tokio::sync::watch::channel(());
                        fetching.insert(hash, done);
                        break Turn { files: self, hash };
                    }
                }
            };
            FileStats::add(&self.stats.fetches_joined, 1);
            // The running fetch drops its sender when it ends, however it ends.
            let mut waiting = waiting;
            while waiting.changed().await.is_ok() {}
            if let Some(info) = self.info(hash).await? {
                return Ok(info);
            }
        };
        // Counted as what this fetch added to what had verified (a provider's piece may still
        // be in flight when the blob completes: its task is then dropped, its bytes written).
        let before = self.have(hash, size).await.unwrap_or(0);
        let res = self.fetch_inner(hash, size, providers).await;
        let after = self.have(hash, size).await.unwrap_or(before);
        FileStats::add(&self.stats.bytes_fetched, after.saturating_sub(before));
        if res.is_err() {
            FileStats::add(&self.stats.fetch_failures, 1);
        }
        res
    }

    /// Whether a fetch of `hash` is running.
    pub fn is_fetching(&self, hash: &Hash) -> bool {
        self.fetching
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(hash)
    }

    async fn fetch_inner(
        &self,
        hash: Hash,
        size: u64,
        providers: Vec<Peer>,
    ) -> Result<BlobInfo, FilesError> {
        let me = self.transport.me();
        let missing = self
            .blocking(move |s| Ok(s.begin_fetch(&hash, size)?))
            .await?;
        if !missing.is_empty() {
            let providers = providers.into_iter().filter(|p| p.id != me);
            let mut plan = FetchPlan::new(size, providers);
            let mut running = JoinSet::new();
            let mut verified = self.verified(hash).await?;
            let (mut bad, mut gone) = (0usize, 0usize);
            loop {
                for (peer, ranges) in plan.assign(&verified) {
                    let store = self.store.clone();
                    let transport = self.transport.clone();
                    running.spawn(async move {
                        let res = from_provider(transport, store, peer, hash, ranges).await;
                        (peer, res)
                    });
                }
                let Some(joined) = running.join_next().await else {
                    // Nothing asked and nothing running: no usable provider is left.
                    if verified == chat_blobs::hash::all_chunks(size) {
                        break;
                    }
                    return Err(FilesError::NoProvider { hash, bad, gone });
                };
                let Ok((peer, res)) = joined else {
                    return Err(FilesError::Worker);
                };
                match res {
                    Ok(_) => plan.done(&peer),
                    Err(FetchError::Store(e)) => {
                        // This node's disk failed (full, say): what verified is given up
                        // rather than left to fill the disk; a later fetch starts anew.
                        running.abort_all();
                        tracing::warn!(blob = %hash, error = %e, "a fetch failed on this node's store: its partial blob is removed");
                        self.blocking(move |s| {
                            s.abandon_fetch(&hash);
                            Ok(())
                        })
                        .await?;
                        return Err(FilesError::Store(e));
                    }
                    Err(e) if e.is_bad_provider() => {
                        FileStats::add(&self.stats.bad_providers, 1);
                        bad += 1;
                        tracing::warn!(peer = %peer.id.short(), blob = %hash, error = %e, "a provider sent bytes that do not verify: dropped");
                        plan.failed(&peer, Failure::Lied);
                    }
                    Err(e) => {
                        tracing::debug!(peer = %peer.id.short(), blob = %hash, error = %e, "a provider failed");
                        plan.failed(&peer, Failure::Unavailable);
                        if plan.is_bad(&peer) {
                            gone += 1;
                        }
                    }
                }
                if self.blocking(move |s| Ok(s.has(&hash))).await? {
                    running.abort_all();
                    break;
                }
                verified = self.verified(hash).await?;
            }
        }
        let info = self
            .blocking(move |s| {
                s.info(&hash)
                    .ok_or(FilesError::Store(chat_blobs::StoreError::NotFound(hash)))
            })
            .await?;
        // Every node that fetched a blob serves it.
        self.announce(info.hash, info.size).await;
        Ok(info)
    }

    /// What of a fetch under way has verified (all of it once complete).
    async fn verified(&self, hash: Hash) -> Result<ChunkRanges, FilesError> {
        self.blocking(move |s| {
            Ok(match s.info(&hash) {
                Some(info) => chat_blobs::hash::all_chunks(info.size),
                None => s.verified(&hash).unwrap_or_default(),
            })
        })
        .await
    }
}

/// This call's turn to fetch a blob: ends it (waking those waiting) when dropped, even when
/// the fetch is cancelled.
struct Turn<'a> {
    files: &'a Files,
    hash: Hash,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.files
            .fetching
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.hash);
    }
}

/// Asks `peer` for `ranges` of `hash` and writes what verifies; returns the bytes verified.
async fn from_provider(
    transport: crate::transport::Transport<chat_overlay::wire::Message>,
    store: std::sync::Arc<std::sync::Mutex<chat_blobs::BlobStore>>,
    peer: Peer,
    hash: Hash,
    ranges: ChunkRanges,
) -> Result<u64, FetchError> {
    let unavailable = |e: String| FetchError::Read(std::io::Error::other(e));
    let request = Request {
        hash,
        ranges: ranges.clone(),
    }
    .encode()?;
    let open = async {
        let mut stream = transport
            .open_bulk(peer, super::HEADER)
            .await
            .map_err(|e| e.to_string())?;
        stream
            .write_all(&request)
            .await
            .map_err(|e| e.to_string())?;
        stream.finish().map_err(|e| e.to_string())?;
        Ok::<_, String>(stream)
    };
    let mut stream = tokio::time::timeout(REQUEST_TIMEOUT, open)
        .await
        .map_err(|_| unavailable("opening the stream timed out".into()))?
        .map_err(unavailable)?;
    let (reader, pieces) = bridge::reader();
    let work = tokio::task::spawn_blocking(move || {
        let mut writer = lock(&store).fetch_writer(&hash)?;
        writer.decode(&ranges, reader, |verified| {
            lock(&store).record_verified(verified).map(|_| ())
        })
    });
    // The decoder may end first (bytes that do not verify): the stream is then dropped.
    let pump = bridge::pump_in(pieces, &mut stream);
    tokio::pin!(pump);
    let mut work = work;
    let done = tokio::select! {
        r = &mut work => r,
        () = &mut pump => work.await,
    };
    done.map_err(|_| unavailable("the decoder stopped".into()))?
}
