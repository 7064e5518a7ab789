//! Two Unix users on one chatd are two people: the daemon runs as `nobody` (its operator's
//! account) and root connects too (an account of its own, named after its login), each with
//! its own key, nickname and messages. Needs root and `setpriv` (util-linux); skipped with a
//! reason elsewhere (failed under `CHATD_TEST_STRICT=1`).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::{Sandbox, chatctl_bin, chatd_bin, poll, skip_or_fail};

const NOBODY: u32 = 65534;

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("runs")
}

/// `chatctl ARGS` as root, or as `nobody` through setpriv.
fn chatctl(bin: &Path, socket: &Path, as_nobody: bool, args: &[&str]) -> Output {
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.env_clear().arg("--socket").arg(socket).args(args);
    run(&mut cmd)
}

fn json(bin: &Path, socket: &Path, as_nobody: bool, args: &[&str]) -> Option<serde_json::Value> {
    let out = chatctl(bin, socket, as_nobody, args);
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Copies `from` to `to`, executable by anyone (the test binaries live under /root).
fn install(from: &Path, to: &Path) {
    std::fs::copy(from, to).expect("copy binary");
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn two_unix_users_on_one_node_are_two_people() {
    if !rustix::process::geteuid().is_root() {
        skip_or_fail("needs root to run chatd as another user");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        skip_or_fail("needs setpriv (util-linux)");
        return;
    }
    let sandbox = Sandbox::new();
    std::fs::set_permissions(sandbox.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod sandbox");
    let svc: PathBuf = sandbox.path().join("svc");
    std::fs::create_dir(&svc).expect("svc");
    std::os::unix::fs::chown(&svc, Some(NOBODY), Some(NOBODY)).expect("chown");
    let (chatd, ctl) = (svc.join("chatd"), svc.join("chatctl"));
    install(&chatd_bin(), &chatd);
    install(&chatctl_bin(), &ctl);
    let socket = svc.join("run/control.sock");
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&chatd)
        .env_clear()
        .env("HOME", &svc)
        .env("CHATD_LOG", "info")
        .args(["--listen", "127.0.0.1:0", "--nick", "operator"])
        .arg("--data-dir")
        .arg(svc.join("data"))
        .arg("--control")
        .arg(&socket)
        .arg("--config")
        .arg(sandbox.config());
    let daemon = sandbox.start(cmd, &socket);

    // Each user sees itself as a person with its own name and key.
    let mine = |as_nobody: bool, want: &str| {
        poll(Duration::from_secs(30), Duration::from_millis(100), || {
            let s = json(&ctl, &socket, as_nobody, &["status", "--json"])?;
            (s["nickname"] == want).then_some(s)
        })
    };
    let operator = mine(true, "operator").unwrap_or_else(|| panic!("operator: {}", daemon.log()));
    let root = mine(false, "root").unwrap_or_else(|| panic!("root: {}", daemon.log()));
    assert_ne!(operator["user_id"], root["user_id"]);
    assert_eq!(operator["node_id"], root["node_id"]);

    // Both are in the user list, each marked as "you" only for itself.
    let list = poll(Duration::from_secs(30), Duration::from_millis(100), || {
        let l = json(&ctl, &socket, false, &["users", "--json"])?;
        (l["users"].as_array()?.len() == 2).then_some(l)
    })
    .expect("two users listed");
    let me = list["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["self"] == true)
        .expect("self");
    assert_eq!(me["nickname"], "root");

    // Messages are named by the account that sent them.
    for (as_nobody, text) in [(true, "from the operator"), (false, "from root")] {
        let out = chatctl(&ctl, &socket, as_nobody, &["send", text]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = chatctl(&ctl, &socket, false, &["tail", "--json", "-n", "20"]);
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let from = |text: &str| {
        lines
            .iter()
            .find(|m| m["text"] == text)
            .map(|m| m["from"].clone())
    };
    assert_eq!(
        from("from the operator"),
        Some("operator".into()),
        "{lines:?}"
    );
    assert_eq!(from("from root"), Some("root".into()), "{lines:?}");

    // Root's key is kept by the daemon, private to it.
    let key = svc.join("data/accounts/uid-0.key");
    let meta = std::fs::metadata(&key).expect("root's account key");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), NOBODY);
}
