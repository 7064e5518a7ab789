//! Checking the merged configuration tree key by key, so that every error is one line naming
//! the key, the problem and where the value came from (a file, a `CHATD_*` variable, a flag).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use config::{Map, Value, ValueKind};

use super::{
    ConfigError, DEFAULT_LISTEN, DEFAULT_LOG_FILTER, DEFAULT_MAX_CONNECTIONS,
    MAX_CONNECTIONS_RANGE, RING_MS_RANGE, RingTimers, Settings, key_error,
};
use crate::env::Env;
use crate::nickname::Nickname;
use crate::paths;

/// Turns the merged tree into [`Settings`], checking every key.
pub(super) struct Checker {
    pub(super) env_names: BTreeMap<String, String>,
    /// The config file; the `config` crate records it relative to the working directory.
    pub(super) file: Option<PathBuf>,
}

impl Checker {
    pub(super) fn check(
        &self,
        mut tree: Map<String, Value>,
        env: &Env,
    ) -> Result<Settings, ConfigError> {
        let mut node = self.section(&mut tree, "node")?;
        let mut control = self.section(&mut tree, "control")?;
        let mut log = self.section(&mut tree, "log")?;
        let mut transport = self.section(&mut tree, "transport")?;
        let mut ring = self.section(&mut tree, "ring")?;
        self.no_leftovers("", tree)?;
        let defaults = RingTimers::default();
        let mut ms = |name: &str, default: u64| -> Result<u64, ConfigError> {
            match ring.remove(name) {
                Some(v) => self.integer(&format!("ring.{name}"), v, RING_MS_RANGE),
                None => Ok(default),
            }
        };
        let ring_timers = RingTimers {
            stabilize_ms: ms("stabilize_ms", defaults.stabilize_ms)?,
            fix_fingers_ms: ms("fix_fingers_ms", defaults.fix_fingers_ms)?,
            check_predecessor_ms: ms("check_predecessor_ms", defaults.check_predecessor_ms)?,
            rpc_timeout_ms: ms("rpc_timeout_ms", defaults.rpc_timeout_ms)?,
        };
        let settings = Settings {
            config_file: None,
            listen: match node.remove("listen") {
                Some(v) => self.addr("node.listen", v)?,
                None => DEFAULT_LISTEN,
            },
            bootstrap: match node.remove("bootstrap") {
                Some(v) => self.addrs("node.bootstrap", v)?,
                None => Vec::new(),
            },
            data_dir: match node.remove("data_dir") {
                Some(v) => self.path("node.data_dir", v)?,
                None => paths::default_data_dir(env)?,
            },
            nickname: match node.remove("nickname") {
                Some(v) => self.nickname("node.nickname", v)?,
                None => None,
            },
            control_socket: match control.remove("socket") {
                Some(v) => self.path("control.socket", v)?,
                None => paths::default_control_socket(env),
            },
            log_filter: match log.remove("filter") {
                Some(v) => self.filter("log.filter", v)?,
                None => DEFAULT_LOG_FILTER.to_owned(),
            },
            max_connections: match transport.remove("max_connections") {
                Some(v) => {
                    self.integer("transport.max_connections", v, MAX_CONNECTIONS_RANGE)? as usize
                }
                None => DEFAULT_MAX_CONNECTIONS,
            },
            ring: ring_timers,
        };
        self.no_leftovers("node.", node)?;
        self.no_leftovers("control.", control)?;
        self.no_leftovers("log.", log)?;
        self.no_leftovers("transport.", transport)?;
        self.no_leftovers("ring.", ring)?;
        Ok(settings)
    }

