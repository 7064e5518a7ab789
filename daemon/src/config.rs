//! Layered configuration: built-in defaults → config file → `CHATD_*` environment → flags.
//!
//! The config file is `--config PATH` if given (it must exist), else `/etc/chatd/chatd.toml` if
//! that exists, else none. Environment variables are `CHATD_` followed by the key with `__`
//! between section and name, e.g. `CHATD_NODE__LISTEN`; `CHATD_LOG` is a shorthand for
//! `CHATD_LOG__FILTER`. The `config` crate merges the layers; this module then checks every key
//! itself so that each error is one line naming the key, the problem and where the value came
//! from, e.g. `node.listen: invalid socket address "x" (from --listen)`.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use config::{Environment, FileFormat, Map, Source, Value, ValueKind};

use crate::env::Env;
use crate::nickname::Nickname;
use crate::paths;

/// The system-wide config file, read when no `--config` is given and it exists.
pub const SYSTEM_CONFIG: &str = "/etc/chatd/chatd.toml";
/// Default QUIC listen address.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7400));
/// Default log filter (tracing-subscriber `EnvFilter` syntax).
pub const DEFAULT_LOG_FILTER: &str = "info";
/// Every key chatd understands, as `section.name`.
pub const KEYS: &[&str] = &[
    "node.listen",
    "node.bootstrap",
    "node.data_dir",
    "node.nickname",
    "control.socket",
    "log.filter",
];

/// Values given on the command line; they override every other layer.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--config PATH`.
    pub config: Option<PathBuf>,
    /// `--listen ADDR`.
    pub listen: Option<String>,
    /// `--bootstrap ADDR`, repeatable.
    pub bootstrap: Vec<String>,
    /// `--data-dir DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--control PATH`.
    pub control: Option<PathBuf>,
    /// `--nick NAME`.
    pub nick: Option<String>,
}

/// The effective configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// UDP address for QUIC (`node.listen`).
    pub listen: SocketAddr,
    /// Peers to join through; empty means this node founds a new ring (`node.bootstrap`).
    pub bootstrap: Vec<SocketAddr>,
    /// Where the node key and state live (`node.data_dir`).
    pub data_dir: PathBuf,
    /// The user's nickname, if set (`node.nickname`; empty means none).
    pub nickname: Option<Nickname>,
    /// Path of the control socket (`control.socket`).
    pub control_socket: PathBuf,
    /// Log filter (`log.filter`).
    pub log_filter: String,
}

