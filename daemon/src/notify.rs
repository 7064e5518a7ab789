//! The systemd notification protocol (`sd_notify`): how chatd tells its service manager what
//! it is doing.
//!
//! - `READY=1` once the node is a ring member — [`Node::subscribe_joined`] turns true (founding
//!   a ring counts) — never before, and only once;
//! - `STATUS=` a line for `systemctl status`: joining or in a ring, with the ring size and peer
//!   count read through a [`CountsSource`] (so the overlay driver can feed real numbers),
//!   refreshed every [`STATUS_INTERVAL`] when it changed;
//! - `WATCHDOG=1` every third of `WATCHDOG_USEC` (systemd asks for less than half) when it is set
//!   and `WATCHDOG_PID`, if set, is our process id — and only while the overlay driver's loop is
//!   turning: its heartbeat (`RingCounts::driver_turns`, at least once a second) must have moved
//!   within [`STALL_AFTER`], so a stuck driver stops the pings and systemd restarts chatd;
//! - `STOPPING=1` at the start of a shutdown, `RELOADING=1` … `READY=1` around a SIGHUP reload.
//!
//! Without `NOTIFY_SOCKET` (not run by systemd) every call does nothing. A failed send is
//! logged once and otherwise ignored: notifications must never stop the node.
//!
//! [`Node::subscribe_joined`]: crate::node::Node::subscribe_joined

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tracing::{debug, warn};

use crate::env::Env;

/// How often the STATUS= line is recomputed (it is sent only when it changed).
pub const STATUS_INTERVAL: Duration = Duration::from_secs(5);

/// The numbers STATUS= reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RingCounts {
    /// Number of nodes in the ring (this one included): exact when `ring_exact`, else an
    /// estimate.
    pub ring_size: u64,
    /// Whether `ring_size` is the exact count.
    pub ring_exact: bool,
    /// Peers this node is connected to.
    pub peers: u64,
    /// Turns of the overlay driver's loop so far (its heartbeat).
    pub driver_turns: u64,
    /// When the bootstrap is tried again, Unix milliseconds (0: it is not being retried).
    pub retry_at_unix_ms: u64,
}

/// A driver whose heartbeat has not moved for this long is stuck: no more watchdog pings.
pub const STALL_AFTER: Duration = Duration::from_secs(3);

/// Follows the driver's heartbeat as the watchdog ticks sample it.
#[derive(Debug)]
struct Heartbeat {
    turns: u64,
    moved: tokio::time::Instant,
}

impl Heartbeat {
    fn new(now: tokio::time::Instant) -> Heartbeat {
        Heartbeat {
            turns: 0,
            moved: now,
        }
    }

    /// Whether the driver turned within [`STALL_AFTER`] of `now`, given its count now.
    fn alive(&mut self, turns: u64, now: tokio::time::Instant) -> bool {
        if turns != self.turns {
            self.turns = turns;
            self.moved = now;
        }
        now.duration_since(self.moved) <= STALL_AFTER
    }
}

/// Where the STATUS= numbers come from. Any `Fn() -> RingCounts` is one.
pub trait CountsSource: Send + Sync + 'static {
    /// The numbers now.
    fn counts(&self) -> RingCounts;
}

impl<F: Fn() -> RingCounts + Send + Sync + 'static> CountsSource for F {
    fn counts(&self) -> RingCounts {
        self()
    }
}

/// Sends notifications to the service manager, if there is one.
#[derive(Debug)]
pub struct Notifier {
    enabled: bool,
    watchdog: Option<Duration>,
    ready: AtomicBool,
    warned: AtomicBool,
}

impl Notifier {
    /// A notifier for the environment chatd was started with.
    pub fn from_env(env: &Env) -> Notifier {
        Notifier {
            enabled: env.var_os("NOTIFY_SOCKET").is_some_and(|s| !s.is_empty()),
            watchdog: watchdog_interval(env, std::process::id()),
            ready: AtomicBool::new(false),
            warned: AtomicBool::new(false),
        }
    }

