//! Verified range transfer over bao-tree, the two ends of one request.
//!
//! - Provider: [`BlobStore::serve`] answers a [`Request`] with the response header and
//!   bao-tree's *validated* encoding of the requested ranges: the provider checks its own
//!   bytes against the outboard as it sends, so disk corruption is caught at the source
//!   (the blob is then removed) instead of earning the provider a bad name. [`BlobSource`]
//!   is the same without the store, for several requests at once.
//! - Fetcher: [`BlobStore::begin_fetch`] opens (or resumes) a partial blob;
//!   [`BlobStore::receive`] decodes one response with bao-tree's decoder, which checks every
//!   hash pair and chunk group against the hash before yielding it; only then is it written.
//!   [`FetchWriter`] is the same without the store, for several responses at once;
//!   [`BlobStore::record_verified`] takes what each verified.
//!   A mismatch ends the response with [`FetchError::BadProvider`]; what verified before is
//!   kept, recorded, and not asked for again.
//!
//! Both ends work on `std::io` streams: the daemon runs them off its event loop, over a QUIC
//! stream adapted to `Read`/`Write`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use bao_tree::io::outboard::PreOrderOutboard;
use bao_tree::io::sync::{DecodeResponseIter, OutboardMut, encode_ranges_validated};
use bao_tree::io::{BaoContentItem, DecodeError, EncodeError};
use bao_tree::{ChunkNum, ChunkRanges};
use range_collections::range_set::RangeSetRange;

use crate::error::{FetchError, StoreError};
use crate::hash::{self, Hash};
use crate::partial::Partial;
use crate::store::{BlobStore, remove_quietly};
use crate::wire::{self, Request, ResponseHead};

/// Verified bytes are handed to the store (and so become visible to a download streaming
/// them, and to progress) at least this often within one response, and at its end.
pub const RECORD_BYTES: u64 = 1 << 20;
/// The store writes a fetch's ranges file (a hint, not synced: see `partial.rs`) after at
/// least this many newly verified bytes, and when a response ends: a crash loses at most
/// about this much progress. (Until issue 35's throughput work, data, outboard and ranges
/// file were synced at each of these; the hint is re-verified on load instead.)
pub const COMMIT_BYTES: u64 = 16 << 20;

/// What one response brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Bytes of blob data verified and written by this response.
    pub bytes: u64,
    /// Whether the blob is now complete (and moved to the complete blobs).
    pub complete: bool,
}

