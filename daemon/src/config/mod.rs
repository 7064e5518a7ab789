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

mod check;
pub mod keys;
pub mod log;
pub mod peer;
mod token;

pub use keys::{KEYS, Key};
pub use log::EventLogConfig;
pub use peer::PeerAddr;

use config::{Environment, FileFormat, Map, Source};

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
/// Default bound on QUIC connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// Accepted range of `transport.max_connections`.
pub const MAX_CONNECTIONS_RANGE: std::ops::RangeInclusive<u64> = 8..=65_536;
/// Largest `chat.commit_delay_ms`.
pub const MAX_COMMIT_DELAY_MS: u64 = 10_000;
/// Accepted range of the `ring.*_ms` timer periods.
pub const RING_MS_RANGE: std::ops::RangeInclusive<u64> = 10..=600_000;

/// Accepted range of `ring.origin_rate` (messages per second).
pub const ORIGIN_RATE_RANGE: std::ops::RangeInclusive<u64> = 1..=1_000_000;
/// Accepted range of `ring.origin_burst` (messages).
pub const ORIGIN_BURST_RANGE: std::ops::RangeInclusive<u64> = 1..=1_000_000;
/// Accepted range of `ring.reply_delay_ms`: well under the broadcast's 500 ms ack timeout, so
/// held answers never make a parent resend.
pub const REPLY_DELAY_RANGE: std::ops::RangeInclusive<u64> = 0..=100;
/// Accepted range of `ring.record_replicas` (copies of every DHT record).
pub const RECORD_REPLICAS_RANGE: std::ops::RangeInclusive<u64> = 1..=8;
/// Accepted range of `ring.record_store_mb` (MiB of DHT records a node holds).
pub const RECORD_STORE_MB_RANGE: std::ops::RangeInclusive<u64> = 1..=4096;

/// The ring protocol's settings (`[ring]`): timer periods in milliseconds and the per-origin
/// broadcast rate every node enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingSettings {
    /// `ring.stabilize_ms`.
    pub stabilize_ms: u64,
    /// `ring.fix_fingers_ms` (the shortest fix-fingers period).
    pub fix_fingers_ms: u64,
    /// `ring.check_predecessor_ms`.
    pub check_predecessor_ms: u64,
    /// `ring.rpc_timeout_ms`.
    pub rpc_timeout_ms: u64,
    /// `ring.origin_rate`: broadcasts per second accepted from one origin, at every hop.
    pub origin_rate: u32,
    /// `ring.origin_burst`: broadcasts accepted from one origin at once.
    pub origin_burst: u32,
    /// `ring.reply_delay_ms`: how long broadcast answers to a parent may be held so that
    /// several leave together (0: each at once).
    pub reply_delay_ms: u64,
    /// `ring.record_replicas`: copies of every DHT record (its primary holder and the next
    /// successors).
    pub record_replicas: u64,
    /// `ring.record_store_mb`: MiB of DHT records this node holds for others.
    pub record_store_mb: u64,
    /// `ring.record_sync_ms`: period of the record holders' digest comparison.
    pub record_sync_ms: u64,
}

impl Default for RingSettings {
    /// The overlay's own defaults (a test in `ring` keeps them equal).
    fn default() -> Self {
        RingSettings {
            stabilize_ms: 1000,
            fix_fingers_ms: 500,
            check_predecessor_ms: 2000,
            rpc_timeout_ms: 500,
            origin_rate: 20,
            origin_burst: 200,
            reply_delay_ms: 20,
            record_replicas: 3,
            record_store_mb: 64,
            record_sync_ms: 3000,
        }
    }
}

