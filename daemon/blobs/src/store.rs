//! The blob store: `blobs/` in a directory.
//!
//! ```text
//! blobs/complete/<hash>        a complete blob's bytes
//! blobs/complete/<hash>.obao   its bao outboard (pre-order hash pairs, chunk groups of 16 KiB)
//! blobs/partial/<hash>.data    a blob being fetched (full length, sparse) …
//! blobs/partial/<hash>.obao    … its outboard as far as verified …
//! blobs/partial/<hash>.ranges  … and the chunk ranges verified so far
//! blobs/pins/<hash>            present while the blob is pinned
//! blobs/tmp/                   imports and exports in progress; emptied on open
//! ```
//!
//! Names are only ever made from hashes (64 hex digits), never from input. A complete blob
//! appears by renames of fully written, synced files (outboard first, data last: a data file
//! is the mark of a complete blob); a crash leaves at most files in `tmp/` or an outboard
//! without data, both removed on open.
//!
//! Bounds: a blob is at most `max_file_bytes`; data and outboards of complete and partial
//! blobs together stay within `quota_bytes`, by evicting the least recently used unpinned
//! complete blobs; partial blobs reserve their full size when they start.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bao_tree::io::outboard::PreOrderOutboard;
use bao_tree::io::sync::CreateOutboard;

use crate::error::StoreError;
use crate::hash::{self, BLOCK_SIZE, Hash};
use crate::partial::{Partial, PartialPaths};

/// The store's bounds.
#[derive(Debug, Clone, Copy)]
pub struct StoreConfig {
    /// The largest blob accepted, imported or fetched.
    pub max_file_bytes: u64,
    /// Data and outboards of all blobs, complete and partial, stay within this.
    pub quota_bytes: u64,
}

/// A complete blob as the store lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    /// Its name.
    pub hash: Hash,
    /// Its length in bytes.
    pub size: u64,
    /// Whether eviction leaves it alone.
    pub pinned: bool,
}

struct Entry {
    size: u64,
    last_used: u64,
}

impl Entry {
    fn footprint(&self) -> u64 {
        self.size + hash::tree(self.size).outboard_size()
    }
}

/// A bounded content-addressed store of blobs (see the module doc).
pub struct BlobStore {
    pub(crate) root: PathBuf,
    pub(crate) cfg: StoreConfig,
    entries: HashMap<Hash, Entry>,
    pins: HashSet<Hash>,
    pub(crate) partials: HashMap<Hash, Partial>,
    clock: u64,
    tmp_seq: u64,
}

impl BlobStore {
    /// Opens (creating) the store in `dir/blobs`, finds its complete and partial blobs and
    /// removes what an interrupted write left behind.
    pub fn open(dir: &Path, cfg: StoreConfig) -> Result<Self, StoreError> {
        let root = dir.join("blobs");
        for sub in ["complete", "partial", "pins", "tmp"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(|e| StoreError::io(&p, e))?;
        }
        let tmp = root.join("tmp");
        for f in read_dir(&tmp)? {
            remove_quietly(&f);
        }
        let mut store = BlobStore {
            root,
            cfg,
            entries: HashMap::new(),
            pins: HashSet::new(),
            partials: HashMap::new(),
            clock: 0,
            tmp_seq: 0,
        };
        store.load_complete()?;
        store.load_partials()?;
        for f in read_dir(&store.root.join("pins"))? {
            if let Some(h) = file_hash(&f, "") {
                store.pins.insert(h);
            }
        }
        Ok(store)
    }

    fn load_complete(&mut self) -> Result<(), StoreError> {
        let dir = self.root.join("complete");
        let mut found: Vec<(SystemTime, Hash, u64)> = Vec::new();
        for f in read_dir(&dir)? {
            if let Some(h) = file_hash(&f, "") {
                let Ok(md) = fs::metadata(&f) else { continue };
                let ob = f.with_extension("obao");
                let ob_ok = fs::metadata(&ob)
                    .is_ok_and(|m| m.len() == hash::tree(md.len()).outboard_size());
                if !ob_ok {
                    tracing::warn!(blob = %h, "a blob without its outboard: removed");
                    remove_quietly(&f);
                    remove_quietly(&ob);
                    continue;
                }
                let t = md.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                found.push((t, h, md.len()));
            } else if let Some(h) = file_hash(&f, ".obao")
                && !dir.join(h.to_hex()).exists()
            {
                remove_quietly(&f);
            }
        }
        found.sort();
        for (_, h, size) in found {
            self.clock += 1;
            self.entries.insert(
                h,
                Entry {
                    size,
                    last_used: self.clock,
                },
            );
        }
        Ok(())
    }

