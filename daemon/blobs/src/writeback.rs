//! Starting the writeback of freshly written bytes without waiting for it
//! (`sync_file_range(SYNC_FILE_RANGE_WRITE)` on Linux; nothing elsewhere).
//!
//! A fetch writes its blob into the page cache and syncs once, when the blob completes. Left
//! alone, the kernel writes nothing back before that sync (the dirty limits are gigabytes
//! on a machine with memory), so the whole blob would reach the disk only then, after the
//! transfer. Started for every MiB the fetch records, the disk's writes overlap the
//! transfer and the final sync waits for the tail only. It is a hint: no durability is
//! claimed from it (the sync at the end does that), and a failure is ignored.

use std::fs::File;

/// Starts writing back `len` bytes of `file` from `offset` to the disk.
#[cfg(target_os = "linux")]
pub fn start(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: a plain system call on a file descriptor this `File` owns and keeps open for
    // the call's duration; no memory is passed.
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}

/// Starts writing back `len` bytes of `file` from `offset` (a no-op on this system).
#[cfg(not(target_os = "linux"))]
pub fn start(_file: &File, _offset: u64, _len: u64) {}

#[cfg(test)]
mod tests {
    use std::io::Write;

    #[test]
    fn starting_writeback_keeps_the_bytes() {
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(&[7u8; 10_000]).expect("write");
        super::start(&f, 0, 10_000);
        super::start(&f, u64::MAX, 1); // out of range: ignored
        f.sync_data().expect("sync");
        assert_eq!(f.metadata().expect("meta").len(), 10_000);
    }
}
