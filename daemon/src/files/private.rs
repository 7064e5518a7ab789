//! Private files (docs/protocol.md, "Private files"): a file sent in a private message is
//! encrypted with a fresh key before it enters the store (chat-blobs' [`chat_blobs::crypt`]),
//! so the blob every other node may store, serve and fetch is the ciphertext, named by the
//! ciphertext's hash. What opens it travels only inside the end-to-end encrypted message:
//!
//! ```text
//! reference = CBOR [1 (version), cipher_hash: bytes(32), cipher_size: uint, key: bytes(32),
//!                   plain_hash: bytes(32), name: text (1..=255 bytes), size: uint,
//!                   media: uint]
//! ```
//!
//! (`size` and `media` are the plaintext's; the STREAM nonce is in the ciphertext's header.)
//! A private voice message's reference has a ninth item, its transcript in the public voice
//! item's format (`chat/transcript.rs`), cut so the whole reference stays within
//! [`chat_dm::payload::MAX_FILE_REF`] (docs/protocol.md, "Private voice messages").
//! A receiver reads it with [`PrivateFile::decode`]: anything malformed or of another version
//! is no file (the text is still shown).
//!
//! - [`Files::import_private`]: an upload encrypted into the store; the key waits in memory
//!   ([`PENDING_FOR`], at most [`MAX_PENDING`]) for the message that sends it.
//! - [`Files::decrypt_to`]: the plaintext of a held ciphertext, streamed in chunks and checked
//!   against the plaintext's hash at the end.
//! - [`fetch_received`]: the recipient's node fetches the ciphertext of every private file
//!   its accounts receive, at once and pinned: the node keeps the ciphertext and the key (in
//!   the message's row of `dm.sqlite3`), never a plaintext copy; `chatctl get` decrypts on
//!   the way out.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_blobs::{BlobInfo, FileKey, Hash, MediaType};
use ciborium::Value;
use tokio::sync::{Semaphore, broadcast, mpsc};

use super::{Files, FilesError};
use crate::chat::attachment::{MAX_NAME_BYTES, media_code, media_from_code};
use crate::chat::transcript::{self, Transcript};
use crate::dm::DmEvent;

/// How long an encrypted upload's key waits for its message.
pub const PENDING_FOR: Duration = Duration::from_secs(600);
/// Encrypted uploads waiting for their messages, at most (the oldest is forgotten first).
pub const MAX_PENDING: usize = 64;
/// Received private files fetched at once.
pub const FETCHING: usize = 2;
/// Tries per received file (its holders' provider records may still be on their way).
const TRIES: u32 = 4;
const VERSION: u64 = 1;

/// A private file's reference, as the message carries it.
#[derive(Clone, Debug)]
pub struct PrivateFile {
    /// The ciphertext's hash: the blob's name.
    pub cipher_hash: Hash,
    /// The ciphertext's length.
    pub cipher_size: u64,
    /// The key (never logged, never shown by the API).
    pub key: FileKey,
    /// The plaintext's BLAKE3 hash, checked after decryption.
    pub plain_hash: [u8; 32],
    /// The name the sender gave (untrusted).
    pub name: String,
    /// The plaintext's length.
    pub size: u64,
    /// The media type the sender's node found in the plaintext's first bytes.
    pub media: MediaType,
    /// A private voice message's transcript (with the words that fitted the bound).
    pub voice: Option<Transcript>,
}

impl PrivateFile {
    /// The reference's bytes, within [`chat_dm::payload::MAX_FILE_REF`] for a name of at
    /// most [`MAX_NAME_BYTES`]: a transcript's words are left out from the last one back
    /// until it fits.
    pub fn encode(&self) -> Vec<u8> {
        let mut items = self.items();
        let mut out = Vec::new();
        // Writing CBOR into a Vec cannot fail.
        let _ = ciborium::into_writer(&Value::Array(items.clone()), &mut out);
        let Some(t) = &self.voice else {
            return out;
        };
        let budget = chat_dm::payload::MAX_FILE_REF.saturating_sub(out.len());
        let item = transcript::encode_within(t, budget);
        let Ok(item) = ciborium::from_reader::<Value, _>(item.as_slice()) else {
            return out;
        };
        items.push(item);
        out.clear();
        let _ = ciborium::into_writer(&Value::Array(items), &mut out);
        out
    }