    fn load_partials(&mut self) -> Result<(), StoreError> {
        let dir = self.root.join("partial");
        let mut hashes = HashSet::new();
        for f in read_dir(&dir)? {
            let h = [".ranges", ".data", ".obao"]
                .iter()
                .find_map(|ext| file_hash(&f, ext));
            match h {
                Some(h) => {
                    hashes.insert(h);
                }
                None => remove_quietly(&f),
            }
        }
        for h in hashes {
            let loaded = if self.entries.contains_key(&h) {
                None
            } else {
                Partial::load(&dir, &h).map_err(|e| StoreError::io(&dir, e))?
            };
            match loaded {
                Some(p) => {
                    self.partials.insert(h, p);
                }
                None => PartialPaths::new(&dir, &h).remove(),
            }
        }
        Ok(())
    }

    /// The store's bounds.
    pub fn config(&self) -> StoreConfig {
        self.cfg
    }

    /// Bytes used by complete and partial blobs, outboards included.
    pub fn used_bytes(&self) -> u64 {
        let complete: u64 = self.entries.values().map(Entry::footprint).sum();
        let partial: u64 = self.partials.values().map(Partial::reserved).sum();
        complete + partial
    }

    /// Whether the complete blob is here.
    pub fn has(&self, hash: &Hash) -> bool {
        self.entries.contains_key(hash)
    }

    /// The complete blobs, most recently used first.
    pub fn list(&self) -> Vec<BlobInfo> {
        let mut v: Vec<(&Hash, &Entry)> = self.entries.iter().collect();
        v.sort_by_key(|(_, e)| std::cmp::Reverse(e.last_used));
        v.into_iter()
            .map(|(h, e)| BlobInfo {
                hash: *h,
                size: e.size,
                pinned: self.pins.contains(h),
            })
            .collect()
    }

    /// The complete blob's info, if it is here.
    pub fn info(&self, hash: &Hash) -> Option<BlobInfo> {
        self.entries.get(hash).map(|e| BlobInfo {
            hash: *hash,
            size: e.size,
            pinned: self.pins.contains(hash),
        })
    }

    pub(crate) fn data_path(&self, hash: &Hash) -> PathBuf {
        self.root.join("complete").join(hash.to_hex())
    }

    fn outboard_path(&self, hash: &Hash) -> PathBuf {
        self.root
            .join("complete")
            .join(format!("{}.obao", hash.to_hex()))
    }

    pub(crate) fn partial_dir(&self) -> PathBuf {
        self.root.join("partial")
    }

    pub(crate) fn tmp_path(&mut self, what: &str) -> PathBuf {
        self.tmp_seq += 1;
        let mut r = [0u8; 8];
        // Uniqueness within this process comes from the sequence number; the random part only
        // keeps two processes from colliding (which the daemon's lock already prevents).
        let _ = getrandom::fill(&mut r);
        self.root
            .join("tmp")
            .join(format!("{what}-{}-{}", self.tmp_seq, hex::encode(r)))
    }

    /// Marks the blob as just used (for eviction order, and across restarts).
    pub fn touch(&mut self, hash: &Hash) {
        self.clock += 1;
        let clock = self.clock;
        if let Some(e) = self.entries.get_mut(hash) {
            e.last_used = clock;
            stamp(&self.data_path(hash));
        }
    }

    /// Keeps the blob from eviction (own files, files of kept messages). Pinning a blob
    /// that is not here yet is allowed: it is pinned when it arrives.
    pub fn pin(&mut self, hash: &Hash) -> Result<(), StoreError> {
        let p = self.root.join("pins").join(hash.to_hex());
        File::create(&p).map_err(|e| StoreError::io(&p, e))?;
        self.pins.insert(*hash);
        Ok(())
    }

