//! The user directory: every account this node has heard of, with its verified nickname,
//! presence and hosting node, built only from verified people events (`event.rs`).
//!
//! Names are unique regardless of case. A profile's claim is only the account's word: the
//! plain name goes to the account the DHT's holders name for it ([`Directory::confirm`], fed
//! by the people service's look-ups, `names.rs`). Every other account showing the name —
//! a forged profile, the loser of a conflict after a partition before its node renames it —
//! is shown as `name#abcd` (the first hex digits of its key), a form no nickname can take.
//! Until the DHT has answered for a name, a sole claimant shows it plainly and several
//! claimants all show the suffixed form: no field a claimer chose (such as the claim's
//! `created`) ever decides who gets the name. Bounded by [`MAX_USERS`].

use std::collections::{BTreeSet, HashMap, HashSet};

use chat_overlay::NodeId;

use super::event::{Presence, Profile, normalise};

/// Accounts remembered at most; profiles of new accounts past it are ignored (and counted).
pub const MAX_USERS: usize = 100_000;
/// How old the DHT's answer for a name that is not settled (several accounts show it, or
/// none of them is the holder) may grow before the name is looked up again.
pub const RECHECK_MS: u64 = 30_000;

/// The DHT's answer for a name: the account its holders name (`None`: nobody holds it), and
/// when it came (Unix milliseconds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Answer {
    holder: Option<[u8; 32]>,
    at_ms: u64,
}

/// One account as this node knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The account's public key.
    pub account: [u8; 32],
    /// The node hosting it.
    pub node: [u8; 32],
    /// Its nickname as written (without the guest's `*`).
    pub nick: String,
    /// A guest of its node's API.
    pub guest: bool,
    /// Presence.
    pub presence: Presence,
    /// Away message.
    pub away: String,
    /// Since when (Unix milliseconds).
    pub since_ms: u64,
    /// The version of the profile applied last.
    pub version: u64,
    /// The claim's rank among claims of one name: orders them only (who shows the name is
    /// the DHT's answer, never this).
    rank: (u64, [u8; 32]),
}

/// A claim's rank and the account holding it.
type Claimant = ((u64, [u8; 32]), [u8; 32]);

/// The directory.
#[derive(Debug, Default)]
pub struct Directory {
    users: HashMap<[u8; 32], User>,
    /// Normalised name → (rank, account) of every account showing it.
    names: HashMap<String, BTreeSet<Claimant>>,
    /// Normalised name → the DHT's last answer for it (names some account shows only).
    answers: HashMap<String, Answer>,
    /// Profiles ignored because the directory was full.
    pub ignored: u64,
}

/// What a directory line reports (the event log's kind for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Came online (or away) from offline.
    Join,
    /// Went offline.
    Leave,
    /// Went away, came back, or changed the away message.
    Presence,
    /// Changed nickname (and nothing of the above).
    Nick,
    /// Shown offline because its node stopped answering.
    NodeDown,
}

impl Directory {
    /// Applies a verified profile; returns the line to show for it (empty if nothing visible
    /// changed, or the profile is not newer than the one held).
    pub fn apply(&mut self, p: Profile) -> String {
        self.apply_change(p).0
    }

    /// [`Directory::apply`], with what kind of change the line reports.
    pub fn apply_change(&mut self, p: Profile) -> (String, Change) {
        let old = self.users.get(&p.account).cloned();
        if old.as_ref().is_some_and(|o| o.version >= p.version) {
            return (String::new(), Change::Nick);
        }
        if old.is_none() && self.users.len() >= MAX_USERS {
            self.ignored += 1;
            return (String::new(), Change::Nick);
        }
        let before = old.as_ref().map(|o| self.display(o));
        if let Some(o) = &old {
            self.unname(o);
        }
        let rank = (p.claim.created, *blake3::hash(&p.account).as_bytes());
        let user = User {
            account: p.account,
            node: p.node,
            nick: p.nick.trim_start_matches('*').to_owned(),
            guest: p.guest,
            presence: p.presence,
            away: p.away,
            since_ms: p.since_ms,
            version: p.version,
            rank,
        };
        self.names
            .entry(normalise(&user.nick))
            .or_default()
            .insert((rank, user.account));
        let name = self.display(&user);
        let described = describe(old.as_ref(), before.as_deref(), &user, &name);
        self.users.insert(user.account, user);
        described
    }

