//! Direct delivery's messages (service [`crate::wire::DIRECT`]): one request carrying the
//! body and its answer. There are no notices; a notice of this service is kept opaque.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::MAX_BODY;
use crate::wire::InvalidMessage;

/// Wire version of the direct service.
pub const VERSION: u16 = 1;

/// Direct requests (see `docs/protocol.md`, "Direct delivery").
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectRequest {
    /// Deliver this body to the receiver's application.
    Deliver {
        #[serde(with = "serde_bytes")]
        body: Vec<u8>,
    },
}

impl fmt::Debug for DirectRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirectRequest::Deliver { body } => f
                .debug_struct("Deliver")
                .field("body_len", &body.len())
                .finish(),
        }
    }
}

/// Direct responses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectResponse {
    /// The body was handed to the receiver's application (or was already, for a resend).
    Accepted,
    /// The origin is over its rate; nothing was delivered.
    RateLimited { retry_after_ms: u64 },
    /// The body is over the receiver's bound; nothing was delivered.
    TooLarge { max: u64 },
    /// Refused for another reason.
    Refused(String),
}

/// Direct has no notices (yet): none decodes, so a notice of this service stays opaque.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DirectNotice {}

impl DirectRequest {
    /// Checks the body's bound.
    pub fn validate(&self) -> Result<(), InvalidMessage> {
        match self {
            DirectRequest::Deliver { body } if body.len() > MAX_BODY => {
                Err(InvalidMessage::Oversized)
            }
            DirectRequest::Deliver { .. } => Ok(()),
        }
    }
}
