//! Command-line interface of `chatctl`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub(crate) const AFTER_HELP: &str = "\
The default socket is chatd's default: $RUNTIME_DIRECTORY/control.sock, else
$XDG_RUNTIME_DIR/chatd/control.sock, else /tmp/chatd-$UID/control.sock.
chatd run by its systemd unit serves /run/chatd/control.sock: pass --socket
or set CHATCTL_SOCKET=/run/chatd/control.sock (members of group chatd may use it).

Exit status:
  0  success
  1  any other error
  2  invalid command line
  3  cannot reach chatd (not running, wrong --socket, or no permission)
  4  chatd answered with an error (e.g. invalid argument, rate limited)

A chatd elsewhere: --remote HOST:PORT --token-file FILE (its control.tcp_listen and
control.token_file); you are then that node's guest, shown as *nick.

Set NO_COLOR to turn off colours (they are only used on a terminal).";

/// chatctl: talk to a running chatd.
#[derive(Debug, Parser)]
#[command(name = "chatctl", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// chatd's control socket.
    #[arg(long, global = true, env = "CHATCTL_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// A chatd reached over TCP (its control.tcp_listen) instead of the socket; needs
    /// --token-file. You are then the token's guest on that node (shown as *nick).
    #[arg(
        long,
        global = true,
        env = "CHATCTL_REMOTE",
        value_name = "HOST:PORT",
        conflicts_with = "socket"
    )]
    pub remote: Option<String>,

    /// The file holding the bearer token for --remote (its first line; keep it mode 0600).
    #[arg(long, global = true, env = "CHATCTL_TOKEN_FILE", value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Print machine-readable JSON (field names as in the chat.v1 protobuf messages).
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands; each lives in its own file under `cmd/`.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Show the node's id, nickname, address, version, uptime, ring neighbours and counters.
    Status,
    /// List the peers chatd holds a connection to (NodeId, address, round-trip time).
    Peers,
    /// Show the node's ring state: predecessor, successor list and fingers.
    Ring,
    /// List the peers seen on the LAN by chatd's mDNS discovery (`chatd --lan`).
    Discover,
    /// Print a link that opens chatd's web view (web.listen) able to send as you.
    Web,
    /// Print the password an IRC client logs in to your account with (PASS or SASL PLAIN) on
    /// chatd's IRC front door (irc.listen), and its address.
    IrcPassword,
    /// Chat in this terminal: rooms, private conversations (a window each), the timeline and
    /// the people online, with commands (/join, /msg, @nick, /edit, /delete, /block, /nick,
    /// /away, /back, /me, /users, /search, /help, /quit); Alt-U or F2 picks a user to write to.
    Chat {
        /// The room to show first.
        #[arg(long, short = 'r', value_name = "ROOM", default_value = "lobby")]
        room: String,
    },
    /// Send a message (no TEXT: one message per line of standard input). A text starting
    /// with `@NICK ` goes privately to NICK (unless --room is given).
    Send(SendArgs),
    /// Send an end-to-end encrypted private message (no TEXT: one per line of standard
    /// input); it reaches NICK even if they are offline now.
    Dm {
        /// Send even though NICK now stands for another key than your conversation is bound
        /// to (compare the safety number with `chatctl verify NICK` first), and bind it to
        /// the new key.
        #[arg(long)]
        accept_new_key: bool,
        /// The recipient's nickname.
        #[arg(value_name = "NICK")]
        nick: String,
        /// The message; several words are joined with spaces. With --file: the caption.
        #[arg(value_name = "TEXT")]
        text: Vec<String>,
        /// Send this file, encrypted on your node with a fresh key that travels only inside
        /// the end-to-end encrypted message. Up to files.offline_max_mb it reaches an offline
        /// recipient even after your node stops; a larger one only while your node is up.
        #[arg(long, value_name = "PATH")]
        file: Option<std::path::PathBuf>,
        /// Send this recording as a voice message (`-`: record one now, as `voice
        /// --record`): your node converts it to Ogg/Opus and transcribes it, then sends it
        /// as a private file with the transcript inside the encrypted message.
        #[arg(long, value_name = "PATH", conflicts_with_all = ["file", "text"])]
        voice: Option<std::path::PathBuf>,
    },
    /// Show the safety number of your account and NICK's (the account the network's name
    /// holders name): compare it with NICK in person or over another channel; both of you see
    /// the same number. With --confirm, mark NICK verified (✓).
    Verify {
        /// The numbers matched: mark NICK verified (and bind your conversation to this key).
        #[arg(long)]
        confirm: bool,
        #[arg(value_name = "NICK")]
        nick: String,
    },
    /// Show your private messages (both directions), oldest first, with their delivery
    /// status.
    Dms {
        /// Only the conversation with this nickname or group.
        #[arg(value_name = "WITH")]
        with: Option<String>,
        /// How many of the newest.
        #[arg(short = 'n', long = "lines", default_value_t = 20)]
        lines: u32,
    },
    /// Private group conversations: create, add, remove, leave, list, send.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Refuse NICK's private messages and hide their public ones from what you see.
    Block {
        #[arg(value_name = "NICK")]
        nick: String,
    },
    /// Undo `block`.
    Unblock {
        #[arg(value_name = "NICK")]
        nick: String,
    },
    /// List the people you blocked.
    Blocks,
    /// Give one of your messages a new text, on every node that holds it (ID: as `tail
    /// --json` or `dms --json` show it, or a unique prefix of at least 6 digits).
    Edit {
        #[arg(value_name = "ID")]
        id: String,
        /// The new text; several words are joined with spaces.
        #[arg(value_name = "TEXT", required = true)]
        text: Vec<String>,
    },
    /// Show how a public message travelled through the ring: the broadcast tree with each
    /// hop's time and each node's wait, the slowest path, and nodes that did not answer (ID: as
    /// `tail --json` shows it, or a unique prefix of at least 6 digits).
    Trace {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Delete one of your messages and its edits, on every node that holds it.
    Delete {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Search the stored messages for words (all must appear; `word*` for a prefix).
    Search(SearchArgs),
    /// Export the stored messages of public rooms (JSON lines or CSV), optionally anonymised.
    Export(ExportArgs),
    /// Show the latest messages, and with -f follow new ones.
    Tail(TailArgs),
    /// Download the file of a message (ID: its message id, a private message's id, or the
    /// file's hash), with progress. A private file is decrypted by your node.
    Get(GetArgs),
    /// List the messages with files (newest last).
    Files(FilesArgs),
    /// Send a voice message: PATH (WAV, Ogg/Opus, WebM/Opus…) is uploaded, converted to
    /// Ogg/Opus and transcribed on this node (with voice.model_dir set), then sent with its
    /// transcript.
    Voice(VoiceArgs),
    /// Transcribe a voice message whose transcript is pending (ID: its message id) with this
    /// node's model, and send the transcript to its room; for a private voice message, add
    /// the transcript to your own history only (the others are not told).
    Transcribe {
        /// The voice message's id (64 hex digits; a private message's: 32).
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Show the node's event log (messages and events with their times; private messages as
    /// sender, recipient and time only), and with -f follow it. The node's operator only
    /// (root or chatd's user).
    Log(LogArgs),
    /// List the people of the network: nickname, presence, away message, since when, ids.
    Users,
    /// Change your nickname (unique on the network; a taken one gets a numeric suffix).
    Nick {
        /// The new nickname: 1-32 of A-Z a-z 0-9 _ - ., starting with a letter or digit.
        #[arg(value_name = "NICK")]
        name: String,
    },
    /// Show as away, with an optional message.
    Away {
        /// The away message; several words are joined with spaces.
        #[arg(value_name = "MESSAGE")]
        message: Vec<String>,
    },
    /// Show as online again.
    Back,
    /// Read any DHT record; put or delete your own nickname claims.
    Record(RecordArgs),
    /// Print a shell completion script, e.g.
    /// `chatctl completions bash > ~/.local/share/bash-completion/completions/chatctl`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print chatctl's man page (roff), e.g. `chatctl man | man -l -`.
    #[command(hide = true)]
    Man,
}

/// `chatctl group …`.
#[derive(Debug, clap::Subcommand, PartialEq, Eq)]
pub enum GroupCommand {
    /// Create a group of you and the people named.
    Create {
        /// The group's name (1-64 bytes).
        #[arg(value_name = "NAME")]
        name: String,
        /// Nicknames of the other members.
        #[arg(value_name = "NICK", required = true)]
        members: Vec<String>,
    },
    /// Add people (the group's creator only).
    Add {
        #[arg(value_name = "GROUP")]
        group: String,
        #[arg(value_name = "NICK", required = true)]
        members: Vec<String>,
    },
    /// Remove people (the group's creator only).
    Remove {
        #[arg(value_name = "GROUP")]
        group: String,
        #[arg(value_name = "NICK", required = true)]
        members: Vec<String>,
    },
    /// Leave a group.
    Leave {
        #[arg(value_name = "GROUP")]
        group: String,
    },
    /// List your groups and their members.
    List,
    /// Send to a group (no TEXT: one message per line of standard input).
    Send {
        /// The group's name or id.
        #[arg(value_name = "GROUP")]
        group: String,
        /// The message; with --file: the caption.
        #[arg(value_name = "TEXT")]
        text: Vec<String>,
        /// Send this file to every member, encrypted as with `chatctl dm --file`.
        #[arg(long, value_name = "PATH")]
        file: Option<std::path::PathBuf>,
        /// Send this recording to every member as a voice message, as `chatctl dm --voice`
        /// (`-`: record one now).
        #[arg(long, value_name = "PATH", conflicts_with_all = ["file", "text"])]
        voice: Option<std::path::PathBuf>,
    },
}

/// `chatctl send`.
#[derive(Debug, clap::Args, PartialEq, Eq)]
pub struct SendArgs {
    /// The room [default: lobby].
    #[arg(long, short = 'r', value_name = "ROOM")]
    pub room: Option<String>,
    /// The message; several words are joined with spaces. With --file: the caption.
    #[arg(value_name = "TEXT")]
    pub text: Vec<String>,
    /// Upload this file and send a message referencing it (every node shows it; images up to
    /// files.auto_fetch_kb are fetched at once).
    #[arg(long, value_name = "PATH")]
    pub file: Option<std::path::PathBuf>,
}

/// `chatctl export`.
#[derive(Debug, Args, PartialEq, Eq)]
pub struct ExportArgs {
    /// Only this room.
    #[arg(long, short = 'r', value_name = "ROOM")]
    pub room: Option<String>,
    /// Only messages since: an RFC 3339 time or date, or an age (30m, 2h, 7d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// `jsonl` (one JSON object per line) or `csv`.
    #[arg(long, default_value = "jsonl", value_name = "FORMAT")]
    pub format: String,
    /// Replace every user id, node id and nickname (in texts too) with a pseudonym from a key
    /// drawn for this export only; message ids are left out.
    #[arg(long)]
    pub anonymize: bool,
    /// Add your own private messages (both directions, groups too): `"private": true` with
    /// `to` or `group` (anonymised like the rest). Only ever the caller's own.
    #[arg(long)]
    pub include_private: bool,
    /// Round timestamps down to this duration (1m, 1h, 1d).
    #[arg(long, value_name = "DURATION")]
    pub coarsen: Option<String>,
    /// Write to this new file (mode 0600) instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// `chatctl search`.
#[derive(Debug, Args, PartialEq, Eq)]
pub struct SearchArgs {
    /// The words to look for.
    #[arg(required = true, value_name = "WORD")]
    pub words: Vec<String>,
    /// Only this room.
    #[arg(long, short = 'r', value_name = "ROOM")]
    pub room: Option<String>,
    /// Only messages of this nickname.
    #[arg(long, value_name = "NICK")]
    pub from: Option<String>,
    /// Only messages since: an RFC 3339 time or date (2026-12-01, 2026-12-01T10:00:00Z), or
    /// an age (30m, 2h, 7d).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Matches to show at most (1-1000).
    #[arg(long, short = 'n', default_value_t = 50, value_name = "N")]
    pub limit: u32,
}

/// `chatctl get`.
#[derive(Debug, clap::Args, PartialEq, Eq)]
pub struct GetArgs {
    /// A message id or a file hash (64 hex digits).
    #[arg(value_name = "ID")]
    pub id: String,
    /// Where to save it [default: the file's name, made safe, in the current directory].
    #[arg(long, short = 'o', value_name = "PATH")]
    pub output: Option<std::path::PathBuf>,
    /// Replace PATH if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `chatctl voice`.
#[derive(Debug, clap::Args, PartialEq, Eq)]
pub struct VoiceArgs {
    /// The recording.
    #[arg(value_name = "PATH", required_unless_present = "record")]
    pub path: Option<std::path::PathBuf>,
    /// Record from the default input device until Enter or Ctrl-C (at most 300 s), with
    /// an installed recorder (arecord, parecord, pw-record or ffmpeg), then send.
    #[arg(long, conflicts_with = "path")]
    pub record: bool,
    /// The room [default: lobby].
    #[arg(long, short = 'r', value_name = "ROOM")]
    pub room: Option<String>,
}

/// `chatctl files`.
#[derive(Debug, clap::Args, PartialEq, Eq)]
pub struct FilesArgs {
    /// Only this room.
    #[arg(long, short = 'r', value_name = "ROOM")]
    pub room: Option<String>,
}

/// `chatctl tail`.
#[derive(Debug, clap::Args, PartialEq, Eq)]
pub struct TailArgs {
    /// Keep printing new messages as they arrive; survives a chatd restart.
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How many of the latest messages to show first (0 with -f: only new ones).
    #[arg(long, short = 'n', default_value_t = 10, value_name = "N")]
    pub lines: u32,
    /// Only this room [default: every room].
    #[arg(long, short = 'r', value_name = "ROOM")]
    pub room: Option<String>,
}

/// `chatctl log`.
#[derive(Debug, clap::Args, PartialEq, Eq)]
pub struct LogArgs {
    /// Keep printing new records as chatd writes them (until it stops).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How many of the newest records to show first (0 with -f: only new ones).
    #[arg(long, short = 'n', default_value_t = 20, value_name = "N")]
    pub lines: u32,
}

/// `chatctl record`.
#[derive(Debug, clap::Args, PartialEq, Eq)]
pub struct RecordArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: RecordCommand,
}

/// `chatctl record` subcommands.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum RecordCommand {
    /// Store a name claim signed by your account (chatd renews it while it runs). The other
    /// kinds (profile, presence, keys, mailbox) are written only by chatd's own services.
    Put {
        /// nick (the other kinds are refused).
        kind: String,
        /// The name (nick), `me` (profile, presence, keys) or a 64-hex-digit key (mailbox).
        key: String,
        /// The value (at most 4096 bytes); `-` reads it from standard input.
        value: String,
        /// Lifetime in seconds (1-604800) [default: 3600].
        #[arg(
            long,
            default_value_t = 0,
            hide_default_value = true,
            value_name = "SECS"
        )]
        ttl: u32,
    },
    /// Read a record from its holders.
    Get {
        /// nick, profile, presence, keys or mailbox.
        kind: String,
        /// The name (nick), `me` or a 64-hex-digit key.
        key: String,
    },
    /// Replace your name claim with a signed tombstone.
    Delete {
        /// nick (the other kinds are refused).
        kind: String,
        /// The name (nick) or `me`.
        key: String,
    },
}

