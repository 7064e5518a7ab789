//! One file per subcommand.

pub mod completions;
pub mod status;
