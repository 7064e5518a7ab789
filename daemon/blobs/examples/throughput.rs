//! Throughput of the blob store in one process (`docs/performance.md`, "Files"): import of a
//! file, a verified fetch (the provider's validated encoding and the fetcher's decoding,
//! checking and writing, plus its final whole-file check), and a private file's encryption
//! on import and decryption on export.
//!
//! `cargo run --release -p chat-blobs --example throughput [MiB] [rounds]` (default 50, 3);
//! the store lives in a temporary directory (`TMPDIR`), fsyncs included.

use std::time::Instant;

use chat_blobs::{BlobStore, ChunkRanges, StoreConfig, wire::Request};
use rand::{Rng, SeedableRng, rngs::StdRng};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50);
    let rounds: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3);
    let len = mib << 20;
    let cfg = StoreConfig {
        max_file_bytes: 1 << 32,
        quota_bytes: 1 << 34,
    };
    let mut bytes = vec![0u8; len];
    StdRng::seed_from_u64(1).fill(&mut bytes[..]);
    let mb = len as f64 / 1e6;
    let mut results: Vec<[f64; 6]> = Vec::new();
    for round in 0..rounds {
        let dir = tempfile::tempdir()?;
        let src = dir.path().join("source");
        std::fs::write(&src, &bytes)?;
        let mut provider = BlobStore::open(&dir.path().join("provider"), cfg)?;
        let mut fetcher = BlobStore::open(&dir.path().join("fetcher"), cfg)?;

        let t = Instant::now();
        let info = provider.import_file(&src)?;
        let import = t.elapsed().as_secs_f64();

        let t = Instant::now();
        let mut response = Vec::with_capacity(len + len / 200);
        provider.serve(
            &Request {
                hash: info.hash,
                ranges: ChunkRanges::all(),
            },
            &mut response,
        )?;
        let serve = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let missing = fetcher.begin_fetch(&info.hash, info.size)?;
        let got = fetcher.receive(&info.hash, &missing, &response[..])?;
        let receive = t.elapsed().as_secs_f64();
        assert!(got.complete, "fetch incomplete");

        let t = Instant::now();
        let (enc, key) = provider.import_encrypted(std::fs::File::open(&src)?)?;
        let encrypt = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let out = dir.path().join("decrypted");
        provider.export_decrypted(&enc.hash, &key, &out)?;
        let decrypt = t.elapsed().as_secs_f64();
        assert_eq!(std::fs::metadata(&out)?.len(), len as u64);

        let r = [
            mb / import,
            mb / serve,
            mb / receive,
            mb / (serve + receive),
            mb / encrypt,
            mb / decrypt,
        ];
        println!(
            "round {round}: import {:.0} MB/s, serve {:.0} MB/s, receive {:.0} MB/s, \
             verified fetch {:.0} MB/s, encrypted import {:.0} MB/s, decrypted export {:.0} MB/s",
            r[0], r[1], r[2], r[3], r[4], r[5]
        );
        results.push(r);
    }
    let median = |i: usize| {
        let mut v: Vec<f64> = results.iter().map(|r| r[i]).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median of {rounds} ({mib} MiB): import {:.0} MB/s, verified fetch {:.0} MB/s \
         (serve {:.0}, receive {:.0}), encrypted import {:.0} MB/s, decrypted export {:.0} MB/s",
        median(0),
        median(3),
        median(1),
        median(2),
        median(4),
        median(5)
    );
    Ok(())
}