/// A configuration error: one line that names the key (or file) and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("config file {path}, line {line}: {message}")]
    Syntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A key is unknown or its value is bad. `origin` is empty or starts with a space.
    #[error("{key}: {problem}{origin}")]
    Key {
        key: String,
        problem: String,
        origin: String,
    },
    /// A default could not be derived.
    #[error(transparent)]
    Path(#[from] paths::PathError),
    /// The layers could not be merged.
    #[error("configuration: {0}")]
    Merge(#[from] config::ConfigError),
}

impl Settings {
    /// Loads the configuration from every layer.
    pub fn load(overrides: &Overrides, env: &Env) -> Result<Settings, ConfigError> {
        let file = config_file(overrides)?;
        let mut builder = config::Config::builder();
        if let Some(path) = &file {
            check_toml(path)?;
            builder =
                builder.add_source(config::File::from(path.as_path()).format(FileFormat::Toml));
        }
        let (environment, env_names) = environment(env)?;
        builder = builder.add_source(environment);
        builder = builder
            .set_override_option("node.listen", overrides.listen.clone())?
            .set_override_option(
                "node.data_dir",
                path_flag("--data-dir", &overrides.data_dir)?,
            )?
            .set_override_option(
                "control.socket",
                path_flag("--control", &overrides.control)?,
            )?
            .set_override_option("node.nickname", overrides.nick.clone())?;
        if !overrides.bootstrap.is_empty() {
            builder = builder.set_override("node.bootstrap", overrides.bootstrap.clone())?;
        }
        let tree = builder.build()?.collect()?;
        let mut settings = Checker {
            env_names,
            file: file.clone(),
        }
        .check(tree, env)?;
        settings.config_file = file;
        Ok(settings)
    }

    /// The configuration as a TOML document, every key included.
    pub fn to_toml(&self) -> String {
        use toml::{Table, Value as T};
        let s = |v: String| T::String(v);
        let p = |v: &Path| T::String(v.to_string_lossy().into_owned());
        let mut node = Table::new();
        node.insert("listen".into(), s(self.listen.to_string()));
        let peers = self.bootstrap.iter().map(|a| s(a.to_string())).collect();
        node.insert("bootstrap".into(), T::Array(peers));
        node.insert("data_dir".into(), p(&self.data_dir));
        let nick = self
            .nickname
            .as_ref()
            .map(|n| n.to_string())
            .unwrap_or_default();
        node.insert("nickname".into(), s(nick));
        let mut control = Table::new();
        control.insert("socket".into(), p(&self.control_socket));
        let mut log = Table::new();
        log.insert("filter".into(), s(self.log_filter.clone()));
        // Sections in reading order (a TOML table would sort them).
        let mut out = String::new();
        for (name, table) in [("node", node), ("control", control), ("log", log)] {
            let body = toml::to_string(&table).unwrap_or_default();
            out.push_str(&format!("[{name}]\n{body}\n"));
        }
        out.pop();
        out
    }
}

fn config_file(overrides: &Overrides) -> Result<Option<PathBuf>, ConfigError> {
    match &overrides.config {
        Some(path) => Ok(Some(path.clone())),
        None => Ok(Path::new(SYSTEM_CONFIG)
            .exists()
            .then(|| PathBuf::from(SYSTEM_CONFIG))),
    }
}

/// Reads and parses the file once ourselves, for an error with a line number and no multi-line
/// snippet (the `config` crate's own message spans several lines).
fn check_toml(path: &Path) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    if let Err(e) = text.parse::<toml::Table>() {
        let offset = e.span().map(|s| s.start).unwrap_or(0).min(text.len());
        let line = text.as_bytes()[..offset]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        let message = e.message().trim().replace('\n', " ");
        return Err(ConfigError::Syntax {
            path: path.into(),
            line,
            message,
        });
    }
    Ok(())
}

/// The `CHATD_*` layer, and the variable each key came from (for error messages).
fn environment(env: &Env) -> Result<(Environment, BTreeMap<String, String>), ConfigError> {
    let mut vars = Map::new();
    let mut names = BTreeMap::new();
    for (name, value) in env.with_prefix("CHATD_") {
        let mapped = match name {
            "CHATD_LOG" if env.var_os("CHATD_LOG__FILTER").is_some() => continue,
            "CHATD_LOG" => "CHATD_LOG__FILTER",
            other => other,
        };
        let key = mapped["CHATD_".len()..].to_lowercase().replace("__", ".");
        let Some(value) = value.to_str() else {
            return Err(key_error(
                &key,
                "value is not valid UTF-8",
                format!(" (from ${name})"),
            ));
        };
        vars.insert(mapped.to_owned(), value.to_owned());
        names.insert(key, name.to_owned());
    }
    let source = Environment::with_prefix("CHATD")
        .prefix_separator("_")
        .separator("__")
        .ignore_empty(true)
        .source(Some(vars));
    Ok((source, names))
}

fn path_flag(flag: &str, path: &Option<PathBuf>) -> Result<Option<String>, ConfigError> {
    match path {
        None => Ok(None),
        Some(p) => match p.to_str() {
            Some(s) => Ok(Some(s.to_owned())),
            None => Err(key_error(flag, "path is not valid UTF-8", String::new())),
        },
    }
}

fn key_error(key: &str, problem: impl Into<String>, origin: String) -> ConfigError {
    ConfigError::Key {
        key: key.to_owned(),
        problem: problem.into(),
        origin,
    }
}

/// Turns the merged tree into [`Settings`], checking every key.
struct Checker {
    env_names: BTreeMap<String, String>,
    /// The config file; the `config` crate records it relative to the working directory.
    file: Option<PathBuf>,
}

impl Checker {
    fn check(&self, mut tree: Map<String, Value>, env: &Env) -> Result<Settings, ConfigError> {
        let mut node = self.section(&mut tree, "node")?;
        let mut control = self.section(&mut tree, "control")?;
        let mut log = self.section(&mut tree, "log")?;
        self.no_leftovers("", tree)?;
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
        };
        self.no_leftovers("node.", node)?;
        self.no_leftovers("control.", control)?;
        self.no_leftovers("log.", log)?;
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

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
