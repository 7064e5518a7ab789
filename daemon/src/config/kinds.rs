//! The kinds of configuration values ([`Kind`]): how each is parsed from any layer (a TOML
//! value, or a string from the environment or a flag), checked against its allowed range, and
//! printed; every error is one line naming the key, the problem and where the value came from.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use config::{Value, ValueKind};

use super::check::{Checker, describe};
use super::schema::Kind;
use super::{ConfigError, MAX_INTERFACES, PeerAddr, Token, key_error};
use crate::nickname::Nickname;

fn int(n: u64) -> toml::Value {
    toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX))
}

fn text(s: impl Into<String>) -> toml::Value {
    toml::Value::String(s.into())
}

/// A whole number within a range, out of range said as `… is out of range (expected A..=B)`;
/// a string of digits (from the environment) is accepted.
pub struct Int(pub RangeInclusive<u64>);

impl Int {
    fn get(&self, c: &Checker, key: &str, value: Value) -> Result<u64, ConfigError> {
        let origin = c.origin(key, &value);
        let n = match &value.kind {
            ValueKind::I64(n) => u64::try_from(*n).ok(),
            ValueKind::U64(n) => Some(*n),
            ValueKind::I128(n) => u64::try_from(*n).ok(),
            ValueKind::U128(n) => u64::try_from(*n).ok(),
            ValueKind::String(s) => s.trim().parse::<u64>().ok(),
            _ => {
                return Err(c.fail(
                    key,
                    &value,
                    format!("expected a whole number, got {}", describe(&value)),
                ));
            }
        };
        match n {
            Some(n) if self.0.contains(&n) => Ok(n),
            _ => Err(key_error(
                key,
                format!(
                    "{} is out of range (expected {}..={})",
                    describe(&value),
                    self.0.start(),
                    self.0.end()
                ),
                origin,
            )),
        }
    }
}

/// A whole number from `.0` to `.1`, a bad one said as `expected a whole number from A to B`.
pub struct Whole(pub u64, pub u64);

impl Whole {
    fn get(&self, c: &Checker, key: &str, value: Value) -> Result<u64, ConfigError> {
        let origin = c.origin(key, &value);
        let n = match &value.kind {
            ValueKind::I64(n) => u64::try_from(*n).ok(),
            ValueKind::U64(n) => Some(*n),
            ValueKind::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if (self.0..=self.1).contains(&n) => Ok(n),
            _ => Err(key_error(
                key,
                format!(
                    "expected a whole number from {} to {}, got {}",
                    self.0,
                    self.1,
                    describe(&value)
                ),
                origin,
            )),
        }
    }
}

/// The integer types a whole-number key may have.
pub trait WholeType: Copy {
    /// From a checked value (the kind's range fits the type).
    fn from_u64(n: u64) -> Self;
    /// As printed.
    fn to_u64(self) -> u64;
}

macro_rules! whole_type {
    ($($t:ty),*) => {$(
        impl WholeType for $t {
            fn from_u64(n: u64) -> Self {
                <$t>::try_from(n).unwrap_or(<$t>::MAX)
            }
            fn to_u64(self) -> u64 {
                u64::try_from(self).unwrap_or(u64::MAX)
            }
        }
    )*};
}

whole_type!(u64, u32, usize);

impl<T: WholeType> Kind<T> for Int {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<T, ConfigError> {
        self.get(c, key, value).map(T::from_u64)
    }
    fn to_toml(&self, value: &T) -> toml::Value {
        int(value.to_u64())
    }
    fn allowed(&self) -> String {
        format!("{}–{}", self.0.start(), self.0.end())
    }
}

impl<T: WholeType> Kind<T> for Whole {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<T, ConfigError> {
        self.get(c, key, value).map(T::from_u64)
    }
    fn to_toml(&self, value: &T) -> toml::Value {
        int(value.to_u64())
    }
    fn allowed(&self) -> String {
        format!("{}–{}", self.0, self.1)
    }
}

