//! An account's life decisions: the first claim, auto-away, the daily renewal, going
//! offline, and renaming only when the name's holders (by a majority) name another account —
//! never on one holder's word.

use chat_overlay::NodeId;
use chat_overlay::records::{Kind, Record, Value, policy};
use ed25519_dalek::SigningKey;

use super::*;

const NOW: u64 = 1_700_000_000_000;
const AWAY: u64 = 600_000;
const MAX_LEN: usize = 32;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn account(n: u8) -> [u8; 32] {
    key(n).verifying_key().to_bytes()
}

fn claim_of(name: &str, owner: u8) -> Record {
    Record::sign(
        Kind::Nick,
        normalise(name).into_bytes(),
        Value::Data(name.as_bytes().to_vec()),
        &key(owner),
        1,
        NOW,
        NOW + RECLAIM_MS * 30,
    )
}

/// An account (key 1) holding `name`, announced, at `NOW`.
fn holding(name: &str) -> Life {
    let mut l = Life::new(NOW);
    assert_eq!(l.tick(NOW, AWAY), vec![Do::ClaimFirst]);
    let c = Claim::new(name, Why::First);
    l.claimed(&c, 0, name.into(), claim_of(name, 1), NOW);
    assert_eq!(l.tick(NOW, AWAY), vec![Do::Announce]);
    l.profile(NOW).expect("a profile");
    l.announced(true);
    l
}

#[test]
fn the_first_claim_is_announced_and_only_once() {
    let mut l = Life::new(NOW);
    assert_eq!(l.profile(NOW), None, "nothing to announce without a name");
    assert_eq!(l.tick(NOW, AWAY), vec![Do::ClaimFirst], "and nothing else");
    let c = Claim::new("alice", Why::First);
    assert_eq!(c.attempts(), 0..=SUFFIX_ATTEMPTS);
    assert_eq!(c.name(0, MAX_LEN, 7), "alice");
    // The wish was taken: the second attempt's suffixed name is granted.
    let got = c.name(1, MAX_LEN, 7);
    assert_eq!(got, "alice1007");
    let note = l.claimed(&c, 1, got.clone(), claim_of(&got, 1), NOW);
    assert!(
        note.contains("alice is taken") && note.contains("alice1007"),
        "{note}"
    );
    assert_eq!(l.note(), note);
    assert_eq!(l.nick(), Some("alice1007"));
    assert_eq!(l.tick(NOW + 1, AWAY), vec![Do::Announce]);
    let p = l.profile(NOW + 1).expect("profile");
    assert_eq!(
        (p.nick.as_str(), p.presence),
        ("alice1007", Presence::Online)
    );
    let again = l.profile(NOW + 1).expect("profile");
    assert!(again.version > p.version, "each profile is newer");
    // Not published: tried again at the next tick; published: nothing more.
    l.announced(false);
    assert_eq!(l.tick(NOW + 2, AWAY), vec![Do::Announce]);
    l.announced(true);
    assert!(l.tick(NOW + 3, AWAY).is_empty());
}

#[test]
fn a_profile_signed_before_a_restart_is_older_than_the_next() {
    let mut l = holding("bob");
    l.signed_before(NOW + 50_000);
    assert_eq!(l.profile(NOW).map(|p| p.version), Some(NOW + 50_001));
}

#[test]
fn inactivity_makes_away_and_activity_ends_it() {
    let mut l = holding("carol");
    assert!(l.tick(NOW + AWAY - 1, AWAY).is_empty(), "not yet");
    assert!(l.tick(NOW + 10 * AWAY, 0).is_empty(), "zero: never");
    assert_eq!(l.tick(NOW + AWAY, AWAY), vec![Do::Announce]);
    assert_eq!(l.presence(), Presence::Away);
    assert_eq!(l.profile(NOW + AWAY).map(|p| p.since_ms), Some(NOW + AWAY));
    l.announced(true);
    assert!(l.tick(NOW + 2 * AWAY, AWAY).is_empty(), "away once");
    assert!(l.touch(NOW + 2 * AWAY), "activity ends an automatic away");
    assert_eq!(l.presence(), Presence::Online);
    assert!(l.dirty());
    l.announced(true);
    assert!(!l.touch(NOW + 2 * AWAY + 1), "nothing to end");
    // A chosen away is not ended by activity, nor overwritten by the clock.
    assert_eq!(
        l.set_away(Some("lunch".into()), NOW + 3 * AWAY),
        Some(Do::Announce)
    );
    assert!(!l.touch(NOW + 3 * AWAY + 1));
    assert!(l.tick(NOW + 5 * AWAY, AWAY).is_empty());
    assert_eq!(
        l.profile(NOW + 5 * AWAY).map(|p| p.away),
        Some("lunch".into())
    );
    assert_eq!(l.set_away(None, NOW + 6 * AWAY), Some(Do::Announce));
    assert_eq!(l.presence(), Presence::Online);
}

