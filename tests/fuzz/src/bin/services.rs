//! Fuzz target: every service's own message decoder, on a body as it arrives inside a frame
//! (the first byte picks the type): ring, broadcast, records, direct. A body that
//! decodes is validated, and re-encodes to a body that decodes to the same value.

use chat_overlay::broadcast::wire::{Bcast, BroadcastRequest, BroadcastResponse};
use chat_overlay::direct::wire::{DirectRequest, DirectResponse};
use chat_overlay::records::wire::{RecordsNotice, RecordsRequest, RecordsResponse};
use chat_overlay::ring::wire::{RingNotice, RingRequest, RingResponse};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Decodes `body` as the frame layer does (`ciborium::from_reader`), then checks the value.
fn body<T>(data: &[u8], check: impl Fn(&T))
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let Ok(v) = ciborium::from_reader::<T, _>(data) else {
        return;
    };
    check(&v);
    let mut out = Vec::new();
    ciborium::into_writer(&v, &mut out).expect("a decoded body encodes");
    let again: T = ciborium::from_reader(&out[..]).expect("an encoded body decodes");
    assert_eq!(again, v, "a body changed on a round trip");
}

fn main() {
    let from = chat_fuzz::sender();
    loop {
        honggfuzz::fuzz!(|data: &[u8]| {
            let Some((&which, data)) = data.split_first() else {
                return;
            };
            match which % 11 {
                0 => body::<RingRequest>(data, |_| {}),
                1 => body::<RingResponse>(data, |r| drop(r.validate(&from))),
                2 => body::<RingNotice>(data, |r| drop(r.validate(&from))),
                3 => body::<BroadcastRequest>(data, |_| {}),
                4 => body::<BroadcastResponse>(data, |_| {}),
                5 => body::<Bcast>(data, |b| drop(b.validate())),
                6 => body::<RecordsRequest>(data, |r| drop(r.validate())),
                7 => body::<RecordsResponse>(data, |r| drop(r.validate())),
                8 => body::<RecordsNotice>(data, |r| drop(r.validate())),
                9 => body::<DirectRequest>(data, |d| drop(d.validate())),
                _ => body::<DirectResponse>(data, |_| {}),
            }
        });
    }
}
