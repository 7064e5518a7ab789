//! A blob being fetched: its data file (sparse, full length), its pre-order outboard (hash
//! pairs written as they verify; zeros where unknown) and the chunk ranges verified so far,
//! persisted in `<hash>.ranges` (written to a temporary file and renamed) so that a restart
//! resumes where it stopped.
//!
//! The ranges file is a hint, not a promise: it is written without syncing the data and
//! outboard first (the syncs cost most of a fetch's time), so after a power cut it may name
//! chunks whose bytes never reached the disk. A partial blob found when the store opens is
//! therefore checked again ([`Partial::load`]): every recorded piece of [`RECHECK_CHUNKS`] is
//! re-encoded against the outboard from the root down, and only the pieces that verify are
//! kept; the rest is fetched again.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bao_tree::io::outboard::PreOrderOutboard;
use bao_tree::io::sync::encode_ranges_validated;
use bao_tree::{ChunkNum, ChunkRanges};
use range_collections::range_set::RangeSetRange;

use crate::hash::{self, Hash};
use crate::wire::ranges_from_boundaries;

const MAGIC: &[u8; 4] = b"CHBP";
const VERSION: u8 = 1;
/// A ranges file with more boundaries than this is damaged (a blob of `max_file_bytes`
/// has far fewer chunk groups).
const MAX_STATE_BOUNDARIES: usize = 1 << 20;
/// Chunks re-verified as one piece when a partial blob is loaded (1 MiB, a multiple of the
/// chunk group): a piece that does not verify is fetched again as a whole.
pub(crate) const RECHECK_CHUNKS: u64 = 1024;

/// The three files of a partial blob.
pub(crate) struct PartialPaths {
    pub data: PathBuf,
    pub outboard: PathBuf,
    pub ranges: PathBuf,
}

impl PartialPaths {
    pub fn new(dir: &Path, hash: &Hash) -> Self {
        let hex = hash.to_hex();
        PartialPaths {
            data: dir.join(format!("{hex}.data")),
            outboard: dir.join(format!("{hex}.obao")),
            ranges: dir.join(format!("{hex}.ranges")),
        }
    }

    /// Where the ranges file is written before it replaces the last one.
    fn ranges_tmp(&self) -> PathBuf {
        self.ranges.with_extension("ranges.tmp")
    }

    pub fn remove(&self) {
        for p in [&self.ranges, &self.ranges_tmp(), &self.data, &self.outboard] {
            if let Err(e) = fs::remove_file(p)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %p.display(), error = %e, "removing a partial blob's file");
            }
        }
    }
}

/// An open partial blob.
pub(crate) struct Partial {
    pub size: u64,
    pub data: File,
    pub outboard: PreOrderOutboard<File>,
    pub verified: ChunkRanges,
    pub paths: PartialPaths,
    /// Bytes verified since the ranges file was last written.
    pub unsaved: u64,
}

impl Partial {
    /// Creates the files of a new partial blob of `size` bytes.
    pub fn create(dir: &Path, hash: &Hash, size: u64) -> io::Result<Self> {
        let paths = PartialPaths::new(dir, hash);
        let tree = hash::tree(size);
        let data = open_rw(&paths.data, true)?;
        data.set_len(size)?;
        let ob = open_rw(&paths.outboard, true)?;
        ob.set_len(tree.outboard_size())?;
        let p = Partial {
            size,
            data,
            outboard: PreOrderOutboard {
                root: hash.blake3(),
                tree,
                data: ob,
            },
            verified: ChunkRanges::empty(),
            paths,
            unsaved: 0,
        };
        p.save_ranges()?;
        Ok(p)
    }

    /// Opens a partial blob left by an earlier run, keeping of its recorded ranges only what
    /// verifies again against the hash (see the module's comment). `Ok(None)`: its files are
    /// missing or damaged (the caller removes them).
    pub fn load(dir: &Path, hash: &Hash) -> io::Result<Option<Self>> {
        let paths = PartialPaths::new(dir, hash);
        let bytes = match fs::read(&paths.ranges) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some((size, verified)) = decode_state(&bytes) else {
            return Ok(None);
        };
        let tree = hash::tree(size);
        let (data, ob) = match (open_rw(&paths.data, false), open_rw(&paths.outboard, false)) {
            (Ok(d), Ok(o)) => (d, o),
            _ => return Ok(None),
        };
        if data.metadata()?.len() != size || ob.metadata()?.len() != tree.outboard_size() {
            return Ok(None);
        }
        let outboard = PreOrderOutboard {
            root: hash.blake3(),
            tree,
            data: ob,
        };
        let verified = recheck(&data, &outboard, &verified);
        Ok(Some(Partial {
            size,
            data,
            outboard,
            verified,
            paths,
            unsaved: 0,
        }))
    }