/// Limits of the chat core (the `chat.*` keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChatConfig {
    /// Messages kept in the history (`chat.retention_messages`).
    pub retention_messages: u64,
    /// How long a message is kept at most (`chat.retention_days`, fractions allowed; zero:
    /// no age limit).
    pub retention_age: std::time::Duration,
    /// How long an undelivered private message is tried before its sender is told it
    /// expired (`chat.mailbox_ttl_days`, 1 to 90).
    pub mailbox_ttl: std::time::Duration,
    /// How far a subscriber may fall behind before it is told it lagged
    /// (`chat.subscriber_queue`).
    pub subscriber_queue: usize,
    /// Open subscriptions at most (`chat.max_subscribers`).
    pub max_subscribers: usize,
    /// Local messages waiting for the ring driver at most (`chat.outbound_queue`); a send
    /// beyond it is refused at once as busy.
    pub outbound_queue: usize,
    /// How long messages from the ring may wait before they are committed to the history
    /// (`chat.commit_delay_ms`; zero commits each one).
    pub commit_delay: std::time::Duration,
    /// Inactivity after which the node's user is away (`chat.away_after_secs`; 0: never).
    pub away_after_secs: u64,
    /// Days a nickname stays reserved after its account stops renewing it
    /// (`chat.nick_release_days`).
    pub nick_release_days: u64,
}

/// The default of `chat.commit_delay_ms`: at 200 messages a second a commit takes about four
/// messages, a quarter of the page writes (docs/performance.md).
pub const DEFAULT_COMMIT_DELAY: std::time::Duration = std::time::Duration::from_millis(20);

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            retention_messages: 100_000,
            retention_age: std::time::Duration::ZERO,
            mailbox_ttl: std::time::Duration::from_secs(30 * 86_400),
            subscriber_queue: 1024,
            max_subscribers: 1024,
            outbound_queue: 1024,
            commit_delay: DEFAULT_COMMIT_DELAY,
            away_after_secs: 600,
            nick_release_days: 30,
        }
    }
}

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

/// The effective configuration.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// UDP address for QUIC (`node.listen`).
    pub listen: SocketAddr,
    /// Peers to join through; empty means this node founds a new ring (`node.bootstrap`).
    pub bootstrap: Vec<PeerAddr>,
    /// Where the node key and state live (`node.data_dir`).
    pub data_dir: PathBuf,
    /// The user's nickname, if set (`node.nickname`; empty means none).
    pub nickname: Option<Nickname>,
    /// Path of the control socket (`control.socket`).
    pub control_socket: PathBuf,
    /// Access to the control API (`control.*`).
    pub access: Access,
    /// Chat core limits (`chat.*`).
    pub chat: ChatConfig,
    /// Log filter (`log.filter`).
    pub log_filter: String,
    /// The event log and the statistics line (`log.events*`, `log.stats_interval_secs`).
    pub event_log: EventLogConfig,
    /// Most QUIC connections held at once (`transport.max_connections`).
    pub max_connections: usize,
    /// Ring timer periods and per-origin rate (`[ring]`).
    pub ring: RingSettings,
    /// LAN discovery (`[discovery]`).
    pub discovery: Discovery,
    /// The web view and metrics (`[web]`).
    pub web: Web,
    /// The IRC front door (`[irc]`).
    pub irc: Irc,
}

/// The IRC front door (`irc.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Irc {
    /// `irc.listen`: the TCP address; `None` (an empty value) turns the IRC listener off.
    pub listen: Option<SocketAddr>,
    /// Whether `irc.listen` was given rather than defaulted: a default address that is taken
    /// is skipped with a warning, a given one is an error.
    pub explicit: bool,
    /// `irc.tls_cert` and `irc.tls_key`: PEM files; with them the listener speaks TLS only
    /// (and may listen on a non-loopback address).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `irc.guests`: IRC clients without a password are admitted as guests of this node
    /// (shown `*nick`, public messages only, as the TCP token's guest does). Off by default.
    pub guests: bool,
    /// `irc.server_name`: the server name IRC clients see (numerics' source, PONG, WHO).
    pub server_name: String,
}

/// `irc.server_name` by default.
pub const DEFAULT_IRC_SERVER_NAME: &str = "chatd";

