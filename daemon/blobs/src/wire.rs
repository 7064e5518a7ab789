//! The range request and the response header (`docs/protocol.md`, "Files").
//!
//! ```text
//! request  = version:u8 (1) ‖ hash:[u8; 32] ‖ n:u8 ‖ n × boundary:u64 LE
//! response = status:u8 ‖ (status 0: size:u64 LE ‖ bao-tree encoding of the ranges)
//! ```
//!
//! The boundaries are chunk numbers (1 KiB), strictly increasing: `[a, b)` pairs, an odd
//! last one meaning "to the end". At most [`MAX_BOUNDARIES`]. The response's body is
//! bao-tree's pre-order encoding at [`crate::BLOCK_SIZE`]: for each requested chunk group,
//! the hash pairs on its path not sent before (64 bytes each), then the group's bytes.

use bao_tree::{ChunkNum, ChunkRanges};

use crate::error::WireError;
use crate::hash::Hash;

/// The request format's version.
pub const VERSION: u8 = 1;
/// At most this many range boundaries in a request (32 ranges).
pub const MAX_BOUNDARIES: usize = 64;
/// The largest request in bytes.
pub const MAX_REQUEST: usize = 2 + 32 + MAX_BOUNDARIES * 8;
/// Response status: the ranges follow.
pub const STATUS_OK: u8 = 0;
/// Response status: the provider does not hold the blob.
pub const STATUS_NOT_FOUND: u8 = 1;
/// The response header's length when the status is OK.
pub const OK_HEADER: usize = 9;

/// Which ranges of which blob a fetcher asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The blob.
    pub hash: Hash,
    /// The chunks wanted (not empty, at most [`MAX_BOUNDARIES`] boundaries).
    pub ranges: ChunkRanges,
}

impl Request {
    /// The request's bytes; fails if the ranges break a bound.
    pub fn encode(&self) -> Result<Vec<u8>, WireError> {
        let b = self.ranges.boundaries();
        if b.is_empty() {
            return Err(WireError::Empty);
        }
        if b.len() > MAX_BOUNDARIES {
            return Err(WireError::TooManyRanges(b.len()));
        }
        let mut out = Vec::with_capacity(2 + 32 + b.len() * 8);
        out.push(VERSION);
        out.extend_from_slice(&self.hash.0);
        // Bounded by MAX_BOUNDARIES above.
        out.push(b.len() as u8);
        for x in b {
            out.extend_from_slice(&x.0.to_le_bytes());
        }
        Ok(out)
    }

    /// Parses a request; every bound is checked.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let (&version, rest) = bytes.split_first().ok_or(WireError::Truncated("request"))?;
        if version != VERSION {
            return Err(WireError::Unknown {
                what: "request version",
                value: version,
            });
        }
        let (hash, rest) = rest
            .split_first_chunk::<32>()
            .ok_or(WireError::Truncated("request hash"))?;
        let (&n, rest) = rest.split_first().ok_or(WireError::Truncated("request"))?;
        let n = usize::from(n);
        if n == 0 {
            return Err(WireError::Empty);
        }
        if n > MAX_BOUNDARIES {
            return Err(WireError::TooManyRanges(n));
        }
        if rest.len() < n * 8 {
            return Err(WireError::Truncated("request ranges"));
        }
        let mut boundaries = Vec::with_capacity(n);
        for i in 0..n {
            let mut x = [0u8; 8];
            x.copy_from_slice(&rest[i * 8..i * 8 + 8]);
            boundaries.push(ChunkNum(u64::from_le_bytes(x)));
        }
        let ranges = ranges_from_boundaries(&boundaries)?;
        Ok(Request {
            hash: Hash(*hash),
            ranges,
        })
    }
}

