//! Fuzz target: a chat envelope from a peer or the store, opened as the chat service opens it
//! (`chatd::chat::envelope`: every field and limit, then the signature), and `stored_extra`,
//! which reads stored envelopes. An envelope that opens keeps its wire form.

use chatd::chat::envelope::{self, MAX_WIRE_BYTES, OriginKeys};

fn main() {
    let mut keys = OriginKeys::default();
    loop {
        honggfuzz::fuzz!(|data: &[u8]| {
            let _ = envelope::stored_extra(data);
            let Ok(unchecked) = envelope::decode_with(data, &keys) else {
                return;
            };
            assert!(data.len() <= MAX_WIRE_BYTES);
            assert_eq!(unchecked.wire(), data);
            if let Ok(m) = unchecked.check(&mut keys) {
                assert_eq!(m.wire, data);
                let again = envelope::open(&m.wire).expect("an opened envelope opens again");
                assert_eq!(again.id, m.id);
            }
        });
    }
}
