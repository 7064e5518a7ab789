//! One hosted account's life, without I/O: when its nickname is claimed (first, renewed
//! daily, again under a suffixed form when taken or lost), when its profile is announced
//! (a change, auto-away, going offline at a stop), and when a name it may have lost is
//! checked with the name's holders before it renames. The daemon's people service
//! (`daemon/src/people/life.rs`) keeps one [`Life`] per hosted account and carries out what
//! it answers: puts a claim, publishes the profile, reads the holders.
//!
//! In: the clock ([`Life::tick`], unix milliseconds passed in), the person's doings
//! ([`Life::touch`], [`Life::set_away`], [`Life::go_offline`]), a claim's outcome
//! ([`Life::claimed`]), an announcement's ([`Life::announced`]), a report that the name may
//! be lost ([`Life::lost`], [`Life::contested`]) and the holders' answer
//! ([`Life::holders`]). Out: [`Do`]s and [`Claim`]s.
//!
//! - A name is lost only when the holders' answer says so. A report that another key holds
//!   it (a holder refused the renewal, two claims met after a partition, another account's
//!   profile shows the name) asks first for a read of the name's holders — a majority
//!   answer ([`chat_overlay::records::policy::elect`]), so one lying holder cannot make the
//!   account rename — and the account renames only when the answer names another account.
//! - A claim tries the wished name, then up to [`SUFFIX_ATTEMPTS`] suffixed forms while the
//!   holders answer that it is taken ([`Claim::name`]); a rename after a lost name starts at
//!   the suffixed forms of the name without its suffix.

use std::ops::RangeInclusive;

use chat_overlay::records::Record;
use serde::{Deserialize, Serialize};

/// Suffixed names tried when the wished one is taken.
pub const SUFFIX_ATTEMPTS: usize = 8;
/// How often a nickname claim is signed again with a fresh expiry (milliseconds).
pub const RECLAIM_MS: u64 = 24 * 3600 * 1000;

/// An account's presence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Presence {
    /// Its node is up and the person was active lately.
    Online,
    /// Said so, or inactive for `chat.away_after_secs`.
    Away,
    /// Its node stopped, or was seen dead by its ring neighbour.
    Offline,
}

impl Presence {
    /// `online`, `away` or `offline`.
    pub fn as_str(self) -> &'static str {
        match self {
            Presence::Online => "online",
            Presence::Away => "away",
            Presence::Offline => "offline",
        }
    }
}

/// The form of a nickname that claims and look-ups use (case does not make another name).
pub fn normalise(nick: &str) -> String {
    nick.to_ascii_lowercase()
}

/// `base` with the four-digit suffix `random` picks (1000–9999), shortened so the whole
/// fits `max_len` bytes.
pub fn suffixed(base: &str, max_len: usize, random: u64) -> String {
    let n = random % 9000 + 1000;
    let mut keep = base.len().min(max_len.saturating_sub(4));
    while !base.is_char_boundary(keep) {
        keep -= 1;
    }
    format!("{}{n}", &base[..keep])
}

/// `name` without a four-digit suffix a collision gave it.
pub fn strip_suffix(name: &str) -> &str {
    let b = name.as_bytes();
    if b.len() > 4 && b[b.len() - 4..].iter().all(u8::is_ascii_digit) {
        &name[..name.len() - 4]
    } else {
        name
    }
}

/// Why a claim is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// The account has no name yet (its first tick, or after a restart).
    First,
    /// The daily renewal of the name held.
    Renew,
    /// The person asked for the name.
    Set,
    /// The name `lost` turned out to be another account's (the holders said so).
    Rename {
        /// The name lost, as the account wrote it.
        lost: String,
    },
}

/// A claim to carry out: put a claim of [`Claim::name`] for each attempt in
/// [`Claim::attempts`] in turn, the next one only while the holders answer that the name is
/// taken; hand the first granted to [`Life::claimed`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The name wished for (the base of the suffixed forms).
    pub wish: String,
    /// Why.
    pub why: Why,
}

impl Claim {
    /// A claim of `wish` for `why`.
    pub fn new(wish: impl Into<String>, why: Why) -> Claim {
        Claim {
            wish: wish.into(),
            why,
        }
    }

    /// The attempts to make: 0 is the wish itself, the others suffixed forms (a rename
    /// starts at those: the plain name is the one lost).
    pub fn attempts(&self) -> RangeInclusive<usize> {
        let first = usize::from(matches!(self.why, Why::Rename { .. }));
        first..=SUFFIX_ATTEMPTS
    }

