//! Fuzz target: one overlay frame's payload, decoded as the QUIC transport decodes it
//! (`chatd::transport::frame::decode`: exactly one CBOR value, nothing after it), then
//! validated as the overlay validates it, and re-encoded (round trip).

use chat_overlay::wire::{MAX_MESSAGE_BYTES, Message};
use chatd::transport::frame;

fn main() {
    loop {
        honggfuzz::fuzz!(|data: &[u8]| {
            if data.len() > MAX_MESSAGE_BYTES {
                return;
            }
            if let Ok(msg) = frame::decode::<Message>(data) {
                chat_fuzz::validate(&msg);
                chat_fuzz::round_trip(&msg);
            }
        });
    }
}