impl Cli {
    /// The socket to use: `--socket`, else `$CHATCTL_SOCKET`, else chatd's default.
    pub fn socket_path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(chat_proto::paths::default_control_socket)
    }

    /// Where chatd is: `--remote` with the token of `--token-file`, else the socket.
    pub fn target(&self) -> Result<crate::client::Target, String> {
        let Some(addr) = &self.remote else {
            if self.token_file.is_some() {
                return Err("--token-file goes with --remote HOST:PORT".into());
            }
            return Ok(crate::client::Target::Unix(self.socket_path()));
        };
        let Some(file) = &self.token_file else {
            return Err("--remote needs --token-file (the file with chatd's bearer token)".into());
        };
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("--token-file {}: {e}", file.display()))?;
        let token = text.lines().next().unwrap_or("").trim().to_owned();
        if token.is_empty() {
            return Err(format!(
                "--token-file {}: the first line is empty",
                file.display()
            ));
        }
        Ok(crate::client::Target::Tcp {
            addr: addr.clone(),
            token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn json_and_socket_are_accepted_anywhere() {
        let cli =
            Cli::try_parse_from(["chatctl", "status", "--json", "--socket", "/s"]).expect("parses");
        assert!(cli.json);
        assert_eq!(cli.socket_path(), PathBuf::from("/s"));
        let cli =
            Cli::try_parse_from(["chatctl", "--json", "--socket", "/s", "status"]).expect("parses");
        assert_eq!(cli.command, Command::Status);
    }

    #[test]
    fn help_documents_the_exit_codes_in_use() {
        use crate::exit;
        let help = Cli::command().render_long_help().to_string();
        for line in [
            format!("{}  any other error", exit::FAILURE),
            format!("{}  cannot reach chatd", exit::UNREACHABLE),
            format!("{}  chatd answered with an error", exit::REMOTE),
        ] {
            assert!(help.contains(&line), "--help lacks {line:?}:\n{help}");
        }
    }
}