/// `irc.listen` by default: loopback only, the IRC port.
pub const DEFAULT_IRC_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 6667);

impl Default for Irc {
    fn default() -> Irc {
        Irc {
            listen: Some(DEFAULT_IRC_LISTEN),
            explicit: false,
            tls: None,
            guests: false,
            server_name: DEFAULT_IRC_SERVER_NAME.to_owned(),
        }
    }
}

/// The web view and `/metrics` (`web.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Web {
    /// `web.listen`: the HTTP address; `None` (an empty value) turns the web view off.
    pub listen: Option<SocketAddr>,
    /// Whether `web.listen` was given (file, environment or `--web`) rather than defaulted:
    /// a default address that is taken is skipped with a warning, a given one is an error.
    pub explicit: bool,
}

/// `web.listen` by default: loopback only.
pub const DEFAULT_WEB_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7480);

impl Default for Web {
    fn default() -> Web {
        Web {
            listen: Some(DEFAULT_WEB_LISTEN),
            explicit: false,
        }
    }
}

/// LAN discovery (`discovery.*`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    /// `discovery.mdns`: advertise this node and browse for others with mDNS.
    pub mdns: bool,
    /// `discovery.interfaces`: the network interfaces mDNS runs on; empty for every interface
    /// but loopback.
    pub interfaces: Vec<String>,
}

/// Most entries of `discovery.interfaces`.
pub const MAX_INTERFACES: usize = 32;

/// Who may use the control API, and how fast (`control.*` keys besides `socket`).
#[derive(Clone, Debug, PartialEq)]
pub struct Access {
    /// `control.group`: a group whose members may use the Unix socket, as (name, gid).
    pub group: Option<(String, u32)>,
    /// `control.tcp_listen`: a TCP address for remote clients (bearer token required).
    pub tcp_listen: Option<SocketAddr>,
    /// `control.token_file`: where the bearer token was read from, and the token.
    pub token: Option<(PathBuf, Token)>,
    /// `control.send_rate`: messages per second one client may send (sustained).
    pub send_rate: f64,
    /// `control.send_burst`: messages one client may send at once.
    pub send_burst: u32,
}

/// Default `control.send_rate`.
pub const DEFAULT_SEND_RATE: f64 = 5.0;
/// Default `control.send_burst`.
pub const DEFAULT_SEND_BURST: u32 = 20;

