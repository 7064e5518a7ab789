//! LAN discovery with mDNS/DNS-SD (`--lan`, `discovery.mdns`): this node advertises
//! `_chatd._udp.local.` with its QUIC port and its NodeId (TXT `id=`), and browses for the
//! others. What it sees feeds the first contact (`overlay::bootstrap`, so a node with no bootstrap
//! joins the nodes on its LAN instead of founding a ring of its own) and, once in a ring, the
//! overlay's `Input::Discovered` hints (so rings founded apart on one LAN merge); `chatctl
//! discover` lists it.
//!
//! An announcement is only a hint, like a remembered address: the NodeId a peer's certificate
//! proves on contact is the one that counts, so a spoofed `id=` is refused when dialled.
//! Announcements that do not parse (no or bad `id=`, port 0, no usable address) are ignored and
//! counted; the table holds at most [`MAX_SEEN`] peers (the one seen longest ago makes room),
//! and at most [`EVENTS_PER_SEC`] announcements a second are looked at (the rest are counted as
//! dropped), so a flood of announcements costs bounded memory and work.
//!
//! mdns-sd runs its own thread; this module reads its events on another (`chatd-mdns`) and
//! never blocks the runtime.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use chat_overlay::NodeId;
use mdns_sd::{IfKind, ServiceDaemon, ServiceEvent, ServiceInfo};
use tokio::sync::watch;
use tracing::{debug, info, warn};

/// The DNS-SD service type.
pub const SERVICE: &str = "_chatd._udp.local.";
/// Peers remembered from announcements at most.
pub const MAX_SEEN: usize = 256;
/// Addresses kept per peer at most.
pub const MAX_ADDRS: usize = 4;
/// Announcements looked at per second at most (sustained; twice that at once).
pub const EVENTS_PER_SEC: u32 = 50;
/// The version of the TXT record's layout (`v=`).
const TXT_VERSION: &str = "1";

/// A peer seen on the LAN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// The NodeId it announced (a claim until its certificate proves it).
    pub id: NodeId,
    /// Where it said it listens.
    pub addrs: Vec<SocketAddr>,
    /// Its DNS-SD instance name.
    pub instance: String,
    /// When it was first and last announced (Unix ms).
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

/// Why an announcement was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Garbage {
    #[error("no id= in the TXT record")]
    NoId,
    #[error("id= is not a node id")]
    BadId,
    #[error("port 0")]
    NoPort,
    #[error("no usable address")]
    NoAddress,
}

/// LAN discovery failed to start.
#[derive(Debug, thiserror::Error)]
pub enum LanError {
    #[error("mDNS: {0}")]
    Mdns(#[from] mdns_sd::Error),
    #[error("mDNS: cannot start the event thread: {0}")]
    Thread(std::io::Error),
}

/// What discovery has seen and counted.
#[derive(Debug, Default)]
struct State {
    seen: BTreeMap<NodeId, Seen>,
    /// Announcements ignored because they did not parse.
    garbage: u64,
    /// Announcements dropped by the rate bound or evicted from a full table.
    dropped: u64,
    tokens: f64,
    refilled: Option<Instant>,
}

impl State {
    /// Takes one token of the announcement rate.
    fn admit(&mut self, now: Instant) -> bool {
        let burst = f64::from(EVENTS_PER_SEC * 2);
        let elapsed = self.refilled.map_or(burst, |t| {
            now.duration_since(t).as_secs_f64() * f64::from(EVENTS_PER_SEC)
        });
        self.tokens = (self.tokens + elapsed).min(burst);
        self.refilled = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.dropped += 1;
            false
        }
    }

    fn insert(&mut self, mut seen: Seen) -> bool {
        if let Some(old) = self.seen.get(&seen.id) {
            seen.first_seen_ms = old.first_seen_ms;
            let changed = old.addrs != seen.addrs;
            self.seen.insert(seen.id, seen);
            return changed;
        }
        if self.seen.len() >= MAX_SEEN {
            let oldest = self
                .seen
                .values()
                .min_by_key(|s| s.last_seen_ms)
                .map(|s| s.id);
            if let Some(id) = oldest {
                self.seen.remove(&id);
                self.dropped += 1;
            }
        }
        self.seen.insert(seen.id, seen);
        true
    }
}

/// LAN discovery, running. Dropping it does not stop it: call [`Lan::shutdown`].
pub struct Lan {
    daemon: ServiceDaemon,
    state: Arc<Mutex<State>>,
    /// Bumped whenever a new peer (or a new address) is seen.
    changed: watch::Receiver<u64>,
}

