//! Voice messages on this node (issue 36): the runner of the transcription helper.
//!
//! Untrusted audio is never decoded in the daemon. Each job starts the helper (`helper.py`,
//! built in; faster-whisper and PyAV in a Python 3 — docs/operations.md "Voice messages")
//! as a child process of its own process group, with the limits of `[voice]`
//! ([`sandbox`]): address space (RLIMIT_AS), CPU time (RLIMIT_CPU), a new network namespace
//! where the kernel allows one, a wall-clock deadline after which the whole group is killed,
//! and the group killed too when the job is dropped (a client that goes away). The recording
//! goes in on stdin; the helper writes the Ogg/Opus conversion to a file the daemon chose and
//! one line of JSON on stdout ([`Outcome`]). At most `voice.max_jobs` helpers run at once;
//! at most [`MAX_WAITING`] further jobs wait for a slot, more are refused.

pub mod error;
pub mod sandbox;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Semaphore;

use crate::chat::transcript::{Transcript, Word};
use crate::config::VoiceSettings;

pub use error::VoiceError;

/// The helper's source, run with `python3 -E -c` unless `voice.helper` names another.
pub const HELPER: &str = include_str!("helper.py");
/// Jobs waiting for a helper slot at most; more are refused ([`VoiceError::Busy`]).
pub const MAX_WAITING: usize = 8;
/// Bytes of the helper's answer read at most.
const MAX_ANSWER: u64 = 4 << 20;
/// Bytes of the helper's stderr kept for the log.
const STDERR_TAIL: u64 = 16 << 10;

/// What the helper made of a recording.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Outcome {
    /// The recording's length.
    pub duration_ms: u64,
    /// The detected language (empty without a model).
    #[serde(default)]
    pub language: String,
    /// The transcript's text (empty without a model, or for silence).
    #[serde(default)]
    pub text: String,
    /// The words with their offsets.
    #[serde(default)]
    pub words: Vec<OutWord>,
    /// Whether a model ran.
    #[serde(default)]
    pub transcribed: bool,
    /// `isolated` when the helper saw no network interface but loopback.
    #[serde(default)]
    pub network: String,
}

/// A word as the helper gives it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OutWord {
    /// The word.
    pub word: String,
    /// Offset of its start, in ms.
    pub start_ms: u64,
    /// Offset of its end, in ms.
    pub end_ms: u64,
}

impl Outcome {
    /// The transcript item for a message (words over the item's bounds are dropped there).
    pub fn transcript(&self) -> Transcript {
        Transcript {
            duration_ms: self.duration_ms,
            transcribed: self.transcribed,
            language: self.language.clone(),
            words: self
                .words
                .iter()
                .map(|w| Word {
                    word: w.word.clone(),
                    start_ms: w.start_ms,
                    end_ms: w.end_ms,
                })
                .collect(),
            of: None,
        }
    }
}

#[derive(Deserialize)]
struct Refusal {
    error: String,
    message: String,
}

/// Counters of the voice runner.
#[derive(Debug, Default)]
pub struct VoiceStats {
    /// Helper runs started.
    pub jobs: AtomicU64,
    /// Runs that failed (refused input included).
    pub failed: AtomicU64,
    /// Runs killed at the deadline.
    pub timeouts: AtomicU64,
}

/// The runner (module docs).
#[derive(Debug)]
pub struct Voice {
    cfg: VoiceSettings,
    max_bytes: u64,
    slots: Arc<Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    stats: VoiceStats,
}

impl Voice {
    /// A runner for `cfg`, taking recordings up to `max_bytes`.
    pub fn new(cfg: VoiceSettings, max_bytes: u64) -> Voice {
        let slots = Arc::new(Semaphore::new(cfg.max_jobs));
        Voice {
            cfg,
            max_bytes,
            slots,
            waiting: Default::default(),
            stats: VoiceStats::default(),
        }
    }

    /// Whether a model is configured (transcripts can be made here).
    pub fn has_model(&self) -> bool {
        self.cfg.model_dir.is_some()
    }

    /// The longest recording accepted (`voice.max_seconds`).
    pub fn max_seconds(&self) -> u64 {
        self.cfg.max_seconds
    }

    /// The counters.
    pub fn stats(&self) -> &VoiceStats {
        &self.stats
    }

