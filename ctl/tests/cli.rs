//! chatctl on its own: no daemon needed. (The chatd ↔ chatctl tests are in `tests/e2e/`; this
//! file also makes `cargo test --workspace` build the `chatctl` binary they run.)

use std::collections::BTreeSet;
use std::process::Command;

use prost::Message;

fn chatctl() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_chatctl"));
    cmd.env_remove("CHATCTL_SOCKET");
    cmd
}

#[test]
fn no_daemon_gives_the_documented_message_and_exit_code() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("control.sock");
    for json in [false, true] {
        let mut cmd = chatctl();
        cmd.arg("--socket").arg(&socket).arg("status");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().expect("runs");
        assert_eq!(
            out.status.code(),
            Some(i32::from(chatctl::exit::UNREACHABLE))
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let want = format!(
            "cannot reach chatd at {} — is it running?",
            socket.display()
        );
        assert_eq!(stderr.trim_end(), format!("chatctl: {want}"));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn socket_comes_from_the_environment_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("from-env.sock");
    let out = chatctl()
        .env("CHATCTL_SOCKET", &socket)
        .arg("status")
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(i32::from(chatctl::exit::UNREACHABLE))
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&socket.display().to_string()));
}

#[test]
fn a_socket_file_nobody_serves_is_unreachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    let out = chatctl()
        .arg("--socket")
        .arg(&socket)
        .arg("status")
        .output()
        .expect("runs");
    assert_eq!(
        out.status.code(),
        Some(i32::from(chatctl::exit::UNREACHABLE))
    );
}

#[test]
fn usage_errors_exit_2_and_help_lists_exit_codes() {
    let out = chatctl().arg("no-such-command").output().expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let out = chatctl().arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("Exit status:") && help.contains("3  cannot reach chatd"),
        "{help}"
    );
}

#[test]
fn json_field_names_are_the_proto_field_names() {
    let fds =
        prost_types::FileDescriptorSet::decode(chat_proto::FILE_DESCRIPTOR_SET).expect("decodes");
    let message = fds
        .file
        .iter()
        .flat_map(|f| f.message_type.iter())
        .find(|m| m.name() == "GetStatusResponse")
        .expect("GetStatusResponse in descriptors");
    let proto_fields: BTreeSet<String> =
        message.field.iter().map(|f| f.name().to_owned()).collect();
    let json =
        serde_json::to_value(chat_proto::v1::GetStatusResponse::default()).expect("serializes");
    let json_fields: BTreeSet<String> = json
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(json_fields, proto_fields);
    for required in [
        "node_id",
        "nickname",
        "listen_addr",
        "version",
        "uptime_seconds",
    ] {
        assert!(json_fields.contains(required), "{required}");
    }
}

/// `chatctl voice --record` in an environment whose PATH is `path` and whose temporary
/// directory is `tmp`; its exit code and standard error. Standard input stays open (Enter
/// is never pressed): only the recorder's own end stops it.
fn record_with(path: &std::ffi::OsStr, tmp: &std::path::Path, args: &[&str]) -> (i32, String) {
    use std::io::Read;
    let dir = tmp.join("nowhere.sock");
    let mut child = chatctl()
        .env("PATH", path)
        .env("TMPDIR", tmp)
        .arg("--socket")
        .arg(&dir)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    let _stdin = child.stdin.take();
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut err)
        .expect("reads");
    let status = child.wait().expect("waits");
    (status.code().unwrap_or(-1), err)
}

/// The files left in `dir` (the recordings' temporary directory).
fn left(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("lists")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("chatctl-voice"))
        .collect()
}

#[test]
fn recording_without_a_recorder_or_a_device_is_a_clear_error_leaving_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let (bin, tmp) = (dir.path().join("bin"), dir.path().join("tmp"));
    std::fs::create_dir_all(&bin).expect("mkdir");
    std::fs::create_dir_all(&tmp).expect("mkdir");
    // No recorder on PATH: what to install, exit status 1.
    for args in [
        &["voice", "--record"][..],
        &["dm", "bob", "--voice", "-"][..],
    ] {
        let (code, err) = record_with(bin.as_os_str(), &tmp, args);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("cannot record: no audio recorder found on PATH: install alsa-utils"),
            "{err}"
        );
        assert!(
            left(&tmp).is_empty(),
            "a recording was left: {:?}",
            left(&tmp)
        );
    }
    // An arecord that finds no sound card (what arecord says on a machine without one).
    let fake = bin.join("arecord");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"ALSA lib confmisc.c:855:(parse_card) cannot find card '0'\" >&2\n\
         echo 'arecord: main:850: audio open error: No such file or directory' >&2\nexit 1\n",
    )
    .expect("writes");
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = std::env::join_paths([&bin, std::path::Path::new("/bin")]).expect("joins");
    let (code, err) = record_with(&path, &tmp, &["voice", "--record"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot record: no audio input device"),
        "{err}"
    );
    assert!(
        err.contains("cannot find card"),
        "the recorder's words: {err}"
    );
    assert!(
        left(&tmp).is_empty(),
        "a recording was left: {:?}",
        left(&tmp)
    );
}

#[test]
fn a_real_arecord_without_a_device_is_told_clearly() {
    let real = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&real).any(|d| d.join("arecord").is_file());
    if !found {
        eprintln!("skipped: arecord is not installed (apt-get install alsa-utils)");
        return;
    }
    let has_card = std::fs::read_to_string("/proc/asound/cards")
        .is_ok_and(|c| !c.contains("no soundcards") && !c.trim().is_empty());
    if has_card {
        eprintln!("skipped: this machine has a sound card (/proc/asound/cards)");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, err) = record_with(&real, dir.path(), &["voice", "--record"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("cannot record: no audio input device"),
        "{err}"
    );
    assert!(left(dir.path()).is_empty());
}
