//! Tests of the running event log: records written by the writer thread read back through a
//! snapshot, a follower that sees each later record once, a burst that stays within the
//! bound, retention, and the close.

use std::time::Duration;

use super::*;
use crate::records::unix_ms;

const DEADLINE: Duration = Duration::from_secs(10);

fn config(max_bytes: u64, files: u32) -> EventLogConfig {
    EventLogConfig {
        enabled: true,
        max_bytes,
        files,
        stats_interval: Duration::ZERO,
    }
}

fn message(i: u64, text: &str) -> Record {
    let mut r = Record::new(Kind::Message, unix_ms());
    r.room = "lobby".into();
    r.from = "alice".into();
    r.id = format!("{i}");
    r.text = text.into();
    r
}

/// Reads chunks until `want` lines have come (or the deadline passes).
async fn lines(rx: &mut mpsc::Receiver<Chunk>, want: usize) -> Vec<Record> {
    let mut out = Vec::new();
    let read = async {
        while out.len() < want {
            match rx.recv().await {
                Some(c) => out.extend(c.lines.iter().filter_map(|l| Record::parse(l))),
                None => break,
            }
        }
    };
    tokio::time::timeout(DEADLINE, read).await.expect("in time");
    out
}

/// The newest `last` records, as `chatctl log -n LAST` gets them.
async fn tail(log: &EventLog, last: usize) -> Vec<Record> {
    let mut rx = read(log.snapshot().await.expect("snapshot"), last, false);
    let got = lines(&mut rx, usize::MAX).await;
    assert!(rx.recv().await.is_none(), "the stream ends");
    got
}

#[tokio::test]
async fn records_read_back_newest_last_then_followed_once_each() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), &config(1 << 20, 2), None).expect("open");
    for i in 0..10 {
        log.record(message(i, &format!("hello {i}")));
    }
    // A snapshot is taken after what was handed over before it.
    let got = tail(&log, 3).await;
    let ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["7", "8", "9"]);
    assert_eq!(got[2].text, "hello 9");

    let mut follow = read(log.snapshot().await.expect("snapshot"), 2, true);
    assert_eq!(lines(&mut follow, 2).await.len(), 2);
    for i in 10..15 {
        log.record(message(i, "later"));
    }
    let later = lines(&mut follow, 5).await;
    let ids: Vec<&str> = later.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["10", "11", "12", "13", "14"]);
    // Closing ends the follower.
    log.record(Record::line_of(Kind::Stop, unix_ms(), "chatd stopped"));
    log.close(DEADLINE).await;
    let last = lines(&mut follow, usize::MAX).await;
    assert_eq!(
        last.iter().map(|r| r.kind).collect::<Vec<_>>(),
        [Kind::Stop]
    );
    // Nothing more is taken, and that is counted.
    log.record(message(99, "too late"));
    let full = log.drops().into_iter().find(|(k, _)| k == "eventlog_full");
    assert_eq!(full, Some(("eventlog_full".to_owned(), 1)));
}

#[tokio::test]
async fn a_bounded_burst_stays_within_the_bound_and_is_all_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (max, files) = (65_536u64, 3);
    let log = EventLog::open(dir.path(), &config(max, files), None).expect("open");
    // Fewer than the queue holds, so none may be dropped: 3,000 records of ~4 KiB (12 MB,
    // sixty times the bound).
    let text = "ä\n\"".repeat(1000);
    for i in 0..3000 {
        log.record(message(i, &text));
    }
    let got = tail(&log, 100_000).await;
    assert_eq!(got.last().map(|r| r.id.as_str()), Some("2999"));
    assert!(got.iter().all(|r| r.text == text));
    let drops: u64 = log.drops().iter().map(|(_, n)| n).sum();
    assert_eq!(drops, 0);
    let mut total = 0;
    for e in std::fs::read_dir(dir.path()).expect("list").flatten() {
        let len = e.metadata().expect("meta").len();
        assert!(len <= max, "{:?}: {len}", e.file_name());
        total += len;
    }
    assert!(total <= max * u64::from(files), "{total}");
    log.close(DEADLINE).await;
}

