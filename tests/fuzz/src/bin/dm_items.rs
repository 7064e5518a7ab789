//! Fuzz target: private-message items (the first byte picks the decoder): a sealed envelope
//! opened with a fixed seal key (`SealKey::open`), arbitrary plaintext sealed with HPKE to that
//! key and opened (so the padding and `Inner` decoder are reached past the AEAD), a key bundle
//! (`Bundle::decode`), a stream payload (`Payload::decode`, round trip) and a signed group
//! state (`SignedGroup::open`).

use chat_dm::bundle::Bundle;
use chat_dm::group::SignedGroup;
use chat_dm::payload::{Body, Payload};
use chat_dm::seal::{self, SealKey};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeS, Serializable};

/// The seal's HPKE info string (`chat_dm::seal`).
const INFO: &[u8] = b"chatd dm seal v1";
/// The account the fixed seal key and the bundles belong to.
pub const ACCOUNT: [u8; 32] = [0x11; 32];

/// `plain` sealed to `to` exactly as `chat_dm::seal::seal` frames it, without its padding.
fn seal_raw(plain: &[u8], to: &[u8; 32]) -> Option<Vec<u8>> {
    let pk = <X25519HkdfSha256 as hpke::Kem>::PublicKey::from_bytes(to).ok()?;
    let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, X25519HkdfSha256>(
        &OpModeS::Base,
        &pk,
        INFO,
        plain,
        &ACCOUNT,
    )
    .ok()?;
    let mut out = vec![seal::FORMAT];
    out.extend_from_slice(&to[..4]);
    out.extend_from_slice(&enc.to_bytes());
    out.extend_from_slice(&ct);
    Some(out)
}

fn main() {
    let key = SealKey::from_secret([7; 32]).expect("a fixed seal key");
    loop {
        honggfuzz::fuzz!(|data: &[u8]| {
            let Some((&which, data)) = data.split_first() else {
                return;
            };
            match which % 5 {
                0 => {
                    let _ = key.matches(data);
                    let _ = key.open(data, &ACCOUNT);
                }
                1 => {
                    if data.len() <= seal::MAX_SEALED {
                        let sealed = seal_raw(data, &key.public()).expect("sealing works");
                        let _ = key.open(&sealed, &ACCOUNT);
                    }
                }
                2 => {
                    if let Ok(b) = Bundle::decode(data, &ACCOUNT) {
                        assert_eq!(Bundle::decode(&b.encode(), &ACCOUNT), Ok(b));
                    }
                }
                3 => {
                    if let Some(p) = Payload::decode(data) {
                        if let Body::Group(g) = &p.body {
                            let _ = g.open();
                        }
                        let again = ciborium::from_reader::<Payload, _>(&p.encode()[..]);
                        assert_eq!(again.ok(), Some(p), "a payload changed on a round trip");
                    }
                }
                _ => {
                    if let Ok(g) = ciborium::from_reader::<SignedGroup, _>(data) {
                        let _ = g.open();
                    }
                }
            }
        });
    }
}
