//! How the people service does what its presence engine (`chat_people::Engine`) decides: an
//! event's put into its presence epoch through the records layer (a mailbox item under the
//! epoch's key, its value the event behind `chat_people::engine::ITEM_CONTEXT`, bounded by
//! `PUT_WAIT_MS`), an event broadcast on its own, an ended epoch's batch broadcast by the node
//! that holds it, a vanished neighbour's users reported offline. Which epoch, when to put
//! again or go alone, which epochs this node broadcasts and whom it reports are the engine's
//! decisions, the same code the simulator's presence scenario runs.

use std::time::Duration;

use chat_overlay::records::Kind as RecordKind;
use chat_people::engine::PUT_WAIT_MS;
use chat_people::{Action, Alone, Put};
use tracing::{debug, warn};

use super::event::Event;
use super::{People, PeopleError};
use crate::overlay::OverlayHandle;
use crate::records::unix_ms;

impl People {
    /// Publishes a people event (`line`: how it reads here) through its epoch.
    pub(super) async fn publish_event(
        &self,
        ring: &OverlayHandle,
        bytes: Vec<u8>,
        line: String,
    ) -> Result<(), PeopleError> {
        let first = self.engine().publish(bytes, line, unix_ms());
        self.carry(ring, first).await
    }

    /// Does `first` of the engine's actions and those it leads to (a put's answer, a report's
    /// event); fails if an event to broadcast on its own could not be.
    pub(super) async fn carry(
        &self,
        ring: &OverlayHandle,
        first: Action,
    ) -> Result<(), PeopleError> {
        let mut next = Some(first);
        while let Some(action) = next.take() {
            next = match action {
                Action::Put(put) => self.put_item(put).await,
                Action::Broadcast { publication, why } => {
                    match why {
                        Alone::NeverBatched => warn!(
                            "a people event never came back in a batch; broadcasting it alone"
                        ),
                        Alone::Overflow => {
                            debug!(
                                "too many people events wait for their batch; broadcasting the oldest alone"
                            )
                        }
                        Alone::PutFailed | Alone::Direct => {}
                    }
                    self.broadcast_direct(ring, publication.event, publication.note)
                        .await?;
                    None
                }
                Action::Batch { epoch, items } => {
                    let n = items.len();
                    let line = self.apply_batch(&items, true);
                    let bytes = Event::Batch(items).encode();
                    if let Err(e) = self.broadcast_direct(ring, bytes, line).await {
                        warn!(epoch, items = n, error = %e, "could not broadcast a presence batch");
                    }
                    None
                }
                Action::ReportDown(dead) => self.report_down(dead),
            };
        }
        Ok(())
    }

    /// Puts an epoch's item; answers what the engine makes of the answer.
    async fn put_item(&self, put: Put) -> Option<Action> {
        let Put {
            key,
            value,
            ttl_ms,
            publication,
            ..
        } = put;
        if publication.tries > 1 {
            debug!(
                tries = publication.tries - 1,
                "a people event did not come back in its batch; putting it again"
            );
        }
        let put = self.records.put(
            RecordKind::Mailbox,
            key.to_vec(),
            Some(value),
            Duration::from_millis(ttl_ms),
        );
        match tokio::time::timeout(Duration::from_millis(PUT_WAIT_MS), put).await {
            Ok(Ok((record, _))) => self
                .engine()
                .put_done(publication, record.hash(), unix_ms()),
            Ok(Err(e)) => {
                debug!(error = %e, "could not put a people event into its epoch; broadcasting it alone");
                Some(self.engine().put_failed(publication))
            }
            Err(_) => {
                debug!(
                    "putting a people event into its epoch took too long; broadcasting it alone"
                );
                Some(self.engine().put_failed(publication))
            }
        }
    }

    /// Broadcasts one event on its own.
    pub(super) async fn broadcast_direct(
        &self,
        ring: &OverlayHandle,
        bytes: Vec<u8>,
        line: String,
    ) -> Result<(), PeopleError> {
        let chat = self.chat.clone();
        ring.originate(move |floor| {
            chat.number_above(floor);
            chat.send_event(&bytes, &line).map(|l| (l.seq, l.wire, ()))
        })
        .await
        .map_err(|e| PeopleError::Ring(e.to_string()))
    }
}
