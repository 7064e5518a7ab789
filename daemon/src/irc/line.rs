//! The IRC line codec: one message per line, parsed with its bounds (Modern IRC, IRCv3
//! message tags) and written back with tag values escaped.
//!
//! A line is at most [`MAX_BODY`] bytes without its tags (512 with CR LF, RFC 1459) and
//! [`MAX_TAGS`] bytes of tags (IRCv3: 8191 with `@` and the space). NUL anywhere, and a bare
//! CR inside a line, refuse the whole line: no parameter can carry CR, LF or NUL into chatd.
//! Text is UTF-8 (a client sending Latin-1 gets its invalid bytes replaced).

use std::fmt::Write as _;

/// Longest message without tags, CR LF excluded (510 + 2 = RFC 1459's 512).
pub const MAX_BODY: usize = 510;
/// Longest tag section, `@` and the space included (IRCv3 message tags: 8191).
pub const MAX_TAGS: usize = 8191;
/// Longest tag section a client may send, `@` and the space included (IRCv3 message tags:
/// 4094 bytes of client tag data; a longer one is refused with `417`).
pub const MAX_CLIENT_TAGS: usize = 4096;
/// Longest line the reader accepts before it gives up on the connection.
pub const MAX_LINE: usize = MAX_TAGS + MAX_BODY + 2;
/// Most parameters of one message (RFC 2812: 15).
pub const MAX_PARAMS: usize = 15;

/// One IRC message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Message {
    /// IRCv3 tags, in order, unescaped (`None`: a tag without a value).
    pub tags: Vec<(String, Option<String>)>,
    /// The source (`nick!user@host` or a server name), without the colon.
    pub source: Option<String>,
    /// The command, upper case (or a three-digit numeric).
    pub command: String,
    /// The parameters; the last may contain spaces.
    pub params: Vec<String>,
}

/// Why a line is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Nothing but spaces.
    #[error("empty line")]
    Empty,
    /// The message without tags is too long.
    #[error("line too long (at most {MAX_BODY} bytes without tags)")]
    TooLong,
    /// The tag section is too long.
    #[error("tags too long (at most {MAX_TAGS} bytes)")]
    TagsTooLong,
    /// NUL or a bare CR in the line.
    #[error("NUL or CR inside a line")]
    Control,
    /// No command.
    #[error("no command")]
    NoCommand,
    /// More than [`MAX_PARAMS`] parameters.
    #[error("too many parameters")]
    TooManyParams,
}

impl Message {
    /// A message from `source` with `command` and `params`.
    pub fn new(source: Option<&str>, command: &str, params: &[&str]) -> Message {
        Message {
            tags: Vec::new(),
            source: source.map(str::to_owned),
            command: command.to_owned(),
            params: params.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    /// Adds a tag.
    pub fn tag(mut self, key: &str, value: Option<&str>) -> Message {
        self.tags.push((key.to_owned(), value.map(str::to_owned)));
        self
    }

    /// The value of tag `key`, if present.
    pub fn tag_value(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.as_deref())
    }

    /// Parameter `i`, or the empty string.
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map_or("", String::as_str)
    }