    /// How often [`Notifier::run`] sends `WATCHDOG=1`, if at all.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog
    }

    fn send(&self, states: &[NotifyState]) {
        if !self.enabled {
            return;
        }
        if let Err(e) = sd_notify::notify(states)
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            warn!(error = %e, "cannot notify the service manager ($NOTIFY_SOCKET); carrying on");
        }
    }

    /// `STOPPING=1`: the node is shutting down (sent before it leaves the ring).
    pub fn stopping(&self) {
        self.send(&[
            NotifyState::Stopping,
            NotifyState::Status("stopping: leaving the ring"),
        ]);
    }

    /// `RELOADING=1`: a SIGHUP reload begins.
    pub fn reloading(&self) {
        self.send(&[NotifyState::Reloading]);
    }

    /// The reload is over (applied or refused): `READY=1` again if we were ready.
    pub fn reloaded(&self) {
        if self.ready.load(Ordering::Relaxed) {
            self.send(&[NotifyState::Ready]);
        }
    }

    /// Sends READY=1 when `joined` turns true, STATUS= when it changes, and watchdog pings,
    /// until the task is dropped (the caller aborts it after shutdown, so pings go on while the
    /// node leaves the ring).
    pub async fn run(
        &self,
        mut joined: watch::Receiver<bool>,
        view: impl CountsSource,
        bootstrap_peers: usize,
    ) {
        // Without a watchdog the interval exists but its branch is disabled.
        let mut watchdog =
            tokio::time::interval(self.watchdog.unwrap_or(Duration::from_secs(3600)));
        watchdog.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut refresh = tokio::time::interval(STATUS_INTERVAL);
        refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_status = String::new();
        let mut watching = true;
        let mut heartbeat = Heartbeat::new(tokio::time::Instant::now());
        let mut stalled = false;
        loop {
            let is_joined = *joined.borrow_and_update();
            let status = status_line(is_joined, view.counts(), bootstrap_peers);
            if is_joined && !self.ready.swap(true, Ordering::Relaxed) {
                debug!(%status, "READY=1");
                self.send(&[NotifyState::Ready, NotifyState::Status(&status)]);
                last_status = status;
            } else if status != last_status {
                self.send(&[NotifyState::Status(&status)]);
                last_status = status;
            }
            tokio::select! {
                changed = joined.changed(), if watching => {
                    // The sender lives in the Node; if it is gone, keep pinging the watchdog.
                    watching = changed.is_ok();
                }
                now = watchdog.tick(), if self.watchdog.is_some() => {
                    if heartbeat.alive(view.counts().driver_turns, now) {
                        self.send(&[NotifyState::Watchdog]);
                        stalled = false;
                    } else if !stalled {
                        stalled = true;
                        warn!("the overlay driver has not turned for {STALL_AFTER:?}; no more watchdog pings");
                    }
                }
                _ = refresh.tick() => {}
            }
        }
    }
}

