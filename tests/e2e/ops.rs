//! End-to-end tests of chatd under a service manager: the sd_notify sequence against a fake
//! `NOTIFY_SOCKET` owned by the test, SIGHUP reloads, journal-style error lines, and the exit
//! codes the unit relies on.
//!
//! No fixed sleeps and no timing-based verdicts except one, stated where it is: the watchdog
//! gap, compared with `WATCHDOG_USEC` itself (the bound after which systemd kills the service).

mod support;

#[path = "ops/failures.rs"]
mod failures;
#[path = "ops/supervision.rs"]
mod supervision;

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chatd::notify::STALL_AFTER;
use rustix::process::Signal;
use support::{Daemon, START_DEADLINE, Sandbox};

/// A fake service manager: a datagram socket that records every notification.
pub struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    /// Every message so far, with the time it arrived.
    pub messages: Vec<(Instant, String)>,
}

impl NotifySocket {
    pub fn new(sandbox: &Sandbox, name: &str) -> NotifySocket {
        let path = sandbox.path().join(name);
        let socket = UnixDatagram::bind(&path).expect("bind notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        NotifySocket {
            socket,
            path,
            messages: Vec::new(),
        }
    }

    /// Reads what has arrived (waiting at most one short read timeout).
    fn poll(&mut self) {
        let mut buf = [0u8; 4096];
        while let Ok(n) = self.socket.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.messages.push((Instant::now(), text));
        }
    }

    /// Reads until `condition` holds for the messages so far, or `deadline` passes.
    pub fn wait_for(
        &mut self,
        deadline: Duration,
        daemon: &mut Daemon,
        condition: impl Fn(&[(Instant, String)]) -> bool,
    ) -> bool {
        let end = Instant::now() + deadline;
        loop {
            self.poll();
            if condition(&self.messages) {
                return true;
            }
            if Instant::now() >= end || daemon.wait_exit(Duration::ZERO).is_some() {
                self.poll();
                return condition(&self.messages);
            }
        }
    }

    /// How many messages carry `line` (e.g. `WATCHDOG=1`).
    pub fn count(&self, line: &str) -> usize {
        count(&self.messages, line)
    }

    /// Index of the first message carrying `line`.
    pub fn first(&self, line: &str) -> Option<usize> {
        self.messages
            .iter()
            .position(|(_, m)| m.lines().any(|l| l == line))
    }

    pub fn dump(&self) -> String {
        self.messages
            .iter()
            .map(|(_, m)| m.replace('\n', " | "))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn count(messages: &[(Instant, String)], line: &str) -> usize {
    messages
        .iter()
        .filter(|(_, m)| m.lines().any(|l| l == line))
        .count()
}

/// chatd with `NOTIFY_SOCKET` set to `notify`, plus `env`.
fn chatd_notified(sandbox: &Sandbox, notify: &NotifySocket, env: &[(&str, &str)]) -> Daemon {
    let mut cmd = sandbox.chatd();
    cmd.env("NOTIFY_SOCKET", &notify.path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    sandbox.spawn(cmd, &sandbox.socket())
}

/// chatd (a test build) whose overlay driver suffers `fault` a second after joining, with a
/// watchdog of 600 ms (pings every 200 ms while the driver turns).
fn faulty_chatd(sandbox: &Sandbox, fault: &str) -> (NotifySocket, Daemon) {
    let notify = NotifySocket::new(sandbox, "notify.sock");
    let daemon = chatd_notified(
        sandbox,
        &notify,
        &[
            ("WATCHDOG_USEC", "600000"),
            ("CHAT_TEST_DRIVER_FAULT", fault),
        ],
    );
    (notify, daemon)
}

/// Supervision: an overlay driver that panics (a test build's injected fault) ends the daemon with
/// exit status 1 — systemd's `Restart=on-failure` then starts it again — and, the process being
/// gone, the watchdog pings stop.
#[test]
fn a_panicking_ring_driver_ends_the_daemon_with_an_error() {
    let sandbox = Sandbox::new();
    let (mut notify, mut daemon) = faulty_chatd(&sandbox, "panic");
    let status = daemon.wait_exit(START_DEADLINE);
    let log = daemon.log();
    let status = status.unwrap_or_else(|| panic!("chatd kept running:\n{log}"));
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains("the overlay driver panicked unexpectedly"),
        "{log}"
    );
    notify.wait_for(Duration::ZERO, &mut daemon, |_| true);
    assert!(
        notify.count("READY=1") == 1,
        "it had founded its ring:\n{}",
        notify.dump()
    );
    let pings = notify.count("WATCHDOG=1");
    // Nothing arrives once the process is gone (read until a quiet read timeout).
    notify.wait_for(Duration::from_millis(200), &mut daemon, |_| false);
    assert_eq!(notify.count("WATCHDOG=1"), pings);
}

/// An overlay driver that is stuck (a test build's injected fault blocks its thread) gets no more
/// watchdog pings once its heartbeat has stood still for `STALL_AFTER` (3 s) at most, so
/// systemd kills and restarts chatd; the process itself is still there.
#[test]
fn a_stuck_ring_driver_stops_the_watchdog() {
    let sandbox = Sandbox::new();
    let (mut notify, mut daemon) = faulty_chatd(&sandbox, "stall");
    // Pings stop: after READY=1 the last ping grows older than five ping periods, within
    // the stall bound plus the start-up deadline.
    let quiet = Duration::from_millis(1000);
    let stopped = notify.wait_for(START_DEADLINE + STALL_AFTER, &mut daemon, |m| {
        let last_ping = m
            .iter()
            .rev()
            .find(|(_, l)| l.lines().any(|l| l == "WATCHDOG=1"));
        count(m, "READY=1") == 1 && last_ping.is_some_and(|(t, _)| t.elapsed() >= quiet)
    });
    assert!(
        stopped,
        "the pings went on:\n{}\n{}",
        notify.dump(),
        daemon.log()
    );
    // And chatd did not exit on its own: systemd's watchdog is what ends it.
    assert!(daemon.wait_exit(Duration::ZERO).is_none());
}

#[test]
fn ready_after_founding_then_watchdog_then_stopping_on_sigterm() {
    let sandbox = Sandbox::new();
    let mut notify = NotifySocket::new(&sandbox, "notify.sock");
    // 1.5 s: systemd would kill us after 1.5 s without a ping; chatd pings every 0.5 s.
    let usec = 1_500_000;
    let mut daemon = chatd_notified(&sandbox, &notify, &[("WATCHDOG_USEC", "1500000")]);

    let ready = notify.wait_for(START_DEADLINE, &mut daemon, |m| count(m, "READY=1") == 1);
    assert!(
        ready,
        "no READY=1:\n{}\nlog:\n{}",
        notify.dump(),
        daemon.log()
    );
    let i = notify.first("READY=1").expect("ready");
    assert!(
        notify.messages[i]
            .1
            .contains("STATUS=in a ring of 1 node, 0 peers connected"),
        "READY comes with the ring status:\n{}",
        notify.dump()
    );
    // The control socket serves by the time READY=1 is sent.
    assert!(std::os::unix::net::UnixStream::connect(sandbox.socket()).is_ok());

    // Watchdog: wait for five pings after READY.
    let before = notify.count("WATCHDOG=1");
    let pinged = notify.wait_for(Duration::from_secs(30), &mut daemon, |m| {
        count(m, "WATCHDOG=1") >= before + 5
    });
    assert!(pinged, "too few pings:\n{}", notify.dump());
    let pings: Vec<Instant> = notify
        .messages
        .iter()
        .filter(|(_, m)| m.lines().any(|l| l == "WATCHDOG=1"))
        .map(|(t, _)| *t)
        .collect();
    let window = pings[pings.len() - 1] - pings[0];
    let period = Duration::from_micros(usec / 3);
    // Not faster than the period: at most one ping per period in the window (+1 for the ends,
    // +1 slack for a delayed tick followed by a prompt one). Load can only make this smaller.
    let most = (window.as_micros() / period.as_micros()) as usize + 2;
    assert!(
        pings.len() <= most,
        "{} pings in {window:?}, at most {most} expected",
        pings.len()
    );
    // Often enough for systemd: no gap reaches WATCHDOG_USEC (the one timing bound here: it is
    // three times the ping period, and it is what the service manager enforces).
    for pair in pings.windows(2) {
        assert!(
            pair[1] - pair[0] < Duration::from_micros(usec),
            "a watchdog gap of {:?}",
            pair[1] - pair[0]
        );
    }
    assert_eq!(notify.count("READY=1"), 1, "READY=1 is sent once");

    daemon.signal(Signal::TERM);
    let status = daemon.wait_exit(Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    notify.poll();
    let stopping = notify
        .first("STOPPING=1")
        .unwrap_or_else(|| panic!("no STOPPING=1:\n{}", notify.dump()));
    assert!(stopping > i, "STOPPING after READY");
    assert!(
        notify.messages[stopping].1.contains("STATUS=stopping"),
        "{}",
        notify.dump()
    );
}

#[test]
fn not_ready_while_joining_and_watchdog_only_for_our_pid() {
    let sandbox = Sandbox::new();
    // B: told to join through a peer (nothing answers there), watchdog for another process.
    let mut notify_b = NotifySocket::new(&sandbox, "b.sock");
    let mut cmd = sandbox.chatd();
    cmd.args(["--bootstrap", "127.0.0.1:9"])
        .env("NOTIFY_SOCKET", &notify_b.path)
        .env("WATCHDOG_USEC", "300000")
        .env("WATCHDOG_PID", "1");
    let mut b = sandbox.spawn(cmd, &sandbox.socket());
    let joining = notify_b.wait_for(START_DEADLINE, &mut b, |m| {
        m.iter()
            .any(|(_, m)| m.contains("STATUS=joining the ring through 1 bootstrap peer"))
    });
    assert!(
        joining,
        "no joining status:\n{}\n{}",
        notify_b.dump(),
        b.log()
    );
    b.wait_ready(); // the control socket serves while joining

    // A: a founding node with its own watchdog, in another sandbox, over the same window.
    let other = Sandbox::new();
    let mut notify_a = NotifySocket::new(&other, "a.sock");
    let mut a = chatd_notified(&other, &notify_a, &[("WATCHDOG_USEC", "300000")]);
    let pinged = notify_a.wait_for(START_DEADLINE, &mut a, |m| count(m, "WATCHDOG=1") >= 5);
    assert!(pinged, "A did not ping:\n{}\n{}", notify_a.dump(), a.log());

    notify_b.poll();
    assert_eq!(
        notify_b.count("READY=1"),
        0,
        "READY=1 before joining:\n{}",
        notify_b.dump()
    );
    assert_eq!(
        notify_b.count("WATCHDOG=1"),
        0,
        "pinged another process's watchdog:\n{}",
        notify_b.dump()
    );

    b.signal(Signal::TERM);
    assert!(
        b.wait_exit(Duration::from_secs(5))
            .is_some_and(|s| s.success())
    );
    notify_b.poll();
    assert_eq!(notify_b.count("STOPPING=1"), 1, "{}", notify_b.dump());
}

#[test]
fn sighup_reloads_the_log_filter_and_names_what_needs_a_restart() {
    let sandbox = Sandbox::new();
    sandbox.write_config("[log]\nfilter = \"info\"\n");
    let mut notify = NotifySocket::new(&sandbox, "notify.sock");
    let mut cmd = sandbox.chatd();
    cmd.env("NOTIFY_SOCKET", &notify.path)
        .env_remove("CHATD_LOG");
    let mut daemon = sandbox.spawn(cmd, &sandbox.socket());
    assert!(notify.wait_for(START_DEADLINE, &mut daemon, |m| count(m, "READY=1") == 1));

    sandbox.write_config(
        "[log]\nfilter = \"debug\"\n[node]\nnickname = \"carol\"\n[ring]\nstabilize_ms = 777\n\
         [chat]\nretention_messages = 12\n[transport]\nmax_connections = 33\n",
    );
    daemon.signal(Signal::HUP);
    let reloaded = notify.wait_for(START_DEADLINE, &mut daemon, |m| {
        count(m, "RELOADING=1") == 1 && count(m, "READY=1") == 2
    });
    assert!(reloaded, "{}\n{}", notify.dump(), daemon.log());
    let log = daemon.log();
    assert!(
        log.contains(r#"reloaded: log.filter is now "debug" (was "info")"#),
        "{log}"
    );
    for key in [
        "node.nickname",
        "ring.stabilize_ms",
        "chat.retention_messages",
        "transport.max_connections",
    ] {
        assert!(
            log.contains(&format!(
                "{key} changed in the configuration but needs a restart"
            )),
            "{key}: {log}"
        );
    }

    // A broken file is refused whole; the node keeps running.
    sandbox.write_config("[log]\nfilter = \"debug\"\n[node]\nnickname = \"*x\"\n");
    daemon.signal(Signal::HUP);
    let refused = support::wait_until(START_DEADLINE, || {
        daemon.log().contains(
            "reload refused, keeping the running configuration: node.nickname: invalid nickname",
        )
    });
    assert!(refused, "{}", daemon.log());
    daemon.wait_ready();
    daemon.signal(Signal::TERM);
    assert!(
        daemon
            .wait_exit(Duration::from_secs(5))
            .is_some_and(|s| s.success())
    );
}
