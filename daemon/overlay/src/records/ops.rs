//! A client's operations: put (look up the key's successor, ask it to store; retried around a
//! holder that failed or whose view moved), get (ask the primary, then the other holders it
//! names; return the best verified version), and the owner's periodic re-put of its records.

use std::collections::BTreeSet;
use std::time::Duration;

use super::node::{OP, Owned, Records};
use super::policy::{self, Policy};
use super::wire::{RecordsRequest, RecordsResponse};
use super::{Kind, Record, RecordError, RecordsEvent, RecordsTimer};
use crate::id::NodeId;
use crate::protocol::{Ctx, Reply};
use crate::wire::{Peer, RECORDS, Request, Response};

/// Lookups a put or get makes before it gives up.
const TRIES: u8 = 5;
/// Wait before the second lookup when the first led to a node that does not hold the key
/// (a ring whose successor lists are still filling in); doubled for each further try.
const RETRY_DELAY: Duration = Duration::from_millis(500);
/// Pages read from one holder.
const MAX_PAGES: u8 = 64;
/// Holders' answers counted by one read (a claim's votes).
const MAX_VOTES: usize = 64;

#[derive(Debug)]
pub(super) enum OpKind {
    Put {
        record: Record,
        own: bool,
        /// The application's token; `None` for a renewal.
        token: Option<u64>,
    },
    Get {
        /// The application's token; `None` for the settlement of a disputed name.
        token: Option<u64>,
        kind: u8,
        key: Vec<u8>,
        found: Vec<Record>,
        /// Which holder answered which record (a claim's votes, [`policy::elect`]).
        votes: Vec<(NodeId, super::Hash)>,
        /// Holders asked and not yet done.
        waiting: BTreeSet<NodeId>,
        /// Holders that answered.
        answered: usize,
        /// The other holders named by the first answer were asked.
        fanned: bool,
        /// A holder that owns the key (the key's successor in its own view) answered.
        primary: bool,
        pages: u8,
    },
}

#[derive(Debug)]
pub(super) struct Op {
    kind: OpKind,
    tries: u8,
    /// Waiting for [`RecordsTimer::Retry`] rather than for an answer.
    pub(super) pending_retry: bool,
}

impl Records {
    pub(super) fn start_put(
        &mut self,
        cx: &mut Ctx<'_>,
        token: Option<u64>,
        record: Record,
        own: bool,
    ) {
        let refused = if !cx.ring().is_member() {
            Some(RecordError::NotMember)
        } else if self.ops.len() >= self.cfg.max_ops {
            Some(RecordError::Busy)
        } else if own && self.owned.len() >= self.cfg.max_owned {
            Some(RecordError::Quota(format!(
                "this node keeps {} records for its owners",
                self.cfg.max_owned
            )))
        } else {
            policy::validate(&record, &self.cfg, self.now_ms(cx)).err()
        };
        if let Some(e) = refused {
            self.put_finished(cx, token, &record, own, Err(e));
            return;
        }
        let loc = record.location();
        let id = self.new_op(OpKind::Put { record, own, token });
        cx.lookup(loc, RECORDS, OP | id);
    }

    /// Starts a read of `kind` and `key` for the application (`token`) or, with `None`, to
    /// settle a disputed name ([`Records::settled`]).
    pub(super) fn start_get(
        &mut self,
        cx: &mut Ctx<'_>,
        token: Option<u64>,
        kind: u8,
        key: Vec<u8>,
    ) {
        let refused = if !cx.ring().is_member() {
            Some(RecordError::NotMember)
        } else if self.ops.len() >= self.cfg.max_ops {
            Some(RecordError::Busy)
        } else if Kind::from_u8(kind).is_none() {
            Some(RecordError::UnknownKind(kind))
        } else if key.len() > super::MAX_KEY {
            Some(RecordError::BadKey("too long".into()))
        } else {
            None
        };
        if let Some(e) = refused {
            match token {
                Some(token) => self.get_failed(cx, token, e),
                None => self.settle_failed(kind, &key),
            }
            return;
        }
        let loc = super::location(kind, &key);
        let id = self.new_op(OpKind::Get {
            token,
            kind,
            key,
            found: Vec::new(),
            votes: Vec::new(),
            waiting: BTreeSet::new(),
            answered: 0,
            fanned: false,
            primary: false,
            pages: 0,
        });
        cx.lookup(loc, RECORDS, OP | id);
    }

    fn new_op(&mut self, kind: OpKind) -> u64 {
        let id = self.next_op;
        self.next_op = (self.next_op + 1) & ((1 << 56) - 1);
        self.ops.insert(
            id,
            Op {
                kind,
                tries: 1,
                pending_retry: false,
            },
        );
        id
    }

