//! The web view in a real browser and `/metrics` under a real parser, against a two-node ring.
//!
//! Headless Chromium (Debian's `chromium`) is driven over the DevTools protocol: the page,
//! opened through a `chatctl web` login link, shows a message sent with `chatctl` on the other
//! node within 2 s, shows `<script>` and `<img onerror>` as text without running them, sends
//! from its box, changes lines in place when their messages are edited or deleted (public and
//! private ones), after chatd restarts reconnects and shows the messages sent meanwhile,
//! each once, and loaded anew shows edited and deleted messages as such. `/metrics` is parsed with Python's `prometheus_client` and its counters are
//! checked against `chatctl status --json`. Hostile clients — a cross-origin WebSocket,
//! binary and oversized frames, a wrong session, a flood of connections — are refused.
//! Without Chromium or `prometheus_client` the parts that need them skip (and fail under
//! `CHATD_TEST_STRICT=1`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::cluster::{Cluster, poll};
use crate::support::skip_or_fail;

// Beside this file: tests/e2e/ring/web_hostile.rs.
#[path = "web_hostile.rs"]
mod hostile;
// The Network view: tests/e2e/ring/web_map.rs.
#[path = "web_map.rs"]
mod map;
// Files on the page: tests/e2e/ring/web_files.rs.
#[path = "web_files.rs"]
mod files;
// Voice messages on the page: tests/e2e/ring/web_voice.rs.
#[path = "web_voice.rs"]
mod voice_page;
// Private files and voice messages on the page: tests/e2e/ring/web_private.rs.
#[path = "web_private.rs"]
mod private_page;

const FORM: Duration = Duration::from_secs(60);

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One HTTP/1.1 request; returns (status, headers, body).
fn http(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_owned(), body.to_owned())
}

/// Headless Chromium, killed on drop, and a DevTools connection to its page.
struct Browser {
    child: Child,
    rt: tokio::runtime::Runtime,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|p| {
                std::env::split_paths(&p)
                    .map(|d| d.join(name))
                    .find(|f| f.is_file())
            })
        })
}

impl Browser {
    fn open(bin: &Path, profile: &Path, url: &str) -> Browser {
        Browser::open_with(bin, profile, url, &[])
    }

    /// Like [`Browser::open`], with more command-line switches (`extra`).
    fn open_with(bin: &Path, profile: &Path, url: &str, extra: &[String]) -> Browser {
        let mut child = Command::new(bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-port=0",
                "--window-size=1280,800",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(extra)
            .arg(url)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(rest) = line.split("ws://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or("").to_owned());
                }
            }
        });
        let devtools: SocketAddr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium prints its DevTools address")
            .parse()
            .expect("DevTools address");
        let page = poll(Duration::from_secs(20), Duration::from_millis(100), || {
            let (_, _, body) = http(devtools, "/json/list", &[]);
            let list: Value = serde_json::from_str(&body).ok()?;
            list.as_array()?
                .iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_owned))
        })
        .expect("chromium has a page");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (ws, _) = rt
            .block_on(tokio_tungstenite::connect_async(page.as_str()))
            .expect("DevTools connection");
        Browser {
            child,
            rt,
            ws,
            next: 0,
        }
    }

    /// Calls a DevTools method and returns its result.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        let ws = &mut self.ws;
        self.rt.block_on(async {
            ws.send(Message::Text(msg.into())).await.expect("send");
            loop {
                let v = next_json_within(ws, Duration::from_secs(20)).await;
                if v["id"] == id {
                    return v["result"].clone();
                }
            }
        })
    }

    /// Evaluates a JS expression in the page; its value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        r["result"]["value"].clone()
    }

    fn wait(&mut self, deadline: Duration, expr: &str, what: &str) -> Duration {
        let start = Instant::now();
        while start.elapsed() < deadline {
            if self.eval(expr) == Value::Bool(true) {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{what}: not within {deadline:?}; page text: {}",
            self.eval("document.body.innerText")
        );
    }

    fn count_lines(&mut self, text: &str) -> u64 {
        let expr = format!(
            "[...document.querySelectorAll('#timeline li .text')].filter(e => e.textContent === {}).length",
            json!(text)
        );
        self.eval(&expr).as_u64().unwrap_or(0)
    }
}

