//! The event log over a real ring: the recipient's `chatctl log --json` shows a public
//! message with its text and a private one with its sender, recipient and times, while the
//! private text is in no `events.log*` file, no `chatctl log` output and no chatd log; the
//! status counts private messages and clients, and the statistics line comes every second; a
//! deleted message's text leaves the files;
//! `chatctl log -f` follows a burst that rotates the files within their bound, and ends with
//! the `stop` record; records older than `chat.retention_days` leave the files; a TCP guest
//! may not read the log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::{Cluster, poll};
use crate::support::{Sandbox, line_reader, wait_until};

/// How long the ring, the names and the key bundles may take.
const FORM: Duration = Duration::from_secs(60);
/// How long a message may take to arrive.
const ARRIVE: Duration = Duration::from_secs(45);
/// `log.events_max_bytes` of the recipient: the smallest allowed.
const MAX_BYTES: u64 = 65_536;

fn socket(c: &Cluster, i: usize) -> PathBuf {
    c.members[i].dir.join("run/control.sock")
}

/// Member `i`'s whole event log (`chatctl log --json`), parsed.
fn records(c: &Cluster, i: usize) -> Vec<Value> {
    let out = c
        .sandbox
        .chatctl_at(&socket(c, i), &["log", "-n", "100000", "--json"]);
    assert!(
        out.status.success(),
        "chatctl log: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is a JSON object"))
        .collect()
}

/// The event-log files in a data directory, with their contents.
fn log_files(data: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(data)
        .expect("data dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("events.log"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("read"))
        })
        .collect();
    files.sort();
    files
}

