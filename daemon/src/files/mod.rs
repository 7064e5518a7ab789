//! The files service: the node's blob store (`<data_dir>/blobs/`, chat-blobs) and verified
//! transfer of blobs over bulk streams of kind [`kind::BLOBS`] (docs/protocol.md, "Files").
//!
//! - [`Files::open`] opens the store within the `[files]` bounds.
//! - [`Files::run`] owns the bulk kind: each incoming stream carries one range request,
//!   answered with the bao-tree encoding of the ranges straight from the store
//!   ([`serve`]); at most [`SERVING`] answers run at once, more wait in the transport's
//!   bounded queue or are refused there.
//! - [`Files::fetch`] fills the store with a blob from a list of providers, several at once
//!   ([`fetch`]): every chunk group is verified before it is written, a provider whose bytes
//!   do not verify is never asked again and counted ([`FileStats::bad_providers`]), and a
//!   fetch cut short resumes from what verified.
//! - [`faults`]: in test builds only, a provider told by the environment to serve wrong bytes
//!   or slowly (the e2e tests of a hostile provider and of a sender killed halfway).
//! - [`provide`]: provider records in the DHT — put when a blob is imported or fetched,
//!   renewed while held — and [`Files::fetch_found`], a fetch from the providers found there.
//! - [`lifecycle`]: files whose messages were deleted or expired leave the store
//!   ([`Files::release`]); this node's own sent files are pinned ([`Files::pin`]).
//! - [`private`]: private files — encrypted uploads, the reference a private message
//!   carries, decryption on download, the recipient's fetch; [`hold`]: their ciphertext kept
//!   by other nodes for offline recipients, on the hash's successors ([`place`]).
//!
//! All file work runs on tokio's blocking pool; the store is behind a `std` mutex held only
//! for its bookkeeping (opening a blob, recording what verified), never while bytes move.

pub mod auto;
pub mod bridge;
pub mod error;
pub mod faults;
pub mod fetch;
pub mod hold;
pub mod lifecycle;
pub mod place;
pub mod private;
pub mod provide;
pub mod serve;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chat_blobs::{BlobInfo, BlobStore, Hash, StoreConfig};
use chat_overlay::wire::Message;
use tokio::sync::{Semaphore, mpsc};

use crate::records::Records;
use crate::transport::{BulkHeader, BulkStream, Transport, bulk::kind};

pub use error::FilesError;

/// The bulk header of a blob request.
pub const HEADER: BulkHeader = BulkHeader {
    kind: kind::BLOBS,
    version: 1,
};
/// Answers to range requests running at once at most.
pub const SERVING: usize = 16;
/// Incoming requests waiting for an answer at most (the transport refuses more).
pub const QUEUED: usize = 32;

/// Counters of the files service.
#[derive(Debug, Default)]
pub struct FileStats {
    /// Bytes of responses served to other nodes.
    pub bytes_served: AtomicU64,
    /// Bytes of blob data fetched and verified.
    pub bytes_fetched: AtomicU64,
    /// Providers whose bytes did not verify (dropped from their fetch).
    pub bad_providers: AtomicU64,
    /// Requests refused as malformed.
    pub bad_requests: AtomicU64,
    /// Stored blobs found damaged while serving them (removed).
    pub corrupt: AtomicU64,
    /// Fetches that ended without the blob (no provider left, the store failed).
    pub fetch_failures: AtomicU64,
    /// Fetches that waited for a running fetch of the same blob instead of starting one.
    pub fetches_joined: AtomicU64,
    /// Blobs removed because the messages that referenced them were deleted or expired.
    pub released: AtomicU64,
}

impl FileStats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// The store's figures (`chatctl status`, `GetStatus.file_store`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreSummary {
    /// Complete files held.
    pub files: u64,
    /// Bytes used: files and their verification trees, complete and being fetched.
    pub used_bytes: u64,
    /// The quota (`files.store_mb`).
    pub quota_bytes: u64,
    /// The largest file (`files.max_file_mb`).
    pub max_file_bytes: u64,
    /// Complete files pinned (docs/operations.md, "What is pinned"), and their bytes.
    pub pinned_files: u64,
    /// See `pinned_files`.
    pub pinned_bytes: u64,
    /// Bytes of the complete files not pinned: what eviction may take.
    pub evictable_bytes: u64,
}

/// Hashes [`Files::was_released`] remembers.
const RECENTLY_RELEASED: usize = 1024;