    /// The name to claim at `attempt` (`random`: a fresh random number; `max_len`: the
    /// longest nickname, in bytes).
    pub fn name(&self, attempt: usize, max_len: usize, random: u64) -> String {
        if attempt == 0 {
            self.wish.clone()
        } else {
            suffixed(&self.wish, max_len, random)
        }
    }
}

/// What the account's life asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Do {
    /// Claim a first name: the one held before a restart, if remembered for the same wish,
    /// else the wish ([`Claim::new`] with [`Why::First`]).
    ClaimFirst,
    /// Carry out a claim.
    Claim(Claim),
    /// Sign the profile ([`Life::profile`]) and publish it; answer [`Life::announced`].
    Announce,
    /// Ask the holders of the (normalised) name who holds it, by a majority of their
    /// answers; answer [`Life::holders`].
    ReadHolders {
        /// The normalised name.
        name: String,
    },
}

/// What a profile announced now says (its version is new).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// The nickname.
    pub nick: String,
    /// Its claim record.
    pub claim: Record,
    /// Presence.
    pub presence: Presence,
    /// Away message.
    pub away: String,
    /// Since when (unix milliseconds).
    pub since_ms: u64,
    /// The profile's version.
    pub version: u64,
}

/// One hosted account's own state and the decisions about it.
#[derive(Clone, Debug)]
pub struct Life {
    nick: Option<String>,
    claim: Option<Record>,
    note: String,
    presence: Presence,
    away: String,
    auto_away: bool,
    since_ms: u64,
    version: u64,
    last_active_ms: u64,
    claimed_at_ms: Option<u64>,
    dirty: bool,
}

impl Life {
    /// A new account's life at `now_ms`: online, active, no name yet.
    pub fn new(now_ms: u64) -> Life {
        Life {
            nick: None,
            claim: None,
            note: String::new(),
            presence: Presence::Online,
            away: String::new(),
            auto_away: false,
            since_ms: now_ms,
            version: 0,
            last_active_ms: now_ms,
            claimed_at_ms: None,
            dirty: false,
        }
    }

    /// The nickname held (none until claimed).
    pub fn nick(&self) -> Option<&str> {
        self.nick.as_deref()
    }

    /// Why the name is not the one wished for (empty when it is).
    pub fn note(&self) -> &str {
        &self.note
    }

    /// Presence.
    pub fn presence(&self) -> Presence {
        self.presence
    }

    /// A profile waits to be announced.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// Profiles of this account up to `version` exist already (from before a restart): the
    /// next one is newer.
    pub fn signed_before(&mut self, version: u64) {
        self.version = self.version.max(version);
    }

    /// The clock at `now_ms` (the service's tick; `away_after_ms`: inactivity after which the
    /// account goes away, zero for never). Without a name: [`Do::ClaimFirst`] only (tick
    /// again once it is held). Else auto-away, the daily renewal, and the announcement of a
    /// change (decided before the renewal: a renamed renewal is announced at the next tick).
    pub fn tick(&mut self, now_ms: u64, away_after_ms: u64) -> Vec<Do> {
        let Some(nick) = self.nick.clone() else {
            return vec![Do::ClaimFirst];
        };
        if away_after_ms != 0
            && self.presence == Presence::Online
            && self.idle_ms(now_ms) >= away_after_ms
        {
            self.presence = Presence::Away;
            self.auto_away = true;
            self.since_ms = now_ms;
            self.dirty = true;
        }
        let mut out = Vec::new();
        if self
            .claimed_at_ms
            .is_some_and(|t| now_ms.saturating_sub(t) >= RECLAIM_MS)
        {
            out.push(Do::Claim(Claim::new(nick, Why::Renew)));
        }
        if self.dirty {
            out.push(Do::Announce);
        }
        out
    }

