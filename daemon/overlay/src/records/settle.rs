//! Disputed names: a copy (from another holder, a hand-over, a stray or a restore) that names
//! another owner than the live claim a holder keeps never replaces it on its own. The holder
//! keeps its claim and asks the key's current holders what they hold (a read, `ops.rs`); the
//! owner most of them name wins ([`policy::elect`]), the same on every holder that hears the
//! same answers, so a holder that lies — or a node that planted a backdated claim in its own
//! store — is one vote. The loser is told by a [`RecordsEvent::Conflict`] where the dispute is
//! settled and by a refused renewal ([`RecordsEvent::Lost`]) at its owner's node.
//!
//! A copy of a live claim that reaches a node holding nothing for its name (a joiner that
//! became one of the name's holders, the node that replaced a crashed holder, a replica whose
//! copy of a fresh claim had not come yet) is *tentative*: the node does not keep it as its
//! own vote — else a lying holder that pushes first would have an *echo*, and the two would
//! outvote the honest holder. It settles the name first, abstaining (it holds nothing), and
//! keeps the claim of the owner the holders elect ([`Records::confirm`]); only if no node
//! answered a live claim does it keep the copy it was given.
//!
//! Settlements are bounded: one in flight per name, one per name per [`SETTLE_GAP`] sync
//! periods, at most [`MAX_DISPUTES`] names remembered (a tentative copy beyond that is
//! dropped, and comes again at the next comparison).

use std::collections::BTreeSet;

use super::node::Records;
use super::policy::{self, Ballot, Via};
use super::{Record, Value};
use crate::id::NodeId;
use crate::protocol::Ctx;
use crate::time::Time;

/// Disputed names a node remembers at once.
pub(super) const MAX_DISPUTES: usize = 256;
/// Challengers remembered per name (each told when the name is settled).
const MAX_CHALLENGERS: usize = 8;
/// Sync periods between two settlements of one name.
const SETTLE_GAP: u32 = 2;

/// A name whose held claim a copy disputed.
#[derive(Debug)]
pub(super) struct Dispute {
    kind: u8,
    key: Vec<u8>,
    /// Owners of the copies that disputed it since the last settlement.
    challengers: BTreeSet<[u8; 32]>,
    /// A settlement's read is in flight.
    running: bool,
    /// When the last settlement started.
    last: Option<Time>,
    /// The first tentative copy, if the name was empty here: kept if no node answers a live
    /// claim of the name.
    candidate: Option<Record>,
}

impl Records {
    /// A copy of `r` disputed the claim held for its name: remember it and settle the name
    /// when it is due.
    pub(super) fn dispute(&mut self, cx: &mut Ctx<'_>, r: &Record) {
        self.challenge(cx, r, false);
    }

    /// A tentative copy `r` of a live claim reached this node, which holds nothing for the
    /// name: settle the name before holding anything for it.
    pub(super) fn confirm(&mut self, cx: &mut Ctx<'_>, r: &Record) {
        self.challenge(cx, r, true);
    }

    fn challenge(&mut self, cx: &mut Ctx<'_>, r: &Record, tentative: bool) {
        let loc = r.location();
        if !self.disputes.contains_key(&loc) {
            self.prune_disputes(cx.now());
            if self.disputes.len() >= MAX_DISPUTES {
                return;
            }
        }
        let d = self.disputes.entry(loc).or_insert_with(|| Dispute {
            kind: r.kind,
            key: r.key.clone(),
            challengers: BTreeSet::new(),
            running: false,
            last: None,
            candidate: None,
        });
        if d.challengers.len() < MAX_CHALLENGERS {
            d.challengers.insert(r.owner);
        }
        if tentative && d.candidate.is_none() {
            d.candidate = Some(r.clone());
        }
        self.settle_if_due(cx, loc);
    }

    /// Starts the settlements that are due (the sync round calls it, so a dispute whose
    /// copy came while the last settlement was recent is not forgotten).
    pub(super) fn settle_due(&mut self, cx: &mut Ctx<'_>) {
        self.prune_disputes(cx.now());
        let due: Vec<NodeId> = self
            .disputes
            .iter()
            .filter(|(_, d)| !d.challengers.is_empty())
            .map(|(loc, _)| *loc)
            .collect();
        for loc in due {
            self.settle_if_due(cx, loc);
        }
    }

    fn gap(&self) -> std::time::Duration {
        self.cfg.sync_interval * SETTLE_GAP
    }

    fn settle_if_due(&mut self, cx: &mut Ctx<'_>, loc: NodeId) {
        let now = cx.now();
        let gap = self.gap();
        let Some(d) = self.disputes.get_mut(&loc) else {
            return;
        };
        if d.running || d.last.is_some_and(|t| now.since(t) < gap) || !cx.ring().is_member() {
            return;
        }
        d.running = true;
        d.last = Some(now);
        let (kind, key) = (d.kind, d.key.clone());
        self.start_get(cx, None, kind, key);
    }

    /// Forgets settled names whose pause is over.
    fn prune_disputes(&mut self, now: Time) {
        let gap = self.gap();
        self.disputes.retain(|_, d| {
            d.running || !d.challengers.is_empty() || d.last.is_some_and(|t| now.since(t) < gap)
        });
    }

    /// A settlement's read reached no holder: the next copy or sync round tries again.
    pub(super) fn settle_failed(&mut self, kind: u8, key: &[u8]) {
        if let Some(d) = self.disputes.get_mut(&super::location(kind, key)) {
            d.running = false;
        }
    }

    /// The holders answered a settlement's read: `found` the verified copies, `ballot` which
    /// node answered which. The elected owner keeps the name here; each loser is reported.
    pub(super) fn settled(
        &mut self,
        cx: &mut Ctx<'_>,
        kind: u8,
        key: Vec<u8>,
        found: Vec<Record>,
        ballot: Ballot,
    ) {
        let loc = super::location(kind, &key);
        let (challengers, candidate) = match self.disputes.get_mut(&loc) {
            Some(d) => {
                d.running = false;
                (std::mem::take(&mut d.challengers), d.candidate.take())
            }
            None => (BTreeSet::new(), None),
        };
        let now_ms = self.now_ms(cx);
        let held = self.store.get(&loc, kind, &key, now_ms);
        let empty = held.is_empty();
        let incumbent = held
            .into_iter()
            .find(|r| !matches!(r.value, Value::Deleted))
            .map(|r| r.owner);
        let Some(winner) = policy::elect_read(&loc, &found, &ballot, incumbent) else {
            // No node answered a live claim: a name empty here keeps the copy it was given
            // (a hand-over from the last node that held it), as before tentative copies.
            if let (true, Some(r)) = (empty, candidate) {
                let _ = self.offer(cx, r, Via::Settle);
            }
            return;
        };
        if Some(winner) != incumbent {
            let live = found
                .into_iter()
                .chain(candidate)
                .filter(|r| r.owner == winner && !matches!(r.value, Value::Deleted));
            if let Some(r) = policy::newest(live) {
                // Raises the conflict (winner, the incumbent) and the Held / Released events.
                let _ = self.offer(cx, r, Via::Settle);
            }
            if incumbent.is_some() {
                return;
            }
        }
        for loser in challengers.into_iter().filter(|c| *c != winner) {
            self.stats.conflicts += 1;
            Self::event(
                cx,
                super::RecordsEvent::Conflict {
                    key: key.clone(),
                    winner,
                    loser,
                },
            );
        }
    }
}