    /// The key's successor was found (or not).
    pub(super) fn op_lookup(&mut self, cx: &mut Ctx<'_>, id: u64, result: Option<Peer>) {
        let Some(op) = self.ops.get(&id) else { return };
        let Some(p) = result else {
            self.retry(cx, id, true);
            return;
        };
        let me = cx.me();
        match &op.kind {
            OpKind::Put { record, .. } => {
                if p.id == me.id {
                    let r = record.clone();
                    let res = self.put_here(cx, me.id, r);
                    self.put_answer(cx, id, res);
                } else {
                    let body = Request::Records(RecordsRequest::Put(record.clone()));
                    if !cx.request(p, body, RECORDS, OP | id) {
                        self.fail(cx, id, RecordError::Busy);
                    }
                }
            }
            OpKind::Get { .. } => self.ask(cx, id, p, None),
        }
    }

    /// Asks holder `p` for the op's records (from `after` on).
    fn ask(&mut self, cx: &mut Ctx<'_>, id: u64, p: Peer, after: Option<super::Hash>) {
        let Some(Op {
            kind: OpKind::Get {
                kind, key, waiting, ..
            },
            ..
        }) = self.ops.get_mut(&id)
        else {
            return;
        };
        waiting.insert(p.id);
        let me = cx.me();
        if p.id == me.id {
            let (kind, key) = (*kind, key.clone());
            let answer = self.get_here(cx, kind, &key, after);
            self.got(cx, id, me, answer);
            return;
        }
        let body = Request::Records(RecordsRequest::Get {
            kind: *kind,
            key: key.clone(),
            after,
        });
        if !cx.request(p, body, RECORDS, OP | id) {
            self.holder_done(cx, id, p.id, false);
        }
    }

    /// The outcome of a put or get request.
    pub(super) fn op_reply(&mut self, cx: &mut Ctx<'_>, id: u64, reply: Reply) {
        let Some(op) = self.ops.get(&id) else { return };
        let is_put = matches!(op.kind, OpKind::Put { .. });
        match reply {
            Reply::Answer {
                body: Response::Records(RecordsResponse::Put(res)),
                ..
            } if is_put => self.put_answer(cx, id, res),
            Reply::Answer {
                from,
                body: Response::Records(answer @ RecordsResponse::Got { .. }),
            } if !is_put => self.got(cx, id, from, answer),
            Reply::Answer { from, .. }
            | Reply::Unsupported { from }
            | Reply::Failed { to: from } => {
                if is_put {
                    self.retry(cx, id, false);
                } else {
                    self.holder_done(cx, id, from.id, false);
                }
            }
        }
    }

    fn put_answer(&mut self, cx: &mut Ctx<'_>, id: u64, res: Result<u8, RecordError>) {
        match res {
            Err(RecordError::NotResponsible | RecordError::NotMember) => self.retry(cx, id, true),
            res => {
                if let Some(op) = self.ops.remove(&id)
                    && let OpKind::Put { record, own, token } = op.kind
                {
                    self.put_finished(cx, token, &record, own, res);
                }
            }
        }
    }

    /// A get's answer from holder `from`.
    fn got(&mut self, cx: &mut Ctx<'_>, id: u64, from: Peer, answer: RecordsResponse) {
        let RecordsResponse::Got {
            records,
            replicas,
            more,
            primary: owner,
        } = answer
        else {
            return;
        };
        let now_ms = self.now_ms(cx);
        let Some(Op {
            kind:
                OpKind::Get {
                    kind,
                    key,
                    found,
                    votes,
                    fanned,
                    pages,
                    primary,
                    ..
                },
            ..
        }) = self.ops.get_mut(&id)
        else {
            return;
        };
        *primary |= owner;
        let loc = super::location(*kind, key);
        for r in records {
            // A read never returns what does not verify, nor another key's record.
            if r.kind != *kind || r.key != *key {
                cx.count_invalid();
                continue;
            }
            let already = found.iter().any(|f| f.sig == r.sig);
            if already || policy::validate(&r, &self.cfg, now_ms).is_ok() {
                if votes.len() < MAX_VOTES && !votes.iter().any(|(v, _)| *v == from.id) {
                    votes.push((from.id, r.hash()));
                }
                if !already {
                    found.push(r);
                }
            } else {
                cx.count_invalid();
            }
        }
        if let Some(after) = more
            && *pages < MAX_PAGES
        {
            *pages += 1;
            self.ask(cx, id, from, Some(after));
            return;
        }
        let fan = !*fanned && !replicas.is_empty();
        if fan {
            *fanned = true;
        }
        if fan {
            // The holders the answerer names, and those this node's own view names: a holder
            // just back from a restart names only the few neighbours it knows yet, and one
            // that lies could name only its friends.
            let mut to: Vec<Peer> = replicas.into_iter().take(self.cfg.replicas).collect();
            for p in self.view_holders(cx, &loc) {
                if !to.iter().any(|t| t.id == p.id) {
                    to.push(p);
                }
            }
            for p in to {
                let asked = match self.ops.get(&id) {
                    Some(Op {
                        kind: OpKind::Get { waiting, .. },
                        ..
                    }) => waiting.contains(&p.id),
                    _ => true,
                };
                if !asked && p.id != from.id {
                    self.ask(cx, id, p, None);
                }
            }
        }
        self.holder_done(cx, id, from.id, true);
    }

