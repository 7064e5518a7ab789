//! Broadcasting a message of our own so that the client is told the truth.
//!
//! [`OverlayHandle::originate`] hands the driver a job that numbers, signs and stores the message.
//! The driver first asks the overlay whether it admits a broadcast now
//! ([`chat_overlay::Overlay::admits_broadcast`]: a member, not too many in flight, a token in
//! the node's own `ring.origin_rate` bucket). Only then does it run the job, and it feeds the
//! result to the overlay in the same turn, where nothing else can take the token in between.
//! So a message is stored, shown to local subscribers and answered "sent" exactly when the
//! overlay has taken it for broadcast; a refused message takes no sequence number and leaves
//! nothing behind, and the client hears why (with how long to wait for the rate).
//!
//! The job is given the highest number of this node's own that the ring is known to hold
//! ([`chat_overlay::Overlay::own_seq_floor`]) and numbers its message above it, so a node
//! whose history was lost never reuses a number (`docs/protocol.md`, "Own sequence numbers").
//! While a node that has just joined still learns that number from its neighbours (at most
//! three seconds), the driver holds the job and runs it once the overlay knows.

use std::time::Duration;

use chat_overlay::BroadcastError;
use tokio::sync::oneshot;

use super::{DriverCommand, OverlayHandle};

/// How long a send may wait for room in the driver's command queue.
const QUEUE_WAIT: Duration = Duration::from_secs(5);

/// Numbers (above the floor it is given), signs and stores the message; returns its sequence
/// number and payload, or `None` when it failed (its error went to the caller by another way).
pub(super) type Job = Box<dyn FnOnce(u64) -> Option<(u64, Vec<u8>)> + Send>;

/// Why [`OverlayHandle::originate`] did not broadcast.
#[derive(Debug, thiserror::Error)]
pub enum OriginateError<E> {
    /// The overlay refused the broadcast: nothing was stored.
    #[error(transparent)]
    Refused(BroadcastError),
    /// The job failed (its own error): nothing was broadcast.
    #[error(transparent)]
    Job(E),
    /// The overlay driver is not running, or did not take the job within a few seconds.
    #[error("the overlay driver is not running or not keeping up")]
    DriverGone,
}

impl OverlayHandle {
    /// Runs `job` on the driver if, and only if, the overlay admits a broadcast now, and
    /// broadcasts the sequence number and payload it returns; `Ok` carries the job's result
    /// once the overlay has taken the broadcast. The job is given the floor its number must
    /// lie above (pass it to [`crate::chat::Chat::number_above`]).
    pub async fn originate<T, E, F>(&self, job: F) -> Result<T, OriginateError<E>>
    where
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(u64) -> Result<(u64, Vec<u8>, T), E> + Send + 'static,
    {
        let (out_tx, out_rx) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |floor| match job(floor) {
            Ok((seq, payload, t)) => {
                let _ = out_tx.send(Ok(t));
                Some((seq, payload))
            }
            Err(e) => {
                let _ = out_tx.send(Err(e));
                None
            }
        });
        let (reply, verdict) = oneshot::channel();
        let queued = tokio::time::timeout(
            QUEUE_WAIT,
            self.commands.send(DriverCommand::Originate { job, reply }),
        )
        .await;
        if !matches!(queued, Ok(Ok(()))) {
            return Err(OriginateError::DriverGone);
        }
        match verdict.await {
            Err(_) => Err(OriginateError::DriverGone),
            Ok(Err(refusal)) => Err(OriginateError::Refused(refusal)),
            Ok(Ok(())) => match out_rx.await {
                Ok(Ok(t)) => Ok(t),
                Ok(Err(e)) => Err(OriginateError::Job(e)),
                Err(_) => Err(OriginateError::DriverGone),
            },
        }
    }
}