    /// The eight items of every reference.
    fn items(&self) -> Vec<Value> {
        vec![
            Value::from(VERSION),
            Value::Bytes(self.cipher_hash.0.to_vec()),
            Value::from(self.cipher_size),
            Value::Bytes(self.key.0.to_vec()),
            Value::Bytes(self.plain_hash.to_vec()),
            Value::Text(self.name.clone()),
            Value::from(self.size),
            Value::from(media_code(self.media)),
        ]
    }

    /// Reads a reference from a message: `None` when malformed, of another version, or
    /// breaking a bound.
    pub fn decode(bytes: &[u8]) -> Option<PrivateFile> {
        if bytes.len() > chat_dm::payload::MAX_FILE_REF {
            return None;
        }
        let v: Value = ciborium::from_reader(bytes).ok()?;
        let Value::Array(items) = v else {
            return None;
        };
        // A ninth item is a voice message's transcript; one that breaks a bound is none (the
        // file and the text are still shown).
        let mut items = items;
        let voice = match items.len() {
            9 => items.pop().and_then(transcript::decode),
            _ => None,
        };
        let [
            version,
            cipher_hash,
            cipher_size,
            key,
            plain_hash,
            name,
            size,
            media,
        ]: [Value; 8] = items.try_into().ok()?;
        let uint = |v: Value| match v {
            Value::Integer(i) => u64::try_from(i128::from(i)).ok(),
            _ => None,
        };
        let b32 = |v: Value| match v {
            Value::Bytes(b) => <[u8; 32]>::try_from(b).ok(),
            _ => None,
        };
        if uint(version)? != VERSION {
            return None;
        }
        let Value::Text(name) = name else {
            return None;
        };
        if name.is_empty() || name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
            return None;
        }
        let size = uint(size)?;
        let cipher_size = uint(cipher_size)?;
        if cipher_size != chat_blobs::crypt::ciphertext_len(size) {
            return None;
        }
        Some(PrivateFile {
            cipher_hash: Hash(b32(cipher_hash)?),
            cipher_size,
            key: FileKey(b32(key)?),
            plain_hash: b32(plain_hash)?,
            name,
            size,
            media: media_from_code(uint(media)?),
            voice,
        })
    }
}

/// An encrypted upload waiting for its message.
#[derive(Clone, Debug)]
pub struct Pending {
    pub key: FileKey,
    pub plain_hash: [u8; 32],
    pub size: u64,
    pub cipher_size: u64,
    pub media: MediaType,
    at: Instant,
}

impl Pending {
    /// The reference for this upload under `name`.
    pub fn reference(&self, cipher_hash: Hash, name: String) -> PrivateFile {
        PrivateFile {
            cipher_hash,
            cipher_size: self.cipher_size,
            key: self.key.clone(),
            plain_hash: self.plain_hash,
            name,
            size: self.size,
            media: self.media,
            voice: None,
        }
    }
}

/// The keys of encrypted uploads, by ciphertext hash.
#[derive(Debug, Default)]
pub(super) struct PendingKeys(HashMap<Hash, Pending>);

/// Reads through, hashing what it reads and keeping its first bytes (for the media type).
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
    head: Vec<u8>,
    n: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let k = self.inner.read(buf)?;
        self.hasher.update(&buf[..k]);
        let want = chat_blobs::media::SNIFF_BYTES.saturating_sub(self.head.len());
        self.head.extend_from_slice(&buf[..k.min(want)]);
        self.n += k as u64;
        Ok(k)
    }
}

