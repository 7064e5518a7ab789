//! "Sent" means sent: many clients sending at once to one node of a ring with a low
//! `ring.origin_rate`; every message answered OK reaches every node exactly once, and every
//! refused one was refused visibly (RESOURCE_EXHAUSTED, with how long to wait) and reaches
//! no node, not even the one it was sent to.

use std::time::Duration;

use chat_proto::v1::SendRequest;
use tonic::Code;

use crate::chat::{await_all, texts};
use crate::client;
use crate::cluster::{CONFIG, Cluster, poll};

const FORM: Duration = Duration::from_secs(60);

/// A text and how its send ended: OK, or the status code and message.
type Outcome = (String, Result<(), (Code, String)>);
const CLIENTS: usize = 8;
const PER_CLIENT: usize = 6;

#[test]
fn every_send_answered_ok_reaches_every_node_and_every_refused_one_none() {
    let mut c = Cluster::new(6);
    // Two messages a second per node, five at once; clients themselves may send freely.
    c.sandbox.write_config(&format!(
        "{CONFIG}origin_rate = 2\norigin_burst = 5\n[control]\nsend_rate = 1000\nsend_burst = 1000\n"
    ));
    let first = c.add(&[]);
    let seed = [c.addr(first)];
    c.add(&seed);
    c.add(&seed);
    c.await_ring(FORM);

    // The node announces its user once it joined: wait for that to be over. An epoch's
    // batch of such events is broadcast by the node holding the epoch — at most one in the
    // second the flood below lasts — and takes one of that node's tokens.
    let announced = poll(FORM, Duration::from_millis(100), || {
        let s = c.status(1)?;
        s["nickname"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
            .then_some(())
    });
    assert!(announced.is_some(), "node 1 never claimed its user's name");
    let socket = c.members[1].dir.join("run/control.sock");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let outcomes: Vec<Outcome> = rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for k in 0..CLIENTS {
            let socket = socket.clone();
            set.spawn(async move {
                let mut api = client::chat(client::unix(&socket).await);
                let mut out = Vec::new();
                for m in 0..PER_CLIENT {
                    let text = format!("client {k} message {m}");
                    let r = api
                        .send(SendRequest {
                            room: String::new(),
                            text: text.clone(),
                            ..Default::default()
                        })
                        .await
                        .map(|_| ())
                        .map_err(|s| (s.code(), s.message().to_owned()));
                    out.push((text, r));
                }
                out
            });
        }
        let mut all = Vec::new();
        while let Some(r) = set.join_next().await {
            all.extend(r.expect("client task"));
        }
        all
    });
    let ok: Vec<String> = outcomes
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(t, _)| t.clone())
        .collect();
    let refused: Vec<&Outcome> = outcomes.iter().filter(|(_, r)| r.is_err()).collect();
    assert_eq!(ok.len() + refused.len(), CLIENTS * PER_CLIENT);
    // The burst passes (less the token a presence batch may take), the rest of a quick
    // flood does not.
    assert!(ok.len() >= 4, "only {} sent", ok.len());
    assert!(!refused.is_empty(), "nothing was refused");
    for (text, r) in &refused {
        let (code, message) = r.as_ref().expect_err("refused");
        assert_eq!(*code, Code::ResourceExhausted, "{text}: {message}");
        assert!(
            message.contains("ring.origin_rate") && message.contains("retry in"),
            "{text}: {message}"
        );
    }
    await_all(&c, &ok);
    for i in c.live() {
        let shown = texts(&c, i).expect("history");
        for (text, _) in &refused {
            assert!(!shown.contains_key(text), "node {i} shows refused {text:?}");
        }
    }
}
