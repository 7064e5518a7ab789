//! Frames on the wire: a 4-byte big-endian length, then that many bytes of CBOR (one message).
//!
//! A stream carries frames back to back (a link keeps one open while it has traffic) and ends
//! at a frame boundary. The reader checks the
//! announced length against the maximum before reading or allocating anything, and insists
//! that the payload is exactly one CBOR value of the expected type.

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes of the length prefix.
pub const HEADER: usize = 4;

/// Why a frame could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The frame is longer than allowed.
    #[error("frame of {len} bytes exceeds the maximum of {max}")]
    Oversized { len: usize, max: usize },
    /// The payload is not one CBOR value of the expected type.
    #[error("undecodable frame: {0}")]
    Undecodable(String),
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// Reading the stream failed.
    #[error("stream: {0}")]
    Io(#[from] std::io::Error),
    /// The value could not be encoded (a bug).
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Encodes `msg` as one frame of at most `max` payload bytes.
pub fn encode<M: Serialize>(msg: &M, max: usize) -> Result<Vec<u8>, FrameError> {
    let mut buf = vec![0u8; HEADER];
    ciborium::into_writer(msg, &mut buf).map_err(|e| FrameError::Encode(e.to_string()))?;
    let len = buf.len() - HEADER;
    if len > max {
        return Err(FrameError::Oversized { len, max });
    }
    let prefix = u32::try_from(len).map_err(|_| FrameError::Oversized { len, max })?;
    buf[..HEADER].copy_from_slice(&prefix.to_be_bytes());
    Ok(buf)
}

/// Decodes one payload: exactly one CBOR value of type `M`, nothing after it.
pub fn decode<M: DeserializeOwned>(payload: &[u8]) -> Result<M, FrameError> {
    let mut cursor = std::io::Cursor::new(payload);
    let msg = ciborium::from_reader(&mut cursor)
        .map_err(|e: ciborium::de::Error<std::io::Error>| FrameError::Undecodable(e.to_string()))?;
    if cursor.position() != payload.len() as u64 {
        return Err(FrameError::Undecodable("trailing bytes".into()));
    }
    Ok(msg)
}

/// Reads the next frame's length prefix and checks it against `max`; `Ok(None)` at a clean
/// end of stream. A link's stream stays open between frames, so this may wait long.
pub async fn read_len<R: AsyncRead + Unpin>(
    stream: &mut R,
    max: usize,
) -> Result<Option<usize>, FrameError> {
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        let n = stream.read(&mut header[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(header) as usize;
    if len > max {
        return Err(FrameError::Oversized { len, max });
    }
    Ok(Some(len))
}

/// Reads a payload of `len` bytes (checked by [`read_len`]).
pub async fn read_payload<R: AsyncRead + Unpin>(
    stream: &mut R,
    len: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut payload = vec![0u8; len];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => FrameError::Truncated,
            _ => FrameError::Io(e),
        })?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chat_overlay::ring::RingNotice;
    use chat_overlay::wire::{MAX_MESSAGE_BYTES, Message, Notice};

    /// The next frame's payload, as the reader takes it (length, then payload).
    async fn read<R: AsyncRead + Unpin>(
        stream: &mut R,
        max: usize,
    ) -> Result<Option<Vec<u8>>, FrameError> {
        match read_len(stream, max).await? {
            Some(len) => read_payload(stream, len).await.map(Some),
            None => Ok(None),
        }
    }

    #[tokio::test]
    async fn round_trip_and_clean_end() {
        let msg = Message::Notice(Notice::Ring(RingNotice::Notify));
        let mut bytes = encode(&msg, MAX_MESSAGE_BYTES).expect("encodes");
        bytes.extend(encode(&msg, MAX_MESSAGE_BYTES).expect("encodes"));
        let mut r = bytes.as_slice();
        for _ in 0..2 {
            let p = read(&mut r, MAX_MESSAGE_BYTES)
                .await
                .expect("reads")
                .expect("a frame");
            assert_eq!(decode::<Message>(&p).expect("decodes"), msg);
        }
        assert!(
            read(&mut r, MAX_MESSAGE_BYTES)
                .await
                .expect("clean end")
                .is_none()
        );
    }

    #[tokio::test]
    async fn oversized_truncated_and_garbage_are_errors() {
        let mut big = &(u32::MAX.to_be_bytes())[..];
        assert!(matches!(
            read(&mut big, 100).await,
            Err(FrameError::Oversized { .. })
        ));
        let mut short = &[0u8, 0, 0, 9, 1, 2][..];
        assert!(matches!(
            read(&mut short, 100).await,
            Err(FrameError::Truncated)
        ));
        let mut half = &[0u8, 0][..];
        assert!(matches!(
            read(&mut half, 100).await,
            Err(FrameError::Truncated)
        ));
        assert!(decode::<Message>(&[0xff, 0x00]).is_err());
        let mut two = Vec::new();
        ciborium::into_writer(&Message::Notice(Notice::Ring(RingNotice::Notify)), &mut two)
            .expect("enc");
        two.push(0);
        assert!(matches!(
            decode::<Message>(&two),
            Err(FrameError::Undecodable(_))
        ));
        assert!(matches!(
            encode(&vec![0u8; 200], 100),
            Err(FrameError::Oversized { .. })
        ));
    }
}