impl Default for Access {
    fn default() -> Self {
        Access {
            group: None,
            tcp_listen: None,
            token: None,
            send_rate: DEFAULT_SEND_RATE,
            send_burst: DEFAULT_SEND_BURST,
        }
    }
}

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
        let mut settings = check::Checker {
            env_names,
            file: file.clone(),
        }
        .check(tree, env)?;
        settings.config_file = file;
        Ok(settings)
    }

    /// Every key's value, as `check-config` prints it (TOML), by name.
    pub fn values(&self) -> BTreeMap<&'static str, String> {
        let table: toml::Table = self.to_toml().parse().unwrap_or_default();
        KEYS.iter()
            .map(|k| {
                let (section, name) = k.name.split_once('.').unwrap_or((k.name, ""));
                let value = table
                    .get(section)
                    .and_then(|t| t.get(name))
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                (k.name, value)
            })
            .collect()
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
        let a = &self.access;
        let group = a.group.as_ref().map(|g| g.0.clone()).unwrap_or_default();
        control.insert("group".into(), s(group));
        let tcp = a.tcp_listen.map(|t| t.to_string()).unwrap_or_default();
        control.insert("tcp_listen".into(), s(tcp));
        let token = a.token.as_ref().map(|t| t.0.to_string_lossy().into_owned());
        control.insert("token_file".into(), s(token.unwrap_or_default()));
        control.insert("send_rate".into(), T::Float(a.send_rate));
        control.insert("send_burst".into(), T::Integer(a.send_burst.into()));
        let mut chat = Table::new();
        let int = |n: u64| T::Integer(i64::try_from(n).unwrap_or(i64::MAX));
        let c = &self.chat;
        chat.insert("retention_messages".into(), int(c.retention_messages));
        let days = c.retention_age.as_secs_f64() / 86_400.0;
        chat.insert(
            "retention_days".into(),
            if days.fract() == 0.0 {
                int(days as u64)
            } else {
                T::Float(days)
            },
        );
        let ttl = c.mailbox_ttl.as_secs_f64() / 86_400.0;
        chat.insert(
            "mailbox_ttl_days".into(),
            if ttl.fract() == 0.0 {
                int(ttl as u64)
            } else {
                T::Float(ttl)
            },
        );
        chat.insert("subscriber_queue".into(), int(c.subscriber_queue as u64));
        chat.insert("max_subscribers".into(), int(c.max_subscribers as u64));
        chat.insert("outbound_queue".into(), int(c.outbound_queue as u64));
        let delay = u64::try_from(c.commit_delay.as_millis()).unwrap_or(u64::MAX);
        chat.insert("commit_delay_ms".into(), int(delay));
        chat.insert("away_after_secs".into(), int(c.away_after_secs));
        chat.insert("nick_release_days".into(), int(c.nick_release_days));
        let mut log = Table::new();
        log.insert("filter".into(), s(self.log_filter.clone()));
        self.event_log.to_toml(&mut log);
        let n = |v: u64| T::Integer(i64::try_from(v).unwrap_or(i64::MAX));
        let mut transport = Table::new();
        transport.insert("max_connections".into(), n(self.max_connections as u64));
        let mut ring = Table::new();
        ring.insert("stabilize_ms".into(), n(self.ring.stabilize_ms));
        ring.insert("fix_fingers_ms".into(), n(self.ring.fix_fingers_ms));
        ring.insert(
            "check_predecessor_ms".into(),
            n(self.ring.check_predecessor_ms),
        );
        ring.insert("rpc_timeout_ms".into(), n(self.ring.rpc_timeout_ms));
        ring.insert("origin_rate".into(), n(u64::from(self.ring.origin_rate)));
        ring.insert("origin_burst".into(), n(u64::from(self.ring.origin_burst)));
        ring.insert("reply_delay_ms".into(), n(self.ring.reply_delay_ms));
        ring.insert("record_replicas".into(), n(self.ring.record_replicas));
        ring.insert("record_store_mb".into(), n(self.ring.record_store_mb));
        ring.insert("record_sync_ms".into(), n(self.ring.record_sync_ms));
        let mut discovery = Table::new();
        discovery.insert("mdns".into(), T::Boolean(self.discovery.mdns));
        let names = self.discovery.interfaces.iter().map(|i| s(i.clone()));
        discovery.insert("interfaces".into(), T::Array(names.collect()));
        let mut web = Table::new();
        web.insert(
            "listen".into(),
            s(self.web.listen.map(|a| a.to_string()).unwrap_or_default()),
        );
        let mut irc = Table::new();
        irc.insert(
            "listen".into(),
            s(self.irc.listen.map(|a| a.to_string()).unwrap_or_default()),
        );
        let (cert, key) = match &self.irc.tls {
            Some((c, k)) => (c.display().to_string(), k.display().to_string()),
            None => (String::new(), String::new()),
        };
        irc.insert("tls_cert".into(), s(cert));
        irc.insert("tls_key".into(), s(key));
        irc.insert("guests".into(), T::Boolean(self.irc.guests));
        irc.insert("server_name".into(), s(self.irc.server_name.clone()));
        // Sections in reading order (a TOML table would sort them).
        let mut out = String::new();
        for (name, table) in [
            ("node", node),
            ("control", control),
            ("chat", chat),
            ("log", log),
            ("transport", transport),
            ("ring", ring),
            ("discovery", discovery),
            ("web", web),
            ("irc", irc),
        ] {
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
