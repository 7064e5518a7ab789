//! Checking the merged configuration tree key by key, so that every error is one line naming
//! the key, the problem and where the value came from (a file, a `CHATD_*` variable, a flag).
//! Which keys exist, their kinds and defaults come from the declarations (`sections.rs`);
//! this file walks the tree, finds unknown keys and says where a value came from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use config::{Map, Value, ValueKind};

use super::schema::{SECTIONS, Section, Tree, keys_of};
use super::{ConfigError, Settings, key_error};
use crate::env::Env;

/// Turns the merged tree into [`Settings`], checking every key.
pub struct Checker {
    pub(super) env_names: BTreeMap<String, String>,
    /// The config file; the `config` crate records it relative to the working directory.
    pub(super) file: Option<PathBuf>,
    /// The flag of each key that has one, for values that came from the command line.
    flags: BTreeMap<&'static str, &'static str>,
}

impl Checker {
    pub(super) fn new(env_names: BTreeMap<String, String>, file: Option<PathBuf>) -> Checker {
        let flags = keys_of::<Settings>()
            .into_iter()
            .filter_map(|k| Some((k.name, k.flag?)))
            .collect();
        Checker {
            env_names,
            file,
            flags,
        }
    }

    pub(super) fn check(
        &self,
        mut tree: Map<String, Value>,
        env: &Env,
    ) -> Result<Settings, ConfigError> {
        let mut sections = Tree::default();
        for name in SECTIONS {
            let section = self.section(&mut tree, name)?;
            sections.sections.insert((*name).to_owned(), section);
        }
        self.no_leftovers("", tree)?;
        let settings = Settings::build(&mut sections, self, env)?;
        for name in SECTIONS {
            if let Some(rest) = sections.sections.remove(*name) {
                self.no_leftovers(&format!("{name}."), rest)?;
            }
        }
        Ok(settings)
    }

    /// Where a value came from, as the end of an error line.
    pub(super) fn origin(&self, key: &str, value: &Value) -> String {
        match value.origin() {
            Some("the environment") => match self.env_names.get(key) {
                Some(name) => format!(" (from ${name})"),
                None => " (from the environment)".to_owned(),
            },
            Some(other) => match &self.file {
                Some(file) => format!(" (in {})", file.display()),
                None => format!(" (in {other})"),
            },
            // Only flags and (for empty tables) the file produce values without an origin.
            None => match self.flags.get(key) {
                Some(flag) => format!(" (from {flag})"),
                None => match &self.file {
                    Some(file) => format!(" (in {})", file.display()),
                    None => String::new(),
                },
            },
        }
    }

    pub(super) fn fail(&self, key: &str, value: &Value, problem: impl Into<String>) -> ConfigError {
        key_error(key, problem, self.origin(key, value))
    }

    fn section(
        &self,
        tree: &mut Map<String, Value>,
        name: &str,
    ) -> Result<Map<String, Value>, ConfigError> {
        match tree.remove(name) {
            None => Ok(Map::new()),
            Some(v) => match v.kind {
                ValueKind::Table(t) => Ok(t),
                _ => Err(self.fail(name, &v, format!("expected a table, got {}", describe(&v)))),
            },
        }
    }

    /// Reports the first (in sorted order) key nobody consumed.
    fn no_leftovers(&self, prefix: &str, rest: Map<String, Value>) -> Result<(), ConfigError> {
        let mut rest: Vec<_> = rest.into_iter().collect();
        rest.sort_by(|a, b| a.0.cmp(&b.0));
        match rest.into_iter().next() {
            None => Ok(()),
            Some((k, v)) => {
                let key = format!("{prefix}{k}");
                Err(self.fail(&key, &v, "unknown key"))
            }
        }
    }

    pub(super) fn string(&self, key: &str, value: Value) -> Result<String, ConfigError> {
        match value.kind {
            ValueKind::String(s) => Ok(s),
            _ => Err(self.fail(
                key,
                &value,
                format!("expected a string, got {}", describe(&value)),
            )),
        }
    }
}

/// A value as an error message names it.
pub(super) fn describe(value: &Value) -> String {
    match &value.kind {
        ValueKind::Nil => "nothing".to_owned(),
        ValueKind::Boolean(b) => format!("boolean {b}"),
        ValueKind::I64(n) => format!("integer {n}"),
        ValueKind::I128(n) => format!("integer {n}"),
        ValueKind::U64(n) => format!("integer {n}"),
        ValueKind::U128(n) => format!("integer {n}"),
        ValueKind::Float(x) => format!("number {x}"),
        ValueKind::String(s) => format!("string {s:?}"),
        ValueKind::Table(_) => "a table".to_owned(),
        ValueKind::Array(_) => "a list".to_owned(),
    }
}