/// Builds ranges from strictly increasing boundaries.
pub fn ranges_from_boundaries(b: &[ChunkNum]) -> Result<ChunkRanges, WireError> {
    if b.windows(2).any(|w| w[0] >= w[1]) {
        return Err(WireError::Unsorted);
    }
    let mut ranges = ChunkRanges::empty();
    for pair in b.chunks(2) {
        match pair {
            [start, end] => ranges |= ChunkRanges::from(*start..*end),
            [start] => ranges |= ChunkRanges::from(*start..),
            _ => {}
        }
    }
    Ok(ranges)
}

/// The response header for a blob of `size` bytes.
pub fn ok_header(size: u64) -> [u8; OK_HEADER] {
    let mut h = [0u8; OK_HEADER];
    h[0] = STATUS_OK;
    h[1..].copy_from_slice(&size.to_le_bytes());
    h
}

/// What a response header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseHead {
    /// The blob's size; the encoding follows.
    Ok(u64),
    /// The provider does not hold the blob.
    NotFound,
}

/// Reads a response header from `r`.
pub fn read_head(r: &mut impl std::io::Read) -> Result<ResponseHead, crate::error::FetchError> {
    use crate::error::FetchError;
    let mut status = [0u8; 1];
    read_exact(r, &mut status, "response status")?;
    match status[0] {
        STATUS_OK => {
            let mut size = [0u8; 8];
            read_exact(r, &mut size, "response size")?;
            Ok(ResponseHead::Ok(u64::from_le_bytes(size)))
        }
        STATUS_NOT_FOUND => Ok(ResponseHead::NotFound),
        value => Err(FetchError::Wire(WireError::Unknown {
            what: "response status",
            value,
        })),
    }
}

fn read_exact(
    r: &mut impl std::io::Read,
    buf: &mut [u8],
    what: &'static str,
) -> Result<(), crate::error::FetchError> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            crate::error::FetchError::Wire(WireError::Truncated(what))
        } else {
            crate::error::FetchError::Read(e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(b: &[u64]) -> Request {
        let b: Vec<ChunkNum> = b.iter().map(|&x| ChunkNum(x)).collect();
        Request {
            hash: Hash::of(b"h"),
            ranges: ranges_from_boundaries(&b).expect("sorted"),
        }
    }

    #[test]
    fn round_trip() {
        for b in [&[0u64][..], &[0, 16], &[3, 5, 100], &[16, 32, 64, 80]] {
            let r = req(b);
            let bytes = r.encode().expect("within bounds");
            assert!(bytes.len() <= MAX_REQUEST);
            assert_eq!(Request::decode(&bytes), Ok(r));
        }
    }

    #[test]
    fn bounds_and_garbage_are_refused() {
        let good = req(&[0, 16]).encode().expect("ok");
        for cut in 0..good.len() {
            assert!(Request::decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut v = good.clone();
        v[0] = 9;
        assert!(matches!(
            Request::decode(&v),
            Err(WireError::Unknown { .. })
        ));
        // unsorted boundaries
        let mut v = good.clone();
        v[34 + 8..34 + 16].copy_from_slice(&0u64.to_le_bytes());
        assert_eq!(Request::decode(&v), Err(WireError::Unsorted));
        // too many
        let mut v = good[..33].to_vec();
        v.push(65);
        v.extend((0..65u64).flat_map(|i| i.to_le_bytes()));
        assert_eq!(Request::decode(&v), Err(WireError::TooManyRanges(65)));
        // empty
        let mut v = good[..33].to_vec();
        v.push(0);
        assert_eq!(Request::decode(&v), Err(WireError::Empty));
        let many: Vec<u64> = (0..66).collect();
        assert_eq!(req(&many).encode(), Err(WireError::TooManyRanges(66)));
    }

    #[test]
    fn head() {
        let h = ok_header(12345);
        assert_eq!(read_head(&mut &h[..]).ok(), Some(ResponseHead::Ok(12345)));
        assert_eq!(
            read_head(&mut &[STATUS_NOT_FOUND][..]).ok(),
            Some(ResponseHead::NotFound)
        );
        assert!(read_head(&mut &h[..5]).is_err());
        assert!(read_head(&mut &[7u8][..]).is_err());
    }
}
