//! Group operations of the engine: create, add, remove, leave, send; and the group states
//! and departures that arrive from other members.

use super::{Action, Engine, Group, Shown, check_text_with};
use crate::group::{GroupState, MAX_NAME, SignedGroup, group_id};
use crate::payload::{Body, Conv, Payload};
use crate::{DmError, Dropped, MAX_GROUP_MEMBERS, MAX_GROUPS};

impl Engine {
    /// The groups this account is in.
    pub fn groups(&self) -> Vec<GroupState> {
        self.groups
            .values()
            .filter(|g| !g.left)
            .map(|g| g.state.clone())
            .collect()
    }

    /// A group of this account's.
    pub fn group(&self, id: &[u8; 16]) -> Option<&GroupState> {
        self.groups.get(id).filter(|g| !g.left).map(|g| &g.state)
    }

    /// Creates a group named `name` with `members` (this account added).
    pub fn create_group(
        &mut self,
        name: &str,
        members: &[[u8; 32]],
        now_ms: u64,
    ) -> Result<GroupState, DmError> {
        if name.trim().is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
            return Err(DmError::GroupLimit(format!(
                "a group name is 1 to {MAX_NAME} bytes without control characters"
            )));
        }
        if self.groups.values().filter(|g| !g.left).count() >= MAX_GROUPS {
            return Err(DmError::GroupLimit(format!(
                "an account is in at most {MAX_GROUPS} groups"
            )));
        }
        let nonce = crate::random::<16>();
        let mut state = GroupState {
            id: group_id(&self.me, &nonce),
            nonce,
            creator: self.me,
            version: 1,
            name: name.to_owned(),
            members: Vec::new(),
        };
        let mut all = members.to_vec();
        all.push(self.me);
        state.set_members(all);
        if state.members.len() > MAX_GROUP_MEMBERS {
            return Err(DmError::GroupLimit(format!(
                "a group has at most {MAX_GROUP_MEMBERS} members"
            )));
        }
        self.publish_state(state.clone(), &[], now_ms)?;
        Ok(state)
    }

    /// Adds (`add`) or removes members; only the creator may.
    pub fn change_members(
        &mut self,
        id: &[u8; 16],
        add: &[[u8; 32]],
        remove: &[[u8; 32]],
        now_ms: u64,
    ) -> Result<GroupState, DmError> {
        let g = self
            .groups
            .get(id)
            .filter(|g| !g.left)
            .ok_or(DmError::NoGroup)?;
        if g.state.creator != self.me {
            return Err(DmError::NotAllowed(
                "only the group's creator adds or removes members".into(),
            ));
        }
        if remove.contains(&self.me) {
            return Err(DmError::NotAllowed(
                "the creator leaves a group rather than removing itself".into(),
            ));
        }
        let mut state = g.state.clone();
        let before = state.member_keys();
        let mut members: Vec<[u8; 32]> = before
            .iter()
            .filter(|m| !remove.contains(m))
            .copied()
            .collect();
        members.extend_from_slice(add);
        state.set_members(members);
        if state.members.len() > MAX_GROUP_MEMBERS {
            return Err(DmError::GroupLimit(format!(
                "a group has at most {MAX_GROUP_MEMBERS} members"
            )));
        }
        state.version += 1;
        let gone: Vec<[u8; 32]> = before.into_iter().filter(|m| !state.has(m)).collect();
        self.publish_state(state.clone(), &gone, now_ms)?;
        Ok(state)
    }

    /// Signs `state`, keeps it, and sends it to its members and to `gone`.
    fn publish_state(
        &mut self,
        state: GroupState,
        gone: &[[u8; 32]],
        now_ms: u64,
    ) -> Result<(), DmError> {
        let signed = state.sign(&self.signer);
        let to: Vec<[u8; 32]> = state
            .member_keys()
            .into_iter()
            .chain(gone.iter().copied())
            .filter(|m| *m != self.me)
            .collect();
        for m in &to {
            self.enqueue(*m, Body::Group(signed.clone()), now_ms)?;
        }
        self.groups.insert(
            state.id,
            Group {
                state,
                signed,
                left: false,
            },
        );
        self.core_dirty = true;
        Ok(())
    }

    /// The members of group `id` (one this account is in) other than this account.
    pub(super) fn others(&self, id: &[u8; 16]) -> Result<Vec<[u8; 32]>, DmError> {
        let g = self
            .groups
            .get(id)
            .filter(|g| !g.left)
            .ok_or(DmError::NoGroup)?;
        Ok(g.state
            .member_keys()
            .into_iter()
            .filter(|m| *m != self.me)
            .collect())
    }

    /// Leaves a group: the other members are told.
    pub fn leave_group(&mut self, id: &[u8; 16], now_ms: u64) -> Result<(), DmError> {
        let others = self.others(id)?;
        for m in others {
            self.enqueue(m, Body::Leave { group: *id }, now_ms)?;
        }
        if let Some(g) = self.groups.get_mut(id) {
            g.left = true;
        }
        self.core_dirty = true;
        Ok(())
    }

    /// Sends `text` to every other member of group `id`.
    pub fn send_group(&mut self, id: &[u8; 16], text: &str, now_ms: u64) -> Result<Shown, DmError> {
        self.send_group_with(id, text, None, now_ms)
    }

    /// Sends `text` with a private file's reference `file` (opaque here) to every other
    /// member of group `id`.
    pub fn send_group_with(
        &mut self,
        id: &[u8; 16],
        text: &str,
        file: Option<Vec<u8>>,
        now_ms: u64,
    ) -> Result<Shown, DmError> {
        check_text_with(text, file.as_deref())?;
        let others = self.others(id)?;
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(id);
        self.admit(key, now_ms)?;
        let nonce = crate::random::<16>();
        for m in others {
            self.enqueue(
                m,
                Body::Text {
                    conv: Conv::Group(*id),
                    nonce,
                    text: text.to_owned(),
                    file: file.clone(),
                },
                now_ms,
            )?;
        }
        Ok(Shown {
            id: crate::message_id(&self.me, &nonce),
            from: self.me,
            to: self.me,
            group: Some(*id),
            text: text.to_owned(),
            file,
            sent_ms: now_ms,
            outgoing: true,
        })
    }

    /// A group state arrived from `from`.
    pub(super) fn group_state(
        &mut self,
        from: [u8; 32],
        signed: SignedGroup,
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        let Some(state) = signed.open() else {
            self.count(Dropped::NotMember);
            return;
        };
        // Only the creator sends its group's states.
        if from != state.creator {
            self.count(Dropped::NotMember);
            return;
        }
        if let Some(g) = self.groups.get(&state.id)
            && g.state.version >= state.version
        {
            return;
        }
        let member = state.has(&self.me);
        if !member && !self.groups.contains_key(&state.id) {
            // Not ours and never was.
            self.count(Dropped::NotMember);
            return;
        }
        if member
            && !self.groups.contains_key(&state.id)
            && self.groups.values().filter(|g| !g.left).count() >= MAX_GROUPS
        {
            self.count(Dropped::HeldFull);
            return;
        }
        self.groups.insert(
            state.id,
            Group {
                state: state.clone(),
                signed,
                left: !member,
            },
        );
        self.core_dirty = true;
        actions.push(Action::Group(state.clone()));
        // Messages that came before the group's state.
        let (ready, keep): (Vec<Payload>, Vec<Payload>) =
            std::mem::take(&mut self.waiting).into_iter().partition(
                |p| matches!(p.body, Body::Text { conv: Conv::Group(g), .. } if g == state.id),
            );
        self.waiting = keep;
        for p in ready {
            self.deliver(p, now_ms, actions);
        }
    }

    /// `from` left group `id`.
    pub(super) fn group_leave(
        &mut self,
        from: [u8; 32],
        id: [u8; 16],
        now_ms: u64,
        actions: &mut Vec<Action>,
    ) {
        let Some(g) = self.groups.get_mut(&id) else {
            self.count(Dropped::NotMember);
            return;
        };
        if !g.state.has(&from) {
            self.count(Dropped::NotMember);
            return;
        }
        let mut state = g.state.clone();
        let rest: Vec<[u8; 32]> = state
            .member_keys()
            .into_iter()
            .filter(|m| *m != from)
            .collect();
        state.set_members(rest);
        if state.creator == self.me && !g.left {
            state.version += 1;
            if self.publish_state(state.clone(), &[], now_ms).is_err() {
                // Over a backlog bound: the members learn of it with the next change.
                self.count(Dropped::HeldFull);
            }
        } else {
            // Until the creator's new state: this member no longer counts.
            g.state = state.clone();
            self.core_dirty = true;
        }
        actions.push(Action::Group(state));
    }
}
