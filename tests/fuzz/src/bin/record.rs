//! Fuzz target: a DHT record as it arrives in a records message or is read back from
//! `records.sqlite` (CBOR `Record`), then `policy::validate` (kind, key rule, value bounds,
//! times, signature). A record that decodes re-encodes to itself.

use chat_overlay::records::policy;
use chat_overlay::records::{Record, RecordsConfig};

/// A fixed wall time (2027-01-15) so that expiry checks are exercised the same every run.
const NOW_MS: u64 = 1_800_000_000_000;

fn main() {
    let cfg = RecordsConfig::default();
    loop {
        honggfuzz::fuzz!(|data: &[u8]| {
            let Ok(r) = ciborium::from_reader::<Record, _>(data) else {
                return;
            };
            let shape = policy::check_shape(&r, &cfg, NOW_MS);
            let full = policy::validate(&r, &cfg, NOW_MS);
            if full.is_ok() {
                assert!(shape.is_ok(), "a valid record failed its shape check");
            }
            let mut out = Vec::new();
            ciborium::into_writer(&r, &mut out).expect("a decoded record encodes");
            let again: Record = ciborium::from_reader(&out[..]).expect("a record decodes");
            assert!(again == r, "a record changed on a round trip");
        });
    }
}
