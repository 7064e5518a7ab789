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
