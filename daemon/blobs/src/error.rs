//! The crate's typed errors, one per layer: the store, the wire, a fetch, encryption, images.

use std::io;

use crate::hash::Hash;

/// What the blob store could not do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file is larger than `max_file_bytes`.
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit (`max_file_bytes`).
        limit: u64,
    },
    /// The quota cannot make room: everything else is pinned or in progress.
    #[error(
        "the blob store is full: {needed} bytes needed, {available} free or taken by evictable files; the rest of its quota of {quota} bytes (files.store_mb) is pinned files, never evicted, and fetches in progress"
    )]
    QuotaFull {
        /// Bytes the blob needs (data and outboard).
        needed: u64,
        /// Bytes free plus what evicting every unpinned blob would free.
        available: u64,
        /// The quota (`quota_bytes`).
        quota: u64,
    },
    /// No complete blob with this hash.
    #[error("no blob {0}")]
    NotFound(Hash),
    /// A stored blob no longer matches its hash (disk corruption); it was removed.
    #[error("stored blob {0} is corrupt and was removed")]
    Corrupt(Hash),
    /// A file of the store could not be read or written.
    #[error("blob store i/o at {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// Writing a response to the requester failed (it went away).
    #[error("writing the response: {0}")]
    Response(io::Error),
    /// Encryption or decryption failed.
    #[error(transparent)]
    Crypt(#[from] CryptError),
}

impl StoreError {
    pub(crate) fn io(path: &std::path::Path, source: io::Error) -> Self {
        StoreError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// A request or response header that is not well formed or breaks a bound.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the format needs.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// An unknown version or status byte.
    #[error("unknown {what} {value}")]
    Unknown {
        /// Which byte.
        what: &'static str,
        /// Its value.
        value: u8,
    },
    /// More range boundaries than [`crate::wire::MAX_BOUNDARIES`].
    #[error("{0} range boundaries, at most {max} allowed", max = crate::wire::MAX_BOUNDARIES)]
    TooManyRanges(usize),
    /// Range boundaries not strictly increasing.
    #[error("range boundaries are not strictly increasing")]
    Unsorted,
    /// An empty set of ranges.
    #[error("no ranges requested")]
    Empty,
}

/// Why a response did not fill the requested ranges.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The provider's bytes do not match the hash: a parent or chunk group failed
    /// verification (a lying or broken provider, or a response for another blob). Nothing of
    /// the failing chunk group was written; what verified before it is kept.
    #[error("bad provider: {0}")]
    BadProvider(String),
    /// The response ended before every requested chunk group arrived; what verified is kept.
    #[error("the response ended early at {0}")]
    Truncated(String),
    /// The provider does not hold the blob.
    #[error("the provider does not have {0}")]
    NotFound(Hash),
    /// The response header is malformed.
    #[error("malformed response: {0}")]
    Wire(#[from] WireError),
    /// The stream could not be read.
    #[error("reading the response: {0}")]
    Read(io::Error),
    /// The store failed (full, disk error).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No fetch of this hash is under way (`BlobStore::begin_fetch` first).
    #[error("no fetch of {0} is under way")]
    NotStarted(Hash),
    /// A size the store refuses (over `max_file_bytes`), or a reference whose hash cannot
    /// be right for its size.
    #[error("bad reference: {0}")]
    BadReference(String),
}

impl FetchError {
    /// Whether the provider should be counted as bad (it sent bytes that do not verify).
    pub fn is_bad_provider(&self) -> bool {
        matches!(self, FetchError::BadProvider(_))
    }
}

/// Encryption or decryption of a private file failed.
#[derive(Debug, thiserror::Error)]
pub enum CryptError {
    /// The ciphertext was altered, truncated, extended, or the key is wrong.
    #[error("the encrypted file is damaged, truncated or the key is wrong (segment {segment})")]
    Tampered {
        /// The segment (64 KiB of plaintext) that failed.
        segment: u64,
    },
    /// The ciphertext does not start with the expected header.
    #[error("not an encrypted chatd file")]
    BadHeader,
    /// The plaintext is longer than the limit.
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Reading the input or writing the output failed.
    #[error("i/o during encryption: {0}")]
    Io(#[from] io::Error),
    /// No randomness for the key or nonce.
    #[error("no randomness available: {0}")]
    Random(String),
}

/// Why bytes are not shown as an image: they are not one of the four raster formats, break a
/// decoding limit, or do not decode. Such a blob is served as an attachment.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The checked type is not PNG, JPEG, GIF or WebP.
    #[error("not an image the page shows: {0:?}")]
    NotAnImage(crate::media::MediaType),
    /// The image decoder takes the bytes for another format than their checked type.
    #[error("the bytes do not read as their checked type {0:?}")]
    FormatMismatch(crate::media::MediaType),
    /// The header's dimensions are zero or over the limit; nothing was decoded.
    #[error("an image of {width}×{height} pixels; each side must be 1 to {max_side}")]
    TooLarge {
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
        /// The limit per side.
        max_side: u32,
    },
    /// The decoded pixels would need more memory than allowed; nothing was decoded.
    #[error("decoding needs {needed} bytes, more than the limit of {limit}")]
    TooMuchMemory {
        /// Bytes the decoded image takes.
        needed: u64,
        /// The limit.
        limit: u64,
    },
    /// More bytes than a thumbnail may have.
    #[error("{len} bytes, more than the limit of {limit}")]
    TooManyBytes {
        /// The length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The decoder hit one of its limits while decoding.
    #[error("decoding limit: {0}")]
    Limits(String),
    /// The bytes do not decode (truncated, corrupt, unsupported variant).
    #[error("does not decode: {0}")]
    Decode(String),
}

/// Why an image that decoded has no thumbnail (it is still shown; the reference carries none).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum NoThumbnail {
    /// Even the smallest side at the lowest quality is over the byte budget.
    #[error("the smallest thumbnail is {smallest} bytes, over the budget of {budget}")]
    OverBudget {
        /// The smallest encoding tried, in bytes.
        smallest: usize,
        /// The budget.
        budget: usize,
    },
    /// The JPEG encoder failed.
    #[error("encoding the thumbnail: {0}")]
    Encode(String),
}
