//! Private files between in-process nodes: the reference's format, decryption with the right
//! and a wrong key, a lying provider of ciphertext, holding for an offline recipient.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::super::tests::{Spoil, data, fake, node};
use super::*;

/// Imports `bytes` as an encrypted upload of `n`'s; its reference.
async fn upload(n: &super::super::tests::Node, bytes: &[u8], name: &str) -> PrivateFile {
    let path = n.files.upload_path();
    std::fs::write(&path, bytes).expect("writes the upload");
    let info = n.files.import_private(path.clone()).await.expect("imports");
    assert!(!path.exists(), "the upload file is gone");
    let pending = n.files.pending(&info.hash).expect("the key waits");
    pending.reference(info.hash, name.to_owned())
}

/// The plaintext `n` decrypts for `file`, or its error.
async fn open(n: &super::super::tests::Node, file: &PrivateFile) -> Result<Vec<u8>, FilesError> {
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
    let collect = async {
        let mut out = Vec::new();
        while let Some(c) = rx.recv().await {
            out.extend_from_slice(&c);
        }
        out
    };
    let (res, out) = tokio::join!(n.files.decrypt_to(file, tx, 64 * 1024), collect);
    res.map(|_| out)
}

#[test]
fn a_reference_reads_back_and_a_bad_one_is_no_file() {
    let f = PrivateFile {
        cipher_hash: Hash([1; 32]),
        cipher_size: chat_blobs::crypt::ciphertext_len(1000),
        key: FileKey([2; 32]),
        plain_hash: [3; 32],
        name: "report.pdf".into(),
        size: 1000,
        media: MediaType::Pdf,
        voice: None,
    };
    let bytes = f.encode();
    assert!(bytes.len() <= chat_dm::payload::MAX_FILE_REF);
    let back = PrivateFile::decode(&bytes).expect("decodes");
    assert_eq!(
        (
            back.cipher_hash,
            back.key.0,
            back.plain_hash,
            back.name.as_str()
        ),
        (f.cipher_hash, f.key.0, f.plain_hash, "report.pdf")
    );
    assert_eq!((back.size, back.media), (1000, MediaType::Pdf));
    // A ciphertext size that does not fit the plaintext's, another version, junk.
    let mut wrong = f.clone();
    wrong.cipher_size += 1;
    assert!(PrivateFile::decode(&wrong.encode()).is_none());
    let mut other = bytes.clone();
    other[1] = 2;
    assert!(PrivateFile::decode(&other).is_none(), "another version");
    assert!(PrivateFile::decode(b"not cbor").is_none());
    assert!(PrivateFile::decode(&[]).is_none());
    let mut bad_name = f.clone();
    bad_name.name = "a\u{1b}b".into();
    assert!(PrivateFile::decode(&bad_name.encode()).is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_holds_ciphertext_and_only_the_right_key_opens_it() {
    let a = node(41);
    let bytes = data(300_000);
    let file = upload(&a, &bytes, "x.bin").await;
    assert_eq!(file.size, bytes.len() as u64);
    assert_eq!(file.plain_hash, *blake3::hash(&bytes).as_bytes());
    let stored = a.files.read_to_vec(file.cipher_hash).await.expect("held");
    assert!(
        !stored.windows(64).any(|w| w == &bytes[1000..1064]),
        "the store holds no plaintext"
    );
    assert_eq!(open(&a, &file).await.expect("opens"), bytes);
    // A wrong key: a clean error, not a byte of output.
    let mut wrong = file.clone();
    wrong.key.0[0] ^= 1;
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(4);
    let res = a.files.decrypt_to(&wrong, tx, 64 * 1024).await;
    assert!(matches!(res, Err(FilesError::Decrypt(_))), "{res:?}");
    assert!(
        rx.recv().await.is_none(),
        "nothing decrypted with a wrong key"
    );
    // The right key but another plaintext hash: refused at the end.
    let mut lied = file.clone();
    lied.plain_hash = [0; 32];
    assert!(matches!(open(&a, &lied).await, Err(FilesError::Decrypt(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_ciphertext_from_a_holder_is_refused_and_another_used() {
    let (a, b) = (node(42), node(43));
    let bytes = data(1 << 20);
    let file = upload(&a, &bytes, "x.pdf").await;
    let cipher = a.files.read_to_vec(file.cipher_hash).await.expect("held");
    let (liar, _dir) = fake(44, &cipher, Spoil::Flip(0.5));
    // Only the liar: refused, nothing complete kept.
    let res = b
        .files
        .fetch(file.cipher_hash, file.cipher_size, vec![liar])
        .await;
    assert!(
        matches!(res, Err(FilesError::NoProvider { bad: 1, .. })),
        "{res:?}"
    );
    assert!(!holds(&b.files, &file.cipher_hash));
    // The liar and an honest holder: the honest one's bytes, verified, open.
    b.files
        .fetch(file.cipher_hash, file.cipher_size, vec![liar, a.peer])
        .await
        .expect("fetched from the honest holder");
    assert!(b.files.stats().bad_providers.load(Ordering::Relaxed) >= 1);
    assert_eq!(open(&b, &file).await.expect("opens"), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_keeps_ciphertext_within_its_bounds_until_it_expires() {
    let (a, h) = (node(45), node(46));
    let offline = super::super::hold::Offline {
        max_bytes: 1 << 20,
        replicas: 3,
        ttl: Duration::from_secs(3600),
        total_bytes: 64 << 20,
    };
    h.files.configure_offline(offline);
    let streams = h.files.listen_holds();
    tokio::spawn(h.files.clone().run_holds(streams));
    let small = upload(&a, &data(200_000), "s.bin").await;
    let ttl = Duration::from_secs(60);
    let n = a
        .files
        .place_with(small.cipher_hash, small.cipher_size, ttl, vec![h.peer], 3)
        .await
        .expect("held");
    assert_eq!(n.len(), 1, "fewer holders than wanted is still a success");
    assert!(holds(&h.files, &small.cipher_hash) && h.files.is_holding(&small.cipher_hash));
    // Over the holder's limit: refused with its reason, before anything is sent.
    let big = upload(&a, &data(1_100_000), "b.bin").await;
    let res = a
        .files
        .place_with(big.cipher_hash, big.cipher_size, ttl, vec![h.peer], 3)
        .await;
    match res {
        Err(FilesError::Hold(m)) => assert!(m.contains("offline_max_mb"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!holds(&h.files, &big.cipher_hash));
    // The holds survive a restart's reading and expire.
    let text = std::fs::read_to_string(h.files.holds_path()).expect("holds written");
    assert!(text.contains(&small.cipher_hash.to_hex()));
    h.files.expire_holds(u64::MAX).await;
    assert!(!h.files.is_holding(&small.cipher_hash));
    assert!(
        !holds(&h.files, &small.cipher_hash),
        "an expired hold's blob is removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_holder_is_replaced_by_the_next_candidate() {
    let (a, small, big) = (node(47), node(48), node(49));
    let cfg = |max_bytes| super::super::hold::Offline {
        max_bytes,
        replicas: 1,
        ttl: Duration::from_secs(3600),
        total_bytes: 64 << 20,
    };
    // `small` keeps nothing over 1000 bytes: it refuses; `big` is asked next and holds it.
    small.files.configure_offline(cfg(1000));
    big.files.configure_offline(cfg(1 << 20));
    for n in [&small, &big] {
        let streams = n.files.listen_holds();
        tokio::spawn(n.files.clone().run_holds(streams));
    }
    let file = upload(&a, &data(100_000), "f.bin").await;
    let ttl = Duration::from_secs(60);
    let held = a
        .files
        .place_with(
            file.cipher_hash,
            file.cipher_size,
            ttl,
            vec![small.peer, big.peer],
            1,
        )
        .await
        .expect("held by the next candidate");
    assert_eq!(
        held.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![big.peer.id]
    );
    assert!(big.files.is_holding(&file.cipher_hash));
    assert!(!small.files.is_holding(&file.cipher_hash));
    // Only refusals, no candidate left: the clear error, naming the refusal.
    let other = upload(&a, &data(50_000), "g.bin").await;
    match a
        .files
        .place_with(
            other.cipher_hash,
            other.cipher_size,
            ttl,
            vec![small.peer],
            1,
        )
        .await
    {
        Err(FilesError::Hold(m)) => assert!(m.contains("offline_max_mb"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}