    /// The nodes hosting accounts shown online or away whose ids lie strictly between `from`
    /// and `to` on the ring (sorted, at most 64: `chat_people::down::online_between`).
    pub fn online_nodes_between(&self, from: &NodeId, to: &NodeId) -> Vec<NodeId> {
        let online = self
            .users
            .values()
            .filter(|u| u.presence != Presence::Offline)
            .map(|u| NodeId(u.node));
        chat_people::down::online_between(online, from, to)
    }

    /// Node `node` was seen dead: its accounts go offline. Returns a line per account.
    pub fn node_down(&mut self, node: &[u8; 32], now_ms: u64) -> Vec<String> {
        let gone: Vec<[u8; 32]> = self
            .users
            .values()
            .filter(|u| &u.node == node && u.presence != Presence::Offline)
            .map(|u| u.account)
            .collect();
        let mut lines = Vec::new();
        for a in gone {
            let name = match self.users.get(&a) {
                Some(u) => self.display(u),
                None => continue,
            };
            if let Some(u) = self.users.get_mut(&a) {
                u.presence = Presence::Offline;
                u.since_ms = now_ms;
                u.away.clear();
                lines.push(format!("← {name} left (its node stopped answering)"));
            }
        }
        lines
    }

    /// The account shown with the plain name `key` (normalised): the one the DHT names if
    /// it shows the name; before any answer, a sole claimant; else nobody.
    fn owner_of(&self, key: &str) -> Option<[u8; 32]> {
        let set = self.names.get(key)?;
        match self.answers.get(key) {
            Some(a) => a.holder.filter(|h| set.iter().any(|(_, acc)| acc == h)),
            None if set.len() == 1 => set.first().map(|(_, a)| *a),
            None => None,
        }
    }

    /// The name shown for `u`: `*nick` for a guest, `nick#abcd` for an account the DHT does
    /// not name as the holder of its nickname.
    pub fn display(&self, u: &User) -> String {
        let star = if u.guest { "*" } else { "" };
        let wins = self.owner_of(&normalise(&u.nick)) == Some(u.account);
        if wins {
            format!("{star}{}", u.nick)
        } else {
            format!("{star}{}#{}", u.nick, hex::encode(&u.account[..2]))
        }
    }

    /// Whether `account` shows a name another account's claim beats (it is shown as
    /// `name#abcd`).
    pub fn loses_name(&self, account: &[u8; 32]) -> bool {
        self.users
            .get(account)
            .is_some_and(|u| self.display(u).contains('#'))
    }

    /// The account `account`.
    pub fn get(&self, account: &[u8; 32]) -> Option<&User> {
        self.users.get(account)
    }

    /// The account shown as `name` (`*guest`, `nick`, any case; `nick#abcd` names the
    /// conflict's loser).
    pub fn find(&self, name: &str) -> Option<&User> {
        let name = name.strip_prefix('@').unwrap_or(name);
        let bare = name.strip_prefix('*').unwrap_or(name);
        let (nick, tag) = match bare.split_once('#') {
            Some((n, t)) => (n, Some(t.to_ascii_lowercase())),
            None => (bare, None),
        };
        let key = normalise(nick);
        let set = self.names.get(&key)?;
        let account = match tag {
            None => self.owner_of(&key)?,
            Some(t) => set.iter().find(|(_, a)| hex::encode(&a[..2]) == t)?.1,
        };
        self.users.get(&account)
    }

    /// The DHT's holders answered for `name` (normalised): `holder` holds it (`None`:
    /// nobody). Returns a line per account whose shown name changed.
    pub fn confirm(&mut self, name: &str, holder: Option<[u8; 32]>, now_ms: u64) -> Vec<String> {
        let accounts: Vec<[u8; 32]> = self
            .names
            .get(name)
            .map(|set| set.iter().map(|(_, a)| *a).collect())
            .unwrap_or_default();
        let before: Vec<Option<String>> = accounts
            .iter()
            .map(|a| self.users.get(a).map(|u| self.display(u)))
            .collect();
        if self.answers.len() >= MAX_USERS && !self.answers.contains_key(name) {
            let names = &self.names;
            self.answers.retain(|n, _| names.contains_key(n));
            if self.answers.len() >= MAX_USERS {
                return Vec::new();
            }
        }
        self.answers.insert(
            name.to_owned(),
            Answer {
                holder,
                at_ms: now_ms,
            },
        );
        let mut lines = Vec::new();
        for (a, was) in accounts.iter().zip(before) {
            if let (Some(u), Some(was)) = (self.users.get(a), was) {
                let now = self.display(u);
                if now != was {
                    lines.push(format!("{was} is now {now}"));
                }
            }
        }
        lines
    }

