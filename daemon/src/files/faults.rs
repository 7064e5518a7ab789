//! Faults a provider can be told to commit, for the e2e tests of issue 35's judged scenarios
//! (tests/e2e/ring/file_swarm.rs): read from the environment in test builds only
//! (`debug_assertions`); release builds ignore them.
//!
//! - [`CORRUPT_ENV`]`=N`: flip one bit of byte N of every answer served, after the provider's
//!   own check of its bytes (a hostile provider).
//! - [`RATE_ENV`]`=KIB`: serve each answer at most KIB KiB/s (a provider slow enough for a
//!   test to see a fetch halfway on loopback, where 50 MB take about a second).

use std::io;
use std::time::{Duration, Instant};

/// The byte of every answer to corrupt.
pub const CORRUPT_ENV: &str = "CHAT_FILES_TEST_CORRUPT_SERVE";
/// The most KiB/s of one answer.
pub const RATE_ENV: &str = "CHAT_FILES_TEST_SERVE_KIB_S";

/// The faults this node commits (module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct Faults {
    corrupt_at: Option<u64>,
    bytes_per_sec: Option<u64>,
}

impl Faults {
    /// The faults the environment asks for; `None` in release builds or when none is set.
    pub fn from_env() -> Option<Faults> {
        if !cfg!(debug_assertions) {
            return None;
        }
        let read = |name| std::env::var(name).ok()?.parse::<u64>().ok();
        let f = Faults {
            corrupt_at: read(CORRUPT_ENV),
            bytes_per_sec: read(RATE_ENV).filter(|&k| k > 0).map(|k| k * 1024),
        };
        (f.corrupt_at.is_some() || f.bytes_per_sec.is_some()).then_some(f)
    }

    /// `inner`, committing the faults on what goes through.
    pub fn wrap<W: io::Write>(self, inner: W) -> Faulty<W> {
        Faulty {
            inner,
            faults: self,
            pos: 0,
            start: Instant::now(),
        }
    }
}

/// A writer committing [`Faults`] (on a blocking thread: it sleeps to keep the rate).
pub struct Faulty<W> {
    inner: W,
    faults: Faults,
    pos: u64,
    start: Instant,
}

impl<W: io::Write> io::Write for Faulty<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let start = self.pos;
        let flip = self
            .faults
            .corrupt_at
            .and_then(|at| at.checked_sub(start))
            .filter(|&k| k < buf.len() as u64);
        let n = match flip {
            Some(k) => {
                let mut b = buf.to_vec();
                b[k as usize] ^= 0x01;
                self.inner.write(&b)?
            }
            None => self.inner.write(buf)?,
        };
        self.pos += n as u64;
        if let Some(rate) = self.faults.bytes_per_sec {
            let due = Duration::from_secs_f64(self.pos as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(self.start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn one_bit_of_the_chosen_byte_flips() {
        let f = Faults {
            corrupt_at: Some(5),
            bytes_per_sec: None,
        };
        let mut out = Vec::new();
        let mut w = f.wrap(&mut out);
        w.write_all(&[0u8; 4]).expect("writes");
        w.write_all(&[0u8; 4]).expect("writes");
        assert_eq!(out, [0, 0, 0, 0, 0, 1, 0, 0]);
    }
}
