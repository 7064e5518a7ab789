//! The receive path: items from the mailbox or delivered directly are unsealed, sorted so
//! that each Olm chain is decrypted in order, decrypted with the sender's session (a pre-key
//! message only against the curve key of the sender's verified bundle), checked to name
//! this sender and this recipient, and fed to the sender's stream. What the stream releases is
//! shown; each sender with something new gets one cumulative acknowledgement; every item taken
//! is removed from the mailbox (after the driver persisted the state).

use vodozemac::olm::{DecryptionError, OlmMessage, SessionConfig};

use super::{Action, Engine, Item, Shown};
use crate::payload::{Body, Conv, Payload};
use crate::stream::{Accepted, Status};
use crate::{Dropped, MAX_HELD_PER_PEER};

/// Group messages waiting for their group's state.
const MAX_WAITING: usize = 256;

struct Opened {
    sender: [u8; 32],
    prekey: bool,
    chain: u64,
    msg: OlmMessage,
    raw: Vec<u8>,
}

impl Engine {
    /// Takes items (a mailbox item's hash, and the sealed value).
    pub fn receive(&mut self, items: Vec<Item>, now_ms: u64) -> Vec<Action> {
        let mut actions = Vec::new();
        let mut remove = Vec::new();
        let mut opened = Vec::new();
        for (hash, value) in items {
            match self.open(&value) {
                Ok(o) => opened.push((hash, o)),
                Err(d) => {
                    self.count(d);
                    remove.extend(hash);
                }
            }
        }
        // Each chain in order (pre-key messages first: they make the session).
        opened.sort_by_key(|(_, o)| (o.sender, !o.prekey, o.chain));
        for (hash, o) in opened {
            match self.decrypt(hash, &o, now_ms) {
                Ok(Some(payload)) => self.take(payload, now_ms, &mut actions),
                Ok(None) => {
                    // Waits for the sender's bundle: the item stays in the mailbox.
                    continue;
                }
                Err(d) => self.count(d),
            }
            remove.extend(hash);
        }
        self.start_fetches(now_ms, &mut actions);
        let owed: Vec<[u8; 32]> = self
            .peers
            .iter()
            .filter(|(_, p)| p.ack_owed)
            .map(|(k, _)| *k)
            .collect();
        for to in owed {
            let Some(p) = self.peers.get_mut(&to) else {
                continue;
            };
            p.ack_owed = false;
            let ack = Payload {
                from: self.me,
                to,
                seq: 0,
                floor: p.out.floor(),
                sent_ms: now_ms,
                body: Body::Ack { upto: p.inn.upto() },
            };
            if let Some(value) = self.encrypt(&to, &ack) {
                actions.push(Action::Send(super::Outgoing {
                    to,
                    seq: 0,
                    value,
                    mailbox: false,
                    direct_only: false,
                    expires_ms: now_ms + super::ITEM_LIFE_MS,
                }));
            }
        }
        if !remove.is_empty() {
            actions.push(Action::Remove(remove));
        }
        actions
    }

    fn open(&self, value: &[u8]) -> Result<Opened, Dropped> {
        let inner = self.keys.open(value, &self.me)?;
        let msg = OlmMessage::from_parts(inner.olm_type as usize, &inner.olm)
            .map_err(|_| Dropped::Malformed)?;
        let (prekey, chain) = match &msg {
            OlmMessage::PreKey(m) => (true, m.message().chain_index()),
            OlmMessage::Normal(m) => (false, m.chain_index()),
        };
        Ok(Opened {
            sender: inner.sender,
            prekey,
            chain,
            msg,
            raw: value.to_vec(),
        })
    }