fn send(c: &Cluster, i: usize, text: &str) {
    let out = c
        .sandbox
        .chatctl_at(&c.members[i].dir.join("run/control.sock"), &["send", text]);
    assert!(
        out.status.success(),
        "send: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Python's prometheus_client parses the exposition; returns {sample name: value}.
fn parse_metrics(body: &str) -> Option<serde_json::Map<String, Value>> {
    let script = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        key = s.name + ("{" + ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())) + "}" if s.labels else "")
        out[key] = s.value
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(body.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("No module named"),
            "the exposition does not parse: {err}\n{body}"
        );
        return None;
    }
    serde_json::from_slice::<Value>(&out.stdout)
        .ok()?
        .as_object()
        .cloned()
}

#[test]
fn web_view_metrics_and_hostile_clients() {
    let mut c = Cluster::new(20);
    let port = free_port();
    let web = format!("127.0.0.1:{port}");
    let web_addr: SocketAddr = web.parse().expect("addr");
    c.add_with_env(
        &[],
        &[
            ("CHATD_WEB__LISTEN", &web),
            ("CHATD_NODE__NICKNAME", "webber"),
        ],
    );
    c.add_with_env(&[c.addr(0)], &[("CHATD_NODE__NICKNAME", "other")]);
    c.await_ring(FORM);

    // /healthz once joined; every response carries the policy.
    let (code, head, _) = http(web_addr, "/healthz", &[]);
    assert_eq!(code, 200, "{head}");
    let (code, head, page) = http(web_addr, "/", &[]);
    assert_eq!(code, 200);
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(page.contains("<ol id=\"timeline\""), "{page}");
    let (code, _, _) = http(web_addr, "/nope", &[]);
    assert_eq!(code, 404);

    hostile::hostile(web_addr);
    metrics(&c, web_addr);

    let Some(bin) = chromium() else {
        skip_or_fail(
            "chromium is not installed (apt install chromium): the browser part of the web view test",
        );
        return;
    };
    let link = c
        .json(&c.members[0].dir, &["web", "--json"])
        .expect("chatctl web");
    let url = link["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with(&format!("http://{web}/#login=login.")),
        "{url}"
    );
    let profile = c.sandbox.path().join("chromium");
    let mut b = Browser::open(&bin, &profile, &url);
    b.wait(
        Duration::from_secs(20),
        "document.body.dataset.conn === 'up'",
        "the page connects",
    );
    assert_eq!(
        b.eval("document.getElementById('send').disabled"),
        json!(false),
        "the login link lets the page send"
    );

    // A message from the other node shows within 2 s.
    let hello = format!("hello from the other node {}", std::process::id());
    send(&c, 1, &hello);
    let sent = Instant::now();
    b.wait(
        Duration::from_secs(10),
        &format!(
            "document.getElementById('timeline').innerText.includes({})",
            json!(hello)
        ),
        "the other node's message",
    );
    let took = sent.elapsed();
    assert!(
        took <= Duration::from_secs(2),
        "shown {took:?} after it was sent"
    );

    // HTML from the network is text.
    let evil = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=2\"><b>bold</b>";
    send(&c, 1, evil);
    b.wait(
        Duration::from_secs(10),
        &format!(
            "document.getElementById('timeline').innerText.includes({})",
            json!(evil)
        ),
        "the hostile message, as text",
    );
    assert_eq!(
        b.eval("typeof window.pwned"),
        json!("undefined"),
        "a script ran"
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#timeline img, #timeline script, #timeline b').length"),
        json!(0)
    );

    // Sending from the page reaches the other node.
    let from_page = format!("typed in the browser {}", std::process::id());
    b.eval(&format!(
        "document.getElementById('text').value = {}; document.getElementById('send').click(); true",
        json!(from_page)
    ));
    let sock = c.members[1].dir.join("run/control.sock");
    let seen = poll(Duration::from_secs(15), Duration::from_millis(200), || {
        let out = c.sandbox.chatctl_at(&sock, &["tail", "-n", "20", "--json"]);
        let raw = String::from_utf8_lossy(&out.stdout).into_owned();
        raw.contains(&from_page).then_some(raw)
    })
    .expect("the page's message reaches the other node");
    let line = seen.lines().find(|l| l.contains(&from_page)).expect("line");
    assert!(
        line.contains("\"webber\""),
        "named by the page's account: {line}"
    );
    b.wait(
        Duration::from_secs(5),
        "document.getElementById('text').value === ''",
        "the box clears once sent",
    );

    // A private message to the page's account opens its window there; an answer typed in that
    // window goes back privately.
    let out = c
        .sandbox
        .chatctl_at(&sock, &["dm", "webber", "private to the page"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let private_window =
        "[...document.querySelectorAll('#rooms li')].find(l => l.textContent.includes('@other'))";
    b.wait(
        Duration::from_secs(20),
        &format!("!!{private_window}"),
        "the private window appears",
    );
    b.eval(&format!("{private_window}.click(); true"));
    b.wait(
        Duration::from_secs(5),
        "document.getElementById('timeline').innerText.includes('private to the page')",
        "the private message shows in its window",
    );
    b.eval(
        "document.getElementById('text').value = 'private answer from the page'; \
         document.getElementById('send').click(); true",
    );
    poll(Duration::from_secs(20), Duration::from_millis(200), || {
        let out = c.sandbox.chatctl_at(&sock, &["dms", "--json"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| {
                l.contains("private answer from the page") && l.contains("\"from\":\"webber\"")
            })
            .then_some(())
    })
    .expect("the answer reaches the other node privately");
    b.eval(
        "[...document.querySelectorAll('#rooms li')].find(l => l.textContent.includes('all rooms')).click(); true",
    );

    // Edits and deletes made on the other node change the page's lines in place.
    let changed = changes(&c, &mut b);

    // chatd restarts: the page reconnects and shows what was sent meanwhile, once.
    let daemon = c.members[0].daemon.as_mut().expect("running");
    daemon.signal(rustix::process::Signal::TERM);
    assert!(
        daemon.wait_exit(Duration::from_secs(10)).is_some(),
        "chatd stops"
    );
    c.members[0].daemon = None;
    b.wait(
        Duration::from_secs(10),
        "document.body.dataset.conn === 'down'",
        "the page sees chatd go",
    );
    let missed: Vec<String> = (1..=3)
        .map(|n| format!("while you were away {n}"))
        .collect();
    for m in &missed {
        send(&c, 1, m);
    }
    c.restart(0, &[c.addr(1)]);
    b.wait(
        Duration::from_secs(30),
        "document.body.dataset.conn === 'up'",
        "the page reconnects",
    );
    for m in &missed {
        b.wait(
            Duration::from_secs(30),
            &format!(
                "document.getElementById('timeline').innerText.includes({})",
                json!(m)
            ),
            "a message sent while chatd was down",
        );
    }
    for m in missed.iter().chain([&hello, &from_page]) {
        assert_eq!(b.count_lines(m), 1, "{m:?} shown once");
    }

    // A page loaded anew shows the history as it now stands: edited, deleted.
    b.eval("window.before_reload = 1; location.reload(); true");
    b.wait(
        Duration::from_secs(30),
        "typeof window.before_reload === 'undefined' && document.body.dataset.conn === 'up'",
        "the page reloads and connects",
    );
    b.wait(
        Duration::from_secs(20),
        &edited_line(&changed.edited, &changed.text),
        "the edited message, marked, from the backlog",
    );
    b.wait(
        Duration::from_secs(20),
        &deleted_line(&changed.deleted),
        "the deleted message's placeholder, from the backlog",
    );

    // The screenshot in docs/ comes from here (CHATD_WEB_SCREENSHOT=PATH).
    if let Some(path) = std::env::var_os("CHATD_WEB_SCREENSHOT") {
        let shot = b.call("Page.captureScreenshot", json!({"format": "png"}));
        let png = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            shot["data"].as_str().expect("data"),
        )
        .expect("png");
        std::fs::write(path, png).expect("screenshot written");
    }
}

/// The next text frame, as JSON, within `limit`.
async fn next_json_within<S>(ws: &mut S, limit: Duration) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    loop {
        let m = tokio::time::timeout(limit, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).expect("json");
        }
    }
}

