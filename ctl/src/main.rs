//! The `chatctl` binary: parse, run, print one error line and exit with its documented code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = chatctl::cli::Cli::parse();
    match chatctl::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout (e.g. `chatctl status | head -0`) is not worth a message.
        Err(chatctl::Error::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chatctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
