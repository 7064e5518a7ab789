//! Helpers shared by the blob store's integration tests: stores in temporary directories,
//! reproducible data, and a sequential fetch over in-process providers.
#![allow(dead_code)]

use std::path::Path;

use chat_blobs::transfer::Received;
use chat_blobs::wire::Request;
use chat_blobs::{BlobStore, ChunkRanges, FetchError, Hash, StoreConfig};
use rand::{Rng, SeedableRng, rngs::StdRng};

pub const MIB: u64 = 1 << 20;

pub fn config() -> StoreConfig {
    StoreConfig {
        max_file_bytes: 64 * MIB,
        quota_bytes: 1 << 30,
    }
}

pub fn open(dir: &Path) -> BlobStore {
    BlobStore::open(dir, config()).expect("open store")
}

pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill(&mut v[..]);
    v
}

/// The provider's whole response to a request for `ranges` of `hash`.
pub fn respond(provider: &mut BlobStore, hash: &Hash, ranges: &ChunkRanges) -> Vec<u8> {
    let req = Request {
        hash: *hash,
        ranges: ranges.clone(),
    };
    // What a fetcher sends goes through the wire format.
    let req = Request::decode(&req.encode().expect("encode")).expect("decode");
    let mut out = Vec::new();
    provider.serve(&req, &mut out).expect("serve");
    out
}

/// Fetches `ranges` of `hash` from `provider` into `fetcher` in one response.
pub fn fetch_once(
    fetcher: &mut BlobStore,
    provider: &mut BlobStore,
    hash: &Hash,
    ranges: &ChunkRanges,
) -> Result<Received, FetchError> {
    let resp = respond(provider, hash, ranges);
    fetcher.receive(hash, ranges, &resp[..])
}

/// Whether every verified chunk of the partial blob holds the original bytes and every
/// unverified one is still untouched (zeros): nothing unverified was written.
pub fn partial_is_clean(dir: &Path, hash: &Hash, verified: &ChunkRanges, original: &[u8]) -> bool {
    let path = dir
        .join("blobs/partial")
        .join(format!("{}.data", hash.to_hex()));
    let on_disk = std::fs::read(path).expect("partial data file");
    assert_eq!(on_disk.len(), original.len());
    on_disk.chunks(1024).enumerate().all(|(i, chunk)| {
        let orig = &original[i * 1024..i * 1024 + chunk.len()];
        if verified.contains(&chat_blobs::ChunkNum(i as u64)) {
            chunk == orig
        } else {
            chunk.iter().all(|&b| b == 0)
        }
    })
}

/// After a crash: recorded chunks hold the original bytes; the others hold zeros or the
/// original bytes (verified and written, not yet recorded) — never anything else.
pub fn partial_holds_no_foreign_bytes(
    dir: &Path,
    hash: &Hash,
    verified: &ChunkRanges,
    original: &[u8],
) -> bool {
    let path = dir
        .join("blobs/partial")
        .join(format!("{}.data", hash.to_hex()));
    let on_disk = std::fs::read(path).expect("partial data file");
    on_disk.chunks(1024).enumerate().all(|(i, chunk)| {
        let orig = &original[i * 1024..i * 1024 + chunk.len()];
        chunk == orig
            || (!verified.contains(&chat_blobs::ChunkNum(i as u64))
                && chunk.iter().all(|&b| b == 0))
    })
}
