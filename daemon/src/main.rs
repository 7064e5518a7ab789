//! The `chatd` binary: parse the command line, load the configuration, run the node, and turn
//! the outcome into an exit status (documented in `chatd --help`).

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use chatd::cli::{Cli, Command};
use chatd::config::Settings;
use chatd::env::Env;
use chatd::error::{EXIT_CONFIG, EXIT_FAILURE};
use chatd::notify::Notifier;
use chatd::reload::Reloader;
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    if cli.command == Some(Command::Man) {
        return match std::io::stdout().write_all(&chatd::cli::man_page()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
            Err(e) => {
                chatd::logging::fatal(&env, &format_args!("cannot write the man page: {e}"));
                ExitCode::from(EXIT_FAILURE)
            }
        };
    }
    let overrides = cli.overrides();
    let settings = match Settings::load(&overrides, &env) {
        Ok(settings) => settings,
        Err(e) => {
            chatd::logging::fatal(&env, &e);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(Command::CheckConfig { quiet }) = cli.command {
        if !quiet {
            let source = match &settings.config_file {
                Some(path) => path.display().to_string(),
                None => "none".to_owned(),
            };
            println!("# chatd effective configuration (config file: {source})");
            print!("{}", settings.to_toml());
        }
        return ExitCode::SUCCESS;
    }

    let log = chatd::logging::init(&settings.log_filter, &env);
    let notifier = Notifier::from_env(&env);
    let reloader = Reloader::new(overrides, env.clone(), settings.clone(), Some(log));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            chatd::logging::fatal(&env, &format_args!("cannot start the async runtime: {e}"));
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = runtime.block_on(chatd::run(settings, reloader, notifier));
    runtime.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            chatd::logging::fatal(&env, &e);
            ExitCode::from(e.exit_code())
        }
    }
}
