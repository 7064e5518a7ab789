//! Room names: what makes a valid room, and the default room `lobby`.
//!
//! A room name is 1 to [`MAX_ROOM_LEN`] characters of `a-z 0-9 _ - .`, starting with a letter
//! or a digit. Lower case only, so that `Lobby` and `lobby` can never be two rooms.

use std::fmt;
use std::str::FromStr;

/// Longest room name, in bytes (all ASCII).
pub const MAX_ROOM_LEN: usize = 64;
/// The room a message goes to when none is named.
pub const DEFAULT_ROOM: &str = "lobby";

/// A validated room name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Room(String);

/// Why a string is not a valid room name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomError {
    /// The empty string.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`MAX_ROOM_LEN`].
    #[error("must be at most {MAX_ROOM_LEN} characters, got {0}")]
    TooLong(usize),
    /// Starts with something other than a letter or digit.
    #[error("must start with a lower-case letter or a digit")]
    BadStart,
    /// Contains a character outside the allowed set.
    #[error("contains {0:?}; allowed are a-z, 0-9, '_', '-' and '.'")]
    BadChar(char),
}

impl Room {
    /// The default room, `lobby`.
    pub fn lobby() -> Room {
        Room(DEFAULT_ROOM.to_owned())
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Room {
    type Err = RoomError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let first = s.chars().next().ok_or(RoomError::Empty)?;
        if s.len() > MAX_ROOM_LEN {
            return Err(RoomError::TooLong(s.len()));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(*c)))
        {
            return Err(RoomError::BadChar(bad));
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(RoomError::BadStart);
        }
        Ok(Room(s.to_owned()))
    }
}

impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_rooms() {
        for name in [
            "lobby",
            "rust-dev",
            "a",
            "2025.q1",
            &"r".repeat(MAX_ROOM_LEN),
        ] {
            assert_eq!(name.parse::<Room>().map(|r| r.to_string()), Ok(name.into()));
        }
        assert_eq!(Room::lobby().as_str(), "lobby");
    }

    #[test]
    fn rejects_bad_rooms_with_the_reason() {
        let cases = [
            ("", RoomError::Empty),
            ("Lobby", RoomError::BadChar('L')),
            ("-x", RoomError::BadStart),
            ("a b", RoomError::BadChar(' ')),
            ("café", RoomError::BadChar('é')),
            ("a/b", RoomError::BadChar('/')),
        ];
        for (name, err) in cases {
            assert_eq!(name.parse::<Room>(), Err(err), "{name:?}");
        }
        let long = "r".repeat(MAX_ROOM_LEN + 1);
        assert_eq!(
            long.parse::<Room>(),
            Err(RoomError::TooLong(MAX_ROOM_LEN + 1))
        );
    }
}