/// Milliseconds (a [`Whole`] number) as a [`Duration`].
pub struct Millis(pub u64, pub u64);

impl Kind<Duration> for Millis {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<Duration, ConfigError> {
        Whole(self.0, self.1)
            .get(c, key, value)
            .map(Duration::from_millis)
    }
    fn to_toml(&self, value: &Duration) -> toml::Value {
        int(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }
    fn allowed(&self) -> String {
        format!("{}–{}", self.0, self.1)
    }
}

/// Seconds (an [`Int`]) as a [`Duration`].
pub struct Secs(pub RangeInclusive<u64>);

impl Kind<Duration> for Secs {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<Duration, ConfigError> {
        Int(self.0.clone())
            .get(c, key, value)
            .map(Duration::from_secs)
    }
    fn to_toml(&self, value: &Duration) -> toml::Value {
        int(value.as_secs())
    }
    fn allowed(&self) -> String {
        format!("{}–{}", self.0.start(), self.0.end())
    }
}

/// A number from `.0` to `.1`, fractions allowed.
pub struct Number(pub f64, pub f64);

impl Kind<f64> for Number {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<f64, ConfigError> {
        let origin = c.origin(key, &value);
        let (min, max) = (self.0, self.1);
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
    fn to_toml(&self, value: &f64) -> toml::Value {
        toml::Value::Float(*value)
    }
    fn allowed(&self) -> String {
        format!("{}–{}", self.0, self.1)
    }
}

/// Days (a [`Number`], fractions allowed) as a [`Duration`]; printed whole when whole.
pub struct Days(pub f64, pub f64);

impl Kind<Duration> for Days {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<Duration, ConfigError> {
        let days = Number(self.0, self.1).parse(c, key, value)?;
        Ok(Duration::from_secs_f64(days * 86_400.0))
    }
    fn to_toml(&self, value: &Duration) -> toml::Value {
        let days = value.as_secs_f64() / 86_400.0;
        if days.fract() == 0.0 {
            int(days as u64)
        } else {
            toml::Value::Float(days)
        }
    }
    fn allowed(&self) -> String {
        format!("{}–{}, fractions allowed", self.0, self.1)
    }
}

/// `true` or `false`; from the environment also `1`/`0`, `yes`/`no`, `on`/`off`.
pub struct Bool;

impl Kind<bool> for Bool {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<bool, ConfigError> {
        let parsed = match &value.kind {
            ValueKind::Boolean(b) => Some(*b),
            ValueKind::String(s) => match s.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Some(true),
                "false" | "0" | "no" | "off" => Some(false),
                _ => None,
            },
            _ => None,
        };
        parsed.ok_or_else(|| {
            c.fail(
                key,
                &value,
                format!("expected true or false, got {}", describe(&value)),
            )
        })
    }
    fn to_toml(&self, value: &bool) -> toml::Value {
        toml::Value::Boolean(*value)
    }
    fn allowed(&self) -> String {
        "true or false".into()
    }
}

/// A socket address `IP:PORT`.
pub struct Addr;

impl Kind<SocketAddr> for Addr {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<SocketAddr, ConfigError> {
        let origin = c.origin(key, &value);
        let s = c.string(key, value)?;
        s.trim().parse().map_err(|_| {
            key_error(
                key,
                format!("invalid socket address {s:?} (expected IP:PORT)"),
                origin,
            )
        })
    }
    fn to_toml(&self, value: &SocketAddr) -> toml::Value {
        text(value.to_string())
    }
    fn allowed(&self) -> String {
        "IP:PORT".into()
    }
}

/// A socket address, or none for an empty value.
pub struct OptAddr;

impl Kind<Option<SocketAddr>> for OptAddr {
    fn parse(
        &self,
        c: &Checker,
        key: &str,
        value: Value,
    ) -> Result<Option<SocketAddr>, ConfigError> {
        let origin = c.origin(key, &value);
        let s = c.string(key, value)?;
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
    fn to_toml(&self, value: &Option<SocketAddr>) -> toml::Value {
        text(value.map(|a| a.to_string()).unwrap_or_default())
    }
    fn allowed(&self) -> String {
        "IP:PORT, or empty for none".into()
    }
}

/// A list of peer addresses: a TOML array, or one comma-separated string (environment).
pub struct Peers;

impl Kind<Vec<PeerAddr>> for Peers {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<Vec<PeerAddr>, ConfigError> {
        let origin = c.origin(key, &value);
        let source = value.origin().map(str::to_owned);
        let items = match value.kind {
            ValueKind::Array(items) => items,
            ValueKind::String(s) => s
                .split(',')
                .filter(|p| !p.trim().is_empty())
                .map(|p| Value::new(source.as_ref(), p))
                .collect(),
            _ => {
                return Err(c.fail(
                    key,
                    &value,
                    format!("expected a list of addresses, got {}", describe(&value)),
                ));
            }
        };
        items
            .into_iter()
            .map(|item| {
                let s = c.string(key, item)?;
                s.trim()
                    .parse::<PeerAddr>()
                    .map_err(|e| key_error(key, e.to_string(), origin.clone()))
            })
            .collect()
    }
    fn to_toml(&self, value: &Vec<PeerAddr>) -> toml::Value {
        toml::Value::Array(value.iter().map(|a| text(a.to_string())).collect())
    }
    fn allowed(&self) -> String {
        "a list of IP:PORT, [IPv6]:PORT or HOST:PORT".into()
    }
}

/// A path, made absolute; not empty.
pub struct Path;

impl Path {
    fn get(c: &Checker, key: &str, value: Value) -> Result<PathBuf, ConfigError> {
        let origin = c.origin(key, &value);
        let s = c.string(key, value)?;
        if s.is_empty() {
            return Err(key_error(key, "must not be empty", origin));
        }
        std::path::absolute(&s)
            .map_err(|e| key_error(key, format!("invalid path {s:?}: {e}"), origin))
    }
}

impl Kind<PathBuf> for Path {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<PathBuf, ConfigError> {
        Path::get(c, key, value)
    }
    fn to_toml(&self, value: &PathBuf) -> toml::Value {
        text(value.to_string_lossy())
    }
    fn allowed(&self) -> String {
        "a path".into()
    }
}

/// A path, or none for an empty (or blank) value.
pub struct OptPath;

impl Kind<Option<PathBuf>> for OptPath {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<Option<PathBuf>, ConfigError> {
        if value
            .clone()
            .into_string()
            .is_ok_and(|t| t.trim().is_empty())
        {
            return Ok(None);
        }
        Path::get(c, key, value).map(Some)
    }
    fn to_toml(&self, value: &Option<PathBuf>) -> toml::Value {
        text(
            value
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        )
    }
    fn allowed(&self) -> String {
        "a path, or empty for none".into()
    }
}

/// A nickname, or none for an empty value.
pub struct Nick;

impl Kind<Option<Nickname>> for Nick {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<Option<Nickname>, ConfigError> {
        let origin = c.origin(key, &value);
        let s = c.string(key, value)?;
        if s.is_empty() {
            return Ok(None);
        }
        s.parse()
            .map(Some)
            .map_err(|e| key_error(key, format!("invalid nickname {s:?}: {e}"), origin))
    }
    fn to_toml(&self, value: &Option<Nickname>) -> toml::Value {
        text(value.as_ref().map(|n| n.to_string()).unwrap_or_default())
    }
    fn allowed(&self) -> String {
        "1–32 of A-Z a-z 0-9 _ - . starting with a letter or digit, or empty".into()
    }
}

/// A tracing `EnvFilter`.
pub struct Filter;

impl Kind<String> for Filter {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<String, ConfigError> {
        let origin = c.origin(key, &value);
        let s = c.string(key, value)?;
        match tracing_subscriber::EnvFilter::builder().parse(&s) {
            Ok(_) => Ok(s),
            Err(e) => Err(key_error(key, format!("invalid filter {s:?}: {e}"), origin)),
        }
    }
    fn to_toml(&self, value: &String) -> toml::Value {
        text(value.clone())
    }
    fn allowed(&self) -> String {
        "tracing EnvFilter syntax".into()
    }
}

/// A group (name or number) that exists, or none for an empty value: (name, gid).
pub struct Group;

impl Kind<Option<(String, u32)>> for Group {
    fn parse(
        &self,
        c: &Checker,
        key: &str,
        value: Value,
    ) -> Result<Option<(String, u32)>, ConfigError> {
        let origin = c.origin(key, &value);
        let name = c.string(key, value)?;
        let name = name.trim();
        if name.is_empty() {
            return Ok(None);
        }
        super::token::lookup_group(name)
            .map(|gid| Some((name.to_owned(), gid)))
            .ok_or_else(|| key_error(key, format!("no such group {name:?}"), origin))
    }
    fn to_toml(&self, value: &Option<(String, u32)>) -> toml::Value {
        text(value.as_ref().map(|g| g.0.clone()).unwrap_or_default())
    }
    fn allowed(&self) -> String {
        "a group name or number, or empty".into()
    }
}

/// A file holding a bearer token (read and checked at load), or none for an empty value.
pub struct TokenFile;

impl Kind<Option<(PathBuf, Token)>> for TokenFile {
    fn parse(
        &self,
        c: &Checker,
        key: &str,
        value: Value,
    ) -> Result<Option<(PathBuf, Token)>, ConfigError> {
        let origin = c.origin(key, &value);
        let text = c.string(key, value)?;
        match text.trim() {
            "" => Ok(None),
            t => super::token::read(std::path::Path::new(t))
                .map(Some)
                .map_err(|problem| key_error(key, problem, origin)),
        }
    }
    fn to_toml(&self, value: &Option<(PathBuf, Token)>) -> toml::Value {
        text(
            value
                .as_ref()
                .map(|t| t.0.to_string_lossy().into_owned())
                .unwrap_or_default(),
        )
    }
    fn allowed(&self) -> String {
        "a file of mode 0600, or empty".into()
    }
}

/// Network interface names: a TOML array, or one comma-separated string; at most
/// [`MAX_INTERFACES`], each a valid Linux name, none twice.
pub struct Interfaces;

impl Kind<Vec<String>> for Interfaces {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<Vec<String>, ConfigError> {
        let origin = c.origin(key, &value);
        let names: Vec<String> = match value.kind {
            ValueKind::Array(items) => items
                .into_iter()
                .map(|item| c.string(key, item))
                .collect::<Result<_, _>>()?,
            ValueKind::String(s) => s
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => {
                return Err(c.fail(
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
    fn to_toml(&self, value: &Vec<String>) -> toml::Value {
        toml::Value::Array(value.iter().map(|i| text(i.clone())).collect())
    }
    fn allowed(&self) -> String {
        format!("up to {MAX_INTERFACES} interface names")
    }
}

/// A server name: 1-63 of `A-Z a-z 0-9 . -`, starting with a letter or digit.
pub struct ServerName;

impl Kind<String> for ServerName {
    fn parse(&self, c: &Checker, key: &str, value: Value) -> Result<String, ConfigError> {
        let name = c.string(key, value)?;
        let ok = (1..=63).contains(&name.len())
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'));
        if !ok {
            return Err(key_error(
                key,
                format!("{name:?}: 1-63 of A-Z a-z 0-9 . - starting with a letter or digit"),
                String::new(),
            ));
        }
        Ok(name)
    }
    fn to_toml(&self, value: &String) -> toml::Value {
        text(value.clone())
    }
    fn allowed(&self) -> String {
        "1–63 of A-Z a-z 0-9 . - starting with a letter or digit".into()
    }
}