    /// Parses one line (CR LF already removed).
    pub fn parse(line: &[u8]) -> Result<Message, LineError> {
        if line.iter().any(|b| *b == 0 || *b == b'\r' || *b == b'\n') {
            return Err(LineError::Control);
        }
        let text = String::from_utf8_lossy(line);
        let mut rest: &str = text.trim_start_matches(' ');
        let mut msg = Message::default();
        if let Some(after) = rest.strip_prefix('@') {
            let (tags, tail) = after.split_once(' ').unwrap_or((after, ""));
            if tags.len() + 2 > MAX_CLIENT_TAGS {
                return Err(LineError::TagsTooLong);
            }
            msg.tags = tags
                .split(';')
                .filter(|t| !t.is_empty())
                .map(|t| match t.split_once('=') {
                    Some((k, v)) => (k.to_owned(), Some(unescape(v))),
                    None => (t.to_owned(), None),
                })
                .collect();
            rest = tail.trim_start_matches(' ');
        }
        if rest.len() > MAX_BODY {
            return Err(LineError::TooLong);
        }
        if rest.is_empty() {
            return Err(if msg.tags.is_empty() {
                LineError::Empty
            } else {
                LineError::NoCommand
            });
        }
        if let Some(after) = rest.strip_prefix(':') {
            let (source, tail) = after.split_once(' ').unwrap_or((after, ""));
            msg.source = Some(source.to_owned());
            rest = tail.trim_start_matches(' ');
        }
        let (command, mut rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if command.is_empty() {
            return Err(LineError::NoCommand);
        }
        msg.command = command.to_ascii_uppercase();
        loop {
            rest = rest.trim_start_matches(' ');
            if rest.is_empty() {
                break;
            }
            if msg.params.len() == MAX_PARAMS {
                return Err(LineError::TooManyParams);
            }
            if let Some(trailing) = rest.strip_prefix(':') {
                msg.params.push(trailing.to_owned());
                break;
            }
            let (p, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            msg.params.push(p.to_owned());
            rest = tail;
        }
        Ok(msg)
    }

    /// The line to send, CR LF included. Parameters are written as given; the callers put
    /// only single-line text in them ([`clean`]). The body is cut at [`MAX_BODY`] bytes (on a
    /// character boundary) so that no reply breaks a client's bound.
    pub fn to_line(&self) -> String {
        let mut out = String::new();
        if !self.tags.is_empty() {
            out.push('@');
            for (i, (k, v)) in self.tags.iter().enumerate() {
                if i > 0 {
                    out.push(';');
                }
                out.push_str(k);
                if let Some(v) = v {
                    out.push('=');
                    escape_into(v, &mut out);
                }
            }
            out.push(' ');
        }
        let start = out.len();
        if let Some(s) = &self.source {
            let _ = write!(out, ":{s} ");
        }
        out.push_str(&self.command);
        let n = self.params.len();
        for (i, p) in self.params.iter().enumerate() {
            out.push(' ');
            // The last parameter of a multi-parameter message (a text, a numeric's message)
            // and of AWAY, QUIT and ERROR is written as a trailing one, as servers do.
            let trailing = n >= 2 || matches!(self.command.as_str(), "AWAY" | "QUIT" | "ERROR");
            if i + 1 == n && (trailing || p.is_empty() || p.contains(' ') || p.starts_with(':')) {
                out.push(':');
            }
            out.push_str(p);
        }
        if out.len() - start > MAX_BODY {
            let mut cut = start + MAX_BODY;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
        }
        out.push_str("\r\n");
        out
    }
}

/// `text` with CR, LF and NUL replaced by spaces: what chatd puts in a parameter it writes.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            if matches!(c, '\r' | '\n' | '\0') {
                ' '
            } else {
                c
            }
        })
        .collect()
}

fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(':') => out.push(';'),
            Some('s') => out.push(' '),
            Some('\\') => out.push('\\'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn escape_into(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            ';' => out.push_str("\\:"),
            ' ' => out.push_str("\\s"),
            '\\' => out.push_str("\\\\"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\0' => {}
            c => out.push(c),
        }
    }
}

