//! Every configuration key in one list: its name, what it does, and whether a SIGHUP reload
//! applies it to the running node. `check-config`, the sample `deploy/chatd.toml`, the table in
//! `docs/operations.md` and the reloader are all checked against (or derived from) this list,
//! so a key cannot be added in one place and forgotten in another.

/// One key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// `section.name`.
    pub name: &'static str,
    /// Whether SIGHUP applies a new value without a restart.
    pub live: bool,
    /// One line on what it does.
    pub doc: &'static str,
}

const fn key(name: &'static str, doc: &'static str) -> Key {
    Key {
        name,
        live: false,
        doc,
    }
}

/// Every key chatd understands, in the order `check-config` prints them.
pub const KEYS: &[Key] = &[
    key(
        "node.listen",
        "UDP address (IP:PORT) for QUIC connections from peers",
    ),
    key(
        "node.bootstrap",
        "peers to join the ring through; empty founds a new ring",
    ),
    key("node.data_dir", "directory of the node key and the history"),
    key(
        "node.nickname",
        "the nickname wished for this node's user (unique on the network: a taken one gets a numeric suffix); empty: the Unix login name",
    ),
    key("control.socket", "Unix socket of the gRPC control API"),
    key(
        "control.group",
        "a group whose members may use the control socket",
    ),
    key(
        "control.tcp_listen",
        "TCP address for remote gRPC clients (bearer token)",
    ),
    key(
        "control.token_file",
        "file holding the TCP listener's bearer token",
    ),
    key(
        "control.send_rate",
        "messages per second one client may send",
    ),
    key("control.send_burst", "messages one client may send at once"),
    key("chat.retention_messages", "messages kept in the history"),
    key(
        "chat.retention_days",
        "days a message is kept at most (0: no age limit)",
    ),
    key(
        "chat.mailbox_ttl_days",
        "days an undelivered private message is tried before it expires",
    ),
    key(
        "chat.subscriber_queue",
        "how far a subscriber may fall behind",
    ),
    key("chat.max_subscribers", "open subscriptions at most"),
    key(
        "chat.outbound_queue",
        "sends waiting for the ring driver at once",
    ),
    key(
        "chat.commit_delay_ms",
        "how long messages from the ring may wait to be committed",
    ),
    key(
        "chat.away_after_secs",
        "inactivity after which the node's user shows as away (0: never)",
    ),
    key(
        "chat.nick_release_days",
        "how long a nickname stays reserved after its account stops renewing it",
    ),
    Key {
        name: "log.filter",
        live: true,
        doc: "what is logged (tracing EnvFilter syntax)",
    },
    key(
        "log.events",
        "keep the event log (messages and events with their times; private messages as sender, recipient and time only) in the data directory",
    ),
    key(
        "log.events_max_bytes",
        "size at which events.log is rotated",
    ),
    key(
        "log.events_files",
        "event log files kept, events.log included",
    ),
    key(
        "log.stats_interval_secs",
        "period of the one-line statistics summary in the log and the event log (0: none)",
    ),
    key("transport.max_connections", "QUIC connections held at once"),
    key("ring.stabilize_ms", "period of stabilize"),
    key("ring.fix_fingers_ms", "shortest period of fix-fingers"),
    key("ring.check_predecessor_ms", "period of check-predecessor"),
    key(
        "ring.rpc_timeout_ms",
        "wait for an answer before resending or giving up",
    ),
    key(
        "ring.origin_rate",
        "broadcasts per second accepted from one origin, at every hop",
    ),
    key(
        "ring.origin_burst",
        "broadcasts accepted from one origin at once",
    ),
    key(
        "ring.reply_delay_ms",
        "how long answers to a broadcast's parent may be held",
    ),
    key("ring.record_replicas", "copies of every DHT record"),
    key(
        "ring.record_store_mb",
        "MiB of DHT records this node holds for others",
    ),
    key(
        "ring.record_sync_ms",
        "period of the record holders' digest comparison",
    ),
    key(
        "discovery.mdns",
        "find and be found by peers on the LAN (mDNS); off by default",
    ),
    key(
        "discovery.interfaces",
        "interfaces for mDNS; empty for all but loopback",
    ),
    key(
        "web.listen",
        "HTTP address of the web view and /metrics; empty turns them off",
    ),
    key(
        "irc.listen",
        "TCP address of the IRC front door; empty turns it off; off loopback it needs TLS",
    ),
    key(
        "irc.tls_cert",
        "PEM certificate chain of the IRC front door; with irc.tls_key it speaks TLS only",
    ),
    key("irc.tls_key", "PEM private key of irc.tls_cert"),
    key(
        "irc.guests",
        "admit IRC clients without a password as guests of this node (*nick); default false",
    ),
    key(
        "irc.server_name",
        "the server name IRC clients see (numerics, PONG, WHO); default chatd",
    ),
];

/// The key named `name`, if chatd has one.
pub fn find(name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.name == name)
}
