//! Names resolved through the DHT: who holds a nickname is what the `nick` claim's holders
//! answer (`records.get(Nick, name)`), never what a profile asserts.
//!
//! - [`People::resolve`]: the account a name stands for when it is used (a private message's
//!   recipient, `chatctl verify`): asked of the holders, the answer cached for [`NAME_TTL`] in
//!   a bounded cache ([`NameCache`]);
//! - [`People::check_names`]: part of the service's task — names seen in profiles are looked
//!   up in the background (a bounded queue, [`MAX_QUEUED`]) and the answers handed to the
//!   directory, which shows the plain name only for the account the holders name
//!   (`directory.rs`).
//!
//! An account's own successful claim is an answer too ([`People::learn`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use chat_overlay::records::Kind as RecordKind;
use tracing::debug;

use super::event::normalise;
use super::{Change, People, PeopleError};
use crate::nickname::Nickname;
use crate::records::unix_ms;

/// How long an answer of the holders is used for a recipient before asking again.
pub const NAME_TTL: Duration = Duration::from_secs(30);
/// Answers cached at most.
pub const MAX_CACHED: usize = 4096;
/// Names waiting for a background look-up, at most (the others are found again by the
/// periodic pass over unsettled names).
pub const MAX_QUEUED: usize = 1024;
/// How long one background look-up may take.
const LOOKUP_DEADLINE: Duration = Duration::from_secs(15);
/// How often unsettled names are looked for, and how many at a time.
const RECHECK_EVERY: Duration = Duration::from_secs(10);
const RECHECK_BATCH: usize = 32;

/// Recent answers of the holders: normalised name → holder, and when it was asked.
#[derive(Debug, Default)]
pub struct NameCache {
    map: HashMap<String, ([u8; 32], Instant)>,
}

impl NameCache {
    /// The holder of `name` if it was asked within [`NAME_TTL`] of `now`.
    pub fn get(&self, name: &str, now: Instant) -> Option<[u8; 32]> {
        self.map
            .get(name)
            .filter(|(_, at)| now.saturating_duration_since(*at) < NAME_TTL)
            .map(|(h, _)| *h)
    }

    /// Remembers that `holder` holds `name` (`None`: forgets it — nobody, or unknown).
    pub fn put(&mut self, name: &str, holder: Option<[u8; 32]>, now: Instant) {
        let Some(holder) = holder else {
            self.map.remove(name);
            return;
        };
        if self.map.len() >= MAX_CACHED && !self.map.contains_key(name) {
            self.map
                .retain(|_, (_, at)| now.saturating_duration_since(*at) < NAME_TTL);
            if self.map.len() >= MAX_CACHED {
                // Still full of fresh answers: the oldest goes.
                if let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, (_, at))| *at)
                    .map(|(n, _)| n.clone())
                {
                    self.map.remove(&oldest);
                }
            }
        }
        self.map.insert(name.to_owned(), (holder, now));
    }

    /// Answers held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Names waiting for a background look-up, each once.
#[derive(Debug, Default)]
pub struct CheckQueue {
    order: VecDeque<String>,
    queued: HashSet<String>,
}

impl CheckQueue {
    /// Queues `name` unless it waits already or the queue is full; whether it was queued.
    pub fn push(&mut self, name: String) -> bool {
        if self.order.len() >= MAX_QUEUED || self.queued.contains(&name) {
            return false;
        }
        self.queued.insert(name.clone());
        self.order.push_back(name);
        true
    }

    /// The next name to look up.
    pub fn pop(&mut self) -> Option<String> {
        let n = self.order.pop_front()?;
        self.queued.remove(&n);
        Some(n)
    }
}

/// What a name used as a recipient stands for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    /// The normalised nickname the conversation is bound under (`None`: the person was
    /// named by an explicit key form, `nick#abcd`, not by a name).
    pub name: Option<String>,
    /// The account.
    pub account: [u8; 32],
}

impl People {
    /// The account the DHT's holders name for `name` (normalised); asked of them unless a
    /// fresh answer is cached. `None`: nobody holds it.
    pub async fn holder_of(&self, name: &str) -> Result<Option<[u8; 32]>, PeopleError> {
        if let Some(h) = self.cache().get(name, Instant::now()) {
            return Ok(Some(h));
        }
        let held = self
            .records
            .get(RecordKind::Nick, name.as_bytes().to_vec())
            .await?;
        let holder = held.first().map(|r| r.owner);
        self.learn(name, holder);
        Ok(holder)
    }