impl std::fmt::Debug for Lan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lan").finish_non_exhaustive()
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The peer an announcement describes: its `id=`, its port and the addresses this node can
/// dial (`v4_only` when our QUIC socket is IPv4). Loopback, unspecified, multicast and
/// link-local IPv6 addresses (which need a scope) are skipped.
pub fn parse(
    id: Option<&str>,
    port: u16,
    addrs: impl IntoIterator<Item = IpAddr>,
    v4_only: bool,
) -> Result<(NodeId, Vec<SocketAddr>), Garbage> {
    let id = NodeId::from_str(id.ok_or(Garbage::NoId)?.trim()).map_err(|_| Garbage::BadId)?;
    if port == 0 {
        return Err(Garbage::NoPort);
    }
    let mut out: Vec<SocketAddr> = addrs
        .into_iter()
        .filter(|ip| {
            !(ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (v4_only && ip.is_ipv6())
                || matches!(ip, IpAddr::V6(v6) if v6.is_unicast_link_local()))
        })
        .map(|ip| SocketAddr::new(ip, port))
        .collect();
    out.sort();
    out.dedup();
    out.truncate(MAX_ADDRS);
    if out.is_empty() {
        return Err(Garbage::NoAddress);
    }
    Ok((id, out))
}

impl Lan {
    /// Advertises this node (`me`, QUIC at `listen`) on `interfaces` (empty: every interface
    /// but loopback) and starts browsing.
    pub fn start(
        me: NodeId,
        listen: SocketAddr,
        interfaces: &[String],
    ) -> Result<Arc<Lan>, LanError> {
        let daemon = ServiceDaemon::new()?;
        if interfaces.is_empty() {
            daemon.disable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])?;
        } else {
            daemon.disable_interface(IfKind::All)?;
            let names: Vec<IfKind> = interfaces.iter().map(IfKind::from).collect();
            daemon.enable_interface(names)?;
        }
        let hex = me.to_hex();
        let instance = format!("chatd-{}", &hex[..16]);
        let host = format!("{instance}.local.");
        let ip = if listen.ip().is_unspecified() {
            String::new()
        } else {
            listen.ip().to_string()
        };
        let props = [("id", hex.as_str()), ("v", TXT_VERSION)];
        let mut info = ServiceInfo::new(SERVICE, &instance, &host, ip, listen.port(), &props[..])?;
        if listen.ip().is_unspecified() {
            info = info.enable_addr_auto();
        }
        daemon.register(info)?;
        let events = daemon.browse(SERVICE)?;
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, changed) = watch::channel(0u64);
        let v4_only = listen.is_ipv4();
        let shared = state.clone();
        let span = tracing::Span::current();
        std::thread::Builder::new()
            .name("chatd-mdns".into())
            .spawn(move || {
                let _enter = span.enter();
                // Ends when the daemon shuts down and closes the channel.
                crate::supervise::keep_running("the mDNS browser", || {
                    while let Ok(event) = events.recv() {
                        handle(event, me, v4_only, &shared, &tx);
                    }
                });
                debug!("mDNS browsing stopped");
            })
            .map_err(LanError::Thread)?;
        info!(instance, service = SERVICE, "LAN discovery on (mDNS)");
        Ok(Arc::new(Lan {
            daemon,
            state,
            changed,
        }))
    }

    /// The peers seen, most recently announced first.
    pub fn seen(&self) -> Vec<Seen> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<Seen> = state.seen.values().cloned().collect();
        out.sort_by_key(|s| std::cmp::Reverse(s.last_seen_ms));
        out
    }

    /// (announcements ignored as garbage, announcements dropped by the bounds).
    pub fn counters(&self) -> (u64, u64) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (state.garbage, state.dropped)
    }

    /// A receiver that changes whenever a new peer or address is seen.
    pub fn watch(&self) -> watch::Receiver<u64> {
        self.changed.clone()
    }

    /// Withdraws the announcement (goodbye packets) and stops the mDNS thread.
    pub fn shutdown(&self) {
        if let Err(e) = self.daemon.shutdown() {
            debug!(error = %e, "mDNS shutdown");
        }
    }
}

