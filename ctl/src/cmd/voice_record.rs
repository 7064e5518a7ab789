//! `chatctl voice --record`, `dm NICK --voice -`, `group send G --voice -`: records from the
//! default input device with a recorder already installed (no audio library is linked in):
//! `arecord` (alsa-utils), `parecord` (pulseaudio-utils), `pw-record` (PipeWire) or `ffmpeg`,
//! first found on PATH first. It writes a 16 kHz mono WAV to a new file of its own in the
//! temporary directory (mode 0600, removed when the [`Recording`] is dropped, failure or not)
//! until Enter, Ctrl-C (the recorder is stopped with SIGINT, so it finishes the file) or
//! [`MAX_SECONDS`]. No recorder, or one that stops at once (no input device), is a clear
//! error naming what to install or what failed.

use std::ffi::OsStr;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::Error;

/// The longest recording, in seconds (the node's `voice.max_seconds` default).
pub const MAX_SECONDS: u64 = 300;
/// How long a stopped recorder has to finish its file before it is killed.
const FINISH: Duration = Duration::from_secs(5);
/// A WAV header: a file no longer than this holds no audio.
const WAV_HEADER: u64 = 44;

/// Set by the SIGINT handler while a recording runs.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The recorders tried, in order.
const RECORDERS: [&str; 4] = ["arecord", "parecord", "pw-record", "ffmpeg"];

/// A recorder found on PATH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorder {
    /// Its name (one of [`RECORDERS`]).
    pub name: &'static str,
    /// Where it is.
    pub path: PathBuf,
}

impl Recorder {
    /// Its command line recording to `out` for at most [`MAX_SECONDS`].
    fn command(&self, out: &Path) -> Command {
        let mut c = Command::new(&self.path);
        let secs = MAX_SECONDS.to_string();
        match self.name {
            "arecord" => c.args(["-q", "-f", "S16_LE", "-r", "16000", "-c", "1", "-t", "wav"]),
            "parecord" => c.args(["--file-format=wav", "--rate=16000", "--channels=1"]),
            "pw-record" => c.args(["--rate", "16000", "--channels", "1"]),
            _ => c.args([
                "-nostdin",
                "-loglevel",
                "error",
                "-f",
                "pulse",
                "-i",
                "default",
            ]),
        };
        match self.name {
            "arecord" => c.args(["-d", secs.as_str()]),
            "ffmpeg" => c.args(["-t", secs.as_str(), "-ac", "1", "-ar", "16000", "-y"]),
            _ => &mut c,
        };
        c.arg(out);
        c
    }
}

/// The first recorder on `path_var` (a PATH value), or `None`.
pub fn find(path_var: &OsStr) -> Option<Recorder> {
    RECORDERS.iter().find_map(|&name| {
        std::env::split_paths(path_var)
            .map(|dir| dir.join(name))
            .find(|p| is_executable(p))
            .map(|path| Recorder { name, path })
    })
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A recording in a temporary file of its own, removed when dropped.
#[derive(Debug)]
pub struct Recording {
    path: PathBuf,
}

impl Recording {
    /// The WAV file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Recording {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A new empty file (mode 0600) for a recording, removed when the result is dropped.
fn temp_file() -> Result<Recording, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    for _ in 0..16 {
        let mut n = [0u8; 8];
        getrandom::fill(&mut n).map_err(|e| Error::Record(format!("no randomness: {e}")))?;
        let path = dir.join(format!("chatctl-voice-{}.wav", hex::encode(n)));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => return Ok(Recording { path }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::Record(format!(
                    "cannot make a file in {}: {e}",
                    dir.display()
                )));
            }
        }
    }
    Err(Error::Record(format!(
        "cannot make a new file in {}",
        dir.display()
    )))
}

/// What to install when no recorder is found.
pub fn none_found() -> Error {
    Error::Record(
        "no audio recorder found on PATH: install alsa-utils (arecord), pulseaudio-utils \
         (parecord), pipewire (pw-record) or ffmpeg, or record a file and give its path"
            .into(),
    )
}

/// Records until Enter, Ctrl-C or [`MAX_SECONDS`], with the first recorder on PATH.
pub fn record() -> Result<Recording, Error> {
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    let recorder = find(&path_var).ok_or_else(none_found)?;
    let out = temp_file()?;
    let mut child = recorder
        .command(out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Record(format!("cannot start {}: {e}", recorder.path.display())))?;
    eprintln!(
        "recording with {} — press Enter (or Ctrl-C) to stop and send; at most {MAX_SECONDS} s",
        recorder.name
    );
    let previous = catch_interrupt();
    let stopped = wait_for_stop(&mut child);
    finish(&mut child);
    restore_interrupt(previous);
    let mut why = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.by_ref().take(4096).read_to_string(&mut why);
    }
    let status = child.wait().ok();
    if (stopped == Stop::Exited && !status.is_some_and(|s| s.success())) || !has_audio(out.path()) {
        return Err(failed(recorder.name, &why));
    }
    Ok(out)
}

