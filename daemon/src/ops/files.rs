//! What clients may ask of the files service (`chat.v1.FileService`, docs/api.md "Files"):
//! upload a file into this node's store, download one (fetched from its providers first if
//! this node does not hold it), describe one, list the store.
//!
//! An upload is written to the store's `tmp/` as it arrives, checked against the size its
//! metadata announced (not a byte more, not a byte less) and only then imported: a cut or
//! oversized upload leaves nothing behind. A download sends bytes only once the whole file
//! is verified in the store, so a client never receives bytes that do not match the hash;
//! one that asks for `stream_verified` gets them in order as soon as they verified, while the
//! rest is fetched (the copy to the client overlaps the fetch), and is told to discard them by
//! the stream's error if the fetch then fails.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chat_blobs::{BlobInfo, Hash};
use chat_proto::v1::{
    DownloadProgress, DownloadResponse, FileInfo, ListFilesResponse, UploadMetadata,
    UploadResponse, download_response,
};
use tokio::sync::mpsc;
use tokio_stream::{Stream, StreamExt};

use super::ApiError;
use crate::files::Files;
use crate::files::private::PrivateFile;

/// Bytes in one download chunk.
pub const CHUNK: usize = 64 * 1024;
/// How often a download under way reports progress.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How often a `stream_verified` download looks for newly verified bytes to send.
const EARLY_EVERY: Duration = Duration::from_millis(10);
/// Most bytes a `stream_verified` download sends in one look (then it reports progress and
/// looks again).
const EARLY_TURN: u64 = 4 << 20;

/// One piece of an upload as the front door hands it over.
pub enum UploadItem {
    /// The metadata (first).
    Metadata(UploadMetadata),
    /// Bytes.
    Chunk(Vec<u8>),
}

/// The files service's client operations.
#[derive(Clone)]
pub struct FileOps {
    files: Arc<Files>,
}

impl FileOps {
    /// Operations over `files`.
    pub fn new(files: Arc<Files>) -> FileOps {
        FileOps { files }
    }

    async fn info(&self, b: BlobInfo) -> Result<FileInfo, ApiError> {
        let media = self.files.media_type(b.hash).await?;
        Ok(FileInfo {
            hash: b.hash.to_hex(),
            size: b.size,
            media_type: media.mime().to_owned(),
            pinned: b.pinned,
        })
    }

    /// Stores an upload: the metadata first, then exactly `size` bytes.
    pub async fn upload(
        &self,
        mut items: impl Stream<Item = Result<UploadItem, ApiError>> + Unpin,
    ) -> Result<UploadResponse, ApiError> {
        let meta = match items.next().await {
            Some(Ok(UploadItem::Metadata(m))) => m,
            Some(Ok(UploadItem::Chunk(_))) | None => {
                return Err(ApiError::field(
                    "metadata",
                    "the first message must carry it",
                ));
            }
            Some(Err(e)) => return Err(e),
        };
        let (cfg, _) = self.files.usage().await?;
        if meta.size > cfg.max_file_bytes {
            return Err(ApiError::field(
                "size",
                format!(
                    "{} bytes is over the limit of {} bytes (files.max_file_mb)",
                    meta.size, cfg.max_file_bytes
                ),
            ));
        }
        let path = self.files.upload_path();
        // Removes the partial upload however this ends, also when the client goes away
        // midway (this future is then dropped): nothing half-written stays in `tmp/`.
        let mut partial = Partial::new(path.clone());
        self.receive(&partial, meta.size, &mut items).await?;
        // From here the import owns the file (and removes it).
        partial.path = None;
        let info = if meta.encrypt {
            self.files.import_private(path).await?
        } else {
            self.files.import_upload(path).await?
        };
        tracing::info!(blob = %info.hash, size = info.size, encrypted = meta.encrypt, "file uploaded");
        Ok(UploadResponse {
            file: Some(self.info(info).await?),
        })
    }

