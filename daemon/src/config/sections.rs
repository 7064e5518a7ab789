//! Every configuration key, declared once: one line per key in the struct that holds it (its
//! TOML name, type, default, kind with its allowed range, live-or-restart and, as the doc
//! comment, what it does). To add a key, add a line here (or in `log.rs`); `check-config`,
//! the sample `deploy/chatd.toml`, the table in `docs/operations.md` and SIGHUP's comparison
//! follow (see docs/operations.md, "Adding a configuration key").

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::kinds::{
    Addr, Bool, Days, Filter, Group, Int, Interfaces, Millis, Nick, Number, OptAddr, OptPath, Path,
    Peers, ServerName, TokenFile, Whole,
};
use super::schema::{Tree, section};
use super::{
    ConfigError, DEFAULT_COMMIT_DELAY, DEFAULT_IRC_LISTEN, DEFAULT_IRC_SERVER_NAME, DEFAULT_LISTEN,
    DEFAULT_LOG_FILTER, DEFAULT_WEB_LISTEN, EventLogConfig, PeerAddr, Token, key_error,
};
use crate::nickname::Nickname;
use crate::paths;
use crate::transport::BulkConfig;

/// Accepted range of the `ring.*_ms` timer periods.
pub const RING_MS_RANGE: std::ops::RangeInclusive<u64> = 10..=600_000;

