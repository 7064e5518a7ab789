//! The chat API through a gRPC client: status codes for bad input, rate limits, health while
//! not joined, a slow subscriber, and TCP access with a bearer token.

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use chat_proto::v1::{HistoryRequest, SendRequest, SubscribeRequest, subscribe_response};
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::client;
use crate::support::{Sandbox, wait_until};

const DEADLINE: Duration = Duration::from_secs(30);

fn send(room: &str, text: &str) -> SendRequest {
    SendRequest {
        room: room.into(),
        text: text.into(),
        ..Default::default()
    }
}

async fn code_and_message<T>(r: Result<T, tonic::Status>) -> (Code, String) {
    match r {
        Ok(_) => (Code::Ok, String::new()),
        Err(s) => (s.code(), s.message().to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_the_right_codes_naming_the_field() {
    let sandbox = Sandbox::new();
    sandbox.write_config("[control]\nsend_rate = 0.001\nsend_burst = 3\n");
    let _daemon = sandbox.start(sandbox.chatd(), &sandbox.socket());
    let mut api = client::chat(client::unix(&sandbox.socket()).await);

    let long = "x".repeat(4097);
    let cases: Vec<(SendRequest, &str)> = vec![
        (send("", ""), "text: "),
        (send("", " \n "), "text: "),
        (send("", &long), "text: is 4097 bytes"),
        (send("No Such", "hi"), "room: "),
        (send(&"r".repeat(65), "hi"), "room: "),
    ];
    for (request, prefix) in cases {
        let (code, message) = code_and_message(api.send(request.clone()).await).await;
        assert_eq!(code, Code::InvalidArgument, "{request:?}: {message}");
        assert!(message.starts_with(prefix), "{request:?}: {message}");
    }
    let (code, message) = code_and_message(
        api.subscribe(SubscribeRequest {
            resume_after_id: "not-hex".into(),
            ..Default::default()
        })
        .await,
    )
    .await;
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.starts_with("resume_after_id: "), "{message}");
    let (code, message) = code_and_message(
        api.subscribe(SubscribeRequest {
            resume_after_id: "ab".repeat(32),
            ..Default::default()
        })
        .await,
    )
    .await;
    assert_eq!(code, Code::NotFound, "{message}");
    let (code, message) = code_and_message(
        api.history(HistoryRequest {
            limit: 5000,
            ..Default::default()
        })
        .await,
    )
    .await;
    assert_eq!(
        (code, message.starts_with("limit: ")),
        (Code::InvalidArgument, true),
        "{message}"
    );

    // Three sends fit the burst; the fourth is rate-limited.
    for i in 0..3 {
        api.send(send("", &format!("m{i}")))
            .await
            .expect("within the burst");
    }
    let (code, message) = code_and_message(api.send(send("", "one too many")).await).await;
    assert_eq!(code, Code::ResourceExhausted, "{message}");
    let history = api
        .history(HistoryRequest::default())
        .await
        .expect("history")
        .into_inner();
    // The history also holds the node user's "joined" event line.
    let texts = history
        .messages
        .iter()
        .filter(|m| m.kind == chat_proto::v1::MessageKind::Text as i32)
        .count();
    assert_eq!(texts, 3, "refused sends stored nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_joined_means_not_serving_and_unavailable() {
    let sandbox = Sandbox::new();
    // A bootstrap peer that never answers: the node cannot join.
    let mut cmd = sandbox.chatd();
    cmd.args(["--bootstrap", "127.0.0.1:9"]);
    let _daemon = sandbox.start(cmd, &sandbox.socket());
    let channel = client::unix(&sandbox.socket()).await;
    let mut health = HealthClient::new(channel.clone());
    for service in ["", "chat.v1.ChatService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health answers")
            .into_inner()
            .status;
        assert_eq!(status, 2, "NOT_SERVING for {service:?}");
    }
    let (code, message) =
        code_and_message(client::chat(channel).send(send("", "hello?")).await).await;
    assert_eq!(code, Code::Unavailable, "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_founding_node_is_serving_and_reflects_its_services() {
    let sandbox = Sandbox::new();
    let _daemon = sandbox.start(sandbox.chatd(), &sandbox.socket());
    let channel = client::unix(&sandbox.socket()).await;
    let mut health = HealthClient::new(channel);
    let status = health
        .check(HealthCheckRequest { service: "".into() })
        .await
        .expect("health")
        .into_inner()
        .status;
    assert_eq!(status, 1, "SERVING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_lags_without_slowing_anyone() {
    const COUNT: usize = 300;
    let sandbox = Sandbox::new();
    sandbox.write_config(
        "[control]\nsend_rate = 100000\nsend_burst = 100000\n[chat]\nsubscriber_queue = 8\n",
    );
    let socket = sandbox.socket();
    let _daemon = sandbox.start(sandbox.chatd(), &socket);

    // The slow subscriber opens its stream and then reads nothing.
    let mut slow_api = client::chat(client::unix(&socket).await);
    let mut slow = slow_api
        .subscribe(SubscribeRequest::default())
        .await
        .expect("subscribe")
        .into_inner();
    // A fast subscriber (chatctl) follows along; its backlog covers a late start.
    let mut fast = sandbox
        .chatctl()
        .arg("--socket")
        .arg(&socket)
        .args(["tail", "-f", "-n", "1000", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("tail");
    let fast_out = fast.stdout.take().expect("stdout");
    let fast_lines = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(fast_out)
            .lines()
            .map_while(Result::ok)
            .take(COUNT)
            .count()
    });
    let text = "y".repeat(4000);
    let input: String = (0..COUNT).map(|i| format!("{i} {text}\n")).collect();
    let mut sender = sandbox
        .chatctl()
        .arg("--socket")
        .arg(&socket)
        .arg("send")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("send");
    let mut stdin = sender.stdin.take().expect("stdin");
    std::io::Write::write_all(&mut stdin, input.as_bytes()).expect("write");
    drop(stdin);
    let mut done = None;
    assert!(
        wait_until(DEADLINE, || {
            done = sender.try_wait().expect("try_wait");
            done.is_some()
        }),
        "sending is never blocked by the subscriber that does not read"
    );
    assert!(done.is_some_and(|s| s.success()));

    // Now the slow one reads: some messages, then Lagged naming the last one it got.
    let mut delivered = Vec::new();
    let resume = loop {
        let event = tokio::time::timeout(DEADLINE, slow.message())
            .await
            .expect("event in time")
            .expect("stream ok")
            .expect("Lagged comes before the end");
        match event.event {
            Some(subscribe_response::Event::Message(m)) => delivered.push(m.id),
            Some(subscribe_response::Event::Lagged(lag)) => {
                assert!(lag.missed > 0);
                break lag.resume_after_id;
            }
            None => panic!("empty event"),
        }
    };
    assert!(delivered.len() < COUNT, "it did fall behind");
    assert_eq!(
        Some(&resume),
        delivered.last(),
        "resume after the last delivered"
    );
    assert!(
        slow.message().await.expect("clean end").is_none(),
        "stream ends"
    );

    // Resuming gets exactly the rest.
    let mut rest = slow_api
        .subscribe(SubscribeRequest {
            resume_after_id: resume,
            ..Default::default()
        })
        .await
        .expect("resume")
        .into_inner();
    while delivered.len() < COUNT {
        let event = tokio::time::timeout(DEADLINE, rest.message())
            .await
            .expect("event in time")
            .expect("stream ok")
            .expect("open");
        if let Some(subscribe_response::Event::Message(m)) = event.event {
            delivered.push(m.id);
        }
    }
    let unique: HashSet<_> = delivered.iter().collect();
    assert_eq!(unique.len(), COUNT, "every message exactly once");
    assert!(
        wait_until(DEADLINE, || fast_lines.is_finished()),
        "the reading subscriber got everything meanwhile"
    );
    assert_eq!(fast_lines.join().expect("reader"), COUNT);
    let _ = fast.kill();
    let _ = fast.wait();
}

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_requires_the_bearer_token() {
    let sandbox = Sandbox::new();
    let token_file = sandbox.path().join("token");
    std::fs::write(&token_file, "correct-horse-battery-staple\n").expect("token");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let addr = free_port();
    sandbox.write_config(&format!(
        "[control]\ntcp_listen = \"{addr}\"\ntoken_file = \"{}\"\n",
        token_file.display()
    ));
    let out = sandbox.run(sandbox.chatd());
    assert_eq!(
        out.status.code(),
        Some(78),
        "a group-readable token file is refused"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("control.token_file") && err.contains("chmod 600"),
        "{err}"
    );

    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let _daemon = sandbox.start(sandbox.chatd(), &sandbox.socket());
    assert!(
        wait_until(DEADLINE, || std::net::TcpStream::connect(addr).is_ok()),
        "TCP listener up"
    );
    let channel = client::tcp(addr).await;
    let (code, message) = code_and_message(
        client::chat_with(channel.clone(), None)
            .send(send("", "no token"))
            .await,
    )
    .await;
    assert_eq!(code, Code::Unauthenticated, "{message}");
    let (code, _) = code_and_message(
        client::chat_with(channel.clone(), Some("wrong-token-wrong-token"))
            .send(send("", "wrong token"))
            .await,
    )
    .await;
    assert_eq!(code, Code::Unauthenticated);
    let sent = client::chat_with(channel.clone(), Some("correct-horse-battery-staple"))
        .send(send("", "right token"))
        .await
        .expect("accepted with the token")
        .into_inner();
    assert_eq!(sent.message.expect("message").text, "right token");
    // The token's holder is a guest: an account of its own, shown as `*nick` everywhere —
    // in the user list and on its messages (once its profile has spread).
    let socket = sandbox.socket();
    let guest_seen = wait_until(Duration::from_secs(30), || {
        let out = sandbox.chatctl_at(&socket, &["users", "--json"]);
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&out.stdout) else {
            return false;
        };
        v["users"].as_array().is_some_and(|us| {
            us.iter()
                .any(|u| u["nickname"] == "*guest" && u["guest"] == true && u["self"] == false)
        })
    });
    assert!(guest_seen, "the guest is not listed as *guest");
    let history = client::chat(client::unix(&socket).await)
        .history(HistoryRequest::default())
        .await
        .expect("history")
        .into_inner();
    let from: Vec<&str> = history
        .messages
        .iter()
        .filter(|m| m.text == "right token")
        .map(|m| m.from.as_str())
        .collect();
    assert_eq!(from, ["*guest"]);
    // chatctl reaches the same node over TCP with the token, as its guest.
    let remote = |file: &std::path::Path, args: &[&str]| {
        sandbox
            .chatctl()
            .arg("--remote")
            .arg(addr.to_string())
            .arg("--token-file")
            .arg(file)
            .args(args)
            .output()
            .expect("chatctl runs")
    };
    let out = remote(&token_file, &["send", "via chatctl over TCP"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = remote(&token_file, &["tail", "-n", "5", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("via chatctl over TCP") && l.contains("\"from\":\"*guest\"")),
        "{text}"
    );
    let wrong = sandbox.path().join("wrong-token");
    std::fs::write(&wrong, "not-the-token-at-all\n").expect("write");
    let out = remote(&wrong, &["status"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "a wrong token is chatd's refusal"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("token"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = sandbox
        .chatctl()
        .args(["--remote", &addr.to_string(), "status"])
        .output()
        .expect("chatctl runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token-file"));
    // Repeated failures from one address are cut off, even with the right token afterwards.
    let mut limited = false;
    for _ in 0..10 {
        let (code, _) = code_and_message(
            client::chat_with(channel.clone(), Some("guess-guess-guess-guess"))
                .send(send("", "guess"))
                .await,
        )
        .await;
        if code == Code::ResourceExhausted {
            limited = true;
            break;
        }
        assert_eq!(code, Code::Unauthenticated);
    }
    assert!(limited, "failures are rate-limited per address");
}
