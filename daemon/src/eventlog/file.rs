//! The event log's files: `events.log` and its rotated copies `events.log.1` (newest) …
//! `events.log.N-1` (oldest), each at most `max_bytes`, so the whole log never takes more than
//! `max_bytes × N` (`log.events_max_bytes`, `log.events_files`).
//!
//! Lines are appended; the one change in place is [`Files::redact`]: when a message is deleted,
//! the text of its record and of its edits' records is blanked (the line keeps its length,
//! padded with spaces, which JSON allows). When the next line would take `events.log`
//! past its bound, the oldest copy is deleted, each other one is renamed one number up, and
//! `events.log` becomes `events.log.1`. Files are created mode 0600 (an existing one that
//! group or others can read is made 0600). A line cut off by a crash is removed at the next
//! start. [`Files::snapshot`] opens every file and notes its length, so a reader sees one
//! consistent state while writing goes on; [`Files::prune`] removes the records older than
//! `chat.retention_days`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::record::{Kind, MAX_LINE, Record};

/// The current file's name in the data directory.
pub const FILE: &str = "events.log";
/// Mode of every event-log file.
pub const MODE: u32 = 0o600;

/// The rotating set of files.
#[derive(Debug)]
pub struct Files {
    dir: PathBuf,
    max_bytes: u64,
    files: u32,
    current: File,
    /// Bytes in `events.log`, those still in `pending` included.
    size: u64,
    /// Lines appended but not yet written (one `write` per batch: [`Files::flush`]).
    pending: Vec<u8>,
    /// Lines dropped because writing them failed, not yet counted ([`Files::take_lost`]).
    lost: u64,
}

/// One file of a snapshot: an open handle and the length to read up to.
pub type Part = (File, u64);

