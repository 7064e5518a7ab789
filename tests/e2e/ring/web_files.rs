//! Files on the web page, with real daemons on loopback.
//!
//! - Over plain HTTP: `/files/{hash}` serves a PNG inline as `image/png` and an HTML page and
//!   an SVG as attachments of opaque bytes, every one with `nosniff` and a sandboxing policy;
//!   an unknown hash is 404 with a body saying so, a malformed one 400; a node that does not
//!   hold a file fetches it from its providers and serves it byte-identical. `POST /files`
//!   refuses an upload without the page's session, a cross-origin one and one over
//!   `files.max_file_mb` (413, saying so), and a cut one, each leaving nothing in the store
//!   nor in its `tmp/`; one with the page's session is stored and sent to the room, and the
//!   other node shows it.
//! - In headless Chromium: a 2 MB PNG (noisy pixels) sent with `chatctl send --file` on node A
//!   shows on the page of each of 3 nodes — its thumbnail at once, the full image (fetched on
//!   demand by nodes B and C) on click, `naturalWidth` checked — with screenshots in one
//!   directory (its path is printed); and a file given to the page's button (the file input,
//!   as a person picking a file does) is uploaded with a progress bar and shows on the other
//!   nodes' pages.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Browser, FORM, chromium, free_port};
use crate::cluster::{Cluster, poll, ws_hello};
use crate::support::skip_or_fail;

/// How long a message may take to reach another node.
const ARRIVE: Duration = Duration::from_secs(30);
/// "Within a few seconds": the most a page may take to show the image.
const SHOWN: Duration = Duration::from_secs(10);

pub(super) fn ctl(c: &Cluster, i: usize, args: &[&str]) -> std::process::Output {
    c.sandbox
        .chatctl_at(&c.members[i].dir.join("run/control.sock"), args)
}

/// Sends `path` to the lobby from node `i`; the message's JSON.
fn send_file(c: &Cluster, i: usize, path: &Path) -> Value {
    let out = ctl(
        c,
        i,
        &["send", "--json", "--file", path.to_str().expect("utf-8")],
    );
    assert!(
        out.status.success(),
        "send --file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .next_back()
        .expect("the sent message as JSON")
}

/// Deterministic noise.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[2]
        })
        .collect()
}

/// A PNG of `w` × `h` noisy pixels (they do not compress: about 3 bytes a pixel).
pub(super) fn noisy_png(w: u32, h: u32, seed: u64) -> Vec<u8> {
    let px = noise((w * h * 3) as usize, seed);
    let img = image::RgbImage::from_raw(w, h, px).expect("pixels");
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encodes");
    out
}

/// The blobs of node `i`'s store (complete ones) and what its `tmp/` holds.
pub(super) fn store(c: &Cluster, i: usize) -> (usize, usize) {
    let blobs = c.members[i].dir.join("data/blobs");
    let count = |d: PathBuf, pred: &dyn Fn(&str) -> bool| {
        std::fs::read_dir(d)
            .map(|r| {
                r.filter_map(Result::ok)
                    .filter(|e| pred(&e.file_name().to_string_lossy()))
                    .count()
            })
            .unwrap_or(0)
    };
    (
        count(blobs.join("complete"), &|n| n.len() == 64),
        count(blobs.join("tmp"), &|_| true),
    )
}

/// The web view's session for node `i`'s `chatctl web` link (traded on `/ws` as a page does).
pub(super) fn session(c: &Cluster, i: usize, web: SocketAddr) -> String {
    let link = c
        .json(&c.members[i].dir, &["web", "--json"])
        .expect("chatctl web");
    session_from(web, link["url"].as_str().expect("url"))
}

/// The web view's session for the login link `url` (traded on `web`'s `/ws` as a page does).
pub(super) fn session_from(web: SocketAddr, url: &str) -> String {
    let ticket = url.split("#login=").nth(1).expect("a ticket");
    let hello = ws_hello(web, json!({"t": "auth", "ticket": ticket}));
    hello["session"].as_str().expect("a session").to_owned()
}

/// A raw `POST` of `body` announcing `length` bytes (sent whole only if it is its length);
/// returns (status, body).
pub(super) fn post(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    length: usize,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(40)))
        .expect("timeout");
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {length}\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let _ = s.write_all(body);
    if body.len() < length {
        // A cut upload: the connection ends before the announced length.
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_owned())
}