    /// Lets eviction take the blob again.
    pub fn unpin(&mut self, hash: &Hash) -> Result<(), StoreError> {
        let p = self.root.join("pins").join(hash.to_hex());
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&p, e)),
        }
        self.pins.remove(hash);
        Ok(())
    }

    /// Whether the blob is pinned.
    pub fn is_pinned(&self, hash: &Hash) -> bool {
        self.pins.contains(hash)
    }

    /// Removes a blob, complete or partial, and its pin. Removing what is not here is fine.
    pub fn remove(&mut self, hash: &Hash) -> Result<(), StoreError> {
        self.unpin(hash)?;
        if let Some(p) = self.partials.remove(hash) {
            p.paths.remove();
        }
        if self.entries.remove(hash).is_some() {
            let d = self.data_path(hash);
            fs::remove_file(&d).map_err(|e| StoreError::io(&d, e))?;
            remove_quietly(&self.outboard_path(hash));
        }
        Ok(())
    }

    /// Frees room for `needed` more bytes by evicting least recently used unpinned complete
    /// blobs; evicts nothing if that cannot be enough.
    pub(crate) fn make_room(&mut self, needed: u64) -> Result<(), StoreError> {
        let used = self.used_bytes();
        let quota = self.cfg.quota_bytes;
        if used.saturating_add(needed) <= quota {
            return Ok(());
        }
        let mut victims: Vec<(u64, Hash, u64)> = self
            .entries
            .iter()
            .filter(|(h, _)| !self.pins.contains(h))
            .map(|(h, e)| (e.last_used, *h, e.footprint()))
            .collect();
        victims.sort();
        let evictable: u64 = victims.iter().map(|v| v.2).sum();
        let available = quota.saturating_sub(used).saturating_add(evictable);
        if needed > available {
            return Err(StoreError::QuotaFull {
                needed,
                available,
                quota,
            });
        }
        let mut free = quota.saturating_sub(used);
        for (_, h, footprint) in victims {
            if free >= needed {
                break;
            }
            tracing::info!(blob = %h, bytes = footprint, "evicting the least recently used blob");
            self.remove(&h)?;
            free += footprint;
        }
        Ok(())
    }

    /// Imports the bytes of `reader` (at most `max_file_bytes`) and returns the blob.
    pub fn import_reader(&mut self, mut reader: impl Read) -> Result<BlobInfo, StoreError> {
        let tmp = self.tmp_path("import");
        let res = (|| {
            let mut f = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
            let limit = self.cfg.max_file_bytes;
            let n = io::copy(&mut (&mut reader).take(limit.saturating_add(1)), &mut f)
                .map_err(|e| StoreError::io(&tmp, e))?;
            if n > limit {
                return Err(StoreError::TooLarge { limit });
            }
            f.sync_data().map_err(|e| StoreError::io(&tmp, e))?;
            drop(f);
            self.import_temp(&tmp, n)
        })();
        remove_quietly(&tmp);
        res
    }

    /// Imports a file (read, not moved).
    pub fn import_file(&mut self, path: &Path) -> Result<BlobInfo, StoreError> {
        let f = File::open(path).map_err(|e| StoreError::io(path, e))?;
        let len = f.metadata().map_err(|e| StoreError::io(path, e))?.len();
        if len > self.cfg.max_file_bytes {
            return Err(StoreError::TooLarge {
                limit: self.cfg.max_file_bytes,
            });
        }
        self.import_reader(f)
    }

    /// Imports bytes in memory.
    pub fn import_bytes(&mut self, bytes: &[u8]) -> Result<BlobInfo, StoreError> {
        self.import_reader(bytes)
    }

    /// Moves a fully written temporary file of `size` bytes into the store under its hash.
    pub(crate) fn import_temp(&mut self, tmp: &Path, size: u64) -> Result<BlobInfo, StoreError> {
        let f = File::open(tmp).map_err(|e| StoreError::io(tmp, e))?;
        let ob = PreOrderOutboard::<Vec<u8>>::create_sized(
            BufReader::with_capacity(1 << 20, f),
            size,
            BLOCK_SIZE,
        )
        .map_err(|e| StoreError::io(tmp, e))?;
        let hash = Hash::from(ob.root);
        if self.entries.contains_key(&hash) {
            self.touch(&hash);
            remove_quietly(tmp);
            return Ok(BlobInfo {
                hash,
                size,
                pinned: self.pins.contains(&hash),
            });
        }
        // A fetch of the same blob under way is superseded by the import.
        if let Some(p) = self.partials.remove(&hash) {
            p.paths.remove();
        }
        self.make_room(size + ob.tree.outboard_size())?;
        let ob_tmp = self.tmp_path("obao");
        write_synced(&ob_tmp, &ob.data)?;
        self.install(&hash, tmp, &ob_tmp)?;
        self.clock += 1;
        self.entries.insert(
            hash,
            Entry {
                size,
                last_used: self.clock,
            },
        );
        tracing::debug!(blob = %hash, size, "blob stored");
        Ok(BlobInfo {
            hash,
            size,
            pinned: self.pins.contains(&hash),
        })
    }

    /// Renames a synced outboard, then the synced data, into `complete/`.
    pub(crate) fn install(&self, hash: &Hash, data: &Path, ob: &Path) -> Result<(), StoreError> {
        let ob_dst = self.outboard_path(hash);
        fs::rename(ob, &ob_dst).map_err(|e| StoreError::io(&ob_dst, e))?;
        let dst = self.data_path(hash);
        fs::rename(data, &dst).map_err(|e| StoreError::io(&dst, e))?;
        // The same clock as `touch`: a write's own timestamp is coarser.
        stamp(&dst);
        let dir = self.root.join("complete");
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io(&dir, e))
    }

    /// Registers a blob installed by a finished fetch (its bytes were reserved as partial).
    pub(crate) fn insert_complete(&mut self, hash: Hash, size: u64) {
        self.clock += 1;
        self.entries.insert(
            hash,
            Entry {
                size,
                last_used: self.clock,
            },
        );
    }

    /// Opens the complete blob for reading, marking it used.
    pub fn open_blob(&mut self, hash: &Hash) -> Result<File, StoreError> {
        if !self.entries.contains_key(hash) {
            return Err(StoreError::NotFound(*hash));
        }
        self.touch(hash);
        let p = self.data_path(hash);
        File::open(&p).map_err(|e| StoreError::io(&p, e))
    }

    /// The blob's outboard, for serving.
    pub(crate) fn open_outboard(&self, hash: &Hash) -> Result<PreOrderOutboard<File>, StoreError> {
        let size = self
            .entries
            .get(hash)
            .ok_or(StoreError::NotFound(*hash))?
            .size;
        let p = self.outboard_path(hash);
        let f = File::open(&p).map_err(|e| StoreError::io(&p, e))?;
        Ok(PreOrderOutboard {
            root: hash.blake3(),
            tree: hash::tree(size),
            data: f,
        })
    }

    /// Writes the blob to `dest`: to a temporary file next to it, renamed when complete and
    /// checked against the hash, so `dest` never holds a partial or wrong copy.
    pub fn export(&mut self, hash: &Hash, dest: &Path) -> Result<u64, StoreError> {
        let mut src = self.open_blob(hash)?;
        let tmp = sibling_tmp(dest);
        let res = (|| {
            let mut out = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
            let mut hasher = blake3::Hasher::new();
            let mut buf = vec![0u8; 1 << 16];
            let mut n = 0u64;
            loop {
                let k = src.read(&mut buf).map_err(|e| StoreError::io(&tmp, e))?;
                if k == 0 {
                    break;
                }
                hasher.update(&buf[..k]);
                out.write_all(&buf[..k])
                    .map_err(|e| StoreError::io(&tmp, e))?;
                n += k as u64;
            }
            if Hash::from(hasher.finalize()) != *hash {
                return Err(StoreError::Corrupt(*hash));
            }
            out.sync_data().map_err(|e| StoreError::io(&tmp, e))?;
            fs::rename(&tmp, dest).map_err(|e| StoreError::io(dest, e))?;
            Ok(n)
        })();
        if res.is_err() {
            remove_quietly(&tmp);
        }
        if matches!(res, Err(StoreError::Corrupt(_))) {
            tracing::warn!(blob = %hash, "a stored blob does not match its hash: removed");
            self.remove(hash)?;
        }
        res
    }

    /// Reads the whole blob into memory (small blobs: thumbnails, tests).
    pub fn read_to_vec(&mut self, hash: &Hash) -> Result<Vec<u8>, StoreError> {
        let mut f = self.open_blob(hash)?;
        let mut v = Vec::new();
        let p = self.data_path(hash);
        f.read_to_end(&mut v).map_err(|e| StoreError::io(&p, e))?;
        Ok(v)
    }
}

