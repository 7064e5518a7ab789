//! Bad input at start-up, as a service manager sees it: one line, the documented exit code.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::process::Stdio;
use std::time::Duration;

use crate::support::{Sandbox, wait_until};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_bad_config_fails_check_config_and_start_with_one_line_naming_the_key() {
    let sandbox = Sandbox::new();
    // (The harness passes --listen, so the bad key is one it leaves to the file.)
    sandbox.write_config("[node]\nnickname = \"no spaces\"\n");
    let (head, tail) = (
        "chatd: node.nickname: invalid nickname \"no spaces\": ",
        format!("(in {})", sandbox.config().display()),
    );
    let mut quiet = sandbox.chatd();
    quiet.args(["check-config", "--quiet"]);
    let mut start = sandbox.chatd();
    start.env("NOTIFY_SOCKET", sandbox.path().join("nobody-listens"));
    for cmd in [quiet, start] {
        let out = sandbox.run(cmd);
        assert_eq!(out.status.code(), Some(78), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.starts_with(head) && err.trim_end().ends_with(&tail),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(out.stdout.is_empty());
    }

    // A valid file: `check-config --quiet` (the unit's ExecReload= check) prints nothing.
    sandbox.write_config("[node]\nlisten = \"127.0.0.1:7400\"\n");
    let mut cmd = sandbox.chatd();
    cmd.args(["check-config", "-q"]);
    let out = sandbox.run(cmd);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
}

#[test]
fn under_the_journal_fatal_lines_carry_the_error_priority() {
    // JOURNAL_STREAM names our stderr's device and inode, as systemd sets it.
    let sandbox = Sandbox::new();
    sandbox.write_config("[node]\ncolour = \"red\"\n");
    let log = sandbox.path().join("stderr.log");
    let file = File::create(&log).expect("log");
    let meta = file.metadata().expect("stat");
    let out = sandbox
        .chatd()
        .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
        .stdout(Stdio::null())
        .stderr(file)
        .status()
        .expect("runs");
    assert_eq!(out.code(), Some(78));
    let text = std::fs::read_to_string(&log).expect("read");
    assert_eq!(
        text.trim_end(),
        format!(
            "<3>chatd: node.colour: unknown key (in {})",
            sandbox.config().display()
        )
    );
}

#[test]
fn a_busy_port_exits_75_with_one_line() {
    let sandbox = Sandbox::new();
    let busy = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = busy.local_addr().expect("addr");
    let mut cmd = sandbox.chatd();
    cmd.arg("--listen").arg(addr.to_string());
    let out = sandbox.run(cmd);
    assert_eq!(out.status.code(), Some(75), "{}", stderr(&out));
    let err = stderr(&out);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("chatd: node.listen: cannot bind UDP {addr}: ")),
        "{err}"
    );
    assert!(
        !sandbox.socket().exists(),
        "socket removed on a failed start"
    );
}

#[test]
fn a_data_directory_of_another_user_exits_77() {
    let sandbox = Sandbox::new();
    let dir = sandbox.data_dir();
    std::fs::create_dir(&dir).expect("mkdir");
    let other = rustix::process::getuid().as_raw().wrapping_add(4242);
    // Giving a directory away needs root; as another user there is nothing to test here.
    if std::os::unix::fs::chown(&dir, Some(other), None).is_err() {
        eprintln!("skipped: cannot chown as a non-root user");
        return;
    }
    let out = sandbox.run(sandbox.chatd());
    assert_eq!(out.status.code(), Some(77), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "chatd: data directory {} is owned by uid {other}",
            dir.display()
        )),
        "{err}"
    );
    assert!(!dir.join("node.key").exists(), "nothing written there");
    assert!(wait_until(Duration::from_secs(1), || !sandbox
        .socket()
        .exists()));
}