/// A raw `GET`; (status, head, body bytes).
pub(super) fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    get_with(addr, path, &[])
}

/// A raw `GET` with extra `headers`; (status, head in lower case, body bytes).
pub(super) fn get_with(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(40)))
        .expect("timeout");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut body = raw[end + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    (status, head, body)
}

/// A chunked body's bytes.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(String::from_utf8_lossy(&raw[..eol]).trim(), 16)
            .expect("a chunk size");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&raw[eol + 2..eol + 2 + n]);
        raw = &raw[eol + 2 + n + 2..];
    }
}

/// Whether message `id` with a file named `name` reached node `i` (its tail).
fn arrived(c: &Cluster, i: usize, name: &str) -> Option<Value> {
    let out = ctl(c, i, &["tail", "-n", "50", "--json"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|m| m["attachment"]["name"] == name)
}

#[test]
fn file_routes_serve_safely_and_uploads_need_the_pages_login() {
    let mut c = Cluster::new(211);
    let webs: Vec<SocketAddr> = (0..2)
        .map(|_| format!("127.0.0.1:{}", free_port()).parse().expect("addr"))
        .collect();
    c.add_with_env(
        &[],
        &[
            ("CHATD_WEB__LISTEN", &webs[0].to_string()),
            ("CHATD_FILES__MAX_FILE_MB", "1"),
            ("CHATD_FILES__STORE_MB", "64"),
        ],
    );
    c.add_with_env(&[c.addr(0)], &[("CHATD_WEB__LISTEN", &webs[1].to_string())]);
    c.await_ring(FORM);
    let dir = c.sandbox.path().join("files");
    std::fs::create_dir_all(&dir).expect("dir");

    // Files on node 0: a small PNG, an HTML page, an SVG, and opaque bytes (not fetched
    // automatically by node 1: not an image).
    let png = noisy_png(64, 48, 7);
    let html = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>".to_vec();
    let svg = b"<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"alert(1)\"/>".to_vec();
    let opaque = noise(300_000, 11);
    let mut hashes = Vec::new();
    for (name, bytes) in [
        ("photo.png", &png),
        ("page.html", &html),
        ("logo.svg", &svg),
        ("data.bin", &opaque),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, bytes).expect("write");
        let sent = send_file(&c, 0, &p);
        hashes.push(
            sent["attachment"]["hash"]
                .as_str()
                .expect("hash")
                .to_owned(),
        );
    }
    let q = |i: usize, name: &str| format!("/files/{}?name={name}", hashes[i]);

    let (code, head, body) = get(webs[0], &q(0, "photo.png"));
    assert_eq!(code, 200, "{head}");
    assert!(head.contains("content-type: image/png"), "{head}");
    assert!(head.contains("content-disposition: inline"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(head.contains("sandbox"), "{head}");
    assert_eq!(body, png, "the PNG's bytes");
    for (i, name) in [(1, "page.html"), (2, "logo.svg")] {
        let (code, head, body) = get(webs[0], &q(i, name));
        assert_eq!(code, 200, "{name}: {head}");
        assert!(
            head.contains("content-type: application/octet-stream"),
            "{name}: {head}"
        );
        assert!(
            head.contains(&format!(
                "content-disposition: attachment; filename=\"{name}\""
            )),
            "{name}: {head}"
        );
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        assert!(
            head.contains("content-security-policy: default-src 'none'")
                && head.contains("sandbox"),
            "{name}: {head}"
        );
        assert!(!body.is_empty());
    }
    let unknown = "ab".repeat(32);
    let (code, _, body) = get(webs[0], &format!("/files/{unknown}"));
    assert_eq!(code, 404);
    assert!(
        String::from_utf8_lossy(&body).contains("no such file"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (code, _, _) = get(webs[0], "/files/not-a-hash");
    assert_eq!(code, 400);
    // Node 1 does not hold the opaque file: it fetches it from node 0 and serves it whole.
    assert!(
        !c.members[1]
            .dir
            .join("data/blobs/complete")
            .join(&hashes[3])
            .exists(),
        "node 1 fetched a non-image by itself"
    );
    let (code, head, body) = get(webs[1], &q(3, "data.bin"));
    assert_eq!(code, 200, "{head}");
    assert!(head.contains("content-disposition: attachment"), "{head}");
    assert_eq!(
        body, opaque,
        "node 1 serves the fetched file byte-identical"
    );

    // Uploads.
    let session = session(&c, 0, webs[0]);
    let before = store(&c, 0);
    let small = b"minutes of the meeting\n".to_vec();
    let len = small.len();
    let page_origin = format!("http://{}", webs[0]);
    // No session: refused, nothing stored.
    let (code, body) = post(webs[0], "/files?name=a.txt", &[], &small, len);
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("chatctl web"), "{body}");
    // Another site's page, even with a session: refused before a byte is read.
    let (code, body) = post(
        webs[0],
        "/files?name=a.txt",
        &[
            ("Origin", "http://evil.example"),
            ("X-Chatd-Session", &session),
        ],
        &small,
        len,
    );
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("cross-origin"), "{body}");
    // A wrong session.
    let (code, _) = post(
        webs[0],
        "/files?name=a.txt",
        &[("X-Chatd-Session", "session.op.1.00")],
        &small,
        len,
    );
    assert_eq!(code, 401);
    // Over files.max_file_mb (1 MiB here): refused with the limit named.
    let big = noise(1_200_000, 5);
    let (code, body) = post(
        webs[0],
        "/files?name=big.bin",
        &[("Origin", &page_origin), ("X-Chatd-Session", &session)],
        &big,
        big.len(),
    );
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("files.max_file_mb"), "{body}");
    // Cut halfway: nothing kept.
    let (code, body) = post(
        webs[0],
        "/files?name=cut.bin",
        &[("Origin", &page_origin), ("X-Chatd-Session", &session)],
        &big[..300_000],
        900_000,
    );
    assert_ne!(code, 200, "{body}");
    poll(Duration::from_secs(10), Duration::from_millis(100), || {
        (store(&c, 0) == before).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "refused uploads left something: {:?} -> {:?}",
            before,
            store(&c, 0)
        )
    });
    // With the page's session: stored and sent; node 1 has it.
    let (code, body) = post(
        webs[0],
        "/files?room=lobby&name=minutes.txt&caption=the%20minutes",
        &[("Origin", &page_origin), ("X-Chatd-Session", &session)],
        &small,
        len,
    );
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["hash"], blake3::hash(&small).to_hex().as_str());
    let m = poll(ARRIVE, Duration::from_millis(200), || {
        arrived(&c, 1, "minutes.txt")
    })
    .expect("node 1 shows the uploaded file's message");
    assert_eq!(m["text"], "the minutes");
    assert_eq!(m["attachment"]["size"], len as u64);
    assert_eq!(store(&c, 0).0, before.0 + 1, "one blob more");
}

