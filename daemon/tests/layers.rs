//! The daemon's layering, checked: the import graph between the top-level modules of
//! `daemon/src` has no circle (a module may use its own children freely; between top-level
//! modules, dependencies point one way, down). See `docs/architecture.md` for the layers.
//!
//! The check reads every `.rs` file under `daemon/src`, takes each `crate::<module>` path it
//! names outside comments (including the items of `use crate::{a, b::c}` groups), and builds
//! the graph "top-level module A names top-level module B". A strongly connected component
//! with more than one module is a circle; the test fails naming it and the files behind each
//! of its edges.
//!
//! A second check keeps the front doors peers: the web view (`web/`) and the IRC gateway
//! (`irc/`) name nothing of the gRPC API (`crate::control`; what they share with it, such as
//! the failed-login limit, lives below them in `crate::ops`), and no file outside `control/` builds a `tonic::Request` or names a
//! gRPC service trait (`…_server::`), so nothing calls a gRPC handler in process; both front
//! doors call the services' client operations (`crate::ops`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Edges of the module graph, with the files that make each one.
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).expect("read daemon/src");
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without `//` comments (doc links name modules without depending on them) and
/// without string literals' contents.
fn code_only(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut chars = src.chars().peekable();
    let mut in_str = false;
    while let Some(c) = chars.next() {
        if in_str {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    in_str = false;
                    out.push('"');
                }
                '\n' => out.push('\n'),
                _ => {}
            }
            continue;
        }
        match c {
            '/' if chars.peek() == Some(&'/') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '"' => {
                in_str = true;
                out.push('"');
            }
            // A char literal such as '"' must not open a string.
            '\'' => {
                out.push('\'');
                let rest: String = chars.clone().take(3).collect();
                let mut it = rest.chars();
                match (it.next(), it.next(), it.next()) {
                    (Some('\\'), Some(_), Some('\'')) => {
                        for _ in 0..3 {
                            chars.next();
                        }
                    }
                    (Some(_), Some('\''), _) => {
                        chars.next();
                        chars.next();
                    }
                    _ => {}
                }
            }
            _ => out.push(c),
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules a piece of code names through `crate::`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        // `foo_crate::x` is another crate's path, not ours.
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let trimmed = rest.trim_start();
        if let Some(group) = trimmed.strip_prefix('{') {
            // Items of the group at depth 0, each up to the first `::`, `,` or `}`.
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                        let id = ident_at(&group[i..]);
                        if id != "self" {
                            found.insert(id.to_string());
                        }
                        item_start = false;
                    }
                    _ => {}
                }
            }
        } else {
            let id = ident_at(trimmed);
            if !id.is_empty() {
                found.insert(id.to_string());
            }
        }
    }
    found
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|f| {
            let rel = f.strip_prefix(src).ok()?;
            let first = rel.components().next()?.as_os_str().to_str()?;
            Some(first.trim_end_matches(".rs").to_string())
        })
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut g = Graph::new();
    for file in &files {
        let rel = file.strip_prefix(src).expect("under src");
        let Some(first) = rel.components().next().and_then(|c| c.as_os_str().to_str()) else {
            continue;
        };
        let from = first.trim_end_matches(".rs").to_string();
        if from == "lib" || from == "main" {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(file).expect("read source"));
        for to in named_modules(&code) {
            if to != from && tops.contains(&to) {
                g.entry(from.clone())
                    .or_default()
                    .entry(to)
                    .or_default()
                    .insert(rel.display().to_string());
            }
        }
        g.entry(from).or_default();
    }
    g
}

