//! One file per subcommand.

pub mod status;
