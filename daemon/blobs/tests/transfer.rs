//! Verified range transfer between two stores in one process: whole blobs, resumption after
//! a cut (also across a restart), and providers that lie in every way a response can.

mod common;

use chat_blobs::plan::Failure;
use chat_blobs::transfer::Received;
use chat_blobs::{ChunkNum, ChunkRanges, FetchError, FetchPlan, Hash, StoreError};
use common::{MIB, data, fetch_once, open, partial_is_clean, respond};

fn all() -> ChunkRanges {
    ChunkRanges::all()
}

#[test]
fn whole_blobs_of_every_size_arrive_identical() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let (mut provider, mut fetcher) = (open(a.path()), open(b.path()));
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
        let bytes = data(len, 100 + i as u64);
        let h = provider.import_bytes(&bytes).expect("import").hash;
        let missing = fetcher.begin_fetch(&h, len as u64).expect("begin");
        if len == 0 {
            assert!(missing.is_empty(), "an empty blob needs no transfer");
            assert!(fetcher.has(&h));
            continue;
        }
        let got = fetch_once(&mut fetcher, &mut provider, &h, &missing).expect("fetch");
        assert_eq!(
            got,
            Received {
                bytes: len as u64,
                complete: true
            },
            "size {len}"
        );
        assert_eq!(fetcher.read_to_vec(&h).expect("read"), bytes, "size {len}");
        // The fetched blob is served in turn, with its own outboard.
        let again = respond(&mut fetcher, &h, &all());
        assert_eq!(again, respond(&mut provider, &h, &all()));
    }
}

#[test]
fn a_cut_transfer_resumes_after_a_restart_byte_identical() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let mut provider = open(a.path());
    let bytes = data((3 * MIB + 7) as usize, 7);
    let len = bytes.len() as u64;
    let h = provider.import_bytes(&bytes).expect("import").hash;

    let mut fetcher = open(b.path());
    let missing = fetcher.begin_fetch(&h, len).expect("begin");
    let resp = respond(&mut provider, &h, &missing);
    // The connection drops halfway through the response.
    let cut = &resp[..resp.len() / 2];
    let err = fetcher.receive(&h, &missing, cut).expect_err("cut");
    assert!(matches!(err, FetchError::Truncated(_)), "{err}");
    let verified = fetcher.verified(&h).expect("under way");
    let kept = chat_blobs::hash::count_bytes(&verified, len);
    assert!(kept > len / 3 && kept < len, "kept {kept} of {len}");
    assert!(partial_is_clean(b.path(), &h, &verified, &bytes));

    // The daemon restarts: the partial blob and what verified are found again.
    drop(fetcher);
    let mut fetcher = open(b.path());
    assert_eq!(fetcher.verified(&h), Some(verified.clone()));
    let rest = fetcher.begin_fetch(&h, len).expect("resume");
    assert_eq!(rest, chat_blobs::hash::all_chunks(len) - verified);
    let got = fetch_once(&mut fetcher, &mut provider, &h, &rest).expect("rest");
    assert!(got.complete);
    assert_eq!(got.bytes, len - kept, "only the missing part travelled");
    let out = b.path().join("copy");
    fetcher.export(&h, &out).expect("export");
    assert_eq!(std::fs::read(out).expect("read"), bytes);
    assert!(fetcher.missing(&h).is_none());
    assert_eq!(
        std::fs::read_dir(b.path().join("blobs/partial"))
            .expect("dir")
            .count(),
        0
    );
}

#[test]
fn a_flipped_byte_is_refused_and_nothing_of_its_chunk_group_is_kept() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let mut provider = open(a.path());
    let bytes = data((MIB + 7) as usize, 3);
    let len = bytes.len() as u64;
    let h = provider.import_bytes(&bytes).expect("import").hash;
    let honest = respond(&mut provider, &h, &all());

    // A byte in the middle of the data, one near the start (a hash pair), the last byte.
    for pos in [honest.len() / 2, 9 + 5, honest.len() - 1] {
        let mut fetcher = open(b.path());
        let missing = fetcher.begin_fetch(&h, len).expect("begin");
        let mut lie = honest.clone();
        lie[pos] ^= 0x20;
        let err = fetcher
            .receive(&h, &missing, &lie[..])
            .expect_err("refused");
        assert!(err.is_bad_provider(), "flip at {pos}: {err}");
        let verified = fetcher.verified(&h).expect("under way");
        assert!(!verified.is_superset(&chat_blobs::hash::all_chunks(len)));
        assert!(
            partial_is_clean(b.path(), &h, &verified, &bytes),
            "flip at {pos}"
        );
        assert!(!fetcher.has(&h));
        // The rest comes from an honest provider.
        let rest = fetcher.missing(&h).expect("missing");
        fetch_once(&mut fetcher, &mut provider, &h, &rest).expect("rest");
        assert_eq!(fetcher.read_to_vec(&h).expect("read"), bytes);
        fetcher.remove(&h).expect("remove");
    }
}

