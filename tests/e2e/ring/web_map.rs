//! The web page's Network view in headless Chromium, on a node of a 10-node ring: a page
//! opened without a login link says it is read only, and after the `chatctl web` link it says
//! who it sends as; the Network view labels all ten nodes (short id and nickname), draws this
//! node's live connections, and draws a message's path with `drawTrace` (fabricated edges
//! between the real node ids here) and removes it with `clearTrace`. Screenshots go to a
//! temporary directory (their paths are printed) and one to `/tmp/ringmap-10.png`.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Browser, FORM, chromium, free_port};
use crate::cluster::{Cluster, poll};
use crate::support::skip_or_fail;

/// Saves a screenshot of the page to `path`.
fn screenshot(b: &mut Browser, path: &std::path::Path) {
    let shot = b.call("Page.captureScreenshot", json!({"format": "png"}));
    let png = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        shot["data"].as_str().expect("data"),
    )
    .expect("png");
    assert!(png.len() > 10_000, "a real picture: {} bytes", png.len());
    std::fs::write(path, png).expect("screenshot written");
    println!("screenshot: {}", path.display());
}

#[test]
fn network_view_maps_a_ten_node_ring() {
    let Some(bin) = chromium() else {
        skip_or_fail("chromium is not installed (apt install chromium): the Network view test");
        return;
    };
    let port = free_port();
    let web = format!("127.0.0.1:{port}");
    let web_addr: SocketAddr = web.parse().expect("addr");
    let names: Vec<String> = (0..10).map(|i| format!("net{i}")).collect();
    let mut c = Cluster::new(82);
    c.add_with_env(
        &[],
        &[
            ("CHATD_WEB__LISTEN", &web),
            ("CHATD_NODE__NICKNAME", &names[0]),
        ],
    );
    let boot = [c.addr(0)];
    for n in &names[1..] {
        c.add_with_env(&boot, &[("CHATD_NODE__NICKNAME", n)]);
    }
    c.await_ring(FORM);
    // Node 0 knows every node and its nickname before the page looks.
    let ids: Vec<String> = c.members.iter().map(|m| m.id.clone()).collect();
    poll(FORM, Duration::from_millis(300), || {
        let r = c.json(&c.members[0].dir, &["ring", "--json"])?;
        let known = r["known"].as_array()?;
        let all = ids[1..].iter().zip(&names[1..]).all(|(id, name)| {
            known.iter().any(|k| {
                k["node_id"] == id.as_str()
                    && k["nicknames"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| *x == name.as_str()))
            })
        });
        (all && r["ring_size_exact"] == 10).then_some(())
    })
    .expect("node 0 maps the whole ring");

    let profile = c.sandbox.path().join("chromium-map");
    let mut b = Browser::open(&bin, &profile, &format!("http://{web_addr}/"));
    b.wait(
        Duration::from_secs(20),
        "document.body.dataset.conn === 'up'",
        "the page connects",
    );
    let hint = "document.getElementById('hint').textContent";
    assert!(
        b.eval(hint)
            .as_str()
            .is_some_and(|h| h.starts_with("Read only")),
        "a page without a login link says it is read only: {}",
        b.eval(hint)
    );
    // The status line: the exact size, not an estimate.
    b.wait(
        Duration::from_secs(10),
        "document.getElementById('status').textContent.includes('ring 10 ')",
        "the status line shows the exact ring size",
    );

    // After the login link: sending works, and the hint says so.
    let link = c
        .json(&c.members[0].dir, &["web", "--json"])
        .expect("chatctl web");
    let url = link["url"].as_str().expect("url").to_owned();
    b.call("Page.navigate", json!({"url": "about:blank"}));
    b.call("Page.navigate", json!({"url": url}));
    b.wait(
        Duration::from_secs(20),
        "document.body.dataset.conn === 'up' && !document.getElementById('send').disabled",
        "the page connects with the login link",
    );
    let now = b.eval(hint);
    let now = now.as_str().unwrap_or("");
    assert!(
        !now.contains("Read only"),
        "the hint still says read only: {now}"
    );
    assert_eq!(now, "Sending as net0.", "the hint says who sends");

    // The Network view: all ten nodes labelled, this node's links drawn.
    b.eval("[...document.querySelectorAll('#views button')].find(x => x.dataset.view === 'network').click(); true");
    b.wait(
        Duration::from_secs(5),
        "document.body.dataset.view === 'network' && getComputedStyle(document.getElementById('network')).display !== 'none'",
        "the Network view shows",
    );
    let labelled = |b: &mut Browser| -> Value {
        b.eval(&format!(
            "{}.filter(([id, nick]) => {{ const t = document.querySelector('#map text.label[data-id=\"' + id + '\"]'); \
             return t && t.textContent.includes(id.slice(0, 8)) && t.textContent.includes(nick); }}).length",
            json!(ids.iter().zip(&names).collect::<Vec<_>>())
        ))
    };
    let all_ten = poll(Duration::from_secs(20), Duration::from_millis(200), || {
        (labelled(&mut b) == json!(10)).then_some(())
    });
    assert!(
        all_ten.is_some(),
        "ten labels with id and nickname; got {} — {}",
        labelled(&mut b),
        b.eval("document.getElementById('netmap').textContent")
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#map g.node').length"),
        json!(10)
    );
    assert_eq!(
        b.eval("document.querySelectorAll('#map g.node.me').length"),
        json!(1)
    );
    let me_label = b.eval("document.querySelector('#map text.label.me').textContent");
    assert!(
        me_label.as_str().is_some_and(|t| t.contains(&ids[0][..8])),
        "{me_label}"
    );
    assert!(
        b.eval("document.querySelectorAll('#map path.link').length")
            .as_u64()
            .is_some_and(|n| n >= 1),
        "live connections drawn"
    );
    assert!(
        b.eval("document.getElementById('netinfo').textContent")
            .as_str()
            .is_some_and(|t| t.starts_with("Ring of 10 nodes (exact)")),
        "{}",
        b.eval("document.getElementById('netinfo').textContent")
    );
    // No two labels overlap.
    let overlaps = b.eval(
        "(() => { const r = [...document.querySelectorAll('#map text.label')].map(t => t.getBoundingClientRect()); \
         let n = 0; for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++) { \
         const a = r[i], b = r[j]; if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) n++; } \
         return n; })()",
    );
    assert_eq!(overlaps, json!(0), "labels overlap");

    // Kept after the test, for people to look at (one directory, replaced by the next run).
    let dir = std::env::temp_dir().join("chatd-ringmap");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    let shot = dir.join("ringmap-10.png");
    screenshot(&mut b, &shot);
    std::fs::copy(&shot, "/tmp/ringmap-10.png").expect("copy to /tmp");

    // A trace over the map: a tree from node 0 (fabricated edges between the real ids).
    let edges: Vec<Value> = (1..10)
        .map(|k| {
            let from = if k < 4 { 0 } else { (k - 1) / 3 };
            json!({"from": ids[from], "to": ids[k], "ms": 1.5 * k as f64})
        })
        .collect();
    b.eval(&format!("drawTrace({}); true", json!(edges)));
    assert_eq!(
        b.eval("document.querySelectorAll('#trace-layer path.hop').length"),
        json!(9)
    );
    assert_eq!(
        b.eval("[...document.querySelectorAll('#trace-layer text.hopms')].map(t => t.textContent).includes('13.5 ms') || [...document.querySelectorAll('#trace-layer text.hopms')].map(t => t.textContent).includes('14 ms')"),
        json!(true)
    );
    assert_eq!(
        b.eval("document.getElementById('trace-clear').hidden"),
        json!(false)
    );
    // The trace stays when the map is redrawn (as the next `ring` frame does).
    assert_eq!(
        b.eval("renderRing(net.frame); document.querySelectorAll('#trace-layer path.hop').length"),
        json!(9),
        "the trace survives a redraw"
    );
    screenshot(&mut b, &dir.join("ringmap-10-trace.png"));
    let _ = std::fs::copy(
        dir.join("ringmap-10-trace.png"),
        "/tmp/ringmap-10-trace.png",
    );
    b.eval("document.getElementById('trace-clear').click(); true");
    assert_eq!(
        b.eval("document.querySelectorAll('#trace-layer path.hop').length"),
        json!(0)
    );

    // A real trace: a message from node 3, traced from its line in the chat view, drawn as
    // a tree of nine hops, with its figures under the map.
    let sock3 = c.members[3].dir.join("run/control.sock");
    let out = c
        .sandbox
        .chatctl_at(&sock3, &["send", "--json", "trace this one"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    b.eval("showView('chat'); true");
    b.wait(
        Duration::from_secs(20),
        "[...document.querySelectorAll('#timeline li')].some(li => li.textContent.includes('trace this one'))",
        "the message shows in the chat view",
    );
    b.eval("[...document.querySelectorAll('#timeline li')].find(li => li.textContent.includes('trace this one')).querySelector('button.trace').click(); true");
    b.wait(
        Duration::from_secs(30),
        "document.getElementById('trace-note').textContent.includes('10 nodes answered, 9 hops')",
        "the page traces the message through all ten nodes",
    );
    assert_eq!(b.eval("document.body.dataset.view"), json!("network"));
    assert_eq!(
        b.eval("document.querySelectorAll('#trace-layer path.hop').length"),
        json!(9)
    );
    // Every hop starts at a node of the ring, and the tree's root is node 3.
    let froms =
        b.eval("[...document.querySelectorAll('#trace-layer path.hop')].map(p => p.dataset.from)");
    let froms: Vec<&str> = froms
        .as_array()
        .expect("hops")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        froms.iter().all(|f| ids.iter().any(|i| i == f)),
        "{froms:?}"
    );
    assert!(froms.contains(&ids[3].as_str()), "{froms:?}");
    screenshot(&mut b, &dir.join("ringmap-10-realtrace.png"));
    let _ = std::fs::copy(
        dir.join("ringmap-10-realtrace.png"),
        "/tmp/ringmap-10-realtrace.png",
    );
    b.eval("document.getElementById('trace-clear').click(); true");

    // A hundred nodes (a fabricated frame): drawn all, labelled where there is room (the near
    // and connected ones first), no two labels overlapping, every node with its hover title.
    let hundred = b.eval(
        "(() => { const real = net.frame; const nodes = [];          for (let i = 1; i < 100; i++) { const id = (i * 2654435761 % 4294967296).toString(16).padStart(8, '0') + 'ab'.repeat(28);          nodes.push({ id, addr: '127.0.0.1:' + (7000 + i), live: i % 7 === 0, rtt_us: i * 900, failed: i % 31 === 0,          pred: i === 99, succ: i > 92, finger: i % 13 === 0, nicks: i % 3 ? ['user' + i] : [] }); }          nodes.sort((a, b) => a.id < b.id ? -1 : 1);          renderRing({ t: 'ring', node_id: '00000001' + 'cd'.repeat(28), nicks: ['me'], exact: 0, estimate: 97, omitted: 0, nodes });          const r = [...document.querySelectorAll('#map text.label')].map(t => t.getBoundingClientRect());          let over = 0; for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++) {          const a = r[i], b = r[j]; if (a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom) over++; }          window.realFrame = real;          return { nodes: document.querySelectorAll('#map g.node').length, titled: document.querySelectorAll('#map g.node > title').length,                   labels: r.length, over, info: document.getElementById('netinfo').textContent }; })()",
    );
    assert_eq!(hundred["nodes"], json!(100), "{hundred}");
    assert_eq!(hundred["titled"], json!(100), "{hundred}");
    assert_eq!(hundred["over"], json!(0), "{hundred}");
    assert!(
        hundred["labels"].as_u64().is_some_and(|n| n >= 15),
        "{hundred}"
    );
    assert!(
        hundred["info"]
            .as_str()
            .is_some_and(|t| t.starts_with("Ring of ≈ 97 nodes (estimate")),
        "{hundred}"
    );
    screenshot(&mut b, &dir.join("ringmap-100.png"));
    let _ = std::fs::copy(dir.join("ringmap-100.png"), "/tmp/ringmap-100.png");
    b.eval("renderRing(window.realFrame); true");
}