    /// Converts the recording in `input` to Ogg/Opus at `out` (when given) and transcribes it
    /// when `transcribe` and a model is configured.
    pub async fn run(
        &self,
        input: std::fs::File,
        out: Option<&Path>,
        transcribe: bool,
    ) -> Result<Outcome, VoiceError> {
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(VoiceError::Busy);
        }
        let slot = self.slots.acquire().await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let _slot = slot.map_err(|_| VoiceError::Helper("the runner is shutting down".into()))?;
        self.stats.jobs.fetch_add(1, Ordering::Relaxed);
        let res = self.run_helper(input, out, transcribe).await;
        if let Err(e) = &res {
            self.stats.failed.fetch_add(1, Ordering::Relaxed);
            if matches!(e, VoiceError::Timeout(_)) {
                self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            }
            tracing::info!(error = %e, "voice job failed");
        }
        res
    }

    fn command(&self, out: Option<&Path>, transcribe: bool) -> tokio::process::Command {
        let python = self
            .cfg
            .python
            .clone()
            .unwrap_or_else(|| PathBuf::from("python3"));
        let mut cmd = tokio::process::Command::new(python);
        cmd.arg("-E");
        match &self.cfg.helper {
            Some(path) => cmd.arg(path),
            None => cmd.arg("-c").arg(HELPER),
        };
        cmd.arg("--max-seconds")
            .arg(self.cfg.max_seconds.to_string())
            .arg("--max-bytes")
            .arg(self.max_bytes.to_string())
            .arg("--threads")
            .arg(self.cfg.threads.to_string());
        if let (true, Some(model)) = (transcribe, &self.cfg.model_dir) {
            cmd.arg("--model").arg(model);
        }
        if let Some(out) = out {
            cmd.arg("--out").arg(out);
        }
        cmd.current_dir("/")
            .env("OMP_NUM_THREADS", self.cfg.threads.to_string())
            .env("HF_HUB_OFFLINE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0);
        sandbox::limit(
            &mut cmd,
            sandbox::Limits {
                memory_bytes: self.cfg.memory_mb << 20,
                cpu_secs: self.cfg.cpu_secs,
            },
        );
        cmd
    }

    async fn run_helper(
        &self,
        input: std::fs::File,
        out: Option<&Path>,
        transcribe: bool,
    ) -> Result<Outcome, VoiceError> {
        let mut child = self
            .command(out, transcribe)
            .spawn()
            .map_err(|e| VoiceError::Helper(format!("cannot start the Python helper: {e}")))?;
        // Killed with its whole group when this job ends, however it ends.
        let mut group = sandbox::Group(child.id());
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let max_bytes = self.max_bytes;
        let feed = async move {
            let Some(mut pipe) = stdin.take() else {
                return;
            };
            let mut file = tokio::fs::File::from_std(input).take(max_bytes + 1);
            // The helper may stop reading early (refusal): a broken pipe is its answer.
            let _ = tokio::io::copy(&mut file, &mut pipe).await;
            let _ = pipe.shutdown().await;
        };
        let read_out = async move {
            let mut buf = Vec::new();
            if let Some(s) = stdout.take() {
                let _ = s.take(MAX_ANSWER).read_to_end(&mut buf).await;
            }
            buf
        };
        let read_err = async move {
            let mut buf = Vec::new();
            if let Some(s) = stderr.take() {
                let mut s = s;
                let mut chunk = vec![0u8; 8192];
                while let Ok(n) = s.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() as u64 > 2 * STDERR_TAIL {
                        buf.drain(..buf.len() - STDERR_TAIL as usize);
                    }
                }
            }
            buf
        };
        let all = async {
            let ((), answer, errors, status) = tokio::join!(feed, read_out, read_err, child.wait());
            (answer, errors, status)
        };
        let timeout = self.cfg.timeout;
        let (answer, errors, status) = match tokio::time::timeout(timeout, all).await {
            Ok(done) => done,
            Err(_) => {
                group.kill();
                return Err(VoiceError::Timeout(timeout.as_secs()));
            }
        };
        group.kill();
        let status = status?;
        let tail = String::from_utf8_lossy(&errors);
        let tail = tail.lines().rev().take(3).collect::<Vec<_>>().join(" | ");
        let line = String::from_utf8_lossy(&answer);
        let line = line.lines().last().unwrap_or("");
        if let Some(code) = status.code() {
            if code == 3 {
                let r: Refusal = serde_json::from_str(line)
                    .map_err(|_| VoiceError::Helper(format!("unreadable refusal: {tail}")))?;
                return Err(match r.error.as_str() {
                    "no_model" => VoiceError::NoModel(r.message),
                    _ => VoiceError::Refused(r.message),
                });
            }
            if code != 0 {
                tracing::warn!(code, stderr = %tail, "voice helper failed");
                return Err(VoiceError::Helper(format!(
                    "exit status {code} (is faster-whisper installed for this Python?): {tail}"
                )));
            }
            let outcome: Outcome = serde_json::from_str(line)
                .map_err(|e| VoiceError::Helper(format!("unreadable answer: {e}")))?;
            if outcome.network != "isolated" {
                tracing::debug!("voice helper ran without a network namespace of its own");
            }
            return Ok(outcome);
        }
        use std::os::unix::process::ExitStatusExt;
        Err(VoiceError::Limit(match status.signal() {
            Some(libc::SIGXCPU) => {
                format!("the CPU-time limit ({} s) was reached", self.cfg.cpu_secs)
            }
            Some(libc::SIGKILL) => "killed (memory or CPU limit)".into(),
            Some(libc::SIGSEGV | libc::SIGABRT) => format!(
                "the helper crashed (memory limit {} MiB?): {tail}",
                self.cfg.memory_mb
            ),
            Some(s) => format!("killed by signal {s}"),
            None => "ended without a status".into(),
        }))
    }
}
