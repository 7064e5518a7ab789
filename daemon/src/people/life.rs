//! One hosted account's life on the network, carried out: the decisions — when its nickname
//! is claimed (with a suffix when taken, renewed daily, given up for a suffixed form only when
//! the name's holders name another account), when its profile is announced, when it goes
//! away — are the sans-IO [`chat_people::Life`]'s; this file does what it answers: puts the
//! claims through the records layer, signs and publishes the profile, reads a name's holders.

use std::hash::{BuildHasher, Hasher};
use std::time::Instant;

use chat_overlay::records::{Kind as RecordKind, Record, RecordError};
use chat_people::{Claim, Do, Why};
use tracing::{debug, info, warn};

use super::account::{CHANGES, Hosted};
use super::event::{self, Event, Profile};
use super::{People, PeopleError};
use crate::nickname::{MAX_LEN, Nickname};
use crate::overlay::OverlayHandle;
use crate::records::{LostName, RecordsError, unix_ms};

/// Takes one of `h`'s name-or-presence-change tokens.
pub(super) fn take_change(h: &Hosted) -> Result<(), PeopleError> {
    h.me()
        .changes
        .take(CHANGES, Instant::now())
        .map_err(PeopleError::TooFast)
}

impl People {
    /// Carries out `claim` for `h`: claims its names in turn while the holders answer that
    /// they are taken, and hands the one granted to the account's [`chat_people::Life`]. Returns the name
    /// got and why it differs from the wish (empty when it does not).
    pub(super) async fn carry_claim(
        &self,
        h: &Hosted,
        claim: &Claim,
    ) -> Result<(String, String), PeopleError> {
        let wish: Nickname = claim.wish.parse()?;
        for attempt in claim.attempts() {
            let name = claim.name(attempt, MAX_LEN, random());
            match self.put_claim(h, &name).await {
                Ok(record) => {
                    if attempt == 0 {
                        info!(nickname = %name, "nickname claimed");
                    } else {
                        warn!(wished = %wish, got = %name, "the nickname is taken by another user; using a suffixed form");
                    }
                    let note = h
                        .me()
                        .life
                        .claimed(claim, attempt, name.clone(), record, unix_ms());
                    return Ok((name, note));
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
                h.me().life.announced(true);
                if !line.is_empty() {
                    self.notify_watchers(line, h.account, change);
                }
                Ok(())
            }
            Err(e) => {
                h.me().life.announced(false);
                Err(e)
            }
        }
    }

    /// The event bytes of `h`'s current profile with a new version (`None` before its
    /// nickname is claimed).
    fn profile_event(&self, h: &Hosted) -> Option<Vec<u8>> {
        let now = h.me().life.profile(unix_ms())?;
        let p = Profile {
            account: h.account,
            node: self.node,
            nick: now.nick,
            claim: now.claim,
            guest: h.guest,
            presence: now.presence,
            away: now.away,
            since_ms: now.since_ms,
            version: now.version,
        };
        Some(Event::Profile(p.sign(&h.key)).encode())
    }

    /// One look at `h`'s clocks ([`chat_people::Life::tick`]): the first claim, auto-away, the daily
    /// renewal, a pending announcement; and a name conflict the directory shows.
    pub(super) async fn tick_account(&self, ring: &OverlayHandle, h: &Hosted) {
        let away_after = self.cfg.away_after.as_millis() as u64;
        let mut acts = tick_life(h, away_after);
        if acts.contains(&Do::ClaimFirst) {
            let first = h.remembered_nick().unwrap_or_else(|| h.wish.clone());
            if let Err(e) = self
                .carry_claim(h, &Claim::new(first.as_str(), Why::First))
                .await
            {
                warn!(error = %e, "could not claim the nickname yet; retrying");
                return;
            }
            acts = tick_life(h, away_after);
        }
        for a in acts {
            match a {
                Do::Claim(c) => {
                    if let Err(e) = self.carry_claim(h, &c).await {
                        warn!(error = %e, "could not renew the nickname claim");
                    }
                }
                Do::Announce => {
                    if let Err(e) = self.announce(ring, h).await {
                        debug!(error = %e, "announcement not taken yet; retrying");
                    }
                }
                Do::ClaimFirst | Do::ReadHolders { .. } => {}
            }
        }
        // Another account shows our name with a claim that beats ours (both were granted at
        // once, on both sides of a split or by holders that did not yet agree).
        if self.directory().loses_name(&h.account) {
            let read = h.me().life.contested();
            if let Some(Do::ReadHolders { name }) = read {
                self.read_holders(ring, h, &name).await;
            }
        }
    }

    /// A report that `h`'s name is held by another account (a holder refused the renewal,
    /// or two claims met): the holders are asked before anything is given up.
    pub(super) async fn on_lost(&self, ring: &OverlayHandle, h: &Hosted, lost: LostName) {
        let read = h.me().life.lost(&lost.name);
        if let Some(Do::ReadHolders { name }) = read {
            debug!(nickname = %name, holder = %hex::encode(&lost.holder[..4]), "told another key holds our nickname; asking its holders");
            self.read_holders(ring, h, &name).await;
        }
    }

    /// Asks the holders of `h`'s name (normalised `name`) who holds it — a claim read, the
    /// majority of their answers — and takes a suffixed form of it if [`chat_people::Life::holders`]
    /// says the name is another account's.
    async fn read_holders(&self, ring: &OverlayHandle, h: &Hosted, name: &str) {
        let held = match self
            .records
            .get(RecordKind::Nick, name.as_bytes().to_vec())
            .await
        {
            Ok(held) => held,
            Err(e) => {
                debug!(error = %e, "could not check who holds our nickname");
                return;
            }
        };
        let holder = held.first().map(|r| r.owner);
        let Some(rename) = h.me().life.holders(name, holder, &h.account) else {
            return;
        };
        warn!(nickname = %name, "another user holds this nickname (claimed first); renaming");
        match self.carry_claim(h, &rename).await {
            Ok(_) => {
                if let Err(e) = self.announce(ring, h).await {
                    warn!(error = %e, "could not announce the new nickname yet");
                }
            }
            Err(e) => warn!(error = %e, "could not rename after losing the nickname"),
        }
    }
}

/// [`chat_people::Life::tick`] for `h` now, saying when inactivity made it away.
fn tick_life(h: &Hosted, away_after_ms: u64) -> Vec<Do> {
    let now = unix_ms();
    let mut me = h.me();
    let was = me.life.presence();
    let acts = me.life.tick(now, away_after_ms);
    if me.life.presence() != was {
        info!(idle_secs = me.life.idle_ms(now) / 1000, "inactive: away");
    }
    acts
}

/// A fresh random number (a suffix's digits).
fn random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
