//! Private voice messages on real daemons (issue 36): espeak-ng speaks "the meeting is moved
//! to tuesday afternoon", `chatctl dm bob --voice` on Alice's node converts and transcribes
//! it and sends the Ogg/Opus as a private file with the transcript inside the end-to-end
//! encrypted message. Bob's `dms` shows `🎤 0:0x "…"`; his `search tuesday` finds it with the
//! word's offset in the audio. Carol's search on her node does not, nor does a guest account's
//! on Bob's node; no data directory but Alice's and Bob's holds the transcript's text.
//! Carol's node has no model: her voice message to Bob goes out pending, and `chatctl
//! transcribe ID` on Bob's node adds the transcript to Bob's copy and sends it to Carol.
//!
//! Needs what `voice.rs` needs (espeak-ng, faster-whisper, the tiny model); without them it
//! skips with the reason, or fails under `CHATD_TEST_STRICT=1`.

use std::time::Duration;

use super::voice::{
    SENTENCE, ctl, finds_tuesday, lines, no_helper_left, requirements, sent, speak, transcribed,
    untranscribable,
};
use crate::cluster::{Cluster, Guest, found_in, poll};
use crate::support::skip_or_fail;

const FORM: Duration = Duration::from_secs(60);
const ARRIVE: Duration = Duration::from_secs(60);
const ALICE: usize = 0;
const BOB: usize = 1;
const CAROL: usize = 2;
const TOKEN: &str = "voice-private-guest-token-0123456789";

/// `chatctl dm --json bob --voice WAV` on member `i`: the private voice message as sent.
fn dm_voice(c: &Cluster, i: usize, wav: &std::path::Path) -> serde_json::Value {
    let wav = wav.to_str().expect("utf-8");
    sent(&ctl(c, i, &["dm", "--json", "bob", "--voice", wav]))
}

