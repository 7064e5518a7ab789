//! Voice messages on the web page (issue 36), with real daemons on loopback.
//!
//! - Over plain HTTP and the WebSocket: the page's `hello` tells it the node's
//!   `voice.max_seconds` and whether it transcribes; `POST /files?voice=1` — the record
//!   button's send — is refused from another origin (403, even with the page's session), with
//!   no session (401) and with a forged one (401), each before a byte is stored.
//! - In headless Chromium with a fake microphone that plays a WAV espeak-ng spoke ("the
//!   meeting is moved to tuesday afternoon"): the logged-in page of node A records through
//!   its 🎙 button (clicked, a few seconds of recording waited for by the page's elapsed
//!   time, clicked again), uploads and sends it; node B's page shows the `🎤` line with an
//!   `<audio>` whose source answers 200 `audio/ogg` (fetched from the page, B fetching the
//!   file from A on demand) and which loads and plays in the page; `chatctl search tuesday`
//!   on B finds the message. Screenshots of both pages are written (their paths printed).
//!
//! The browser test needs chromium, espeak-ng, faster-whisper and the tiny model (as
//! `ring/voice.rs`); without them it skips with the reason, and fails under
//! `CHATD_TEST_STRICT=1`.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::files::{ctl, post, screenshot, session, store};
use super::{Browser, FORM, chromium, free_port};
use crate::cluster::{Cluster, poll, ws_hello};
use crate::support::skip_or_fail;

/// What the fake microphone says.
const SENTENCE: &str = "the meeting is moved to tuesday afternoon";
/// How long a message may take to reach another node.
const ARRIVE: Duration = Duration::from_secs(30);
/// How long the page records (its elapsed time, in ms).
const RECORD_MS: u64 = 4_500;

/// The `hello` frame node `web` sends a page that presents `session`.
fn hello(web: SocketAddr, session: &str) -> Value {
    ws_hello(web, json!({"t": "auth", "session": session}))
}

#[test]
fn the_pages_voice_send_needs_its_session_and_origin() {
    let mut c = Cluster::new(238);
    let web: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("addr");
    c.add_with_env(
        &[],
        &[
            ("CHATD_WEB__LISTEN", &web.to_string()),
            ("CHATD_VOICE__MAX_SECONDS", "7"),
        ],
    );
    c.add(&[c.addr(0)]);
    c.await_ring(FORM);
    let session = session(&c, 0, web);
    let h = hello(web, &session);
    assert_eq!(h["can_send"], true, "{h}");
    assert_eq!(h["voice"]["max_seconds"], 7, "{h}");
    assert_eq!(
        h["voice"]["transcribe"], false,
        "no voice.model_dir here: {h}"
    );

    // A recording's bytes (what the page would send; never stored here).
    let body = b"OggS\0\x02 not really a recording".to_vec();
    let len = body.len();
    let before = store(&c, 0);
    let path = "/files?room=lobby&name=voice.webm&voice=1";
    // Another site's page, even with the session: refused before a byte is read.
    let (code, text) = post(
        web,
        path,
        &[
            ("Origin", "http://evil.example"),
            ("X-Chatd-Session", &session),
        ],
        &body,
        len,
    );
    assert_eq!(code, 403, "{text}");
    assert!(text.contains("cross-origin"), "{text}");
    // No session: a reader may not send.
    let (code, text) = post(web, path, &[], &body, len);
    assert_eq!(code, 401, "{text}");
    assert!(text.contains("chatctl web"), "{text}");
    // A forged session.
    let (code, _) = post(
        web,
        path,
        &[
            ("Origin", &format!("http://{web}")),
            ("X-Chatd-Session", "session.op.1.00"),
        ],
        &body,
        len,
    );
    assert_eq!(code, 401);
    assert_eq!(
        store(&c, 0),
        before,
        "a refused voice send stored something"
    );
    let tail = ctl(&c, 0, &["tail", "-n", "20", "--json"]);
    assert!(
        !String::from_utf8_lossy(&tail.stdout).contains("🎤"),
        "a refused voice send was sent"
    );
}

/// The `🎤` line of the page (an expression for the page), if shown.
const VOICE_LINE: &str = "[...document.querySelectorAll('#timeline li')].find(li => li.querySelector('.text') && li.querySelector('.text').textContent.startsWith('🎤') && li.querySelector('audio'))";

