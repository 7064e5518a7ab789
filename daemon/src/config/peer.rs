//! A peer address as an operator writes it: `IP:PORT`, `[IPv6]:PORT`, or `HOST:PORT` with a
//! DNS name, which the bootstrap resolves again at each attempt (`ring/bootstrap.rs`).

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

/// A bootstrap address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerAddr {
    /// An IP address and port.
    Ip(SocketAddr),
    /// A DNS name and port.
    Name {
        /// The host name (RFC 1123: labels of letters, digits and hyphens).
        host: String,
        /// The UDP port.
        port: u16,
    },
}

/// Why an address does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid address {0:?} (expected IP:PORT, [IPv6]:PORT or HOST:PORT)")]
pub struct BadPeerAddr(pub String);

/// Whether `host` is a valid DNS name: 1–253 characters, dot-separated labels of 1–63
/// letters, digits and hyphens, none starting or ending with a hyphen, not all digits.
fn valid_host(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        })
        && !host
            .split('.')
            .all(|l| l.bytes().all(|c| c.is_ascii_digit()))
}

impl FromStr for PeerAddr {
    type Err = BadPeerAddr;

    fn from_str(s: &str) -> Result<PeerAddr, BadPeerAddr> {
        let s = s.trim();
        if let Ok(a) = s.parse::<SocketAddr>() {
            return Ok(PeerAddr::Ip(a));
        }
        let bad = || BadPeerAddr(s.to_owned());
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if port == 0 || !valid_host(host) {
            return Err(bad());
        }
        Ok(PeerAddr::Name {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Ip(a) => write!(f, "{a}"),
            PeerAddr::Name { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

impl From<SocketAddr> for PeerAddr {
    fn from(a: SocketAddr) -> PeerAddr {
        PeerAddr::Ip(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ips_names_and_ipv6_parse_and_garbage_does_not() {
        assert_eq!(
            "10.0.0.1:7400".parse(),
            Ok(PeerAddr::Ip("10.0.0.1:7400".parse().expect("addr")))
        );
        assert_eq!(
            "[::1]:7401".parse(),
            Ok(PeerAddr::Ip("[::1]:7401".parse().expect("addr")))
        );
        assert_eq!(
            "Chat.Example.org:7400".parse(),
            Ok(PeerAddr::Name {
                host: "chat.example.org".into(),
                port: 7400
            })
        );
        assert_eq!(
            "localhost:1".parse::<PeerAddr>().map(|a| a.to_string()),
            Ok("localhost:1".into())
        );
        for bad in [
            "",
            "host",
            "host:",
            "host:0",
            "host:70000",
            ":7400",
            "-bad.example:1",
            "a..b:1",
            "under_score:1",
            "1.2.3:7400",
            "::1:7400",
            "host name:1",
        ] {
            assert!(bad.parse::<PeerAddr>().is_err(), "{bad:?} parsed");
        }
        assert!(
            format!("{}.x:1", "a".repeat(64))
                .parse::<PeerAddr>()
                .is_err()
        );
    }
}