/// The overlay's defaults: the `[ring]` keys default to them (one source for the numbers).
fn overlay() -> chat_overlay::ChordConfig {
    chat_overlay::ChordConfig::default()
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

section! {
    /// The effective configuration: the `[node]` keys, `control.socket`, `log.filter` and
    /// `transport.max_connections` directly, the other sections as structs.
    #[derive(Clone, Debug)]
    pub struct Settings(env) {
        /// UDP address (IP:PORT) for QUIC connections from peers.
        listen @ "node.listen": SocketAddr = DEFAULT_LISTEN, Addr, Restart, flag "--listen";
        /// Peers (`IP:PORT`, `[IPv6]:PORT` or `HOST:PORT`; names are resolved at every attempt) to
        /// join the ring through; empty means this node founds a new ring, unless a peer it
        /// remembers from its last run (the file `peers` in data_dir) answers. Repeat the flag
        /// for several; in the environment, a comma-separated list.
        bootstrap @ "node.bootstrap": Vec<PeerAddr> = Vec::new(), Peers, Restart,
            flag "--bootstrap";
        /// Directory for the node key (node.key, mode 0600) and state. It must belong to the
        /// user chatd runs as. Back it up: node.key is the node's identity.
        data_dir @ "node.data_dir": PathBuf = paths::default_data_dir(env)?, Path, Restart,
            flag "--data-dir", example "/var/lib/chatd",
            default_is "`$STATE_DIRECTORY` (/var/lib/chatd under systemd), else `$XDG_DATA_HOME/chatd`, else `~/.local/share/chatd`";
        /// The nickname wished for this node's user: unique on the network (a taken one gets a
        /// numeric suffix); empty: the Unix login name.
        nickname @ "node.nickname": Option<Nickname> = None, Nick, Restart, flag "--nick";
        /// Unix socket for the gRPC control API (chatctl uses it); created with mode 0660.
        control_socket @ "control.socket": PathBuf = paths::default_control_socket(env), Path,
            Restart, flag "--control", example "/run/chatd/control.sock",
            default_is "`$RUNTIME_DIRECTORY/control.sock`, else `$XDG_RUNTIME_DIR/chatd/control.sock`, else `/tmp/chatd-$UID/control.sock`";
        /// What to log, in tracing-subscriber EnvFilter syntax, e.g. "debug" or
        /// "info,chatd=trace". The environment variable CHATD_LOG overrides it.
        log_filter @ "log.filter": String = DEFAULT_LOG_FILTER.to_owned(), Filter, Live;
        /// Most QUIC connections to other nodes held at once. At the bound, a new outgoing
        /// connection closes the least recently used one, and new incoming ones are refused.
        max_connections @ "transport.max_connections": usize = 256, Int(8..=65_536), Restart;
    }
    nested {
        /// Access to the control API (`control.*` besides `socket`).
        access: Access;
        /// Chat core limits (`chat.*`).
        chat: ChatConfig;
        /// The event log and the statistics line (`log.*` besides `filter`).
        event_log: EventLogConfig;
        /// Ring timer periods, per-origin rate and records (`[ring]`).
        ring: RingSettings;
        /// LAN discovery (`[discovery]`).
        discovery: Discovery;
        /// The web view and metrics (`[web]`).
        web: Web;
        /// The IRC front door (`[irc]`).
        irc: Irc;
        /// Bulk streams' bounds (`transport.bulk_*`).
        bulk: BulkSettings;
        /// Files: the blob store and its limits (`[files]`).
        files: FilesSettings;
        /// Voice messages: transcription and its helper's limits (`[voice]`).
        voice: super::voice::VoiceSettings;
    }
    extra {
        /// The config file that was read, if any.
        config_file: Option<PathBuf> = None;
    }
    check = web_needs_a_token;
}

/// A web view off loopback needs the bearer token.
fn web_needs_a_token(s: &mut Settings, _: &Tree) -> Result<(), ConfigError> {
    match s.web.listen {
        Some(addr) if !addr.ip().is_loopback() && s.access.token.is_none() => Err(key_error(
            "web.listen",
            format!(
                "{addr} is not a loopback address: the web view there needs the bearer \
                 token of control.token_file, which is not set"
            ),
            String::new(),
        )),
        _ => Ok(()),
    }
}

section! {
    /// Who may use the control API, and how fast (`control.*` keys besides `socket`).
    #[derive(Clone, Debug, PartialEq)]
    pub struct Access {
        /// Who may use the socket besides root and chatd's own user: members of this group (a
        /// name or a number; checked with the connecting process's credentials, not only the
        /// file mode). Empty for nobody else.
        group @ "control.group": Option<(String, u32)> = None, Group, Restart;
        /// TCP address (IP:PORT) for remote gRPC clients, e.g. "127.0.0.1:7410"; empty for
        /// none. Clients must send "authorization: Bearer TOKEN"; repeated failures from one
        /// address are rate-limited. There is no TLS: listen on loopback or put a TLS proxy in
        /// front.
        tcp_listen @ "control.tcp_listen": Option<SocketAddr> = None, OptAddr, Restart;
        /// File holding the bearer token (first line, at least 16 characters). It must have
        /// mode 0600 (chatd refuses a file group or others can read). Required when tcp_listen
        /// is set.
        token @ "control.token_file": Option<(PathBuf, Token)> = None, TokenFile, Restart;
        /// Messages per second one client (a Unix user, or a TCP address) may send, sustained
        /// (all clients of a node together are held to ring.origin_rate).
        send_rate @ "control.send_rate": f64 = 5.0, Number(0.001, 1e6), Restart;
        /// Messages one client may send at once.
        send_burst @ "control.send_burst": u32 = 20, Whole(1, 1_000_000), Restart;
    }
    check = tcp_needs_a_token;
}

fn tcp_needs_a_token(a: &mut Access, _: &Tree) -> Result<(), ConfigError> {
    if a.tcp_listen.is_some() && a.token.is_none() {
        return Err(key_error(
            "control.token_file",
            "must be set when control.tcp_listen is (the TCP listener requires a bearer token)",
            String::new(),
        ));
    }
    Ok(())
}

section! {
    /// Limits of the chat core (the `chat.*` keys).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct ChatConfig {
        /// Messages kept in the history (chat.sqlite3 in the data directory); the oldest go
        /// first.
        retention_messages @ "chat.retention_messages": u64 = 100_000, Whole(1, 1 << 40),
            Restart;
        /// Days a message is kept at most (0: no age limit). Older ones are deleted within a
        /// minute from the history and its write-ahead log, their bytes overwritten, and
        /// refused when the ring offers them again.
        retention_age @ "chat.retention_days": Duration = Duration::ZERO,
            Days(0.0, 36_500.0), Restart;
        /// Days an undelivered private message is tried (direct to its recipient's node, else
        /// kept in the recipient's mailbox in the DHT and deposited again) before its sender is
        /// told it expired.
        mailbox_ttl @ "chat.mailbox_ttl_days": Duration = Duration::from_secs(30 * 86_400),
            Days(0.001, 90.0), Restart;
        /// How many messages a subscriber may fall behind before it is told it lagged (and
        /// where to resume); the stream then ends. Memory is bounded by this, whatever the
        /// subscribers do.
        subscriber_queue @ "chat.subscriber_queue": usize = 1024, Whole(1, 1 << 20), Restart;
        /// Open subscriptions (chatctl tail -f, …) at most; more get RESOURCE_EXHAUSTED.
        max_subscribers @ "chat.max_subscribers": usize = 1024, Whole(1, 1 << 20), Restart;
        /// Local messages waiting to be handed to the ring at most; more get
        /// RESOURCE_EXHAUSTED.
        outbound_queue @ "chat.outbound_queue": usize = 1024, Whole(1, 1 << 20), Restart;
        /// Milliseconds messages from the ring may wait before they are committed to the
        /// history, so that one commit writes several (0: commit each one). They are shown at
        /// once, and your own messages are committed before `send` returns. SIGTERM commits
        /// what waits; a crash (kill -9, not a power cut) takes at most this much of the ring's
        /// messages from this node's disk, and its neighbours send them again when it restarts.
        commit_delay @ "chat.commit_delay_ms": Duration = DEFAULT_COMMIT_DELAY,
            Millis(0, 10_000), Restart;
        /// Inactivity in seconds after which this node's user shows as away (0: never); any
        /// send, `chatctl nick` or `chatctl back` brings them back.
        away_after_secs @ "chat.away_after_secs": u64 = 600, Whole(0, 30 * 24 * 3600),
            Restart;
        /// Days a nickname stays reserved after its account stops renewing it (the node renews
        /// it daily, so a name is released this long after its node stops running).
        nick_release_days @ "chat.nick_release_days": u64 = 30, Whole(1, 90), Restart;
    }
}