#[test]
fn a_voice_message_recorded_on_the_page_plays_on_another_nodes_page_and_is_found() {
    let Some(bin) = chromium() else {
        skip_or_fail("chromium is not installed (apt install chromium): the web voice test");
        return;
    };
    let voice = match crate::voice::requirements() {
        Ok(v) => v,
        Err(reason) => return skip_or_fail(&reason),
    };
    let mut c = Cluster::new(239);
    let webs: Vec<SocketAddr> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()).parse().expect("addr"))
        .collect();
    let mut env: Vec<(&str, &str)> = voice.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let listen_a = webs[0].to_string();
    env.push(("CHATD_WEB__LISTEN", &listen_a));
    env.push(("CHATD_NODE__NICKNAME", "alice"));
    env.push(("CHATD_VOICE__MAX_SECONDS", "30"));
    c.add_with_env(&[], &env);
    c.add_with_env(
        &[c.addr(0)],
        &[
            ("CHATD_WEB__LISTEN", &webs[1].to_string()),
            ("CHATD_NODE__NICKNAME", "bob"),
        ],
    );
    c.await_ring(FORM);
    let wav = c.sandbox.path().join("meeting.wav");
    crate::voice::speak(SENTENCE, &wav);
    let shots = std::env::temp_dir().join(format!("chatd-web-voice-{}", std::process::id()));
    std::fs::create_dir_all(&shots).expect("screenshot dir");

    // A's page, logged in, with a fake microphone that plays the WAV.
    let link = c
        .json(&c.members[0].dir, &["web", "--json"])
        .expect("chatctl web");
    let mic = vec![
        "--use-fake-ui-for-media-stream".to_owned(),
        "--use-fake-device-for-media-stream".to_owned(),
        format!("--use-file-for-fake-audio-capture={}", wav.display()),
        "--autoplay-policy=no-user-gesture-required".to_owned(),
    ];
    let mut a = Browser::open_with(
        &bin,
        &c.sandbox.path().join("chromium-a"),
        link["url"].as_str().expect("url"),
        &mic,
    );
    let mut b = Browser::open_with(
        &bin,
        &c.sandbox.path().join("chromium-b"),
        &format!("http://{}/", webs[1]),
        &mic[3..],
    );
    for p in [&mut a, &mut b] {
        p.wait(
            Duration::from_secs(20),
            "document.body.dataset.conn === 'up'",
            "the page connects",
        );
    }
    a.wait(
        Duration::from_secs(10),
        "!document.getElementById('record').disabled",
        "the logged-in page may record",
    );
    assert_eq!(
        b.eval("document.getElementById('record').disabled"),
        Value::Bool(true),
        "a read-only page may not record"
    );

    // Record: click, wait for the page's elapsed time, click again.
    a.eval("document.getElementById('record').click(); true");
    a.wait(
        Duration::from_secs(20),
        &format!(
            "document.body.dataset.recording === 'on' && Number(document.getElementById('record').dataset.elapsed) >= {RECORD_MS}"
        ),
        "a few seconds of recording",
    );
    let shown = a.eval("document.getElementById('rec-time').textContent");
    assert!(
        shown.as_str().is_some_and(|t| t.starts_with("0:0")),
        "the elapsed time: {shown}"
    );
    screenshot(&mut a, &shots.join("a-recording.png"));
    let stop = Instant::now();
    a.eval("document.getElementById('record').click(); true");
    let hint = "document.getElementById('hint').textContent";
    a.wait(
        Duration::from_secs(180),
        &format!(
            "document.body.dataset.recording === undefined && document.getElementById('upload').hidden && {hint}.length > 0 && !{hint}.startsWith('Recording')"
        ),
        "the voice message sent",
    );
    let said = a.eval(hint);
    let said = said.as_str().unwrap_or("");
    assert!(said.starts_with("Sent the voice message (0:0"), "{said}");
    let sent_after = stop.elapsed();

    // B's page shows it with a player; its source is served as audio/ogg (B fetches it from
    // A), and it loads and plays in the page.
    b.wait(
        ARRIVE,
        &format!("!!{VOICE_LINE}"),
        "the voice message on B's page",
    );
    let shown_after = stop.elapsed();
    println!(
        "stop clicked → A's page says sent: {} ms (upload, conversion, transcription); → B's page shows it: {} ms",
        sent_after.as_millis(),
        shown_after.as_millis()
    );
    let text = b.eval(&format!("{VOICE_LINE}.querySelector('.text').textContent"));
    let text = text.as_str().unwrap_or("").to_owned();
    println!("B's page shows: {text}");
    let audio = format!("{VOICE_LINE}.querySelector('audio')");
    assert_eq!(
        b.eval(&format!("{audio}.preload")),
        "none",
        "the player loads nothing before play"
    );
    let src = b.eval(&format!("{audio}.getAttribute('src')"));
    assert!(
        src.as_str().is_some_and(|s| s.starts_with("/files/")),
        "{src}"
    );
    b.eval(&format!(
        "window.fetched = null; fetch({audio}.src).then(r => r.blob().then(x => {{ window.fetched = {{status: r.status, type: r.headers.get('content-type'), size: x.size}}; }})); true"
    ));
    b.wait(
        ARRIVE,
        "window.fetched !== null",
        "the player's source fetched",
    );
    let fetched = b.eval("window.fetched");
    assert_eq!(fetched["status"], 200, "{fetched}");
    assert_eq!(fetched["type"], "audio/ogg", "{fetched}");
    assert!(
        fetched["size"].as_u64().is_some_and(|n| n > 1000),
        "{fetched}"
    );
    b.eval(&format!("{audio}.play(); true"));
    b.wait(
        ARRIVE,
        &format!("{audio}.readyState >= 1 && {audio}.currentTime > 0.3 && !{audio}.error"),
        "the recording plays in B's page",
    );
    b.eval(&format!(
        "{audio}.pause(); {VOICE_LINE}.scrollIntoView({{block: 'center'}}); true"
    ));
    screenshot(&mut b, &shots.join("b-voice-message.png"));
    screenshot(&mut a, &shots.join("a-sent.png"));

    // What was heard: the transcript on the line; B's search finds the word.
    let heard = text.to_lowercase();
    assert!(
        heard.starts_with("🎤 0:0") && heard.contains('"'),
        "no transcript: {text}"
    );
    assert!(heard.contains("tuesday"), "the transcript: {text}");
    let id = b.eval(&format!("{VOICE_LINE}.dataset.key"));
    let id = id.as_str().expect("the message's id").to_owned();
    let hit = poll(ARRIVE, Duration::from_millis(300), || {
        let out = ctl(&c, 1, &["search", "--json", "tuesday"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|m| m["id"] == id.as_str())
    })
    .expect("B's search finds the voice message");
    assert_eq!(hit["attachment"]["media_type"], "audio/ogg", "{hit}");
    println!("B's search: {}", hit["voice"]["matches"]);
}
