//! Batch verification of envelopes: the signatures of what one wake-up of the ring's driver
//! brings are checked together (ed25519-dalek's `verify_batch`), and a batch that fails is
//! checked again one signature at a time, so a forged envelope is found and refused and the
//! good ones beside it are kept.
//!
//! A batch is only tried when it cannot accept what the single check
//! (`envelope::check_signature`) refuses, but for signatures only an origin's own secret key
//! can make (docs/security.md, "Signatures"): every origin key must be of large order and every
//! `R` encoded canonically; otherwise the batch's envelopes are checked one by one. Below
//! [`BATCH_MIN`] signatures a batch costs more than single checks (docs/performance.md,
//! "The driver's turn (issue 33)"), so small ones are checked one by one as well.

use ed25519_dalek::{Signature, VerifyingKey};

use super::ChatMessage;
use super::envelope::{OriginKeys, Unchecked};

/// The fewest signatures checked as a batch: per signature a batch of two costs about as
/// much as two single checks, a batch of four three quarters.
pub const BATCH_MIN: usize = 3;

/// Checks the signatures of `batch`, together when they may be, and returns, in order, each
/// envelope's message, or the wire form of one whose signature is bad.
pub fn check(batch: Vec<Unchecked>, keys: &mut OriginKeys) -> Vec<Result<ChatMessage, Vec<u8>>> {
    if batch.len() >= BATCH_MIN && batchable(&batch) && verify(&batch) {
        return batch.into_iter().map(|u| Ok(u.verified(keys))).collect();
    }
    batch.into_iter().map(|u| u.check_or_wire(keys)).collect()
}

/// Whether a batch check of these signatures agrees with single checks (module comment).
fn batchable(batch: &[Unchecked]) -> bool {
    batch.iter().all(|u| {
        let (_, sig, key) = u.parts();
        !key.is_weak() && canonical_r(sig.r_bytes())
    })
}

/// One batch check of every signature of `batch`.
fn verify(batch: &[Unchecked]) -> bool {
    let mut messages: Vec<&[u8]> = Vec::with_capacity(batch.len());
    let mut sigs: Vec<Signature> = Vec::with_capacity(batch.len());
    let mut keys: Vec<VerifyingKey> = Vec::with_capacity(batch.len());
    for u in batch {
        let (signed, sig, key) = u.parts();
        messages.push(signed);
        sigs.push(*sig);
        keys.push(*key);
    }
    ed25519_dalek::verify_batch(&messages, &sigs, &keys).is_ok()
}

/// Whether `r` is the canonical encoding of a point's `y` and sign: `y` below
/// p = 2^255 − 19, and no sign bit on a point whose `x` is zero (`y` = 1 or `y` = p − 1). The
/// single check compares the recomputed `R`'s canonical encoding byte for byte and so never
/// accepts another; the batch check decompresses `R` and would.
fn canonical_r(r: &[u8; 32]) -> bool {
    let mut y = *r;
    let sign = y[31] >> 7;
    y[31] &= 0x7f;
    // p − 1 in little-endian bytes; y ≥ p is y > p − 1.
    let mut p_minus_1 = [0xffu8; 32];
    p_minus_1[0] = 0xec;
    p_minus_1[31] = 0x7f;
    let above = y.iter().rev().cmp(p_minus_1.iter().rev()) == std::cmp::Ordering::Greater;
    let mut one = [0u8; 32];
    one[0] = 1;
    !above && !(sign == 1 && (y == one || y == p_minus_1))
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
