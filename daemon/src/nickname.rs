//! Nicknames: the rules a name must follow before chatd will use or announce it.
//!
//! A nickname is 1 to 32 characters from `A-Z a-z 0-9 _ - .`, starting with a letter or a
//! digit. Names starting with `*` are reserved for guests connected through another node's API
//! (the relay case), so a user can never claim one; the charset rule covers that, but the error
//! says so explicitly.

use std::fmt;
use std::str::FromStr;

/// Longest nickname, in characters (all ASCII, so also in bytes).
pub const MAX_LEN: usize = 32;

/// A validated nickname.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Nickname(String);

/// Why a string is not a valid nickname.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NicknameError {
    /// The empty string.
    #[error("must not be empty")]
    Empty,
    /// More than [`MAX_LEN`] characters.
    #[error("must be at most {MAX_LEN} characters, got {0}")]
    TooLong(usize),
    /// Starts with `*`.
    #[error("must not start with '*' (reserved for guests of other nodes)")]
    Reserved,
    /// Starts with something other than a letter or digit.
    #[error("must start with a letter or a digit")]
    BadStart,
    /// Contains a character outside the allowed set.
    #[error("contains {0:?}; allowed are letters, digits, '_', '-' and '.'")]
    BadChar(char),
}

impl Nickname {
    /// `user`: the name wished for when nothing better is known.
    pub fn user() -> Nickname {
        Nickname("user".to_owned())
    }

    /// The nickname as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Nickname {
    type Err = NicknameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let first = s.chars().next().ok_or(NicknameError::Empty)?;
        if first == '*' {
            return Err(NicknameError::Reserved);
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "_-.".contains(*c)))
        {
            return Err(NicknameError::BadChar(bad));
        }
        if !first.is_ascii_alphanumeric() {
            return Err(NicknameError::BadStart);
        }
        if s.len() > MAX_LEN {
            return Err(NicknameError::TooLong(s.len()));
        }
        Ok(Nickname(s.to_owned()))
    }
}

impl fmt::Display for Nickname {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["alice", "Bob_2", "x", "node-7.eu", &"a".repeat(MAX_LEN)] {
            assert_eq!(
                name.parse::<Nickname>().map(|n| n.to_string()),
                Ok(name.to_owned())
            );
        }
    }

    #[test]
    fn rejects_bad_names_with_the_reason() {
        let cases = [
            ("", NicknameError::Empty),
            ("*guest", NicknameError::Reserved),
            ("-dash", NicknameError::BadStart),
            (".dot", NicknameError::BadStart),
            ("al ice", NicknameError::BadChar(' ')),
            ("émile", NicknameError::BadChar('é')),
            ("a*b", NicknameError::BadChar('*')),
        ];
        for (name, err) in cases {
            assert_eq!(name.parse::<Nickname>(), Err(err), "{name:?}");
        }
        let long = "a".repeat(MAX_LEN + 1);
        assert_eq!(
            long.parse::<Nickname>(),
            Err(NicknameError::TooLong(MAX_LEN + 1))
        );
    }
}
