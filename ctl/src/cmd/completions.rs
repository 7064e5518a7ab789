//! `chatctl completions SHELL` and the hidden `chatctl man`: shell completion scripts and the
//! man page, both generated from the command-line definition so they never drift from it.
//!
//! Installed by the Debian package (see `deploy/build-deb.sh`); by hand:
//! `chatctl completions bash > ~/.local/share/bash-completion/completions/chatctl`.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;

use crate::Error;
use crate::cli::Cli;

/// The completion script for `shell`.
pub fn script(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "chatctl", &mut out);
    out
}

/// The man page (roff).
pub fn man_page() -> Vec<u8> {
    render_man(Cli::command(), crate::cli::AFTER_HELP)
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

/// Writes `bytes` to stdout.
pub fn print(bytes: &[u8]) -> Result<(), Error> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(Error::Output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_that_knows_the_subcommands() {
        for (shell, marker) in [
            (Shell::Bash, "complete -F _chatctl"),
            (Shell::Zsh, "#compdef chatctl"),
            (Shell::Fish, "complete -c chatctl"),
        ] {
            let text = String::from_utf8(script(shell)).expect("UTF-8");
            assert!(text.contains(marker), "{shell}: no {marker:?}");
            for word in ["status", "completions", "socket", "json"] {
                assert!(text.contains(word), "{shell}: no {word:?}");
            }
            assert!(
                !text.contains("chatctl__man"),
                "{shell}: hidden `man` leaked"
            );
        }
    }

    #[test]
    fn the_man_page_lists_subcommands_and_exit_codes() {
        let page = String::from_utf8(man_page()).expect("UTF-8");
        assert!(page.contains(".TH chatctl 1"), "title line");
        for want in [
            "chatctl\\-status",
            "chatctl\\-completions",
            "\\-\\-socket",
            "\n  3  cannot reach chatd",
            ".SH NOTES\n.nf\n",
        ] {
            assert!(page.contains(want), "man page lacks {want:?}");
        }
        assert!(
            !page.contains("chatctl\\-man("),
            "hidden subcommand stays hidden"
        );
    }
}