fn holds(files: &[(String, Vec<u8>)], needle: &str) -> bool {
    files
        .iter()
        .any(|(_, b)| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_recipients_log_shows_public_texts_and_private_metadata_only() {
    let mut c = Cluster::new(47);
    let small = [
        ("CHATD_LOG__EVENTS_MAX_BYTES", "65536"),
        ("CHATD_LOG__EVENTS_FILES", "2"),
        ("CHATD_LOG__STATS_INTERVAL_SECS", "1"),
    ];
    c.add_with_env(&[], &[("CHATD_NODE__NICKNAME", "alice")]);
    let mut bob_env = small.to_vec();
    bob_env.push(("CHATD_NODE__NICKNAME", "bob"));
    c.add_with_env(&[c.addr(0)], &bob_env);
    c.await_ring(FORM);
    poll(FORM, Duration::from_millis(300), || {
        [0, 1]
            .iter()
            .all(|&i| {
                let v = c.json(&c.members[i].dir, &["users", "--json"]);
                v.is_some_and(|v| {
                    ["alice", "bob"].iter().all(|n| {
                        v["users"]
                            .as_array()
                            .is_some_and(|u| u.iter().any(|x| x["nickname"] == *n))
                    })
                })
            })
            .then_some(())
    })
    .expect("both know both names");

    let public = "public-marker-3b9e with \"quotes\"";
    let secret = "secret-dm-marker-c41a";
    ok(c.sandbox.chatctl_at(&socket(&c, 0), &["send", public]));
    ok(c.sandbox.chatctl_at(&socket(&c, 0), &["dm", "bob", secret]));

    // Bob's log: the public message with its text, the private one without.
    let found = poll(ARRIVE, Duration::from_millis(200), || {
        let all = records(&c, 1);
        let m = all
            .iter()
            .find(|r| r["kind"] == "message" && r["text"] == public)?
            .clone();
        let p = all
            .iter()
            .find(|r| r["kind"] == "private" && r["direction"] == "received")?
            .clone();
        Some((all, m, p))
    });
    let (all, m, p) = found.expect("bob's log shows both messages");
    assert_eq!(m["from"], "alice");
    assert_eq!(m["room"], "lobby");
    assert_eq!(m["from_id"], c.members[0].id.as_str());
    assert!(m["sent_ms"].as_u64().is_some_and(|t| t > 0), "{m}");
    assert_eq!(p["from"], "alice");
    assert_eq!(p["to"], "bob");
    for (field, len) in [("from_id", 64), ("to_id", 64), ("id", 32)] {
        assert_eq!(p[field].as_str().map(str::len), Some(len), "{field}: {p}");
    }
    assert!(p["sent_ms"].as_u64().is_some_and(|t| t > 0), "{p}");
    assert!(p["ts_ms"].as_u64().is_some_and(|t| t > 0), "{p}");
    assert!(p.get("text").is_none(), "a private record has no text: {p}");
    assert_eq!(all.first().map(|r| r["kind"].clone()), Some("start".into()));
    assert!(
        all.iter().any(|r| r["kind"] == "join"),
        "people events are logged: {all:?}"
    );
    // Alice's log has her side of it.
    poll(ARRIVE, Duration::from_millis(200), || {
        records(&c, 0)
            .iter()
            .any(|r| r["kind"] == "private" && r["direction"] == "sent" && r["to"] == "bob")
            .then_some(())
    })
    .expect("alice's log shows the message she sent");

    // The private text is nowhere in the logs: files, chatctl log, chatd's own log.
    for i in [0, 1] {
        let data = c.members[i].dir.join("data");
        let files = log_files(&data);
        assert!(!files.is_empty(), "node {i} has an event log");
        assert!(
            !holds(&files, secret),
            "node {i}'s events.log holds the text"
        );
        assert!(
            holds(&files, "public-marker-3b9e"),
            "node {i}'s log has the public text"
        );
        let out = ok(c.sandbox.chatctl_at(&socket(&c, i), &["log", "-n", "1000"]));
        assert!(
            !out.contains(secret) && out.contains("public-marker-3b9e"),
            "{out}"
        );
        let daemon_log = c.members[i].daemon.as_ref().expect("runs").log();
        assert!(
            !daemon_log.contains(secret),
            "node {i}'s chatd log holds the text"
        );
    }

    // The status counts private messages and clients; the statistics line comes each second.
    let status = c.status(1).expect("status");
    assert!(status["private_received"].as_u64() >= Some(1), "{status}");
    assert!(
        status["control_connections"].as_u64() >= Some(1),
        "{status}"
    );
    let alice = c.status(0).expect("status");
    assert!(alice["private_sent"].as_u64() >= Some(1), "{alice}");
    poll(ARRIVE, Duration::from_millis(200), || {
        records(&c, 1)
            .iter()
            .any(|r| r["kind"] == "stats" && r["counts"]["private_received"].as_u64() >= Some(1))
            .then_some(())
    })
    .expect("a stats record with the private message counted");
    let bob_log = c.members[1].daemon.as_ref().expect("runs").log();
    assert!(bob_log.contains("stats: ring"), "{bob_log}");

    // Alice deletes a message: Bob's log says so, and its text leaves his files.
    let doomed = "doomed-marker-5e0d, soon deleted";
    let sent = ok(c
        .sandbox
        .chatctl_at(&socket(&c, 0), &["send", doomed, "--json"]));
    let id: Value = serde_json::from_str(sent.trim()).expect("the sent message");
    let id = id["id"].as_str().expect("its id").to_owned();
    poll(ARRIVE, Duration::from_millis(200), || {
        records(&c, 1)
            .iter()
            .any(|r| r["kind"] == "message" && r["id"] == id.as_str())
            .then_some(())
    })
    .expect("bob logs the message");
    ok(c.sandbox.chatctl_at(&socket(&c, 0), &["delete", &id]));
    poll(ARRIVE, Duration::from_millis(200), || {
        let all = records(&c, 1);
        let deleted = all
            .iter()
            .any(|r| r["kind"] == "delete" && r["target"] == id.as_str());
        let blank = all
            .iter()
            .any(|r| r["id"] == id.as_str() && r.get("text").is_none());
        (deleted && blank && !holds(&log_files(&c.members[1].dir.join("data")), "doomed-marker"))
            .then_some(())
    })
    .expect("bob's log records the delete and no longer holds the text");

    // Follow Bob's log while Alice sends a burst of 40 messages of 4,000 bytes: more than
    // twice the 64 KiB bound of each of his two files.
    let mut follower = c
        .sandbox
        .chatctl()
        .arg("--socket")
        .arg(socket(&c, 1))
        .args(["log", "-f", "-n", "0", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("chatctl log -f");
    let lines = line_reader(&mut follower);
    // The follower is attached once it shows a record (Bob writes a `stats` record every
    // second): a burst sent before that would partly precede the follow (`-n 0`).
    let mut seen: Vec<Value> = Vec::new();
    let attached = wait_until(ARRIVE, || {
        while let Ok(l) = lines.try_recv() {
            seen.push(serde_json::from_str(&l).expect("json"));
        }
        !seen.is_empty()
    });
    assert!(attached, "chatctl log -f shows the next stats record");
    let burst: Vec<String> = (0..40)
        .map(|i| format!("burst-{i:02}-{}", "x".repeat(3990)))
        .collect();
    let mut send = c
        .sandbox
        .chatctl()
        .arg("--socket")
        .arg(socket(&c, 0))
        .arg("send")
        .stdin(Stdio::piped())
        .spawn()
        .expect("chatctl send");
    let mut stdin = send.stdin.take().expect("stdin");
    stdin
        .write_all(format!("{}\n", burst.join("\n")).as_bytes())
        .expect("write");
    drop(stdin);
    assert!(send.wait().expect("send exits").success());
    let all_seen = wait_until(ARRIVE, || {
        while let Ok(l) = lines.try_recv() {
            let v: Value = serde_json::from_str(&l).expect("json");
            seen.push(v);
        }
        burst
            .iter()
            .all(|b| seen.iter().any(|r| r["text"] == b.as_str()))
    });
    if !all_seen {
        let missing: Vec<usize> = (0..burst.len())
            .filter(|&i| !seen.iter().any(|r| r["text"] == burst[i].as_str()))
            .collect();
        let in_file: Vec<usize> = missing
            .iter()
            .copied()
            .filter(|&i| holds(&log_files(&c.members[1].dir.join("data")), &burst[i][..9]))
            .collect();
        let status = c.status(1);
        let tail = c.members[1]
            .daemon
            .as_ref()
            .map(|d| d.log_tail(40))
            .unwrap_or_default();
        panic!(
            "the follower missed burst messages {missing:?} (in bob's files: {in_file:?}); \
             follower exited: {:?}; bob's status: {status:?}\nbob's log, newest first:\n{}",
            follower.try_wait(),
            tail
        );
    }
    let files = log_files(&c.members[1].dir.join("data"));
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["events.log", "events.log.1"]);
    for (name, bytes) in &files {
        assert!(bytes.len() as u64 <= MAX_BYTES, "{name}: {}", bytes.len());
    }
    assert!(
        !holds(&files, "public-marker-3b9e"),
        "the oldest records were rotated out"
    );
    assert!(holds(&files, &burst[39]));

    // A graceful stop ends the log with `stop`, and the follower with it.
    let d = c.members[1].daemon.as_mut().expect("bob runs");
    d.signal(rustix::process::Signal::TERM);
    assert!(d.wait_exit(Duration::from_secs(10)).is_some());
    let stopped = wait_until(Duration::from_secs(10), || {
        while let Ok(l) = lines.try_recv() {
            seen.push(serde_json::from_str(&l).expect("json"));
        }
        seen.last().is_some_and(|r| r["kind"] == "stop")
    });
    assert!(stopped, "the last record followed is the stop");
    let exited = wait_until(Duration::from_secs(10), || {
        follower.try_wait().expect("try_wait").is_some()
    });
    assert!(exited, "chatctl log -f ends when chatd stops");
}

#[test]
fn expired_records_leave_the_files_and_guests_may_not_read_the_log() {
    let sandbox = Sandbox::new();
    let token = sandbox.path().join("token");
    std::fs::write(&token, "event-log-token-0123456789\n").expect("token");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    // 0.00005 days: 4.3 s.
    sandbox.write_config(&format!(
        "[chat]\nretention_days = 0.00005\n[log]\nstats_interval_secs = 0\n\
         [control]\ntcp_listen = \"{tcp}\"\ntoken_file = \"{}\"\n",
        token.display()
    ));
    let _daemon = sandbox.start(sandbox.chatd(), &sandbox.socket());
    let socket = sandbox.socket();
    ok(sandbox.chatctl_at(&socket, &["send", "ephemeral-log-words"]));
    let data = sandbox.data_dir();
    assert!(
        wait_until(ARRIVE, || holds(&log_files(&data), "ephemeral-log-words")),
        "logged first"
    );
    assert!(
        wait_until(Duration::from_secs(30), || {
            !holds(&log_files(&data), "ephemeral-log-words")
        }),
        "an expired record is removed from events.log"
    );
    ok(sandbox.chatctl_at(&socket, &["log", "--json"]));

    // The token's holder is a guest, not the operator.
    assert!(
        wait_until(ARRIVE, || std::net::TcpStream::connect(tcp).is_ok()),
        "TCP listener up"
    );
    let out = sandbox
        .chatctl()
        .args(["--remote", &tcp.to_string(), "--token-file"])
        .arg(&token)
        .args(["log", "--json"])
        .output()
        .expect("chatctl runs");
    assert_eq!(out.status.code(), Some(4), "refused by chatd");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("operator"), "{err}");
    assert!(out.stdout.is_empty());
}
