//! End-to-end tests of chat on a single node: chatd and chatctl as processes, plus a gRPC
//! client in the test for exact status codes, slow reading and TCP access.
//! (Multi-node delivery is tested with the QUIC transport.)

mod support;

#[path = "chat/accounts.rs"]
mod accounts;
#[path = "chat/api.rs"]
mod api;
#[path = "chat/client.rs"]
mod client;
#[path = "chat/hostile_guest.rs"]
mod hostile_guest;
#[path = "chat/tail.rs"]
mod tail;