section! {
    /// The ring protocol's settings (`[ring]`): timer periods in milliseconds, the per-origin
    /// broadcast rate every node enforces, and the DHT records. The defaults are the overlay's
    /// own (`chat_overlay::ChordConfig::default()`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct RingSettings {
        /// Period of stabilize, in milliseconds. The defaults of the ring timers suit real
        /// networks; tests use shorter ones. See docs/protocol.md.
        stabilize_ms @ "ring.stabilize_ms": u64 = ms(overlay().ring.stabilize_interval),
            Int(RING_MS_RANGE), Restart;
        /// Shortest period of fix-fingers, in milliseconds.
        fix_fingers_ms @ "ring.fix_fingers_ms": u64 = ms(overlay().ring.fix_fingers_min),
            Int(RING_MS_RANGE), Restart;
        /// Period of check-predecessor, in milliseconds.
        check_predecessor_ms @ "ring.check_predecessor_ms": u64 =
            ms(overlay().ring.check_predecessor_interval), Int(RING_MS_RANGE), Restart;
        /// How long to wait for an answer before resending a request or giving up on the peer,
        /// in milliseconds.
        rpc_timeout_ms @ "ring.rpc_timeout_ms": u64 = ms(overlay().ring.rpc_timeout),
            Int(RING_MS_RANGE), Restart;
        /// Broadcasts per second accepted from one origin node, checked at every hop. A node
        /// over the rate has its messages dropped and counted (dropped.rate_limited in chatctl
        /// status); a node's own clients together get this much, beyond it `Send` answers
        /// RESOURCE_EXHAUSTED with the wait. Every node of a ring should use the same value.
        origin_rate @ "ring.origin_rate": u32 = overlay().broadcast.rate_per_sec,
            Int(1..=1_000_000), Restart;
        /// Broadcasts accepted from one origin node at once. Every node of a ring should use
        /// the same value.
        origin_burst @ "ring.origin_burst": u32 = overlay().broadcast.rate_burst,
            Int(1..=1_000_000), Restart;
        /// How long a node may hold its answers to a broadcast's parent (acknowledgements,
        /// "done") so that several leave in one datagram, in milliseconds (0 sends each at
        /// once; well under the broadcast's 500 ms ack timeout). Messages themselves are never
        /// held.
        reply_delay_ms @ "ring.reply_delay_ms": u64 = ms(overlay().broadcast.reply_delay),
            Int(0..=100), Restart;
        /// Copies of every DHT record (nicknames, profiles, presence, mailboxes): its primary
        /// holder and the next successors. Every node of a ring should use the same value.
        record_replicas @ "ring.record_replicas": u64 = overlay().records.replicas as u64,
            Int(1..=8), Restart;
        /// MiB of DHT records this node holds for others; beyond it puts are refused
        /// (RESOURCE_EXHAUSTED, "this holder is full").
        record_store_mb @ "ring.record_store_mb": u64 =
            (overlay().records.max_bytes / (1024 * 1024)) as u64, Int(1..=4096), Restart;
        /// Period of the record holders' digest comparison, in milliseconds.
        record_sync_ms @ "ring.record_sync_ms": u64 = ms(overlay().records.sync_interval),
            Int(RING_MS_RANGE), Restart;
    }
}

