//! A bulk stream seen as blocking `Read`/`Write`, for chat-blobs' encoder and decoder on a
//! blocking thread: bounded channels of pieces between the blocking side and an async pump
//! that moves them to or from the stream. At most [`DEPTH`] pieces of [`PIECE`] bytes wait in
//! either direction.

use std::io::{self, Read, Write};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Bytes in one piece.
pub const PIECE: usize = 64 * 1024;
/// Pieces waiting at most, per direction.
pub const DEPTH: usize = 8;

/// The blocking side of an outgoing stream: writes are gathered into pieces and sent to the
/// pump; a gone pump (the stream failed) is `BrokenPipe`.
pub struct PieceWriter {
    tx: mpsc::Sender<Vec<u8>>,
    buf: Vec<u8>,
}

/// The blocking side of an incoming stream: pieces read by the pump, then end of file when
/// the stream finished cleanly, or the stream's error.
pub struct PieceReader {
    rx: mpsc::Receiver<io::Result<Vec<u8>>>,
    cur: Vec<u8>,
    pos: usize,
}

/// A writer for a blocking thread and the receiver [`pump_out`] drains.
pub fn writer() -> (PieceWriter, mpsc::Receiver<Vec<u8>>) {
    let (tx, rx) = mpsc::channel(DEPTH);
    (
        PieceWriter {
            tx,
            buf: Vec::with_capacity(PIECE),
        },
        rx,
    )
}

impl PieceWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIECE));
        self.tx
            .blocking_send(piece)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the stream is gone"))
    }
}

impl Write for PieceWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = PIECE - self.buf.len();
        let n = room.min(buf.len());
        self.buf.extend_from_slice(&buf[..n]);
        if self.buf.len() >= PIECE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Writes the pieces to `out` until the writer is dropped; returns the bytes written.
pub async fn pump_out(
    mut rx: mpsc::Receiver<Vec<u8>>,
    out: &mut (impl AsyncWrite + Unpin),
) -> io::Result<u64> {
    let mut n = 0u64;
    while let Some(piece) = rx.recv().await {
        out.write_all(&piece).await?;
        n += piece.len() as u64;
    }
    Ok(n)
}

/// A reader for a blocking thread, fed by [`pump_in`].
pub fn reader() -> (PieceReader, mpsc::Sender<io::Result<Vec<u8>>>) {
    let (tx, rx) = mpsc::channel(DEPTH);
    (
        PieceReader {
            rx,
            cur: Vec::new(),
            pos: 0,
        },
        tx,
    )
}

impl Read for PieceReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.pos >= self.cur.len() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Err(e)) => return Err(e),
                Some(Ok(piece)) => {
                    self.cur = piece;
                    self.pos = 0;
                }
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads `input` to its end in pieces for the reader; stops early when the reader is gone.
/// A failed read is handed to the reader as its error (a reset stream is not an end of file).
pub async fn pump_in(tx: mpsc::Sender<io::Result<Vec<u8>>>, input: &mut (impl AsyncRead + Unpin)) {
    loop {
        let mut piece = vec![0u8; PIECE];
        match input.read(&mut piece).await {
            Ok(0) => return,
            Ok(k) => {
                piece.truncate(k);
                if tx.send(Ok(piece)).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
    }
}