/// Why a recording ended.
#[derive(Debug, PartialEq, Eq)]
enum Stop {
    /// Enter, Ctrl-C or the time limit.
    Asked,
    /// The recorder ended by itself (an error, or its own limit).
    Exited,
}

/// Waits for Enter (or the end of standard input), Ctrl-C, the limit or the recorder's exit.
fn wait_for_stop(child: &mut Child) -> Stop {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    // Reads one line; left blocked on a terminal when the recording ends otherwise (the
    // process sends right after and exits).
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let _ = tx.send(());
    });
    let deadline = Instant::now() + Duration::from_secs(MAX_SECONDS + 2);
    loop {
        // Ctrl-C reaches the recorder too (the terminal's process group): it may have ended
        // already, as asked.
        if INTERRUPTED.load(Ordering::Relaxed) || Instant::now() > deadline {
            return Stop::Asked;
        }
        if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
            return Stop::Exited;
        }
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Stop::Asked,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
    }
}

/// Stops the recorder with SIGINT so it finishes its file; killed after [`FINISH`].
fn finish(child: &mut Child) {
    if matches!(child.try_wait(), Ok(Some(_))) {
        return;
    }
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) on our own child's pid, not yet reaped (try_wait saw it running).
        unsafe {
            libc::kill(pid, libc::SIGINT);
        }
    }
    let deadline = Instant::now() + FINISH;
    while Instant::now() < deadline {
        if !matches!(child.try_wait(), Ok(None)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
}

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Ctrl-C stops the recording instead of chatctl (the recorder gets it too and finishes).
fn catch_interrupt() -> libc::sighandler_t {
    INTERRUPTED.store(false, Ordering::Relaxed);
    let handler: extern "C" fn(libc::c_int) = on_interrupt;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe { libc::signal(libc::SIGINT, handler as libc::sighandler_t) }
}

fn restore_interrupt(previous: libc::sighandler_t) {
    if previous != libc::SIG_ERR {
        // SAFETY: puts back the handler that was there before.
        unsafe {
            libc::signal(libc::SIGINT, previous);
        }
    }
}

fn has_audio(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() > WAV_HEADER)
}

/// The error for a recorder that failed or recorded nothing, from its standard error.
pub fn failed(name: &str, stderr: &str) -> Error {
    let said: String = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect();
    let lower = stderr.to_ascii_lowercase();
    let no_device = [
        "no such file",
        "no such device",
        "audio open error",
        "cannot find card",
        "unknown pcm",
        "connection refused",
        "connection failure",
        "no soundcards",
        "host is down",
        "input/output error",
    ]
    .iter()
    .any(|p| lower.contains(p));
    let detail = match said.is_empty() {
        true => String::new(),
        false => format!(" ({name}: {said})"),
    };
    match no_device {
        true => Error::Record(format!(
            "no audio input device could be opened{detail}; connect a microphone or record a \
             file elsewhere and give its path"
        )),
        false => Error::Record(format!("{name} recorded nothing{detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_installed_recorder_is_found_and_none_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).expect("mkdir");
        std::fs::create_dir_all(&b).expect("mkdir");
        let path = std::env::join_paths([&a, &b]).expect("joins");
        assert_eq!(find(&path), None);
        assert!(none_found().to_string().contains("alsa-utils (arecord)"));
        // A file that is not executable is no recorder; later names lose to earlier ones.
        std::fs::write(b.join("ffmpeg"), "").expect("writes");
        assert_eq!(find(&path), None);
        use std::os::unix::fs::PermissionsExt;
        for (dir, name) in [(&b, "ffmpeg"), (&a, "pw-record"), (&b, "arecord")] {
            std::fs::write(dir.join(name), "#!/bin/sh\n").expect("writes");
            std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o755))
                .expect("chmod");
        }
        let found = find(&path).expect("found");
        assert_eq!((found.name, found.path), ("arecord", b.join("arecord")));
    }

    #[test]
    fn a_recorder_without_a_device_is_told_as_such() {
        let e = failed(
            "arecord",
            "ALSA lib confmisc.c:855:(parse_card) cannot find card '0'\narecord: main:850: audio open error: No such file or directory\n",
        );
        let text = e.to_string();
        assert!(
            text.starts_with("cannot record: no audio input device"),
            "{text}"
        );
        assert!(text.contains("arecord: ALSA lib"), "{text}");
        assert_eq!(e.exit_code(), 1);
        let other = failed("ffmpeg", "\n");
        assert_eq!(other.to_string(), "cannot record: ffmpeg recorded nothing");
    }

    #[test]
    fn a_temporary_recording_is_private_and_removed_when_dropped() {
        use std::os::unix::fs::PermissionsExt;
        let r = temp_file().expect("made");
        let path = r.path().to_owned();
        let mode = std::fs::metadata(&path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(r);
        assert!(!path.exists());
    }
}
