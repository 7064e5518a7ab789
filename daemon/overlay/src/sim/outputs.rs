//! What the simulator does with a node's outputs: messages through the wire encoding (when
//! asked), the loss and latency model and the network counters; timers into the queue; events
//! to the bookkeeping; and which armed timers the node no longer wants.

use super::*;

impl Sim {
    /// Carries out host `i`'s outputs of one input (after checking its invariants); returns
    /// how many there were.
    pub(super) fn carry_out(&mut self, i: u32, outs: Vec<Output>) -> usize {
        let Some(node) = self.hosts[i as usize].node.as_ref() else {
            return 0;
        };
        let n = outs.len();
        if self.cfg.checks
            && let Err(e) = node.check_invariants()
        {
            panic!("host {i} broke an invariant: {e}");
        }
        let inc = self.hosts[i as usize].incarnation;
        let from = self.hosts[i as usize].peer;
        let mut replied_to: Vec<u32> = Vec::new();
        for o in outs {
            match o {
                Output::Send { to, msg } => {
                    let Some(t) = host_index(&to.addr) else {
                        continue;
                    };
                    if matches!(
                        &msg,
                        Message::Notice(Notice::Records(_))
                            | Message::Request {
                                body: Request::Records(_),
                                ..
                            }
                            | Message::Response {
                                body: Response::Records(_),
                                ..
                            }
                    ) {
                        self.net.records_messages += 1;
                    }
                    match &msg {
                        Message::Notice(Notice::Broadcast(
                            Bcast::Data { id, .. } | Bcast::Repair { id, .. },
                        )) => {
                            self.tracker.on_send(id);
                        }
                        Message::Notice(Notice::Broadcast(
                            Bcast::Ack { .. } | Bcast::Done { .. },
                        )) => {
                            self.tracker.replies += 1;
                            if !replied_to.contains(&t) {
                                replied_to.push(t);
                                self.tracker.reply_groups += 1;
                            }
                        }
                        _ => {}
                    }
                    let msg = if self.cfg.wire {
                        let encoded = crate::wire::encode(&msg);
                        if let Ok(b) = &encoded {
                            self.net.sent += 1;
                            self.net.sent_bytes += b.len() as u64;
                        }
                        match encoded.and_then(|b| crate::wire::decode(&b)) {
                            Ok(m) => m,
                            Err(e) => panic!("host {i} sent a message that does not encode: {e}"),
                        }
                    } else {
                        msg
                    };
                    if self.hold {
                        self.held.push_back((t, from, msg));
                    } else {
                        self.travel_from(i, t, from, msg);
                    }
                }
                Output::SetTimer { at, timer } => self.push(
                    at,
                    Ev::Timer {
                        node: i,
                        inc,
                        timer,
                        unwanted: false,
                    },
                ),
                Output::Event(e) => self.on_event(i, e),
            }
        }
        if self.cfg.checks {
            self.mark_unwanted(i);
        }
        n
    }

    /// Sends `msg` from host `i` to host `t` through the loss and latency model.
    fn travel_from(&mut self, i: u32, t: u32, from: Peer, msg: Message) {
        if self.cfg.loss > 0.0 && self.rng.random_bool(self.cfg.loss) {
            self.net.lost += 1;
            return;
        }
        let at = self.now + self.link_latency(i, t);
        let tinc = self.hosts.get(t as usize).map_or(0, |h| h.incarnation);
        self.push(
            at,
            Ev::Deliver {
                to: t,
                inc: tinc,
                from,
                msg,
            },
        );
    }

    /// A released held message travels like any other.
    pub(super) fn travel(&mut self, to: u32, from: Peer, msg: Message) {
        let i = self.host_of(&from.id).unwrap_or(to);
        self.travel_from(i, to, from, msg);
    }

    /// Records, for every timer of host `i` in the queue, whether the node still wants it.
    fn mark_unwanted(&mut self, i: u32) {
        let h = &self.hosts[i as usize];
        let Some(node) = h.node.as_ref() else { return };
        for ev in self.slab.iter_mut().flatten() {
            if let Ev::Timer {
                node: n,
                inc,
                timer,
                unwanted,
            } = ev
                && *n == i
                && *inc == h.incarnation
            {
                *unwanted |= !node.wants_timer(timer);
            }
        }
    }
}
