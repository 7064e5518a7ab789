//! Node identifiers and arithmetic on the 2^256 identifier circle.
//!
//! A [`NodeId`] is 256 bits read as a big-endian unsigned integer. All arithmetic wraps modulo
//! 2^256, so the identifier space is a ring. Interval membership follows the Chord convention:
//! `(a, b)` and `(a, b]` are taken clockwise from `a`, and when `a == b` the interval covers the
//! whole ring except (open) or including (half-open) `a` itself — the one-node-ring case.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Number of bits in an identifier.
pub const ID_BITS: u32 = 256;

/// A position on the identifier ring: 256 bits, big-endian.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct NodeId(pub [u8; 32]);

/// Error parsing a [`NodeId`] from hex.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a node id is 64 hex digits")]
pub struct ParseIdError;

impl NodeId {
    /// The identifier 0.
    pub const ZERO: NodeId = NodeId([0; 32]);

    /// The raw big-endian bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hex, 64 digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 8 hex digits, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    fn limbs(&self) -> [u64; 4] {
        let mut l = [0u64; 4];
        for (k, chunk) in self.0.chunks_exact(8).enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            l[k] = u64::from_be_bytes(b);
        }
        l
    }

    fn from_limbs(l: [u64; 4]) -> NodeId {
        let mut out = [0u8; 32];
        for (k, v) in l.iter().enumerate() {
            out[k * 8..k * 8 + 8].copy_from_slice(&v.to_be_bytes());
        }
        NodeId(out)
    }

    /// `self + other (mod 2^256)`.
    pub fn wrapping_add(&self, other: &NodeId) -> NodeId {
        let (a, b) = (self.limbs(), other.limbs());
        let mut out = [0u64; 4];
        let mut carry = false;
        for k in (0..4).rev() {
            let (s1, c1) = a[k].overflowing_add(b[k]);
            let (s2, c2) = s1.overflowing_add(carry as u64);
            out[k] = s2;
            carry = c1 || c2;
        }
        NodeId::from_limbs(out)
    }

    /// `self - other (mod 2^256)`.
    pub fn wrapping_sub(&self, other: &NodeId) -> NodeId {
        let (a, b) = (self.limbs(), other.limbs());
        let mut out = [0u64; 4];
        let mut borrow = false;
        for k in (0..4).rev() {
            let (d1, b1) = a[k].overflowing_sub(b[k]);
            let (d2, b2) = d1.overflowing_sub(borrow as u64);
            out[k] = d2;
            borrow = b1 || b2;
        }
        NodeId::from_limbs(out)
    }

    /// `2^i` for `i < 256`.
    pub fn pow2(i: u32) -> NodeId {
        assert!(i < ID_BITS, "2^{i} does not fit in a node id");
        let mut out = [0u8; 32];
        out[31 - (i / 8) as usize] = 1 << (i % 8);
        NodeId(out)
    }

    /// `self + 2^i (mod 2^256)`: the start of finger `i`.
    pub fn add_pow2(&self, i: u32) -> NodeId {
        self.wrapping_add(&NodeId::pow2(i))
    }

    /// Clockwise distance from `self` to `other`: `other - self (mod 2^256)`.
    pub fn distance_to(&self, other: &NodeId) -> NodeId {
        other.wrapping_sub(self)
    }

    /// Position of the highest set bit, or `None` for zero: `floor(log2(self))`.
    pub fn log2(&self) -> Option<u32> {
        let first = self.0.iter().position(|b| *b != 0)?;
        let bit = 7 - self.0[first].leading_zeros();
        Some((31 - first as u32) * 8 + bit)
    }

    /// `self ∈ (a, b)` clockwise. When `a == b`: every id except `a`.
    pub fn in_open(&self, a: &NodeId, b: &NodeId) -> bool {
        if a == b {
            return self != a;
        }
        let d_self = a.distance_to(self);
        let d_b = a.distance_to(b);
        d_self != NodeId::ZERO && d_self < d_b
    }

    /// `self ∈ (a, b]` clockwise. When `a == b`: the whole ring.
    pub fn in_half_open(&self, a: &NodeId, b: &NodeId) -> bool {
        if a == b {
            return true;
        }
        self == b || self.in_open(a, b)
    }

    /// Orders `x` and `y` by clockwise distance from `self`.
    pub fn cmp_from(&self, x: &NodeId, y: &NodeId) -> Ordering {
        self.distance_to(x).cmp(&self.distance_to(y))
    }

    /// The top 64 bits as an integer, for estimates and histograms.
    pub fn high_u64(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        u64::from_be_bytes(b)
    }

    /// An id whose top 64 bits are `v` and the rest zero (test and simulator helper).
    pub fn from_high_u64(v: u64) -> NodeId {
        let mut out = [0u8; 32];
        out[..8].copy_from_slice(&v.to_be_bytes());
        NodeId(out)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

impl FromStr for NodeId {
    type Err = ParseIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 32];
        if s.len() != 64 {
            return Err(ParseIdError);
        }
        hex::decode_to_slice(s, &mut out).map_err(|_| ParseIdError)?;
        Ok(NodeId(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_id() -> impl Strategy<Value = NodeId> {
        prop_oneof![
            any::<[u8; 32]>().prop_map(NodeId),
            any::<u64>().prop_map(NodeId::from_high_u64),
            (0u8..4).prop_map(|b| NodeId([b; 32])),
            Just(NodeId([0xff; 32])),
        ]
    }

    /// Reference model: 256-bit integers as two u128 halves.
    fn to_u(id: &NodeId) -> (u128, u128) {
        let hi = u128::from_be_bytes(id.0[..16].try_into().unwrap());
        let lo = u128::from_be_bytes(id.0[16..].try_into().unwrap());
        (hi, lo)
    }

    #[test]
    fn pow2_and_log2() {
        assert_eq!(NodeId::pow2(0).0[31], 1);
        assert_eq!(NodeId::pow2(255).0[0], 0x80);
        for i in 0..256 {
            assert_eq!(NodeId::pow2(i).log2(), Some(i));
        }
        assert_eq!(NodeId::ZERO.log2(), None);
    }

    #[test]
    fn wraps_at_top() {
        let max = NodeId([0xff; 32]);
        assert_eq!(max.add_pow2(0), NodeId::ZERO);
        assert_eq!(NodeId::ZERO.wrapping_sub(&NodeId::pow2(0)), max);
        assert!(NodeId::ZERO.in_open(&max, &NodeId::pow2(0)));
    }

    #[test]
    fn hex_round_trip_and_errors() {
        let id = NodeId([0xab; 32]);
        assert_eq!(id.to_hex().parse::<NodeId>(), Ok(id));
        assert_eq!("abc".parse::<NodeId>(), Err(ParseIdError));
        assert_eq!("zz".repeat(32).parse::<NodeId>(), Err(ParseIdError));
    }

    proptest! {
        #[test]
        fn add_matches_reference(a in arb_id(), b in arb_id()) {
            let (ah, al) = to_u(&a);
            let (bh, bl) = to_u(&b);
            let (lo, carry) = al.overflowing_add(bl);
            let hi = ah.wrapping_add(bh).wrapping_add(carry as u128);
            prop_assert_eq!(to_u(&a.wrapping_add(&b)), (hi, lo));
        }

        #[test]
        fn sub_inverts_add(a in arb_id(), b in arb_id()) {
            prop_assert_eq!(a.wrapping_add(&b).wrapping_sub(&b), a);
            prop_assert_eq!(a.distance_to(&a.wrapping_add(&b)), b);
        }

        #[test]
        fn add_pow2_is_add(a in arb_id(), i in 0u32..256) {
            prop_assert_eq!(a.add_pow2(i), a.wrapping_add(&NodeId::pow2(i)));
            prop_assert_eq!(a.distance_to(&a.add_pow2(i)).log2(), Some(i));
        }

        #[test]
        fn distances_sum_around_ring(a in arb_id(), b in arb_id()) {
            // d(a,b) + d(b,a) == 0 mod 2^256, i.e. 2^256 unless a == b.
            prop_assert_eq!(a.distance_to(&b).wrapping_add(&b.distance_to(&a)), NodeId::ZERO);
        }

        #[test]
        fn open_interval_partitions_ring(a in arb_id(), b in arb_id(), x in arb_id()) {
            prop_assume!(a != b);
            // Exactly one of: x == a, x == b, x in (a,b), x in (b,a).
            let count = [x == a, x == b, x.in_open(&a, &b), x.in_open(&b, &a)]
                .iter().filter(|v| **v).count();
            prop_assert_eq!(count, 1);
            prop_assert_eq!(x.in_half_open(&a, &b), x == b || x.in_open(&a, &b));
            prop_assert!(!a.in_open(&a, &b) && !b.in_open(&a, &b));
        }

        #[test]
        fn degenerate_interval(a in arb_id(), x in arb_id()) {
            prop_assert_eq!(x.in_open(&a, &a), x != a);
            prop_assert!(x.in_half_open(&a, &a));
        }

        #[test]
        fn in_open_matches_distance(a in arb_id(), b in arb_id(), x in arb_id()) {
            prop_assume!(a != b);
            let expect = a.distance_to(&x) > NodeId::ZERO && a.distance_to(&x) < a.distance_to(&b);
            prop_assert_eq!(x.in_open(&a, &b), expect);
        }
    }
}
