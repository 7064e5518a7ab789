//! chatctl, the command-line client of chatd's control API.
//!
//! - [`cli`]: flags and subcommands (exit codes are listed in `chatctl --help`);
//! - [`client`]: gRPC over chatd's Unix socket, or TCP with the bearer token;
//! - [`cmd`]: one file per subcommand;
//! - [`output`]: printing for people and `--json`;
//! - [`tui`]: `chatctl chat`, the interactive terminal chat.

pub mod cli;
pub mod client;
pub mod cmd;
pub mod output;
pub mod time;
pub mod tui;

use client::ClientError;

/// Exit codes, as documented in `chatctl --help`.
pub mod exit {
    /// Any other error.
    pub const FAILURE: u8 = 1;
    /// chatd is not reachable at the socket.
    pub const UNREACHABLE: u8 = 3;
    /// chatd answered with an error.
    pub const REMOTE: u8 = 4;
}

/// Why a chatctl command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Talking to chatd failed.
    #[error(transparent)]
    Client(ClientError),
    /// Writing the output failed (e.g. a closed pipe).
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
    /// Reading standard input failed.
    #[error("cannot read standard input: {0}")]
    Input(std::io::Error),
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    /// An argument is not what the command takes (exit status 2, like clap's own errors).
    #[error("{0}")]
    Usage(String),
    /// Recording a voice message failed: no recorder, no input device (exit status 1).
    #[error("cannot record: {0}")]
    Record(String),
}

impl Error {
    /// The exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Client(ClientError::Unreachable(_) | ClientError::PermissionDenied(_)) => {
                exit::UNREACHABLE
            }
            Error::Client(ClientError::Remote(_)) => exit::REMOTE,
            Error::Usage(_) => 2,
            _ => exit::FAILURE,
        }
    }
}

/// Runs the parsed command line.
pub fn run(cli: cli::Cli) -> Result<(), Error> {
    // Commands that need no daemon.
    match cli.command {
        cli::Command::Completions { shell } => {
            return cmd::completions::print(&cmd::completions::script(shell));
        }
        cli::Command::Man => return cmd::completions::print(&cmd::completions::man_page()),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let socket = cli.target().map_err(Error::Usage)?;
    let printer = output::Printer::new(cli.json);
    runtime.block_on(async {
        match cli.command {
            cli::Command::Status => cmd::status::run(&socket, printer).await,
            cli::Command::Peers => cmd::peers::run(&socket, printer).await,
            cli::Command::Ring => cmd::ring::run(&socket, printer).await,
            cli::Command::Discover => cmd::discover::run(&socket, printer).await,
            cli::Command::Web => cmd::web::run(&socket, printer).await,
            cli::Command::IrcPassword => cmd::irc::run(&socket, printer).await,
            cli::Command::Chat { room } => cmd::chat::run(&socket, room).await,
            cli::Command::Send(args) => cmd::send::run(&socket, printer, args).await,
            cli::Command::Get(args) => cmd::get::run(&socket, printer, args).await,
            cli::Command::Files(args) => cmd::files::run(&socket, printer, args).await,
            cli::Command::Voice(args) => cmd::voice::send(&socket, printer, args).await,
            cli::Command::Transcribe { id } => cmd::voice::transcribe(&socket, printer, &id).await,
            cli::Command::Dm {
                nick,
                text,
                accept_new_key,
                file,
                voice,
            } => {
                let to = if accept_new_key {
                    cmd::private::To::NickNewKey(nick)
                } else {
                    cmd::private::To::Nick(nick)
                };
                match (file, voice) {
                    (_, Some(path)) => cmd::voice::private(&socket, printer, to, &path).await,
                    (Some(path), None) => {
                        let caption = text.join(" ");
                        cmd::send_file::private(&socket, printer, to, &path, caption, false).await
                    }
                    (None, None) => cmd::private::dm(&socket, printer, to, text).await,
                }
            }
            cli::Command::Verify { nick, confirm } => {
                cmd::verify::run(&socket, printer, nick, confirm).await
            }
            cli::Command::Dms { with, lines } => {
                cmd::private::history(&socket, printer, with.unwrap_or_default(), lines).await
            }
            cli::Command::Group(g) => cmd::private::group(&socket, printer, g).await,
            cli::Command::Block { nick } => cmd::private::block(&socket, printer, nick, true).await,
            cli::Command::Unblock { nick } => {
                cmd::private::block(&socket, printer, nick, false).await
            }
            cli::Command::Blocks => cmd::private::blocks(&socket, printer).await,
            cli::Command::Edit { id, text } => {
                cmd::edit::run(&socket, printer, id, Some(text.join(" "))).await
            }
            cli::Command::Delete { id } => cmd::edit::run(&socket, printer, id, None).await,
            cli::Command::Trace { id } => cmd::trace::run(&socket, printer, id).await,
            cli::Command::Search(args) => cmd::search::run(&socket, printer, args).await,
            cli::Command::Export(args) => cmd::export::run(&socket, args).await,
            cli::Command::Tail(args) => cmd::tail::run(&socket, printer, args).await,
            cli::Command::Log(args) => cmd::log::run(&socket, printer, args).await,
            cli::Command::Record(args) => cmd::record::run(&socket, printer, args).await,
            cli::Command::Users => cmd::users::run(&socket, printer).await,
            cli::Command::Nick { name } => cmd::users::nick(&socket, printer, name).await,
            cli::Command::Away { message } => {
                cmd::users::presence(&socket, printer, true, message.join(" ")).await
            }
            cli::Command::Back => {
                cmd::users::presence(&socket, printer, false, String::new()).await
            }
            cli::Command::Completions { .. } | cli::Command::Man => Ok(()),
        }
    })
}