    /// The account `name` (as a person writes it: `@`, `*` allowed; `nick#abcd` picks one of
    /// the accounts shown with that suffix) stands for now. `None`: nobody.
    pub async fn resolve(&self, name: &str) -> Result<Option<Resolved>, PeopleError> {
        let name = name.trim();
        let name = name.strip_prefix('@').unwrap_or(name);
        let bare = name.strip_prefix('*').unwrap_or(name);
        if bare.contains('#') {
            return Ok(self.directory().find(bare).map(|u| Resolved {
                name: None,
                account: u.account,
            }));
        }
        if bare.parse::<Nickname>().is_err() {
            return Ok(None);
        }
        let key = normalise(bare);
        Ok(self.holder_of(&key).await?.map(|account| Resolved {
            name: Some(key),
            account,
        }))
    }

    /// The normalised nickname `account` shows, if the DHT's holders named it as that
    /// name's holder (the name a conversation with it is bound under).
    pub fn confirmed_name(&self, account: &[u8; 32]) -> Option<String> {
        let dir = self.directory();
        let u = dir.get(account)?;
        let key = normalise(&u.nick);
        (dir.confirmed(&key) == Some(*account)).then_some(key)
    }

    /// The normalised nickname `account` shows (confirmed or not).
    pub fn nick_key(&self, account: &[u8; 32]) -> Option<String> {
        self.directory().get(account).map(|u| normalise(&u.nick))
    }

    /// The holders answered that `holder` holds `name` (normalised; `None`: nobody): the
    /// cache and the directory take it, and watchers are told whose shown name changed.
    pub fn learn(&self, name: &str, holder: Option<[u8; 32]>) {
        self.cache().put(name, holder, Instant::now());
        let lines = self.directory().confirm(name, holder, unix_ms());
        for l in lines {
            self.notify_watchers(l, holder.unwrap_or([0; 32]), Change::Nick);
        }
    }

    /// Queues `nick` for a background look-up if the directory wants one.
    pub(super) fn want_check(&self, nick: &str) {
        let key = normalise(nick.trim_start_matches('*'));
        if self.directory().needs_check(&key, unix_ms()) && self.checks().push(key) {
            self.check_wake.notify_one();
        }
    }

    /// The service's background look-ups: queued names, and every [`RECHECK_EVERY`] the
    /// unsettled ones. Never returns.
    pub(super) async fn check_names(&self) {
        let mut every = tokio::time::interval(RECHECK_EVERY);
        loop {
            tokio::select! {
                () = self.check_wake.notified() => {}
                _ = every.tick() => {
                    let due = self.directory().unchecked(unix_ms(), RECHECK_BATCH);
                    let mut q = self.checks();
                    for n in due {
                        q.push(n);
                    }
                }
            }
            loop {
                let next = self.checks().pop();
                let Some(name) = next else {
                    break;
                };
                if !self.directory().needs_check(&name, unix_ms()) {
                    continue;
                }
                // A fresh cached answer would not be asked again: the directory wants one.
                self.cache().put(&name, None, Instant::now());
                match tokio::time::timeout(LOOKUP_DEADLINE, self.holder_of(&name)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => debug!(name, error = %e, "could not look a nickname up"),
                    Err(_) => debug!(name, "looking a nickname up took too long"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_kept_briefly_and_the_cache_stays_bounded() {
        let mut c = NameCache::default();
        let t = Instant::now();
        c.put("alice", Some([1; 32]), t);
        assert_eq!(c.get("alice", t), Some([1; 32]));
        assert_eq!(c.get("alice", t + NAME_TTL), None, "expired");
        c.put("alice", None, t);
        assert_eq!(c.get("alice", t), None, "forgotten");
        for i in 0..MAX_CACHED + 10 {
            c.put(
                &format!("n{i}"),
                Some([2; 32]),
                t + Duration::from_millis(i as u64),
            );
        }
        assert_eq!(c.len(), MAX_CACHED);
        assert_eq!(
            c.get("n0", t + Duration::from_secs(1)),
            None,
            "the oldest went"
        );
        assert!(
            c.get(&format!("n{}", MAX_CACHED + 9), t + Duration::from_secs(1))
                .is_some()
        );
    }

    #[test]
    fn the_check_queue_holds_each_name_once_and_is_bounded() {
        let mut q = CheckQueue::default();
        assert!(q.push("a".into()));
        assert!(!q.push("a".into()));
        for i in 0..MAX_QUEUED * 2 {
            q.push(format!("n{i}"));
        }
        let mut n = 0;
        while q.pop().is_some() {
            n += 1;
        }
        assert_eq!(n, MAX_QUEUED);
        assert!(q.push("a".into()), "popped names may come again");
    }
}
