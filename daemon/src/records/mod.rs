//! The records service: DHT records put and read through this node, signed with the node's
//! key, and the node's part as a holder — persistence of what it holds (`store.rs`) and
//! re-signing of its own records before they expire.
//!
//! It hears the overlay's records events inline from the overlay driver ([`RecordSink`]): answers
//! to its puts and gets complete the waiting API calls; `Held` and `Released` go to the record
//! file; `Expiring` re-signs an own record with a later expiry and puts it again; `Lost`
//! (another key holds a name this node claimed) is logged.

pub mod store;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use chat_overlay::Input;
use chat_overlay::records::{Kind, Policy, Record, RecordError, RecordsEvent, RecordsInput, Value};
use ed25519_dalek::SigningKey;
use tokio::sync::oneshot;
use tracing::{info, warn};

use crate::overlay::{OverlayHandle, RecordSink};
pub use store::RecordStoreError;
use store::{RecordFile, Write};

/// Operations of the API waiting for the overlay, at most.
pub const MAX_PENDING: usize = 1024;
/// How long an API call waits for the overlay's answer (the overlay bounds every operation by
/// its lookups' deadlines; this only guards against a driver that stopped).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);
/// Lifetime of a record put without one.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// How long shutdown waits for the record file's writer.
pub const CLOSE_DEADLINE: Duration = Duration::from_secs(2);
/// Longest lifetime a client may ask for.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

pub use crate::clock::unix_ms;

/// Why a records call failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// The request itself is wrong.
    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },
    /// The overlay (here or at a holder) refused or could not do it.
    #[error(transparent)]
    Refused(#[from] RecordError),
    /// Too many calls are waiting.
    #[error("too many record operations in flight; try again shortly")]
    Busy,
    /// The overlay driver is not running or did not answer.
    #[error("the overlay driver did not answer; the operation may or may not have happened")]
    NoAnswer,
}

enum Waiter {
    Put(oneshot::Sender<Result<u8, RecordError>>),
    Get(oneshot::Sender<Result<Vec<Record>, RecordError>>),
}

/// A name an account of this node claimed turned out to be held by another key (at renewal,
/// or where two claims met after a partition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LostName {
    /// The account that lost it.
    pub owner: [u8; 32],
    /// The normalised name.
    pub name: Vec<u8>,
    /// The key that holds it.
    pub holder: [u8; 32],
}

/// An own record: its owner, kind and key.
type OwnKey = ([u8; 32], u8, Vec<u8>);

/// An own record's lifetime, for re-signing.
#[derive(Clone, Copy, Debug)]
struct Own {
    ttl: Duration,
    version: u64,
    created: u64,
}

/// The records service.
pub struct Records {
    key: SigningKey,
    ring: OnceLock<OverlayHandle>,
    waiters: Mutex<HashMap<u64, Waiter>>,
    next: AtomicU64,
    own: Mutex<HashMap<OwnKey, Own>>,
    /// Keys of the accounts this node hosts, by public key: their records are re-signed too.
    signers: Mutex<HashMap<[u8; 32], SigningKey>>,
    /// Where "a name an account claimed is held by another key" goes (the people service).
    lost: OnceLock<tokio::sync::mpsc::Sender<LostName>>,
    /// Where mailbox items this node comes to hold go (the people service collects the
    /// presence epochs' items from them).
    held_items: OnceLock<tokio::sync::mpsc::Sender<Record>>,
    file: Mutex<Option<RecordFile>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records").finish_non_exhaustive()
    }
}

impl Records {
    /// Opens the record file in `data_dir`; returns the service and the records to restore
    /// into the overlay once it runs ([`Records::restore`]).
    pub fn open(
        data_dir: &Path,
        key: SigningKey,
    ) -> Result<(Arc<Records>, Vec<Record>), RecordStoreError> {
        let (held, file, writer) = store::open(data_dir, unix_ms())?;
        let r = Records {
            key,
            ring: OnceLock::new(),
            waiters: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            own: Mutex::new(HashMap::new()),
            signers: Mutex::new(HashMap::new()),
            lost: OnceLock::new(),
            held_items: OnceLock::new(),
            file: Mutex::new(Some(file)),
            writer: Mutex::new(Some(writer)),
        };
        Ok((Arc::new(r), held))
    }

    /// Connects the service to the running ring and hands it the records held before the
    /// restart.
    pub fn attach(&self, ring: OverlayHandle, held: Vec<Record>) {
        if !held.is_empty() {
            info!(
                records = held.len(),
                "restoring the DHT records held before"
            );
            if !ring.submit(Input::Records(RecordsInput::Restore(held))) {
                warn!("could not hand the restored records to the overlay driver");
            }
        }
        let _ = self.ring.set(ring);
    }

