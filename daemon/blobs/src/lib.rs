//! chatd's files, below the network: a bounded content-addressed blob store and the verified
//! range transfer that fills it (`docs/protocol.md`, "Files"; `docs/architecture.md`).
//!
//! - [`hash`]: a blob's name (its BLAKE3 hash), the chunk group size, and ranges of chunks.
//! - [`store`]: the `blobs/` directory: complete blobs (data + bao outboard), partial blobs
//!   that remember which chunk ranges are verified, pins, a quota with least-recently-used
//!   eviction.
//! - [`wire`]: the range request and the response header, with their bounds.
//! - [`transfer`]: the provider side (bao-tree's validated encoding of the requested ranges)
//!   and the fetcher side (bao-tree's decoder: every chunk group is checked against the hash
//!   before a byte of it is written).
//! - [`plan`]: which provider is asked for which ranges; re-planned when one fails or lies.
//! - [`crypt`]: private files, encrypted before import with a fresh key (STREAM over
//!   XChaCha20-Poly1305) and decrypted on export.
//! - [`media`]: what a blob is from its magic numbers (never the claimed type or name), how a
//!   page serves it (inline only for a raster image that decoded), a safe download name.
//! - [`thumb`]: decoding untrusted images within limits, and the thumbnail a file reference
//!   carries (a JPEG within a byte budget).
//! - [`writeback`]: starting the disk writes of a fetch's bytes early, so the one sync at
//!   its end waits for the tail only.
//!
//! No network and no async runtime here: the daemon carries requests and responses over its
//! QUIC connections and runs this crate's blocking file work off its event loop.

pub mod crypt;
pub mod error;
pub mod hash;
pub mod media;
mod partial;
pub mod plan;
pub mod store;
pub mod thumb;
pub mod transfer;
pub mod wire;
pub mod writeback;

pub use bao_tree::{ChunkNum, ChunkRanges};
pub use crypt::FileKey;
pub use error::{CryptError, DecodeError, FetchError, NoThumbnail, StoreError, WireError};
pub use hash::{BLOCK_SIZE, Hash};
pub use media::{Disposition, MediaType, Serving};
pub use plan::FetchPlan;
pub use store::{BlobInfo, BlobStore, StoreConfig};
pub use thumb::{DecodeLimits, DecodedImage, Thumbnail};