#[test]
fn a_response_for_another_blob_is_refused() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let mut provider = open(a.path());
    let mut fetcher = open(b.path());
    for len in [1000usize, 100_000] {
        let wanted = data(len, 1);
        let other = data(len, 2);
        let h_wanted = Hash::of(&wanted);
        let h_other = provider.import_bytes(&other).expect("import").hash;
        let missing = fetcher.begin_fetch(&h_wanted, len as u64).expect("begin");
        let resp = respond(&mut provider, &h_other, &missing);
        let err = fetcher
            .receive(&h_wanted, &missing, &resp[..])
            .expect_err("refused");
        assert!(err.is_bad_provider(), "{err}");
        assert_eq!(fetcher.verified(&h_wanted), Some(ChunkRanges::empty()));
        assert!(partial_is_clean(
            b.path(),
            &h_wanted,
            &ChunkRanges::empty(),
            &wanted
        ));
        // A provider that claims another size is refused before any data.
        let mut resp = respond(&mut provider, &h_other, &missing);
        resp[1] ^= 1;
        assert!(
            fetcher
                .receive(&h_wanted, &missing, &resp[..])
                .expect_err("size")
                .is_bad_provider()
        );
        fetcher.abandon_fetch(&h_wanted);
    }
    // Not found, and a garbage status byte.
    let h = Hash::of(b"nobody has this");
    fetcher.begin_fetch(&h, 5000).expect("begin");
    let resp = respond(&mut provider, &h, &all());
    assert!(matches!(
        fetcher.receive(&h, &all(), &resp[..]),
        Err(FetchError::NotFound(_))
    ));
    assert!(matches!(
        fetcher.receive(&h, &all(), &[9u8][..]),
        Err(FetchError::Wire(_))
    ));
    assert!(matches!(
        fetcher.receive(&h, &all(), &[][..]),
        Err(FetchError::Wire(_))
    ));
}

#[test]
fn truncated_responses_keep_only_whole_verified_groups() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let mut provider = open(a.path());
    let bytes = data(200_000, 5);
    let len = bytes.len() as u64;
    let h = provider.import_bytes(&bytes).expect("import").hash;
    let resp = respond(&mut provider, &h, &all());
    let mut fetcher = open(b.path());
    for cut in [
        0,
        5,
        9,
        9 + 64,
        9 + 64 * 4 + 100,
        resp.len() / 3,
        resp.len() - 1,
    ] {
        let missing = fetcher.begin_fetch(&h, len).expect("begin");
        let err = fetcher
            .receive(&h, &missing, &resp[..cut])
            .expect_err("cut");
        assert!(
            matches!(err, FetchError::Truncated(_) | FetchError::Wire(_)),
            "cut {cut}: {err}"
        );
        let verified = fetcher.verified(&h).expect("under way");
        assert!(
            partial_is_clean(b.path(), &h, &verified, &bytes),
            "cut {cut}"
        );
        fetcher.abandon_fetch(&h);
    }
}

#[test]
fn ranges_from_two_providers_one_lying() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let mut honest = open(a.path());
    let bytes = data((4 * MIB + 3) as usize, 11);
    let len = bytes.len() as u64;
    let h = honest.import_bytes(&bytes).expect("import").hash;
    let mut fetcher = open(b.path());
    fetcher.begin_fetch(&h, len).expect("begin");

    let mut plan = FetchPlan::new(len, ["honest", "liar"]);
    let mut asked_liar = 0;
    let mut served = [0u64; 2];
    for _round in 0..10 {
        let verified = fetcher
            .verified(&h)
            .unwrap_or_else(|| chat_blobs::hash::all_chunks(len));
        let assignments = plan.assign(&verified);
        if assignments.is_empty() {
            break;
        }
        for (who, ranges) in assignments {
            let mut resp = respond(&mut honest, &h, &ranges);
            if who == "liar" {
                asked_liar += 1;
                // Good bytes at first, then one flipped three quarters in.
                let at = resp.len() * 3 / 4;
                resp[at] ^= 0xff;
            }
            match fetcher.receive(&h, &ranges, &resp[..]) {
                Ok(r) => {
                    served[usize::from(who == "liar")] += r.bytes;
                    plan.done(&who);
                }
                Err(e) if e.is_bad_provider() => plan.failed(&who, Failure::Lied),
                Err(e) => panic!("unexpected {e}"),
            }
        }
    }
    assert!(fetcher.has(&h), "complete");
    assert_eq!(fetcher.read_to_vec(&h).expect("read"), bytes);
    assert!(plan.is_bad(&"liar"));
    assert_eq!(asked_liar, 1, "a liar is asked once");
    assert_eq!(served[1], 0, "its response did not finish");
    // What the liar sent before the bad byte verified and was kept, not fetched twice: the
    // honest provider sent less than the whole blob.
    assert!(served[0] < len, "honest sent {} of {len}", served[0]);
}