/// Counts what passes through a writer (bytes served).
struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl BlobStore {
    /// Answers `request` on `out`: the header, then the requested ranges, encoded and
    /// checked against the outboard. A blob that is not complete here is answered "not
    /// found"; one found damaged on disk is removed. Returns the bytes written. (One request
    /// at a time; for several at once, see [`BlobSource`].)
    pub fn serve(&mut self, request: &Request, mut out: impl Write) -> Result<u64, StoreError> {
        let source = match self.source(&request.hash) {
            Ok(s) => s,
            Err(StoreError::NotFound(_)) => {
                out.write_all(&[wire::STATUS_NOT_FOUND])
                    .map_err(StoreError::Response)?;
                return Ok(1);
            }
            Err(e) => return Err(e),
        };
        let res = source.serve(&request.ranges, out);
        if matches!(res, Err(StoreError::Corrupt(_))) {
            tracing::warn!(blob = %request.hash, "a stored blob does not match its outboard: removed");
            self.remove(&request.hash)?;
        }
        res
    }

    /// A complete blob's data and outboard, opened for serving without the store (the
    /// daemon answers several requests at once, off its event loop). Marks the blob used.
    /// It stays readable if the blob is evicted meanwhile.
    pub fn source(&mut self, hash: &Hash) -> Result<BlobSource, StoreError> {
        let data = self.open_blob(hash)?;
        let outboard = self.open_outboard(hash)?;
        Ok(BlobSource {
            hash: *hash,
            data,
            outboard,
        })
    }

    /// Starts or resumes fetching the blob `hash` of `size` bytes (from its reference) and
    /// returns the chunks still missing (empty: already complete). A new partial blob
    /// reserves its full size in the quota.
    pub fn begin_fetch(&mut self, hash: &Hash, size: u64) -> Result<ChunkRanges, FetchError> {
        if let Some(info) = self.info(hash) {
            if info.size != size {
                return Err(FetchError::BadReference(format!(
                    "{hash} is {} bytes, not {size}",
                    info.size
                )));
            }
            return Ok(ChunkRanges::empty());
        }
        if size > self.cfg.max_file_bytes {
            return Err(StoreError::TooLarge {
                limit: self.cfg.max_file_bytes,
            }
            .into());
        }
        if size == 0 {
            // Nothing to fetch, so nothing would be verified: the hash must be the empty one.
            if *hash != Hash::of(&[]) {
                return Err(FetchError::BadReference(format!(
                    "{hash} is not the hash of an empty file"
                )));
            }
            self.import_bytes(&[])?;
            return Ok(ChunkRanges::empty());
        }
        if let Some(p) = self.partials.get(hash) {
            if p.size != size {
                return Err(FetchError::BadReference(format!(
                    "{hash} is being fetched as {} bytes, not {size}",
                    p.size
                )));
            }
            return Ok(p.missing());
        }
        self.make_room(size + hash::tree(size).outboard_size())?;
        let dir = self.partial_dir();
        let p = Partial::create(&dir, hash, size).map_err(|e| StoreError::io(&dir, e))?;
        let missing = p.missing();
        self.partials.insert(*hash, p);
        Ok(missing)
    }

    /// The chunks of a fetch under way still missing (`None`: no fetch of it).
    pub fn missing(&self, hash: &Hash) -> Option<ChunkRanges> {
        self.partials.get(hash).map(Partial::missing)
    }

    /// The chunks of a fetch under way already verified (`None`: no fetch of it).
    pub fn verified(&self, hash: &Hash) -> Option<ChunkRanges> {
        self.partials.get(hash).map(|p| p.verified.clone())
    }

    /// Bytes of a fetch under way verified from the start of the blob without a gap (`None`:
    /// no fetch of it).
    pub fn verified_prefix(&self, hash: &Hash) -> Option<u64> {
        let p = self.partials.get(hash)?;
        let first = p.verified.iter().next();
        let chunks = match first {
            Some(RangeSetRange::Range(r)) if r.start.0 == 0 => r.end.0,
            Some(RangeSetRange::RangeFrom(r)) if r.start.0 == 0 => u64::MAX,
            _ => 0,
        };
        Some(chunks.saturating_mul(1024).min(p.size))
    }

    /// A second handle on the data file of a fetch under way (`None`: no fetch of it), for
    /// reading what verified: a verified byte is never written again, and the handle stays
    /// readable when the blob completes (renamed) or the fetch is given up (removed).
    pub fn partial_data(&self, hash: &Hash) -> Result<Option<File>, StoreError> {
        self.partials
            .get(hash)
            .map(|p| {
                p.data
                    .try_clone()
                    .map_err(|e| StoreError::io(&p.paths.data, e))
            })
            .transpose()
    }

    /// Gives up a fetch: its partial blob is removed.
    pub fn abandon_fetch(&mut self, hash: &Hash) {
        if let Some(p) = self.partials.remove(hash) {
            p.paths.remove();
        }
    }

    /// Decodes one response to a request for `requested` chunks of `hash`, writing each
    /// chunk group only after it verified, and records what verified. When the last
    /// missing chunk group arrives, the blob becomes complete. (One response at a time;
    /// for several at once, see [`FetchWriter`].)
    ///
    /// Errors: [`FetchError::BadProvider`] (bytes that do not verify, a different size),
    /// [`FetchError::Truncated`], [`FetchError::NotFound`]; in each case everything that
    /// verified before is kept.
    pub fn receive(
        &mut self,
        hash: &Hash,
        requested: &ChunkRanges,
        response: impl Read,
    ) -> Result<Received, FetchError> {
        let mut writer = self.fetch_writer(hash)?;
        let mut complete = false;
        let bytes = writer.decode(requested, response, |verified| {
            complete = self.record_verified(verified)?;
            Ok(())
        })?;
        Ok(Received { bytes, complete })
    }

    /// A writer for one response of a fetch under way, independent of the store: the daemon
    /// runs one per provider, off its event loop and without holding the store, and records
    /// what each verified with [`BlobStore::record_verified`].
    pub fn fetch_writer(&self, hash: &Hash) -> Result<FetchWriter, FetchError> {
        let p = self
            .partials
            .get(hash)
            .ok_or(FetchError::NotStarted(*hash))?;
        let io_err = |path: &std::path::Path, e| FetchError::Store(StoreError::io(path, e));
        Ok(FetchWriter {
            hash: *hash,
            size: p.size,
            data: p.data.try_clone().map_err(|e| io_err(&p.paths.data, e))?,
            outboard: PreOrderOutboard {
                root: p.outboard.root,
                tree: p.outboard.tree,
                data: p
                    .outboard
                    .data
                    .try_clone()
                    .map_err(|e| io_err(&p.paths.outboard, e))?,
            },
            data_path: p.paths.data.clone(),
            outboard_path: p.paths.outboard.clone(),
        })
    }

    /// Records chunks a [`FetchWriter`] verified and wrote; when none is missing any more,
    /// the blob becomes complete. Returns whether it is.
    pub fn record_verified(&mut self, verified: Verified) -> Result<bool, FetchError> {
        let hash = verified.hash;
        let Some(p) = self.partials.get_mut(&hash) else {
            // Completed by an earlier record (of this response or another's): its last
            // chunks were verified and written all the same.
            return match self.info(&hash) {
                Some(_) => Ok(true),
                None => Err(FetchError::NotStarted(hash)),
            };
        };
        let fresh = verified.ranges & hash::all_chunks(p.size);
        let added = hash::count_bytes(&(&fresh - &p.verified), p.size);
        p.verified |= fresh;
        if p.missing().is_empty() {
            // Recorded as complete by the rename into the complete blobs.
            self.finish_fetch(&hash)?;
            return Ok(true);
        }
        p.unsaved += added;
        if p.unsaved >= COMMIT_BYTES || (verified.end && p.unsaved > 0) {
            p.save_ranges()
                .map_err(|e| StoreError::io(&p.paths.ranges, e))?;
            p.unsaved = 0;
        }
        Ok(false)
    }

    /// Moves a fully verified partial blob into the complete blobs: data and outboard synced
    /// (the one sync of a fetch), then renamed. No second pass over the whole file: every
    /// chunk group was verified before it was written, in this run or, for what an earlier
    /// run recorded, again when the store opened (`partial.rs`), and the sync comes before
    /// the rename, so a crash cannot leave a wrong complete blob.
    fn finish_fetch(&mut self, hash: &Hash) -> Result<(), FetchError> {
        let Some(p) = self.partials.remove(hash) else {
            return Err(FetchError::NotStarted(*hash));
        };
        let io_err = |path: &std::path::Path, e| FetchError::Store(StoreError::io(path, e));
        p.data.sync_data().map_err(|e| io_err(&p.paths.data, e))?;
        p.outboard
            .data
            .sync_data()
            .map_err(|e| io_err(&p.paths.outboard, e))?;
        self.install(hash, &p.paths.data, &p.paths.outboard)?;
        remove_quietly(&p.paths.ranges);
        self.insert_complete(*hash, p.size);
        tracing::debug!(blob = %hash, size = p.size, "blob fetched");
        Ok(())
    }
}