/// Waits for the image of message file `name` on a page: the thumbnail, then (clicked) the
/// full image of `width` pixels; returns the times from `since`.
fn shows(b: &mut Browser, name: &str, width: u32, since: Instant) -> (Duration, Duration) {
    let sel = format!(
        "[...document.querySelectorAll('#timeline .file')].find(f => f.querySelector('.download') && f.querySelector('.download').textContent.includes({}))",
        json!(name)
    );
    b.wait(
        SHOWN,
        &format!("(() => {{ const f = {sel}; const t = f && f.querySelector('img.thumb'); return !!t && t.complete && t.naturalWidth > 0; }})()"),
        &format!("the thumbnail of {name}"),
    );
    let thumb = since.elapsed();
    b.eval(&format!("{sel}.querySelector('img.thumb').click(); true"));
    b.wait(
        SHOWN,
        &format!("(() => {{ const i = {sel}.querySelector('img.full'); return !!i && i.complete && i.naturalWidth === {width}; }})()"),
        &format!("the full image of {name}"),
    );
    let shown = since.elapsed();
    // For the screenshot: the message's line at the top of the timeline.
    b.eval(&format!(
        "{sel}.closest('li').scrollIntoView({{block: 'start'}}); true"
    ));
    (thumb, shown)
}

pub(super) fn screenshot(b: &mut Browser, path: &Path) {
    let shot = b.call("Page.captureScreenshot", json!({"format": "png"}));
    let png = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        shot["data"].as_str().expect("data"),
    )
    .expect("png");
    std::fs::write(path, png).expect("screenshot written");
    println!("screenshot: {}", path.display());
}