#[test]
fn fetch_refusals() {
    let b = tempfile::tempdir().expect("tempdir");
    let mut fetcher = open(b.path());
    let h = Hash::of(b"x");
    // Over max_file_bytes.
    assert!(matches!(
        fetcher.begin_fetch(&h, 65 * MIB),
        Err(FetchError::Store(StoreError::TooLarge { .. }))
    ));
    // An empty file whose hash is not the empty hash.
    assert!(matches!(
        fetcher.begin_fetch(&h, 0),
        Err(FetchError::BadReference(_))
    ));
    // A response before any fetch started.
    assert!(matches!(
        fetcher.receive(&h, &all(), &[0u8][..]),
        Err(FetchError::NotStarted(_))
    ));
    // Two references disagreeing on the size of one hash.
    fetcher.begin_fetch(&h, 5000).expect("begin");
    assert!(matches!(
        fetcher.begin_fetch(&h, 6000),
        Err(FetchError::BadReference(_))
    ));
    // Ranges past the end are ignored rather than trusted.
    let missing = fetcher.begin_fetch(&h, 5000).expect("again");
    assert_eq!(missing, ChunkRanges::from(ChunkNum(0)..ChunkNum(5)));
}

#[test]
fn recorded_progress_whose_bytes_were_lost_never_becomes_a_wrong_blob() {
    // A power cut after the ranges file was written but before the data reached the disk
    // (nothing is synced before the blob completes): the store re-verifies what the ranges
    // file names when it opens, and fetches again what does not verify.
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let mut provider = open(a.path());
    let bytes = data(500_000, 21);
    let len = bytes.len() as u64;
    let h = provider.import_bytes(&bytes).expect("import").hash;
    let mut fetcher = open(b.path());
    let missing = fetcher.begin_fetch(&h, len).expect("begin");
    let resp = respond(&mut provider, &h, &missing);
    fetcher
        .receive(&h, &missing, &resp[..resp.len() / 2])
        .expect_err("cut");
    let recorded = fetcher.verified(&h).expect("under way");
    assert!(!recorded.is_empty());
    drop(fetcher);
    let data_file = b
        .path()
        .join("blobs/partial")
        .join(format!("{}.data", h.to_hex()));
    std::fs::write(&data_file, vec![0u8; len as usize]).expect("lose the bytes");
    let mut fetcher = open(b.path());
    assert_eq!(
        fetcher.verified(&h),
        Some(ChunkRanges::empty()),
        "nothing of the lost bytes counts as verified"
    );
    let rest = fetcher.begin_fetch(&h, len).expect("resume");
    assert_eq!(rest, chat_blobs::hash::all_chunks(len));
    let got = fetch_once(&mut fetcher, &mut provider, &h, &rest).expect("fetch");
    assert!(got.complete);
    assert_eq!(fetcher.read_to_vec(&h).expect("read"), bytes);
}