    /// Writes the upload's chunks to `partial`'s file, exactly `size` bytes.
    async fn receive(
        &self,
        partial: &Partial,
        size: u64,
        items: &mut (impl Stream<Item = Result<UploadItem, ApiError>> + Unpin),
    ) -> Result<(), ApiError> {
        let internal = |e: std::io::Error| ApiError::Internal(format!("writing an upload: {e}"));
        let worker = || ApiError::Internal("the upload's writer stopped".into());
        let create = partial.creator().ok_or_else(worker)?;
        let mut f = tokio::task::spawn_blocking(create)
            .await
            .map_err(|_| worker())?
            .map_err(internal)?;
        let mut n = 0u64;
        while let Some(item) = items.next().await {
            match item? {
                UploadItem::Metadata(_) => {
                    return Err(ApiError::field("metadata", "only in the first message"));
                }
                UploadItem::Chunk(c) => {
                    n += c.len() as u64;
                    if n > size {
                        return Err(ApiError::field(
                            "chunk",
                            format!("more bytes than the {size} the metadata said"),
                        ));
                    }
                    f = tokio::task::spawn_blocking(move || {
                        use std::io::Write;
                        f.write_all(&c).map(|()| f)
                    })
                    .await
                    .map_err(|_| worker())?
                    .map_err(internal)?;
                }
            }
        }
        if n != size {
            return Err(ApiError::field(
                "chunk",
                format!("{n} bytes arrived, the metadata said {size}"),
            ));
        }
        tokio::task::spawn_blocking(move || f.sync_all())
            .await
            .map_err(|_| worker())?
            .map_err(internal)?;
        Ok(())
    }

    /// Describes a file this node holds.
    pub async fn stat(&self, hash: &str) -> Result<FileInfo, ApiError> {
        let hash = parse(hash)?;
        match self.files.info(hash).await? {
            Some(b) => self.info(b).await,
            None => Err(ApiError::NotFound(format!(
                "this node does not hold {hash}"
            ))),
        }
    }

    /// The files held and the store's use.
    pub async fn list(&self) -> Result<ListFilesResponse, ApiError> {
        let mut files = Vec::new();
        for b in self.files.list().await? {
            files.push(self.info(b).await?);
        }
        let (cfg, used) = self.files.usage().await?;
        Ok(ListFilesResponse {
            files,
            used_bytes: used,
            quota_bytes: cfg.quota_bytes,
            max_file_bytes: cfg.max_file_bytes,
        })
    }