/// What [`changes`] changed: the id of the message edited and its new text, and the id of
/// the message deleted.
struct Changed {
    edited: String,
    text: String,
    deleted: String,
}

/// A JS test: the line of message `key` (an id; `dm:` and the id for a private one) reads
/// `text` and is marked edited.
fn edited_line(key: &str, text: &str) -> String {
    format!(
        "(() => {{ const li = [...document.querySelectorAll('#timeline li')].find(l => l.dataset.key === {}); \
         return !!li && li.querySelector('.text')?.textContent === {} && li.querySelector('.edited')?.textContent === '(edited)'; }})()",
        json!(key),
        json!(text)
    )
}

/// A JS test: the line of message `key` is the deleted placeholder, without its text.
fn deleted_line(key: &str) -> String {
    format!(
        "(() => {{ const li = [...document.querySelectorAll('#timeline li')].find(l => l.dataset.key === {}); \
         return !!li && li.querySelector('.gone')?.textContent === '(deleted)' && !li.querySelector('.text'); }})()",
        json!(key)
    )
}

/// The other node's user edits and deletes public messages with `chatctl edit`/`delete`, and
/// a private message to the page's account: the page changes each line in place — marked
/// edited, or a placeholder — and never shows a change as a line of its own.
fn changes(c: &Cluster, b: &mut Browser) -> Changed {
    use chat_proto::v1::private_service_client::PrivateServiceClient;
    use chat_proto::v1::{SendPrivateRequest, SendRequest};
    let sock = c.members[1].dir.join("run/control.sock");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let channel = rt.block_on(crate::client::unix(&sock));
    // `chatctl edit ID TEXT` / `chatctl delete ID` on the other node.
    let chatctl = |args: &[&str]| {
        let out = c.sandbox.chatctl_at(&sock, args);
        assert!(
            out.status.success(),
            "chatctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let mut chat = crate::client::chat(channel.clone());
    let pid = std::process::id();
    let (typo, fixed, regret) = (
        format!("a tpyo {pid}"),
        format!("fixed in place {pid} <b>still text</b>"),
        format!("regrettable {pid}"),
    );
    let mut sent = |text: &str| {
        rt.block_on(chat.send(SendRequest {
            room: "lobby".into(),
            text: text.into(),
            ..Default::default()
        }))
        .expect("send")
        .into_inner()
        .message
        .expect("the message sent")
        .id
    };
    let edited = sent(&typo);
    let deleted = sent(&regret);
    b.wait(
        Duration::from_secs(20),
        &format!(
            "document.getElementById('timeline').innerText.includes({}) && document.getElementById('timeline').innerText.includes({})",
            json!(typo),
            json!(regret)
        ),
        "the messages to change",
    );
    chatctl(&["edit", &edited, &fixed]);
    b.wait(
        Duration::from_secs(10),
        &edited_line(&edited, &fixed),
        "the edit, in place and marked",
    );
    assert_eq!(b.count_lines(&typo), 0, "the old text is gone");
    assert_eq!(
        b.count_lines(&fixed),
        1,
        "the edit is not a line of its own"
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#timeline b').length"),
        json!(0),
        "an edit's text is text"
    );
    chatctl(&["delete", &deleted]);
    b.wait(
        Duration::from_secs(10),
        &deleted_line(&deleted),
        "the delete's placeholder",
    );
    assert_eq!(
        b.eval(&format!(
            "document.getElementById('timeline').innerText.includes({})",
            json!(regret)
        )),
        json!(false),
        "the deleted text is gone"
    );

    // A private message to the page's account, edited and deleted by its sender.
    let mut private = PrivateServiceClient::new(channel);
    let dm = rt
        .block_on(private.send_private(SendPrivateRequest {
            to: "webber".into(),
            group_id: String::new(),
            text: format!("private tpyo {pid}"),
            accept_new_key: false,
            ..Default::default()
        }))
        .expect("send_private")
        .into_inner()
        .message
        .expect("the message sent")
        .id;
    let key = format!("dm:{dm}");
    b.wait(
        Duration::from_secs(20),
        &format!(
            "[...document.querySelectorAll('#timeline li')].some(l => l.dataset.key === {})",
            json!(key)
        ),
        "the private message to change",
    );
    let fixed_dm = format!("private, fixed {pid}");
    // Repeated as it is (as after a reconnect; handed to the page as if it came over its
    // WebSocket), it stays one line, not marked edited.
    let again = json!({"t": "pmsg", "id": dm, "from": "other", "to": "webber", "group": "",
        "text": format!("private tpyo {pid}"), "at": 0, "outgoing": false, "edited": 0,
        "deleted": false});
    b.eval(&format!(
        "onFrame({{data: {}}}); true",
        json!(again.to_string())
    ));
    assert_eq!(
        b.eval(&format!(
            "[...document.querySelectorAll('#timeline li')].filter(l => l.dataset.key === {} && !l.querySelector('.edited')).length",
            json!(key)
        )),
        json!(1),
        "a private message repeated unchanged is one line, not marked edited"
    );
    chatctl(&["edit", &dm, &fixed_dm]);
    b.wait(
        Duration::from_secs(20),
        &edited_line(&key, &fixed_dm),
        "the private edit, in place and marked",
    );
    chatctl(&["delete", &dm]);
    b.wait(
        Duration::from_secs(20),
        &deleted_line(&key),
        "the private delete's placeholder",
    );
    Changed {
        edited,
        text: fixed,
        deleted,
    }
}

/// `/metrics` parses, and its counters agree with `chatctl status --json`.
fn metrics(c: &Cluster, web: SocketAddr) {
    send(c, 0, "counted");
    let before = c.status(0).expect("status");
    let (code, head, body) = http(web, "/metrics", &[]);
    let after = c.status(0).expect("status");
    assert_eq!(code, 200, "{head}");
    assert!(head.contains("application/openmetrics-text"), "{head}");
    for name in [
        "chatd_messages_sent_total",
        "chatd_messages_received_total",
        "chatd_messages_forwarded_total",
        "chatd_deliveries_total",
        "chatd_ring_size_estimate",
        "chatd_ring_size_exact",
        "chatd_peers",
        "chatd_delivery_latency_seconds_bucket",
        "chatd_store_commit_seconds_bucket",
        "chatd_peer_rtt_seconds_bucket",
        "chatd_records_held",
        "chatd_mailbox_items",
        "chatd_subscribers",
        "chatd_users{presence=\"online\"}",
        "chatd_files_served_bytes_total",
        "chatd_files_fetched_bytes_total",
        "chatd_files_fetch_failures_total",
        "chatd_files_bad_providers_total",
        "chatd_files_released_total",
        "chatd_files_store_bytes",
        "chatd_files_store_quota_bytes",
    ] {
        assert!(body.contains(name), "{name} missing from /metrics:\n{body}");
    }
    // Every metric the dashboard and the alert rules in deploy/ use is exported.
    for file in ["grafana-dashboard.json", "prometheus-alerts.yml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../deploy")
            .join(file);
        let text = std::fs::read_to_string(&path).expect("deploy file");
        for (i, _) in text.match_indices("chatd_") {
            let name: String = text[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                body.contains(&name),
                "{file} uses {name}, which /metrics does not export"
            );
        }
    }
    let Some(samples) = parse_metrics(&body) else {
        skip_or_fail(
            "python3's prometheus_client is not installed (pip install prometheus_client): /metrics not parsed",
        );
        return;
    };
    let within = |metric: &str, field: &str| {
        let v = samples.get(metric).and_then(Value::as_f64).unwrap_or(-1.0);
        let (lo, hi) = (
            before[field].as_f64().unwrap_or(0.0),
            after[field].as_f64().unwrap_or(0.0),
        );
        assert!(
            lo <= v && v <= hi,
            "{metric} = {v}, status {field} {lo}..{hi}"
        );
    };
    within("chatd_messages_sent_total", "messages_sent");
    within("chatd_messages_received_total", "messages_received");
    within("chatd_messages_forwarded_total", "messages_forwarded");
    within("chatd_ring_size_estimate", "ring_size_estimate");
    within("chatd_records_held", "records_held");
    assert!(
        samples
            .get("chatd_messages_sent_total")
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
            >= 1.0
    );
}
