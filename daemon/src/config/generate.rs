//! The two documents made from the key declarations: the sample config `deploy/chatd.toml`
//! (every key with its doc comment and default) and the key table of `docs/operations.md`.
//! Tests keep the checked-in files equal to what is generated here; to regenerate them after
//! changing a key, run `CHATD_REGENERATE=1 cargo test -p chatd --lib config::generate`.

use std::collections::BTreeMap;

use super::check::Checker;
use super::schema::{Key, SECTIONS, Section, Tables, Tree};
use super::{KEYS, Settings};
use crate::env::Env;

const SAMPLE_HEADER: &str = "\
# chatd configuration — every key, with its default.
#
# chatd reads, each layer overriding the one before:
#   1. built-in defaults (the values shown here),
#   2. this file: /etc/chatd/chatd.toml, or the file given with --config PATH,
#   3. environment variables CHATD_<SECTION>__<KEY>, e.g. CHATD_NODE__LISTEN=0.0.0.0:7401,
#   4. command-line flags (--listen, --bootstrap, --data-dir, --control, --nick, --lan, --web).
# Unknown keys and bad values are errors. Check a file with: chatd --config FILE check-config
# SIGHUP (systemctl reload chatd) applies the keys marked so; the others need a restart.
#
# Generated from the key declarations in daemon/src/config/ (sections.rs, log.rs):
# CHATD_REGENERATE=1 cargo test -p chatd --lib config::generate
";

/// Where the table sits in `docs/operations.md`.
const TABLE_BEGIN: &str = "<!-- BEGIN config keys: generated from daemon/src/config/sections.rs and log.rs; \
regenerate with CHATD_REGENERATE=1 cargo test -p chatd --lib config::generate -->";
const TABLE_END: &str = "<!-- END config keys -->";

/// Every key's default as TOML text (the environment-dependent ones for a sample user).
fn defaults() -> BTreeMap<&'static str, String> {
    let env = Env::from_pairs([
        ("HOME", "/home/user"),
        ("XDG_RUNTIME_DIR", "/run/user/1000"),
    ]);
    let checker = Checker::new(BTreeMap::new(), None);
    let mut tables = Tables::default();
    if let Ok(settings) = Settings::build(&mut Tree::default(), &checker, &env) {
        settings.write(&mut tables);
    }
    KEYS.iter().map(|k| (k.name, tables.get(k.name))).collect()
}

/// The sample configuration: every key with its doc comment and default, by section.
pub fn sample() -> String {
    let values = defaults();
    let mut out = String::from(SAMPLE_HEADER);
    for section in SECTIONS {
        out.push_str(&format!("\n[{section}]\n"));
        let keys: Vec<&Key> = KEYS.iter().filter(|k| k.section() == *section).collect();
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            for line in key.doc_lines() {
                out.push_str(&format!("# {line}\n").replace("# \n", "#\n"));
            }
            out.push_str(&format!("# Allowed: {}.", key.allowed));
            if let Some(flag) = key.flag {
                out.push_str(&format!(" Flag: {flag}."));
            }
            out.push('\n');
            if let Some(default) = key.default_is {
                let words = format!("Default: {}.", default.replace('`', ""));
                for line in wrap(&words, 90) {
                    out.push_str(&format!("# {line}\n"));
                }
            }
            if key.live {
                out.push_str("# SIGHUP applies a new value without a restart.\n");
            }
            match key.example {
                Some(example) => out.push_str(&format!(
                    "# {} = {}\n",
                    key.short_name(),
                    toml::Value::String(example.to_owned())
                )),
                None => out.push_str(&format!("{} = {}\n", key.short_name(), values[key.name])),
            }
        }
    }
    out
}

/// `text` in lines of at most `width` characters (longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

/// The key table of `docs/operations.md`, between its markers.
pub fn operations_table() -> String {
    let values = defaults();
    let cell = |s: &str| s.replace('|', "\\|");
    let mut out = format!(
        "{TABLE_BEGIN}\n| key | flag | default | allowed | on SIGHUP | what it does |\n|---|---|---|---|---|---|\n"
    );
    for key in KEYS.iter() {
        let flag = key.flag.map_or("—".to_owned(), |f| format!("`{f}`"));
        let default = match key.default_is {
            Some(words) => words.to_owned(),
            None => format!("`{}`", values[key.name]),
        };
        let reload = if key.live { "applied" } else { "restart" };
        let doc: Vec<&str> = key.doc_lines().filter(|l| !l.is_empty()).collect();
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            key.name,
            flag,
            cell(&default),
            cell(&key.allowed),
            reload,
            cell(&doc.join(" "))
        ));
    }
    out.push_str(TABLE_END);
    out
}

#[cfg(test)]
/// `text` with the part between the table markers replaced by `table`; `None` if the markers
/// are missing.
fn with_table(text: &str, table: &str) -> Option<String> {
    let begin = text.find(TABLE_BEGIN)?;
    let end = text[begin..].find(TABLE_END)? + begin + TABLE_END.len();
    Some(format!("{}{table}{}", &text[..begin], &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(rel: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
    }

    fn regenerate() -> bool {
        std::env::var_os("CHATD_REGENERATE").is_some_and(|v| v == "1")
    }

    #[test]
    fn deploy_chatd_toml_is_the_generated_sample() {
        let file = path("../deploy/chatd.toml");
        let want = sample();
        if regenerate() {
            std::fs::write(&file, &want).expect("write deploy/chatd.toml");
        }
        let have = std::fs::read_to_string(&file).expect("read deploy/chatd.toml");
        assert!(
            have == want,
            "deploy/chatd.toml differs from the key declarations; regenerate it with \
             CHATD_REGENERATE=1 cargo test -p chatd --lib config::generate"
        );
    }

    #[test]
    fn operations_md_has_the_generated_key_table() {
        let file = path("../docs/operations.md");
        let read = || std::fs::read_to_string(&file).expect("read docs/operations.md");
        let want = with_table(&read(), &operations_table()).expect("the table's markers");
        if regenerate() {
            std::fs::write(&file, &want).expect("write docs/operations.md");
        }
        let text = read();
        assert!(
            text == want,
            "the key table of docs/operations.md differs from the key declarations; \
             regenerate it with CHATD_REGENERATE=1 cargo test -p chatd --lib config::generate"
        );
    }

    #[test]
    fn every_key_is_documented_once_with_an_allowed_range() {
        let mut names: Vec<&str> = KEYS.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KEYS.len(), "a key is declared twice");
        for key in KEYS.iter() {
            assert!(
                SECTIONS.contains(&key.section()),
                "{}: unknown section",
                key.name
            );
            assert!(
                key.doc_lines().count() > 0,
                "{} has no doc comment",
                key.name
            );
            assert!(
                !key.allowed.is_empty(),
                "{} has no allowed values",
                key.name
            );
        }
    }
}
