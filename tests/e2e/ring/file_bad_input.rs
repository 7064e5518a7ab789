//! Issue 35's bad input for files, on real daemons: a file over `files.max_file_mb`, a path
//! that cannot be read (missing, a directory, unreadable), a hash that matches nothing, an
//! image bomb (a PNG declaring 100000 × 100000 pixels) and a download to a full disk (the
//! output's and the node's own). Each gives a clear error, the daemon keeps working, and
//! nothing half-written is left: not in the store's `tmp/` and `partial/`, not at the output.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cluster::{Cluster, Tmpfs, poll};
use crate::files::{data, held, ring, runtime, socket, upload};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Fails unless `out` failed with an error saying all of `words`.
fn assert_refused(out: &std::process::Output, what: &str, words: &[&str]) {
    let err = stderr(out);
    assert!(!out.status.success(), "{what}: succeeded");
    for w in words {
        assert!(
            err.contains(w),
            "{what}: the error does not say {w:?}: {err}"
        );
    }
}

/// Entries in a directory (0 when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Nothing half-written in node `i`'s blob store (within a few seconds: a client that gave
/// up has returned before the node saw its upload end), and the node answers.
fn assert_clean_and_alive(c: &Cluster, i: usize, what: &str) {
    let blobs = c.members[i].dir.join("data/blobs");
    for sub in ["tmp", "partial"] {
        let clean = poll(Duration::from_secs(10), Duration::from_millis(100), || {
            entries(&blobs.join(sub)).is_empty().then_some(())
        });
        let left = entries(&blobs.join(sub));
        assert!(
            clean.is_some(),
            "{what}: left in blobs/{sub} after 10 s: {left:?}"
        );
    }
    let status = c.ctl(i, &["status", "--json"]);
    assert!(
        status.status.success(),
        "{what}: the node stopped answering"
    );
}

/// A CRC-32 (ISO-HDLC, as PNG chunks use).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG chunk.
fn chunk(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    let typed = [kind.as_slice(), body].concat();
    out.extend_from_slice(&typed);
    out.extend_from_slice(&crc32(&typed).to_be_bytes());
    out
}

/// A small PNG that declares 100000 × 100000 RGB pixels (30 GB decoded).
fn png_bomb() -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    // zlib: a stored block of 5 zero bytes and its Adler-32.
    let idat = [
        0x78, 0x01, 0x01, 0x05, 0x00, 0xFA, 0xFF, 0, 0, 0, 0, 0, 0x00, 0x05, 0x00, 0x01,
    ];
    [
        b"\x89PNG\r\n\x1a\n".to_vec(),
        chunk(b"IHDR", &ihdr),
        chunk(b"IDAT", &idat),
        chunk(b"IEND", &[]),
    ]
    .concat()
}

#[test]
fn bad_files_and_hashes_get_clear_errors_and_leave_nothing() {
    let mut c = Cluster::new(193);
    let a = c.add_with_env(&[], &[("CHATD_FILES__MAX_FILE_MB", "1")]);
    c.add(&[c.addr(a)]);
    c.await_ring(Duration::from_secs(60));
    let dir = c.members[a].dir.clone();
    let send = |path: &Path| {
        let p = path.to_str().expect("utf-8");
        c.ctl(a, &["send", "--json", "--file", p])
    };

    // Over files.max_file_mb (1 MiB here).
    let big = dir.join("big.bin");
    std::fs::write(&big, data(2 << 20)).expect("writes");
    let out = send(&big);
    assert_refused(
        &out,
        "over the limit",
        &["over the limit", "files.max_file_mb"],
    );
    assert_clean_and_alive(&c, a, "over the limit");

    // Paths that cannot be read.
    let out = send(Path::new("/nonexistent"));
    assert_refused(
        &out,
        "missing",
        &["cannot read /nonexistent", "No such file"],
    );
    let out = send(&dir);
    assert_refused(&out, "a directory", &["cannot read", "not a regular file"]);
    // A file whose reads fail (EIO) after it opened.
    let out = send(Path::new("/proc/self/mem"));
    assert_refused(&out, "a failing read", &["cannot read /proc/self/mem"]);
    if rustix::process::geteuid().is_root() {
        eprintln!("an unreadable file: not tried as root (root reads it anyway)");
    } else {
        use std::os::unix::fs::PermissionsExt;
        let locked = dir.join("locked.bin");
        std::fs::write(&locked, b"secret").expect("writes");
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).expect("chmod");
        let out = send(&locked);
        assert_refused(&out, "unreadable", &["cannot read", "Permission denied"]);
    }
    assert_clean_and_alive(&c, a, "unreadable paths");
    let rt = runtime();
    assert_eq!(rt.block_on(held(&socket(&c, a))), 0, "nothing was stored");

    // A hash that matches nothing: a clear "not found" within a bounded time, no output.
    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).expect("out dir");
    let target = out_dir.join("nothing.bin");
    let t = Instant::now();
    let out = c.ctl(
        a,
        &[
            "get",
            &"5a".repeat(32),
            "-o",
            target.to_str().expect("utf-8"),
        ],
    );
    assert_refused(&out, "an unknown hash", &["no provider", &"5a".repeat(32)]);
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert!(entries(&out_dir).is_empty(), "{:?}", entries(&out_dir));
    assert_clean_and_alive(&c, a, "an unknown hash");

    // An image bomb: sent as a file, without a thumbnail (the decoder's limits refused it).
    let bomb = dir.join("bomb.png");
    std::fs::write(&bomb, png_bomb()).expect("writes");
    let out = send(&bomb);
    assert!(out.status.success(), "the bomb as a file: {}", stderr(&out));
    let sent: serde_json::Value = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| serde_json::from_str(l).ok())
        .expect("the sent message");
    let att = &sent["attachment"];
    assert_eq!(att["media_type"], "image/png", "{sent}");
    assert!(
        att["thumbnail"].as_str().unwrap_or("").is_empty(),
        "no thumbnail: {sent}"
    );
    assert_eq!((&att["width"], &att["height"]), (&0.into(), &0.into()));
    let id = sent["id"].as_str().expect("id").to_owned();
    // The other node shows it (and fetches it: it is small) and is unharmed too.
    let shown = poll(Duration::from_secs(30), Duration::from_millis(300), || {
        let tail = c.ctl(1, &["tail", "-n", "20", "--json"]);
        String::from_utf8_lossy(&tail.stdout)
            .contains(&id)
            .then_some(())
    });
    assert!(shown.is_some(), "B never showed the bomb's message");
    assert_clean_and_alive(&c, a, "an image bomb");
    assert_clean_and_alive(&c, 1, "an image bomb, received");
}

