//! First contact with the `--bootstrap` addresses, whose NodeIds are not known yet.
//!
//! Each address is dialled accepting any valid self-signed ed25519 certificate; the NodeId the
//! certificate proves is learned from it, and from then on that peer is bound to it like any
//! other (see "First contact" in docs/protocol.md). The peers learned are handed to the overlay
//! as `Input::Join { via }`; the overlay's own `JoinRetry` then retries the join with backoff
//! through them. While no address answers at all, this task retries with exponential backoff
//! (0.5 s doubling to 30 s, with jitter). An address that turns out to be this node is skipped;
//! if every address is this node, the node founds a ring.

use std::net::SocketAddr;
use std::time::Duration;

use chat_overlay::{Input, Message};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::DriverCommand;
use crate::transport::{Transport, TransportError};

const FIRST_DELAY: Duration = Duration::from_millis(500);
const MAX_DELAY: Duration = Duration::from_secs(30);

/// Runs until the join has been handed to the driver (or the driver is gone).
pub async fn run(
    transport: Transport<Message>,
    addrs: Vec<SocketAddr>,
    driver: mpsc::Sender<DriverCommand>,
) {
    let mut delay = FIRST_DELAY;
    let mut round: u64 = 0;
    loop {
        let mut via = Vec::new();
        let mut only_self = true;
        for &addr in &addrs {
            match transport.first_contact(addr).await {
                Ok(peer) => {
                    info!(%addr, peer = %peer.id.short(), "bootstrap peer answered");
                    only_self = false;
                    via.push(peer);
                }
                Err(TransportError::SelfDial { .. }) => {}
                Err(e) => {
                    only_self = false;
                    warn!(%addr, error = %e, "bootstrap peer unreachable");
                }
            }
        }
        let input = if !via.is_empty() {
            Some(Input::Join { via })
        } else if only_self {
            info!("every bootstrap address is this node: founding a new ring");
            Some(Input::Create)
        } else {
            None
        };
        if let Some(input) = input {
            let _ = driver.send(DriverCommand::Input(input)).await;
            return;
        }
        if driver.is_closed() {
            return;
        }
        round += 1;
        // Jitter ±25 % from the round number and our address, without a global RNG.
        let spread = (delay.as_millis() as u64 / 2).max(1);
        let jitter = (round.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % spread;
        let wait = delay - delay / 4 + Duration::from_millis(jitter);
        info!(retry_in = ?wait, "no bootstrap peer reachable yet");
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}
