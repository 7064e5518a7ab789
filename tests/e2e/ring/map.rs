//! The ring's map data and honest sizes with real daemons: in a 10-node ring every node's
//! `chatctl ring --json` lists the nine others (connected, with their RTT and nicknames) and
//! says the ring has exactly 10 nodes, as `chatctl status` does; in a 2-node ring both nodes
//! say 2 (the estimate from the successor's distance may say anything).

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::cluster::{Cluster, poll};

const FORM: Duration = Duration::from_secs(90);

/// Why member `i`'s ring data is not yet what a settled ring of `c` shows; `None` once it is.
fn ring_data_error(c: &Cluster, i: usize, names: &[String]) -> Option<String> {
    let m = &c.members[i];
    let Some(r) = c.json(&m.dir, &["ring", "--json"]) else {
        return Some(format!("node {i}: chatctl ring failed"));
    };
    let n = c.members.len() as u64;
    if r["ring_size_exact"] != n {
        return Some(format!(
            "node {i}: ring_size_exact {}",
            r["ring_size_exact"]
        ));
    }
    let known: Vec<&Value> = r["known"].as_array().map(|v| v.iter().collect())?;
    let ids: BTreeSet<&str> = known.iter().filter_map(|k| k["node_id"].as_str()).collect();
    for (j, other) in c.members.iter().enumerate().filter(|(j, _)| *j != i) {
        if !ids.contains(other.id.as_str()) {
            return Some(format!("node {i}: node {j} not listed"));
        }
        let k = known.iter().find(|k| k["node_id"] == other.id.as_str())?;
        if k["address"] != other.listen.to_string().as_str() {
            return Some(format!("node {i}: node {j} at {}", k["address"]));
        }
        if !k["nicknames"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| *x == names[j].as_str()))
        {
            return Some(format!("node {i}: node {j} nicknames {}", k["nicknames"]));
        }
    }
    if ids.contains(m.id.as_str()) {
        return Some(format!("node {i} lists itself"));
    }
    if !r["nicknames"]
        .as_array()
        .is_some_and(|a| a.iter().any(|x| *x == names[i].as_str()))
    {
        return Some(format!("node {i}: own nicknames {}", r["nicknames"]));
    }
    let status = c.status(i)?;
    if status["ring_size_exact"] != n {
        return Some(format!(
            "node {i}: status says {}",
            status["ring_size_exact"]
        ));
    }
    None
}

#[test]
fn ten_nodes_map_every_node_and_know_the_size() {
    let names: Vec<String> = (0..10).map(|i| format!("mapper{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let c = Cluster::named(80, &refs, FORM);
    let mut last = None;
    let settled = poll(FORM, Duration::from_millis(500), || {
        last = (0..c.members.len()).find_map(|i| ring_data_error(&c, i, &names));
        last.is_none().then_some(())
    });
    assert!(settled.is_some(), "ring data not complete: {last:?}");
    // Every node connected to at least its successor, with a measured RTT.
    for i in 0..c.members.len() {
        let r = c
            .json(&c.members[i].dir, &["ring", "--json"])
            .expect("ring");
        let succ = r["successors"][0]["node_id"].as_str().expect("successor");
        let k = r["known"]
            .as_array()
            .and_then(|v| v.iter().find(|k| k["node_id"] == succ))
            .expect("successor listed");
        assert_eq!(k["successor"], true, "{k}");
        assert_eq!(k["failed"], false, "{k}");
        if k["connected"] == true {
            assert!(k["rtt_micros"].as_u64().is_some_and(|us| us > 0), "{k}");
        }
    }
    // The human forms say it too.
    let sock = c.members[3].dir.join("run/control.sock");
    let out = c.sandbox.chatctl_at(&sock, &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("ring size") && l.ends_with(" 10")),
        "{text}"
    );
    let out = c.sandbox.chatctl_at(&sock, &["ring"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ring size    10\n"), "{text}");
    assert!(text.contains("nodes met (9)"), "{text}");
    assert!(text.contains("mapper0"), "{text}");
}

#[test]
fn a_two_node_ring_says_two_on_both_nodes() {
    let c = Cluster::named(81, &["left", "right"], FORM);
    let got = poll(FORM, Duration::from_millis(300), || {
        let sizes: Vec<Value> = (0..2)
            .map(|i| {
                c.status(i)
                    .map_or(Value::Null, |s| s["ring_size_exact"].clone())
            })
            .collect();
        sizes.iter().all(|s| *s == 2).then_some(sizes)
    });
    assert!(got.is_some(), "both nodes know the ring has 2 nodes");
    for i in 0..2 {
        let sock = c.members[i].dir.join("run/control.sock");
        let out = c.sandbox.chatctl_at(&sock, &["status"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("ring size"))
            .expect("ring size line");
        assert!(line.ends_with(" 2"), "node {i}: {line}");
    }
}