    /// Bytes this partial blob reserves in the store (data and outboard).
    pub fn reserved(&self) -> u64 {
        self.size + self.outboard.tree.outboard_size()
    }

    /// The chunks still missing.
    pub fn missing(&self) -> ChunkRanges {
        hash::all_chunks(self.size) - &self.verified
    }

    /// Records the verified ranges: a new file renamed over the last one, not synced (a
    /// hint re-verified on load; see the module's comment).
    pub fn save_ranges(&self) -> io::Result<()> {
        let tmp = self.paths.ranges_tmp();
        let written = (|| {
            let mut f = open_rw(&tmp, true)?;
            f.set_len(0)?;
            f.write_all(&encode_state(self.size, &self.verified))
        })();
        if let Err(e) = written {
            // A full disk, say: no half-written state file stays behind.
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        fs::rename(&tmp, &self.paths.ranges)
    }
}

/// What of `recorded` verifies against the hash: each piece of [`RECHECK_CHUNKS`] is
/// re-encoded with bao-tree's validated encoder (hash pairs from the root down, then the chunk
/// groups' bytes) into nothing; a piece whose hash pairs or bytes do not match, or cannot be
/// read, is dropped.
pub(crate) fn recheck(
    data: &File,
    outboard: &PreOrderOutboard<File>,
    recorded: &ChunkRanges,
) -> ChunkRanges {
    let end = ChunkNum::chunks(outboard.tree.size());
    let mut kept = ChunkRanges::empty();
    for r in recorded.iter() {
        let (start, stop) = match r {
            RangeSetRange::Range(r) => (r.start.0, r.end.0.min(end.0)),
            RangeSetRange::RangeFrom(r) => (r.start.0, end.0),
        };
        let mut at = start;
        while at < stop {
            let next = ((at / RECHECK_CHUNKS + 1) * RECHECK_CHUNKS).min(stop);
            let piece = ChunkRanges::from(ChunkNum(at)..ChunkNum(next));
            if encode_ranges_validated(data, outboard, &piece, io::sink()).is_ok() {
                kept |= piece;
            }
            at = next;
        }
    }
    kept
}

fn open_rw(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)
}

fn encode_state(size: u64, verified: &ChunkRanges) -> Vec<u8> {
    let b = verified.boundaries();
    let mut out = Vec::with_capacity(4 + 1 + 8 + 4 + b.len() * 8);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&size.to_le_bytes());
    // A blob's ranges have at most one boundary per chunk; far below u32::MAX.
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    for x in b {
        out.extend_from_slice(&x.0.to_le_bytes());
    }
    out
}

fn decode_state(bytes: &[u8]) -> Option<(u64, ChunkRanges)> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (&version, rest) = rest.split_first()?;
    if version != VERSION {
        return None;
    }
    let (size, rest) = rest.split_first_chunk::<8>()?;
    let size = u64::from_le_bytes(*size);
    let (n, rest) = rest.split_first_chunk::<4>()?;
    let n = usize::try_from(u32::from_le_bytes(*n)).ok()?;
    if n > MAX_STATE_BOUNDARIES || rest.len() != n * 8 {
        return None;
    }
    let boundaries: Vec<ChunkNum> = rest
        .chunks_exact(8)
        .map(|c| {
            let mut x = [0u8; 8];
            x.copy_from_slice(c);
            ChunkNum(u64::from_le_bytes(x))
        })
        .collect();
    let verified = ranges_from_boundaries(&boundaries).ok()?;
    // Nothing verified beyond the blob's end.
    let verified = verified & hash::all_chunks(size);
    Some((size, verified))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trip_and_damage() {
        let v = ChunkRanges::from(ChunkNum(0)..ChunkNum(16))
            | ChunkRanges::from(ChunkNum(48)..ChunkNum(50));
        let bytes = encode_state(50 * 1024 - 3, &v);
        assert_eq!(decode_state(&bytes), Some((50 * 1024 - 3, v)));
        for cut in 0..bytes.len() {
            assert!(decode_state(&bytes[..cut]).is_none());
        }
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(decode_state(&bad).is_none());
        // ranges past the end are dropped
        let bytes = encode_state(1024, &ChunkRanges::from(ChunkNum(0)..ChunkNum(99)));
        assert_eq!(
            decode_state(&bytes).map(|(_, v)| v),
            Some(ChunkRanges::from(ChunkNum(0)..ChunkNum(1)))
        );
    }
}
