//! One hosted account's life on the network: its nickname claim (with a suffix when taken,
//! renewed daily, given up for a suffixed form when another account turns out to hold it),
//! its signed profile broadcast as a people event, and its presence over time.

use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use chat_overlay::records::{Kind as RecordKind, Record, RecordError};
use tracing::{debug, info, warn};

use super::account::{CHANGES, Hosted};
use super::event::{self, Event, Presence, Profile};
use super::{People, PeopleError};
use crate::nickname::{MAX_LEN, Nickname};
use crate::overlay::OverlayHandle;
use crate::records::{LostName, RecordsError, unix_ms};

/// Suffixed names tried when the wished one is taken.
const SUFFIX_ATTEMPTS: usize = 8;
/// How often a nickname claim is signed again with a fresh expiry.
const RECLAIM: Duration = Duration::from_secs(24 * 3600);

/// Takes one of `h`'s name-or-presence-change tokens.
pub(super) fn take_change(h: &Hosted) -> Result<(), PeopleError> {
    h.me()
        .changes
        .take(CHANGES, Instant::now())
        .map_err(PeopleError::TooFast)
}

impl People {
    /// Claims `wish` for `h` or, while it is taken, a suffixed form of it; the third value
    /// says why the name got differs from the wish (empty when it does not).
    pub(super) async fn claim(
        &self,
        h: &Hosted,
        wish: &Nickname,
    ) -> Result<(String, Record, String), PeopleError> {
        self.claim_from(h, wish, 0).await
    }

