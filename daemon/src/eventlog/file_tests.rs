//! Tests of the rotating files: bounds under a burst, rotation order, modes, a crash's cut
//! line, a smaller `log.events_files`, retention and consistent snapshots.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::eventlog::record::Kind;

const MAX: u64 = 65_536;

fn line(i: u64, text: &str) -> String {
    Record::line_of(Kind::Message, i, format!("{i} {text}")).line()
}

fn lines_of(files: &mut Files) -> Vec<Record> {
    let mut out = Vec::new();
    for (f, len) in files.snapshot().expect("snapshot") {
        for_each_line(f, len, |l| {
            out.push(Record::parse(l).expect("every line is a record"));
            true
        })
        .expect("read");
    }
    out
}

fn on_disk(dir: &Path) -> Vec<(String, u64, u32)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .flatten()
        .map(|e| {
            let m = e.metadata().expect("meta");
            let name = e.file_name().to_string_lossy().into_owned();
            (name, m.len(), m.permissions().mode() & 0o777)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_burst_rotates_within_the_bound_and_keeps_the_newest_in_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Files::open(dir.path(), MAX, 3).expect("open");
    // About 100 bytes a line: 20,000 lines are 2 MB, thirty times the bound.
    for i in 0..20_000 {
        files.append(&line(i, &"x".repeat(60))).expect("append");
        assert!(files.size() <= MAX);
    }
    files.flush().expect("flush");
    let disk = on_disk(dir.path());
    let names: Vec<&str> = disk.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(names, ["events.log", "events.log.1", "events.log.2"]);
    for (name, len, mode) in &disk {
        assert!(*len <= MAX, "{name} has {len} bytes");
        assert_eq!(*mode, MODE, "{name}");
    }
    let total: u64 = disk.iter().map(|(_, l, _)| l).sum();
    assert!(total <= 3 * MAX && total > 2 * MAX, "{total}");
    let kept = lines_of(&mut files);
    // Oldest first, consecutive, ending with the last one written.
    assert_eq!(kept.last().map(|r| r.ts_ms), Some(19_999));
    for pair in kept.windows(2) {
        assert_eq!(pair[0].ts_ms + 1, pair[1].ts_ms);
    }
}

#[test]
fn one_file_starts_over_and_a_smaller_count_removes_the_extra_copies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Files::open(dir.path(), MAX, 4).expect("open");
    for i in 0..3000 {
        files.append(&line(i, &"y".repeat(60))).expect("append");
    }
    files.flush().expect("flush");
    assert_eq!(on_disk(dir.path()).len(), 4);
    drop(files);
    let mut files = Files::open(dir.path(), MAX, 1).expect("reopen with one file");
    assert_eq!(on_disk(dir.path()).len(), 1, "rotated copies removed");
    for i in 3000..6000 {
        files.append(&line(i, &"y".repeat(60))).expect("append");
    }
    files.flush().expect("flush");
    let disk = on_disk(dir.path());
    assert_eq!(disk.len(), 1);
    assert!(disk[0].1 <= MAX);
    assert_eq!(lines_of(&mut files).last().map(|r| r.ts_ms), Some(5999));
}

#[test]
fn a_line_cut_by_a_crash_is_removed_and_a_loose_mode_tightened() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE);
    let whole = line(1, "whole");
    std::fs::write(&path, format!("{whole}{{\"ts_ms\":2,\"kind\":\"mess")).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut files = Files::open(dir.path(), MAX, 2).expect("open");
    assert_eq!(files.size(), whole.len() as u64);
    assert_eq!(on_disk(dir.path())[0].2, MODE);
    files.append(&line(3, "next")).expect("append");
    let ts: Vec<u64> = lines_of(&mut files).iter().map(|r| r.ts_ms).collect();
    assert_eq!(ts, [1, 3]);
}

#[test]
fn a_snapshot_is_the_state_when_it_was_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Files::open(dir.path(), MAX, 2).expect("open");
    for i in 0..10 {
        files.append(&line(i, "before")).expect("append");
    }
    let snap = files.snapshot().expect("snapshot");
    // Written after: rotations included.
    for i in 10..3000 {
        files.append(&line(i, &"z".repeat(60))).expect("append");
    }
    let mut seen = Vec::new();
    for (f, len) in snap {
        for_each_line(f, len, |l| {
            seen.push(Record::parse(l).expect("record").ts_ms);
            true
        })
        .expect("read");
    }
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
}

