//! The services' client operations: what a client may ask of the chat, people and
//! private-conversation services and of the ring, as plain Rust methods with one error type
//! ([`ApiError`]: a kind and the message the client sees). The front doors — the gRPC API
//! (`control`) and the web view (`web`) — are peers over these: each takes its caller's
//! identity ([`crate::client::ClientInfo`]) and request, calls the operation, and maps the
//! error to its own codes in one place; neither calls the other's handlers.
//!
//! A node-level module, beside `status` (which the front doors read the node's status
//! through): it uses the node and the services, and names no front door's types — only the
//! `chat.v1` messages it fills.
//!
//! - [`chat`]: send, edit, delete, subscribe, history, search, rooms, trace ([`ChatOps`],
//!   with the per-client send limit every front door shares);
//! - [`users`]: the user list, user events, nickname and presence ([`UserOps`]);
//! - [`private`]: private messages, groups, blocks, verification ([`PrivateOps`]);
//! - [`ring`]: the ring map; [`ring_data`]: its list of known nodes;
//! - `recording`: the voice runner, the helper's conversion and the Ogg/Opus file's name
//!   that a room's and a private voice message share;
//! - [`access`]: the failed-login limit the gRPC API's TCP gate and the IRC bridge share;
//! - [`fronts`]: what one front door asks of another ([`WebFront`], [`IrcFront`]);
//! - [`error`]: [`ApiError`] and how the services' errors become one.

pub mod access;
pub mod chat;
pub mod error;
pub mod files;
pub mod fronts;
pub mod private;
mod recording;
pub mod ring;
pub mod ring_data;
pub mod users;

pub use chat::ChatOps;
pub use error::ApiError;
pub use files::FileOps;
pub use fronts::{IrcFront, WebFront};
pub use private::PrivateOps;
pub use users::UserOps;
