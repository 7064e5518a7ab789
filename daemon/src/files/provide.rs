//! Provider records: "node N provides blob H" in the DHT (docs/protocol.md, "Provider
//! records").
//!
//! A record of kind `6 provider` (*set* policy), key = the blob's hash, signed by the
//! providing node's key (so its NodeId is the BLAKE3 hash of the record's owner), value =
//! `version:u8 (1) ‖ size:u64 LE ‖ addr` (the node's QUIC address as UTF-8 `IP:PORT`, at most
//! [`MAX_ADDR`] bytes). It lives [`PROVIDE_TTL`] and is put again every [`RENEW_EVERY`] while
//! the node holds the blob; a blob removed or evicted is no longer renewed, so its record
//! expires within [`PROVIDE_TTL`] (a *set* item has no tombstone; a fetcher asking a node that
//! no longer holds the blob is answered "not found" and moves on).

use std::net::SocketAddr;
use std::time::Duration;

use chat_blobs::Hash;
use chat_overlay::Peer;
use chat_overlay::records::{Kind, Record, Value};

use super::{Files, FilesError};

/// How long a provider record lives.
pub const PROVIDE_TTL: Duration = Duration::from_secs(3600);
/// How often a held blob's record is put again.
pub const RENEW_EVERY: Duration = Duration::from_secs(1800);
/// The longest address in a provider record.
pub const MAX_ADDR: usize = 64;
/// The value's format version.
const VERSION: u8 = 1;

/// A provider record's value.
pub fn encode(size: u64, addr: SocketAddr) -> Vec<u8> {
    let addr = addr.to_string();
    let mut v = Vec::with_capacity(9 + addr.len());
    v.push(VERSION);
    v.extend_from_slice(&size.to_le_bytes());
    v.extend_from_slice(addr.as_bytes());
    v
}

/// A provider as a verified record names it: the node (its id from the record's owner),
/// its address and the size it claims. `None`: not a well-formed provider record.
pub fn decode(r: &Record) -> Option<(Peer, u64)> {
    if r.kind != Kind::Provider as u8 {
        return None;
    }
    let Value::Data(v) = &r.value else {
        return None;
    };
    let (&version, rest) = v.split_first()?;
    let (size, addr) = rest.split_first_chunk::<8>()?;
    if version != VERSION || addr.len() > MAX_ADDR {
        return None;
    }
    let addr: SocketAddr = std::str::from_utf8(addr).ok()?.parse().ok()?;
    let id = crate::identity::node_id_of_bytes(&r.owner);
    Some((Peer { id, addr }, u64::from_le_bytes(*size)))
}

impl Files {
    /// Puts this node's provider record of `hash` (no records layer: nothing to do).
    pub async fn announce(&self, hash: Hash, size: u64) {
        let Some((records, addr)) = &self.dht else {
            return;
        };
        let value = encode(size, *addr);
        match records
            .put_item(Kind::Provider, hash.0.to_vec(), value, PROVIDE_TTL)
            .await
        {
            Ok(copies) => tracing::debug!(blob = %hash, copies, "provider record put"),
            Err(e) => tracing::debug!(blob = %hash, error = %e, "provider record not put"),
        }
    }

    /// The providers the DHT names for `hash`, with the sizes they claim (this node left
    /// out; malformed records skipped).
    pub async fn providers(&self, hash: Hash) -> Result<Vec<(Peer, u64)>, FilesError> {
        let Some((records, _)) = &self.dht else {
            return Ok(Vec::new());
        };
        let found = records
            .get(Kind::Provider, hash.0.to_vec())
            .await
            .map_err(|e| FilesError::Lookup(e.to_string()))?;
        let me = self.transport.me();
        let mut out: Vec<(Peer, u64)> = Vec::new();
        for (peer, size) in found.iter().filter_map(decode) {
            if peer.id != me && !out.iter().any(|(p, _)| p.id == peer.id) {
                out.push((peer, size));
            }
        }
        Ok(out)
    }

