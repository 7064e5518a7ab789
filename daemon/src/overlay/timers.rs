//! The overlay's timers on tokio: a min-heap of `(deadline, timer)`, polled by the driver.
//!
//! The overlay never cancels a timer (an unwanted one is ignored when it fires), so this is a
//! plain heap. Its size follows the overlay's own bounds (pending requests and lookups); a hard
//! cap guards against a bug turning into unbounded memory.
//!
//! Most deadlines are met: every broadcast hop arms one, and its child answers long before.
//! The driver drops such timers from the front of the heap ([`Timers::drop_front_while`]) as
//! soon as the overlay no longer wants them, rather than waking up once per hop to fire them.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use chat_overlay::{Time, Timer};

/// Most timers held at once.
pub const MAX_TIMERS: usize = 65_536;

/// Armed timers.
#[derive(Debug, Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Time, Timer)>>,
}

impl Timers {
    /// Arms `timer` for `at`. Returns false (and arms nothing) when the cap is reached.
    pub fn arm(&mut self, at: Time, timer: Timer) -> bool {
        if self.heap.len() >= MAX_TIMERS {
            return false;
        }
        self.heap.push(Reverse((at, timer)));
        true
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Time> {
        self.heap.peek().map(|Reverse((at, _))| *at)
    }

    /// Drops timers from the front of the heap (earliest first) while `unwanted` holds for
    /// them; returns how many were dropped.
    pub fn drop_front_while(&mut self, unwanted: impl Fn(&Timer) -> bool) -> usize {
        let mut dropped = 0;
        while self.heap.peek().is_some_and(|Reverse((_, t))| unwanted(t)) {
            self.heap.pop();
            dropped += 1;
        }
        dropped
    }

    /// Removes and returns every timer due at `now`, earliest first.
    pub fn due(&mut self, now: Time) -> Vec<Timer> {
        let mut out = Vec::new();
        while let Some(Reverse((at, _))) = self.heap.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((_, t))) = self.heap.pop() {
                out.push(t);
            }
        }
        out
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_overlay::broadcast::BroadcastTimer;
    use chat_overlay::ring::RingTimer;

    #[test]
    fn due_timers_come_out_in_order_and_later_ones_stay() {
        let mut t = Timers::default();
        assert!(t.arm(Time(30), Timer::Ring(RingTimer::Stabilize)));
        assert!(t.arm(Time(10), Timer::Ring(RingTimer::Rpc(1))));
        assert!(t.arm(Time(20), Timer::Ring(RingTimer::Probe)));
        assert_eq!(t.next(), Some(Time(10)));
        assert_eq!(
            t.due(Time(20)),
            vec![
                Timer::Ring(RingTimer::Rpc(1)),
                Timer::Ring(RingTimer::Probe)
            ]
        );
        assert_eq!(t.len(), 1);
        assert_eq!(t.due(Time(29)), vec![]);
        assert_eq!(t.due(Time(31)), vec![Timer::Ring(RingTimer::Stabilize)]);
        assert!(t.is_empty());
    }

    #[test]
    fn unwanted_timers_are_dropped_only_from_the_front() {
        let mut t = Timers::default();
        assert!(t.arm(Time(10), Timer::Broadcast(BroadcastTimer::Ack(1))));
        assert!(t.arm(Time(20), Timer::Ring(RingTimer::Stabilize)));
        assert!(t.arm(Time(30), Timer::Broadcast(BroadcastTimer::Ack(2))));
        let unwanted = |t: &Timer| matches!(t, Timer::Broadcast(BroadcastTimer::Ack(_)));
        assert_eq!(t.drop_front_while(unwanted), 1);
        // BcastAck(2) stays behind a wanted timer until that one fires.
        assert_eq!(t.next(), Some(Time(20)));
        assert_eq!(t.due(Time(25)), vec![Timer::Ring(RingTimer::Stabilize)]);
        assert_eq!(t.drop_front_while(unwanted), 1);
        assert!(t.is_empty());
    }
}