    /// Whether the account named by the DHT for `name` (normalised) is known and confirmed.
    pub fn confirmed(&self, name: &str) -> Option<[u8; 32]> {
        self.answers.get(name).and_then(|a| a.holder)
    }

    /// Whether `name` (normalised) should be looked up in the DHT (again) at `now_ms`: never
    /// answered for, or answered for more than [`RECHECK_MS`] ago without settling it (several
    /// accounts show it, or none of them is the holder).
    pub fn needs_check(&self, name: &str, now_ms: u64) -> bool {
        let Some(set) = self.names.get(name) else {
            return false;
        };
        match self.answers.get(name) {
            None => true,
            Some(a) => {
                let settled =
                    set.len() == 1 && a.holder.is_some_and(|h| set.iter().any(|(_, x)| *x == h));
                !settled && now_ms.saturating_sub(a.at_ms) > RECHECK_MS
            }
        }
    }

    /// Up to `max` names to look up (again) at `now_ms` ([`Directory::needs_check`]).
    pub fn unchecked(&self, now_ms: u64, max: usize) -> Vec<String> {
        self.names
            .keys()
            .filter(|n| self.needs_check(n, now_ms))
            .take(max)
            .cloned()
            .collect()
    }

    /// The (non-guest) account hosted by `node`, if known.
    pub fn host_of(&self, node: &[u8; 32]) -> Option<&User> {
        self.users
            .values()
            .filter(|u| &u.node == node && !u.guest)
            .max_by_key(|u| u.version)
    }

    /// The names shown for the accounts each node of `nodes` hosts (guests included, as
    /// `*name`), sorted, at most `per_node` a node; nodes hosting none known are left out.
    pub fn names_by_node(
        &self,
        nodes: &HashSet<[u8; 32]>,
        per_node: usize,
    ) -> HashMap<[u8; 32], Vec<String>> {
        let mut out: HashMap<[u8; 32], Vec<String>> = HashMap::new();
        for u in self.users.values().filter(|u| nodes.contains(&u.node)) {
            out.entry(u.node).or_default().push(self.display(u));
        }
        for names in out.values_mut() {
            names.sort();
            names.truncate(per_node);
        }
        out
    }

    /// Every account, by shown name.
    pub fn list(&self) -> Vec<(String, User)> {
        let mut all: Vec<(String, User)> = self
            .users
            .values()
            .map(|u| (self.display(u), u.clone()))
            .collect();
        all.sort_by(|a, b| {
            a.0.to_lowercase()
                .cmp(&b.0.to_lowercase())
                .then(a.0.cmp(&b.0))
        });
        all
    }

    /// Accounts known.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether no account is known.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    fn unname(&mut self, u: &User) {
        let key = normalise(&u.nick);
        if let Some(set) = self.names.get_mut(&key) {
            set.remove(&(u.rank, u.account));
            if set.is_empty() {
                self.names.remove(&key);
                self.answers.remove(&key);
            }
        }
    }
}

