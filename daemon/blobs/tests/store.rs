//! The blob store on disk: imports of every awkward size, the hash it gives, the quota's
//! least-recently-used eviction that never takes a pinned blob, and what a restart finds.

mod common;

use std::fs;

use chat_blobs::{BlobStore, Hash, StoreConfig, StoreError};
use common::{MIB, data, open};

#[test]
fn import_and_read_back_every_size() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(dir.path());
    let sizes = [
        0usize,
        1,
        1024,
        16 * 1024 - 1,
        16 * 1024,
        16 * 1024 + 1,
        (MIB + 7) as usize,
        (10 * MIB) as usize,
    ];
    for (i, &len) in sizes.iter().enumerate() {
        let bytes = data(len, i as u64);
        let info = store.import_bytes(&bytes).expect("import");
        // bao-tree's root at 16 KiB chunk groups is plain BLAKE3.
        assert_eq!(info.hash, Hash::from(blake3::hash(&bytes)), "size {len}");
        assert_eq!(info.size, len as u64);
        assert_eq!(store.read_to_vec(&info.hash).expect("read"), bytes);
        let out = dir.path().join(format!("out-{len}"));
        assert_eq!(store.export(&info.hash, &out).expect("export"), len as u64);
        assert_eq!(fs::read(&out).expect("exported"), bytes);
        // Importing the same bytes again is the same blob, stored once.
        let used = store.used_bytes();
        assert_eq!(store.import_bytes(&bytes).expect("again").hash, info.hash);
        assert_eq!(store.used_bytes(), used);
    }
    // Files are found again after a restart.
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.list().len(), sizes.len());
    // Nothing is left in tmp/.
    assert_eq!(
        fs::read_dir(dir.path().join("blobs/tmp"))
            .expect("tmp")
            .count(),
        0
    );
}

#[test]
fn import_file_and_its_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = BlobStore::open(
        dir.path(),
        StoreConfig {
            max_file_bytes: 100_000,
            quota_bytes: 1 << 30,
        },
    )
    .expect("open");
    let src = dir.path().join("photo.jpg");
    fs::write(&src, data(100_000, 1)).expect("write");
    let info = store.import_file(&src).expect("import");
    assert_eq!(info.hash, Hash::from(blake3::hash(&data(100_000, 1))));

    fs::write(&src, data(100_001, 1)).expect("write");
    assert!(matches!(
        store.import_file(&src),
        Err(StoreError::TooLarge { limit: 100_000 })
    ));
    // A stream that turns out too long is refused as well, and leaves nothing behind.
    assert!(matches!(
        store.import_reader(&data(200_000, 2)[..]),
        Err(StoreError::TooLarge { .. })
    ));
    let missing = dir.path().join("no such file");
    let err = store.import_file(&missing).expect_err("unreadable");
    assert!(matches!(err, StoreError::Io { .. }));
    assert!(err.to_string().contains("no such file"), "{err}");
    assert_eq!(
        fs::read_dir(dir.path().join("blobs/tmp"))
            .expect("tmp")
            .count(),
        0
    );
    assert_eq!(store.list().len(), 1);
    assert!(matches!(
        store.export(&Hash::of(b"nothing"), &dir.path().join("x")),
        Err(StoreError::NotFound(_))
    ));
    assert!(!dir.path().join("x").exists());
}

/// Footprint of a 100 KiB blob: data and 6 hash pairs.
const BLOB: usize = 100 * 1024;
const FOOTPRINT: u64 = BLOB as u64 + 6 * 64;