    /// The payload of `o` (the mailbox item `hash`, if from the mailbox), `None` if it must
    /// wait for the sender's bundle. The sender `o` names is only claimed until a session
    /// decrypts it: nothing is kept for it before that but its place in the one bounded queue
    /// of waiting items (`waiting.rs`).
    fn decrypt(
        &mut self,
        hash: Option<chat_overlay::records::Hash>,
        o: &Opened,
        now_ms: u64,
    ) -> Result<Option<Payload>, Dropped> {
        if o.sender == self.me {
            return Err(Dropped::Misaddressed);
        }
        let mut plain = None;
        let mut replay = false;
        let mut bundle_curve = None;
        if let Some(peer) = self.peers.get_mut(&o.sender) {
            bundle_curve = peer.bundle.as_ref().map(|b| b.olm_curve25519);
            for i in 0..peer.sessions.len() {
                if let OlmMessage::PreKey(m) = &o.msg
                    && m.session_id() != peer.sessions[i].session_id()
                {
                    continue;
                }
                match peer.sessions[i].decrypt(&o.msg) {
                    Ok(p) => {
                        let s = peer.sessions.remove(i);
                        peer.sessions.insert(0, s);
                        plain = Some(p);
                        break;
                    }
                    Err(DecryptionError::MissingMessageKey(_)) => replay = true,
                    Err(_) => {}
                }
            }
        }
        if plain.is_none()
            && let OlmMessage::PreKey(m) = &o.msg
            && !replay
        {
            let Some(curve) = bundle_curve else {
                let pushed = self.unbundled.push(o.sender, hash, &o.raw, now_ms);
                self.count_n(Dropped::WaitEvicted, pushed.evicted);
                if pushed.duplicate {
                    self.count(Dropped::Replay);
                }
                return Ok(None);
            };
            if m.identity_key().to_bytes() != curve {
                return Err(Dropped::NoBundle);
            }
            let created = self
                .keys
                .olm()
                .create_inbound_session(SessionConfig::version_1(), m.identity_key(), m)
                .map_err(|_| Dropped::Undecryptable)?;
            let peer = self.peers.get_mut(&o.sender).ok_or(Dropped::Malformed)?;
            peer.sessions.insert(0, created.session);
            peer.sessions.truncate(super::MAX_SESSIONS);
            plain = Some(created.plaintext);
            self.core_dirty = true;
        }
        let plain = plain.ok_or(if replay {
            Dropped::Replay
        } else {
            Dropped::Undecryptable
        })?;
        self.dirty.insert(o.sender);
        let payload = Payload::decode(&plain).ok_or(Dropped::Malformed)?;
        if payload.from != o.sender || payload.to != self.me {
            return Err(Dropped::Misaddressed);
        }
        Ok(Some(payload))
    }

    /// A decrypted payload from `payload.from`.
    fn take(&mut self, payload: Payload, now_ms: u64, actions: &mut Vec<Action>) {
        let from = payload.from;
        let Some(peer) = self.peers.get_mut(&from) else {
            return;
        };
        if let Body::Ack { upto } = payload.body {
            match peer.out.ack(upto) {
                None => self.count(Dropped::BadAck),
                Some(done) => {
                    for (_, p) in done {
                        if let Body::Text { nonce, .. } = p.body {
                            actions.push(Action::Status {
                                id: crate::message_id(&self.me, &nonce),
                                to: from,
                                status: Status::Delivered,
                            });
                        }
                    }
                }
            }
            return;
        }
        if payload.seq == 0 {
            self.count(Dropped::Malformed);
            return;
        }
        peer.ack_owed = true;
        match peer.inn.accept(payload, MAX_HELD_PER_PEER) {
            Accepted::Duplicate | Accepted::Held => {}
            Accepted::Full => self.count(Dropped::HeldFull),
            Accepted::Ready(ready) => {
                for p in ready {
                    self.deliver(p, now_ms, actions);
                }
            }
        }
    }

    /// A payload whose turn has come.
    pub(super) fn deliver(&mut self, p: Payload, now_ms: u64, actions: &mut Vec<Action>) {
        let blocked = self.blocked.contains(&p.from);
        match p.body {
            Body::Text {
                conv,
                nonce,
                text,
                file,
            } => {
                if blocked {
                    self.count(Dropped::Blocked);
                    return;
                }
                let group = match conv {
                    Conv::Direct => None,
                    Conv::Group(g) => match self.groups.get(&g) {
                        Some(gr) if !gr.left && gr.state.has(&p.from) => Some(g),
                        Some(_) => {
                            self.count(Dropped::NotMember);
                            return;
                        }
                        None => {
                            if self.waiting.len() < MAX_WAITING {
                                self.waiting.push(Payload {
                                    body: Body::Text {
                                        conv,
                                        nonce,
                                        text,
                                        file,
                                    },
                                    ..p
                                });
                                self.core_dirty = true;
                            } else {
                                self.count(Dropped::HeldFull);
                            }
                            return;
                        }
                    },
                };
                actions.push(Action::Show(Shown {
                    id: crate::message_id(&p.from, &nonce),
                    from: p.from,
                    to: self.me,
                    group,
                    // The sender's engine refuses control characters; another's may not.
                    text: crate::text::sanitize(&text).into_owned(),
                    // Bounded as the sender's engine bounds it; parsed by the daemon.
                    file: file.filter(|f| f.len() <= crate::payload::MAX_FILE_REF),
                    sent_ms: p.sent_ms,
                    outgoing: false,
                }));
            }
            Body::Change { conv, id, text } => {
                self.deliver_change(p.from, conv, id, text, p.sent_ms, actions)
            }
            Body::Group(signed) => self.group_state(p.from, signed, now_ms, actions),
            Body::Leave { group } => self.group_leave(p.from, group, now_ms, actions),
            Body::Ack { .. } => {}
        }
    }
}