    /// How long the person has done nothing, at `now_ms`.
    pub fn idle_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_active_ms)
    }

    /// The person did something at `now_ms`: the inactivity clock restarts and an automatic
    /// away ends. Whether a profile is now to be announced.
    pub fn touch(&mut self, now_ms: u64) -> bool {
        self.last_active_ms = now_ms;
        if self.auto_away && self.presence == Presence::Away {
            self.auto_away = false;
            self.presence = Presence::Online;
            self.away.clear();
            self.since_ms = now_ms;
            self.dirty = true;
            return true;
        }
        false
    }

    /// The person goes away with `message` (`None`: back online) at `now_ms`; `None` before
    /// the account holds a name (nothing to announce).
    pub fn set_away(&mut self, message: Option<String>, now_ms: u64) -> Option<Do> {
        self.nick.as_ref()?;
        self.last_active_ms = now_ms;
        self.auto_away = false;
        self.presence = if message.is_some() {
            Presence::Away
        } else {
            Presence::Online
        };
        self.away = message.unwrap_or_default();
        self.since_ms = now_ms;
        Some(Do::Announce)
    }

    /// The node stops at `now_ms`: the account goes offline, announced if it holds a name.
    pub fn go_offline(&mut self, now_ms: u64) -> Option<Do> {
        self.nick.as_ref()?;
        self.presence = Presence::Offline;
        self.away.clear();
        self.since_ms = now_ms;
        Some(Do::Announce)
    }

    /// The node was reported dead while it is not: the profile is announced again (if the
    /// account holds a name).
    pub fn deny_down(&mut self) {
        self.dirty |= self.nick.is_some();
    }

    /// The name `got` was granted (`record` its claim) at attempt `attempt` of `claim`, at
    /// `now_ms`; returns why it differs from the wish (empty when it does not).
    pub fn claimed(
        &mut self,
        claim: &Claim,
        attempt: usize,
        got: String,
        record: Record,
        now_ms: u64,
    ) -> String {
        let note = match &claim.why {
            Why::Rename { lost } => format!(
                "the nickname {lost} was also granted to another user who claimed it first (at the same time, or while the network was split); you are {got} now"
            ),
            _ if attempt == 0 => String::new(),
            _ => format!(
                "the nickname {} is taken by another user on the network; you are {got} instead",
                claim.wish
            ),
        };
        match &claim.why {
            Why::First => {
                self.note = note.clone();
                self.dirty = true;
            }
            Why::Renew => {
                self.dirty |= self.nick.as_deref() != Some(got.as_str());
                if !note.is_empty() {
                    self.note = note.clone();
                }
            }
            Why::Set => {
                self.note = note.clone();
                self.last_active_ms = now_ms;
            }
            Why::Rename { .. } => self.note = note.clone(),
        }
        self.nick = Some(got);
        self.claim = Some(record);
        self.claimed_at_ms = Some(now_ms);
        note
    }

    /// The next profile to announce, with a new version (`None` before a name is held).
    pub fn profile(&mut self, now_ms: u64) -> Option<Snapshot> {
        let (nick, claim) = (self.nick.clone()?, self.claim.clone()?);
        self.version = now_ms.max(self.version + 1);
        Some(Snapshot {
            nick,
            claim,
            presence: self.presence,
            away: self.away.clone(),
            since_ms: self.since_ms,
            version: self.version,
        })
    }

    /// The announcement was published (`ok`) or not (it is tried again at the next tick).
    pub fn announced(&mut self, ok: bool) {
        self.dirty = !ok;
    }

    /// Another account's profile shows this account's name with a claim that beats ours:
    /// read the holders (`None` without a name).
    pub fn contested(&self) -> Option<Do> {
        Some(Do::ReadHolders {
            name: normalise(self.nick.as_deref()?),
        })
    }

    /// A report that the normalised `name` is held by another key (a holder refused our
    /// renewal, or two claims met): read the holders, if it is still the name held. The
    /// report alone is never enough to rename — the holder that sent it may lie.
    pub fn lost(&self, name: &[u8]) -> Option<Do> {
        let current = normalise(self.nick.as_deref()?);
        (current.as_bytes() == name).then_some(Do::ReadHolders { name: current })
    }

    /// The holders of the normalised `name` answered that `holder` holds it (`None`:
    /// nobody); `me` is this account. A rename when the name is still ours here and the
    /// answer names another account; nothing otherwise.
    pub fn holders(&self, name: &str, holder: Option<[u8; 32]>, me: &[u8; 32]) -> Option<Claim> {
        let current = self.nick.as_deref()?;
        if normalise(current) != name || holder.is_none_or(|h| &h == me) {
            return None;
        }
        Some(Claim::new(
            strip_suffix(current),
            Why::Rename {
                lost: current.to_owned(),
            },
        ))
    }
}

#[cfg(test)]
#[path = "life_tests.rs"]
mod tests;