fn handle(
    event: ServiceEvent,
    me: NodeId,
    v4_only: bool,
    state: &Mutex<State>,
    changed: &watch::Sender<u64>,
) {
    match event {
        ServiceEvent::ServiceResolved(info) => {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            if !st.admit(Instant::now()) {
                return;
            }
            let addrs = info.get_addresses().iter().map(|a| a.to_ip_addr());
            let id = info.get_property_val_str("id");
            match parse(id, info.get_port(), addrs, v4_only) {
                Ok((id, _)) if id == me => {}
                Ok((id, addrs)) => {
                    let now = unix_ms();
                    let seen = Seen {
                        id,
                        addrs,
                        instance: info.fullname.clone(),
                        first_seen_ms: now,
                        last_seen_ms: now,
                    };
                    if st.insert(seen) {
                        info!(peer = %id.short(), instance = %info.fullname, "seen on the LAN");
                        changed.send_modify(|n| *n += 1);
                    }
                }
                Err(why) => {
                    st.garbage += 1;
                    warn!(instance = %info.fullname, problem = %why, "ignored an mDNS announcement");
                }
            }
        }
        ServiceEvent::ServiceRemoved(_, fullname) => {
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            let gone: Vec<NodeId> = st
                .seen
                .values()
                .filter(|s| s.instance == fullname)
                .map(|s| s.id)
                .collect();
            for id in gone {
                st.seen.remove(&id);
                debug!(peer = %id.short(), "left the LAN (mDNS goodbye or expiry)");
            }
        }
        _ => {}
    }
}

impl crate::overlay::LanPeers for Lan {
    fn peer_addrs(&self) -> Vec<Vec<SocketAddr>> {
        self.seen().into_iter().map(|s| s.addrs).collect()
    }

    fn watch(&self) -> watch::Receiver<u64> {
        Lan::watch(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::time::Duration;

    fn v4(a: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, a))
    }

    #[test]
    fn announcements_parse_or_are_named_garbage() {
        let id = NodeId::from_high_u64(42).to_hex();
        let (got, addrs) = parse(Some(&id), 7400, [v4(2), v4(1), v4(2)], true).expect("valid");
        assert_eq!(got, NodeId::from_high_u64(42));
        assert_eq!(
            addrs,
            vec![
                "10.0.0.1:7400".parse().unwrap(),
                "10.0.0.2:7400".parse().unwrap()
            ]
        );
        assert_eq!(parse(None, 7400, [v4(1)], true), Err(Garbage::NoId));
        assert_eq!(parse(Some("zz"), 7400, [v4(1)], true), Err(Garbage::BadId));
        assert_eq!(parse(Some(&id), 0, [v4(1)], true), Err(Garbage::NoPort));
        let unusable = [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V4(Ipv4Addr::new(224, 0, 0, 251)),
            IpAddr::V6("fe80::1".parse::<Ipv6Addr>().unwrap()),
            IpAddr::V6("2001:db8::1".parse::<Ipv6Addr>().unwrap()),
        ];
        assert_eq!(
            parse(Some(&id), 7400, unusable, true),
            Err(Garbage::NoAddress)
        );
        let (_, v6) = parse(Some(&id), 7400, unusable, false).expect("a global IPv6 address");
        assert_eq!(v6, vec!["[2001:db8::1]:7400".parse().unwrap()]);
        let many = (1..=20).map(v4);
        assert_eq!(parse(Some(&id), 1, many, true).unwrap().1.len(), MAX_ADDRS);
    }

    fn seen(n: u64, at: u64) -> Seen {
        Seen {
            id: NodeId::from_high_u64(n),
            addrs: vec![SocketAddr::new(v4(1), 7400)],
            instance: format!("chatd-{n}"),
            first_seen_ms: at,
            last_seen_ms: at,
        }
    }

    #[test]
    fn a_flood_of_announcements_is_bounded() {
        let mut st = State::default();
        let t = Instant::now();
        let admitted = (0..1000).filter(|_| st.admit(t)).count();
        assert_eq!(admitted, (EVENTS_PER_SEC * 2) as usize);
        assert!(st.admit(t + Duration::from_secs(1)), "the rate refills");
        for n in 0..(MAX_SEEN as u64 + 10) {
            st.insert(seen(n + 1, n));
        }
        assert_eq!(st.seen.len(), MAX_SEEN);
        // The ones seen longest ago made room.
        assert!(!st.seen.contains_key(&NodeId::from_high_u64(1)));
        assert!(
            st.seen
                .contains_key(&NodeId::from_high_u64(MAX_SEEN as u64 + 10))
        );
        // A repeat keeps when it was first seen and reports no change.
        let again = seen(MAX_SEEN as u64 + 10, 99_999);
        assert!(!st.insert(again));
        let kept = &st.seen[&NodeId::from_high_u64(MAX_SEEN as u64 + 10)];
        assert_eq!(
            (kept.first_seen_ms, kept.last_seen_ms),
            (MAX_SEEN as u64 + 9, 99_999)
        );
    }
}