#[test]
fn a_private_voice_message_is_searchable_only_by_its_participants() {
    let voice = match requirements() {
        Ok(v) => v,
        Err(reason) => return skip_or_fail(&reason),
    };
    let guest = Guest::new("127.0.238.40", TOKEN);
    let c = Cluster::named_with_env(238, &["alice", "bob", "carol"], FORM, |i| {
        // Carol's node converts recordings but has no model.
        let mut env: Vec<(String, String)> = voice
            .iter()
            .filter(|(k, _)| i != CAROL || *k != "CHATD_VOICE__MODEL_DIR")
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        if i == BOB {
            // A guest account on Bob's node: another account than Bob's.
            env.extend(guest.env());
        }
        env
    });
    let first = sent(&ctl(&c, ALICE, &["dm", "--json", "bob", "hello"]));
    assert_eq!(first["text"], "hello");
    poll(FORM, Duration::from_millis(200), || {
        c.received(BOB).iter().any(|t| t == "hello").then_some(())
    })
    .expect("bob gets the first message");

    let wav = c.members[ALICE].dir.join("meeting.wav");
    speak(SENTENCE, &wav);
    // Timed side by side with a public voice message of the same recording, at the end
    // (docs/performance.md, "Private voice messages").
    let started = std::time::Instant::now();
    let msg = dm_voice(&c, ALICE, &wav);
    let private_took = started.elapsed();
    let id = msg["id"].as_str().expect("id").to_owned();
    assert_eq!(msg["voice"]["language"], "en", "{msg}");
    assert_eq!(msg["voice"]["pending"], false, "{msg}");
    assert_eq!(msg["file"]["media_type"], "audio/ogg", "{msg}");
    assert_eq!(msg["file"]["name"], "meeting.ogg", "{msg}");
    let text = msg["text"].as_str().expect("text").to_owned();
    assert!(
        text.starts_with("🎤 0:0") && text.to_lowercase().contains("tuesday"),
        "{msg}"
    );
    let transcript = msg["voice"]["text"].as_str().expect("text").to_owned();
    assert!(transcript.to_lowercase().contains("tuesday"), "{msg}");

    // Bob gets it, transcript included.
    let got = poll(ARRIVE, Duration::from_millis(300), || {
        lines(&ctl(&c, BOB, &["dms", "-n", "50", "--json"]))
            .into_iter()
            .find(|m| m["id"] == id.as_str())
    })
    .expect("bob gets the voice message");
    assert_eq!(got["text"], text.as_str(), "{got}");
    assert_eq!(got["voice"]["text"], transcript.as_str(), "{got}");
    assert!(
        got["voice"]["words"]
            .as_array()
            .is_some_and(|w| w.len() >= 5),
        "{got}"
    );
    let shown = String::from_utf8_lossy(&ctl(&c, BOB, &["dms", "alice"]).stdout).into_owned();
    assert!(
        shown.contains("🎤 0:0") && shown.contains(&transcript),
        "{shown}"
    );

    // Only Alice's and Bob's data directories hold the transcript (checked before anyone
    // searches for its words: a search's words are nobody's secret).
    for needle in [transcript.as_bytes(), b"uesday afternoon"] {
        assert_eq!(
            found_in(&c.members[CAROL].dir.join("data"), needle),
            None,
            "carol's node holds the transcript"
        );
    }
    assert!(
        found_in(&c.members[BOB].dir.join("data"), transcript.as_bytes()).is_some(),
        "the needle is what bob's node stores (else the check above proves nothing)"
    );

    // Bob's search finds it with the word's offset.
    finds_tuesday(&c, BOB, &id, ARRIVE);
    let plain =
        String::from_utf8_lossy(&ctl(&c, BOB, &["search", "tuesday"]).stdout).to_lowercase();
    assert!(plain.contains("▶ tuesday@0:0"), "{plain}");

    // Carol's search, on her node, does not.
    let out = ctl(&c, CAROL, &["search", "--json", "tuesday"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        lines(&out).iter().all(|m| m["id"] != id.as_str()),
        "carol found bob's private message"
    );
    // Nor does another account (a guest's) on Bob's node.
    let out = guest.ctl(&c, &["search", "--json", "tuesday"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&id),
        "a guest on bob's node found bob's private message"
    );

    // Carol's voice message to Bob goes out pending (no model on her node); she cannot
    // transcribe it, Bob's node can: into Bob's copy, and to Carol as a later transcript.
    let wav_c = c.members[CAROL].dir.join("later.wav");
    speak("please call me on tuesday", &wav_c);
    let pending = dm_voice(&c, CAROL, &wav_c);
    let pid = untranscribable(&c, CAROL, &pending);
    let done =
        transcribed(&c, BOB, &pid, ARRIVE).expect("bob's node transcribes carol's voice message");
    assert_eq!(done["voice"]["pending"], false, "{done}");
    assert!(
        done["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("🎤 0:0") && t.to_lowercase().contains("call")),
        "{done}"
    );
    let again = ctl(&c, BOB, &["transcribe", &pid]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("transcript already"),
        "{again:?}"
    );
    let found = lines(&ctl(&c, BOB, &["search", "--json", "call"]))
        .into_iter()
        .find(|m| m["id"] == pid.as_str())
        .expect("bob's search finds the transcript made on his node");
    assert!(
        found["voice"]["matches"]
            .as_array()
            .is_some_and(|m| !m.is_empty()),
        "{found}"
    );
    // Carol gets Bob's transcript as a private message marked as a later transcript (her
    // copy of the voice message itself stays as it was sent).
    let shared = done["shared"]["id"]
        .as_str()
        .expect("the shared message's id");
    let got = poll(ARRIVE, Duration::from_millis(300), || {
        lines(&ctl(&c, CAROL, &["dms", "-n", "50", "--json"]))
            .into_iter()
            .find(|m| m["id"] == shared)
    })
    .expect("carol receives the transcript bob's node made");
    assert!(
        got["text"].as_str().is_some_and(|t| {
            t.starts_with("🎤 transcript of a 0:0") && t.to_lowercase().contains("call")
        }),
        "{got}"
    );
    let hers = lines(&ctl(&c, CAROL, &["dms", "-n", "50", "--json"]))
        .into_iter()
        .find(|m| m["id"] == pid.as_str())
        .expect("carol's copy");
    assert_eq!(hers["voice"]["pending"], true, "{hers}");
    // The same recording as a public voice message (last: its transcript is public).
    let started = std::time::Instant::now();
    let public = sent(&ctl(
        &c,
        ALICE,
        &[
            "voice",
            "--json",
            "--room",
            "voicetest",
            wav.to_str().expect("utf-8"),
        ],
    ));
    let public_took = started.elapsed();
    assert_eq!(public["voice"]["pending"], false, "{public}");
    eprintln!(
        "voice send, same recording, same node: private (dm --voice) {:.2} s, public (voice) \
         {:.2} s",
        private_took.as_secs_f64(),
        public_took.as_secs_f64()
    );
    for i in [ALICE, BOB, CAROL] {
        no_helper_left(&c, i);
    }
}