#[test]
fn only_the_damaged_piece_of_recorded_progress_is_fetched_again() {
    // 3 MiB recorded; after a "power cut" one byte of the second MiB and one hash pair of the
    // outboard are wrong on disk: the store keeps the pieces that still verify.
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let mut provider = open(a.path());
    let bytes = data((4 * MIB) as usize, 22);
    let len = bytes.len() as u64;
    let h = provider.import_bytes(&bytes).expect("import").hash;
    let mut fetcher = open(b.path());
    let first = ChunkRanges::from(ChunkNum(0)..ChunkNum(3 * 1024));
    fetcher.begin_fetch(&h, len).expect("begin");
    let resp = respond(&mut provider, &h, &first);
    fetcher.receive(&h, &first, &resp[..]).expect("first 3 MiB");
    assert_eq!(fetcher.verified(&h), Some(first.clone()));
    drop(fetcher);
    let partial = b.path().join("blobs/partial");
    let data_file = partial.join(format!("{}.data", h.to_hex()));
    let mut on_disk = std::fs::read(&data_file).expect("read");
    on_disk[(MIB + 4321) as usize] ^= 1;
    std::fs::write(&data_file, &on_disk).expect("damage");
    let mut fetcher = open(b.path());
    let kept = fetcher.verified(&h).expect("found again");
    let expected = ChunkRanges::from(ChunkNum(0)..ChunkNum(1024))
        | ChunkRanges::from(ChunkNum(2048)..ChunkNum(3 * 1024));
    assert_eq!(
        kept, expected,
        "the damaged MiB is dropped, the others kept"
    );
    let rest = fetcher.begin_fetch(&h, len).expect("resume");
    let got = fetch_once(&mut fetcher, &mut provider, &h, &rest).expect("rest");
    assert!(got.complete);
    assert_eq!(
        got.bytes,
        2 * MIB,
        "only the damaged MiB and the last one travelled"
    );
    assert_eq!(fetcher.read_to_vec(&h).expect("read"), bytes);

    // A zeroed outboard (its hash pairs never reached the disk) keeps nothing.
    let c = tempfile::tempdir().expect("tempdir");
    let mut fetcher = open(c.path());
    fetcher.begin_fetch(&h, len).expect("begin");
    fetcher.receive(&h, &first, &resp[..]).expect("first 3 MiB");
    drop(fetcher);
    let ob = c
        .path()
        .join("blobs/partial")
        .join(format!("{}.obao", h.to_hex()));
    let n = std::fs::metadata(&ob).expect("outboard").len();
    std::fs::write(&ob, vec![0u8; n as usize]).expect("lose the outboard");
    let fetcher = open(c.path());
    assert_eq!(fetcher.verified(&h), Some(ChunkRanges::empty()));
}

#[test]
fn ranges_past_the_end_bring_the_last_chunk_on_both_sides_alike() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let mut provider = open(a.path());
    // 98 chunks; the last chunk is 97 (672 bytes), in the short last group 96..98. Chunks
    // inside a group can be asked for: the provider computes their hashes from the data.
    let bytes = data(100_000, 31);
    let len = bytes.len() as u64;
    let h = provider.import_bytes(&bytes).expect("import").hash;
    let mut fetcher = open(b.path());
    fetcher.begin_fetch(&h, len).expect("begin");
    let ask = ChunkRanges::from(ChunkNum(0)..ChunkNum(16))
        | ChunkRanges::from(ChunkNum(200)..ChunkNum(300));
    let got = fetch_once(&mut fetcher, &mut provider, &h, &ask).expect("fetch");
    assert_eq!(got.bytes, 16 * 1024 + (len - 97 * 1024));
    let verified = fetcher.verified(&h).expect("under way");
    assert_eq!(
        verified,
        ChunkRanges::from(ChunkNum(0)..ChunkNum(16))
            | ChunkRanges::from(ChunkNum(97)..ChunkNum(98))
    );
    assert!(partial_is_clean(b.path(), &h, &verified, &bytes));
}

#[test]
fn two_providers_at_once_on_their_own_threads() {
    // The daemon's shape: the store behind a lock, one writer per provider decoding on its
    // own thread, taking the lock only to record what verified; providers serving from
    // sources opened without holding their store.
    use std::sync::{Arc, Mutex};
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let mut provider = open(a.path());
    let bytes = data((40 * MIB + 5) as usize, 41);
    let len = bytes.len() as u64;
    let h = provider.import_bytes(&bytes).expect("import").hash;
    let store = Arc::new(Mutex::new(open(b.path())));
    store
        .lock()
        .expect("lock")
        .begin_fetch(&h, len)
        .expect("begin");
    let mut plan = FetchPlan::new(len, [1u8, 2]);
    let pieces = plan.assign(&ChunkRanges::empty());
    assert_eq!(pieces.len(), 2);
    let mut threads = Vec::new();
    let sources: Vec<_> = pieces
        .iter()
        .map(|_| provider.source(&h).expect("source"))
        .collect();
    // Opened sources keep serving even if the provider evicts the blob meanwhile.
    provider.remove(&h).expect("evict");
    for ((who, ranges), source) in pieces.into_iter().zip(sources) {
        let mut writer = store
            .lock()
            .expect("lock")
            .fetch_writer(&h)
            .expect("writer");
        let store = Arc::clone(&store);
        threads.push(std::thread::spawn(move || {
            let mut response = Vec::new();
            source.serve(&ranges, &mut response).expect("serve");
            let mut records = 0;
            let bytes = writer.decode(&ranges, &response[..], |verified| {
                records += 1;
                store
                    .lock()
                    .expect("lock")
                    .record_verified(verified)
                    .map(|_| ())
            });
            (who, bytes.expect("decode"), records)
        }));
    }
    let mut total = 0;
    for t in threads {
        let (who, got, records) = t.join().expect("thread");
        assert!(got > 15 * MIB, "provider {who} sent {got}");
        assert!(
            records >= 2,
            "progress recorded within the response, not only at its end"
        );
        total += got;
    }
    assert_eq!(total, len);
    let mut store = store.lock().expect("lock");
    assert!(store.has(&h));
    assert_eq!(store.read_to_vec(&h).expect("read"), bytes);
}