/// The line for a change from `old` (shown as `before`) to `new` (shown as `name`), and what
/// it reports: a change of presence, else a rename.
fn describe(old: Option<&User>, before: Option<&str>, new: &User, name: &str) -> (String, Change) {
    let mut parts = Vec::new();
    if let (Some(before), Some(_)) = (before, old)
        && before != name
    {
        parts.push(format!("{before} is now {name}"));
    }
    let was = old.map_or(Presence::Offline, |o| o.presence);
    let change = match (was, new.presence) {
        (Presence::Offline, Presence::Online) => Some((Change::Join, format!("→ {name} joined"))),
        (Presence::Offline, Presence::Away) => {
            Some((Change::Join, format!("→ {name} joined (away)")))
        }
        (Presence::Online | Presence::Away, Presence::Offline) => {
            Some((Change::Leave, format!("← {name} left")))
        }
        (Presence::Online, Presence::Away) if new.away.is_empty() => {
            Some((Change::Presence, format!("{name} is away")))
        }
        (Presence::Online, Presence::Away) => {
            Some((Change::Presence, format!("{name} is away: {}", new.away)))
        }
        (Presence::Away, Presence::Online) => Some((Change::Presence, format!("{name} is back"))),
        (Presence::Away, Presence::Away) if old.is_some_and(|o| o.away != new.away) => {
            Some((Change::Presence, format!("{name} is away: {}", new.away)))
        }
        _ => None,
    };
    let kind = change.as_ref().map_or(Change::Nick, |(k, _)| *k);
    parts.extend(change.map(|(_, line)| line));
    (parts.join("; "), kind)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_overlay::records::{Kind, Record, Value};
    use ed25519_dalek::SigningKey;

    fn profile(seed: u8, nick: &str, created: u64, version: u64, presence: Presence) -> Profile {
        let key = SigningKey::from_bytes(&[seed; 32]);
        Profile {
            account: key.verifying_key().to_bytes(),
            node: [seed; 32],
            nick: nick.into(),
            claim: Record::sign(
                Kind::Nick,
                normalise(nick).into_bytes(),
                Value::Data(nick.as_bytes().to_vec()),
                &key,
                1,
                created,
                u64::MAX / 2,
            ),
            guest: false,
            presence,
            away: String::new(),
            since_ms: version,
            version,
        }
    }

    #[test]
    fn names_by_node_groups_sorts_and_bounds() {
        let mut d = Directory::default();
        d.apply(profile(1, "zed", 1, 10, Presence::Online));
        d.apply(profile(2, "amy", 1, 10, Presence::Online));
        let mut guest = profile(3, "gus", 1, 10, Presence::Online);
        guest.node = [1; 32];
        guest.guest = true;
        d.apply(guest);
        let nodes: HashSet<[u8; 32]> = [[1; 32], [9; 32]].into_iter().collect();
        let m = d.names_by_node(&nodes, 4);
        assert_eq!(
            m.len(),
            1,
            "node 2 not asked for, node 9 hosts nobody known"
        );
        let names = &m[&[1; 32]];
        assert_eq!(names.len(), 2);
        assert!(names[0].starts_with("*gus"), "{names:?}");
        assert!(names[1].starts_with("zed"), "{names:?}");
        assert_eq!(d.names_by_node(&nodes, 1)[&[1; 32]].len(), 1, "bounded");
    }

    #[test]
    fn joins_renames_away_and_leaves_read_as_lines() {
        let mut d = Directory::default();
        assert_eq!(
            d.apply(profile(1, "bob", 1, 10, Presence::Online)),
            "→ bob joined"
        );
        // Stale and repeated profiles change nothing.
        assert_eq!(d.apply(profile(1, "bob", 1, 10, Presence::Online)), "");
        assert_eq!(
            d.apply(profile(1, "robert", 1, 11, Presence::Online)),
            "bob is now robert"
        );
        let mut away = profile(1, "robert", 1, 12, Presence::Away);
        away.away = "lunch".into();
        assert_eq!(d.apply(away), "robert is away: lunch");
        assert_eq!(
            d.apply(profile(1, "robert", 1, 13, Presence::Online)),
            "robert is back"
        );
        assert_eq!(
            d.apply(profile(1, "robert", 1, 14, Presence::Offline)),
            "← robert left"
        );
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn each_line_says_what_kind_of_change_it_reports() {
        let mut d = Directory::default();
        let kind =
            |d: &mut Directory, v, nick: &str, p| d.apply_change(profile(1, nick, 1, v, p)).1;
        assert_eq!(kind(&mut d, 10, "bob", Presence::Away), Change::Join);
        assert_eq!(kind(&mut d, 11, "bob", Presence::Online), Change::Presence);
        assert_eq!(kind(&mut d, 12, "rob", Presence::Online), Change::Nick);
        // A rename with a presence change reports the presence change.
        assert_eq!(kind(&mut d, 13, "bob", Presence::Offline), Change::Leave);
        assert_eq!(kind(&mut d, 14, "bob", Presence::Online), Change::Join);
    }

    fn names(d: &Directory) -> Vec<String> {
        d.list().into_iter().map(|(n, _)| n).collect()
    }

    fn account(seed: u8) -> [u8; 32] {
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes()
    }

    #[test]
    fn a_name_shown_twice_goes_to_the_account_the_dht_names() {
        let mut d = Directory::default();
        d.apply(profile(1, "alice", 200, 10, Presence::Online));
        assert_eq!(names(&d), vec!["alice".to_string()], "a sole claimant");
        // A second claimant with an earlier `created` (its own word): neither shows the name
        // until the DHT answers.
        d.apply(profile(2, "Alice", 100, 10, Presence::Online));
        assert!(names(&d).iter().all(|n| n.contains('#')), "{:?}", names(&d));
        assert!(d.find("alice").is_none());
        assert!(d.needs_check("alice", 1_000));
        // The DHT names the later claimant: it shows the name, the other the suffixed form.
        let lines = d.confirm("alice", Some(account(1)), 1_000);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(names(&d).contains(&"alice".to_string()), "{:?}", names(&d));
        assert!(names(&d).iter().any(|n| n.starts_with("Alice#")));
        assert_eq!(d.find("ALICE").map(|u| u.account), Some(account(1)));
        assert!(
            d.find(&format!("alice#{}", hex::encode(&account(2)[..2])))
                .is_some()
        );
        assert!(d.loses_name(&account(2)) && !d.loses_name(&account(1)));
        assert!(
            !d.needs_check("alice", 1_000 + RECHECK_MS),
            "answered lately"
        );
        assert!(
            d.needs_check("alice", 1_001 + RECHECK_MS),
            "two accounts show it: asked again later"
        );
        // The loser renames: both show plainly.
        d.apply(profile(2, "alice4821", 300, 11, Presence::Online));
        assert_eq!(
            names(&d),
            vec!["alice".to_string(), "alice4821".to_string()]
        );
    }

    #[test]
    fn a_profile_the_dht_does_not_confirm_never_shows_the_plain_name() {
        let mut d = Directory::default();
        // A forged profile, alone: the DHT says another account (unknown here) holds it.
        d.apply(profile(3, "bob", 1, 10, Presence::Online));
        assert!(d.needs_check("bob", 5));
        d.confirm("bob", Some(account(4)), 5);
        assert!(names(&d)[0].starts_with("bob#"), "{:?}", names(&d));
        assert!(d.find("bob").is_none());
        // Nobody holds it: still not the plain name; asked again later.
        d.confirm("bob", None, 10);
        assert!(names(&d)[0].starts_with("bob#"));
        assert!(!d.needs_check("bob", 10 + RECHECK_MS));
        assert!(d.needs_check("bob", 11 + RECHECK_MS));
        assert_eq!(d.unchecked(11 + RECHECK_MS, 8), vec!["bob".to_string()]);
        // The holder's profile arrives: it gets the name.
        d.apply(profile(4, "bob", 2, 10, Presence::Online));
        d.confirm("bob", Some(account(4)), 20);
        assert_eq!(d.find("bob").map(|u| u.account), Some(account(4)));
        assert!(!d.needs_check("bob", 20 + RECHECK_MS));
        assert!(
            d.needs_check("bob", 21 + RECHECK_MS),
            "the forged one still shows it"
        );
        // The forged profile's account renames: the name is settled, never asked again.
        d.apply(profile(3, "bobby", 1, 11, Presence::Online));
        assert!(!d.needs_check("bob", 20 + 10 * RECHECK_MS));
    }

    #[test]
    fn a_dead_node_takes_its_accounts_offline_until_they_speak_again() {
        let mut d = Directory::default();
        d.apply(profile(1, "carol", 1, 10, Presence::Online));
        assert_eq!(d.node_down(&[1; 32], 99).len(), 1);
        assert_eq!(
            d.host_of(&[1; 32]).map(|u| u.presence),
            Some(Presence::Offline)
        );
        assert!(d.node_down(&[1; 32], 100).is_empty());
        // Only nodes with users online count as members that should be there.
        d.apply(profile(5, "erin", 1, 10, Presence::Online));
        let between = d.online_nodes_between(&NodeId([0; 32]), &NodeId([9; 32]));
        assert_eq!(between, vec![NodeId([5; 32])]);
        assert!(
            d.online_nodes_between(&NodeId([6; 32]), &NodeId([9; 32]))
                .is_empty()
        );
        // The old profile again does not bring it back; a newer one does.
        assert_eq!(d.apply(profile(1, "carol", 1, 10, Presence::Online)), "");
        assert_eq!(
            d.apply(profile(1, "carol", 1, 11, Presence::Online)),
            "→ carol joined"
        );
    }
}
