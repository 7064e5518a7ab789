//! The frames a page sends on `/ws`, parsed in one place (by [`super::ws`], and by the fuzz
//! target `tests/fuzz/src/bin/web_frames.rs`): the first `auth` frame, then `send`/`psend`
//! requests and `trace` questions ([`trace_request`]). Every frame is hostile JSON text of at
//! most [`super::MAX_FRAME`] bytes; parsing never panics and allocates no more than the text.

use serde::Deserialize;

pub use super::map::trace_request;

/// What the page's `auth` frame says.
#[derive(Debug, Deserialize)]
pub struct AuthFrame {
    /// Must be `auth`.
    pub t: String,
    /// A login ticket from a `chatctl web` link.
    #[serde(default)]
    pub ticket: Option<String>,
    /// A session kept from an earlier `hello`.
    #[serde(default)]
    pub session: Option<String>,
}

/// The page's first frame, if it is an `auth` frame.
pub fn parse_auth(text: &str) -> Option<AuthFrame> {
    serde_json::from_str::<AuthFrame>(text)
        .ok()
        .filter(|f| f.t == "auth")
}

/// A `send` (public) or `psend` (private) request.
#[derive(Debug, Deserialize)]
pub struct SendFrame {
    /// `send` or `psend`.
    pub t: String,
    /// The page's number for the answer.
    #[serde(default)]
    pub r#ref: u64,
    /// `send`: the room.
    #[serde(default)]
    pub room: String,
    /// `psend`: the recipient's nickname.
    #[serde(default)]
    pub to: String,
    /// `psend`: the group (instead of `to`).
    #[serde(default)]
    pub group: String,
    /// The text.
    #[serde(default)]
    pub text: String,
}

impl SendFrame {
    /// Whether it is a private send.
    pub fn private(&self) -> bool {
        self.t == "psend"
    }
}

/// Why a frame is not a send request.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not JSON of a request's shape: the parser's words.
    NotARequest(String),
    /// A request of an unknown type `t`, with its `ref`.
    Unknown { r#ref: u64, t: String },
}

/// A frame after `auth` that is not a trace question: a `send` or `psend` request.
pub fn parse_send(text: &str) -> Result<SendFrame, Refused> {
    let req: SendFrame =
        serde_json::from_str(text).map_err(|e| Refused::NotARequest(e.to_string()))?;
    if req.t != "send" && req.t != "psend" {
        return Err(Refused::Unknown {
            r#ref: req.r#ref,
            t: req.t,
        });
    }
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_and_refuse() {
        let a = parse_auth(r#"{"t":"auth","ticket":"x"}"#).expect("auth");
        assert_eq!(a.ticket.as_deref(), Some("x"));
        assert!(parse_auth(r#"{"t":"send"}"#).is_none());
        assert!(parse_auth("[").is_none());
        let s = parse_send(r#"{"t":"psend","ref":7,"to":"bob","text":"hi"}"#).expect("psend");
        assert!(s.private() && s.r#ref == 7 && s.to == "bob");
        assert_eq!(
            parse_send(r#"{"t":"nope","ref":3}"#).unwrap_err(),
            Refused::Unknown {
                r#ref: 3,
                t: "nope".into()
            }
        );
        assert!(matches!(
            parse_send("{\"t\":1}"),
            Err(Refused::NotARequest(_))
        ));
    }
}
