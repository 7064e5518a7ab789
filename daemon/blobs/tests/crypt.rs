//! Private files: what the store holds is ciphertext only, and any change to it, a cut, an
//! extension or a wrong key is refused on export without leaving a plaintext file behind.

mod common;

use std::fs;

use chat_blobs::crypt::{self, FileKey, HEADER, SEGMENT, TAG};
use chat_blobs::{CryptError, StoreError};
use common::{MIB, data, fetch_once, open};

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn private_file_round_trip_through_two_stores_holds_only_ciphertext() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let (mut sender, mut receiver) = (open(a.path()), open(b.path()));
    for len in [
        0usize,
        1,
        SEGMENT - 1,
        SEGMENT,
        SEGMENT + 1,
        (MIB + 7) as usize,
    ] {
        let plain = data(len, 40 + len as u64);
        let (info, key) = sender.import_encrypted(&plain[..]).expect("import");
        assert_eq!(info.size, crypt::ciphertext_len(len as u64));
        let stored = sender.read_to_vec(&info.hash).expect("read");
        assert_eq!(
            chat_blobs::Hash::of(&stored),
            info.hash,
            "named by the ciphertext"
        );
        if len >= 64 {
            assert!(
                !contains(&stored, &plain[len / 2..len / 2 + 32]),
                "no plaintext stored"
            );
        }
        // The receiver fetches the ciphertext like any blob, then decrypts with the key it
        // got in the end-to-end encrypted message.
        let missing = receiver.begin_fetch(&info.hash, info.size).expect("begin");
        if !missing.is_empty() {
            fetch_once(&mut receiver, &mut sender, &info.hash, &missing).expect("fetch");
        }
        let out = b.path().join(format!("plain-{len}"));
        assert_eq!(
            receiver
                .export_decrypted(&info.hash, &key, &out)
                .expect("decrypt"),
            len as u64
        );
        assert_eq!(fs::read(&out).expect("read"), plain);
    }
    // Encrypting the same file twice gives different blobs (fresh key and nonce).
    let plain = data(1000, 1);
    let (x, _) = sender.import_encrypted(&plain[..]).expect("x");
    let (y, _) = sender.import_encrypted(&plain[..]).expect("y");
    assert_ne!(x.hash, y.hash);
}

#[test]
fn tampering_truncation_extension_and_wrong_key_are_refused() {
    let key = FileKey::generate().expect("key");
    let plain = data(3 * SEGMENT + 100, 9);
    let mut ct = Vec::new();
    crypt::encrypt(&key, &plain[..], &mut ct, u64::MAX).expect("encrypt");
    let full = SEGMENT + TAG;

    let refused = |bytes: &[u8], key: &FileKey| {
        let mut out = Vec::new();
        crypt::decrypt(key, bytes, &mut out)
    };
    // Every single-byte change: header, each segment, each tag.
    for pos in [
        0,
        4,
        HEADER,
        HEADER + 10,
        HEADER + full - 1,
        HEADER + full + 5,
        ct.len() - 1,
    ] {
        let mut bad = ct.clone();
        bad[pos] ^= 1;
        let err = refused(&bad, &key).expect_err("tampered");
        assert!(
            matches!(err, CryptError::Tampered { .. } | CryptError::BadHeader),
            "pos {pos}: {err}"
        );
    }
    // Cut anywhere, including exactly at segment boundaries (where a cut would otherwise
    // look like a shorter file).
    for cut in [
        0,
        HEADER - 1,
        HEADER,
        HEADER + full,
        HEADER + 2 * full,
        HEADER + 3 * full,
        ct.len() - 1,
    ] {
        let err = refused(&ct[..cut], &key).expect_err("truncated");
        assert!(
            matches!(err, CryptError::Tampered { .. } | CryptError::BadHeader),
            "cut {cut}: {err}"
        );
    }
    // Extended, or two segments swapped.
    let mut longer = ct.clone();
    longer.extend_from_slice(&[0u8; 17]);
    assert!(refused(&longer, &key).is_err());
    let mut swapped = ct.clone();
    let (s0, s1) = (HEADER..HEADER + full, HEADER + full..HEADER + 2 * full);
    let first = ct[s0.clone()].to_vec();
    swapped[s0].copy_from_slice(&ct[s1.clone()]);
    swapped[s1].copy_from_slice(&first);
    assert!(matches!(
        refused(&swapped, &key),
        Err(CryptError::Tampered { segment: 0 })
    ));
    // The wrong key.
    let other = FileKey::generate().expect("key");
    assert!(matches!(
        refused(&ct, &other),
        Err(CryptError::Tampered { segment: 0 })
    ));
    // And untouched it decrypts.
    let mut out = Vec::new();
    crypt::decrypt(&key, &ct[..], &mut out).expect("decrypt");
    assert_eq!(out, plain);
}

#[test]
fn a_damaged_private_blob_leaves_no_plaintext_file() {
    let a = tempfile::tempdir().expect("tempdir");
    let mut store = open(a.path());
    let plain = data(5 * SEGMENT, 2);
    let (info, key) = store.import_encrypted(&plain[..]).expect("import");
    // Damage the last segment on disk: the first four would decrypt fine.
    let path = a.path().join("blobs/complete").join(info.hash.to_hex());
    let mut ct = fs::read(&path).expect("read");
    let last = ct.len() - 3;
    ct[last] ^= 1;
    fs::write(&path, &ct).expect("write");
    let out = a.path().join("report.pdf");
    let err = store
        .export_decrypted(&info.hash, &key, &out)
        .expect_err("tampered");
    assert!(
        matches!(err, StoreError::Crypt(CryptError::Tampered { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("damaged"), "{err}");
    assert!(!out.exists());
    let leftovers: Vec<_> = fs::read_dir(a.path())
        .expect("dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .filter(|n| n != "blobs")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // A wrong key is refused the same way.
    let mut store = open(a.path());
    let (info, _) = store.import_encrypted(&plain[..]).expect("import");
    let err = store
        .export_decrypted(&info.hash, &FileKey::generate().expect("key"), &out)
        .expect_err("wrong key");
    assert!(matches!(
        err,
        StoreError::Crypt(CryptError::Tampered { segment: 0 })
    ));
    assert!(!out.exists());
}

#[test]
fn the_limit_counts_the_ciphertext() {
    let a = tempfile::tempdir().expect("tempdir");
    let max = 10 * SEGMENT as u64;
    let mut store = chat_blobs::BlobStore::open(
        a.path(),
        chat_blobs::StoreConfig {
            max_file_bytes: max,
            quota_bytes: 1 << 30,
        },
    )
    .expect("open");
    assert!(matches!(
        store.import_encrypted(&data(max as usize, 1)[..]),
        Err(StoreError::TooLarge { .. })
    ));
    let (info, _) = store
        .import_encrypted(&data(max as usize - 1000, 1)[..])
        .expect("fits");
    assert!(info.size <= max);
    assert_eq!(
        fs::read_dir(a.path().join("blobs/tmp"))
            .expect("tmp")
            .count(),
        0
    );
}
