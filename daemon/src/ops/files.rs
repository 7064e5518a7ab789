//! What clients may ask of the files service (`chat.v1.FileService`, docs/api.md "Files"):
//! upload a file into this node's store, download one (fetched from its providers first if
//! this node does not hold it), describe one, list the store.
//!
//! An upload is written to the store's `tmp/` as it arrives, checked against the size its
//! metadata announced (not a byte more, not a byte less) and only then imported: a cut or
//! oversized upload leaves nothing behind. A download sends bytes only once the whole file
//! is verified in the store, so a client never receives bytes that do not match the hash.

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
        let mut partial = Partial(Some(path.clone()));
        self.receive(&path, meta.size, &mut items).await?;
        // From here the import owns the file (and removes it).
        partial.0 = None;
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

    /// Writes the upload's chunks to `path`, exactly `size` bytes.
    async fn receive(
        &self,
        path: &std::path::Path,
        size: u64,
        items: &mut (impl Stream<Item = Result<UploadItem, ApiError>> + Unpin),
    ) -> Result<(), ApiError> {
        let internal = |e: std::io::Error| ApiError::Internal(format!("writing an upload: {e}"));
        let worker = || ApiError::Internal("the upload's writer stopped".into());
        let p = path.to_path_buf();
        let mut f = tokio::task::spawn_blocking(move || std::fs::File::create(p))
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
    /// hold it, with progress messages, then sent in chunks. Errors found before anything is
    /// sent (a bad hash, no provider known) are the call's; later ones end the stream.
    pub async fn download(
        &self,
        hash: &str,
        size: u64,
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
            let res = send_file(&files, hash, size, held, found, &tx).await;
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

/// An upload being written, removed on drop.
struct Partial(Option<std::path::PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
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

/// Fetches (if needed, reporting progress) and sends the file.
async fn send_file(
    files: &Arc<Files>,
    hash: Hash,
    size: Option<u64>,
    held: Option<BlobInfo>,
    found: Vec<(chat_overlay::Peer, u64)>,
    tx: &mpsc::Sender<Result<DownloadResponse, ApiError>>,
) -> Result<(), ApiError> {
    let gone = || ApiError::Unavailable("the client went away".into());
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
            loop {
                tokio::select! {
                    done = &mut fetch => break done?,
                    _ = tick.tick() => {
                        let have = files.have(hash, claimed).await?;
                        tx.send(Ok(progress(claimed, have, providers)))
                            .await
                            .map_err(|_| gone())?;
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
