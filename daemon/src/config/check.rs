//! Checking the merged configuration tree key by key, so that every error is one line naming
//! the key, the problem and where the value came from (a file, a `CHATD_*` variable, a flag).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use config::{Map, Value, ValueKind};

use super::ChatConfig;
use super::{
    Access, ConfigError, DEFAULT_LISTEN, DEFAULT_LOG_FILTER, DEFAULT_MAX_CONNECTIONS, Discovery,
    Irc, MAX_COMMIT_DELAY_MS, MAX_CONNECTIONS_RANGE, MAX_INTERFACES, ORIGIN_BURST_RANGE,
    ORIGIN_RATE_RANGE, PeerAddr, RECORD_REPLICAS_RANGE, RECORD_STORE_MB_RANGE, REPLY_DELAY_RANGE,
    RING_MS_RANGE, RingSettings, Settings, Web, key_error,
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
        let mut chat = self.section(&mut tree, "chat")?;
        let mut log = self.section(&mut tree, "log")?;
        let mut transport = self.section(&mut tree, "transport")?;
        let mut ring = self.section(&mut tree, "ring")?;
        let mut discovery = self.section(&mut tree, "discovery")?;
        let mut web = self.section(&mut tree, "web")?;
        let mut irc = self.section(&mut tree, "irc")?;
        self.no_leftovers("", tree)?;
        let defaults = RingSettings::default();
        let mut ms = |name: &str, default: u64| -> Result<u64, ConfigError> {
            match ring.remove(name) {
                Some(v) => self.integer(&format!("ring.{name}"), v, RING_MS_RANGE),
                None => Ok(default),
            }
        };
        let ring_timers = RingSettings {
            stabilize_ms: ms("stabilize_ms", defaults.stabilize_ms)?,
            fix_fingers_ms: ms("fix_fingers_ms", defaults.fix_fingers_ms)?,
            check_predecessor_ms: ms("check_predecessor_ms", defaults.check_predecessor_ms)?,
            rpc_timeout_ms: ms("rpc_timeout_ms", defaults.rpc_timeout_ms)?,
            record_sync_ms: ms("record_sync_ms", defaults.record_sync_ms)?,
            origin_rate: match ring.remove("origin_rate") {
                Some(v) => self.integer("ring.origin_rate", v, ORIGIN_RATE_RANGE)? as u32,
                None => defaults.origin_rate,
            },
            origin_burst: match ring.remove("origin_burst") {
                Some(v) => self.integer("ring.origin_burst", v, ORIGIN_BURST_RANGE)? as u32,
                None => defaults.origin_burst,
            },
            reply_delay_ms: match ring.remove("reply_delay_ms") {
                Some(v) => self.integer("ring.reply_delay_ms", v, REPLY_DELAY_RANGE)?,
                None => defaults.reply_delay_ms,
            },
            record_replicas: match ring.remove("record_replicas") {
                Some(v) => self.integer("ring.record_replicas", v, RECORD_REPLICAS_RANGE)?,
                None => defaults.record_replicas,
            },
            record_store_mb: match ring.remove("record_store_mb") {
                Some(v) => self.integer("ring.record_store_mb", v, RECORD_STORE_MB_RANGE)?,
                None => defaults.record_store_mb,
            },
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
            access: self.access(&mut control)?,
            chat: self.chat(&mut chat)?,
            log_filter: match log.remove("filter") {
                Some(v) => self.filter("log.filter", v)?,
                None => DEFAULT_LOG_FILTER.to_owned(),
            },
            event_log: self.event_log(&mut log)?,
            max_connections: match transport.remove("max_connections") {
                Some(v) => {
                    self.integer("transport.max_connections", v, MAX_CONNECTIONS_RANGE)? as usize
                }
                None => DEFAULT_MAX_CONNECTIONS,
            },
            ring: ring_timers,
            discovery: Discovery {
                mdns: match discovery.remove("mdns") {
                    Some(v) => self.boolean("discovery.mdns", v)?,
                    None => false,
                },
                interfaces: match discovery.remove("interfaces") {
                    Some(v) => self.interfaces("discovery.interfaces", v)?,
                    None => Vec::new(),
                },
            },
            web: match web.remove("listen") {
                Some(v) => Web {
                    listen: self.optional_addr("web.listen", v)?,
                    explicit: true,
                },
                None => Web::default(),
            },
            irc: {
                let mut i = match irc.remove("listen") {
                    Some(v) => Irc {
                        listen: self.optional_addr("irc.listen", v)?,
                        explicit: true,
                        tls: None,
                        guests: false,
                        server_name: crate::config::DEFAULT_IRC_SERVER_NAME.to_owned(),
                    },
                    None => Irc::default(),
                };
                if let Some(v) = irc.remove("guests") {
                    i.guests = self.boolean("irc.guests", v)?;
                }
                if let Some(v) = irc.remove("server_name") {
                    let name = self.string("irc.server_name", v)?;
                    let ok = (1..=63).contains(&name.len())
                        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
                        && name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
                    if !ok {
                        return Err(key_error(
                            "irc.server_name",
                            format!(
                                "{name:?}: 1-63 of A-Z a-z 0-9 . - starting with a letter or digit"
                            ),
                            String::new(),
                        ));
                    }
                    i.server_name = name;
                }
                let mut file = |name: &str| -> Result<Option<PathBuf>, ConfigError> {
                    match irc.remove(name) {
                        Some(v) if v.clone().into_string().is_ok_and(|t| t.trim().is_empty()) => {
                            Ok(None)
                        }
                        Some(v) => self.path(&format!("irc.{name}"), v).map(Some),
                        None => Ok(None),
                    }
                };
                i.tls = match (file("tls_cert")?, file("tls_key")?) {
                    (Some(c), Some(k)) => Some((c, k)),
                    (None, None) => None,
                    _ => {
                        return Err(key_error(
                            "irc.tls_cert",
                            "irc.tls_cert and irc.tls_key go together: give both PEM files, or neither",
                            String::new(),
                        ));
                    }
                };
                i
            },
        };
        self.no_leftovers("node.", node)?;
        self.no_leftovers("control.", control)?;
        self.no_leftovers("chat.", chat)?;
        self.no_leftovers("log.", log)?;
        self.no_leftovers("transport.", transport)?;
        self.no_leftovers("ring.", ring)?;
        self.no_leftovers("discovery.", discovery)?;
        self.no_leftovers("web.", web)?;
        self.no_leftovers("irc.", irc)?;
        if let Some(addr) = settings.irc.listen
            && !addr.ip().is_loopback()
            && settings.irc.tls.is_none()
        {
            return Err(key_error(
                "irc.listen",
                format!(
                    "{addr} is not a loopback address: IRC passwords must not cross a network \
                     in clear text; set irc.tls_cert and irc.tls_key (TLS), or listen on \
                     loopback and reach it through an SSH tunnel (docs/irc.md)"
                ),
                String::new(),
            ));
        }
        if let Some(addr) = settings.web.listen
            && !addr.ip().is_loopback()
            && settings.access.token.is_none()
        {
            return Err(key_error(
                "web.listen",
                format!(
                    "{addr} is not a loopback address: the web view there needs the bearer \
                     token of control.token_file, which is not set"
                ),
                String::new(),
            ));
        }
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
                "discovery.mdns" => " (from --lan)".to_owned(),
                "web.listen" => " (from --web)".to_owned(),
                "control.socket" => " (from --control)".to_owned(),
                _ => match &self.file {
                    Some(file) => format!(" (in {})", file.display()),
                    None => String::new(),
                },
            },
        }
    }

    fn access(&self, control: &mut Map<String, Value>) -> Result<Access, ConfigError> {
        let d = Access::default();
        let group = match control.remove("group") {
            Some(v) => self.group("control.group", v)?,
            None => None,
        };
        let tcp_listen = match control.remove("tcp_listen") {
            Some(v) => {
                let origin = self.origin("control.tcp_listen", &v);
                let text = self.string("control.tcp_listen", v)?;
                match text.trim() {
                    "" => None,
                    t => Some(t.parse().map_err(|_| {
                        key_error(
                            "control.tcp_listen",
                            format!(
                                "invalid socket address {t:?} (expected IP:PORT, or empty for none)"
                            ),
                            origin,
                        )
                    })?),
                }
            }
            None => None,
        };
        let token = match control.remove("token_file") {
            Some(v) => {
                let origin = self.origin("control.token_file", &v);
                let text = self.string("control.token_file", v)?;
                match text.trim() {
                    "" => None,
                    t => Some(
                        super::token::read(std::path::Path::new(t))
                            .map_err(|problem| key_error("control.token_file", problem, origin))?,
                    ),
                }
            }
            None => None,
        };
        if tcp_listen.is_some() && token.is_none() {
            return Err(key_error(
                "control.token_file",
                "must be set when control.tcp_listen is (the TCP listener requires a bearer token)",
                String::new(),
            ));
        }
        let send_rate = match control.remove("send_rate") {
            Some(v) => self.number("control.send_rate", v, 0.001, 1e6)?,
            None => d.send_rate,
        };
        let send_burst = match control.remove("send_burst") {
            Some(v) => self.uint("control.send_burst", v, 1, 1_000_000)? as u32,
            None => d.send_burst,
        };
        Ok(Access {
            group,
            tcp_listen,
            token,
            send_rate,
            send_burst,
        })
    }

    fn chat(&self, chat: &mut Map<String, Value>) -> Result<ChatConfig, ConfigError> {
        let d = ChatConfig::default();
        let retention_age = match chat.remove("retention_days") {
            Some(v) => Duration::from_secs_f64(
                self.number("chat.retention_days", v, 0.0, 36_500.0)? * 86_400.0,
            ),
            None => d.retention_age,
        };
        let mailbox_ttl = match chat.remove("mailbox_ttl_days") {
            Some(v) => Duration::from_secs_f64(
                self.number("chat.mailbox_ttl_days", v, 0.001, 90.0)? * 86_400.0,
            ),
            None => d.mailbox_ttl,
        };
        let mut get = |name: &str, default: u64, max: u64| -> Result<u64, ConfigError> {
            let key = format!("chat.{name}");
            match chat.remove(name) {
                Some(v) => self.uint(&key, v, 1, max),
                None => Ok(default),
            }
        };
        Ok(ChatConfig {
            retention_messages: get("retention_messages", d.retention_messages, 1 << 40)?,
            retention_age,
            mailbox_ttl,
            subscriber_queue: get("subscriber_queue", d.subscriber_queue as u64, 1 << 20)? as usize,
            max_subscribers: get("max_subscribers", d.max_subscribers as u64, 1 << 20)? as usize,
            outbound_queue: get("outbound_queue", d.outbound_queue as u64, 1 << 20)? as usize,
            commit_delay: match chat.remove("commit_delay_ms") {
                Some(v) => Duration::from_millis(self.uint(
                    "chat.commit_delay_ms",
                    v,
                    0,
                    MAX_COMMIT_DELAY_MS,
                )?),
                None => d.commit_delay,
            },
            away_after_secs: match chat.remove("away_after_secs") {
                Some(v) => self.uint("chat.away_after_secs", v, 0, 30 * 24 * 3600)?,
                None => d.away_after_secs,
            },
            nick_release_days: match chat.remove("nick_release_days") {
                Some(v) => self.uint("chat.nick_release_days", v, 1, 90)?,
                None => d.nick_release_days,
            },
        })
    }

    fn group(&self, key: &str, value: Value) -> Result<Option<(String, u32)>, ConfigError> {
        let origin = self.origin(key, &value);
        let name = self.string(key, value)?;
        let name = name.trim();
        if name.is_empty() {
            return Ok(None);
        }
        super::token::lookup_group(name)
            .map(|gid| Some((name.to_owned(), gid)))
            .ok_or_else(|| key_error(key, format!("no such group {name:?}"), origin))
    }

    fn uint(&self, key: &str, value: Value, min: u64, max: u64) -> Result<u64, ConfigError> {
        let origin = self.origin(key, &value);
        let n = match &value.kind {
            ValueKind::I64(n) => u64::try_from(*n).ok(),
            ValueKind::U64(n) => Some(*n),
            ValueKind::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(key_error(
                key,
                format!(
                    "expected a whole number from {min} to {max}, got {}",
                    describe(&value)
                ),
                origin,
            )),
        }
    }

    fn number(&self, key: &str, value: Value, min: f64, max: f64) -> Result<f64, ConfigError> {
        let origin = self.origin(key, &value);
        let n = match &value.kind {
            ValueKind::I64(n) => Some(*n as f64),
            ValueKind::U64(n) => Some(*n as f64),
            ValueKind::Float(x) => Some(*x),
            ValueKind::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() && (min..=max).contains(&n) => Ok(n),
            _ => Err(key_error(
                key,
                format!(
                    "expected a number from {min} to {max}, got {}",
                    describe(&value)
                ),
                origin,
            )),
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

    /// An address, or none for an empty value.
    fn optional_addr(&self, key: &str, value: Value) -> Result<Option<SocketAddr>, ConfigError> {
        let origin = self.origin(key, &value);
        let s = self.string(key, value)?;
        match s.trim() {
            "" => Ok(None),
            t => t.parse().map(Some).map_err(|_| {
                key_error(
                    key,
                    format!("invalid socket address {s:?} (expected IP:PORT, or empty for none)"),
                    origin,
                )
            }),
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
    fn addrs(&self, key: &str, value: Value) -> Result<Vec<PeerAddr>, ConfigError> {
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
                s.trim()
                    .parse::<PeerAddr>()
                    .map_err(|e| key_error(key, e.to_string(), origin.clone()))
            })
            .collect()
    }

    /// A whole number within `range`; a string of digits (from the environment) is accepted.
    pub(super) fn integer(
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

    /// `true` or `false`; from the environment also `1`/`0`, `yes`/`no`, `on`/`off`.
    pub(super) fn boolean(&self, key: &str, value: Value) -> Result<bool, ConfigError> {
        match &value.kind {
            ValueKind::Boolean(b) => Ok(*b),
            ValueKind::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(self.fail(
                    key,
                    &value,
                    format!("expected true or false, got {}", describe(&value)),
                )),
            },
            _ => Err(self.fail(
                key,
                &value,
                format!("expected true or false, got {}", describe(&value)),
            )),
        }
    }

    /// A list of network interface names: a TOML array, or one comma-separated string.
    fn interfaces(&self, key: &str, value: Value) -> Result<Vec<String>, ConfigError> {
        let origin = self.origin(key, &value);
        let names: Vec<String> = match value.kind {
            ValueKind::Array(items) => items
                .into_iter()
                .map(|item| self.string(key, item))
                .collect::<Result<_, _>>()?,
            ValueKind::String(s) => s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => {
                return Err(self.fail(
                    key,
                    &value,
                    format!(
                        "expected a list of interface names, got {}",
                        describe(&value)
                    ),
                ));
            }
        };
        if names.len() > MAX_INTERFACES {
            return Err(key_error(
                key,
                format!("{} interfaces (at most {MAX_INTERFACES})", names.len()),
                origin,
            ));
        }
        for name in &names {
            // Linux interface names: 1 to 15 bytes, no '/', whitespace or ':'.
            let ok = (1..=15).contains(&name.len())
                && !name
                    .chars()
                    .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
            if !ok {
                return Err(key_error(
                    key,
                    format!(
                        "invalid interface name {name:?} (1 to 15 characters, no '/', ':' or spaces)"
                    ),
                    origin,
                ));
            }
        }
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        if unique.len() != names.len() {
            return Err(key_error(key, "an interface is named twice", origin));
        }
        Ok(names)
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
