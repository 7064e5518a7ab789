//! The `chatd` binary: parse the command line, load the configuration, run the node, and turn
//! the outcome into an exit status (documented in `chatd --help`).

use std::process::ExitCode;
use std::time::Duration;

use chatd::cli::{Cli, Command};
use chatd::config::Settings;
use chatd::env::Env;
use chatd::error::{EXIT_CONFIG, EXIT_FAILURE};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.overrides(), &Env::from_process()) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("chatd: {e}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if cli.command == Some(Command::CheckConfig) {
        let source = match &settings.config_file {
            Some(path) => path.display().to_string(),
            None => "none".to_owned(),
        };
        println!("# chatd effective configuration (config file: {source})");
        print!("{}", settings.to_toml());
        return ExitCode::SUCCESS;
    }

    chatd::logging::init(&settings.log_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chatd: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(chatd::run(settings));
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatd: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
