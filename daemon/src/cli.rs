//! Command-line interface of `chatd`.
//!
//! Flags set configuration keys (they are the last and strongest layer, see [`crate::config`])
//! and are accepted before or after a subcommand. Without a subcommand chatd runs the node.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Overrides;

const AFTER_HELP: &str = "\
Configuration layers, each overriding the previous one: built-in defaults,
/etc/chatd/chatd.toml (or --config PATH), CHATD_* environment variables
(e.g. CHATD_NODE__LISTEN), then these flags. CHATD_LOG sets the log filter.
A repeated flag overrides the earlier one, except --bootstrap, which adds a peer.

Signals: SIGTERM or SIGINT stop the node; SIGHUP re-reads the configuration and
applies log.filter (other keys need a restart, and the log says which changed).

Exit status:
  0   stopped cleanly (SIGINT or SIGTERM), or check-config found no problem
  1   could not start or failed while running (the message says what and where)
  2   invalid command line
  75  node.listen: the UDP port is in use (retrying later may work)
  77  permission problem: data directory or node key owned by another user or
      open to others, or a path chatd may not use
  78  invalid configuration (the message names the key)";

/// chatd: a decentralised chat daemon.
#[derive(Debug, Parser)]
#[command(name = "chatd", version, about, after_help = AFTER_HELP, args_override_self = true)]
pub struct Cli {
    /// Config file to read instead of /etc/chatd/chatd.toml.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// UDP address for peer connections (QUIC) [config: node.listen; default: 0.0.0.0:7400].
    #[arg(long, global = true, value_name = "ADDR")]
    pub listen: Option<String>,

    /// A peer to join the ring through (IP:PORT, [IPv6]:PORT or HOST:PORT); repeat for
    /// several. None: found a new ring, unless a peer remembered from the last run answers
    /// [config: node.bootstrap].
    #[arg(long, global = true, value_name = "ADDR")]
    pub bootstrap: Vec<String>,

    /// Directory for the node key and state [config: node.data_dir].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Path of the control socket [config: control.socket].
    #[arg(long, global = true, value_name = "PATH")]
    pub control: Option<PathBuf>,

    /// Your nickname [config: node.nickname].
    #[arg(long, global = true, value_name = "NAME")]
    pub nick: Option<String>,

    /// Find peers on the local network (mDNS/DNS-SD, `_chatd._udp.local.`) and be found by them
    /// [config: discovery.mdns; default: off].
    #[arg(long, global = true)]
    pub lan: bool,

    /// Serve the web view, /metrics and /healthz on ADDR (IP:PORT); "" turns them off
    /// [config: web.listen; default: 127.0.0.1:7480].
    #[arg(long, global = true, value_name = "ADDR")]
    pub web: Option<String>,

    /// What to do; without a subcommand, run the node.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Print the effective configuration (TOML) and exit; fail on any unknown key or bad value.
    CheckConfig {
        /// Print nothing when the configuration is valid (for ExecReload= and scripts).
        #[arg(long, short)]
        quiet: bool,
    },
    /// Print chatd's man page (roff) on stdout, e.g. `chatd man | man -l -`.
    #[command(hide = true)]
    Man,
}

/// The man page, generated from the command-line definition.
pub fn man_page() -> Vec<u8> {
    use clap::CommandFactory;
    render_man(Cli::command(), AFTER_HELP)
}

/// Renders `cmd`'s man page with `notes` (the `after_help` text: exit codes, layouts) as a
/// verbatim NOTES section, since roff would otherwise refill its aligned lines.
fn render_man(cmd: clap::Command, notes: &str) -> Vec<u8> {
    let mut out = Vec::new();
    // Rendering into a Vec cannot fail.
    let _ = clap_mangen::Man::new(cmd.after_help(None::<&str>)).render(&mut out);
    out.extend_from_slice(b".SH NOTES\n.nf\n");
    for line in notes.lines() {
        let line = line.replace('\\', "\\e").replace('-', "\\-");
        if line.starts_with('.') || line.starts_with('\'') {
            out.extend_from_slice(b"\\&");
        }
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b".fi\n");
    out
}

impl Cli {
    /// The configuration overrides these flags make.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config: self.config.clone(),
            listen: self.listen.clone(),
            bootstrap: self.bootstrap.clone(),
            data_dir: self.data_dir.clone(),
            control: self.control.clone(),
            nick: self.nick.clone(),
            lan: self.lan,
            web: self.web.clone(),
        }
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
    fn the_man_page_covers_every_flag_and_the_exit_codes() {
        let page = String::from_utf8(man_page()).expect("UTF-8");
        assert!(
            page.starts_with(".ie"),
            "roff: {}",
            &page[..page.len().min(80)]
        );
        assert!(page.contains(".TH chatd 1"), "title line");
        for want in [
            "\\-\\-listen",
            "\\-\\-bootstrap",
            "check\\-config",
            ".SH NOTES\n.nf\n",
            "\n  78  invalid configuration",
        ] {
            assert!(page.contains(want), "man page lacks {want:?}");
        }
        assert!(
            !page.contains("chatd\\-man"),
            "the hidden subcommand stays hidden"
        );
    }

    #[test]
    fn flags_work_before_and_after_the_subcommand() {
        let before = Cli::try_parse_from([
            "chatd",
            "--listen",
            "127.0.0.1:1",
            "--bootstrap",
            "10.0.0.1:1",
            "--bootstrap",
            "10.0.0.2:2",
            "check-config",
        ])
        .expect("parses");
        assert_eq!(before.command, Some(Command::CheckConfig { quiet: false }));
        assert_eq!(before.listen.as_deref(), Some("127.0.0.1:1"));
        assert_eq!(before.overrides().bootstrap.len(), 2);
        let after =
            Cli::try_parse_from(["chatd", "check-config", "--nick", "al", "-q"]).expect("parses");
        assert_eq!(after.nick.as_deref(), Some("al"));
        assert_eq!(after.command, Some(Command::CheckConfig { quiet: true }));
        let run = Cli::try_parse_from(["chatd", "--data-dir", "/d", "--control", "/c.sock"])
            .expect("parses");
        assert_eq!(run.command, None);
        assert_eq!(run.overrides().control, Some(PathBuf::from("/c.sock")));
    }
}