/// A complete blob opened for serving (see [`BlobStore::source`]).
pub struct BlobSource {
    hash: Hash,
    data: File,
    outboard: PreOrderOutboard<File>,
}

impl BlobSource {
    /// The blob's size.
    pub fn size(&self) -> u64 {
        self.outboard.tree.size()
    }

    /// Writes the response to a request for `ranges`: the header, then bao-tree's validated
    /// encoding. [`StoreError::Corrupt`]: the data on disk does not match the outboard (the
    /// caller removes the blob; nothing that failed the check was sent).
    pub fn serve(&self, ranges: &ChunkRanges, out: impl Write) -> Result<u64, StoreError> {
        let mut out = Counting { inner: out, n: 0 };
        out.write_all(&wire::ok_header(self.size()))
            .map_err(StoreError::Response)?;
        match encode_ranges_validated(&self.data, &self.outboard, ranges, &mut out) {
            Ok(()) => {
                out.flush().map_err(StoreError::Response)?;
                Ok(out.n)
            }
            Err(
                EncodeError::ParentHashMismatch(_)
                | EncodeError::LeafHashMismatch(_)
                | EncodeError::SizeMismatch,
            ) => Err(StoreError::Corrupt(self.hash)),
            Err(EncodeError::Io(e)) => Err(StoreError::Io {
                path: format!("blob {}", self.hash),
                source: e,
            }),
            Err(EncodeError::ParentWrite(_) | EncodeError::LeafWrite(_)) => Err(
                StoreError::Response(io::Error::new(io::ErrorKind::BrokenPipe, "requester gone")),
            ),
        }
    }
}

/// Chunks of one blob a [`FetchWriter`] verified and wrote: only a writer makes
/// these, so only verified chunks are ever recorded.
#[derive(Debug, Clone)]
pub struct Verified {
    hash: Hash,
    ranges: ChunkRanges,
    /// The last of a response (the store then writes its ranges file).
    end: bool,
}

impl Verified {
    /// The blob.
    pub fn hash(&self) -> &Hash {
        &self.hash
    }

    /// The chunks.
    pub fn ranges(&self) -> &ChunkRanges {
        &self.ranges
    }
}

