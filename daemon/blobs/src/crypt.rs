//! Private files: encrypted before they enter the store, decrypted on export.
//!
//! A fresh 32-byte [`FileKey`] per file; the STREAM construction (Hoang, Reyhanitabar,
//! Rogaway, Vizár 2015; RustCrypto's `aead-stream`, big-endian 32-bit counter + last-block
//! flag) over XChaCha20-Poly1305. What is stored, hashed and served is the ciphertext:
//!
//! ```text
//! ciphertext = "CHE1" ‖ nonce:[u8; 19] ‖ segment₀ ‖ … ‖ segmentₙ
//! segmentᵢ   = AEAD(64 KiB of plaintext) ‖ tag:[u8; 16]     (i < n, "not last")
//! segmentₙ   = AEAD(0 ..< 64 KiB of plaintext) ‖ tag        ("last")
//! ```
//!
//! The last segment is always shorter than 64 KiB of plaintext (possibly empty), so a
//! ciphertext cut at any point, extended, reordered or altered fails to decrypt: a missing
//! last segment is noticed because a full segment cannot be the last one.

use std::io::{self, Read, Write};

use aead_stream::{DecryptorBE32, EncryptorBE32, KeyInit};
use chacha20poly1305::XChaCha20Poly1305;
use zeroize::Zeroize;

use crate::error::{CryptError, StoreError};
use crate::hash::Hash;
use crate::store::{BlobInfo, BlobStore, remove_quietly, sibling_tmp};

/// Plaintext bytes per segment.
pub const SEGMENT: usize = 64 * 1024;
/// Authentication tag per segment.
pub const TAG: usize = 16;
const MAGIC: &[u8; 4] = b"CHE1";
const NONCE: usize = 19;
/// The header's length (magic and nonce).
pub const HEADER: usize = MAGIC.len() + NONCE;

/// A private file's key: 32 random bytes, travelling only inside end-to-end encrypted
/// messages. Wiped on drop; never printed.
#[derive(Clone)]
pub struct FileKey(pub [u8; 32]);

impl Drop for FileKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl FileKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, CryptError> {
        let mut k = [0u8; 32];
        getrandom::fill(&mut k).map_err(|e| CryptError::Random(e.to_string()))?;
        Ok(FileKey(k))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey(…)")
    }
}

/// The ciphertext length for `plain` bytes of plaintext.
pub fn ciphertext_len(plain: u64) -> u64 {
    let seg = SEGMENT as u64;
    HEADER as u64 + plain + (plain / seg + 1) * TAG as u64
}

/// Reads up to `buf.len()` bytes, fewer only at the end of `r`.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Encrypts `input` (at most `max_plain` bytes) to `output`; returns the ciphertext length.
pub fn encrypt(
    key: &FileKey,
    mut input: impl Read,
    mut output: impl Write,
    max_plain: u64,
) -> Result<u64, CryptError> {
    let mut nonce = [0u8; NONCE];
    getrandom::fill(&mut nonce).map_err(|e| CryptError::Random(e.to_string()))?;
    output.write_all(MAGIC)?;
    output.write_all(&nonce)?;
    let mut enc = EncryptorBE32::from_aead(key.cipher(), &nonce.into());
    let mut written = HEADER as u64;
    let mut plain = 0u64;
    // One byte more than a segment, to know whether this segment is the last.
    let mut buf = vec![0u8; SEGMENT + 1];
    let mut have = fill(&mut input, &mut buf)?;
    let mut segment = 0u64;
    loop {
        plain += have.min(SEGMENT) as u64;
        if plain > max_plain {
            buf.zeroize();
            return Err(CryptError::TooLarge { limit: max_plain });
        }
        if have < SEGMENT {
            let mut seg = buf[..have].to_vec();
            enc.encrypt_last_in_place(&[], &mut seg)
                .map_err(|_| CryptError::Tampered { segment })?;
            output.write_all(&seg)?;
            written += seg.len() as u64;
            break;
        }
        // A full segment; the byte after it (if any) starts the next one.
        let mut seg = buf[..SEGMENT].to_vec();
        enc.encrypt_next_in_place(&[], &mut seg)
            .map_err(|_| CryptError::Tampered { segment })?;
        output.write_all(&seg)?;
        written += seg.len() as u64;
        segment += 1;
        let carried = have - SEGMENT;
        buf.copy_within(SEGMENT..have, 0);
        have = carried + fill(&mut input, &mut buf[carried..])?;
    }
    buf.zeroize();
    output.flush()?;
    Ok(written)
}

