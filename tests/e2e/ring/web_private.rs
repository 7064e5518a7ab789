//! Private files and voice messages on the web page, with real daemons on loopback.
//!
//! Alice sends Bob a private voice message (`chatctl dm bob --voice WAV`, espeak-ng's
//! "the meeting is moved to tuesday afternoon") and a private PNG (`dm bob --file`). In
//! headless Chromium, Bob's logged-in page shows the `🎤` line with an `<audio
//! preload="none">` whose source, `/private-files/{id}`, answers the page's session with the
//! decrypted Ogg/Opus (`audio/ogg`, `no-store`, the size and bytes `chatctl get` gives) and
//! which loads and plays in the page (its `duration` the message's); the image shows small
//! (decoded: `naturalWidth`) and full size on click. A screenshot is written (its path
//! printed).
//!
//! The hostile side, over plain HTTP: no session (401), Carol's page session presented to
//! Bob's node (401: a session of another node), Carol's session on her own node, and a
//! page session of another account on Bob's node (a token guest) — each 404 in the very words
//! an unknown id gets, so nothing says the message exists; another site's `Origin` or
//! `Sec-Fetch-Site` with Bob's own session (403); a malformed id (400). What the ciphertext's
//! holders serve at `/files/{hash}` — Bob's node and Carol's, which fetches it on demand — is
//! the ciphertext, never the plaintext.
//!
//! Needs chromium and what `voice.rs` needs (espeak-ng, faster-whisper, the tiny model);
//! without them it skips with the reason, and fails under `CHATD_TEST_STRICT=1`.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use super::files::{get, get_with, noisy_png, screenshot, session, session_from};
use super::{Browser, FORM, chromium, free_port};
use crate::cluster::{Cluster, Guest, poll};
use crate::support::skip_or_fail;
use crate::voice::{SENTENCE, ctl, lines, requirements, speak};

const ALICE: usize = 0;
const BOB: usize = 1;
const CAROL: usize = 2;
/// How long a message or a page's action may take.
const ARRIVE: Duration = Duration::from_secs(60);
const TOKEN: &str = "web-private-guest-token-0123456789";

/// The page's line of private message `id` (an expression for the page).
fn line(id: &str) -> String {
    format!("document.querySelector('#timeline li[data-key=\"dm:{id}\"]')")
}

/// The value of header `name` in a lower-cased response head.
fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}: ")))
        .unwrap_or("")
        .trim()
}

/// What the page's own fetch of `url` with its session answered (status, type, size, the
/// first 4 bytes as text, `Cache-Control`).
fn page_fetch(b: &mut Browser, url: &str) -> Value {
    b.eval(&format!(
        "window.fetched = null; fetch({url:?}, {{headers: {{'X-Chatd-Session': localStorage.getItem('chatd.session')}}}}).then(r => r.arrayBuffer().then(x => {{ window.fetched = {{status: r.status, type: r.headers.get('content-type'), size: x.byteLength, head: String.fromCharCode(...new Uint8Array(x.slice(0, 4))), cache: r.headers.get('cache-control')}}; }})); true"
    ));
    b.wait(ARRIVE, "window.fetched !== null", "the page's fetch");
    b.eval("window.fetched")
}