/// Writes one response's chunk groups into a partial blob as they verify. It holds its own
/// handles on the partial blob's files, so several writers (one per provider, on disjoint
/// ranges) can run at once without the store; a hash pair two of them receive is the same
/// verified 64 bytes.
pub struct FetchWriter {
    hash: Hash,
    size: u64,
    data: File,
    outboard: PreOrderOutboard<File>,
    data_path: PathBuf,
    outboard_path: PathBuf,
}

impl FetchWriter {
    /// Decodes one response to a request for `requested`, writing each hash pair and chunk
    /// group after it verified. Every [`RECORD_BYTES`] and at the end, also when the
    /// response fails, `record` is given the chunks verified and written since its last call
    /// (to hand to [`BlobStore::record_verified`]). Nothing is synced here: the store syncs
    /// once when the blob completes. Returns the bytes verified.
    pub fn decode(
        &mut self,
        requested: &ChunkRanges,
        mut response: impl Read,
        mut record: impl FnMut(Verified) -> Result<(), FetchError>,
    ) -> Result<u64, FetchError> {
        let hash = self.hash;
        let size = match wire::read_head(&mut response)? {
            ResponseHead::NotFound => return Err(FetchError::NotFound(hash)),
            ResponseHead::Ok(s) => s,
        };
        if size != self.size {
            return Err(FetchError::BadProvider(format!(
                "it says {hash} is {size} bytes, the reference says {}",
                self.size
            )));
        }
        let tree = self.outboard.tree;
        let mut bytes = 0u64;
        let mut fresh = ChunkRanges::empty();
        let mut uncommitted = 0u64;
        // The bytes written since the last record, whose writeback to the disk is then
        // started (not waited for): the one sync at the end finds little left to write.
        let mut span: Option<(u64, u64)> = None;
        let mut failure = None;
        // Decoded exactly as the provider encodes it: bao-tree reads ranges past the end as
        // the last chunk, on both sides.
        let iter = DecodeResponseIter::new(hash.blake3(), tree, &mut response, requested);
        for item in iter {
            let step = match item {
                Ok(BaoContentItem::Parent(parent)) => self
                    .outboard
                    .save(parent.node, &parent.pair)
                    .map_err(|e| StoreError::io(&self.outboard_path, e).into()),
                Ok(BaoContentItem::Leaf(leaf)) => {
                    let len = leaf.data.len() as u64;
                    match self.data.write_all_at(&leaf.data, leaf.offset) {
                        Ok(()) => {
                            let start = ChunkNum(leaf.offset / 1024);
                            let end = ChunkNum::chunks(leaf.offset + len);
                            fresh |= ChunkRanges::from(start..end);
                            bytes += len;
                            uncommitted += len;
                            let end = leaf.offset + len;
                            span = Some(span.map_or((leaf.offset, end), |(lo, hi)| {
                                (lo.min(leaf.offset), hi.max(end))
                            }));
                            Ok(())
                        }
                        Err(e) => Err(StoreError::io(&self.data_path, e).into()),
                    }
                }
                Err(e) => Err(decode_error(&hash, e)),
            };
            if let Err(e) = step {
                failure = Some(e);
                break;
            }
            if uncommitted >= RECORD_BYTES {
                if let Some((lo, hi)) = span.take() {
                    crate::writeback::start(&self.data, lo, hi - lo);
                }
                record(Verified {
                    hash,
                    ranges: std::mem::take(&mut fresh),
                    end: false,
                })?;
                uncommitted = 0;
            }
        }
        record(Verified {
            hash,
            ranges: fresh,
            end: true,
        })?;
        match failure {
            Some(e) => {
                tracing::debug!(blob = %hash, error = %e, kept = bytes, "a response failed");
                Err(e)
            }
            None => Ok(bytes),
        }
    }
}

fn decode_error(hash: &Hash, e: DecodeError) -> FetchError {
    match e {
        DecodeError::ParentHashMismatch(node) => FetchError::BadProvider(format!(
            "hash pair at level {} does not verify for {hash}",
            node.level()
        )),
        DecodeError::LeafHashMismatch(chunk) => FetchError::BadProvider(format!(
            "bytes at offset {} do not verify for {hash}",
            chunk.to_bytes()
        )),
        DecodeError::ParentNotFound(node) => {
            FetchError::Truncated(format!("hash pair at level {}", node.level()))
        }
        DecodeError::LeafNotFound(chunk) => {
            FetchError::Truncated(format!("offset {}", chunk.to_bytes()))
        }
        DecodeError::Io(e) => FetchError::Read(e),
    }
}