    /// Holder `who` is done (answered, or failed).
    fn holder_done(&mut self, cx: &mut Ctx<'_>, id: u64, who: NodeId, answered: bool) {
        let Some(Op {
            kind:
                OpKind::Get {
                    waiting,
                    answered: n,
                    fanned,
                    primary,
                    found,
                    ..
                },
            ..
        }) = self.ops.get_mut(&id)
        else {
            return;
        };
        waiting.remove(&who);
        if answered {
            *n += 1;
        }
        if !waiting.is_empty() {
            return;
        }
        if *n == 0 && !*fanned {
            // The node found failed before naming the others: look the key up again (the
            // ring routes around the failed node now).
            self.retry(cx, id, false);
            return;
        }
        if !*primary && found.is_empty() {
            // Only nodes that do not hold the key answered (the lookup went wrong on a ring
            // still filling its successor lists): look again a little later.
            *fanned = false;
            *n = 0;
            self.retry(cx, id, true);
            return;
        }
        let Some(Op {
            kind:
                OpKind::Get {
                    token,
                    kind,
                    key,
                    found,
                    votes,
                    answered,
                    ..
                },
            ..
        }) = self.ops.remove(&id)
        else {
            return;
        };
        let ballot = self.counted(cx, kind, &key, &found, votes);
        let Some(token) = token else {
            self.settled(cx, kind, key, found, ballot);
            return;
        };
        let result = if answered == 0 {
            self.stats.gets_failed += 1;
            Err(RecordError::Unavailable)
        } else {
            self.stats.gets_ok += 1;
            let p = Kind::from_u8(kind).map_or(Policy::Latest, Kind::policy);
            let loc = super::location(kind, &key);
            Ok(policy::resolve(p, &loc, found, &ballot))
        };
        Self::event(cx, RecordsEvent::GetDone { token, result });
    }

    /// The key's holders at `loc` as this node's own view of the ring has them (itself
    /// included): the `replicas` nodes nearest `loc` clockwise among those it knows.
    fn view_holders(&self, cx: &Ctx<'_>, loc: &NodeId) -> Vec<Peer> {
        let mut nodes = cx.ring().known_peers();
        nodes.push(cx.me());
        nodes.sort_by(|a, b| loc.cmp_from(&a.id, &b.id));
        nodes.dedup_by_key(|p| p.id);
        nodes.truncate(self.cfg.replicas.max(1));
        nodes
    }

    /// The votes of a finished read of `kind` and `key` that count, by rank
    /// ([`policy::ranked_votes`]): those of the key's holders as far as this node knows the
    /// ring (its own view and whoever answered), and those of the next `k` nodes, which only
    /// break a tie; a copy kept by a node further away (a stray a liar pushed there) is no
    /// vote. If the holders' votes name no live record while others do, all votes count as
    /// holders' votes, as before this rule (the holders did not answer in time).
    fn counted(
        &self,
        cx: &Ctx<'_>,
        kind: u8,
        key: &[u8],
        found: &[Record],
        votes: Vec<(NodeId, super::Hash)>,
    ) -> policy::Ballot {
        // Only a claim's read elects by votes; other reads ignore them.
        if Kind::from_u8(kind).map(Kind::policy) != Some(Policy::Claim) {
            return policy::Ballot {
                holders: votes,
                next: Vec::new(),
            };
        }
        let loc = super::location(kind, key);
        let mut known: Vec<NodeId> = cx.ring().known_peers().iter().map(|p| p.id).collect();
        known.push(cx.me().id);
        let ballot = policy::ranked_votes(&loc, self.cfg.replicas, &known, &votes);
        let live: BTreeSet<super::Hash> = found
            .iter()
            .filter(|r| !matches!(r.value, super::Value::Deleted))
            .map(Record::hash)
            .collect();
        let names_live = |vs: &[(NodeId, super::Hash)]| vs.iter().any(|(_, h)| live.contains(h));
        if names_live(&ballot.holders) || !names_live(&votes) {
            ballot
        } else {
            policy::Ballot {
                holders: votes,
                next: Vec::new(),
            }
        }
    }