#[test]
fn private_voice_and_image_show_on_the_recipients_page_and_nobody_elses() {
    let Some(bin) = chromium() else {
        skip_or_fail("chromium is not installed (apt install chromium): the private web test");
        return;
    };
    let voice = match requirements() {
        Ok(v) => v,
        Err(reason) => return skip_or_fail(&reason),
    };
    let guest = Guest::new("127.0.241.40", TOKEN);
    let webs: Vec<SocketAddr> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()).parse().expect("addr"))
        .collect();
    let c = Cluster::named_with_env(241, &["alice", "bob", "carol"], FORM, |i| {
        let mut env: Vec<(String, String)> = Vec::new();
        match i {
            ALICE => env.extend(voice.iter().map(|(k, v)| ((*k).to_owned(), v.clone()))),
            BOB => {
                env.push(("CHATD_WEB__LISTEN".into(), webs[0].to_string()));
                // A guest account on Bob's node: another account than Bob's.
                env.extend(guest.env());
            }
            _ => env.push(("CHATD_WEB__LISTEN".into(), webs[1].to_string())),
        }
        env
    });
    let (bob_web, carol_web) = (webs[0], webs[1]);

    // Alice sends Bob a voice message and an image, privately.
    let wav = c.members[ALICE].dir.join("meeting.wav");
    speak(SENTENCE, &wav);
    let v = c.ctl_json(
        ALICE,
        &[
            "dm",
            "--json",
            "bob",
            "--voice",
            wav.to_str().expect("UTF-8"),
        ],
    );
    let vid = v["id"].as_str().expect("id").to_owned();
    let ogg_size = v["file"]["size"].as_u64().expect("size");
    let ogg_cipher = v["file"]["hash"].as_str().expect("hash").to_owned();
    let duration_ms = v["voice"]["duration_ms"].as_u64().expect("duration");
    let png = noisy_png(320, 240, 41);
    let png_path = c.members[ALICE].dir.join("photo.png");
    std::fs::write(&png_path, &png).expect("png");
    let p = c.dm_file(ALICE, "bob", &png_path, &[]);
    let pid = p["id"].as_str().expect("id").to_owned();
    let png_cipher = p["file"]["hash"].as_str().expect("hash").to_owned();
    poll(ARRIVE, Duration::from_millis(300), || {
        let got = lines(&ctl(&c, BOB, &["dms", "-n", "50", "--json"]));
        let has = |id: &str| got.iter().any(|m| m["id"] == id);
        (has(&vid) && has(&pid)).then_some(())
    })
    .expect("bob gets both private messages");

    // Bob's logged-in page.
    let link = c
        .json(&c.members[BOB].dir, &["web", "--json"])
        .expect("chatctl web");
    let mut b = Browser::open_with(
        &bin,
        &c.sandbox.path().join("chromium-bob"),
        link["url"].as_str().expect("url"),
        &["--autoplay-policy=no-user-gesture-required".to_owned()],
    );
    b.wait(
        Duration::from_secs(20),
        "document.body.dataset.conn === 'up'",
        "bob's page connects",
    );
    let audio = format!("{}.querySelector('audio')", line(&vid));
    b.wait(
        ARRIVE,
        &format!("!!{} && !!{audio}", line(&vid)),
        "the private voice message with a player on bob's page",
    );
    let text = b.eval(&format!(
        "{}.querySelector('.text').textContent",
        line(&vid)
    ));
    assert!(
        text.as_str()
            .is_some_and(|t| t.starts_with("🎤 0:0") && t.to_lowercase().contains("tuesday")),
        "{text}"
    );
    assert_eq!(b.eval(&format!("{audio}.preload")), "none");
    let src = format!("/private-files/{vid}");
    assert_eq!(
        b.eval(&format!("{audio}.getAttribute('src')")),
        src.as_str()
    );
    let fetched = page_fetch(&mut b, &src);
    assert_eq!(fetched["status"], 200, "{fetched}");
    assert_eq!(fetched["type"], "audio/ogg", "{fetched}");
    assert_eq!(fetched["size"], ogg_size, "{fetched}");
    assert_eq!(fetched["head"], "OggS", "{fetched}");
    assert_eq!(fetched["cache"], "no-store", "{fetched}");
    b.eval(&format!("{audio}.play(); true"));
    b.wait(
        ARRIVE,
        &format!("{audio}.readyState >= 1 && {audio}.currentTime > 0.3 && !{audio}.error"),
        "the private recording plays in bob's page",
    );
    let played = b.eval(&format!("{audio}.duration")).as_f64().unwrap_or(0.0);
    assert!(
        (played - duration_ms as f64 / 1000.0).abs() < 0.6,
        "the player's duration {played} s, the message's {duration_ms} ms"
    );
    b.eval(&format!("{audio}.pause(); true"));

    // The image: decrypted and shown small, full size on click.
    let thumb = format!("{}.querySelector('img.thumb')", line(&pid));
    b.wait(
        ARRIVE,
        &format!("!!{thumb} && {thumb}.naturalWidth === 320 && !{thumb}.hidden"),
        "the private image on bob's page",
    );
    b.eval(&format!("{thumb}.click(); true"));
    let full = format!("{}.querySelector('img.full')", line(&pid));
    b.wait(
        ARRIVE,
        &format!("!!{full} && {full}.complete && {full}.naturalWidth === 320"),
        "the private image full size",
    );
    let shots = std::env::temp_dir().join(format!("chatd-web-private-{}", std::process::id()));
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    b.eval(&format!(
        "{}.scrollIntoView({{block: 'center'}}); true",
        line(&vid)
    ));
    screenshot(&mut b, &shots.join("bob-private.png"));

    // The same bytes over plain HTTP with Bob's session: what `chatctl get` decrypts.
    let bob = session(&c, BOB, bob_web);
    let (code, head, body) = get_with(bob_web, &src, &[("X-Chatd-Session", &bob)]);
    assert_eq!(code, 200, "{head}");
    let out = c.members[BOB].dir.join("got.ogg");
    let got = ctl(&c, BOB, &["get", &vid, "-o", out.to_str().expect("utf-8")]);
    assert!(got.status.success(), "{got:?}");
    let plain_ogg = std::fs::read(&out).expect("chatctl get's file");
    assert_eq!(
        body, plain_ogg,
        "the page's bytes are not what chatctl get gives"
    );
    assert_eq!(header(&head, "content-type"), "audio/ogg", "{head}");
    assert!(
        header(&head, "content-disposition").starts_with("attachment"),
        "{head}"
    );
    assert_eq!(header(&head, "x-content-type-options"), "nosniff", "{head}");
    assert!(
        header(&head, "content-security-policy").contains("sandbox"),
        "{head}"
    );
    assert_eq!(
        header(&head, "cross-origin-resource-policy"),
        "same-origin",
        "{head}"
    );
    assert_eq!(header(&head, "cache-control"), "no-store", "{head}");
    let image = format!("/private-files/{pid}");
    let (code, head, body) = get_with(bob_web, &image, &[("X-Chatd-Session", &bob)]);
    assert_eq!(
        (code, header(&head, "content-type")),
        (200, "image/png"),
        "{head}"
    );
    assert!(
        header(&head, "content-disposition").starts_with("inline"),
        "{head}"
    );
    assert_eq!(body, png, "the private image's bytes");

    // Nobody else: no session, a session of another node, another account here or there —
    // and for those, the words of an unknown id.
    let (code, _, body) = get(bob_web, &src);
    assert_eq!(code, 401);
    let said = String::from_utf8_lossy(&body).into_owned();
    assert!(
        said.contains("chatctl web") && !said.contains("OggS"),
        "{said}"
    );
    let carol = session(&c, CAROL, carol_web);
    let (code, _, _) = get_with(bob_web, &src, &[("X-Chatd-Session", &carol)]);
    assert_eq!(code, 401, "carol's session (another node's) at bob's node");
    let unknown = "0".repeat(32);
    let words = |web: SocketAddr, session: &str, id: &str| {
        let (code, _, body) = get_with(
            web,
            &format!("/private-files/{id}"),
            &[("X-Chatd-Session", session)],
        );
        (code, String::from_utf8_lossy(&body).replace(id, "ID"))
    };
    let nothing = words(bob_web, &bob, &unknown);
    assert_eq!(nothing.0, 404, "{nothing:?}");
    assert_eq!(
        words(carol_web, &carol, &vid),
        nothing,
        "carol's page on her node"
    );
    assert_eq!(words(carol_web, &carol, &unknown), nothing);
    let guest_link = guest.ctl(&c, &["web", "--json"]);
    assert!(guest_link.status.success(), "{guest_link:?}");
    let guest_url = lines(&guest_link)
        .pop()
        .and_then(|l| l["url"].as_str().map(str::to_owned))
        .expect("the guest's link");
    let other = session_from(bob_web, &guest_url);
    assert_ne!(other, bob);
    for id in [&vid, &pid] {
        assert_eq!(
            words(bob_web, &other, id),
            nothing,
            "another account on bob's node"
        );
    }
    // Bob's own session from another site's page: refused before any look-up.
    for h in [
        ("Origin", "http://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let (code, _, body) = get_with(bob_web, &src, &[("X-Chatd-Session", &bob), h]);
        assert_eq!(code, 403, "{h:?}");
        assert!(!String::from_utf8_lossy(&body).contains("OggS"));
    }
    let (code, _, _) = get_with(
        bob_web,
        "/private-files/not-an-id",
        &[("X-Chatd-Session", &bob)],
    );
    assert_eq!(code, 400);

    // The ciphertext's holders serve ciphertext: Bob's node, and Carol's once it fetched it.
    for (hash, plain, magic) in [
        (&ogg_cipher, &plain_ogg, &b"OggS"[..]),
        (&png_cipher, &png, &b"\x89PNG"[..]),
    ] {
        let mut seen = Vec::new();
        for web in [bob_web, carol_web] {
            let (code, head, body) = get(web, &format!("/files/{hash}"));
            assert_eq!(code, 200, "{web}: {head}");
            assert_eq!(
                header(&head, "content-type"),
                "application/octet-stream",
                "{head}"
            );
            assert!(
                !body.starts_with(magic) && body != *plain,
                "plaintext at /files/"
            );
            assert!(
                !body
                    .windows(64)
                    .any(|w| plain.windows(64).next() == Some(w)),
                "the plaintext's first bytes in what {web} serves"
            );
            seen.push(body);
        }
        assert_eq!(seen[0], seen[1], "both holders serve the same ciphertext");
    }
    println!("screenshot: {}", shots.join("bob-private.png").display());
}