    fn origin(&self, key: &str, value: &Value) -> String {
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
            None => match key {
                "node.listen" => " (from --listen)".to_owned(),
                "node.bootstrap" => " (from --bootstrap)".to_owned(),
                "node.data_dir" => " (from --data-dir)".to_owned(),
                "node.nickname" => " (from --nick)".to_owned(),
                "control.socket" => " (from --control)".to_owned(),
                _ => match &self.file {
                    Some(file) => format!(" (in {})", file.display()),
                    None => String::new(),
                },
            },
        }
    }

    fn fail(&self, key: &str, value: &Value, problem: impl Into<String>) -> ConfigError {
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

    fn string(&self, key: &str, value: Value) -> Result<String, ConfigError> {
        match value.kind {
            ValueKind::String(s) => Ok(s),
            _ => Err(self.fail(
                key,
                &value,
                format!("expected a string, got {}", describe(&value)),
            )),
        }
    }

    fn addr(&self, key: &str, value: Value) -> Result<SocketAddr, ConfigError> {
        let origin = self.origin(key, &value);
        let s = self.string(key, value)?;
        s.trim().parse().map_err(|_| {
            key_error(
                key,
                format!("invalid socket address {s:?} (expected IP:PORT)"),
                origin,
            )
        })
    }

    /// A list of addresses: a TOML array, or one comma-separated string (from the environment).
    fn addrs(&self, key: &str, value: Value) -> Result<Vec<SocketAddr>, ConfigError> {
        let origin = self.origin(key, &value);
        let source = value.origin().map(str::to_owned);
        let items = match value.kind {
            ValueKind::Array(items) => items,
            ValueKind::String(s) => s
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| Value::new(source.as_ref(), p))
                .collect(),
            _ => {
                return Err(self.fail(
                    key,
                    &value,
                    format!("expected a list of addresses, got {}", describe(&value)),
                ));
            }
        };
        items
            .into_iter()
            .map(|item| {
                let s = self.string(key, item)?;
                s.trim().parse().map_err(|_| {
                    key_error(
                        key,
                        format!("invalid socket address {s:?} (expected IP:PORT)"),
                        origin.clone(),
                    )
                })
            })
            .collect()
    }

    /// A whole number within `range`; a string of digits (from the environment) is accepted.
    fn integer(
        &self,
        key: &str,
        value: Value,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ConfigError> {
        let origin = self.origin(key, &value);
        let n = match &value.kind {
            ValueKind::I64(n) => u64::try_from(*n).ok(),
            ValueKind::U64(n) => Some(*n),
            ValueKind::I128(n) => u64::try_from(*n).ok(),
            ValueKind::U128(n) => u64::try_from(*n).ok(),
            ValueKind::String(s) => s.trim().parse::<u64>().ok(),
            _ => {
                return Err(self.fail(
                    key,
                    &value,
                    format!("expected a whole number, got {}", describe(&value)),
                ));
            }
        };
        match n {
            Some(n) if range.contains(&n) => Ok(n),
            _ => Err(key_error(
                key,
                format!(
                    "{} is out of range (expected {}..={})",
                    describe(&value),
                    range.start(),
                    range.end()
                ),
                origin,
            )),
        }
    }

    fn path(&self, key: &str, value: Value) -> Result<PathBuf, ConfigError> {
        let origin = self.origin(key, &value);
        let s = self.string(key, value)?;
        if s.is_empty() {
            return Err(key_error(key, "must not be empty", origin));
        }
        std::path::absolute(&s)
            .map_err(|e| key_error(key, format!("invalid path {s:?}: {e}"), origin))
    }

    fn nickname(&self, key: &str, value: Value) -> Result<Option<Nickname>, ConfigError> {
        let origin = self.origin(key, &value);
        let s = self.string(key, value)?;
        if s.is_empty() {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|e| key_error(key, format!("invalid nickname {s:?}: {e}"), origin))
    }

    fn filter(&self, key: &str, value: Value) -> Result<String, ConfigError> {
        let origin = self.origin(key, &value);
        let s = self.string(key, value)?;
        match tracing_subscriber::EnvFilter::builder().parse(&s) {
            Ok(_) => Ok(s),
            Err(e) => Err(key_error(key, format!("invalid filter {s:?}: {e}"), origin)),
        }
    }
}

fn describe(value: &Value) -> String {
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