section! {
    /// Bounds of the bulk streams peers open (`transport.bulk_*`): the byte streams of file
    /// transfers beside the overlay's frames (docs/protocol.md, "Bulk streams").
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct BulkSettings {
        /// Bulk streams one peer may have open to this node at once; more are refused (reset
        /// with code 0x11) and counted as dropped.bulk_refused.
        per_peer @ "transport.bulk_streams_per_peer": usize = BulkConfig::default().per_peer,
            Whole(1, 256), Restart;
        /// Bulk streams all peers together may have open to this node at once; more are
        /// refused like the above.
        total @ "transport.bulk_streams": usize = BulkConfig::default().total,
            Whole(1, 65_536), Restart;
        /// Milliseconds a peer has to send a bulk stream's 4-byte header once the stream is
        /// open; a stream without one is cut (code 0x12, dropped.bulk_slow_header).
        header_deadline @ "transport.bulk_header_ms": Duration =
            BulkConfig::default().header_deadline, Millis(100, 60_000), Restart;
        /// Milliseconds a bulk stream may sit with nothing moving either way before it is cut
        /// (code 0x13, dropped.bulk_idle).
        idle @ "transport.bulk_idle_ms": Duration = BulkConfig::default().idle,
            Millis(1_000, 3_600_000), Restart;
    }
}

impl BulkSettings {
    /// The transport's settings for these keys.
    pub fn transport(&self) -> BulkConfig {
        BulkConfig {
            per_peer: self.per_peer,
            total: self.total,
            header_deadline: self.header_deadline,
            idle: self.idle,
        }
    }
}

section! {
    /// Files (`files.*`): the blob store in `<data_dir>/blobs/` and what it takes
    /// (docs/protocol.md, "Files").
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct FilesSettings {
        /// The largest file in MiB this node stores, uploads or fetches; larger ones are
        /// refused with a clear error.
        max_file_mb @ "files.max_file_mb": u64 = 100, Whole(1, 1_048_576), Restart;
        /// MiB the blob store may use on disk (files' bytes and their verification trees,
        /// complete and being fetched); past it the least recently used unpinned files of
        /// others are evicted. At least files.max_file_mb.
        store_mb @ "files.store_mb": u64 = 2048, Whole(1, 16_777_216), Restart;
        /// Images (PNG, JPEG, GIF, WebP) referenced by public messages, up to this many KiB,
        /// are fetched by every node at once in the background (4 at a time, 64 waiting at
        /// most; 0: never).
        auto_fetch_kb @ "files.auto_fetch_kb": u64 = 1024, Whole(0, 1_048_576), Restart;
        /// The largest private file in MiB whose ciphertext other nodes keep for an offline
        /// recipient (the k nodes after its hash, for the mailbox's lifetime; each keeps at
        /// most 4 such files' worth per sending node and a quarter of files.store_mb in
        /// all). Larger private files are served only while their sender's node is up. The
        /// same limit bounds what this node keeps for others.
        offline_max_mb @ "files.offline_max_mb": u64 = 25, Whole(0, 1_048_576), Restart;
    }
    check = store_holds_a_file;
}

/// The store must hold at least one file of the largest size.
fn store_holds_a_file(s: &mut FilesSettings, _: &Tree) -> Result<(), ConfigError> {
    if s.store_mb < s.max_file_mb {
        return Err(key_error(
            "files.store_mb",
            format!(
                "{} MiB cannot hold one file of files.max_file_mb ({} MiB)",
                s.store_mb, s.max_file_mb
            ),
            String::new(),
        ));
    }
    Ok(())
}

impl FilesSettings {
    /// The blob store's bounds for these keys.
    pub fn store(&self) -> chat_blobs::StoreConfig {
        chat_blobs::StoreConfig {
            max_file_bytes: self.max_file_mb << 20,
            quota_bytes: self.store_mb << 20,
        }
    }
}

section! {
    /// LAN discovery (`discovery.*`).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Discovery {
        /// Find and be found by chatd nodes on the local network with mDNS/DNS-SD
        /// (_chatd._udp.local., UDP port 5353 to 224.0.0.251 and ff02::fb): a node with no
        /// bootstrap joins the nodes it finds instead of founding a ring of its own. Off by
        /// default: a server never multicasts on a network nobody asked it to join. See
        /// docs/operations.md, "Finding the ring".
        mdns @ "discovery.mdns": bool = false, Bool, Restart, flag "--lan";
        /// The network interfaces mDNS runs on, e.g. ["eth0"]; empty for every interface but
        /// loopback.
        interfaces @ "discovery.interfaces": Vec<String> = Vec::new(), Interfaces, Restart;
    }
}