#[tokio::test]
async fn retention_drops_old_records_at_the_tick() {
    let dir = tempfile::tempdir().expect("tempdir");
    let day = Duration::from_secs(86_400);
    let log = EventLog::open(dir.path(), &config(1 << 20, 2), Some(day)).expect("open");
    let mut old = message(1, "from two days ago");
    old.ts_ms = unix_ms() - 2 * 86_400_000;
    log.record(old);
    log.record(message(2, "today"));
    log.tick();
    let got = tail(&log, 10).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].text, "today");
    log.close(DEADLINE).await;
}

#[tokio::test]
async fn zero_last_sends_nothing_and_a_reopened_log_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), &config(1 << 20, 2), None).expect("open");
    log.record(message(1, "first run"));
    assert!(tail(&log, 0).await.is_empty());
    log.close(DEADLINE).await;
    let log = EventLog::open(dir.path(), &config(1 << 20, 2), None).expect("reopen");
    log.record(message(2, "second run"));
    let got = tail(&log, 10).await;
    assert_eq!(got.len(), 2);
    let mode = std::fs::metadata(dir.path().join(FILE)).expect("meta");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.permissions().mode() & 0o777, MODE);
    log.close(DEADLINE).await;
}

#[tokio::test]
async fn a_hostile_record_is_one_line_in_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), &config(1 << 20, 2), None).expect("open");
    let mut r = message(
        1,
        "a\nb\r\n{\"kind\":\"private\",\"text\":\"forged\"}\u{0}\u{1b}[2J",
    );
    r.from = "eve\n\"".into();
    log.record(r.clone());
    log.close(DEADLINE).await;
    let text = std::fs::read_to_string(dir.path().join(FILE)).expect("read");
    assert_eq!(text.lines().count(), 1, "{text:?}");
    assert_eq!(Record::parse(&text), Some(r));
}

#[tokio::test]
async fn a_slow_follower_is_told_what_it_missed_and_the_feeds_lag_is_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), &config(1 << 26, 2), None).expect("open");
    let mut follow = read(log.snapshot().await.expect("snapshot"), 0, true);
    // The follower reads nothing while 3,000 records are written: more than its queue.
    for i in 0..3000 {
        log.record(message(i, "x"));
    }
    log.record(Record::line_of(Kind::Stop, unix_ms(), "chatd stopped"));
    log.close(DEADLINE).await;
    let (mut got, mut missed) = (0, 0);
    let drain = async {
        while let Some(c) = follow.recv().await {
            got += c.lines.len() as u64;
            missed += c.missed;
        }
    };
    tokio::time::timeout(DEADLINE, drain)
        .await
        .expect("in time");
    assert!(missed > 0, "the follower fell behind");
    assert_eq!(
        got + missed,
        3001,
        "each record either seen or counted as missed"
    );
    log.lagged(7);
    let lagged = log
        .drops()
        .into_iter()
        .find(|(k, _)| k == "eventlog_lagged");
    assert_eq!(lagged, Some(("eventlog_lagged".to_owned(), 7)));
}

#[tokio::test]
async fn a_delete_record_blanks_the_deleted_text_before_anyone_reads_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = EventLog::open(dir.path(), &config(1 << 20, 2), None).expect("open");
    let target = "12".repeat(32);
    let mut m = message(1, "delete-me-please");
    m.id = target.clone();
    log.record(m);
    let mut d = Record::new(Kind::Delete, unix_ms());
    d.target = target.clone();
    log.record(d);
    let got = tail(&log, 10).await;
    assert_eq!(got.len(), 2);
    assert!(got[0].text.is_empty() && got[0].id == target);
    assert_eq!(got[1].kind, Kind::Delete);
    let file = std::fs::read_to_string(dir.path().join(FILE)).expect("read");
    assert!(!file.contains("delete-me-please"), "{file}");
    log.close(DEADLINE).await;
}