#[test]
fn a_2mb_png_shows_on_every_nodes_page_and_the_pages_button_uploads() {
    let Some(bin) = chromium() else {
        skip_or_fail("chromium is not installed (apt install chromium): the web files test");
        return;
    };
    let mut c = Cluster::new(212);
    let webs: Vec<SocketAddr> = (0..3)
        .map(|_| format!("127.0.0.1:{}", free_port()).parse().expect("addr"))
        .collect();
    for (i, w) in webs.iter().enumerate() {
        let boot = if i == 0 { vec![] } else { vec![c.addr(0)] };
        let nick = format!("web{i}");
        c.add_with_env(
            &boot,
            &[
                ("CHATD_WEB__LISTEN", &w.to_string()),
                ("CHATD_NODE__NICKNAME", &nick),
            ],
        );
    }
    c.await_ring(FORM);
    let shots = std::env::temp_dir().join(format!("chatd-web-files-{}", std::process::id()));
    std::fs::create_dir_all(&shots).expect("screenshot dir");
    println!("screenshots in {}", shots.display());

    // Node 0's page logs in (for the upload); the others read.
    let link = c
        .json(&c.members[0].dir, &["web", "--json"])
        .expect("chatctl web");
    let mut pages: Vec<Browser> = Vec::new();
    for (i, w) in webs.iter().enumerate() {
        let url = if i == 0 {
            link["url"].as_str().expect("url").to_owned()
        } else {
            format!("http://{w}/")
        };
        let mut b = Browser::open(&bin, &c.sandbox.path().join(format!("chromium-{i}")), &url);
        b.wait(
            Duration::from_secs(20),
            "document.body.dataset.conn === 'up'",
            "the page connects",
        );
        pages.push(b);
    }
    pages[0].wait(
        Duration::from_secs(10),
        "!document.getElementById('attach').disabled",
        "the logged-in page may send files",
    );

    // A 2 MB PNG of noise, sent from node 0 with chatctl.
    let (w, h) = (840, 840);
    let png = noisy_png(w, h, 42);
    assert!(png.len() >= 2_000_000, "{} bytes", png.len());
    let path = c.sandbox.path().join("noise.png");
    std::fs::write(&path, &png).expect("write");
    let start = Instant::now();
    send_file(&c, 0, &path);
    for (i, b) in pages.iter_mut().enumerate() {
        let (thumb, full) = shows(b, "noise.png", w, start);
        println!(
            "node {i}: thumbnail shown after {} ms, full {}×{} image after {} ms",
            thumb.as_millis(),
            w,
            h,
            full.as_millis()
        );
        screenshot(b, &shots.join(format!("node{i}-2mb-png.png")));
    }

    // The page's button: a file picked in its file input is uploaded with the caption typed.
    let picked = c.sandbox.path().join("picked.png");
    // Over 2 MB too: the upload is streamed, with no body limit below files.max_file_mb.
    let small = noisy_png(900, 900, 9);
    assert!(small.len() > 2 << 20, "{} bytes", small.len());
    std::fs::write(&picked, &small).expect("write");
    let b = &mut pages[0];
    b.eval("document.getElementById('text').value = 'from the button'; true");
    let doc = b.call("DOM.getDocument", json!({}));
    let input = b.call(
        "DOM.querySelector",
        json!({"nodeId": doc["root"]["nodeId"], "selector": "#file"}),
    );
    b.call(
        "DOM.setFileInputFiles",
        json!({"files": [picked.to_str().expect("utf-8")], "nodeId": input["nodeId"]}),
    );
    b.wait(
        Duration::from_secs(20),
        "document.getElementById('hint').textContent === 'Sent picked.png.'",
        "the upload from the button",
    );
    let start = Instant::now();
    for (i, page) in pages.iter_mut().enumerate().skip(1) {
        let m = poll(ARRIVE, Duration::from_millis(200), || {
            arrived(&c, i, "picked.png")
        })
        .expect("the uploaded file's message arrives");
        assert_eq!(m["text"], "from the button");
        assert_eq!(
            m["attachment"]["hash"],
            blake3::hash(&small).to_hex().as_str()
        );
        let (thumb, full) = shows(page, "picked.png", 900, start);
        println!(
            "node {i}: the uploaded image's thumbnail after {} ms, full after {} ms",
            thumb.as_millis(),
            full.as_millis()
        );
        screenshot(page, &shots.join(format!("node{i}-uploaded.png")));
    }
}