    /// Starts a download: the file is fetched from its providers if this node does not
    /// hold it, with progress messages, then sent in chunks (`early`: each chunk as soon as
    /// it and all before it verified). Errors found before anything is sent (a bad hash, no
    /// provider known) are the call's; later ones end the stream.
    pub async fn download(
        &self,
        hash: &str,
        size: u64,
        early: bool,
    ) -> Result<mpsc::Receiver<Result<DownloadResponse, ApiError>>, ApiError> {
        let hash = parse(hash)?;
        let size = (size > 0).then_some(size);
        let held = self.files.info(hash).await?;
        let found = match held {
            Some(_) => Vec::new(),
            None => {
                let found = self.files.providers(hash).await?;
                if found.is_empty() {
                    return Err(ApiError::NotFound(format!(
                        "no provider of {hash} is known"
                    )));
                }
                found
            }
        };
        let (tx, rx) = mpsc::channel(16);
        let files = self.files.clone();
        tokio::spawn(async move {
            let res = send_file(&files, hash, size, held, found, early, &tx).await;
            if let Err(e) = res {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(rx)
    }
}

impl FileOps {
    /// Starts the download of a private file: its ciphertext fetched (if this node does not
    /// hold it) with progress in ciphertext bytes, then decrypted and sent as plaintext
    /// chunks; a file that does not open ends the stream with an error.
    pub async fn download_private(
        &self,
        file: PrivateFile,
    ) -> Result<mpsc::Receiver<Result<DownloadResponse, ApiError>>, ApiError> {
        let hash = file.cipher_hash;
        let held = self.files.info(hash).await?;
        let found = match held {
            Some(_) => Vec::new(),
            None => {
                let found = self.files.providers(hash).await?;
                if found.is_empty() {
                    return Err(ApiError::NotFound(format!(
                        "no node is known to hold the file {} (its sender and holders are \
                         offline, or its holders' copies expired)",
                        file.name
                    )));
                }
                found
            }
        };
        let (tx, rx) = mpsc::channel(16);
        let files = self.files.clone();
        tokio::spawn(async move {
            let res = send_private(&files, file, held, found, &tx).await;
            if let Err(e) = res {
                let _ = tx.send(Err(e)).await;
            }
        });
        Ok(rx)
    }
}

/// Fetches the ciphertext (if needed, reporting progress), then sends the plaintext.
async fn send_private(
    files: &Arc<Files>,
    file: PrivateFile,
    held: Option<BlobInfo>,
    found: Vec<(chat_overlay::Peer, u64)>,
    tx: &mpsc::Sender<Result<DownloadResponse, ApiError>>,
) -> Result<(), ApiError> {
    let gone = || ApiError::Unavailable("the client went away".into());
    let (hash, size) = (file.cipher_hash, file.cipher_size);
    // Pinned (before it arrives, when it is fetched): the private file of a kept message
    // (operations.md, "The blob store").
    files.keep(hash).await?;
    if held.is_none() {
        let providers = u32::try_from(found.len()).unwrap_or(u32::MAX);
        tx.send(Ok(progress(size, 0, providers)))
            .await
            .map_err(|_| gone())?;
        let fetch = files.fetch_among(hash, Some(size), found);
        tokio::pin!(fetch);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                done = &mut fetch => { done?; break; }
                _ = tick.tick() => {
                    let have = files.have(hash, size).await?;
                    tx.send(Ok(progress(size, have, providers)))
                        .await
                        .map_err(|_| gone())?;
                }
            }
        }
    }
    tx.send(Ok(progress(size, size, 0)))
        .await
        .map_err(|_| gone())?;
    let (chunks, mut plain) = mpsc::channel::<Vec<u8>>(4);
    let forward = async {
        while let Some(c) = plain.recv().await {
            let msg = DownloadResponse {
                item: Some(download_response::Item::Chunk(c)),
            };
            if tx.send(Ok(msg)).await.is_err() {
                return;
            }
        }
    };
    let (decrypted, ()) = tokio::join!(files.decrypt_to(&file, chunks, CHUNK), forward);
    decrypted?;
    Ok(())
}

/// An upload being written, removed on drop — also when the drop (a client gone midway)
/// comes while the file is still being created on the blocking pool: the creator then sees
/// `dropped` after creating it and removes it itself.
struct Partial {
    path: Option<std::path::PathBuf>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Partial {
    fn new(path: std::path::PathBuf) -> Partial {
        Partial {
            path: Some(path),
            dropped: Default::default(),
        }
    }

    /// Creates the file (for the blocking pool); `None` once the import owns it.
    fn creator(&self) -> Option<impl FnOnce() -> std::io::Result<std::fs::File> + use<>> {
        use std::sync::atomic::Ordering::SeqCst;
        let (path, dropped) = (self.path.clone()?, self.dropped.clone());
        Some(move || {
            let f = std::fs::File::create(&path)?;
            if dropped.load(SeqCst) {
                let _ = std::fs::remove_file(&path);
                return Err(std::io::Error::other("the upload was abandoned"));
            }
            Ok(f)
        })
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            // Set before the removal: a creator still running removes what it made.
            self.dropped
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let _ = std::fs::remove_file(p);
        }
    }
}

fn parse(hash: &str) -> Result<Hash, ApiError> {
    Hash::from_str(hash).map_err(|_| ApiError::field("hash", "64 hex digits"))
}

fn progress(size: u64, have: u64, providers: u32) -> DownloadResponse {
    DownloadResponse {
        item: Some(download_response::Item::Progress(DownloadProgress {
            size,
            have,
            providers,
        })),
    }
}

/// Fetches (if needed, reporting progress) and sends the file; `early`: sends the verified
/// start of the file while the rest is fetched.
async fn send_file(
    files: &Arc<Files>,
    hash: Hash,
    size: Option<u64>,
    held: Option<BlobInfo>,
    found: Vec<(chat_overlay::Peer, u64)>,
    early: bool,
    tx: &mpsc::Sender<Result<DownloadResponse, ApiError>>,
) -> Result<(), ApiError> {
    let gone = || ApiError::Unavailable("the client went away".into());
    // Bytes already sent (from the start of the file), and the partial blob's data file they
    // are read from.
    let mut sent = 0u64;
    let mut partial: Option<Arc<std::fs::File>> = None;
    let info = match held {
        Some(info) => {
            tx.send(Ok(progress(info.size, info.size, 0)))
                .await
                .map_err(|_| gone())?;
            info
        }
        None => {
            let providers = u32::try_from(found.len()).unwrap_or(u32::MAX);
            let claimed = size.or_else(|| found.first().map(|(_, s)| *s)).unwrap_or(0);
            tx.send(Ok(progress(claimed, 0, providers)))
                .await
                .map_err(|_| gone())?;
            let fetch = files.fetch_among(hash, size, found);
            tokio::pin!(fetch);
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            tick.tick().await;
            let mut look = tokio::time::interval(EARLY_EVERY);
            look.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    done = &mut fetch => break done?,
                    _ = tick.tick() => {
                        let have = files.have(hash, claimed).await?;
                        tx.send(Ok(progress(claimed, have, providers)))
                            .await
                            .map_err(|_| gone())?;
                    }
                    _ = look.tick(), if early => {
                        // The provider tasks run on their own meanwhile: only this loop's
                        // bookkeeping waits for the send.
                        let prefix = files.verified_prefix(hash).await?;
                        let upto = prefix.min(sent.saturating_add(EARLY_TURN));
                        if upto > sent {
                            let file = match &partial {
                                Some(f) => f.clone(),
                                // None: the fetch completed meanwhile; the rest is sent below.
                                None => match files.partial_data(hash).await? {
                                    Some(f) => partial.insert(Arc::new(f)).clone(),
                                    None => continue,
                                },
                            };
                            if let Err(e) = send_range(file, hash, sent, upto, tx).await {
                                // The client went away (a full disk, say) while the fetch
                                // runs: the fetch completes all the same, as it did when
                                // no byte was sent before the end.
                                let _ = (&mut fetch).await;
                                return Err(e);
                            }
                            sent = upto;
                        }
                    }
                }
            }
        }
    };
    tx.send(Ok(progress(info.size, info.size, 0)))
        .await
        .map_err(|_| gone())?;
    let f = files.open_blob(hash).await?;
    let tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Seek;
        let mut f = f;
        if let Err(e) = f.seek(std::io::SeekFrom::Start(sent)) {
            let _ = tx.blocking_send(Err(ApiError::Internal(format!("reading {hash}: {e}"))));
            return;
        }
        let mut f = std::io::BufReader::with_capacity(CHUNK, f);
        loop {
            let mut buf = vec![0u8; CHUNK];
            let n = match read_full(&mut f, &mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let _ =
                        tx.blocking_send(Err(ApiError::Internal(format!("reading {hash}: {e}"))));
                    return;
                }
            };
            if n == 0 {
                return;
            }
            buf.truncate(n);
            let msg = DownloadResponse {
                item: Some(download_response::Item::Chunk(buf)),
            };
            if tx.blocking_send(Ok(msg)).is_err() {
                return;
            }
        }
    })
    .await
    .map_err(|_| ApiError::Internal("the download's reader stopped".into()))
}

/// Sends bytes `from..to` of a partial blob's data file (verified, so never changed again)
/// as chunks.
async fn send_range(
    file: Arc<std::fs::File>,
    hash: Hash,
    from: u64,
    to: u64,
    tx: &mpsc::Sender<Result<DownloadResponse, ApiError>>,
) -> Result<(), ApiError> {
    let tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let mut at = from;
        while at < to {
            let n = usize::try_from(to - at).unwrap_or(CHUNK).min(CHUNK);
            let mut buf = vec![0u8; n];
            file.read_exact_at(&mut buf, at)
                .map_err(|e| ApiError::Internal(format!("reading {hash}: {e}")))?;
            let msg = DownloadResponse {
                item: Some(download_response::Item::Chunk(buf)),
            };
            tx.blocking_send(Ok(msg))
                .map_err(|_| ApiError::Unavailable("the client went away".into()))?;
            at += n as u64;
        }
        Ok(())
    })
    .await
    .map_err(|_| ApiError::Internal("the download's reader stopped".into()))?
}

/// Reads until `buf` is full or the end.
fn read_full(r: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
#[path = "files_tests.rs"]
mod tests;