    /// [`People::claim`], starting at attempt `first` (0: the wish itself; 1: straight to
    /// the suffixed forms).
    async fn claim_from(
        &self,
        h: &Hosted,
        wish: &Nickname,
        first: usize,
    ) -> Result<(String, Record, String), PeopleError> {
        for attempt in first..=SUFFIX_ATTEMPTS {
            let name = if attempt == 0 {
                wish.to_string()
            } else {
                suffixed(wish.as_str())
            };
            match self.put_claim(h, &name).await {
                Ok(record) if attempt == 0 => {
                    info!(nickname = %name, "nickname claimed");
                    return Ok((name, record, String::new()));
                }
                Ok(record) => {
                    warn!(wished = %wish, got = %name, "the nickname is taken by another user; using a suffixed form");
                    let note = format!(
                        "the nickname {wish} is taken by another user on the network; you are {name} instead"
                    );
                    return Ok((name, record, note));
                }
                Err(RecordsError::Refused(RecordError::Taken { .. })) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(PeopleError::AllTaken(wish.to_string()))
    }

    /// Puts `h`'s claim of `name` (keeping the first creation time of a claim of ours from
    /// before a restart, which decides conflicts) and remembers the name.
    async fn put_claim(&self, h: &Hosted, name: &str) -> Result<Record, RecordsError> {
        let key = event::normalise(name).into_bytes();
        let created = match self.records.get(RecordKind::Nick, key.clone()).await {
            Ok(held) => held
                .iter()
                .find(|r| r.owner == h.account)
                .map(|r| r.created),
            Err(_) => None,
        };
        let (record, _) = self
            .records
            .put_as(
                &h.key,
                RecordKind::Nick,
                key,
                name.as_bytes().to_vec(),
                self.cfg.nick_ttl,
                created,
            )
            .await?;
        h.remember_nick(name);
        // The holders granted it: an answer for the name like a look-up's.
        self.learn(&event::normalise(name), Some(h.account));
        Ok(record)
    }

    /// Signs `h`'s current profile and broadcasts it.
    pub(super) async fn announce(
        &self,
        ring: &OverlayHandle,
        h: &Hosted,
    ) -> Result<(), PeopleError> {
        let Some(bytes) = self.profile_event(h) else {
            return Ok(());
        };
        let (line, change) = match Event::decode(&bytes) {
            Ok(Event::Profile(sp)) => match sp.open(&self.node) {
                Ok(p) => self.directory().apply_change(p),
                Err(_) => (String::new(), super::Change::Nick),
            },
            _ => (String::new(), super::Change::Nick),
        };
        let result = self.publish_event(ring, bytes, line.clone()).await;
        match result {
            Ok(()) => {
                h.me().dirty = false;
                if !line.is_empty() {
                    self.notify_watchers(line, h.account, change);
                }
                Ok(())
            }
            Err(e) => {
                h.me().dirty = true;
                Err(e)
            }
        }
    }

    /// The event bytes of `h`'s current profile with a new version (`None` before its
    /// nickname is claimed).
    fn profile_event(&self, h: &Hosted) -> Option<Vec<u8>> {
        let mut me = h.me();
        let (nick, claim) = (me.nick.clone()?, me.claim.clone()?);
        me.version = unix_ms().max(me.version + 1);
        let p = Profile {
            account: h.account,
            node: self.node,
            nick,
            claim,
            guest: h.guest,
            presence: me.presence,
            away: me.away.clone(),
            since_ms: me.since_ms,
            version: me.version,
        };
        Some(Event::Profile(p.sign(&h.key)).encode())
    }

    /// One look at `h`'s clocks: the first claim, auto-away, the daily renewal, a pending
    /// announcement, a name conflict.
    pub(super) async fn tick_account(&self, ring: &OverlayHandle, h: &Hosted) {
        if h.me().nick.is_none() {
            let first = h.remembered_nick().unwrap_or_else(|| h.wish.clone());
            match self.claim(h, &first).await {
                Ok((nick, claim, note)) => {
                    let mut me = h.me();
                    me.hold(nick, claim);
                    me.note = note;
                    me.dirty = true;
                }
                Err(e) => {
                    warn!(error = %e, "could not claim the nickname yet; retrying");
                    return;
                }
            }
        }
        let (dirty, reclaim) = {
            let mut me = h.me();
            let idle = me.last_active.elapsed();
            if !self.cfg.away_after.is_zero()
                && me.presence == Presence::Online
                && idle >= self.cfg.away_after
            {
                info!(idle_secs = idle.as_secs(), "inactive: away");
                me.presence = Presence::Away;
                me.auto_away = true;
                me.since_ms = unix_ms();
                me.dirty = true;
            }
            let reclaim = me.claimed_at.is_some_and(|t| t.elapsed() >= RECLAIM);
            (me.dirty, reclaim)
        };
        if reclaim {
            let held = h.me().nick.clone();
            if let Some(Ok(n)) = held.map(|w| w.parse::<Nickname>()) {
                match self.claim(h, &n).await {
                    Ok((nick, claim, note)) => {
                        let mut me = h.me();
                        me.dirty |= me.nick.as_deref() != Some(&nick);
                        if !note.is_empty() {
                            me.note = note;
                        }
                        me.hold(nick, claim);
                    }
                    Err(e) => warn!(error = %e, "could not renew the nickname claim"),
                }
            }
        }
        if dirty && let Err(e) = self.announce(ring, h).await {
            debug!(error = %e, "announcement not taken yet; retrying");
        }
        self.check_conflict(ring, h).await;
    }

    /// Another account shows `h`'s name with a claim that beats ours (both were granted at
    /// once, on both sides of a split or by holders that did not yet agree): ask the DHT who
    /// holds it, and take a suffixed name if it is not us.
    async fn check_conflict(&self, ring: &OverlayHandle, h: &Hosted) {
        if !self.directory().loses_name(&h.account) {
            return;
        }
        let Some(nick) = h.me().nick.clone() else {
            return;
        };
        let name = event::normalise(&nick).into_bytes();
        match self.records.get(RecordKind::Nick, name.clone()).await {
            Ok(held) => {
                if let Some(holder) = held.first().map(|r| r.owner)
                    && holder != h.account
                {
                    let lost = LostName {
                        owner: h.account,
                        name,
                        holder,
                    };
                    self.on_lost(ring, h, lost).await;
                }
            }
            Err(e) => debug!(error = %e, "could not check who holds our nickname"),
        }
    }

    /// `h`'s name is held by another account: take a suffixed form of it and say why.
    pub(super) async fn on_lost(&self, ring: &OverlayHandle, h: &Hosted, lost: LostName) {
        let Some(current) = h.me().nick.clone() else {
            return;
        };
        if event::normalise(&current).into_bytes() != lost.name {
            return;
        }
        warn!(nickname = %current, "another user holds this nickname (claimed first); renaming");
        let Ok(base) = strip_suffix(&current).parse::<Nickname>() else {
            return;
        };
        match self.claim_from(h, &base, 1).await {
            Ok((name, claim, _)) => {
                {
                    let mut me = h.me();
                    me.note = format!(
                        "the nickname {current} was also granted to another user who claimed it first (at the same time, or while the network was split); you are {name} now"
                    );
                    me.hold(name, claim);
                }
                if let Err(e) = self.announce(ring, h).await {
                    warn!(error = %e, "could not announce the new nickname yet");
                }
            }
            Err(e) => warn!(error = %e, "could not rename after losing the nickname"),
        }
    }
}

/// `base` with a random four-digit suffix, shortened to fit [`MAX_LEN`].
fn suffixed(base: &str) -> String {
    let n = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
        % 9000
        + 1000;
    let keep = base.len().min(MAX_LEN - 4);
    format!("{}{n}", &base[..keep])
}

/// `name` without a four-digit suffix a collision gave it.
fn strip_suffix(name: &str) -> &str {
    let b = name.as_bytes();
    if b.len() > 4 && b[b.len() - 4..].iter().all(u8::is_ascii_digit) {
        &name[..name.len() - 4]
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_fit_and_come_off() {
        let long = "a".repeat(MAX_LEN);
        let s = suffixed(&long);
        assert_eq!(s.len(), MAX_LEN);
        assert!(s.parse::<Nickname>().is_ok());
        assert_eq!(strip_suffix("alice4821"), "alice");
        assert_eq!(strip_suffix("bob"), "bob");
    }
}