/// The files service (module docs).
pub struct Files {
    store: Arc<Mutex<BlobStore>>,
    transport: Transport<Message>,
    serving: Arc<Semaphore>,
    /// The fetches running, each with the sender its waiters watch (dropped when it ends).
    fetching: Mutex<std::collections::HashMap<Hash, tokio::sync::watch::Sender<()>>>,
    stats: Arc<FileStats>,
    /// The records layer and this node's address, for provider records (none in tests
    /// without a ring).
    dht: Option<(Arc<Records>, SocketAddr)>,
    /// The data directory the store is in.
    root: std::path::PathBuf,
    /// Keys of encrypted uploads waiting for their messages ([`private`]).
    pending: Mutex<private::PendingKeys>,
    /// Blobs held for other nodes' offline recipients ([`hold`]).
    holds: Mutex<hold::Holds>,
    /// The holding's settings ([`Files::configure_offline`]).
    offline: std::sync::OnceLock<hold::Offline>,
    /// The latest hashes released ([`Files::release`]).
    released: Mutex<std::collections::VecDeque<Hash>>,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Files")
            .field("root", &self.root)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Files {
    /// Opens the blob store in `data_dir/blobs/` (creating it, cleaning what an interrupted
    /// write left). Blocking: call it before the runtime's work starts or off its workers.
    pub fn open(
        data_dir: &Path,
        cfg: StoreConfig,
        transport: Transport<Message>,
        dht: Option<(Arc<Records>, SocketAddr)>,
    ) -> Result<Arc<Files>, FilesError> {
        let store = BlobStore::open(data_dir, cfg)?;
        tracing::info!(
            blobs = store.list().len(),
            used_mb = store.used_bytes() >> 20,
            "blob store open"
        );
        Ok(Arc::new(Files {
            store: Arc::new(Mutex::new(store)),
            transport,
            serving: Arc::new(Semaphore::new(SERVING)),
            fetching: Mutex::new(Default::default()),
            stats: Arc::default(),
            dht,
            root: data_dir.to_path_buf(),
            pending: Mutex::default(),
            holds: Mutex::default(),
            offline: std::sync::OnceLock::new(),
            released: Mutex::default(),
        }))
    }

    /// Takes the bulk streams of kind [`kind::BLOBS`]; call before [`Files::run`].
    pub fn listen(&self) -> mpsc::Receiver<BulkStream> {
        self.transport.bulk_listen(kind::BLOBS, QUEUED)
    }

    /// Answers the range requests arriving on `streams`, at most [`SERVING`] at once, until
    /// the transport goes away.
    pub async fn run(self: Arc<Self>, mut streams: mpsc::Receiver<BulkStream>) {
        while let Some(stream) = streams.recv().await {
            let Ok(permit) = self.serving.clone().acquire_owned().await else {
                return;
            };
            let me = self.clone();
            tokio::spawn(async move {
                serve::answer(&me, stream).await;
                drop(permit);
            });
        }
    }

    /// The service's counters.
    pub fn stats(&self) -> &FileStats {
        &self.stats
    }

    /// The complete blobs held.
    pub async fn list(&self) -> Result<Vec<BlobInfo>, FilesError> {
        self.blocking(|s| Ok(s.list())).await
    }

    /// Imports `bytes` as a blob (blocking work off the workers) and announces it.
    pub async fn import_bytes(&self, bytes: Vec<u8>) -> Result<BlobInfo, FilesError> {
        let info = self.blocking(move |s| Ok(s.import_bytes(&bytes)?)).await?;
        self.announce(info.hash, info.size).await;
        Ok(info)
    }

    /// The store's bounds and bytes used.
    pub async fn usage(&self) -> Result<(StoreConfig, u64), FilesError> {
        self.blocking(|s| Ok((s.config(), s.used_bytes()))).await
    }

    /// A complete blob, if held.
    pub async fn info(&self, hash: Hash) -> Result<Option<BlobInfo>, FilesError> {
        self.blocking(move |s| Ok(s.info(&hash))).await
    }

    /// The store's figures for `chatctl status`.
    pub async fn summary(&self) -> Result<StoreSummary, FilesError> {
        self.blocking(|s| {
            let list = s.list();
            let pinned: Vec<&BlobInfo> = list.iter().filter(|b| b.pinned).collect();
            let cfg = s.config();
            Ok(StoreSummary {
                files: list.len() as u64,
                used_bytes: s.used_bytes(),
                quota_bytes: cfg.quota_bytes,
                max_file_bytes: cfg.max_file_bytes,
                pinned_files: pinned.len() as u64,
                pinned_bytes: pinned.iter().map(|b| b.size).sum(),
                evictable_bytes: list.iter().filter(|b| !b.pinned).map(|b| b.size).sum(),
            })
        })
        .await
    }

    /// Keeps a blob from eviction (the files of messages this node's accounts sent); a blob
    /// not here yet is pinned when it arrives.
    pub async fn pin(&self, hash: Hash) -> Result<(), FilesError> {
        self.blocking(move |s| Ok(s.pin(&hash)?)).await
    }

    /// Removes a blob, complete or partial, and its pin, because no kept message references
    /// it any more ([`lifecycle`]); a later auto-fetch retry of it stops. Whether anything was
    /// removed.
    pub async fn release(&self, hash: Hash) -> Result<bool, FilesError> {
        {
            let mut recent = self.released.lock().unwrap_or_else(|e| e.into_inner());
            if recent.len() >= RECENTLY_RELEASED {
                recent.pop_front();
            }
            recent.push_back(hash);
        }
        let removed = self
            .blocking(move |s| {
                let held = s.has(&hash) || s.verified(&hash).is_some() || s.is_pinned(&hash);
                s.remove(&hash)?;
                Ok(held)
            })
            .await?;
        if removed {
            FileStats::add(&self.stats.released, 1);
        }
        Ok(removed)
    }

    /// Whether `hash` was released lately (the auto-fetch does not try it again).
    pub fn was_released(&self, hash: &Hash) -> bool {
        self.released
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(hash)
    }

    /// Bytes of `hash` (of `size` bytes) verified here so far (all once complete).
    pub async fn have(&self, hash: Hash, size: u64) -> Result<u64, FilesError> {
        self.blocking(move |s| {
            Ok(match (s.info(&hash), s.verified(&hash)) {
                (Some(info), _) => info.size,
                (None, Some(v)) => chat_blobs::hash::count_bytes(&v, size),
                (None, None) => 0,
            })
        })
        .await
    }

    /// Bytes of a fetch under way verified from the start of the blob without a gap (0 when
    /// no fetch of it is under way).
    pub async fn verified_prefix(&self, hash: Hash) -> Result<u64, FilesError> {
        self.blocking(move |s| Ok(s.verified_prefix(&hash).unwrap_or(0)))
            .await
    }

    /// The data file of a fetch under way (`None`: no fetch of it), for reading what verified.
    pub async fn partial_data(&self, hash: Hash) -> Result<Option<std::fs::File>, FilesError> {
        self.blocking(move |s| Ok(s.partial_data(&hash)?)).await
    }

    /// Opens a complete blob for reading (marks it used).
    pub async fn open_blob(&self, hash: Hash) -> Result<std::fs::File, FilesError> {
        self.blocking(move |s| Ok(s.open_blob(&hash)?)).await
    }

    /// The checked media type of a complete blob, from its first bytes.
    pub async fn media_type(&self, hash: Hash) -> Result<chat_blobs::MediaType, FilesError> {
        let f = self.open_blob(hash).await?;
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let mut head = Vec::with_capacity(chat_blobs::media::SNIFF_BYTES);
            let _ = f
                .take(chat_blobs::media::SNIFF_BYTES as u64)
                .read_to_end(&mut head);
            chat_blobs::MediaType::sniff(&head)
        })
        .await
        .map_err(|_| FilesError::Worker)
    }

    /// Where an upload in progress is written: the store's `tmp/` (emptied when the store
    /// opens, so a crash leaves nothing behind).
    pub fn upload_path(&self) -> std::path::PathBuf {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.root
            .join("blobs")
            .join("tmp")
            .join(format!("upload-{}-{n}", std::process::id()))
    }

    /// Imports a finished upload's file (copied into the store, checked against its size)
    /// and announces it; the upload file is removed either way.
    pub async fn import_upload(&self, path: std::path::PathBuf) -> Result<BlobInfo, FilesError> {
        let p = path.clone();
        let res = self
            .blocking(move |s| {
                let res = s.import_file(&p);
                let _ = std::fs::remove_file(&p);
                Ok(res?)
            })
            .await;
        let info = res?;
        self.announce(info.hash, info.size).await;
        Ok(info)
    }

    /// A complete blob's bytes (for tests and small blobs).
    pub async fn read_to_vec(&self, hash: Hash) -> Result<Vec<u8>, FilesError> {
        self.blocking(move |s| Ok(s.read_to_vec(&hash)?)).await
    }

    /// Runs `f` on the store on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut BlobStore) -> Result<T, FilesError> + Send + 'static,
    ) -> Result<T, FilesError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&mut lock(&store)))
            .await
            .map_err(|_| FilesError::Worker)?
    }
}

/// Locks the store; a panic while it was held leaves its bookkeeping as it was on disk's
/// terms (every change is a rename), so the lock is taken anyway.
fn lock(store: &Mutex<BlobStore>) -> MutexGuard<'_, BlobStore> {
    store.lock().unwrap_or_else(|e| e.into_inner())
}
