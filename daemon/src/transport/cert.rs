//! The node's TLS certificate, and reading a peer's: self-signed X.509 with an ed25519 key.
//!
//! [`own_certificate`] makes the node's certificate with rcgen from the node key (the same key
//! whose blake3 hash is the NodeId). [`peer_key`] takes a certificate apart with a small, strict
//! DER reader: it finds the subject public key by walking the structure (never by searching for
//! bytes, which a forged certificate could plant in a name), insists on ed25519, and checks the
//! certificate's self-signature. Validity dates, names and extensions are ignored: the key is the
//! identity, and the TLS handshake proves the peer holds it.

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// DER of the ed25519 AlgorithmIdentifier: SEQUENCE { OID 1.3.101.112 }.
const ED25519_ALG: &[u8] = &[0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];
/// PKCS#8 v1 prefix of an ed25519 private key; the 32-byte seed follows.
const PKCS8_PREFIX: &[u8] = &[
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// Largest certificate we parse; ours are about 300 bytes.
pub const MAX_CERT_BYTES: usize = 4096;

/// Why a certificate was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Not well-formed DER of the expected shape.
    #[error("malformed certificate")]
    Malformed,
    /// The key or the signature is not ed25519.
    #[error("certificate key is not ed25519")]
    NotEd25519,
    /// The self-signature does not verify with the certificate's own key.
    #[error("certificate is not validly self-signed")]
    BadSelfSignature,
}

/// The node's certificate (DER) and its private key for rustls.
pub fn own_certificate(
    key: &SigningKey,
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), rcgen::Error> {
    let mut pkcs8 = Vec::with_capacity(PKCS8_PREFIX.len() + 32);
    pkcs8.extend_from_slice(PKCS8_PREFIX);
    pkcs8.extend_from_slice(&key.to_bytes());
    let pkcs8 = PrivatePkcs8KeyDer::from(pkcs8);
    let pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(&pkcs8, &rcgen::PKCS_ED25519)?;
    let mut params = rcgen::CertificateParams::new(vec!["chatd".to_owned()])?;
    let id = crate::identity::node_id(&key.verifying_key());
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, id.to_hex());
    let cert = params.self_signed(&pair)?;
    Ok((cert.der().clone(), PrivateKeyDer::Pkcs8(pkcs8)))
}

/// The ed25519 key of a self-signed certificate, after checking its self-signature.
pub fn peer_key(der: &[u8]) -> Result<VerifyingKey, CertError> {
    if der.len() > MAX_CERT_BYTES {
        return Err(CertError::Malformed);
    }
    let (cert, rest) = tlv(der, 0x30)?;
    if !rest.is_empty() {
        return Err(CertError::Malformed);
    }
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
    let tbs_start = cert;
    let (tbs, after_tbs) = tlv(cert, 0x30)?;
    let tbs_whole = &tbs_start[..tbs_start.len() - after_tbs.len()];
    let (sig_alg, after_alg) = raw_tlv(after_tbs, 0x30)?;
    let (sig_bits, end) = tlv(after_alg, 0x03)?;
    if !end.is_empty() || sig_alg != ED25519_ALG {
        return Err(CertError::NotEd25519);
    }
    let key = spki_key(tbs)?;
    let sig = match sig_bits {
        [0, sig @ ..] => Signature::from_slice(sig).map_err(|_| CertError::Malformed)?,
        _ => return Err(CertError::Malformed),
    };
    key.verify_strict(tbs_whole, &sig)
        .map_err(|_| CertError::BadSelfSignature)?;
    Ok(key)
}

/// Walks TBSCertificate to its SubjectPublicKeyInfo and returns the ed25519 key.
fn spki_key(tbs: &[u8]) -> Result<VerifyingKey, CertError> {
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest, 0xa0)?.1; // [0] EXPLICIT version
    }
    rest = tlv(rest, 0x02)?.1; // serialNumber
    rest = tlv(rest, 0x30)?.1; // signature AlgorithmIdentifier
    rest = tlv(rest, 0x30)?.1; // issuer
    rest = tlv(rest, 0x30)?.1; // validity
    rest = tlv(rest, 0x30)?.1; // subject
    let (spki, _extensions) = tlv(rest, 0x30)?;
    let (alg, after) = raw_tlv(spki, 0x30)?;
    if alg != ED25519_ALG {
        return Err(CertError::NotEd25519);
    }
    let (bits, end) = tlv(after, 0x03)?;
    match (bits, end) {
        ([0, key @ ..], []) if key.len() == 32 => {
            let bytes: [u8; 32] = key.try_into().map_err(|_| CertError::Malformed)?;
            VerifyingKey::from_bytes(&bytes).map_err(|_| CertError::NotEd25519)
        }
        _ => Err(CertError::NotEd25519),
    }
}

/// One DER element with tag `tag`: (its contents, what follows it).
fn tlv(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), CertError> {
    let (header, len) = header(input, tag)?;
    let body = input
        .get(header..header + len)
        .ok_or(CertError::Malformed)?;
    Ok((body, &input[header + len..]))
}

/// One DER element with tag `tag`, header included: (the whole element, what follows it).
fn raw_tlv(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), CertError> {
    let (header, len) = header(input, tag)?;
    let end = header.checked_add(len).ok_or(CertError::Malformed)?;
    let whole = input.get(..end).ok_or(CertError::Malformed)?;
    Ok((whole, &input[end..]))
}

/// Parses a DER header: (header length, content length). Definite, minimal lengths only.
fn header(input: &[u8], tag: u8) -> Result<(usize, usize), CertError> {
    match input {
        [t, ..] if *t != tag => Err(CertError::Malformed),
        [_, l, ..] if *l < 0x80 => Ok((2, usize::from(*l))),
        [_, 0x81, l, ..] if *l >= 0x80 => Ok((3, usize::from(*l))),
        [_, 0x82, a, b, ..] if *a != 0 => Ok((4, usize::from(*a) << 8 | usize::from(*b))),
        _ => Err(CertError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> SigningKey {
        SigningKey::from_bytes(&[i; 32])
    }

    #[test]
    fn own_certificate_yields_own_key() {
        let k = key(1);
        let (cert, _) = own_certificate(&k).expect("cert");
        assert_eq!(peer_key(&cert).expect("parses"), k.verifying_key());
    }

    #[test]
    fn a_tampered_certificate_is_refused() {
        let (cert, _) = own_certificate(&key(2)).expect("cert");
        let other = key(3).verifying_key();
        // Plant another key in place of ours: the self-signature no longer verifies.
        let mine = key(2).verifying_key();
        let pos = cert
            .windows(32)
            .position(|w| w == mine.as_bytes())
            .expect("key present");
        let mut forged = cert.to_vec();
        forged[pos..pos + 32].copy_from_slice(other.as_bytes());
        assert_eq!(peer_key(&forged), Err(CertError::BadSelfSignature));
        let mut flipped = cert.to_vec();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(peer_key(&flipped).is_err());
    }

    #[test]
    fn garbage_and_truncations_are_refused_without_panic() {
        let (cert, _) = own_certificate(&key(4)).expect("cert");
        for n in 0..cert.len() {
            assert!(peer_key(&cert[..n]).is_err(), "prefix of {n} bytes");
        }
        let mut extended = cert.to_vec();
        extended.push(0);
        assert!(peer_key(&extended).is_err());
        let mut x: u32 = 7;
        for len in [0usize, 1, 2, 3, 50, 300, 5000] {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            assert!(peer_key(&junk).is_err());
        }
    }
}