section! {
    /// The web view and `/metrics` (`web.*`).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Web {
        /// The web live view (/), Prometheus metrics (/metrics) and a readiness probe
        /// (/healthz), over HTTP on this address; empty turns them off. On loopback anyone on
        /// this host may read (the public rooms, the user list, the metrics); sending from the
        /// page needs a session, which `chatctl web` prints a link for. Any other address needs
        /// control.token_file: every request but /healthz must then carry a session or
        /// "Authorization: Bearer TOKEN". When the default address is taken (another chatd
        /// on this host) chatd runs without the web view and says so; an address set here that
        /// cannot be bound stops chatd (exit 75 when in use). See docs/operations.md,
        /// "Monitoring".
        listen @ "web.listen": Option<SocketAddr> = Some(DEFAULT_WEB_LISTEN), OptAddr, Restart,
            flag "--web";
    }
    extra {
        /// Whether `web.listen` was given (file, environment or `--web`) rather than
        /// defaulted: a default address that is taken is skipped with a warning, a given one is
        /// an error.
        explicit: bool = false;
    }
    check = web_given;
}

fn web_given(w: &mut Web, tree: &Tree) -> Result<(), ConfigError> {
    w.explicit = tree.given("web.listen");
    Ok(())
}

section! {
    /// The IRC front door (`irc.*`).
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub struct Irc {
        /// The IRC front door: any IRC client (weechat, irssi, HexChat…) pointed here gets the
        /// whole network — rooms as channels, /msg as end-to-end encrypted private messages. A
        /// client logs in as a local account with the password `chatctl irc-password` prints
        /// (PASS or SASL PLAIN), or with the TCP token as its guest (*nick). Empty turns it
        /// off. When the default address is taken chatd runs without it and says so; an
        /// address set here that cannot be bound stops chatd. An address off loopback needs
        /// TLS (irc.tls_cert and irc.tls_key): IRC passwords never cross a network in clear
        /// text. See docs/irc.md.
        listen @ "irc.listen": Option<SocketAddr> = Some(DEFAULT_IRC_LISTEN), OptAddr, Restart;
        /// A PEM certificate chain: with irc.tls_key, the listener speaks TLS only (1.2 and
        /// 1.3; IRC clients: port 6697 by convention, e.g. listen "0.0.0.0:6697"). Both or
        /// neither. Read at start: a file that cannot be read or parsed stops chatd, naming it.
        tls_cert @ "irc.tls_cert": Option<PathBuf> = None, OptPath, Restart,
            example "/etc/chatd/irc-cert.pem";
        /// The PEM private key (PKCS#8, PKCS#1 or SEC1) of irc.tls_cert; keep it readable by
        /// chatd only.
        tls_key @ "irc.tls_key": Option<PathBuf> = None, OptPath, Restart,
            example "/etc/chatd/irc-key.pem";
        /// Admit IRC clients that give no password as guests of this node (else they are
        /// refused, 464): each registers with any free nick (not another IRC client's here, not
        /// a name on the network: 433) and acts as the node's guest account, like the TCP
        /// token's holder — shown *nick to the network, public messages only, no private
        /// messages as any account (guests may write privately to other guests of this node,
        /// node-local and unencrypted), no network nickname claims; sends share
        /// control.send_rate per address. Anyone who can reach irc.listen can then post as the
        /// guest.
        guests @ "irc.guests": bool = false, Bool, Restart;
        /// The server name IRC clients see (the source of numerics, PONG, WHO's server field).
        server_name @ "irc.server_name": String = DEFAULT_IRC_SERVER_NAME.to_owned(),
            ServerName, Restart;
    }
    extra {
        /// Whether `irc.listen` was given rather than defaulted: a default address that is
        /// taken is skipped with a warning, a given one is an error.
        explicit: bool = false;
    }
    check = irc_checks;
}

impl Irc {
    /// The certificate and key files when TLS is on (both are given).
    pub fn tls(&self) -> Option<(&std::path::Path, &std::path::Path)> {
        Some((self.tls_cert.as_deref()?, self.tls_key.as_deref()?))
    }
}

/// The TLS files go together, and an address off loopback needs them.
fn irc_checks(i: &mut Irc, tree: &Tree) -> Result<(), ConfigError> {
    i.explicit = tree.given("irc.listen");
    if i.tls_cert.is_some() != i.tls_key.is_some() {
        return Err(key_error(
            "irc.tls_cert",
            "irc.tls_cert and irc.tls_key go together: give both PEM files, or neither",
            String::new(),
        ));
    }
    match i.listen {
        Some(addr) if !addr.ip().is_loopback() && i.tls().is_none() => Err(key_error(
            "irc.listen",
            format!(
                "{addr} is not a loopback address: IRC passwords must not cross a network \
                 in clear text; set irc.tls_cert and irc.tls_key (TLS), or listen on \
                 loopback and reach it through an SSH tunnel (docs/irc.md)"
            ),
            String::new(),
        )),
        _ => Ok(()),
    }
}
