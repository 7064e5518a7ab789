//! The runner's bounds with stand-in helpers (`voice.helper`, plain Python: no model
//! needed): the limits it sets, the wall-clock deadline and a dropped job killing the whole
//! process group (a grandchild included), the CPU-time limit, a refusal's words.

use std::path::Path;
use std::time::Duration;

use super::*;

fn python() -> Option<PathBuf> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// A runner whose helper is `script`, or `None` (skipped) without python3.
fn runner(dir: &Path, script: &str, cfg: impl FnOnce(&mut VoiceSettings)) -> Option<Voice> {
    let Some(python) = python() else {
        eprintln!("skipped: no python3");
        return None;
    };
    let path = dir.join("helper.py");
    std::fs::write(&path, script).expect("writes");
    let mut s = VoiceSettings {
        python: Some(python),
        helper: Some(path),
        ..VoiceSettings::default()
    };
    cfg(&mut s);
    Some(Voice::new(s, 1 << 20))
}

/// A runner whose helper starts a grandchild (`sleep 1000`), writes its pid to the returned
/// file and sleeps: what the deadline and a dropped job must kill, the whole group.
fn sleeping(dir: &Path, cfg: impl FnOnce(&mut VoiceSettings)) -> Option<(Voice, PathBuf)> {
    let pid_file = dir.join("grandchild.pid");
    let script = format!(
        r#"
import subprocess, time
p = subprocess.Popen(["sleep", "1000"])
open({:?}, "w").write(str(p.pid))
time.sleep(1000)
"#,
        pid_file.to_str().expect("utf-8")
    );
    Some((runner(dir, &script, cfg)?, pid_file))
}

fn input(dir: &Path) -> std::fs::File {
    let p = dir.join("in.wav");
    std::fs::write(&p, b"RIFF....").expect("writes");
    std::fs::File::open(p).expect("opens")
}

fn gone(pid_file: &Path) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let pid = std::fs::read_to_string(pid_file).unwrap_or_default();
        let pid = pid.trim();
        if !pid.is_empty() {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| !s.contains(") Z "));
            if !alive {
                return true;
            }
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn the_helper_runs_within_its_limits_and_its_answer_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = r#"
import json, resource, socket, sys
sys.stdin.buffer.read()
names = [n for _, n in socket.if_nameindex()]
print(json.dumps({"duration_ms": 1234, "text": "%d %d %d" % (
    resource.getrlimit(resource.RLIMIT_AS)[0], resource.getrlimit(resource.RLIMIT_CPU)[0],
    resource.getrlimit(resource.RLIMIT_CORE)[0]), "network": "isolated" if names in ([], ["lo"]) else "shared",
    "words": [{"word": "hi", "start_ms": 5, "end_ms": 9}], "transcribed": True}))
"#;
    let Some(v) = runner(dir.path(), script, |s| {
        s.memory_mb = 1500;
        s.cpu_secs = 77;
    }) else {
        return;
    };
    let out = v.run(input(dir.path()), None, true).await.expect("runs");
    assert_eq!(out.text, format!("{} 77 0", 1500u64 << 20));
    assert_eq!(out.transcript().words[0].start_ms, 5);
    assert_eq!(out.duration_ms, 1234);
    // Root (or CAP_SYS_ADMIN, or unprivileged user namespaces) gets a network namespace.
    eprintln!("helper network: {}", out.network);
}

#[tokio::test]
async fn a_helper_past_its_deadline_is_killed_with_its_children() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((v, pid_file)) = sleeping(dir.path(), |s| s.timeout = Duration::from_secs(2)) else {
        return;
    };
    let err = v
        .run(input(dir.path()), None, true)
        .await
        .expect_err("killed");
    assert!(matches!(err, VoiceError::Timeout(2)), "{err:?}");
    assert!(gone(&pid_file), "the helper's child outlived the job");
    assert_eq!(v.stats().timeouts.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_dropped_job_kills_its_helper() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some((v, pid_file)) = sleeping(dir.path(), |_| {}) else {
        return;
    };
    let job = v.run(input(dir.path()), None, true);
    // The client goes away after 2 s: the job is dropped.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), job)
            .await
            .is_err()
    );
    assert!(gone(&pid_file), "the helper outlived its dropped job");
}

#[tokio::test]
async fn the_cpu_limit_stops_a_spinning_helper_and_refusals_are_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Some(v) = runner(dir.path(), "while True:\n    pass\n", |s| s.cpu_secs = 1) else {
        return;
    };
    let err = v
        .run(input(dir.path()), None, true)
        .await
        .expect_err("stopped");
    assert!(
        matches!(&err, VoiceError::Limit(m) if m.contains("CPU")),
        "{err:?}"
    );
    let refusing = r#"
import json, sys
print(json.dumps({"error": "too_long", "message": "the recording is longer than 300 s"}))
sys.exit(3)
"#;
    let Some(v) = runner(dir.path(), refusing, |_| {}) else {
        return;
    };
    let err = v
        .run(input(dir.path()), None, true)
        .await
        .expect_err("refused");
    assert!(
        matches!(&err, VoiceError::Refused(m) if m == "the recording is longer than 300 s"),
        "{err:?}"
    );
}