/// The STATUS= line.
pub fn status_line(joined: bool, counts: RingCounts, bootstrap_peers: usize) -> String {
    match (joined, bootstrap_peers) {
        (true, _) => format!(
            "in a ring of {}{} node{}, {} peer{} connected",
            if counts.ring_exact { "" } else { "about " },
            counts.ring_size,
            plural(counts.ring_size),
            counts.peers,
            plural(counts.peers)
        ),
        (false, _) if counts.retry_at_unix_ms > 0 => {
            let secs = counts.retry_at_unix_ms / 1000;
            format!(
                "no bootstrap peer reachable; retrying at {:02}:{:02}:{:02} UTC",
                secs / 3600 % 24,
                secs / 60 % 60,
                secs % 60
            )
        }
        (false, 0) => "founding a new ring".to_owned(),
        (false, n) => format!(
            "joining the ring through {n} bootstrap peer{}",
            plural(n as u64)
        ),
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The watchdog ping period: a third of `WATCHDOG_USEC` (systemd asks for less than half), if
/// it is set to a positive number and `WATCHDOG_PID` is unset or `pid`.
pub fn watchdog_interval(env: &Env, pid: u32) -> Option<Duration> {
    let usec: u64 = env.var_os("WATCHDOG_USEC")?.to_str()?.trim().parse().ok()?;
    if usec == 0 {
        return None;
    }
    if let Some(owner) = env.var_os("WATCHDOG_PID") {
        let owner: u32 = owner.to_str()?.trim().parse().ok()?;
        if owner != pid {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 3).max(Duration::from_millis(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watchdog_is_a_third_of_the_period_and_only_for_our_pid() {
        let env = |pairs: &[(&str, &str)]| Env::from_pairs(pairs.iter().copied());
        assert_eq!(
            watchdog_interval(&env(&[("WATCHDOG_USEC", "30000000")]), 7),
            Some(Duration::from_secs(10))
        );
        let ours = env(&[("WATCHDOG_USEC", "600000"), ("WATCHDOG_PID", "7")]);
        assert_eq!(
            watchdog_interval(&ours, 7),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            watchdog_interval(&ours, 8),
            None,
            "another process's watchdog"
        );
        for bad in ["0", "", "-5", "ten", "99999999999999999999999"] {
            assert_eq!(
                watchdog_interval(&env(&[("WATCHDOG_USEC", bad)]), 7),
                None,
                "{bad:?}"
            );
        }
        let bad_pid = env(&[("WATCHDOG_USEC", "600000"), ("WATCHDOG_PID", "x")]);
        assert_eq!(watchdog_interval(&bad_pid, 7), None);
        assert_eq!(watchdog_interval(&Env::default(), 7), None);
        let tiny = env(&[("WATCHDOG_USEC", "1")]);
        assert_eq!(watchdog_interval(&tiny, 7), Some(Duration::from_millis(1)));
    }

    #[test]
    fn status_lines_say_what_the_node_is_doing() {
        let c = |ring_size, peers| RingCounts {
            ring_size,
            peers,
            ring_exact: true,
            ..RingCounts::default()
        };
        assert_eq!(status_line(false, c(0, 0), 0), "founding a new ring");
        assert_eq!(
            status_line(false, c(0, 0), 2),
            "joining the ring through 2 bootstrap peers"
        );
        assert_eq!(
            status_line(false, c(0, 0), 1),
            "joining the ring through 1 bootstrap peer"
        );
        assert_eq!(
            status_line(true, c(1, 0), 0),
            "in a ring of 1 node, 0 peers connected"
        );
        assert_eq!(
            status_line(true, c(12, 5), 3),
            "in a ring of 12 nodes, 5 peers connected"
        );
        let estimated = RingCounts {
            ring_exact: false,
            ..c(40, 9)
        };
        assert_eq!(
            status_line(true, estimated, 3),
            "in a ring of about 40 nodes, 9 peers connected"
        );
        let retrying = RingCounts {
            retry_at_unix_ms: 1_800_000_123_000,
            ..RingCounts::default()
        };
        assert_eq!(
            status_line(false, retrying, 1),
            "no bootstrap peer reachable; retrying at 08:02:03 UTC"
        );
    }

    #[test]
    fn the_watchdog_is_fed_only_while_the_driver_turns() {
        let t0 = tokio::time::Instant::now();
        let mut h = Heartbeat::new(t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        // Turning: every sample sees a new count.
        assert!(h.alive(1, at(100)));
        assert!(h.alive(5, at(1_100)));
        // Between heartbeats the count may stand still for a while.
        assert!(h.alive(5, at(2_000)));
        assert!(h.alive(5, at(1_100) + STALL_AFTER));
        // Stuck past STALL_AFTER: no more pings, until it turns again.
        assert!(!h.alive(5, at(1_101) + STALL_AFTER));
        assert!(!h.alive(5, at(60_000)));
        assert!(h.alive(6, at(60_001)));
        // A driver that never turned is not alive either.
        let mut never = Heartbeat::new(t0);
        assert!(!never.alive(0, at(1) + STALL_AFTER));
    }

    #[test]
    fn without_notify_socket_nothing_is_sent() {
        let n = Notifier::from_env(&Env::from_pairs([("WATCHDOG_USEC", "3000000")]));
        assert!(!n.enabled);
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(1)));
        n.stopping(); // a no-op, and no panic
    }
}
