//! The one rule for the characters of a message's text, public or private: no control
//! characters (C0, DEL, C1) but the newline and the tab. A terminal acts on the others (an
//! escape sequence can rewrite the screen, set the window title or answer back), and clients
//! printing `--json` or API output pass them on unchanged.
//!
//! What the local user sends is refused if it breaks the rule ([`first_forbidden`]); what
//! comes from the network is signed by its sender and cannot be changed on the wire, so the
//! text kept and shown is [`sanitize`]d (each forbidden character becomes U+FFFD).
//!
//! A private text is also bounded in size ([`check_text`]: 1 to [`MAX_TEXT`] bytes;
//! [`check_text_with`]: with a file reference, the two together within it).

use std::borrow::Cow;

use crate::{DmError, MAX_TEXT};

/// The character shown instead of a forbidden one.
pub const REPLACEMENT: char = '\u{fffd}';

/// Whether `c` may not appear in a message's text.
pub fn is_forbidden(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

/// The first forbidden character of `text`, if any.
pub fn first_forbidden(text: &str) -> Option<char> {
    text.chars().find(|c| is_forbidden(*c))
}

/// `text` with each forbidden character replaced by [`REPLACEMENT`] (borrowed when it has
/// none).
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if first_forbidden(text).is_none() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if is_forbidden(c) { REPLACEMENT } else { c })
            .collect(),
    )
}

/// Checks a text's size and characters, and a file reference's size: the two together
/// within [`MAX_TEXT`].
pub(crate) fn check_text_with(text: &str, file: Option<&[u8]>) -> Result<(), DmError> {
    check_text(text)?;
    let extra = file.map_or(0, <[u8]>::len);
    if extra > crate::payload::MAX_FILE_REF || text.len() + extra > MAX_TEXT {
        return Err(DmError::TextSize {
            len: text.len() + extra,
            max: MAX_TEXT,
        });
    }
    Ok(())
}

/// Checks a text's size and characters.
pub(crate) fn check_text(text: &str) -> Result<(), DmError> {
    if text.is_empty() || text.len() > MAX_TEXT {
        return Err(DmError::TextSize {
            len: text.len(),
            max: MAX_TEXT,
        });
    }
    if let Some(c) = first_forbidden(text) {
        return Err(DmError::ControlChar { code: u32::from(c) });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_but_newline_and_tab_are_forbidden() {
        assert_eq!(first_forbidden("line one\nline\ttwo, ünïcode ✓"), None);
        for c in [
            '\0', '\u{7}', '\u{1b}', '\r', '\u{7f}', '\u{85}', '\u{9b}', '\u{9f}',
        ] {
            assert_eq!(first_forbidden(&format!("a{c}b")), Some(c), "{:?}", c);
        }
        assert!(matches!(sanitize("plain\n"), Cow::Borrowed("plain\n")));
        assert_eq!(
            sanitize("a\u{1b}[2Jb\u{9b}c\td"),
            "a\u{fffd}[2Jb\u{fffd}c\td"
        );
    }
}
