//! What the simulator records about broadcasts, independently of the nodes' own counters:
//! every payload transmission, every delivery to an application (and any second delivery of
//! the same message at the same host), the tree depth and the latency of each delivery.

use std::collections::HashMap;

use crate::Time;
use crate::broadcast::MsgId;

#[derive(Debug)]
struct One {
    started: Time,
    sends: u64,
    /// Bit per host index: delivered there.
    delivered: Vec<u64>,
}

impl One {
    fn has(&self, host: u32) -> bool {
        self.delivered
            .get(host as usize / 64)
            .is_some_and(|w| w & (1 << (host % 64)) != 0)
    }

    fn set(&mut self, host: u32) {
        let w = host as usize / 64;
        if self.delivered.len() <= w {
            self.delivered.resize(w + 1, 0);
        }
        self.delivered[w] |= 1 << (host % 64);
    }
}

/// Broadcast bookkeeping of one run.
#[derive(Debug, Default)]
pub struct Tracker {
    index: HashMap<MsgId, usize>,
    all: Vec<One>,
    /// Deliveries of a message a host had already delivered.
    pub duplicates_delivered: u64,
    /// Deepest tree delivery seen.
    pub depth_max: u8,
    /// Deliveries that came through anti-entropy rather than the tree.
    pub repaired: u64,
    /// Delivery latencies in microseconds (tree and anti-entropy).
    pub latencies_us: Vec<u64>,
    /// Broadcasts whose origin saw the whole tree complete.
    pub completed: u64,
    /// Answers to parents (`Ack`, `Done`) sent.
    pub replies: u64,
    /// Groups they left in: distinct parents per node step (a datagram each on a real link).
    pub reply_groups: u64,
    /// For the messages [`Tracker::watch`] names: when each host got them.
    pub watched: HashMap<MsgId, HashMap<u32, Time>>,
}

impl Tracker {
    /// A broadcast started at `origin` (which has it from the start).
    pub fn start(&mut self, id: MsgId, origin: u32, now: Time) {
        let mut one = One {
            started: now,
            sends: 0,
            delivered: Vec::new(),
        };
        one.set(origin);
        self.index.insert(id, self.all.len());
        self.all.push(one);
    }

    /// Keeps every host's delivery time of message `id` (started at `origin` at `at`), in
    /// [`Tracker::watched`].
    pub fn watch(&mut self, id: MsgId, origin: u32, at: Time) {
        self.watched.entry(id).or_default().insert(origin, at);
    }

    /// A payload left a node (tree send, resend, re-route or repair).
    pub fn on_send(&mut self, id: &MsgId) {
        if let Some(i) = self.index.get(id) {
            self.all[*i].sends += 1;
        }
    }

    /// A node handed the message to its application.
    pub fn on_deliver(&mut self, host: u32, id: &MsgId, depth: Option<u8>, now: Time) {
        let Some(i) = self.index.get(id) else {
            return;
        };
        let one = &mut self.all[*i];
        if one.has(host) {
            self.duplicates_delivered += 1;
            return;
        }
        one.set(host);
        if let Some(w) = self.watched.get_mut(id) {
            w.insert(host, now);
        }
        self.latencies_us
            .push(now.since(one.started).as_micros() as u64);
        match depth {
            Some(d) => self.depth_max = self.depth_max.max(d),
            None => self.repaired += 1,
        }
    }

    /// Broadcasts started.
    pub fn broadcasts(&self) -> usize {
        self.all.len()
    }

    /// Deliveries at the hosts for which `alive` is true.
    pub fn deliveries(&self, alive: &[u32]) -> u64 {
        self.all
            .iter()
            .map(|one| alive.iter().filter(|h| one.has(**h)).count() as u64)
            .sum()
    }

    /// Mean payload transmissions per broadcast.
    pub fn transmissions_mean(&self) -> f64 {
        if self.all.is_empty() {
            return 0.0;
        }
        self.all.iter().map(|o| o.sends as f64).sum::<f64>() / self.all.len() as f64
    }

    /// Payload transmissions of every broadcast so far.
    pub fn transmissions_total(&self) -> u64 {
        self.all.iter().map(|o| o.sends).sum()
    }

    /// Fewest and most transmissions of one broadcast.
    pub fn transmissions_range(&self) -> (u64, u64) {
        let it = self.all.iter().map(|o| o.sends);
        (it.clone().min().unwrap_or(0), it.max().unwrap_or(0))
    }
}
