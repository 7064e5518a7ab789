//! End-to-end tests of the ring over QUIC: real chatd processes on 127.0.N.x addresses form a
//! Chord ring, leave it gracefully, crash, rejoin, and shrug off hostile input; chat messages
//! sent on any node reach every node exactly once, and a send answered OK is really sent; DHT
//! records survive killed holders and restarts.
//!
//! Every wait polls a condition (through `chatctl … --json`) until a deadline; nothing sleeps
//! and hopes. Ring timers are shortened through the `[ring]` config section.

mod support;

#[path = "ring/backfill.rs"]
mod backfill;
#[path = "ring/chat.rs"]
mod chat;
// The gRPC client of the chat tests (this binary uses only its Unix-socket part).
#[allow(dead_code)]
#[path = "chat/client.rs"]
mod client;
#[path = "ring/cluster.rs"]
mod cluster;
#[path = "ring/dm_disk_full.rs"]
mod dm_disk_full;
#[path = "ring/edits.rs"]
mod edits;
#[path = "ring/eventlog.rs"]
mod eventlog;
#[path = "ring/file_bad_input.rs"]
mod file_bad_input;
#[path = "ring/file_holders.rs"]
mod file_holders;
#[path = "ring/file_lifecycle.rs"]
mod file_lifecycle;
#[path = "ring/file_messages.rs"]
mod file_messages;
#[path = "ring/file_stream.rs"]
mod file_stream;
#[path = "ring/file_swarm.rs"]
mod file_swarm;
#[path = "ring/files.rs"]
mod files;
#[path = "ring/hostile.rs"]
mod hostile;
#[path = "ring/hostile_claims.rs"]
mod hostile_claims;
#[path = "ring/hostile_junk.rs"]
mod hostile_junk;
#[path = "ring/hostile_names.rs"]
mod hostile_names;
#[path = "ring/hostile_pool.rs"]
mod hostile_pool;
#[path = "ring/irc.rs"]
mod irc;
#[path = "ring/irc_guests.rs"]
mod irc_guests;
#[path = "ring/lan.rs"]
mod lan;
#[path = "ring/lost_history.rs"]
mod lost_history;
#[path = "ring/map.rs"]
mod map;
#[path = "ring/membership.rs"]
mod membership;
#[path = "ring/netns.rs"]
#[allow(dead_code)] // `cut` is the timing suite's (tests/e2e/timing.rs)
mod netns;
#[path = "ring/people.rs"]
mod people;
#[path = "ring/private.rs"]
mod private;
#[path = "ring/private_files.rs"]
mod private_files;
#[path = "ring/records.rs"]
mod records;
#[path = "ring/rejoin.rs"]
mod rejoin;
#[path = "ring/revive.rs"]
mod revive;
#[path = "ring/send.rs"]
mod send;
#[path = "ring/trace.rs"]
mod trace;
#[path = "ring/tui.rs"]
mod tui;
#[path = "ring/tui_files.rs"]
mod tui_files;
#[path = "ring/voice.rs"]
mod voice;
#[path = "ring/voice_private.rs"]
mod voice_private;
#[path = "ring/web.rs"]
mod web;