    /// Fetches `hash` from the providers the DHT names. `size`: the size a reference gives;
    /// without one, the size most providers claim (a wrong claim fails verification).
    pub async fn fetch_found(
        &self,
        hash: Hash,
        size: Option<u64>,
    ) -> Result<chat_blobs::BlobInfo, FilesError> {
        if let Some(info) = self.blocking(move |s| Ok(s.info(&hash))).await? {
            return Ok(info);
        }
        let found = self.providers(hash).await?;
        self.fetch_among(hash, size, found).await
    }

    /// Fetches `hash` from the providers `found` ([`Files::providers`]) whose claimed size is
    /// `size` (`None`: the size most of them claim).
    pub async fn fetch_among(
        &self,
        hash: Hash,
        size: Option<u64>,
        found: Vec<(Peer, u64)>,
    ) -> Result<chat_blobs::BlobInfo, FilesError> {
        let size = match size {
            Some(s) => s,
            None => most_claimed(&found).ok_or(FilesError::NoProvider {
                hash,
                bad: 0,
                gone: 0,
            })?,
        };
        let peers = found
            .into_iter()
            .filter(|(_, s)| *s == size)
            .map(|(p, _)| p)
            .collect();
        self.fetch(hash, size, peers).await
    }

    /// Puts the records of every complete blob held: 5 s after the start, again a minute
    /// later (the ring may not have been joined yet), then every [`RENEW_EVERY`]. One put at
    /// a time, within the DHT's per-origin rate.
    pub async fn renew(self: std::sync::Arc<Self>) {
        let mut wait = Duration::from_secs(5);
        loop {
            tokio::time::sleep(wait).await;
            wait = if wait < Duration::from_secs(60) {
                Duration::from_secs(60)
            } else {
                RENEW_EVERY
            };
            let Ok(held) = self.list().await else {
                continue;
            };
            for b in held {
                // Released since the list was taken: not announced again.
                if !matches!(self.info(b.hash).await, Ok(Some(_))) {
                    continue;
                }
                self.announce(b.hash, b.size).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The size most providers claim (ties: the smallest).
fn most_claimed(found: &[(Peer, u64)]) -> Option<u64> {
    let mut counts: std::collections::BTreeMap<u64, usize> = Default::default();
    for (_, s) in found {
        *counts.entry(*s).or_default() += 1;
    }
    let best = counts.values().copied().max()?;
    counts.into_iter().find(|(_, n)| *n == best).map(|(s, _)| s)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::*;

    #[test]
    fn a_provider_record_names_its_signer() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let addr: SocketAddr = "127.0.0.1:4000".parse().expect("addr");
        let r = Record::sign(
            Kind::Provider,
            vec![1; 32],
            Value::Data(encode(12345, addr)),
            &key,
            1,
            1,
            u64::MAX,
        );
        let (peer, size) = decode(&r).expect("decodes");
        assert_eq!(size, 12345);
        assert_eq!(peer.addr, addr);
        assert_eq!(
            peer.id,
            crate::identity::node_id_of_bytes(&key.verifying_key().to_bytes())
        );
        let mut bad = r.clone();
        bad.value = Value::Data(vec![2, 0, 0]);
        assert!(decode(&bad).is_none());
        bad.value = Value::Data([encode(1, addr), vec![b'9'; 70]].concat());
        assert!(decode(&bad).is_none(), "an address past the bound");
    }

    #[test]
    fn the_size_most_providers_claim() {
        let p = |n: u8| Peer {
            id: chat_overlay::NodeId([n; 32]),
            addr: "127.0.0.1:1".parse().expect("addr"),
        };
        assert_eq!(most_claimed(&[]), None);
        assert_eq!(most_claimed(&[(p(1), 5), (p(2), 9), (p(3), 9)]), Some(9));
    }
}
