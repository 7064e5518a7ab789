//! A blob's name and the units a transfer counts in.
//!
//! A blob is named by the BLAKE3 hash of its bytes (bao-tree's root hash, which is the same
//! value at any chunk group size). Ranges are counted in BLAKE3 chunks of 1 KiB
//! ([`ChunkRanges`]); verification and storage work in chunk groups of [`BLOCK_SIZE`].

use std::fmt;
use std::str::FromStr;

use bao_tree::{BaoTree, BlockSize, ChunkNum, ChunkRanges};

/// The chunk group size: 16 chunks of 1 KiB (16 KiB), as iroh-blobs uses. The outboard
/// holds one hash pair per chunk group (about 0.4 % of the data) and the smallest unit a
/// provider sends or a fetcher verifies is one chunk group.
pub const BLOCK_SIZE: BlockSize = BlockSize::from_chunk_log(4);

/// Chunks per chunk group.
pub const GROUP_CHUNKS: u64 = 1 << 4;

/// A blob's name: the BLAKE3 hash of its bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// The hash of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Hash(*blake3::hash(bytes).as_bytes())
    }

    /// The 64 lower-case hex digits that name the blob's files.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub(crate) fn blake3(&self) -> blake3::Hash {
        blake3::Hash::from_bytes(self.0)
    }
}

impl From<blake3::Hash> for Hash {
    fn from(h: blake3::Hash) -> Self {
        Hash(*h.as_bytes())
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", &self.to_hex()[..16])
    }
}

/// The text was not 64 hex digits.
#[derive(Debug, thiserror::Error)]
#[error("a blob hash is 64 hex digits")]
pub struct BadHash;

impl FromStr for Hash {
    type Err = BadHash;

    fn from_str(s: &str) -> Result<Self, BadHash> {
        if s.len() != 64 {
            return Err(BadHash);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| BadHash)?;
        Ok(Hash(out))
    }
}

/// The tree of a blob of `size` bytes at [`BLOCK_SIZE`].
pub fn tree(size: u64) -> BaoTree {
    BaoTree::new(size, BLOCK_SIZE)
}

/// Every chunk of a blob of `size` bytes (empty for an empty blob).
pub fn all_chunks(size: u64) -> ChunkRanges {
    ChunkRanges::from(ChunkNum(0)..ChunkNum::chunks(size))
}

/// The number of chunks in `ranges` below `end` (a blob's chunk count).
pub fn count_chunks(ranges: &ChunkRanges, end: ChunkNum) -> u64 {
    let bounded = ranges & &ChunkRanges::from(ChunkNum(0)..end);
    bounded
        .iter()
        .map(|r| match r {
            range_collections::range_set::RangeSetRange::Range(r) => r.end.0 - r.start.0,
            range_collections::range_set::RangeSetRange::RangeFrom(r) => end.0 - r.start.0,
        })
        .sum()
}

/// The bytes `ranges` cover in a blob of `size` bytes.
pub fn count_bytes(ranges: &ChunkRanges, size: u64) -> u64 {
    let end = ChunkNum::chunks(size);
    let chunks = count_chunks(ranges, end);
    let mut bytes = chunks * 1024;
    // The last chunk may be short.
    if !size.is_multiple_of(1024) && ranges.contains(&ChunkNum(end.0 - 1)) {
        bytes -= 1024 - size % 1024;
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_rejects() {
        let h = Hash::of(b"x");
        assert_eq!(h.to_hex().parse::<Hash>().ok(), Some(h));
        assert!("ab".parse::<Hash>().is_err());
        assert!("g".repeat(64).parse::<Hash>().is_err());
        assert!(format!("../{}", &h.to_hex()[3..]).parse::<Hash>().is_err());
    }

    #[test]
    fn counts() {
        assert_eq!(count_bytes(&all_chunks(0), 0), 0);
        assert_eq!(count_bytes(&all_chunks(1), 1), 1);
        assert_eq!(count_bytes(&all_chunks(5000), 5000), 5000);
        assert_eq!(
            count_bytes(&ChunkRanges::from(ChunkNum(1)..), 5000),
            5000 - 1024
        );
        assert_eq!(count_chunks(&ChunkRanges::all(), ChunkNum(7)), 7);
    }
}