/// A temporary name next to `dest`, in the same directory so the rename stays atomic.
pub(crate) fn sibling_tmp(dest: &Path) -> PathBuf {
    let mut r = [0u8; 6];
    let _ = getrandom::fill(&mut r);
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.part-{}", hex::encode(r)))
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut f = File::create(path).map_err(|e| StoreError::io(path, e))?;
    f.write_all(bytes).map_err(|e| StoreError::io(path, e))?;
    f.sync_data().map_err(|e| StoreError::io(path, e))
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let rd = fs::read_dir(dir).map_err(|e| StoreError::io(dir, e))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| StoreError::io(dir, e))?;
        out.push(e.path());
    }
    Ok(out)
}

/// The hash a store file is named after, if its name is exactly `<64 hex><ext>`.
fn file_hash(path: &Path, ext: &str) -> Option<Hash> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(ext)?;
    if stem.len() != 64 || stem.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    stem.parse().ok()
}

/// Sets a complete blob's modification time to now: its last use, the eviction order a
/// restart finds.
fn stamp(path: &Path) {
    if let Err(e) = File::open(path).and_then(|f| f.set_modified(SystemTime::now())) {
        tracing::debug!(path = %path.display(), error = %e, "recording a blob's use");
    }
}

pub(crate) fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "removing a blob store file");
    }
}
