//! The web view against hostile clients: a cross-origin WebSocket, DNS rebinding, binary
//! and oversized frames, a forged session, a page that never says who it is, a read-only
//! page that sends, a flood of connections and one that never finishes its headers.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};

use super::{http, next_json_within};
use crate::cluster::poll;

/// Cross-origin, binary, oversized and unauthenticated WebSocket clients, and a flood.
pub(super) fn hostile(web: SocketAddr) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let url = format!("ws://{web}/ws");
        let mut req = url.as_str().into_client_request().expect("request");
        req.headers_mut()
            .insert("origin", "http://evil.example".parse().expect("header"));
        match tokio_tungstenite::connect_async(req).await {
            Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
            other => panic!(
                "a cross-origin WebSocket was not refused: {:?}",
                other.map(|_| ())
            ),
        }
        // A forged session on loopback: the page may read, not send, and is told to forget it.
        let (mut forged, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("connect");
        let auth = r#"{"t":"auth","session":"session.op.99999999999999.0000"}"#;
        forged.send(Message::Text(auth.into())).await.expect("send");
        let hello = next_json(&mut forged).await;
        assert_eq!(
            hello["can_send"], false,
            "a forged session may not send: {hello}"
        );
        assert_eq!(hello["expired"], true, "{hello}");
        drop(forged);
        // A page that never says who it is is closed.
        let (mut silent, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("connect");
        assert!(closes(&mut silent).await, "no auth frame: closed");
        // DNS rebinding: another host name for the loopback address gets nothing.
        let mut req = url.as_str().into_client_request().expect("request");
        req.headers_mut()
            .insert("host", "evil.example:80".parse().expect("header"));
        match tokio_tungstenite::connect_async(req).await {
            Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 421),
            other => panic!("a foreign Host was not refused: {:?}", other.map(|_| ())),
        }
        let bad = format!("ws://{web}/ws?after=not-an-id");
        assert!(
            tokio_tungstenite::connect_async(bad.as_str())
                .await
                .is_err()
        );

        // A reader without a session: it may read but not send.
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("connect");
        ws.send(Message::Text(r#"{"t":"auth"}"#.into()))
            .await
            .expect("send");
        let hello = next_json(&mut ws).await;
        assert_eq!(hello["t"], "hello");
        assert_eq!(hello["can_send"], false);
        ws.send(Message::Text(
            r#"{"t":"send","ref":7,"room":"lobby","text":"hi"}"#.into(),
        ))
        .await
        .expect("send");
        ws.send(Message::Text("{not json".into()))
            .await
            .expect("send");
        let (mut refused, mut malformed) = (false, false);
        for _ in 0..200 {
            let v = next_json(&mut ws).await;
            if v["t"] == "error" && v["ref"] == 7 {
                assert!(
                    v["message"].as_str().unwrap_or("").contains("chatctl web"),
                    "{v}"
                );
                refused = true;
            }
            if v["t"] == "error" && v["ref"] == 0 {
                malformed = true;
            }
            if refused && malformed {
                break;
            }
        }
        assert!(
            refused && malformed,
            "read-only send and malformed request answered"
        );
        // Oversized and binary frames end the connection.
        ws.send(Message::Text("x".repeat(64 * 1024).into()))
            .await
            .ok();
        assert!(
            closes(&mut ws).await,
            "an oversized frame closes the connection"
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .expect("connect");
        ws.send(Message::Text(r#"{"t":"auth"}"#.into()))
            .await
            .expect("send");
        ws.send(Message::Binary(vec![0u8; 10].into()))
            .await
            .expect("send");
        assert!(
            closes(&mut ws).await,
            "a binary frame closes the connection"
        );

        // A flood of connections: bounded, the rest closed at once, and the view still serves.
        let mut held = Vec::new();
        for _ in 0..200 {
            if let Ok(s) = tokio::net::TcpStream::connect(web).await {
                held.push(s);
            }
        }
        let mut closed = 0;
        for s in &mut held {
            let mut buf = [0u8; 1];
            if let Ok(Ok(0)) = tokio::time::timeout(
                Duration::from_millis(20),
                tokio::io::AsyncReadExt::read(s, &mut buf),
            )
            .await
            {
                closed += 1;
            }
        }
        assert!(
            closed >= 200 - chatd::web::MAX_CONNECTIONS,
            "connections over the bound are closed ({closed} of 200)"
        );
        drop(held);
        // A client that starts a request and never finishes its headers is cut off.
        let mut slow = tokio::net::TcpStream::connect(web).await.expect("connect");
        tokio::io::AsyncWriteExt::write_all(&mut slow, b"GET / HTTP/1.1\r\nHost: x")
            .await
            .expect("write");
        let mut buf = [0u8; 512];
        let cut = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match tokio::io::AsyncReadExt::read(&mut slow, &mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(
            cut.is_ok(),
            "a connection with unfinished headers stays open"
        );
    });
    let ok = poll(Duration::from_secs(10), Duration::from_millis(100), || {
        (http(web, "/healthz", &[]).0 == 200).then_some(())
    });
    assert!(ok.is_some(), "the web view serves again after the flood");
}

async fn next_json<S>(ws: &mut S) -> Value
where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    next_json_within(ws, Duration::from_secs(10)).await
}

/// Whether the server closes the connection (a close frame, or the end) within 10 s.
async fn closes<S>(ws: &mut S) -> bool
where
    S: futures_util::Stream<Item = Result<Message, tungstenite::Error>> + Unpin,
{
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return true,
            Ok(Some(Ok(_))) => continue,
            Err(_) => return false,
        }
    }
    false
}
