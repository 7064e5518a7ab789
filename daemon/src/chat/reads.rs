//! Reads: a stored message, pages of history after or before a position (committed rows from
//! the reader's connection, the newest uncommitted from the writer's or the store thread's
//! pending ones), the backlog a subscription starts with, subscriptions, search, rooms and the
//! stored people events.

use tokio::sync::mpsc;

use super::queries::{self, Rows};
use super::{
    Chat, ChatError, ChatMessage, FeedEvent, MAX_PEOPLE_EVENTS, MessageId, Room, Start, Stored,
    pipeline, search, store, subscription,
};

impl Chat {
    /// The stored people events, oldest first (at most [`MAX_PEOPLE_EVENTS`], the newest).
    pub fn people_events(&self) -> Result<Vec<ChatMessage>, ChatError> {
        let rows = match &self.inner.reader {
            Some(r) => queries::people_events(
                &r.lock().unwrap_or_else(|p| p.into_inner()).db,
                MAX_PEOPLE_EVENTS,
            ),
            None => self.state().store.people_events(MAX_PEOPLE_EVENTS),
        }?;
        Ok(rows.into_iter().map(|s| s.message).collect())
    }

    /// The stored message `id` as it stands now (edited, or deleted), if stored.
    pub fn find(&self, id: &MessageId) -> Result<Option<Stored>, ChatError> {
        let Some(p) = self.inner.pipeline.get() else {
            return Ok(self.state().store.find(id)?);
        };
        if let Some(s) = p.find(id) {
            return Ok(Some(s));
        }
        match &self.inner.reader {
            Some(r) => Ok(queries::by(
                &r.lock().unwrap_or_else(|p| p.into_inner()).db,
                "m.id",
                &id.0[..],
            )?),
            None => Ok(self.state().store.find(id)?),
        }
    }

    /// Messages matching `s`, newest first (committed ones: a message is searchable once
    /// the indexer's next pass has seen it, within about a second). `None` for a history
    /// kept in memory, which has no index.
    pub fn search(&self, s: &search::Search<'_>) -> Result<Option<Vec<Stored>>, ChatError> {
        let Some(reader) = &self.inner.reader else {
            return Ok(None);
        };
        let r = reader.lock().unwrap_or_else(|p| p.into_inner());
        Ok(Some(search::query(&r.db, s)?))
    }

    /// Starts a subscription to `room` (all rooms if `None`). Returns `Ok(None)` when
    /// `chat.max_subscribers` subscriptions are open.
    pub fn subscribe(
        &self,
        room: Option<Room>,
        start: Start,
    ) -> Result<Option<mpsc::Receiver<FeedEvent>>, ChatError> {
        let Ok(permit) = self.inner.subscriptions.clone().try_acquire_owned() else {
            return Ok(None);
        };
        subscription::spawn(self.clone(), room, start, permit).map(Some)
    }

    /// The local position of message `id`, if stored.
    pub fn position(&self, id: &MessageId) -> Result<Option<i64>, ChatError> {
        if self.pipelined() {
            return Ok(self.find(id)?.map(|s| s.pos));
        }
        Ok(self.state().store.position(id)?)
    }

    /// A page of history on the reader's connection (never the writer's lock), or on the
    /// writer's for an in-memory history: after `bound` (oldest first) or, with `after` false,
    /// the newest before it.
    fn page(
        &self,
        bound: i64,
        room: Option<&Room>,
        limit: usize,
        after: Option<Rows>,
    ) -> Result<Vec<Stored>, ChatError> {
        let rows = match &self.inner.reader {
            Some(r) => {
                let r = r.lock().unwrap_or_else(|p| p.into_inner());
                match after {
                    Some(rows) => queries::after(&r.db, bound, room, limit, rows),
                    None => queries::before(&r.db, bound, room, limit),
                }
            }
            None => {
                let state = self.state();
                match after {
                    Some(rows) => state.store.after_rows(bound, room, limit, rows),
                    None => state.store.before(bound, room, limit),
                }
            }
        };
        Ok(rows?)
    }

