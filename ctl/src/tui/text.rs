//! Text from the network made safe for a terminal, wrapped to a width, and coloured per
//! nickname.
//!
//! Whatever a message or a nickname contains — escape sequences, control characters,
//! bidirectional overrides — is shown as a visible stand-in and never reaches the terminal as
//! a control: `ESC` becomes `␛`, other C0/C1 controls and DEL become `�`, tabs a space, and
//! the bidi embedding, override and isolate marks are dropped.

use ratatui::style::Color;
use unicode_width::UnicodeWidthChar;

/// `s` with every character a terminal could act on replaced by a visible one.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\u{1b}' => Some('␛'),
            '\t' => Some(' '),
            '\n' | '\r' => Some(' '),
            c if c.is_control() => Some('\u{fffd}'),
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' => None,
            c => Some(c),
        })
        .collect()
}

/// Display width of `s` in terminal cells.
pub fn width(s: &str) -> usize {
    s.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// `text` cut into rows of at most `w` cells: at spaces where it can, inside a word where a
/// word is longer than a row. Never returns an empty list.
pub fn wrap(text: &str, w: usize) -> Vec<String> {
    let w = w.max(1);
    let mut rows = Vec::new();
    let mut row = String::new();
    let mut row_w = 0;
    for word in text.split(' ') {
        let word_w = width(word);
        let sep = usize::from(!row.is_empty());
        if row_w + sep + word_w <= w {
            if sep == 1 {
                row.push(' ');
            }
            row.push_str(word);
            row_w += sep + word_w;
            continue;
        }
        if !row.is_empty() {
            rows.push(std::mem::take(&mut row));
            row_w = 0;
        }
        // The word alone: split it where it is wider than a row.
        for c in word.chars() {
            let cw = c.width().unwrap_or(0);
            if row_w + cw > w && !row.is_empty() {
                rows.push(std::mem::take(&mut row));
                row_w = 0;
            }
            row.push(c);
            row_w += cw;
        }
    }
    rows.push(row);
    rows
}

/// Colours nicknames are drawn in.
const PALETTE: [Color; 8] = [
    Color::Cyan,
    Color::Green,
    Color::Yellow,
    Color::Magenta,
    Color::LightBlue,
    Color::LightRed,
    Color::LightGreen,
    Color::LightMagenta,
];

/// The colour of `nick`: the same on every run and every screen.
pub fn nick_colour(nick: &str) -> Color {
    let h = nick.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    PALETTE[h as usize % PALETTE.len()]
}

/// Whether `text` mentions `nick` as a word (any case).
pub fn mentions(text: &str, nick: &str) -> bool {
    if nick.is_empty() {
        return false;
    }
    let nick = nick.to_lowercase();
    text.to_lowercase()
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-' || c == '.'))
        .any(|w| w == nick)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_controls_become_visible_and_harmless() {
        let s = sanitize("a\u{1b}[2Jb\u{7}c\td\u{9b}e\u{202e}f\nq");
        assert_eq!(s, "a␛[2Jb\u{fffd}c d\u{fffd}ef q");
        assert!(!s.chars().any(|c| c.is_control()));
    }

    #[test]
    fn wraps_at_spaces_and_inside_long_words() {
        assert_eq!(wrap("hello big world", 9), vec!["hello big", "world"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 10), vec![""]);
        assert!(wrap(&"x".repeat(10_000), 80).iter().all(|r| width(r) <= 80));
        // Wide characters count double.
        assert_eq!(wrap("日本語", 4), vec!["日本", "語"]);
    }

    #[test]
    fn mentions_are_whole_words_in_any_case() {
        assert!(mentions("hi Alice!", "alice"));
        assert!(!mentions("malice", "alice"));
        assert!(!mentions("anything", ""));
        assert_eq!(nick_colour("bob"), nick_colour("bob"));
    }
}
