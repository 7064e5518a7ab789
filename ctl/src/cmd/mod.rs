//! One file per subcommand.

pub mod chat;
pub mod completions;
pub mod discover;
pub mod edit;
pub mod export;
pub mod files;
pub mod get;
pub mod irc;
pub mod log;
pub mod peers;
pub mod private;
pub mod record;
pub mod ring;
pub mod search;
pub mod send;
pub mod send_file;
pub mod status;
pub mod tail;
pub mod trace;
pub mod users;
pub mod verify;
pub mod voice;
pub mod voice_record;
pub mod web;