/// Splits a byte stream into lines, bounded: [`Lines::push`] adds what was read,
/// [`Lines::next_line`] takes one line (LF or CR LF ended). A partial line longer than
/// [`MAX_LINE`] is an error: the connection is closed rather than the buffer grown.
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    /// Adds bytes read from the socket; `Err` when an unfinished line is over the bound.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), LineError> {
        self.buf.extend_from_slice(bytes);
        let unfinished = match self.buf.iter().rposition(|b| *b == b'\n') {
            Some(i) => self.buf.len() - i - 1,
            None => self.buf.len(),
        };
        if unfinished > MAX_LINE {
            return Err(LineError::TooLong);
        }
        Ok(())
    }

    /// The next complete line, without its line end; `Err` for one over [`MAX_LINE`].
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, LineError>> {
        let end = self.buf.iter().position(|b| *b == b'\n')?;
        let mut line: Vec<u8> = self.buf.drain(..=end).collect();
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > MAX_LINE {
            return Some(Err(LineError::TooLong));
        }
        Some(Ok(line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags_source_command_and_params() {
        let m = Message::parse(
            b"@time=2024-01-01T00:00:00.000Z;+x=a\\sb\\:c :nick!u@h privmsg #lobby :hello there",
        )
        .expect("parses");
        assert_eq!(m.tag_value("time"), Some("2024-01-01T00:00:00.000Z"));
        assert_eq!(m.tag_value("+x"), Some("a b;c"));
        assert_eq!(m.source.as_deref(), Some("nick!u@h"));
        assert_eq!(m.command, "PRIVMSG");
        assert_eq!(m.params, vec!["#lobby", "hello there"]);
        let m = Message::parse(b"USER  a 0   * :Real Name").expect("parses");
        assert_eq!(m.params, vec!["a", "0", "*", "Real Name"]);
        let m = Message::parse(b"PING").expect("parses");
        assert!(m.params.is_empty());
        let m = Message::parse(b"PRIVMSG #a :").expect("parses");
        assert_eq!(m.params, vec!["#a", ""]);
    }

    #[test]
    fn refuses_what_breaks_the_bounds() {
        assert_eq!(Message::parse(b""), Err(LineError::Empty));
        assert_eq!(Message::parse(b"   "), Err(LineError::Empty));
        assert_eq!(Message::parse(b"@a=b"), Err(LineError::NoCommand));
        assert_eq!(Message::parse(b"PRIVMSG #a :x\0y"), Err(LineError::Control));
        assert_eq!(
            Message::parse(b"PRIVMSG #a :x\rQUIT"),
            Err(LineError::Control)
        );
        let long = format!("PRIVMSG #a :{}", "x".repeat(MAX_BODY));
        assert_eq!(Message::parse(long.as_bytes()), Err(LineError::TooLong));
        let ok = format!("PRIVMSG #a :{}", "x".repeat(MAX_BODY - 12));
        assert!(Message::parse(ok.as_bytes()).is_ok());
        let tags = format!("@a={} PING", "x".repeat(MAX_TAGS));
        assert_eq!(Message::parse(tags.as_bytes()), Err(LineError::TagsTooLong));
        let many = format!("CMD{}", " p".repeat(MAX_PARAMS + 1));
        assert_eq!(
            Message::parse(many.as_bytes()),
            Err(LineError::TooManyParams)
        );
    }

    #[test]
    fn writes_what_it_parses_and_escapes_tag_values() {
        let m = Message::new(Some("a!b@c"), "PRIVMSG", &["#x", "hi there"])
            .tag("time", Some("t"))
            .tag("+v", Some("a b;c\\"));
        let line = m.to_line();
        assert_eq!(
            line,
            "@time=t;+v=a\\sb\\:c\\\\ :a!b@c PRIVMSG #x :hi there\r\n"
        );
        let back = Message::parse(line.trim_end().as_bytes()).expect("parses");
        assert_eq!(back, m);
        assert_eq!(Message::new(None, "PING", &["x"]).to_line(), "PING x\r\n");
        assert_eq!(Message::new(None, "X", &[":p"]).to_line(), "X ::p\r\n");
        assert_eq!(Message::new(None, "X", &[""]).to_line(), "X :\r\n");
        // A reply never exceeds the client's bound, whatever it carries.
        let long = Message::new(Some("s"), "PRIVMSG", &["#x", &"é".repeat(600)]).to_line();
        assert!(long.len() <= MAX_BODY + 2, "{}", long.len());
        assert!(long.ends_with("\r\n"));
        assert_eq!(clean("a\r\nb\0"), "a  b ");
    }

    #[test]
    fn lines_split_and_bound_the_buffer() {
        let mut l = Lines::default();
        l.push(b"NICK a\r\nUSER a 0 * :b\nPIN").expect("ok");
        assert_eq!(l.next_line(), Some(Ok(b"NICK a".to_vec())));
        assert_eq!(l.next_line(), Some(Ok(b"USER a 0 * :b".to_vec())));
        assert_eq!(l.next_line(), None);
        l.push(b"G\r\n").expect("ok");
        assert_eq!(l.next_line(), Some(Ok(b"PING".to_vec())));
        let mut l = Lines::default();
        assert_eq!(l.push(&vec![b'x'; MAX_LINE + 1]), Err(LineError::TooLong));
    }
}
