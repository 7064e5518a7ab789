//! Layered configuration: built-in defaults → config file → `CHATD_*` environment → flags.
//!
//! The config file is `--config PATH` if given (it must exist), else `/etc/chatd/chatd.toml` if
//! that exists, else none. Environment variables are `CHATD_` followed by the key with `__`
//! between section and name, e.g. `CHATD_NODE__LISTEN`; `CHATD_LOG` is a shorthand for
//! `CHATD_LOG__FILTER`. The `config` crate merges the layers; this module then checks every key
//! itself so that each error is one line naming the key, the problem and where the value came
//! from, e.g. `node.listen: invalid socket address "x" (from --listen)`.
//!
//! Every key is declared once, as one field line of a settings struct (`sections.rs`, `log.rs`;
//! the `section!` macro is in `schema.rs`, the value kinds with their ranges in `kinds.rs`).
//! Checking (`check.rs`), `check-config`'s output ([`Settings::to_toml`]), the sample
//! `deploy/chatd.toml` and the table in `docs/operations.md` (`generate.rs`) and the reloader's
//! comparison ([`Settings::values`], [`KEYS`]) all come from those lines.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};

use config::{Environment, FileFormat, Map, Source};

use crate::env::Env;
use crate::paths;

mod check;
mod generate;
mod kinds;
pub mod log;
pub mod peer;
mod schema;
mod sections;
mod token;
pub mod voice;

pub use generate::{operations_table, sample};
pub use log::EventLogConfig;
pub use peer::PeerAddr;
pub use schema::{Key, Reload};
pub use sections::{
    Access, BulkSettings, ChatConfig, Discovery, Irc, RING_MS_RANGE, RingSettings, Settings, Web,
};
pub use voice::VoiceSettings;

/// Every key chatd understands, in the order `check-config` prints them (by section, then as
/// declared).
pub static KEYS: std::sync::LazyLock<Vec<Key>> = std::sync::LazyLock::new(|| {
    let mut keys = schema::keys_of::<Settings>();
    keys.sort_by_key(|k| schema::SECTIONS.iter().position(|s| *s == k.section()));
    keys
});

/// The system-wide config file, read when no `--config` is given and it exists.
pub const SYSTEM_CONFIG: &str = "/etc/chatd/chatd.toml";
/// Default QUIC listen address.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7400));
/// Default log filter (tracing-subscriber `EnvFilter` syntax).
pub const DEFAULT_LOG_FILTER: &str = "info";
/// The default of `chat.commit_delay_ms`: at 200 messages a second a commit takes about four
/// messages, a quarter of the page writes (docs/performance.md).
pub const DEFAULT_COMMIT_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

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
    /// `--lan`.
    pub lan: bool,
    /// `--web ADDR` (empty: no web view).
    pub web: Option<String>,
}

/// `irc.server_name` by default.
pub const DEFAULT_IRC_SERVER_NAME: &str = "chatd";

/// `irc.listen` by default: loopback only, the IRC port.
pub const DEFAULT_IRC_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 6667);

/// `web.listen` by default: loopback only.
pub const DEFAULT_WEB_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7480);

/// Most entries of `discovery.interfaces`.
pub const MAX_INTERFACES: usize = 32;

/// A bearer token; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(pub zeroize::Zeroizing<String>);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
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
        if overrides.lan {
            builder = builder.set_override("discovery.mdns", true)?;
        }
        builder = builder.set_override_option("web.listen", overrides.web.clone())?;
        let tree = builder.build()?.collect()?;
        let mut settings = check::Checker::new(env_names, file.clone()).check(tree, env)?;
        settings.config_file = file;
        Ok(settings)
    }

    /// Every key's value, as `check-config` prints it (TOML), by name.
    pub fn values(&self) -> BTreeMap<&'static str, String> {
        let tables = self.tables();
        KEYS.iter().map(|k| (k.name, tables.get(k.name))).collect()
    }

    fn tables(&self) -> schema::Tables {
        let mut tables = schema::Tables::default();
        schema::Section::write(self, &mut tables);
        tables
    }

    /// The configuration as a TOML document, every key included, sections in reading order.
    pub fn to_toml(&self) -> String {
        let tables = self.tables();
        let mut out = String::new();
        for name in schema::SECTIONS {
            let table = tables.0.get(name).cloned().unwrap_or_default();
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

pub(super) fn key_error(key: &str, problem: impl Into<String>, origin: String) -> ConfigError {
    ConfigError::Key {
        key: key.to_owned(),
        problem: problem.into(),
        origin,
    }
}

#[cfg(test)]
mod tests;
