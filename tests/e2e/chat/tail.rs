//! `chatctl send` and `chatctl tail`: JSON fields, exactly-once display, following across a
//! daemon restart, and quiet exit on a closed pipe.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::support::{Sandbox, drain_texts, line_reader, wait_for_text, wait_until};

const DEADLINE: Duration = Duration::from_secs(20);

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "chatctl failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lines_json(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

#[test]
fn send_then_tail_shows_it_once_with_every_field() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.chatd();
    cmd.args(["--nick", "alice"]);
    let _daemon = sandbox.start(cmd, &sandbox.socket());
    let socket = sandbox.socket();

    ok(&sandbox.chatctl_at(&socket, &["send", "hello", "world"]));
    ok(&sandbox.chatctl_at(&socket, &["send", "--room", "dev", "elsewhere"]));
    let status: serde_json::Value =
        serde_json::from_str(&ok(&sandbox.chatctl_at(&socket, &["status", "--json"])))
            .expect("json");

    let all = lines_json(&ok(
        &sandbox.chatctl_at(&socket, &["tail", "--json", "-n", "50"])
    ));
    let hello: Vec<_> = all.iter().filter(|m| m["text"] == "hello world").collect();
    assert_eq!(hello.len(), 1, "shown exactly once: {all:?}");
    let m = hello[0];
    for key in ["id", "room", "from", "from_id", "text", "ts"] {
        assert!(m.get(key).is_some(), "{key} missing in {m}");
    }
    let id = m["id"].as_str().expect("id");
    assert!(
        id.len() == 64 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );
    assert_eq!(m["room"], "lobby");
    assert_eq!(m["from"], "alice");
    assert_eq!(m["from_id"], status["node_id"]);
    let ts = m["ts"].as_str().expect("ts");
    assert!(
        ts.len() == 24 && &ts[10..11] == "T" && ts.ends_with('Z'),
        "RFC 3339: {ts}"
    );
    // Besides the messages, the node user's "joined" line is an event (it comes with its
    // presence epoch's batch, within a few seconds).
    assert_eq!(all.iter().filter(|m| m["kind"] == "message").count(), 2);
    let joined = wait_until(Duration::from_secs(15), || {
        lines_json(&ok(
            &sandbox.chatctl_at(&socket, &["tail", "--json", "-n", "50"])
        ))
        .iter()
        .any(|m| m["kind"] == "event" && m["text"] == "→ alice joined")
    });
    assert!(joined, "no join line in the tail");

    let dev = lines_json(&ok(
        &sandbox.chatctl_at(&socket, &["tail", "--json", "--room", "dev"])
    ));
    assert_eq!(dev.len(), 1);
    assert_eq!(dev[0]["text"], "elsewhere");

    // One message per line of standard input.
    let mut send = sandbox.chatctl();
    let mut child = send
        .arg("--socket")
        .arg(&socket)
        .args(["send", "--room", "dev"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), b"one\n\ntwo\n")
        .expect("write");
    ok(&child.wait_with_output().expect("wait"));
    let dev = lines_json(&ok(
        &sandbox.chatctl_at(&socket, &["tail", "--json", "--room", "dev"])
    ));
    let texts: Vec<_> = dev
        .iter()
        .map(|m| m["text"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(texts, ["elsewhere", "one", "two"]);
}

#[test]
fn tail_follow_keeps_going_across_a_daemon_restart() {
    let sandbox = Sandbox::new();
    let socket = sandbox.socket();
    let mut daemon = sandbox.start(sandbox.chatd(), &socket);
    ok(&sandbox.chatctl_at(&socket, &["send", "old"]));

    let mut tail = sandbox
        .chatctl()
        .arg("--socket")
        .arg(&socket)
        .args(["tail", "-f", "-n", "0", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("tail -f");
    let rx = line_reader(&mut tail);
    let mut seen = Vec::new();
    // Until tail has subscribed, "before" may be sent ahead of it: send until one shows.
    let mut n = 0;
    assert!(
        wait_until(DEADLINE, || {
            n += 1;
            ok(&sandbox.chatctl_at(&socket, &["send", &format!("before {n}")]));
            wait_until(Duration::from_millis(300), || {
                drain_texts(&rx, &mut seen);
                !seen.is_empty()
            })
        }),
        "tail -f shows new messages"
    );
    assert!(
        !seen.iter().any(|t| t == "old"),
        "-n 0 shows only new messages: {seen:?}"
    );

    daemon.signal(rustix::process::Signal::TERM);
    assert!(
        daemon.wait_exit(DEADLINE).is_some_and(|s| s.success()),
        "clean stop"
    );
    let _daemon = sandbox.start(sandbox.chatd(), &socket);
    ok(&sandbox.chatctl_at(&socket, &["send", "after restart"]));
    assert!(
        wait_for_text(&rx, &mut seen, "after restart", DEADLINE),
        "tail -f resumed: {seen:?}"
    );
    ok(&sandbox.chatctl_at(&socket, &["send", "later"]));
    assert!(
        wait_for_text(&rx, &mut seen, "later", DEADLINE),
        "and keeps following: {seen:?}"
    );
    let _ = tail.kill();
    let _ = tail.wait();
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "nothing shown twice: {seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("later"));
    assert_eq!(seen[seen.len() - 2], "after restart");
}

#[test]
fn tail_into_a_closed_pipe_exits_quietly() {
    let sandbox = Sandbox::new();
    let socket = sandbox.socket();
    let _daemon = sandbox.start(sandbox.chatd(), &socket);
    for i in 0..30 {
        ok(&sandbox.chatctl_at(&socket, &["send", &format!("line {i}")]));
    }
    let mut tail = sandbox
        .chatctl()
        .arg("--socket")
        .arg(&socket)
        .args(["tail", "-f", "-n", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tail");
    // Read one line, then close the pipe like `head -1` does.
    let mut stdout = BufReader::new(tail.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("a line");
    drop(stdout);
    // The next message written to the closed pipe must end tail quietly.
    let mut status = None;
    assert!(
        wait_until(DEADLINE, || {
            ok(&sandbox.chatctl_at(&socket, &["send", "poke"]));
            wait_until(Duration::from_millis(200), || {
                status = tail.try_wait().expect("try_wait");
                status.is_some()
            })
        }),
        "tail exits once its output is gone"
    );
    let out = tail.wait_with_output().expect("output");
    assert!(
        status.is_some_and(|s| s.success()),
        "exit 0, got {status:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("panicked") && stderr.is_empty(),
        "quiet: {stderr}"
    );
}

#[test]
fn search_finds_words_with_filters_and_refuses_bad_queries() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.chatd();
    cmd.args(["--nick", "alice"]);
    let _daemon = sandbox.start(cmd, &sandbox.socket());
    let socket = sandbox.socket();
    ok(&sandbox.chatctl_at(&socket, &["send", "tea at five?"]));
    ok(&sandbox.chatctl_at(&socket, &["send", "--room", "dev", "the build wants tea"]));
    ok(&sandbox.chatctl_at(&socket, &["send", "coffee instead"]));
    // Searchable within about a second (the indexer's pass).
    let found = wait_until(DEADLINE, || {
        let out = sandbox.chatctl_at(&socket, &["search", "tea", "--json"]);
        out.status.success() && lines_json(&String::from_utf8_lossy(&out.stdout)).len() == 2
    });
    assert!(found, "both tea messages found");
    let all = lines_json(&ok(
        &sandbox.chatctl_at(&socket, &["search", "TEA", "--json"])
    ));
    assert_eq!(all[0]["text"], "the build wants tea", "newest first");
    assert_eq!(all[1]["text"], "tea at five?");
    let dev = lines_json(&ok(
        &sandbox.chatctl_at(&socket, &["search", "tea", "--room", "dev", "--json"])
    ));
    assert_eq!(dev.len(), 1);
    let mine = lines_json(&ok(&sandbox.chatctl_at(
        &socket,
        &[
            "search", "co*", "--from", "ALICE", "--since", "1h", "--json",
        ],
    )));
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["text"], "coffee instead");
    let nobody = ok(&sandbox.chatctl_at(&socket, &["search", "tea", "--from", "bob", "--json"]));
    assert!(nobody.trim().is_empty(), "{nobody}");
    // A query of punctuation only, or a bad --since: clear errors.
    let out = sandbox.chatctl_at(&socket, &["search", "!!!"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("query"));
    let out = sandbox.chatctl_at(&socket, &["search", "tea", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
}

#[test]
fn an_anonymised_export_names_nobody() {
    let sandbox = Sandbox::new();
    let mut cmd = sandbox.chatd();
    cmd.args(["--nick", "alice"]);
    let _daemon = sandbox.start(cmd, &sandbox.socket());
    let socket = sandbox.socket();
    ok(&sandbox.chatctl_at(
        &socket,
        &["send", "hello from alice, mention @Alice and ALICE."],
    ));
    ok(&sandbox.chatctl_at(&socket, &["send", "--room", "dev", "a, \"quoted\" line"]));
    let status: serde_json::Value =
        serde_json::from_str(&ok(&sandbox.chatctl_at(&socket, &["status", "--json"])))
            .expect("json");
    let plain = lines_json(&ok(&sandbox.chatctl_at(&socket, &["export"])));
    assert_eq!(plain.len(), 2, "{plain:?}");
    assert_eq!(plain[0]["from"], "alice");
    let ids: Vec<String> = plain
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect();

    let anon = ok(&sandbox.chatctl_at(&socket, &["export", "--anonymize", "--coarsen", "1h"]));
    let lower = anon.to_lowercase();
    for secret in [
        "alice".to_owned(),
        status["node_id"].as_str().expect("node").to_owned(),
        status["user_id"].as_str().expect("user").to_owned(),
    ]
    .iter()
    .chain(&ids)
    {
        assert!(
            !lower.contains(&secret.to_lowercase()),
            "{secret} in {anon}"
        );
    }
    let rows = lines_json(&anon);
    assert_eq!(rows.len(), 2);
    let who = rows[0]["from"].as_str().expect("from");
    assert!(who.starts_with("user-"), "{who}");
    assert!(
        rows[0]["text"].as_str().expect("text").contains(who),
        "mentions become the same pseudonym"
    );
    assert!(
        rows[0]["ts"].as_str().expect("ts").ends_with(":00:00.000Z"),
        "coarsened to the hour"
    );
    // Another export, another key: not linkable.
    let again = lines_json(&ok(&sandbox.chatctl_at(&socket, &["export", "--anonymize"])));
    assert_ne!(again[0]["from"], rows[0]["from"]);

    let csv = ok(&sandbox.chatctl_at(&socket, &["export", "--format", "csv", "--room", "dev"]));
    assert_eq!(csv.lines().next(), Some("time,room,from,from_id,text"));
    assert!(csv.contains("\"a, \"\"quoted\"\" line\""), "{csv}");
    // Bad input: clear errors, nothing overwritten.
    let out = sandbox.chatctl_at(&socket, &["export", "--format", "xml"]);
    assert_eq!(out.status.code(), Some(2));
    let existing = sandbox.path().join("keep.txt");
    std::fs::write(&existing, "precious").expect("write");
    let out = sandbox.chatctl_at(&socket, &["export", "-o", existing.to_str().expect("path")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(&existing).expect("read"),
        "precious"
    );
    let file = sandbox.path().join("export.jsonl");
    ok(&sandbox.chatctl_at(&socket, &["export", "-o", file.to_str().expect("path")]));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).expect("file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(
        std::fs::read_to_string(&file)
            .expect("read")
            .lines()
            .count(),
        2
    );
}

#[test]
fn retention_removes_old_messages_from_history_and_search() {
    let sandbox = Sandbox::new();
    // 0.00005 days: 4.3 s.
    sandbox.write_config("[chat]\nretention_days = 0.00005\n");
    let _daemon = sandbox.start(sandbox.chatd(), &sandbox.socket());
    let socket = sandbox.socket();
    ok(&sandbox.chatctl_at(&socket, &["send", "ephemeral words here"]));
    let texts = || -> Vec<String> {
        lines_json(&ok(
            &sandbox.chatctl_at(&socket, &["tail", "-n", "20", "--json"])
        ))
        .iter()
        .filter(|m| m["kind"] == "message")
        .map(|m| m["text"].as_str().unwrap_or("").to_owned())
        .collect()
    };
    assert_eq!(texts(), ["ephemeral words here"]);
    let indexed = wait_until(DEADLINE, || {
        !ok(&sandbox.chatctl_at(&socket, &["search", "ephemeral", "--json"]))
            .trim()
            .is_empty()
    });
    assert!(indexed, "searchable before it expires");
    // Gone from the history and from search once older than the limit.
    assert!(
        wait_until(Duration::from_secs(30), || texts().is_empty()),
        "expired message still in the history"
    );
    let found = ok(&sandbox.chatctl_at(&socket, &["search", "ephemeral", "--json"]));
    assert!(
        found.trim().is_empty(),
        "expired message still found: {found}"
    );
    // Not on disk either (overwritten, and the log emptied into the file).
    let data = sandbox.data_dir();
    assert!(
        data.join("chat.sqlite3").exists(),
        "the history is where the test looks"
    );
    for name in ["chat.sqlite3", "chat.sqlite3-wal"] {
        if let Ok(bytes) = std::fs::read(data.join(name)) {
            assert!(
                !bytes.windows(9).any(|w| w == b"ephemeral"),
                "{name} still holds the expired text"
            );
        }
    }
}
