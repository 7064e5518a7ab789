//! One file per subcommand.

pub mod send;
pub mod status;
pub mod tail;
