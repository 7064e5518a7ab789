//! Test harness for end-to-end tests: a sandbox directory per test, chatd and chatctl commands
//! with a clean environment pointing into it, and a [`Daemon`] handle that waits for the control
//! socket and kills chatd when dropped.
//!
//! Nothing here sleeps for a fixed time: every wait polls a condition until a deadline.

#![allow(dead_code)] // each test binary uses a different subset

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long chatd may take to start (first builds on a loaded CI machine are slow).
pub const START_DEADLINE: Duration = Duration::from_secs(20);

/// Path of the chatd binary under test.
pub fn chatd_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_chatd"))
}

/// Path of the chatctl binary, built next to chatd by `cargo test --workspace`.
pub fn chatctl_bin() -> PathBuf {
    let path = chatd_bin().with_file_name("chatctl");
    assert!(
        path.exists(),
        "{} not found: run the suite with `cargo test --workspace` so chatctl is built",
        path.display()
    );
    path
}

/// A test that cannot run here (a missing tool, no permission) calls this and returns: it
/// prints why, or, under `CHATD_TEST_STRICT=1` (CI), fails.
pub fn skip_or_fail(reason: &str) {
    if std::env::var_os("CHATD_TEST_STRICT").is_some_and(|v| v == "1") {
        panic!("{reason} (CHATD_TEST_STRICT=1: a missing requirement fails)");
    }
    eprintln!("skipped: {reason}");
}