/// Decrypts `input` to `output`; returns the plaintext length. Any change to the
/// ciphertext, a cut or an extension is [`CryptError::Tampered`]. Plaintext of segments
/// before a damaged one has been written by then: write to a temporary file and keep it
/// only on success (as [`BlobStore::export_decrypted`] does).
pub fn decrypt(
    key: &FileKey,
    mut input: impl Read,
    mut output: impl Write,
) -> Result<u64, CryptError> {
    let mut header = [0u8; HEADER];
    if fill(&mut input, &mut header)? != HEADER || &header[..4] != MAGIC {
        return Err(CryptError::BadHeader);
    }
    let mut nonce = [0u8; NONCE];
    nonce.copy_from_slice(&header[4..]);
    let mut dec = DecryptorBE32::from_aead(key.cipher(), &nonce.into());
    let full = SEGMENT + TAG;
    let mut buf = vec![0u8; full + 1];
    let mut have = fill(&mut input, &mut buf)?;
    let mut plain = 0u64;
    let mut segment = 0u64;
    loop {
        if have < full {
            // Shorter than a full segment: the last one.
            let mut seg = buf[..have].to_vec();
            dec.decrypt_last_in_place(&[], &mut seg)
                .map_err(|_| CryptError::Tampered { segment })?;
            output.write_all(&seg)?;
            plain += seg.len() as u64;
            seg.zeroize();
            break;
        }
        if have == full {
            // A full segment and nothing after it: the last segment is missing.
            return Err(CryptError::Tampered {
                segment: segment + 1,
            });
        }
        let mut seg = buf[..full].to_vec();
        dec.decrypt_next_in_place(&[], &mut seg)
            .map_err(|_| CryptError::Tampered { segment })?;
        output.write_all(&seg)?;
        plain += seg.len() as u64;
        seg.zeroize();
        segment += 1;
        let carried = have - full;
        buf.copy_within(full..have, 0);
        have = carried + fill(&mut input, &mut buf[carried..])?;
    }
    buf.zeroize();
    output.flush()?;
    Ok(plain)
}

impl BlobStore {
    /// Encrypts `reader` with a fresh key and imports the ciphertext. The plaintext may be at
    /// most `max_file_bytes` minus the encryption's overhead. Returns the blob (named by its
    /// ciphertext's hash) and the key.
    pub fn import_encrypted(
        &mut self,
        reader: impl Read,
    ) -> Result<(BlobInfo, FileKey), StoreError> {
        let key = FileKey::generate()?;
        let max = self.cfg.max_file_bytes;
        // The largest plaintext whose ciphertext fits.
        let overhead = ciphertext_len(max).saturating_sub(max);
        let max_plain = max.saturating_sub(overhead);
        let tmp = self.tmp_path("encrypt");
        let res = (|| {
            let f = std::fs::File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
            let mut w = io::BufWriter::with_capacity(1 << 20, f);
            let n = match encrypt(&key, reader, &mut w, max_plain) {
                Ok(n) => n,
                Err(CryptError::TooLarge { .. }) => {
                    return Err(StoreError::TooLarge { limit: max_plain });
                }
                Err(e) => return Err(e.into()),
            };
            let f = w
                .into_inner()
                .map_err(|e| StoreError::io(&tmp, e.into_error()))?;
            f.sync_data().map_err(|e| StoreError::io(&tmp, e))?;
            drop(f);
            self.import_temp(&tmp, n)
        })();
        remove_quietly(&tmp);
        Ok((res?, key))
    }

    /// Decrypts the blob to `dest` (through a temporary file next to it, renamed only when
    /// every segment authenticated: `dest` never holds a partial or forged plaintext).
    pub fn export_decrypted(
        &mut self,
        hash: &Hash,
        key: &FileKey,
        dest: &std::path::Path,
    ) -> Result<u64, StoreError> {
        let src = self.open_blob(hash)?;
        let tmp = sibling_tmp(dest);
        let res = (|| {
            let f = std::fs::File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
            let mut w = io::BufWriter::with_capacity(1 << 20, f);
            let n = decrypt(key, io::BufReader::with_capacity(1 << 20, src), &mut w)?;
            let f = w
                .into_inner()
                .map_err(|e| StoreError::io(&tmp, e.into_error()))?;
            f.sync_data().map_err(|e| StoreError::io(&tmp, e))?;
            std::fs::rename(&tmp, dest).map_err(|e| StoreError::io(dest, e))?;
            Ok(n)
        })();
        if res.is_err() {
            remove_quietly(&tmp);
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(len: usize) {
        let key = FileKey::generate().expect("random");
        let plain: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
        let mut ct = Vec::new();
        let n = encrypt(&key, &plain[..], &mut ct, u64::MAX).expect("encrypt");
        assert_eq!(n, ct.len() as u64);
        assert_eq!(n, ciphertext_len(len as u64));
        let mut out = Vec::new();
        assert_eq!(
            decrypt(&key, &ct[..], &mut out).expect("decrypt"),
            len as u64
        );
        assert_eq!(out, plain);
    }

    #[test]
    fn sizes_round_trip() {
        for len in [
            0,
            1,
            1000,
            SEGMENT - 1,
            SEGMENT,
            SEGMENT + 1,
            3 * SEGMENT,
            3 * SEGMENT + 5,
        ] {
            round_trip(len);
        }
    }

    #[test]
    fn limit() {
        let key = FileKey::generate().expect("random");
        let plain = vec![1u8; SEGMENT * 2];
        assert!(matches!(
            encrypt(&key, &plain[..], io::sink(), (SEGMENT * 2 - 1) as u64),
            Err(CryptError::TooLarge { .. })
        ));
        assert!(encrypt(&key, &plain[..], io::sink(), (SEGMENT * 2) as u64).is_ok());
    }

    #[test]
    fn key_is_not_printed() {
        let key = FileKey([0xAB; 32]);
        assert!(!format!("{key:?}").contains("ab"));
        assert!(!format!("{key:?}").contains("171"));
    }
}
