//! A node reports its predecessor's users offline when that predecessor vanished without
//! leaving: not merely passed by a node that joined between (see [`vanished`]). It waits
//! [`REPORT_AFTER_MS`] first, so that a graceful leaver's goodbye arrives and the report is
//! not needed, and reports only if the node is still outside the ring then. Nodes the
//! directory shows online but that lie between the new predecessor and this node are not in
//! the ring either (the predecessor we knew may have died after them, before reporting them):
//! they are suspected too.

use chat_overlay::{NodeId, Peer};

/// How long a node waits for a vanished predecessor's goodbye before reporting it down.
pub const REPORT_AFTER_MS: u64 = 3_000;
/// Most suspects waiting at once (further ones are not reported by this node).
pub const MAX_SUSPECTS: usize = 64;

/// Most nodes shown online between a new predecessor and this node that one change makes
/// suspects of ([`online_between`]).
pub const MAX_BETWEEN: usize = 64;

/// The nodes among `online` (the nodes the directory shows with users online or away) that
/// lie strictly between `from` and `to`: sorted, each once, at most [`MAX_BETWEEN`] — what a
/// driver answers [`DownWatch::predecessor_changed`]'s question with.
pub fn online_between(
    online: impl IntoIterator<Item = NodeId>,
    from: &NodeId,
    to: &NodeId,
) -> Vec<NodeId> {
    let mut out: Vec<NodeId> = online.into_iter().filter(|n| n.in_open(from, to)).collect();
    out.sort();
    out.dedup();
    out.truncate(MAX_BETWEEN);
    out
}

/// The predecessor `old` is gone (not merely passed by a node that joined between it and
/// us) when the new predecessor is none, or does not lie between `old` and `me`.
pub fn vanished(old: Option<Peer>, new: Option<Peer>, me: NodeId) -> Option<NodeId> {
    let old = old?;
    match new {
        Some(n) if n.id == old.id => None,
        Some(n) if n.id.in_open(&old.id, &me) => None,
        _ => Some(old.id),
    }
}

/// One node's watch on its predecessors: feed it every predecessor change
/// ([`DownWatch::predecessor_changed`]) and ask it now and then which nodes to report down
/// ([`DownWatch::due`]).
#[derive(Clone, Debug)]
pub struct DownWatch {
    me: NodeId,
    predecessor: Option<Peer>,
    /// Suspected nodes and when they are to be reported.
    suspects: Vec<(NodeId, u64)>,
}

impl DownWatch {
    /// The watch of node `me`, just joined (no predecessor known yet).
    pub fn new(me: NodeId) -> DownWatch {
        DownWatch {
            me,
            predecessor: None,
            suspects: Vec::new(),
        }
    }

    /// The predecessor is now `new` (at `now_ms`). `online_between(from, to)` answers the
    /// nodes the directory shows with users online strictly between `from` and `to`.
    pub fn predecessor_changed(
        &mut self,
        new: Option<Peer>,
        online_between: impl FnOnce(&NodeId, &NodeId) -> Vec<NodeId>,
        now_ms: u64,
    ) {
        let me = self.me;
        let mut gone: Vec<NodeId> = vanished(self.predecessor, new, me).into_iter().collect();
        if let Some(p) = new {
            gone.extend(online_between(&p.id, &me));
        }
        let at = now_ms + REPORT_AFTER_MS;
        for dead in gone {
            if self.suspects.len() < MAX_SUSPECTS && !self.suspects.iter().any(|(d, _)| *d == dead)
            {
                self.suspects.push((dead, at));
            }
        }
        self.predecessor = new;
    }

    /// The suspects whose wait is over at `now_ms` and that are still outside the ring (not
    /// back as the predecessor, nor between it and this node): to report down now. Each is
    /// answered once.
    pub fn due(&mut self, now_ms: u64) -> Vec<NodeId> {
        let (due, wait): (Vec<_>, Vec<_>) =
            self.suspects.drain(..).partition(|(_, at)| *at <= now_ms);
        self.suspects = wait;
        let me = self.me;
        let pred = self.predecessor;
        due.into_iter()
            .map(|(dead, _)| dead)
            .filter(|dead| !pred.is_some_and(|p| p.id == *dead || !dead.in_open(&p.id, &me)))
            .collect()
    }

    /// The predecessor as last told.
    pub fn predecessor(&self) -> Option<Peer> {
        self.predecessor
    }

    /// Suspects waiting.
    pub fn waiting(&self) -> usize {
        self.suspects.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(b: u8) -> Option<Peer> {
        Some(Peer {
            id: NodeId([b; 32]),
            addr: "127.0.0.1:1".parse().expect("addr"),
        })
    }

    #[test]
    fn a_predecessor_that_vanished_is_told_from_one_passed_by_a_joiner() {
        let me = NodeId([50; 32]);
        assert_eq!(
            vanished(peer(10), peer(20), me),
            None,
            "a node joined between"
        );
        assert_eq!(vanished(peer(10), peer(5), me), Some(NodeId([10; 32])));
        assert_eq!(vanished(peer(10), None, me), Some(NodeId([10; 32])));
        assert_eq!(vanished(None, peer(5), me), None);
    }

    #[test]
    fn the_nodes_online_between_are_sorted_once_and_bounded() {
        let ids = |v: &[u8]| v.iter().map(|b| NodeId([*b; 32])).collect::<Vec<_>>();
        let from = NodeId([10; 32]);
        let to = NodeId([200; 32]);
        assert_eq!(
            online_between(ids(&[50, 5, 10, 20, 50, 200, 201]), &from, &to),
            ids(&[20, 50])
        );
        let many = (0..=255u8).map(|b| NodeId([b; 32]));
        let got = online_between(many, &from, &to);
        assert_eq!(got.len(), MAX_BETWEEN);
        assert_eq!(got[0], NodeId([11; 32]));
    }

    #[test]
    fn a_vanished_predecessor_is_reported_after_the_wait_unless_it_came_back() {
        let me = NodeId([50; 32]);
        let mut w = DownWatch::new(me);
        w.predecessor_changed(peer(10), |_, _| Vec::new(), 0);
        assert_eq!(w.waiting(), 0, "the first predecessor is no suspect");
        // 10 vanishes; 20 shows online between the new predecessor 5 and us.
        w.predecessor_changed(peer(5), |_, _| vec![NodeId([20; 32])], 1_000);
        assert!(w.due(1_000 + REPORT_AFTER_MS - 1).is_empty(), "waits");
        assert_eq!(
            w.due(1_000 + REPORT_AFTER_MS),
            vec![NodeId([10; 32]), NodeId([20; 32])]
        );
        assert!(w.due(99_000).is_empty(), "reported once");
        // 5 vanishes, then comes back before the wait is over: not reported.
        w.predecessor_changed(peer(3), |_, _| Vec::new(), 10_000);
        w.predecessor_changed(peer(5), |_, _| Vec::new(), 11_000);
        assert!(w.due(20_000).is_empty());
        // The same suspect twice waits once; the number waiting is bounded.
        for i in 0..200u8 {
            w.predecessor_changed(peer(5), |_, _| vec![NodeId([i / 2; 32])], 30_000);
        }
        assert_eq!(w.waiting(), MAX_SUSPECTS);
    }
}