/// A response stream whose process dies after `left` bytes.
struct DiesAfter<'a> {
    bytes: &'a [u8],
    left: usize,
}

impl std::io::Read for DiesAfter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        assert!(self.left > 0, "the process dies here");
        let n = buf.len().min(self.left).min(self.bytes.len());
        buf[..n].copy_from_slice(&self.bytes[..n]);
        self.bytes = &self.bytes[n..];
        self.left -= n;
        Ok(n)
    }
}

#[test]
fn a_crash_mid_response_keeps_what_was_recorded() {
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let mut provider = open(a.path());
    let bytes = data((24 * MIB) as usize, 51);
    let len = bytes.len() as u64;
    let h = provider.import_bytes(&bytes).expect("import").hash;
    let resp = respond(&mut provider, &h, &ChunkRanges::all());
    let dir = b.path().to_path_buf();
    // Dies 20 MiB in: after the 16 MiB record, before the end-of-response one.
    let crashed = std::thread::spawn(move || {
        let mut fetcher = open(&dir);
        let missing = fetcher.begin_fetch(&h, len).expect("begin");
        let _ = fetcher.receive(
            &h,
            &missing,
            DiesAfter {
                bytes: &resp,
                left: (20 * MIB) as usize,
            },
        );
    })
    .join();
    assert!(crashed.is_err(), "the fetch died");
    let mut fetcher = open(b.path());
    let verified = fetcher.verified(&h).expect("found again");
    let kept = chat_blobs::hash::count_bytes(&verified, len);
    assert!((16 * MIB..20 * MIB).contains(&kept), "kept {kept}");
    assert!(common::partial_holds_no_foreign_bytes(
        b.path(),
        &h,
        &verified,
        &bytes
    ));
    let rest = fetcher.begin_fetch(&h, len).expect("resume");
    let got = fetch_once(&mut fetcher, &mut provider, &h, &rest).expect("rest");
    assert!(got.complete);
    assert_eq!(fetcher.read_to_vec(&h).expect("read"), bytes);
}

#[test]
fn randomly_damaged_responses_never_leave_a_foreign_byte() {
    use rand::{Rng, SeedableRng, rngs::StdRng};
    let a = tempfile::tempdir().expect("tempdir");
    let b = tempfile::tempdir().expect("tempdir");
    let mut provider = open(a.path());
    let bytes = data(150_000, 61);
    let len = bytes.len() as u64;
    let h = provider.import_bytes(&bytes).expect("import").hash;
    let mut fetcher = open(b.path());
    let mut rng = StdRng::seed_from_u64(7);
    let (mut refused, mut completed) = (0, 0);
    for round in 0..150 {
        let missing = fetcher.begin_fetch(&h, len).expect("begin");
        if missing.is_empty() {
            completed += 1;
            assert_eq!(
                fetcher.read_to_vec(&h).expect("read"),
                bytes,
                "round {round}"
            );
            fetcher.remove(&h).expect("remove");
            continue;
        }
        let mut resp = respond(&mut provider, &h, &missing);
        match rng.random_range(0..4) {
            0 => {
                let i = rng.random_range(0..resp.len());
                resp[i] ^= 1 << rng.random_range(0..8);
            }
            1 => resp.truncate(rng.random_range(0..resp.len())),
            2 => {
                let i = rng.random_range(0..resp.len());
                resp.insert(i, rng.random());
            }
            _ => {} // an honest response now and then
        }
        if fetcher.receive(&h, &missing, &resp[..]).is_err() {
            refused += 1;
        }
        if let Some(verified) = fetcher.verified(&h) {
            assert!(
                partial_is_clean(b.path(), &h, &verified, &bytes),
                "round {round}"
            );
        } else {
            assert_eq!(
                fetcher.read_to_vec(&h).expect("read"),
                bytes,
                "round {round}"
            );
        }
    }
    assert!(
        refused > 50 && completed > 5,
        "refused {refused}, completed {completed}"
    );
}