    /// Looks the key up again (at once, or after a delay that doubles with each try), or
    /// fails after [`TRIES`].
    fn retry(&mut self, cx: &mut Ctx<'_>, id: u64, later: bool) {
        let Some(op) = self.ops.get_mut(&id) else {
            return;
        };
        if op.tries >= TRIES {
            self.fail(cx, id, RecordError::Unavailable);
            return;
        }
        op.tries += 1;
        if later {
            op.pending_retry = true;
            let at = cx.now() + RETRY_DELAY * (1 << (op.tries - 2).min(4));
            cx.set_timer(at, RecordsTimer::Retry(id).into());
            return;
        }
        self.lookup_again(cx, id);
    }

    /// A retry's wait is over.
    pub(super) fn retry_due(&mut self, cx: &mut Ctx<'_>, id: u64) {
        if let Some(op) = self.ops.get_mut(&id)
            && op.pending_retry
        {
            op.pending_retry = false;
            self.lookup_again(cx, id);
        }
    }

    fn lookup_again(&mut self, cx: &mut Ctx<'_>, id: u64) {
        let Some(op) = self.ops.get(&id) else {
            return;
        };
        let loc = match &op.kind {
            OpKind::Put { record, .. } => record.location(),
            OpKind::Get { kind, key, .. } => super::location(*kind, key),
        };
        cx.lookup(loc, RECORDS, OP | id);
    }

    fn fail(&mut self, cx: &mut Ctx<'_>, id: u64, e: RecordError) {
        let Some(op) = self.ops.remove(&id) else {
            return;
        };
        match op.kind {
            OpKind::Put { record, own, token } => {
                self.put_finished(cx, token, &record, own, Err(e))
            }
            OpKind::Get {
                token: Some(token), ..
            } => self.get_failed(cx, token, e),
            // A settlement that reached no holder: the next copy that disputes starts another.
            OpKind::Get {
                token: None,
                kind,
                key,
                ..
            } => self.settle_failed(kind, &key),
        }
    }

    fn get_failed(&mut self, cx: &mut Ctx<'_>, token: u64, e: RecordError) {
        self.stats.gets_failed += 1;
        Self::event(
            cx,
            RecordsEvent::GetDone {
                token,
                result: Err(e),
            },
        );
    }

    /// A put ended: tell the application (or, for a renewal, act on a refusal), and keep an
    /// owned record for renewal.
    fn put_finished(
        &mut self,
        cx: &mut Ctx<'_>,
        token: Option<u64>,
        record: &Record,
        own: bool,
        result: Result<u8, RecordError>,
    ) {
        if result.is_ok() {
            self.stats.puts_ok += 1;
        } else {
            self.stats.puts_failed += 1;
        }
        let h = record.hash();
        match &result {
            Ok(_) if own => self.keep_owned(record),
            Err(RecordError::Taken { holder }) if token.is_none() => {
                self.owned.remove(&h);
                Self::event(
                    cx,
                    RecordsEvent::Lost {
                        kind: record.kind,
                        key: record.key.clone(),
                        holder: *holder,
                    },
                );
            }
            Err(RecordError::Stale { .. } | RecordError::Removed | RecordError::Expired)
                if token.is_none() =>
            {
                // A newer version replaced it, or it ended: stop renewing it.
                self.owned.remove(&h);
            }
            _ => {}
        }
        if let Some(token) = token {
            Self::event(cx, RecordsEvent::PutDone { token, result });
        }
    }

    /// Keeps `record` for renewal, replacing older versions of the same kind and key.
    fn keep_owned(&mut self, record: &Record) {
        let single = Kind::from_u8(record.kind).is_some_and(|k| k.policy() != Policy::Set);
        if single {
            self.owned.retain(|_, o| {
                !(o.record.kind == record.kind && o.record.key == record.key)
                    || policy::newer(&o.record, record)
            });
            if self
                .owned
                .values()
                .any(|o| o.record.kind == record.kind && o.record.key == record.key)
            {
                return;
            }
        }
        if self.owned.len() < self.cfg.max_owned {
            self.owned.insert(
                record.hash(),
                Owned {
                    record: record.clone(),
                    told: false,
                },
            );
        }
    }

    /// The renewal round: drop expired owned records, report those close to expiry, re-put
    /// the rest (so a record whose holders all died comes back).
    pub(super) fn renew(&mut self, cx: &mut Ctx<'_>) {
        let now_ms = self.now_ms(cx);
        let before = self.cfg.renew_before.as_millis() as u64;
        self.owned.retain(|_, o| o.record.expires > now_ms);
        let mut again = Vec::new();
        for o in self.owned.values_mut() {
            if !o.told && o.record.expires <= now_ms.saturating_add(before) {
                o.told = true;
                cx.event(crate::overlay::Event::Records(RecordsEvent::Expiring(
                    o.record.clone(),
                )));
            }
            again.push(o.record.clone());
        }
        for r in again {
            if self.ops.len() >= self.cfg.max_ops / 2 {
                break;
            }
            self.stats.renewals += 1;
            self.start_put(cx, None, r, false);
        }
    }
}
