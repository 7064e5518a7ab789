//! Sending: this node's own messages, edits, deletes and people events — numbered next in
//! the node's own sequence, signed, stored and shown to local subscribers at once; the caller
//! broadcasts what these return (the control API only once the overlay admits the broadcast).
//! The places among the sends that may wait for the overlay driver ([`Chat::sending_permit`]).

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};

use tokio::sync::OwnedSemaphorePermit;

use super::envelope::{self, Change, Draft, Kind};
use super::{
    ChangeError, Chat, ChatError, ChatMessage, Local, MessageId, Room, SendError, State, Stored,
    own,
};

impl Chat {
    /// Numbers, signs and stores a people event of this node (its line `text` is shown to
    /// local subscribers), as [`Chat::send_local`] does a message; the caller broadcasts it.
    pub fn send_event(&self, event: &[u8], text: &str) -> Result<Local, SendError> {
        let mut state = self.state();
        let mut shown = self.inner.pipeline.get().map(|p| p.shown());
        let at = shown.as_mut().map(|s| s.reserve());
        let key = self.inner.key.verifying_key();
        let (pos, message) = own::insert_own(&mut state, &key, at, |seq| {
            let mut message = envelope::sign(
                &self.inner.key,
                &Draft {
                    seq,
                    hlc: self.inner.clock.tick(),
                    room: &Room::lobby(),
                    text: "",
                    event: Some(event),
                    author: None,
                    nick: self.inner.nick.as_ref(),
                    change: None,
                },
            )?;
            message.text = text.to_owned();
            Ok(message)
        })?;
        let stored = Arc::new(Stored { pos, message });
        if !text.is_empty() {
            self.inner.hub.publish(stored.clone());
        }
        drop(shown);
        drop(state);
        Ok(Local {
            seq: stored.message.seq,
            wire: stored.message.wire.to_vec(),
            stored,
        })
    }

    /// A place among the `chat.outbound_queue` sends that may wait for the overlay driver at
    /// once, held until the send is answered; [`SendError::Busy`] when none is free.
    pub fn sending_permit(&self) -> Result<OwnedSemaphorePermit, SendError> {
        self.inner
            .sending
            .clone()
            .try_acquire_owned()
            .map_err(|_| SendError::Busy)
    }

    /// Numbers and signs `text` for `room`, stores it and shows it to local subscribers. The
    /// caller broadcasts it at once: the control API runs this on the overlay driver, only once
    /// the overlay admits the broadcast.
    pub fn send_local(&self, room: &Room, text: &str) -> Result<Local, SendError> {
        self.send_as(room, text, None)
    }

    /// [`Chat::send_local`] for the hosted account `author`.
    pub fn send_as(
        &self,
        room: &Room,
        text: &str,
        author: Option<[u8; 32]>,
    ) -> Result<Local, SendError> {
        self.send_attached(room, text, author, None)
    }

    /// [`Chat::send_as`] with a file reference (`attachment.rs`).
    pub fn send_attached(
        &self,
        room: &Room,
        text: &str,
        author: Option<[u8; 32]>,
        attachment: Option<&super::attachment::Attachment>,
    ) -> Result<Local, SendError> {
        self.send_voice(room, text, author, attachment, None)
    }

    /// [`Chat::send_attached`] with a voice message's transcript item (`transcript.rs`).
    pub fn send_voice(
        &self,
        room: &Room,
        text: &str,
        author: Option<[u8; 32]>,
        attachment: Option<&super::attachment::Attachment>,
        transcript: Option<&super::transcript::Transcript>,
    ) -> Result<Local, SendError> {
        envelope::check_text(text)?;
        let state = self.state();
        self.store_own(state, |seq| {
            envelope::sign_voice(
                &self.inner.key,
                &Draft {
                    seq,
                    hlc: self.inner.clock.tick(),
                    room,
                    text,
                    nick: self.inner.nick.as_ref(),
                    event: None,
                    author,
                    change: None,
                },
                attachment,
                transcript,
            )
        })
    }

    /// Stores this node's own message or change that `sign` signs with the next own number
    /// (past any own message the store holds: `own.rs`), shows it to local subscribers and
    /// counts it as sent.
    fn store_own(
        &self,
        mut state: MutexGuard<'_, State>,
        sign: impl Fn(u64) -> Result<ChatMessage, envelope::TextError>,
    ) -> Result<Local, SendError> {
        // Committed before the caller answers: a read right after sees it.
        let mut shown = self.inner.pipeline.get().map(|p| p.shown());
        let at = shown.as_mut().map(|s| s.reserve());
        let key = self.inner.key.verifying_key();
        let (pos, message) = own::insert_own(&mut state, &key, at, sign)?;
        let stored = Arc::new(Stored { pos, message });
        self.inner.hub.publish(stored.clone());
        drop(shown);
        drop(state);
        self.inner.counters.sent.fetch_add(1, Ordering::Relaxed);
        Ok(Local {
            seq: stored.message.seq,
            wire: stored.message.wire.to_vec(),
            stored,
        })
    }

    /// Edits (`edit` the new text) or deletes (`edit` `None`) the message `target` of the
    /// hosted account `author`: checks that it is this node's and that account's, signs the
    /// change, stores it (applying it) and shows it to local subscribers; the caller
    /// broadcasts it at once, as after [`Chat::send_as`].
    pub fn change_as(
        &self,
        target: MessageId,
        edit: Option<&str>,
        author: Option<[u8; 32]>,
    ) -> Result<Local, ChangeError> {
        if let Some(text) = edit {
            envelope::check_text(text).map_err(SendError::from)?;
        }
        let state = self.state();
        let Some(old) = state.store.find(&target).map_err(ChatError::from)? else {
            return Err(ChangeError::NotFound(target));
        };
        let old = old.message;
        match old.kind {
            Kind::Deleted => return Err(ChangeError::Deleted(target)),
            Kind::Text if old.origin == self.inner.key.verifying_key() && old.author == author => {}
            _ => return Err(ChangeError::NotYours(target)),
        }
        Ok(self.store_own(state, |seq| {
            envelope::sign(
                &self.inner.key,
                &Draft {
                    seq,
                    hlc: self.inner.clock.tick(),
                    room: &old.room,
                    text: edit.unwrap_or(""),
                    nick: self.inner.nick.as_ref(),
                    event: None,
                    author,
                    change: Some(match edit {
                        Some(_) => Change::Edit(target),
                        None => Change::Delete(target),
                    }),
                },
            )
        })?)
    }
}