#[test]
fn a_download_to_a_full_disk_fails_clearly_and_the_node_serves_on() {
    let what = "files full disk";
    if !Tmpfs::available(what) {
        return;
    }
    let mut c = ring(194, 3);
    // D: a node whose data directory is a small tmpfs (8 MiB).
    let d_dir = c.sandbox.path().join("n3");
    let Some(_d_data) = Tmpfs::mount(&d_dir.join("data"), "8m", what) else {
        return;
    };
    let listen = "127.0.194.13:0".parse().expect("addr");
    let d = c.start_at(d_dir, listen, &[c.addr(0)], Vec::new());
    c.await_ring(Duration::from_secs(60));
    let rt = runtime();
    let bytes = data(4 << 20);
    let (hash, _, _) = rt
        .block_on(upload(&socket(&c, 0), &bytes))
        .expect("uploads");

    // B saves it to a disk too small (1 MiB): a clear error, nothing at the output.
    let out_dir = c.sandbox.path().join("small");
    let Some(small) = Tmpfs::mount(&out_dir, "1m", what) else {
        return;
    };
    let target = small.path().join("file.bin");
    let out = c.ctl(1, &["get", &hash, "-o", target.to_str().expect("utf-8")]);
    assert_refused(
        &out,
        "a full output disk",
        &["cannot write", "No space left"],
    );
    assert!(
        entries(small.path()).is_empty(),
        "left at the output: {:?}",
        entries(small.path())
    );
    // B's fetch completes although chatctl went away (it streams the bytes as they verify,
    // so the client may fail before the fetch ends): with A gone, C gets it from B.
    let fetched = poll(Duration::from_secs(30), Duration::from_millis(100), || {
        (rt.block_on(held(&socket(&c, 1))) == 1).then_some(())
    });
    assert!(fetched.is_some(), "B never completed its fetch");
    assert_clean_and_alive(&c, 1, "a full output disk");
    c.kill(0);
    let target = c.sandbox.path().join("c.bin");
    let out = poll(Duration::from_secs(60), Duration::from_millis(500), || {
        let out = c.ctl(2, &["get", &hash, "-o", target.to_str().expect("utf-8")]);
        out.status.success().then_some(out)
    });
    assert!(out.is_some(), "C never got the file from B");
    assert!(std::fs::read(&target).expect("C's copy") == bytes);

    // D's own disk is too small for the file (12 MiB on 8 MiB): a clear error, the partial
    // blob is removed (it would keep the disk full), and D works on.
    let big = data(12 << 20);
    let (big_hash, _, _) = rt
        .block_on(upload(&socket(&c, 1), &big))
        .expect("uploads on B");
    let target = c.sandbox.path().join("d.bin");
    let out = poll(Duration::from_secs(60), Duration::from_millis(500), || {
        let out = c.ctl(
            d,
            &["get", &big_hash, "-o", target.to_str().expect("utf-8")],
        );
        // Until B's provider record is found, the error is "no provider".
        (!stderr(&out).contains("no provider of")).then_some(out)
    })
    .expect("D tried the fetch");
    assert_refused(&out, "a full data disk", &["No space left"]);
    assert!(!target.exists(), "nothing at the output");
    assert_clean_and_alive(&c, d, "a full data disk");
    let sent = c.ctl(d, &["send", "still here"]);
    assert!(sent.status.success(), "D still sends: {}", stderr(&sent));
}