    /// The running ring, once attached (for lookups by other services).
    pub fn ring(&self) -> Option<&OverlayHandle> {
        self.ring.get()
    }

    /// Stops the record file's writer after it wrote what is queued (at shutdown, after the
    /// overlay driver stopped); waits at most [`CLOSE_DEADLINE`].
    pub async fn close(&self) {
        if let Ok(mut f) = self.file.lock() {
            f.take();
        }
        let writer = self.writer.lock().ok().and_then(|mut w| w.take());
        if let Some(w) = writer {
            match tokio::time::timeout(
                CLOSE_DEADLINE,
                tokio::task::spawn_blocking(move || w.join()),
            )
            .await
            {
                Ok(Ok(Ok(()))) => {}
                Ok(_) => warn!("record store: the writer thread panicked"),
                Err(_) => {
                    warn!("record store: the writer did not finish within {CLOSE_DEADLINE:?}")
                }
            }
        }
    }

    /// The node's public key (the owner of the records it signs).
    pub fn owner(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// Signs a record of `kind` and `key` (empty: this node's key, for the kinds keyed by
    /// owner) with `value` (`None`: a tombstone) living `ttl`, and puts it.
    pub async fn put(
        &self,
        kind: Kind,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        ttl: Duration,
    ) -> Result<(Record, u8), RecordsError> {
        let key_pair = self.key.clone();
        self.put_by(&key_pair, kind, key, value, ttl).await
    }

    /// [`Records::put`] signed by `signer` (a hosted account, for a client's own records):
    /// a key left empty, for the kinds keyed by owner, is the signer's.
    pub async fn put_by(
        &self,
        signer: &SigningKey,
        kind: Kind,
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        ttl: Duration,
    ) -> Result<(Record, u8), RecordsError> {
        let key = key_for(signer.verifying_key().to_bytes(), kind, key)?;
        if ttl.is_zero() || ttl > MAX_TTL {
            return Err(RecordsError::Invalid {
                field: "ttl_seconds",
                problem: format!("must be 1 to {}", MAX_TTL.as_secs()),
            });
        }
        let value = match value {
            Some(v) => Value::Data(v),
            None if kind.policy() == Policy::Set => {
                return Err(RecordsError::Invalid {
                    field: "kind",
                    problem: "mailbox items are removed by their recipient, not deleted".into(),
                });
            }
            None => Value::Deleted,
        };
        let record = self.sign(signer, kind, key, value, ttl, None);
        let copies = self.put_signed(record.clone()).await?;
        Ok((record, copies))
    }

    /// Hosts `key`'s records: they are re-signed before they expire like the node's own.
    pub fn add_signer(&self, key: SigningKey) {
        self.signers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.verifying_key().to_bytes(), key);
    }

    /// Where mailbox items this node comes to hold are reported from now on (one receiver;
    /// a full queue drops them: presence resubmits what was not broadcast).
    pub fn held_items(&self) -> Option<tokio::sync::mpsc::Receiver<Record>> {
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        self.held_items.set(tx).ok().map(|()| rx)
    }