    /// Up to `limit` messages after position `after`, oldest first. Committed rows come from
    /// the reader's connection ([`reader`]); the last few that the ring's group commit has not
    /// committed yet (at most `store::MAX_BATCH`, the newest) from the writer's, in a short
    /// indexed read.
    pub fn after(
        &self,
        after: i64,
        room: Option<&Room>,
        limit: usize,
    ) -> Result<Vec<Stored>, ChatError> {
        self.after_rows(after, room, limit, Rows::History)
    }

    /// [`Chat::after`] with the edits and deletes a subscription replays.
    pub fn feed_after(
        &self,
        after: i64,
        room: Option<&Room>,
        limit: usize,
    ) -> Result<Vec<Stored>, ChatError> {
        self.after_rows(after, room, limit, Rows::Feed)
    }

    pub(super) fn after_rows(
        &self,
        after: i64,
        room: Option<&Room>,
        limit: usize,
        which: Rows,
    ) -> Result<Vec<Stored>, ChatError> {
        if let Some(p) = self.inner.pipeline.get() {
            // Pending first: one committed meanwhile is in the committed rows read after.
            let pending = p.after(after, room, limit, which);
            let rows = self.page(after, room, limit, Some(which))?;
            let mut rows = pipeline::merge(rows, pending);
            rows.truncate(limit);
            return Ok(rows);
        }
        let mut rows = self.page(after, room, limit, Some(which))?;
        if rows.len() < limit && self.inner.reader.is_some() {
            // Every committed row after `after` is in `rows`: what follows is newer.
            let from = rows.last().map_or(after, |s| s.pos);
            let more = self
                .state()
                .store
                .after_rows(from, room, limit - rows.len(), which)?;
            rows.extend(more);
        }
        Ok(rows)
    }

    /// Up to `limit` newest messages before position `before`, oldest first: the uncommitted
    /// newest from the writer's connection, the rest from the reader's (as [`Chat::after`]).
    pub fn before(
        &self,
        before: i64,
        room: Option<&Room>,
        limit: usize,
    ) -> Result<Vec<Stored>, ChatError> {
        if self.inner.reader.is_none() {
            return self.page(before, room, limit, None);
        }
        if let Some(p) = self.inner.pipeline.get() {
            let pending = p.before(before, room, limit);
            let rows = self.page(before, room, limit, None)?;
            let rows = pipeline::merge(rows, pending);
            let extra = rows.len().saturating_sub(limit);
            return Ok(rows.into_iter().skip(extra).collect());
        }
        // Rows after the committed head are the group commit's (or committed since).
        let head = self.committed_head()?;
        let newest = self.state().store.between(head, before, room, limit)?;
        if newest.len() >= limit {
            return Ok(newest);
        }
        let mut rows = self.page(before.min(head + 1), room, limit - newest.len(), None)?;
        rows.extend(newest);
        Ok(rows)
    }

    /// The newest committed position (0 when empty).
    fn committed_head(&self) -> Result<i64, ChatError> {
        Ok(self
            .page(i64::MAX, None, 1, None)?
            .last()
            .map_or(0, |s| s.pos))
    }

    /// The newest position overall (0 when empty) and the newest `n` messages up to it. The
    /// head is read first: a message stored meanwhile lies after it and comes with the replay
    /// that follows.
    pub(super) fn backlog(
        &self,
        room: Option<&Room>,
        n: usize,
    ) -> Result<(i64, Vec<Stored>), ChatError> {
        let head = self.before(i64::MAX, None, 1)?.last().map_or(0, |s| s.pos);
        let backlog = if n == 0 || head == 0 {
            Vec::new()
        } else {
            self.before(head + 1, room, n)?
        };
        Ok((head, backlog))
    }

    /// Rooms with stored messages (committed ones; the reader's connection).
    pub fn rooms(&self) -> Result<Vec<store::RoomSummary>, ChatError> {
        match &self.inner.reader {
            Some(r) => Ok(queries::rooms(
                &r.lock().unwrap_or_else(|p| p.into_inner()).db,
            )?),
            None => Ok(self.state().store.rooms()?),
        }
    }
}
