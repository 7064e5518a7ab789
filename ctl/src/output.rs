//! Printing results: aligned `label  value` lines for a person, or one JSON object per result
//! with the protobuf field names (`--json`). Colours only on a terminal, and never when
//! `NO_COLOR` is set (<https://no-color.org>). Human output never carries a control character
//! other than the line breaks between lines: whatever a value holds (it may come from the
//! network) is shown through [`crate::tui::text::sanitize`].

use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;

/// Where and how results are printed.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    json: bool,
}

impl Printer {
    /// A printer for `--json` (`true`) or people (`false`).
    pub fn new(json: bool) -> Printer {
        Printer { json }
    }

    /// Whether `--json` was given.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Whether to colour the human output: stdout is a terminal and `NO_COLOR` is unset or
    /// empty.
    pub fn colour(&self) -> bool {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        !self.json && !no_color && io::stdout().is_terminal()
    }

    /// Prints `value` as one JSON line and flushes.
    pub fn json_line<T: Serialize>(&self, value: &T) -> io::Result<()> {
        let mut out = io::stdout().lock();
        serde_json::to_writer(&mut out, value)?;
        writeln!(out)?;
        out.flush()
    }

    /// Prints one result: `value` as JSON, or `fields` as aligned lines (their values made
    /// safe for a terminal).
    pub fn record<T: Serialize>(&self, value: &T, fields: &[(&str, String)]) -> io::Result<()> {
        let mut out = io::stdout().lock();
        if self.json {
            serde_json::to_writer(&mut out, value)?;
            writeln!(out)
        } else {
            out.write_all(render_fields(fields).as_bytes())
        }
    }
}

impl Printer {
    /// Prints one result: `value` as JSON, or `text` line by line, made safe for a terminal.
    pub fn table<T: Serialize>(&self, value: &T, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        if self.json {
            serde_json::to_writer(&mut out, value)?;
            writeln!(out)
        } else {
            out.write_all(terminal_safe(text).as_bytes())
        }
    }
}

/// `text` with each line made safe for a terminal; the line breaks stay.
pub fn terminal_safe(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| match line.strip_suffix('\n') {
            Some(l) => format!("{}\n", crate::tui::text::sanitize(l)),
            None => crate::tui::text::sanitize(line),
        })
        .collect()
}

/// `label  value` lines, labels padded to the longest.
pub fn render_fields(fields: &[(&str, String)]) -> String {
    let width = fields
        .iter()
        .map(|(label, _)| label.len())
        .max()
        .unwrap_or(0);
    fields
        .iter()
        .map(|(label, value)| format!("{label:<width$}  {}\n", crate::tui::text::sanitize(value)))
        .collect()
}

/// A duration for people: `3d 4h 5m 6s`, leading zero units left out.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let parts = [
        (s / 86_400, "d"),
        (s / 3600 % 24, "h"),
        (s / 60 % 60, "m"),
        (s % 60, "s"),
    ];
    let shown: Vec<String> = parts
        .iter()
        .skip_while(|(n, unit)| *n == 0 && *unit != "s")
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    shown.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(0)), "0s");
        assert_eq!(human_duration(Duration::from_secs(59)), "59s");
        assert_eq!(human_duration(Duration::from_secs(3600)), "1h 0m 0s");
        assert_eq!(human_duration(Duration::from_secs(90_061)), "1d 1h 1m 1s");
    }

    #[test]
    fn fields_are_aligned() {
        let text = render_fields(&[("id", "x".into()), ("nickname", "y".into())]);
        assert_eq!(text, "id        x\nnickname  y\n");
    }

    #[test]
    fn human_output_carries_no_control_characters() {
        let text = render_fields(&[("away", "brb\u{1b}]0;pwned\u{7}\u{9b}2J\r\nx".into())]);
        assert_eq!(text.matches('\n').count(), 1, "{text:?}");
        assert!(
            !text.trim_end_matches('\n').chars().any(char::is_control),
            "{text:?}"
        );
        let table = terminal_safe("NICK  AWAY\nbob   \u{1b}[2Jgone\u{85}\n");
        assert_eq!(table.lines().count(), 2);
        assert!(
            !table.chars().any(|c| c.is_control() && c != '\n'),
            "{table:?}"
        );
    }
}