    /// Where lost names of hosted accounts are reported from now on (one receiver).
    pub fn lost_names(&self) -> Option<tokio::sync::mpsc::Receiver<LostName>> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        self.lost.set(tx).ok().map(|()| rx)
    }

    /// Signs a record with a hosted account's `signer` (any lifetime the overlay accepts;
    /// `created`: a claim's first creation time, kept across restarts) and puts it.
    pub async fn put_as(
        &self,
        signer: &SigningKey,
        kind: Kind,
        key: Vec<u8>,
        value: Vec<u8>,
        ttl: Duration,
        created: Option<u64>,
    ) -> Result<(Record, u8), RecordsError> {
        let record = self.sign(signer, kind, key, Value::Data(value), ttl, created);
        let copies = self.put_signed(record.clone()).await?;
        Ok((record, copies))
    }

    /// Reads `kind` and `key` (empty: this node's key, for the kinds keyed by owner).
    /// Any account's record of a kind keyed by owner may be read (its 32-byte key).
    pub async fn get(&self, kind: Kind, key: Vec<u8>) -> Result<Vec<Record>, RecordsError> {
        let key = if kind.policy() == Policy::Latest && key.len() == 32 {
            key
        } else {
            key_for(self.owner(), kind, key)?
        };
        let (tx, rx) = oneshot::channel();
        let token = self.wait(Waiter::Get(tx))?;
        self.submit(
            token,
            Input::Records(RecordsInput::Get {
                token,
                kind: kind as u8,
                key,
            }),
        )?;
        Ok(self.answer(token, rx).await??)
    }

    /// Signs a new version with `signer`: the version and creation time continue the
    /// signer's earlier ones (a claim keeps its first creation time; `created` gives it when
    /// this process has not signed the claim before).
    fn sign(
        &self,
        signer: &SigningKey,
        kind: Kind,
        key: Vec<u8>,
        value: Value,
        ttl: Duration,
        created: Option<u64>,
    ) -> Record {
        let now = unix_ms();
        let owner = signer.verifying_key().to_bytes();
        let mut own = self.own.lock().unwrap_or_else(|p| p.into_inner());
        let prev = own.get(&(owner, kind as u8, key.clone())).copied();
        let version = prev.map_or(now, |p| now.max(p.version + 1));
        let created = match (kind.policy(), prev, created) {
            (Policy::Claim, Some(p), _) => p.created,
            (Policy::Claim, None, Some(c)) => c.min(now),
            _ => now,
        };
        let expires = now.saturating_add(ttl.as_millis() as u64);
        if kind.policy() != Policy::Set {
            own.insert(
                (owner, kind as u8, key.clone()),
                Own {
                    ttl,
                    version,
                    created,
                },
            );
        }
        Record::sign(kind, key, value, signer, version, created, expires)
    }

    async fn put_signed(&self, record: Record) -> Result<u8, RecordsError> {
        self.put_with(record, true).await
    }

    /// Puts a record signed elsewhere (a private message's mailbox item, signed by a key of
    /// its own) once: this node does not renew it; its maker puts it again if it must.
    pub async fn put_record(&self, record: Record) -> Result<u8, RecordsError> {
        self.put_with(record, false).await
    }

    /// Signs an item of a *set* kind (a blob's provider record) with the node's key and puts
    /// it once: this layer does not renew it; its maker puts it again while it holds.
    pub async fn put_item(
        &self,
        kind: Kind,
        key: Vec<u8>,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<u8, RecordsError> {
        if kind.policy() != Policy::Set || ttl.is_zero() || ttl > MAX_TTL {
            return Err(RecordsError::Invalid {
                field: "kind",
                problem: "a set kind's item, living 1 s to the longest TTL".into(),
            });
        }
        let key = key_for(self.owner(), kind, key)?;
        let signer = self.key.clone();
        let record = self.sign(&signer, kind, key, Value::Data(value), ttl, None);
        self.put_with(record, false).await
    }

    /// Removes `items` from the mailbox of `recipient`'s account (signed by it), for `ttl`
    /// (at least as long as the items would have lived).
    pub async fn remove_items(
        &self,
        recipient: &SigningKey,
        items: Vec<chat_overlay::records::Hash>,
        ttl: Duration,
    ) -> Result<u8, RecordsError> {
        let key = recipient.verifying_key().to_bytes().to_vec();
        let record = self.sign(
            recipient,
            Kind::Mailbox,
            key,
            Value::Removed(items),
            ttl,
            None,
        );
        self.put_with(record, true).await
    }

    async fn put_with(&self, record: Record, own: bool) -> Result<u8, RecordsError> {
        let (tx, rx) = oneshot::channel();
        let token = self.wait(Waiter::Put(tx))?;
        self.submit(
            token,
            Input::Records(RecordsInput::Put { token, record, own }),
        )?;
        Ok(self.answer(token, rx).await??)
    }

    fn wait(&self, w: Waiter) -> Result<u64, RecordsError> {
        let mut waiters = self.waiters.lock().unwrap_or_else(|p| p.into_inner());
        if waiters.len() >= MAX_PENDING {
            return Err(RecordsError::Busy);
        }
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        waiters.insert(token, w);
        Ok(token)
    }

    /// The call waiting for `token`, no longer waiting.
    fn take(&self, token: u64) -> Option<Waiter> {
        self.waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&token)
    }

    fn forget(&self, token: u64) {
        self.take(token);
    }

    fn submit(&self, token: u64, input: Input) -> Result<(), RecordsError> {
        let sent = self.ring.get().is_some_and(|r| r.submit(input));
        if !sent {
            self.forget(token);
            return Err(RecordsError::Busy);
        }
        Ok(())
    }

    async fn answer<T>(&self, token: u64, rx: oneshot::Receiver<T>) -> Result<T, RecordsError> {
        match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
            Ok(Ok(v)) => Ok(v),
            _ => {
                self.forget(token);
                Err(RecordsError::NoAnswer)
            }
        }
    }

    /// An own record is about to expire: sign it again with a fresh expiry and put it.
    fn renew(&self, old: &Record) {
        let signer = if old.owner == self.owner() {
            self.key.clone()
        } else {
            match self
                .signers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&old.owner)
            {
                Some(k) => k.clone(),
                None => return,
            }
        };
        let Some(kind) = Kind::from_u8(old.kind) else {
            return;
        };
        let ttl = self
            .own
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(old.owner, old.kind, old.key.clone()))
            .map_or(DEFAULT_TTL, |o| o.ttl);
        let record = self.sign(&signer, kind, old.key.clone(), old.value.clone(), ttl, None);
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let input = Input::Records(RecordsInput::Put {
            token,
            record,
            own: true,
        });
        if !self.ring.get().is_some_and(|r| r.submit(input)) {
            warn!(
                kind = kind.name(),
                "could not re-sign an expiring record: the driver is busy"
            );
        }
    }
}