/// Writes plaintext to chunks for a download, hashing it.
struct Chunks {
    tx: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
    hasher: blake3::Hasher,
    chunk: usize,
}

impl Write for Chunks {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.hasher.update(b);
        self.buf.extend_from_slice(b);
        while self.buf.len() >= self.chunk {
            let rest = self.buf.split_off(self.chunk);
            let piece = std::mem::replace(&mut self.buf, rest);
            self.tx
                .blocking_send(piece)
                .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Files {
    /// Encrypts the finished upload at `path` into the store (the upload file is removed
    /// either way) and keeps its key for the message that sends it. Not announced: the
    /// message's send does that.
    pub async fn import_private(&self, path: std::path::PathBuf) -> Result<BlobInfo, FilesError> {
        let (info, pending) = self
            .blocking(move |s| {
                let res = (|| {
                    let f = std::fs::File::open(&path).map_err(|e| chat_blobs::StoreError::Io {
                        path: path.display().to_string(),
                        source: e,
                    })?;
                    let mut r = Hashing {
                        inner: io::BufReader::with_capacity(1 << 20, f),
                        hasher: blake3::Hasher::new(),
                        head: Vec::new(),
                        n: 0,
                    };
                    let (info, key) = s.import_encrypted(&mut r)?;
                    Ok::<_, chat_blobs::StoreError>((
                        info,
                        Pending {
                            key,
                            plain_hash: *r.hasher.finalize().as_bytes(),
                            size: r.n,
                            cipher_size: info.size,
                            media: MediaType::sniff(&r.head),
                            at: Instant::now(),
                        },
                    ))
                })();
                let _ = std::fs::remove_file(&path);
                Ok(res?)
            })
            .await?;
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.0.retain(|_, v| v.at.elapsed() < PENDING_FOR);
        if p.0.len() >= MAX_PENDING
            && let Some(oldest) = p.0.iter().min_by_key(|(_, v)| v.at).map(|(h, _)| *h)
        {
            p.0.remove(&oldest);
        }
        p.0.insert(info.hash, pending);
        Ok(info)
    }

    /// The key and facts of an encrypted upload of the last [`PENDING_FOR`].
    pub fn pending(&self, hash: &Hash) -> Option<Pending> {
        let p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.0.get(hash)
            .filter(|v| v.at.elapsed() < PENDING_FOR)
            .cloned()
    }

    /// Keeps `hash` (pinned: not evicted; a hold's expiry leaves it): a file this node's
    /// accounts sent or received.
    pub async fn keep(&self, hash: Hash) -> Result<(), FilesError> {
        self.blocking(move |s| Ok(s.pin(&hash)?)).await?;
        self.holds_keep(&hash);
        Ok(())
    }

    /// Decrypts the held ciphertext of `file` into chunks of `chunk` bytes on `tx`; fails
    /// (after sending what authenticated) when a segment does not authenticate or the
    /// plaintext does not match its hash.
    pub async fn decrypt_to(
        &self,
        file: &PrivateFile,
        tx: mpsc::Sender<Vec<u8>>,
        chunk: usize,
    ) -> Result<u64, FilesError> {
        let src = self.open_blob(file.cipher_hash).await?;
        let (key, want) = (file.key.clone(), file.plain_hash);
        tokio::task::spawn_blocking(move || {
            let mut out = Chunks {
                tx,
                buf: Vec::with_capacity(chunk),
                hasher: blake3::Hasher::new(),
                chunk,
            };
            let n = chat_blobs::crypt::decrypt(
                &key,
                io::BufReader::with_capacity(1 << 20, src),
                &mut out,
            )
            .map_err(|e| FilesError::Decrypt(e.to_string()))?;
            if *out.hasher.finalize().as_bytes() != want {
                return Err(FilesError::Decrypt(
                    "the plaintext does not match the hash its message gives".into(),
                ));
            }
            let last = std::mem::take(&mut out.buf);
            if !last.is_empty() && out.tx.blocking_send(last).is_err() {
                return Err(FilesError::Decrypt("the client went away".into()));
            }
            Ok(n)
        })
        .await
        .map_err(|_| FilesError::Worker)?
    }
}

impl Files {
    /// Decrypts the held ciphertext of `file` into a new file at `path` (the store's `tmp/`,
    /// emptied when the store opens), checked against the plaintext's hash; on failure the
    /// file is removed. For the node's own work on a private upload (a voice message's
    /// conversion), never kept.
    pub async fn decrypt_file(
        &self,
        file: &PrivateFile,
        path: std::path::PathBuf,
    ) -> Result<u64, FilesError> {
        let src = self.open_blob(file.cipher_hash).await?;
        let (key, want) = (file.key.clone(), file.plain_hash);
        tokio::task::spawn_blocking(move || {
            let res = (|| {
                let out = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&path)
                    .map_err(|e| FilesError::Decrypt(format!("{}: {e}", path.display())))?;
                let mut out = HashWriter {
                    inner: io::BufWriter::new(out),
                    hasher: blake3::Hasher::new(),
                };
                let n = chat_blobs::crypt::decrypt(
                    &key,
                    io::BufReader::with_capacity(1 << 20, src),
                    &mut out,
                )
                .map_err(|e| FilesError::Decrypt(e.to_string()))?;
                out.inner
                    .flush()
                    .map_err(|e| FilesError::Decrypt(format!("{}: {e}", path.display())))?;
                if *out.hasher.finalize().as_bytes() != want {
                    return Err(FilesError::Decrypt(
                        "the plaintext does not match its hash".into(),
                    ));
                }
                Ok(n)
            })();
            if res.is_err() {
                let _ = std::fs::remove_file(&path);
            }
            res
        })
        .await
        .map_err(|_| FilesError::Worker)?
    }
}

/// Writes through, hashing what it writes.
struct HashWriter<W> {
    inner: W,
    hasher: blake3::Hasher,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(b)?;
        self.hasher.update(&b[..k]);
        Ok(k)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Fetches (and keeps) the ciphertext of every private file the node's accounts receive, up
/// to `limit` bytes each, [`FETCHING`] at a time; runs until the feed closes.
pub async fn fetch_received(files: Arc<Files>, mut feed: broadcast::Receiver<DmEvent>, limit: u64) {
    let turns = Arc::new(Semaphore::new(FETCHING));
    loop {
        let m = match feed.recv().await {
            Ok(DmEvent::Message(m)) => m,
            Ok(_) => continue,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::debug!(missed = n, "private file fetches fell behind");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if m.row.outgoing || m.row.deleted {
            continue;
        }
        let Some(file) = m.row.file.as_deref().and_then(PrivateFile::decode) else {
            continue;
        };
        if file.cipher_size > limit {
            continue;
        }
        let (files, turns) = (files.clone(), turns.clone());
        tokio::spawn(async move {
            let Ok(_turn) = turns.acquire_owned().await else {
                return;
            };
            let hash = file.cipher_hash;
            // Pinned before it arrives: from its last verified byte on, eviction cannot take
            // it (after the holders' time this copy may be the only one).
            if let Err(e) = files.keep(hash).await {
                tracing::debug!(blob = %hash, error = %e, "pinning a private file");
            }
            for attempt in 1..=TRIES {
                match files.fetch_found(hash, Some(file.cipher_size)).await {
                    Ok(_) => {
                        tracing::debug!(blob = %hash, "private file fetched");
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(blob = %hash, attempt, error = %e, "private file fetch failed");
                        tokio::time::sleep(Duration::from_secs(u64::from(attempt * attempt))).await;
                    }
                }
            }
        });
    }
}

/// Whether `store` holds `hash` completely (for tests).
#[cfg(test)]
pub(super) fn holds(files: &Files, hash: &Hash) -> bool {
    super::lock(&files.store).has(hash)
}

#[cfg(test)]
#[path = "private_tests.rs"]
mod tests;