/// Tarjan's strongly connected components with more than one member.
fn circles(g: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        g: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let g = s.g;
        for w in g.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in g.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// One shortest circle through `start` inside `comp` (breadth first), for the message.
fn one_circle(g: &Graph, comp: &[String], start: &str) -> Vec<String> {
    let inside: BTreeSet<&str> = comp.iter().map(String::as_str).collect();
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in g.get(v).into_iter().flat_map(|e| e.keys()) {
            let w = w.as_str();
            if !inside.contains(w) {
                continue;
            }
            if w == start {
                let mut path = vec![v.to_string()];
                let mut at = v;
                while at != start {
                    at = prev[at];
                    path.push(at.to_string());
                }
                path.reverse();
                path.push(start.to_string());
                return path;
            }
            if !prev.contains_key(w) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    vec![start.to_string()]
}

fn report(g: &Graph, found: &[Vec<String>]) -> String {
    let mut msg = String::new();
    for comp in found {
        let circle = one_circle(g, comp, &comp[0]);
        msg.push_str(&format!(
            "import circle between {} modules: {{{}}}\n  e.g. {}\n",
            comp.len(),
            comp.join(", "),
            circle.join(" -> ")
        ));
        for from in comp {
            for (to, files) in g.get(from).into_iter().flatten() {
                if comp.contains(to) {
                    let files: Vec<_> = files.iter().cloned().collect();
                    msg.push_str(&format!("  {from} -> {to}: {}\n", files.join(", ")));
                }
            }
        }
    }
    msg
}

#[test]
fn the_top_level_modules_of_daemon_src_import_each_other_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    assert!(g.len() > 10, "found only {} modules under {src:?}", g.len());
    let found = circles(&g);
    assert!(found.is_empty(), "\n{}", report(&g, &found));
}

/// What a file at `rel` (relative to `daemon/src`) does against the front doors' rule, given
/// its code without comments and strings: one line per finding.
fn front_door_findings(rel: &Path, code: &str) -> Vec<String> {
    let first = rel
        .components()
        .next()
        .and_then(|c| c.as_os_str().to_str())
        .unwrap_or("");
    if first == "control" {
        return Vec::new();
    }
    let mut found = Vec::new();
    let at = rel.display();
    if first == "web" && named_modules(code).contains("control") {
        found.push(format!(
            "{at}: the web view names crate::control (call crate::ops instead)"
        ));
    }
    if first == "irc" && named_modules(code).contains("control") {
        found.push(format!(
            "{at}: the IRC gateway names crate::control (call or share through crate::ops instead)"
        ));
    }
    if code.contains("tonic::Request") || imports_tonic_request(code) {
        found.push(format!(
            "{at}: builds a tonic::Request outside control/ (an in-process gRPC call)"
        ));
    }
    if code.contains("_server::") {
        found.push(format!(
            "{at}: names a gRPC service trait outside control/ (an in-process gRPC call)"
        ));
    }
    found
}

/// Whether `code` imports `Request` from tonic (`use tonic::{…, Request, …}`).
fn imports_tonic_request(code: &str) -> bool {
    let mut rest = code;
    while let Some(at) = rest.find("tonic::{") {
        rest = &rest[at + "tonic::{".len()..];
        let group = &rest[..rest.find('}').unwrap_or(rest.len())];
        if group
            .split(',')
            .any(|item| item.trim() == "Request" || item.trim().starts_with("Request as"))
        {
            return true;
        }
    }
    false
}

#[test]
fn the_web_view_the_irc_gateway_and_the_grpc_api_are_peers_over_the_services() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    for door in ["web", "irc"] {
        assert!(
            files.iter().any(|f| f.starts_with(src.join(door))),
            "no {door}/ under {src:?}"
        );
    }
    let found: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let rel = f.strip_prefix(&src).expect("under src");
            let code = code_only(&std::fs::read_to_string(f).expect("read source"));
            front_door_findings(rel, &code)
        })
        .collect();
    assert!(found.is_empty(), "\n{}", found.join("\n"));
}

#[test]
fn the_front_door_check_sees_in_process_grpc_calls() {
    let web = Path::new("web/ws.rs");
    let bad = code_only(
        "use crate::control::access::ClientInfo;\nuse tonic::{Code, Request};\n\
         use chat_proto::v1::chat_service_server::ChatService;\nlet r = tonic::Request::new(x);",
    );
    let found = front_door_findings(web, &bad);
    assert_eq!(found.len(), 3, "{found:?}");
    assert!(found[0].contains("names crate::control"), "{found:?}");
    // The IRC gateway may not name the gRPC API either (not even its constants).
    let irc = Path::new("irc/bridge.rs");
    let consts = code_only("use crate::control::access::{FAILURE_BURST, FAILURE_REFILL};");
    let found = front_door_findings(irc, &consts);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("IRC gateway names crate::control"),
        "{found:?}"
    );
    assert!(
        front_door_findings(irc, &code_only("use crate::ops::access::failed_logins;")).is_empty()
    );
    // Elsewhere only the gRPC calls count; inside control/ nothing does.
    let eventlog = Path::new("eventlog/feed.rs");
    assert_eq!(front_door_findings(eventlog, &bad).len(), 2);
    assert!(front_door_findings(Path::new("control/mod.rs"), &bad).is_empty());
    // Comments, strings and other crates' names are not code.
    let fine = code_only(
        "// crate::control::ChatApi and tonic::Request::new\nlet s = \"tonic::Request\";\n\
         use crate::ops::ChatOps; use tonic_health::x;",
    );
    assert!(front_door_findings(web, &fine).is_empty());
}

#[test]
fn the_check_sees_a_circle_and_reads_use_groups() {
    let code = code_only(
        "use crate::{a::X, b, self};\n// crate::c in a comment\nlet s = \"crate::d\";\nfn f() { other_crate::e(); crate::f::g(); }",
    );
    let named = named_modules(&code);
    assert_eq!(
        named,
        ["a", "b", "f"].iter().map(|s| s.to_string()).collect()
    );
    let mut g = Graph::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")] {
        g.entry(from.into())
            .or_default()
            .entry(to.into())
            .or_default()
            .insert(format!("{from}.rs"));
        g.entry(to.into()).or_default();
    }
    let found = circles(&g);
    assert_eq!(found, vec![vec!["a".to_string(), "b".into(), "c".into()]]);
    assert!(report(&g, &found).contains("a -> b -> c -> a"));
}