#[test]
fn the_claim_is_renewed_daily_and_a_renamed_renewal_announced() {
    let mut l = holding("dave");
    assert!(l.tick(NOW + RECLAIM_MS - 1, 0).is_empty());
    let acts = l.tick(NOW + RECLAIM_MS, 0);
    assert_eq!(acts, vec![Do::Claim(Claim::new("dave", Why::Renew))]);
    // Granted as it was: nothing to announce, the next renewal a day later.
    let c = Claim::new("dave", Why::Renew);
    let note = l.claimed(&c, 0, "dave".into(), claim_of("dave", 1), NOW + RECLAIM_MS);
    assert!(note.is_empty() && !l.dirty());
    assert!(l.tick(NOW + 2 * RECLAIM_MS - 1, 0).is_empty());
    // Taken meanwhile: a suffixed form, said and announced.
    let note = l.claimed(&c, 2, "dave4242".into(), claim_of("dave4242", 1), NOW);
    assert!(note.contains("dave4242"));
    assert_eq!(l.note(), note);
    assert!(l.dirty());
}

#[test]
fn a_stopping_node_announces_its_accounts_offline() {
    let mut fresh = Life::new(NOW);
    assert_eq!(fresh.go_offline(NOW), None, "no name: nothing to say");
    assert_eq!(fresh.set_away(None, NOW), None);
    let mut l = holding("erin");
    l.set_away(Some("gone".into()), NOW);
    assert_eq!(l.go_offline(NOW + 5), Some(Do::Announce));
    let p = l.profile(NOW + 5).expect("profile");
    assert_eq!(
        (p.presence, p.away.as_str(), p.since_ms),
        (Presence::Offline, "", NOW + 5)
    );
}

#[test]
fn a_node_reported_dead_announces_again() {
    let mut fresh = Life::new(NOW);
    fresh.deny_down();
    assert!(!fresh.dirty());
    let mut l = holding("frank");
    l.deny_down();
    assert_eq!(l.tick(NOW + 1, AWAY), vec![Do::Announce]);
}

/// A read of the holders of `name`.
fn read_of(name: &str) -> Do {
    Do::ReadHolders { name: name.into() }
}

/// The majority answer of three holders of `erin`, each naming the account its record is
/// from (what a claim read answers: `policy::elect` over the holders' votes).
fn majority(answers: [&Record; 3]) -> Option<[u8; 32]> {
    let loc = answers[0].location();
    let holder = |n: u8| loc.wrapping_add(&NodeId::from_high_u64(u64::from(n) << 40));
    let none: [(NodeId, &Record); 0] = [];
    policy::elect(
        &loc,
        answers
            .iter()
            .enumerate()
            .map(|(i, r)| (holder(i as u8 + 1), *r)),
        none,
        None,
    )
}

#[test]
fn a_lying_holder_refusing_the_renewal_does_not_make_the_account_rename() {
    let mut l = holding("Erin");
    let ours = claim_of("Erin", 1);
    let theirs = claim_of("erin", 2);
    // The primary holder refuses the renewal: "taken by account 2". Only a read follows.
    assert_eq!(
        l.lost(b"erin"),
        Some(read_of("erin")),
        "a read of the holders"
    );
    // The liar is the nearest holder and votes for account 2; the two others hold ours.
    let answer = majority([&theirs, &ours, &ours]);
    assert_eq!(answer, Some(account(1)));
    let kept = l.holders("erin", answer, &account(1));
    assert_eq!(kept, None, "still ours: kept");
    assert_eq!(l.nick(), Some("Erin"));
    // Nobody answered for the name: nothing to rename for either.
    assert_eq!(l.holders("erin", None, &account(1)), None);
    // Reports about another name, or before any name, ask nothing.
    assert_eq!(l.lost(b"frank"), None);
    assert_eq!(Life::new(NOW).lost(b"erin"), None);
    assert_eq!(l.tick(NOW + 1, AWAY), Vec::new(), "nothing changed");
}

#[test]
fn a_name_the_majority_gives_another_account_is_given_up_for_a_suffixed_form() {
    let mut l = holding("erin4821");
    let ours = claim_of("erin4821", 1);
    let theirs = claim_of("erin4821", 2);
    assert_eq!(l.contested(), Some(read_of("erin4821")));
    let answer = majority([&ours, &theirs, &theirs]);
    assert_eq!(answer, Some(account(2)));
    assert_eq!(
        l.holders("other", answer, &account(1)),
        None,
        "not our name"
    );
    let rename = l
        .holders("erin4821", answer, &account(1))
        .expect("a rename");
    assert_eq!(rename.wish, "erin", "the suffix comes off");
    assert_eq!(
        *rename.attempts().start(),
        1,
        "straight to the suffixed forms"
    );
    let got = rename.name(1, MAX_LEN, 1234);
    assert_eq!(got, "erin2234");
    let note = l.claimed(&rename, 1, got.clone(), claim_of(&got, 1), NOW + 9);
    assert!(note.contains("erin4821 was also granted") && note.ends_with("you are erin2234 now"));
    assert_eq!(l.nick(), Some("erin2234"));
    // The driver announces the new name at once.
    assert_eq!(l.profile(NOW + 9).map(|p| p.nick), Some(got));
}

#[test]
fn suffixes_fit_and_come_off() {
    let long = "a".repeat(MAX_LEN);
    let s = suffixed(&long, MAX_LEN, 5);
    assert_eq!(s.len(), MAX_LEN);
    assert!(s.ends_with("1005"));
    assert_eq!(suffixed("bob", MAX_LEN, 8999), "bob9999");
    assert_eq!(strip_suffix("alice4821"), "alice");
    assert_eq!(strip_suffix("bob"), "bob");
    assert_eq!(
        strip_suffix("1234"),
        "1234",
        "a name that is only digits stays"
    );
}
