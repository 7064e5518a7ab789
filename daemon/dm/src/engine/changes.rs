//! Edits and deletes of one's own private messages: a [`Body::Change`] numbered in the same
//! exactly-once streams as the message it changes, to the same recipients, so it always
//! arrives after that message and once.
//!
//! A change names its target by message id, and an id is [`crate::message_id`] of its
//! sender: a receiver applies a change only to a stored message of the change's (Olm-
//! authenticated) sender, so nobody can change another's message. The engine does not keep
//! messages; its driver applies an [`Action::Change`] to its store under that rule.

use super::{Action, Engine, check_text};
use crate::error::DmError;
use crate::payload::{Body, Conv};

/// An edit (`text`) or delete (`None`) of message `id`, sent by `from` at `sent_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Changed {
    pub id: [u8; 16],
    pub from: [u8; 32],
    pub text: Option<String>,
    pub sent_ms: u64,
}

impl Engine {
    /// Edits (`text`) or deletes this account's message `id` of the direct conversation
    /// with `to`. The caller has checked that the message is this account's.
    pub fn change_direct(
        &mut self,
        to: [u8; 32],
        id: [u8; 16],
        text: Option<&str>,
        now_ms: u64,
    ) -> Result<Changed, DmError> {
        if let Some(t) = text {
            check_text(t)?;
        }
        self.admit(to, now_ms)?;
        self.enqueue(to, change(Conv::Direct, id, text), now_ms)?;
        Ok(self.changed(id, text, now_ms))
    }

    /// The same for a message of group `group`, to its other members.
    pub fn change_group(
        &mut self,
        group: [u8; 16],
        id: [u8; 16],
        text: Option<&str>,
        now_ms: u64,
    ) -> Result<Changed, DmError> {
        if let Some(t) = text {
            check_text(t)?;
        }
        let others = self.others(&group)?;
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(&group);
        self.admit(key, now_ms)?;
        for m in others {
            self.enqueue(m, change(Conv::Group(group), id, text), now_ms)?;
        }
        Ok(self.changed(id, text, now_ms))
    }

    fn changed(&self, id: [u8; 16], text: Option<&str>, now_ms: u64) -> Changed {
        Changed {
            id,
            from: self.me,
            text: text.map(str::to_owned),
            sent_ms: now_ms,
        }
    }

    /// A change whose turn has come in the stream from `from`.
    pub(super) fn deliver_change(
        &mut self,
        from: [u8; 32],
        conv: Conv,
        id: [u8; 16],
        text: Option<String>,
        sent_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        if self.blocked.contains(&from) {
            self.count(crate::Dropped::Blocked);
            return;
        }
        if let Conv::Group(g) = conv
            && !self.groups.contains_key(&g)
        {
            self.count(crate::Dropped::NotMember);
            return;
        }
        actions.push(Action::Change(Changed {
            id,
            from,
            text: text.map(|t| crate::text::sanitize(&t).into_owned()),
            sent_ms,
        }));
    }
}

fn change(conv: Conv, id: [u8; 16], text: Option<&str>) -> Body {
    Body::Change {
        conv,
        id,
        text: text.map(str::to_owned),
    }
}