#[test]
fn prune_removes_old_records_from_every_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Files::open(dir.path(), MAX, 3).expect("open");
    for i in 0..2000 {
        files.append(&line(i, &"w".repeat(60))).expect("append");
    }
    // Everything in the oldest copy and some of the next goes.
    let first_kept = lines_of(&mut files)[0].ts_ms;
    let cut = first_kept + 800;
    let removed = files.prune(cut).expect("prune");
    assert_eq!(removed, 800);
    let kept = lines_of(&mut files);
    assert_eq!(kept.first().map(|r| r.ts_ms), Some(cut));
    assert_eq!(kept.last().map(|r| r.ts_ms), Some(1999));
    for (name, _, mode) in on_disk(dir.path()) {
        assert_eq!(mode, MODE, "{name}");
        assert!(!name.starts_with('.'), "no temporary file left: {name}");
    }
    // Appending goes on in the rewritten file; pruning everything leaves an empty log.
    files.append(&line(5000, "after")).expect("append");
    assert_eq!(files.prune(u64::MAX).expect("prune all"), kept.len() + 1);
    assert!(lines_of(&mut files).is_empty());
    assert_eq!(files.size(), 0);
    assert_eq!(on_disk(dir.path()).len(), 1, "empty rotated copies deleted");
    assert_eq!(files.prune(u64::MAX).expect("nothing"), 0);
}

#[test]
fn lines_that_are_not_ours_are_skipped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mixed");
    let mut bytes = line(1, "one").into_bytes();
    bytes.extend_from_slice(&[b'x'; 3 * MAX_LINE]);
    bytes.extend_from_slice(b"\n\xff\xfe not utf-8\n");
    bytes.extend_from_slice(line(2, "two").as_bytes());
    bytes.extend_from_slice(b"{\"ts_ms\":3");
    std::fs::write(&path, &bytes).expect("write");
    let mut seen = Vec::new();
    let f = File::open(&path).expect("open");
    for_each_line(f, bytes.len() as u64, |l| {
        seen.push(Record::parse(l).map(|r| r.ts_ms));
        true
    })
    .expect("read");
    assert_eq!(seen, [Some(1), Some(2)]);
}

#[test]
fn a_delete_blanks_the_message_and_its_edits_in_place_in_every_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Files::open(dir.path(), MAX, 3).expect("open");
    let (target, other) = ("ab".repeat(32), "cd".repeat(32));
    let mut m = Record::new(Kind::Message, 1);
    m.id = target.clone();
    m.text = "the lantern is under the stairs".into();
    files.append(&m.line()).expect("append");
    // Enough to push the message into a rotated file, then an edit in the current one.
    for i in 0..800 {
        files.append(&line(i + 2, &"p".repeat(60))).expect("append");
    }
    let mut e = Record::new(Kind::Edit, 900);
    e.target = target.clone();
    e.id = "ef".repeat(32);
    e.text = "the lantern is in the attic".into();
    files.append(&e.line()).expect("append");
    let mut keep = Record::new(Kind::Message, 901);
    keep.id = other.clone();
    keep.text = format!("quoting {target}: lantern");
    files.append(&keep.line()).expect("append");
    files.flush().expect("flush");
    let before = on_disk(dir.path());
    assert!(before.len() >= 2, "the message is in a rotated file");

    assert_eq!(files.redact(&target).expect("redact"), 2);
    let after = on_disk(dir.path());
    assert_eq!(before, after, "same files, same sizes, same modes");
    let all: Vec<u8> = after
        .iter()
        .flat_map(|(n, _, _)| std::fs::read(dir.path().join(n)).expect("read"))
        .collect();
    for gone in ["under the stairs", "in the attic"] {
        assert!(
            !all.windows(gone.len()).any(|w| w == gone.as_bytes()),
            "{gone}"
        );
    }
    let records = lines_of(&mut files);
    let blank = records.iter().find(|r| r.id == target).expect("kept");
    assert!(blank.text.is_empty() && blank.kind == Kind::Message);
    let edit = records.iter().find(|r| r.target == target).expect("kept");
    assert!(edit.text.is_empty());
    // Another message that only mentions the id keeps its text; appending goes on.
    assert!(records.iter().any(|r| r.id == other && r.text == keep.text));
    files.append(&line(902, "after")).expect("append");
    assert_eq!(lines_of(&mut files).last().map(|r| r.ts_ms), Some(902));
    assert_eq!(
        files.redact(&target).expect("again"),
        0,
        "nothing left to blank"
    );
}

#[test]
fn lines_are_written_in_one_batch_and_a_failed_write_is_counted_not_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut files = Files::open(dir.path(), MAX, 2).expect("open");
    files.append(&line(1, "first")).expect("append");
    files.append(&line(2, "second")).expect("append");
    let path = files.path(0);
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), 0, "buffered");
    files.flush().expect("flush");
    let written = std::fs::metadata(&path).expect("meta").len();
    assert_eq!(written, files.size());
    assert_eq!(files.take_lost(), 0);

    // A handle that refuses writes: the batch is dropped and counted, the size stays true.
    let writable = std::mem::replace(&mut files.current, File::open(&path).expect("read-only"));
    for i in 3..6 {
        files.append(&line(i, "lost")).expect("append");
    }
    assert!(files.flush().is_err());
    assert_eq!(files.take_lost(), 3);
    assert_eq!(files.take_lost(), 0, "counted once");
    assert_eq!(files.size(), written);
    files.current = writable;
    files.append(&line(6, "after")).expect("append");
    let ts: Vec<u64> = lines_of(&mut files).iter().map(|r| r.ts_ms).collect();
    assert_eq!(ts, [1, 2, 6]);
}
