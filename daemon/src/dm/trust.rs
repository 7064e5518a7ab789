//! Whom a direct message goes to: the account the DHT's holders name for the nickname
//! (`People::resolve`), checked against the conversation's binding (`contacts.rs`, trust on
//! first use) — a changed key never silently receives the next message — and the safety
//! numbers people compare (`chatctl verify`).

use std::sync::Arc;

use super::contacts::{self, Binding, Contact, Contacts, Marks};
use super::{Dm, Message, PrivateError, row_of, send_and_tick};
use crate::offload::{Offload, Work};
use crate::people::Who;
use crate::people::names::Resolved;
use crate::records::unix_ms;

/// What `chatctl verify` shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    /// The caller's account.
    pub own: [u8; 32],
    /// The account the name stands for now.
    pub account: [u8; 32],
    /// The name shown for it.
    pub shown: String,
    /// The safety number of both keys.
    pub number: String,
    /// Confirmed (now or before) for this key.
    pub verified: bool,
    /// The conversation is bound to this key under the name (`None`: not bound yet).
    pub bound: Option<[u8; 32]>,
}

impl Verification {
    /// The name stands for another key than the conversation is bound to.
    pub fn key_changed(&self) -> bool {
        self.bound.is_some_and(|b| b != self.account)
    }
}

/// Whether a message may go to `key`, bound as `bound` under its name: `Ok(true)` when the
/// binding is to be written (a first message, or a new key the sender accepted), `Ok(false)`
/// when it stands; `Err(old)`, the bound key, when the key changed and the sender did not
/// accept it.
pub fn admit(
    bound: Option<&Contact>,
    key: &[u8; 32],
    accept_new_key: bool,
) -> Result<bool, [u8; 32]> {
    match contacts::check(bound, key) {
        Binding::New => Ok(true),
        Binding::Same => Ok(false),
        Binding::Changed(_) if accept_new_key => Ok(true),
        Binding::Changed(old) => Err(old),
    }
}

impl Dm {
    /// The account `nick` stands for now (the DHT's holders), or why none.
    async fn recipient(&self, nick: &str) -> Result<Resolved, PrivateError> {
        let nick = nick.trim();
        self.people
            .resolve(nick)
            .await?
            .ok_or_else(|| PrivateError::UnknownNick(nick.to_owned()))
    }

    /// The caller's outgoing message to the person `nick` stands for. Refused with
    /// [`PrivateError::KeyChanged`] when the conversation is bound to another key, unless
    /// `accept_new_key` (then the new key is bound).
    pub async fn send_to(
        self: &Arc<Self>,
        who: Who,
        nick: &str,
        text: &str,
        accept_new_key: bool,
    ) -> Result<Message, PrivateError> {
        self.send_to_with(who, nick, text, None, accept_new_key)
            .await
    }

    /// [`Dm::send_to`] with a private file's reference `file` (`files::private`).
    pub async fn send_to_with(
        self: &Arc<Self>,
        who: Who,
        nick: &str,
        text: &str,
        file: Option<Vec<u8>>,
        accept_new_key: bool,
    ) -> Result<Message, PrivateError> {
        let (account, signer) = self.account(who)?;
        let target = self.recipient(nick).await?;
        // The binding's check, the engine and the store block: on the blocking pool.
        let (dm, nick, text) = (self.clone(), nick.to_owned(), text.to_owned());
        Offload::shared()
            .run(Work::Private, move || -> Result<Message, PrivateError> {
                let to = target.account;
                let rebind = match &target.name {
                    Some(name) => {
                        let bound = dm.store().contact(&account, name)?;
                        admit(bound.as_ref(), &to, accept_new_key).map_err(|old| {
                            PrivateError::KeyChanged {
                                name: nick.trim().trim_start_matches('@').to_owned(),
                                old: hex::encode(&old[..4]),
                                new: hex::encode(&to[..4]),
                            }
                        })?
                    }
                    None => false,
                };
                let shown = dm.act(&signer, |e, now| {
                    send_and_tick(e, now, |e| e.send_with(to, &text, file, now))
                })??;
                if rebind && let Some(name) = &target.name {
                    dm.store().bind(&account, name, &to, unix_ms(), false)?;
                }
                Ok(Message {
                    account,
                    row: row_of(&shown),
                })
            })
            .await?
    }

    /// The safety number of the caller and the person `nick` stands for; `confirm` marks it
    /// verified (binding the conversation to that key, a new one included).
    pub async fn verify(
        self: &Arc<Self>,
        who: Who,
        nick: &str,
        confirm: bool,
    ) -> Result<Verification, PrivateError> {
        let (own, _) = self.account(who)?;
        let target = self.recipient(nick).await?;
        let Some(name) = target.name else {
            return Err(PrivateError::VerifyByName(nick.trim().to_owned()));
        };
        let dm = self.clone();
        let account = target.account;
        let bound = Offload::shared()
            .run(Work::Private, move || -> Result<_, PrivateError> {
                if confirm {
                    dm.store().bind(&own, &name, &account, unix_ms(), true)?;
                }
                Ok(dm.store().contact(&own, &name)?)
            })
            .await??;
        Ok(Verification {
            own,
            account: target.account,
            shown: self.people.display_account(&target.account),
            number: contacts::safety_number(&own, &target.account),
            verified: bound
                .as_ref()
                .is_some_and(|c| c.peer == target.account && c.verified),
            bound: bound.map(|c| c.peer),
        })
    }

    /// A direct message from `from` reached `account`: bind the conversation under the
    /// sender's name if the DHT names it as that name's holder and the name is not bound yet.
    pub(super) fn bind_received(&self, account: &[u8; 32], from: &[u8; 32]) {
        let Some(name) = self.people.confirmed_name(from) else {
            return;
        };
        if let Err(e) = self.store().bind_if_new(account, &name, from, unix_ms()) {
            tracing::warn!(error = %e, "could not bind a conversation to its key");
        }
    }

    /// `account`'s bindings, for marking people and messages.
    pub fn contacts(&self, account: &[u8; 32]) -> Contacts {
        self.store().contacts(account).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "could not read the conversations' bindings");
            Contacts::default()
        })
    }

    /// The marks of `peer` for `account` (from `contacts`).
    pub fn marks(&self, contacts: &Contacts, peer: &[u8; 32]) -> Marks {
        contacts.marks(self.people.nick_key(peer).as_deref(), peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(peer: [u8; 32]) -> Contact {
        Contact {
            name: "alice".into(),
            peer,
            since_ms: 1,
            verified: true,
            previous: None,
        }
    }

    #[test]
    fn a_changed_key_is_refused_without_confirmation_and_taken_with_it() {
        let (alice, mallory) = ([1u8; 32], [6u8; 32]);
        // The first message binds; the same key again changes nothing.
        assert_eq!(admit(None, &alice, false), Ok(true));
        assert_eq!(admit(Some(&bound(alice)), &alice, false), Ok(false));
        assert_eq!(admit(Some(&bound(alice)), &alice, true), Ok(false));
        // Another key behind the name: refused, naming the bound key...
        assert_eq!(admit(Some(&bound(alice)), &mallory, false), Err(alice));
        // ...until the sender accepts it, which rebinds.
        assert_eq!(admit(Some(&bound(alice)), &mallory, true), Ok(true));
        assert_eq!(admit(Some(&bound(mallory)), &mallory, false), Ok(false));
        assert_eq!(admit(Some(&bound(mallory)), &alice, false), Err(mallory));
    }
}
