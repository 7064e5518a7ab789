//! One subscription: replay from the store, then live messages from the hub, with lag
//! detection.
//!
//! A subscription first sends what it was asked for from the store (the last N messages, or
//! everything after a given message; [`Chat::after`] reads committed rows on the reader's
//! connection and only the uncommitted newest on the writer's), then switches to the hub
//! without gap or duplicate: it subscribes to the hub, reads the store once more, and from
//! then on skips hub messages it already sent (by local position). Events go into a small bounded channel that the client
//! drains; if the client reads too slowly, the hub's buffer overflows for this subscriber only,
//! and the subscription sends [`FeedEvent::Lagged`] with the last message it delivered, then ends.
//! The task also ends when the client goes away.
//!
//! Every read of the store runs on the blocking pool ([`crate::offload`], kind
//! [`Work::Read`]), never on the async worker the task runs on; `spawn` itself reads (the
//! backlog), so its callers run it there too.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, broadcast, mpsc};

use super::envelope::MessageId;
use super::room::Room;
use super::store::Stored;
use super::{Chat, ChatError};
use crate::offload::{Offload, OffloadError, Work};

/// Events buffered per subscription before the task waits for the client.
pub const CHANNEL_CAPACITY: usize = 32;
/// Rows read from the store at a time while replaying.
const PAGE: usize = 256;

/// Where a subscription starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// The last `n` stored messages (0: only new ones).
    Backlog(usize),
    /// Everything stored after this message (its id and local position).
    After { id: MessageId, pos: i64 },
}

/// What a subscriber receives.
#[derive(Clone, Debug)]
pub enum FeedEvent {
    /// A message.
    Message(Arc<Stored>),
    /// The subscriber fell behind and missed up to `missed` messages; resume after
    /// `resume_after` (`None`: nothing was delivered, start again the same way). Last event.
    Lagged {
        /// How many hub entries were skipped (counting every room).
        missed: u64,
        /// The last message delivered.
        resume_after: Option<MessageId>,
    },
}

struct Task {
    chat: Chat,
    room: Option<Room>,
    tx: mpsc::Sender<FeedEvent>,
    last_pos: i64,
    last_id: Option<MessageId>,
}

/// Client went away.
struct Gone;

/// Why a subscription ended early.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error(transparent)]
    Store(#[from] ChatError),
    #[error(transparent)]
    Offload(#[from] OffloadError),
}

/// Starts a subscription task and returns its event channel.
///
/// `Start::Backlog` is resolved here, before returning, so that a message published after this
/// call is never mistaken for backlog.
pub(super) fn spawn(
    chat: Chat,
    room: Option<Room>,
    start: Start,
    permit: OwnedSemaphorePermit,
) -> Result<mpsc::Receiver<FeedEvent>, ChatError> {
    let initial = match start {
        Start::After { id, pos } => Initial::After { id, pos },
        Start::Backlog(n) => {
            let (head, backlog) = chat.backlog(room.as_ref(), n)?;
            Initial::Backlog { head, backlog }
        }
    };
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    tokio::spawn(async move {
        let _permit = permit;
        let mut task = Task {
            chat,
            room,
            tx,
            last_pos: 0,
            last_id: None,
        };
        if let Err(e) = task.run(initial).await {
            tracing::warn!(error = %e, "subscription ended by a store error");
        }
    });
    Ok(rx)
}

enum Initial {
    After { id: MessageId, pos: i64 },
    Backlog { head: i64, backlog: Vec<Stored> },
}

impl Task {
    async fn run(&mut self, initial: Initial) -> Result<(), Ended> {
        match initial {
            Initial::After { id, pos } => {
                self.last_pos = pos;
                self.last_id = Some(id);
            }
            Initial::Backlog { head, backlog } => {
                for stored in backlog {
                    if self.deliver(Arc::new(stored)).await.is_err() {
                        return Ok(());
                    }
                }
                self.last_pos = self.last_pos.max(head);
            }
        }
        if self.replay().await?.is_err() {
            return Ok(());
        }
        let mut hub = self.chat.hub_subscribe();
        if self.replay().await?.is_err() {
            return Ok(());
        }
        loop {
            let received = tokio::select! {
                () = self.tx.closed() => return Ok(()),
                r = hub.recv() => r,
            };
            match received {
                Ok(stored) => {
                    if self.deliver(stored).await.is_err() {
                        return Ok(());
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    let _ = self
                        .tx
                        .send(FeedEvent::Lagged {
                            missed,
                            resume_after: self.last_id,
                        })
                        .await;
                    return Ok(());
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            }
        }
    }

    /// Sends everything stored after `last_pos`. A page shorter than asked for held every
    /// row stored when it was read: the replay ends there, without another read.
    async fn replay(&mut self) -> Result<Result<(), Gone>, Ended> {
        loop {
            let (chat, room, from) = (self.chat.clone(), self.room.clone(), self.last_pos);
            // Owed: the subscription is open; its replay waits for a place rather than fail.
            let page = Offload::shared()
                .run_owed(Work::Read, move || {
                    chat.feed_after(from, room.as_ref(), PAGE)
                })
                .await??;
            let caught_up = page.len() < PAGE;
            for stored in page {
                if self.deliver(Arc::new(stored)).await.is_err() {
                    return Ok(Err(Gone));
                }
            }
            if caught_up {
                return Ok(Ok(()));
            }
        }
    }

    async fn deliver(&mut self, stored: Arc<Stored>) -> Result<(), Gone> {
        if stored.pos <= self.last_pos {
            return Ok(());
        }
        self.last_pos = stored.pos;
        if self
            .room
            .as_ref()
            .is_some_and(|r| *r != stored.message.room)
        {
            return Ok(());
        }
        self.last_id = Some(stored.message.id);
        self.tx
            .send(FeedEvent::Message(stored))
            .await
            .map_err(|_| Gone)?;
        self.chat.metrics().deliveries.inc();
        Ok(())
    }
}