#[test]
fn quota_evicts_least_recently_used_never_pinned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = StoreConfig {
        max_file_bytes: MIB,
        quota_bytes: 3 * FOOTPRINT,
    };
    let mut store = BlobStore::open(dir.path(), cfg).expect("open");
    let a = store.import_bytes(&data(BLOB, 1)).expect("a").hash;
    let b = store.import_bytes(&data(BLOB, 2)).expect("b").hash;
    let c = store.import_bytes(&data(BLOB, 3)).expect("c").hash;
    assert_eq!(
        store.used_bytes(),
        3 * FOOTPRINT,
        "outboard size as computed"
    );
    store.pin(&b).expect("pin");
    // a is used again: c is now the least recently used unpinned blob (b is older, pinned).
    store.read_to_vec(&a).expect("read a");
    let d = store.import_bytes(&data(BLOB, 4)).expect("d").hash;
    assert!(store.has(&a) && store.has(&b) && !store.has(&c) && store.has(&d));
    assert!(!dir.path().join("blobs/complete").join(c.to_hex()).exists());
    assert_eq!(store.used_bytes(), 3 * FOOTPRINT);

    // The order survives a restart, and so does the pin.
    drop(store);
    let mut store = BlobStore::open(dir.path(), cfg).expect("reopen");
    assert!(store.is_pinned(&b));
    let e = store.import_bytes(&data(BLOB, 5)).expect("e").hash;
    assert!(!store.has(&a), "a was used before d");
    assert!(store.has(&b) && store.has(&d) && store.has(&e));

    // Everything pinned: a new blob does not fit, and nothing is evicted for it.
    store.pin(&d).expect("pin");
    store.pin(&e).expect("pin");
    let err = store.import_bytes(&data(BLOB, 6)).expect_err("full");
    assert!(matches!(err, StoreError::QuotaFull { .. }), "{err}");
    assert!(store.has(&b) && store.has(&d) && store.has(&e));
    // A fetch cannot reserve room either.
    let big = Hash::of(&data(BLOB, 7));
    assert!(store.begin_fetch(&big, BLOB as u64).is_err());
    // Unpinned, the oldest goes.
    store.unpin(&b).expect("unpin");
    store.import_bytes(&data(BLOB, 6)).expect("fits now");
    assert!(!store.has(&b));
    assert_eq!(
        fs::read_dir(dir.path().join("blobs/tmp"))
            .expect("tmp")
            .count(),
        0
    );
}

#[test]
fn a_blob_larger_than_the_quota_evicts_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = StoreConfig {
        max_file_bytes: MIB,
        quota_bytes: 2 * FOOTPRINT,
    };
    let mut store = BlobStore::open(dir.path(), cfg).expect("open");
    let a = store.import_bytes(&data(BLOB, 1)).expect("a").hash;
    let err = store
        .import_bytes(&data(3 * BLOB, 2))
        .expect_err("too big for the quota");
    assert!(matches!(err, StoreError::QuotaFull { .. }));
    assert!(store.has(&a));
}

#[test]
fn open_cleans_what_a_crash_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(dir.path());
    let a = store.import_bytes(&data(50_000, 1)).expect("a").hash;
    drop(store);
    let blobs = dir.path().join("blobs");
    // An import cut short, an outboard whose data never arrived, a data file whose outboard
    // is missing, junk in partial/, a stray name.
    fs::write(blobs.join("tmp/import-1-abc"), b"half").expect("write");
    let orphan = Hash::of(b"orphan");
    fs::write(
        blobs.join(format!("complete/{}.obao", orphan.to_hex())),
        b"",
    )
    .expect("write");
    let lonely = Hash::of(&data(50_000, 2));
    fs::write(
        blobs.join(format!("complete/{}", lonely.to_hex())),
        data(50_000, 2),
    )
    .expect("write");
    fs::write(blobs.join("partial/garbage"), b"x").expect("write");
    fs::write(
        blobs.join(format!("partial/{}.ranges", orphan.to_hex())),
        b"CHBPjunk",
    )
    .expect("write");
    let store = open(dir.path());
    assert!(store.has(&a));
    assert!(!store.has(&lonely));
    assert_eq!(store.list().len(), 1);
    assert_eq!(fs::read_dir(blobs.join("tmp")).expect("tmp").count(), 0);
    assert_eq!(
        fs::read_dir(blobs.join("partial"))
            .expect("partial")
            .count(),
        0
    );
    assert_eq!(
        fs::read_dir(blobs.join("complete"))
            .expect("complete")
            .count(),
        2
    );
}

#[test]
fn a_corrupted_stored_blob_is_caught_on_export_and_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(dir.path());
    let bytes = data(300_000, 9);
    let h = store.import_bytes(&bytes).expect("import").hash;
    let path = dir.path().join("blobs/complete").join(h.to_hex());
    let mut damaged = bytes.clone();
    damaged[200_000] ^= 1;
    fs::write(&path, &damaged).expect("damage");
    let out = dir.path().join("out");
    assert!(matches!(
        store.export(&h, &out),
        Err(StoreError::Corrupt(_))
    ));
    assert!(!out.exists());
    assert!(!store.has(&h), "removed");

    // Serving checks too: a provider never sends what its outboard does not vouch for.
    let h = store.import_bytes(&bytes).expect("again").hash;
    fs::write(&path, &damaged).expect("damage");
    let mut sink = Vec::new();
    let req = chat_blobs::wire::Request {
        hash: h,
        ranges: chat_blobs::ChunkRanges::all(),
    };
    assert!(matches!(
        store.serve(&req, &mut sink),
        Err(StoreError::Corrupt(_))
    ));
    assert!(!store.has(&h));
}