/// Polls `f` every `every` until it returns `Some` or `deadline` passes.
pub fn poll<T>(deadline: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// Polls `condition` every few milliseconds until it holds or `deadline` passes.
pub fn wait_until(deadline: Duration, mut condition: impl FnMut() -> bool) -> bool {
    poll(deadline, Duration::from_millis(10), || {
        condition().then_some(())
    })
    .is_some()
}

/// Reads a child's stdout lines into a channel (one thread per child).
pub fn line_reader(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Appends the text of each `chatctl tail --json` line received so far to `seen`.
pub fn drain_texts(rx: &mpsc::Receiver<String>, seen: &mut Vec<String>) {
    while let Ok(line) = rx.try_recv() {
        let v: serde_json::Value = serde_json::from_str(&line).expect("json line");
        if v["kind"] == "event" {
            continue;
        }
        seen.push(v["text"].as_str().unwrap_or("").to_owned());
    }
}

/// Collects `tail --json` texts into `seen` until `text` is among them or `deadline` passes.
pub fn wait_for_text(
    rx: &mpsc::Receiver<String>,
    seen: &mut Vec<String>,
    text: &str,
    deadline: Duration,
) -> bool {
    wait_until(deadline, || {
        drain_texts(rx, seen);
        seen.iter().any(|t| t == text)
    })
}

/// A private directory tree for one test.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A fresh sandbox with an empty config file.
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("home")).expect("home");
        std::fs::write(dir.path().join("chatd.toml"), "").expect("config");
        Sandbox { dir }
    }

    /// The sandbox root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `$HOME` inside the sandbox.
    pub fn home(&self) -> PathBuf {
        self.path().join("home")
    }

    /// `$XDG_RUNTIME_DIR` inside the sandbox (not created: chatd must create `chatd/` in it).
    pub fn runtime_dir(&self) -> PathBuf {
        self.path().join("xdg-run")
    }

    /// The default control socket for the sandbox's environment.
    pub fn default_socket(&self) -> PathBuf {
        self.runtime_dir().join("chatd/control.sock")
    }

    /// The data directory tests pass explicitly.
    pub fn data_dir(&self) -> PathBuf {
        self.path().join("data")
    }

    /// The control socket tests pass explicitly (its directory does not exist yet).
    pub fn socket(&self) -> PathBuf {
        self.path().join("run/control.sock")
    }

    /// The config file (empty unless a test writes it).
    pub fn config(&self) -> PathBuf {
        self.path().join("chatd.toml")
    }

    /// Writes the config file.
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config(), text).expect("write config");
    }

    fn clean_env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("HOME", self.home())
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
            // `CHATD_TEST_LOG` (a filter, e.g. `info,chatd::dm=debug`) sets the daemons' log
            // filter for a test run under investigation.
            .env(
                "CHATD_LOG",
                std::env::var("CHATD_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null());
    }

    /// `chatd` with a clean environment, no arguments yet.
    pub fn chatd_bare(&self) -> Command {
        let mut cmd = Command::new(chatd_bin());
        self.clean_env(&mut cmd);
        cmd
    }

    /// `chatd --config … --listen 127.0.0.1:0 --data-dir … --control …`.
    pub fn chatd(&self) -> Command {
        let mut cmd = self.chatd_bare();
        cmd.arg("--config")
            .arg(self.config())
            .args(["--listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--control")
            .arg(self.socket());
        cmd
    }

    /// `chatctl` with the same clean environment.
    pub fn chatctl(&self) -> Command {
        let mut cmd = Command::new(chatctl_bin());
        self.clean_env(&mut cmd);
        cmd
    }

    /// `chatctl --socket <socket> ARGS…`, run to completion.
    pub fn chatctl_at(&self, socket: &Path, args: &[&str]) -> Output {
        self.chatctl()
            .arg("--socket")
            .arg(socket)
            .args(args)
            .output()
            .expect("chatctl runs")
    }

    /// Starts `cmd` (normally from [`Sandbox::chatd`]) and waits until it serves `socket`.
    pub fn start(&self, cmd: Command, socket: &Path) -> Daemon {
        let mut daemon = self.spawn(cmd, socket);
        daemon.wait_ready();
        daemon
    }

    /// Starts `cmd` without waiting.
    pub fn spawn(&self, cmd: Command, socket: &Path) -> Daemon {
        self.spawn_with_stdout(cmd, socket, Stdio::null())
    }

    fn spawn_with_stdout(&self, mut cmd: Command, socket: &Path, stdout: Stdio) -> Daemon {
        let log = tempfile::NamedTempFile::new_in(self.path())
            .expect("log file")
            .into_temp_path();
        let stderr = File::create(&log).expect("open log");
        let child = cmd
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("chatd spawns");
        Daemon {
            child,
            socket: socket.to_owned(),
            log: log.to_path_buf(),
            _log: log,
        }
    }

    /// Runs `cmd` to completion (for chatd invocations that are expected to exit by themselves).
    /// Its stdout must fit in a pipe buffer (it is read after exit).
    pub fn run(&self, cmd: Command) -> Output {
        let mut daemon = self.spawn_with_stdout(cmd, &self.socket(), Stdio::piped());
        let status = daemon
            .wait_exit(START_DEADLINE)
            .unwrap_or_else(|| panic!("chatd did not exit by itself; log:\n{}", daemon.log()));
        let mut stdout = Vec::new();
        if let Some(mut out) = daemon.child.stdout.take() {
            std::io::Read::read_to_end(&mut out, &mut stdout).expect("read stdout");
        }
        Output {
            status,
            stdout,
            stderr: daemon.log().into_bytes(),
        }
    }
}

/// A running chatd, killed on drop.
pub struct Daemon {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
    _log: tempfile::TempPath,
}

impl Daemon {
    /// Waits until the control socket accepts connections; panics with chatd's log if chatd
    /// exits or the deadline passes.
    pub fn wait_ready(&mut self) {
        let socket = self.socket.clone();
        let mut exited = None;
        let ready = wait_until(START_DEADLINE, || {
            if let Ok(Some(status)) = self.child.try_wait() {
                exited = Some(status);
                return true;
            }
            UnixStream::connect(&socket).is_ok()
        });
        if let Some(status) = exited {
            panic!("chatd exited early ({status}); log:\n{}", self.log());
        }
        assert!(
            ready,
            "chatd did not serve {} in time; log:\n{}",
            socket.display(),
            self.log()
        );
    }

    /// chatd's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `n` lines of chatd's stderr, newest first (for a failed wait's message).
    pub fn log_tail(&self, n: usize) -> String {
        let log = self.log();
        log.lines().rev().take(n).collect::<Vec<_>>().join("\n")
    }

    /// Sends `signal` to chatd.
    pub fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, signal).expect("signal chatd");
    }

    /// Waits up to `deadline` for chatd to exit.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(deadline, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        status
    }

    /// chatd's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.keep_log();
    }
}

impl Daemon {
    /// With `CHATD_TEST_KEEP_LOGS=DIR` (a run under investigation), copies chatd's log into
    /// `DIR` before the sandbox goes, as `SANDBOX-NODE-pidPID.log` (`NODE` the directory that
    /// holds its control socket's `run/`, e.g. `n1`), so the logs of every start of every node
    /// survive a passing test too.
    fn keep_log(&self) {
        let Some(dir) = std::env::var_os("CHATD_TEST_KEEP_LOGS") else {
            return;
        };
        let name = |p: Option<&Path>| {
            p.and_then(Path::file_name)
                .map_or("-".into(), |n| n.to_string_lossy().into_owned())
        };
        let node = self.socket.parent().and_then(Path::parent);
        let sandbox = self.log.parent();
        let to = PathBuf::from(dir).join(format!(
            "{}-{}-pid{}.log",
            name(sandbox),
            name(node),
            self.child.id()
        ));
        let _ = std::fs::create_dir_all(to.parent().unwrap_or(Path::new(".")));
        if let Err(e) = std::fs::copy(&self.log, &to) {
            eprintln!("could not keep {}: {e}", to.display());
        }
    }
}
