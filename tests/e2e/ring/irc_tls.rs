//! The IRC front door over TLS (`irc.tls_cert`, `irc.tls_key`): a rustls client that trusts
//! the test's self-signed certificate registers, joins `#lobby` and gets a message from a
//! `chatctl` user on another node; a plain-text client gets nothing from the TLS port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{ARRIVE, FORM, free_addr, password};
use crate::cluster::Cluster;

/// PEM text of `der` under `label` (rcgen is built here without its `pem` feature).
fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Reads from `s` until `needle` shows up in what was read, or `deadline` passes.
fn read_until(s: &mut impl Read, seen: &mut String, needle: &str, deadline: Duration) -> bool {
    let end = Instant::now() + deadline;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        if seen.contains(needle) {
            return true;
        }
        match s.read(&mut buf) {
            Ok(0) => return seen.contains(needle),
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return seen.contains(needle),
        }
    }
    seen.contains(needle)
}

#[test]
fn irc_over_tls_with_a_configured_certificate() {
    let irc = free_addr("127.0.94.10");
    let dir = tempfile::tempdir().expect("tmp");
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, pem("CERTIFICATE", ck.cert.der())).expect("cert");
    std::fs::write(&key, pem("PRIVATE KEY", &ck.signing_key.serialize_der())).expect("key");
    let c = Cluster::named_with_env(94, &["alice", "bob"], FORM, |i| {
        if i > 0 {
            return vec![("CHATD_IRC__LISTEN".into(), String::new())];
        }
        vec![
            ("CHATD_IRC__LISTEN".into(), irc.to_string()),
            ("CHATD_IRC__TLS_CERT".into(), cert.display().to_string()),
            ("CHATD_IRC__TLS_KEY".into(), key.display().to_string()),
        ]
    });
    let pass = password(&c, 0);

    // Plain text on the TLS port: no IRC reply, the connection is dropped.
    let mut plain = TcpStream::connect(irc).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    plain
        .write_all(b"NICK x\r\nUSER x 0 * :x\r\n")
        .expect("write");
    let mut seen = String::new();
    assert!(
        !read_until(&mut plain, &mut seen, " 464 ", Duration::from_secs(3)),
        "a plain-text client got an IRC reply from the TLS port: {seen:?}"
    );

    // A TLS client that trusts the certificate.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ck.cert.der().clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
    let tcp = TcpStream::connect(irc).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let hello = format!(
        "CAP LS 302\r\nCAP REQ :server-time\r\nPASS {pass}\r\nNICK a\r\nUSER a 0 * :A\r\nCAP END\r\nJOIN #lobby\r\n"
    );
    tls.write_all(hello.as_bytes()).expect("write");
    let mut seen = String::new();
    assert!(
        read_until(&mut tls, &mut seen, " 366 alice #lobby", ARRIVE),
        "registered and joined over TLS: {seen}"
    );
    let text = "over-tls-from-bob-3e";
    let out = c
        .sandbox
        .chatctl_at(&c.members[1].dir.join("run/control.sock"), &["send", text]);
    assert!(out.status.success());
    assert!(
        read_until(
            &mut tls,
            &mut seen,
            &format!("PRIVMSG #lobby :{text}"),
            ARRIVE
        ),
        "bob's message over TLS: {seen}"
    );
}
