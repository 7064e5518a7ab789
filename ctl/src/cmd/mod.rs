//! One file per subcommand.

pub mod peers;
pub mod ring;
pub mod status;