/// The key a record of `kind` put by `owner` goes under: `key` checked against the kind
/// (empty: `owner`'s key, for the kinds keyed by owner).
fn key_for(owner: [u8; 32], kind: Kind, key: Vec<u8>) -> Result<Vec<u8>, RecordsError> {
    if key.is_empty() && kind.policy() == Policy::Latest {
        return Ok(owner.to_vec());
    }
    let ok = match kind.policy() {
        Policy::Claim => chat_overlay::records::policy::valid_nick(&key),
        Policy::Latest => key == owner,
        Policy::Set => key.len() == 32,
    };
    if ok {
        Ok(key)
    } else {
        let problem = match kind.policy() {
            Policy::Claim => "a name is 1-32 of a-z 0-9 . _ - starting with a letter or digit",
            Policy::Latest => "empty (the owner's key) or the owner's 32-byte key",
            Policy::Set => "the recipient's 32-byte public key",
        };
        Err(RecordsError::Invalid {
            field: "key",
            problem: problem.into(),
        })
    }
}

impl RecordSink for Records {
    fn event(&self, e: RecordsEvent) {
        match e {
            RecordsEvent::PutDone { token, result } => {
                if let Some(Waiter::Put(tx)) = self.take(token) {
                    let _ = tx.send(result);
                }
            }
            RecordsEvent::GetDone { token, result } => {
                if let Some(Waiter::Get(tx)) = self.take(token) {
                    let _ = tx.send(result);
                }
            }
            RecordsEvent::Held(r) => {
                if r.kind == Kind::Mailbox as u8
                    && let Some(tx) = self.held_items.get()
                {
                    let _ = tx.try_send(r.clone());
                }
                self.persist(Write::Hold(Box::new(r)));
            }
            RecordsEvent::Released(h) => self.persist(Write::Release(h)),
            RecordsEvent::Expiring(r) => self.renew(&r),
            RecordsEvent::Lost { kind, key, holder } => {
                warn!(
                    kind,
                    key = %String::from_utf8_lossy(&key),
                    holder = %hex::encode(holder),
                    "a name this node claimed is held by another key"
                );
                self.report_lost(None, key, holder);
            }
            RecordsEvent::Conflict { key, winner, loser } => {
                info!(
                    key = %String::from_utf8_lossy(&key),
                    winner = %hex::encode(winner),
                    loser = %hex::encode(loser),
                    "two claims of one name met here; the holders' answers settled it"
                );
                self.report_lost(Some(loser), key, winner);
            }
        }
    }
}

impl Records {
    /// Tells the people service that a hosted account lost `name` (`owner` when known; else
    /// every hosted account that claimed it is asked to check).
    fn report_lost(&self, owner: Option<[u8; 32]>, name: Vec<u8>, holder: [u8; 32]) {
        let hosted: Vec<[u8; 32]> = {
            let signers = self.signers.lock().unwrap_or_else(|p| p.into_inner());
            match owner {
                Some(o) if signers.contains_key(&o) => vec![o],
                Some(_) => Vec::new(),
                None => signers.keys().copied().collect(),
            }
        };
        if let Some(tx) = self.lost.get() {
            for owner in hosted.into_iter().filter(|o| *o != holder) {
                let _ = tx.try_send(LostName {
                    owner,
                    name: name.clone(),
                    holder,
                });
            }
        }
    }

    fn persist(&self, w: Write) {
        if let Some(f) = self.file.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            f.write(w);
        }
    }
}
