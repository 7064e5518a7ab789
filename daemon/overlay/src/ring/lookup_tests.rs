//! Lookups that report the key's further successors, checked against the simulator's true
//! membership (what placing a private file on `k` holders relies on).

use std::time::Duration;

use super::super::tests::build;
use crate::id::NodeId;
use crate::overlay::{Event, Input};

#[test]
fn a_lookup_names_the_keys_further_successors() {
    // 40 nodes at scattered ids; lookups from several nodes for keys all round the ring:
    // the successor and the followers it reports are the key's first 5 successors, in order,
    // as the ring's true membership has them (what placing on k holders relies on).
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let ids: Vec<u64> = (0..40).map(|_| next()).collect();
    let mut net = build(&ids);
    assert!(net.ring_correct());
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    for token in 0..20u64 {
        let key = next();
        let from = (token as usize * 7) % ids.len();
        net.input(
            from,
            Input::Lookup {
                key: NodeId::from_high_u64(key),
                token: 100 + token,
            },
        );
        let t = net.now() + Duration::from_secs(5);
        net.run_until(t);
        let (found, followers) = net
            .events
            .iter()
            .find_map(|(i, e)| match e {
                Event::LookupDone {
                    token: tk,
                    result: Ok(p),
                    followers,
                    ..
                } if *i == from as u32 && *tk == 100 + token => Some((*p, followers.clone())),
                _ => None,
            })
            .expect("the lookup succeeded");
        let first = sorted.iter().position(|id| *id >= key).unwrap_or(0);
        let truth: Vec<NodeId> = (0..5)
            .map(|j| NodeId::from_high_u64(sorted[(first + j) % sorted.len()]))
            .collect();
        let got: Vec<NodeId> = std::iter::once(found.id)
            .chain(followers.iter().map(|p| p.id))
            .take(5)
            .collect();
        assert_eq!(got, truth, "key {key:#x} looked up from host {from}");
    }
}
