//! Files in `chatctl chat`, driven in tmux: `/file PATH CAPTION` on one node sends the file to
//! the room (both windows show its `📎` line), `/get` in the other node's window saves it in
//! that window's directory byte-identical, a second `/get` refuses to replace it (the file
//! unchanged), `/get 1 --force` replaces it, and `/get 2` names a file that is not there.
//! `/voice PATH` sends a voice message both windows show as `🎤 0:0x "…"` (with the tiny
//! model). Skips without tmux (or the voice requirements; fails under `CHATD_TEST_STRICT=1`).

use std::time::Duration;

use crate::cluster::Cluster;
use crate::support::skip_or_fail;
use crate::tui::{Tmux, has_tmux};

const FORM: Duration = Duration::from_secs(60);

#[test]
fn a_file_sent_and_saved_from_the_terminal_chat() {
    if !has_tmux() {
        skip_or_fail("tmux is not installed (apt install tmux): the terminal chat files test");
        return;
    }
    let mut c = Cluster::new(173);
    c.add_with_env(&[], &[("CHATD_NODE__NICKNAME", "sender")]);
    c.add_with_env(&[c.addr(0)], &[("CHATD_NODE__NICKNAME", "getter")]);
    c.await_ring(FORM);
    let sock = |i: usize| c.members[i].dir.join("run/control.sock");
    // 300 kB that do not compress: a file, not an image (no auto-fetch).
    let bytes: Vec<u8> = (0u32..300_000)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let path = c.members[0].dir.join("numbers.bin");
    std::fs::write(&path, &bytes).expect("writes");
    let downloads = c.members[1].dir.join("downloads");
    std::fs::create_dir_all(&downloads).expect("mkdir");

    let server = Tmux {
        name: format!("chatd-files-{}", std::process::id()),
        session: "sender",
        owner: true,
    };
    let sender = server.start("sender", &sock(0));
    let getter = server.start_in("getter", &sock(1), &downloads);
    sender.wait_for(FORM, "connected");
    getter.wait_for(FORM, "connected");

    sender.send(&[&format!("/file {} the numbers", path.display()), "Enter"]);
    let line = "the numbers  📎 numbers.bin 300.0 kB";
    sender.wait_for(FORM, line);
    getter.wait_for(FORM, line);

    getter.send(&["/get", "Enter"]);
    getter.wait_for(FORM, "saved ");
    let saved = downloads.join("numbers.bin");
    assert!(
        std::fs::read(&saved).expect("saved") == bytes,
        "not byte-identical"
    );
    // Never replaced without --force.
    std::fs::write(&saved, b"mine").expect("writes");
    getter.send(&["/get", "Enter"]);
    getter.wait_for(FORM, "numbers.bin exists;");
    assert_eq!(std::fs::read(&saved).expect("kept"), b"mine");
    getter.send(&["/get 1 --force", "Enter"]);
    let replaced = crate::cluster::poll(FORM, Duration::from_millis(100), || {
        (std::fs::read(&saved).ok()? == bytes).then_some(())
    });
    assert!(
        replaced.is_some(),
        "--force did not replace it:\n{}",
        getter.screen()
    );
    getter.send(&["C-u", "/get 2", "Enter"]);
    getter.wait_for(FORM, "no such file in this window");
    // Nothing half-written is left in the directory.
    let names: Vec<String> = std::fs::read_dir(&downloads)
        .expect("lists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    assert_eq!(names, ["numbers.bin"], "{names:?}");
    sender.send(&["/quit", "Enter"]);
    sender.wait_for(FORM, "EXITED:0");
}

/// `/voice PATH` in `chatctl chat` (issue 36): the recording is converted and transcribed on
/// the sender's node and both windows show `🎤 0:0x "…"` with the transcript. Needs tmux and
/// what `voice.rs` needs.
#[test]
fn a_voice_message_sent_from_the_terminal_chat() {
    if !has_tmux() {
        skip_or_fail("tmux is not installed (apt install tmux): the terminal chat voice test");
        return;
    }
    let voice = match crate::voice::requirements() {
        Ok(v) => v,
        Err(reason) => return skip_or_fail(&reason),
    };
    let mut env: Vec<(&str, &str)> = voice.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("CHATD_NODE__NICKNAME", "talker"));
    let mut c = Cluster::new(174);
    c.add_with_env(&[], &env);
    c.add_with_env(&[c.addr(0)], &[("CHATD_NODE__NICKNAME", "hearer")]);
    c.await_ring(FORM);
    let sock = |i: usize| c.members[i].dir.join("run/control.sock");
    let wav = c.members[0].dir.join("note.wav");
    crate::voice::speak(crate::voice::SENTENCE, &wav);

    let server = Tmux {
        name: format!("chatd-voice-{}", std::process::id()),
        session: "talker",
        owner: true,
    };
    let talker = server.start("talker", &sock(0));
    let hearer = server.start("hearer", &sock(1));
    talker.wait_for(FORM, "connected");
    hearer.wait_for(FORM, "connected");
    talker.send(&[&format!("/voice {}", wav.display()), "Enter"]);
    talker.wait_for(FORM, "🎤 0:0");
    hearer.wait_for(FORM, "🎤 0:0");
    assert!(
        hearer.screen().to_lowercase().contains("afternoon"),
        "the transcript is on the line:\n{}",
        hearer.screen()
    );
    talker.send(&["/quit", "Enter"]);
    talker.wait_for(FORM, "EXITED:0");
}
