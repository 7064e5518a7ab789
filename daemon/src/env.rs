//! A snapshot of the process environment.
//!
//! Configuration and default paths read the environment through an [`Env`] rather than
//! `std::env`, so tests can give each case its own environment without mutating the process's
//! (which is unsound with threads, and `unsafe` since Rust 2024).

use std::collections::BTreeMap;
use std::ffi::OsString;

/// Environment variables, by name.
#[derive(Clone, Debug, Default)]
pub struct Env {
    vars: BTreeMap<String, OsString>,
}

impl Env {
    /// The current process's environment. Variables whose names are not UTF-8 are skipped.
    pub fn from_process() -> Self {
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| k.into_string().ok().map(|k| (k, v)))
            .collect();
        Env { vars }
    }

    /// An environment holding exactly `pairs`.
    pub fn from_pairs<K: Into<String>, V: Into<OsString>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// The value of `name`, if set.
    pub fn var_os(&self, name: &str) -> Option<OsString> {
        self.vars.get(name).cloned()
    }

    /// Every variable whose name starts with `prefix`.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a OsString)> + 'a {
        self.vars
            .iter()
            .filter(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v))
    }

    /// A lookup function, in the shape `chat_proto::paths` expects.
    pub fn lookup(&self) -> impl Fn(&str) -> Option<OsString> + '_ {
        move |name| self.var_os(name)
    }
}