impl Files {
    /// Opens (creating) `events.log` in `dir`, and removes rotated files beyond `files - 1`
    /// (left by a larger `log.events_files`).
    pub fn open(dir: &Path, max_bytes: u64, files: u32) -> io::Result<Files> {
        let files = files.max(1);
        let most = *crate::config::log::EVENTS_FILES_RANGE.end() as u32;
        for n in files..=most {
            match std::fs::remove_file(path_of(dir, n)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        let current = open_append(&path_of(dir, 0))?;
        let size = trim_partial_line(&current)?;
        Ok(Files {
            dir: dir.to_owned(),
            max_bytes,
            files,
            current,
            size,
            pending: Vec::new(),
            lost: 0,
        })
    }

    /// The path of file `n` (0: `events.log`).
    pub fn path(&self, n: u32) -> PathBuf {
        path_of(&self.dir, n)
    }

    /// Bytes in `events.log`.
    #[cfg(test)]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends `line` (one record, newline included), rotating first if it would not fit.
    /// The line is buffered: [`Files::flush`] writes it (every other method flushes first).
    pub fn append(&mut self, line: &str) -> io::Result<()> {
        let len = line.len() as u64;
        if self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        self.pending.extend_from_slice(line.as_bytes());
        self.size += len;
        Ok(())
    }

    /// Writes the buffered lines with one `write`. On failure they are dropped (not retried
    /// forever) and counted for [`Files::take_lost`].
    pub fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.current.write_all(&self.pending);
        if result.is_err() {
            // What was not written is not in the file (a partial line is trimmed at the next
            // start); the size counts what the file may hold at most. A record's line holds
            // one newline, its last byte (JSON escapes any other).
            self.size = self.size.saturating_sub(self.pending.len() as u64);
            self.lost += self.pending.iter().filter(|&&b| b == b'\n').count() as u64;
        }
        self.pending.clear();
        result
    }

    /// Lines dropped since the last call because writing them failed.
    pub fn take_lost(&mut self) -> u64 {
        std::mem::take(&mut self.lost)
    }

    /// `events.log` becomes `events.log.1` (the oldest copy goes), and a new one starts.
    fn rotate(&mut self) -> io::Result<()> {
        self.flush()?;
        let last = self.files - 1;
        if last == 0 {
            // A single file: start it over.
            self.current.set_len(0)?;
            self.size = 0;
            return Ok(());
        }
        match std::fs::remove_file(self.path(last)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        for n in (1..last).rev() {
            match std::fs::rename(self.path(n), self.path(n + 1)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(self.path(0), self.path(1))?;
        self.current = open_append(&self.path(0))?;
        self.size = 0;
        Ok(())
    }

    /// Every file, oldest first, opened now with its current length.
    pub fn snapshot(&mut self) -> io::Result<Vec<Part>> {
        self.flush()?;
        let mut parts = Vec::new();
        for n in (1..self.files).rev() {
            match File::open(self.path(n)) {
                Ok(f) => {
                    let len = f.metadata()?.len();
                    parts.push((f, len));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        parts.push((File::open(self.path(0))?, self.size));
        Ok(parts)
    }

    /// Removes the records logged before `cut_ms`: each file that starts with one is
    /// rewritten without them (a rotated file left empty is deleted). Returns how many went.
    pub fn prune(&mut self, cut_ms: u64) -> io::Result<usize> {
        self.flush()?;
        let mut removed = 0;
        for n in (0..self.files).rev() {
            let path = self.path(n);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let tmp = self.dir.join(format!(".{FILE}.prune"));
            let _ = std::fs::remove_file(&tmp);
            let mut out = io::BufWriter::new(open_append(&tmp)?);
            let (mut gone, mut kept, mut failed) = (0, 0u64, None);
            for_each_line(file, u64::MAX, |line| {
                match Record::parse(line) {
                    Some(r) if r.ts_ms >= cut_ms => match out.write_all(line.as_bytes()) {
                        Ok(()) => kept += line.len() as u64,
                        Err(e) => failed = Some(e),
                    },
                    _ => gone += 1,
                }
                failed.is_none()
            })?;
            if let Some(e) = failed {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
            if gone == 0 {
                let _ = std::fs::remove_file(&tmp);
                // Records are in time order: newer files hold nothing older.
                break;
            }
            removed += gone;
            let out = out.into_inner().map_err(|e| e.into_error())?;
            if kept == 0 && n > 0 {
                std::fs::remove_file(&tmp)?;
                std::fs::remove_file(&path)?;
                continue;
            }
            out.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            if n == 0 {
                self.current = out;
                self.size = kept;
            }
        }
        Ok(removed)
    }

    /// Blanks the text of message `target`'s record and of its edits' records (64 hex
    /// digits), newest file first, back to the file that holds the message; returns how many
    /// records it blanked. The bytes are overwritten in place and forced to the disk.
    pub fn redact(&mut self, target: &str) -> io::Result<usize> {
        self.flush()?;
        let needle = format!("\"{target}\"");
        let mut blanked = 0;
        for n in 0..self.files {
            let path = self.path(n);
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let len = if n == 0 { self.size } else { u64::MAX };
            let (mut hits, mut origin) = (Vec::new(), false);
            for_each_line_at(file, len, |offset, line| {
                if !line.contains(&needle) {
                    return true;
                }
                let Some(r) = Record::parse(line) else {
                    return true;
                };
                let message = r.kind == Kind::Message && r.id == target;
                origin |= message;
                let edit = r.kind == Kind::Edit && r.target == target;
                if (message || edit) && !r.text.is_empty() {
                    hits.push((offset, line.len(), r));
                }
                true
            })?;
            if !hits.is_empty() {
                // Not the append handle: pwrite on an O_APPEND file writes at the end.
                let out = OpenOptions::new().write(true).open(&path)?;
                for (offset, len, mut r) in hits {
                    r.text.clear();
                    let mut line = r.line();
                    line.pop();
                    if line.len() >= len {
                        continue; // cannot be: the same record without its text is shorter
                    }
                    let pad = len - 1 - line.len();
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push('\n');
                    out.write_all_at(line.as_bytes(), offset)?;
                    blanked += 1;
                }
                out.sync_data()?;
            }
            if origin {
                break;
            }
        }
        Ok(blanked)
    }

    /// Forces what was written to the disk.
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        self.current.sync_data()
    }
}

fn path_of(dir: &Path, n: u32) -> PathBuf {
    match n {
        0 => dir.join(FILE),
        n => dir.join(format!("{FILE}.{n}")),
    }
}

/// Opens `path` for appending (and reading back a cut line), created mode 0600; an existing file open to group or others
/// is made 0600.
fn open_append(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(MODE)
        .open(path)?;
    let meta = f.metadata()?;
    if meta.permissions().mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(MODE))?;
    }
    Ok(f)
}

/// Cuts a line left unfinished by a crash (no newline at the end); returns the new length.
fn trim_partial_line(f: &File) -> io::Result<u64> {
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut reader = f.try_clone()?;
    let back = len.min(2 * MAX_LINE as u64);
    reader.seek(SeekFrom::Start(len - back))?;
    let mut tail = Vec::new();
    reader.take(back).read_to_end(&mut tail)?;
    if tail.last() == Some(&b'\n') {
        return Ok(len);
    }
    let keep = match tail.iter().rposition(|&b| b == b'\n') {
        Some(i) => len - back + i as u64 + 1,
        None if back == len => 0,
        // No newline in the last two lines' worth: not an event log we wrote.
        None => return Ok(len),
    };
    f.set_len(keep)?;
    Ok(keep)
}

/// Calls `f` with each line (newline included) of the first `len` bytes of `file`, from its
/// start, until `f` returns false. Lines longer than twice [`MAX_LINE`] (not ours) and bytes
/// that are not UTF-8 are skipped; a last line without its newline is left out.
pub fn for_each_line(file: File, len: u64, mut f: impl FnMut(&str) -> bool) -> io::Result<()> {
    for_each_line_at(file, len, |_, line| f(line))
}

/// [`for_each_line`], with each line's offset in the file.
pub fn for_each_line_at(
    mut file: File,
    len: u64,
    mut f: impl FnMut(u64, &str) -> bool,
) -> io::Result<()> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(file.take(len));
    let mut line = Vec::with_capacity(1024);
    let mut offset = 0u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(2 * MAX_LINE as u64)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let at = offset;
        offset += n as u64;
        if line.last() != Some(&b'\n') {
            if n < 2 * MAX_LINE {
                return Ok(()); // the end of the data, mid-line
            }
            // Too long: skip to the next newline.
            offset += reader.skip_until(b'\n')? as u64;
            continue;
        }
        if let Ok(text) = std::str::from_utf8(&line)
            && !f(at, text)
        {
            return Ok(());
        }
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
