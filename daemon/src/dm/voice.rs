//! A later transcript of a private voice message (issue 36), made on a participant's node:
//! the message's text and file reference (with the transcript) are replaced in that
//! account's rows (the others get it as a private message, `ops/private_voice.rs`;
//! docs/protocol.md, "Private voice messages").

use std::sync::Arc;

use super::{Dm, Message, PrivateError};
use crate::people::Who;

impl Dm {
    /// Puts `text` and the reference `file` in place of those of `who`'s message `id` (hex);
    /// the message as it now stands.
    pub fn transcribed(
        self: &Arc<Self>,
        who: Who,
        id: &str,
        text: &str,
        file: &[u8],
    ) -> Result<Message, PrivateError> {
        let (account, _) = self.account(who)?;
        let mut key = [0u8; 16];
        hex::decode_to_slice(id.trim(), &mut key)
            .map_err(|_| PrivateError::BadId(id.to_owned()))?;
        let store = self.store();
        if !store.transcribed(&account, &key, text, file)? {
            return Err(PrivateError::NoMessage(id.to_owned()));
        }
        let row = store
            .get(&account, &key)?
            .ok_or_else(|| PrivateError::NoMessage(id.to_owned()))?;
        Ok(Message { account, row })
    }
}
