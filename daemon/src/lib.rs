//! chatd, the decentralised chat daemon, as a library: the binary (`main.rs`) only parses the
//! command line, runs [`app::run`] and maps errors to exit codes.
//!
//! One module per job:
//! - [`cli`]: command-line flags and subcommands;
//! - [`config`]: layered configuration (defaults → file → `CHATD_*` → flags), checked key by key;
//! - [`env`]: a snapshot of the environment, so configuration is testable;
//! - [`paths`]: default directories, and the checks made before trusting them;
//! - [`identity`]: the node's ed25519 key and `NodeId = blake3(public key)`;
//! - [`client`]: who is on the other end of an API connection (services decide by it);
//! - [`clock`]: wall-clock milliseconds since the Unix epoch;
//! - [`nickname`]: what makes a valid nickname;
//! - [`chat`]: the chat core — signed envelopes, clock, history, live fan-out;
//! - [`direct`]: one opaque body to one node, acknowledged (the private messages' transport);
//! - [`eventlog`]: the event log (`events.log`: messages and events with their times, private
//!   messages as metadata only) and the periodic statistics line;
//! - [`node`]: the running node's shared state, built in order from what runs on it;
//! - [`status`]: `GetStatus` assembled once, for the API, `/metrics` and the event log;
//! - [`ops`]: the services' client operations (chat, users, private conversations, the ring
//!   map) as plain methods with one error type: what the gRPC API and the web view both call;
//! - [`transport`]: QUIC (quinn) with identity-bound TLS and CBOR frames;
//! - [`ring`]: the driver running the overlay over the transport;
//! - [`control`]: the gRPC control server on a Unix socket, one thin adapter per service over
//!   [`ops`];
//! - [`web`]: the web live view, `/metrics` and `/healthz` over HTTP (axum), a front door
//!   beside the gRPC API over the same [`ops`];
//! - [`irc`]: the IRC front door (`irc.listen`): IRC clients as clients of this node;
//! - [`metrics`]: the histograms and counters only `/metrics` shows;
//! - [`offload`]: blocking work (history reads, searches, private-message engine calls) on
//!   the blocking pool, bounded per kind, never on an async worker;
//! - [`shutdown`]: the shutdown signal, from SIGINT/SIGTERM to every task;
//! - [`supervise`]: the app's long-lived tasks (one that ends on its own ends the daemon) and
//!   its threads' loops (restarted after a panic, counted);
//! - [`logging`]: `tracing` to the systemd journal or stderr, with a reloadable filter;
//! - [`notify`]: the systemd notification protocol (READY, STATUS, WATCHDOG, STOPPING);
//! - [`reload`]: SIGHUP — re-read the configuration, apply what can change at run time;
//! - [`app`]: the startup sequence and shutdown path;
//! - [`error`]: the top-level error and exit codes.
//!
//! Dependencies between these modules point down (foundations → ring → services → node →
//! API → app), with no circle: `tests/layers.rs` checks it; `docs/architecture.md` lists the
//! layers.
//!
//! The overlay (Chord ring, broadcast, DHT) lives in the sans-IO crate `chat-overlay`
//! (`daemon/overlay/`), which has no tokio and no sockets.

pub mod app;
pub mod chat;
pub mod cli;
pub mod client;
pub mod clock;
pub mod config;
pub mod control;
pub mod direct;
pub mod discovery;
pub mod dm;
pub mod env;
pub mod error;
pub mod eventlog;
pub mod files;
pub mod identity;
pub mod irc;
pub mod logging;
pub mod metrics;
pub mod nickname;
pub mod node;
pub mod notify;
pub mod offload;
pub mod ops;
pub mod overlay;
pub mod paths;
pub mod people;
pub mod records;
pub mod reload;
pub mod shutdown;
pub mod sigctx;
pub mod status;
pub mod supervise;
pub mod transport;
pub mod voice;
pub mod web;

pub use app::run;
pub use error::Error;
