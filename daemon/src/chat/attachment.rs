//! The file reference a public text message may carry: the blob's hash, its name, size,
//! checked media type, and for an image its width, height and a small thumbnail.
//!
//! On the wire it is a second CBOR item right after the envelope's signed array, inside the
//! signed bytes (`signed = CBOR(fields) ‖ CBOR(attachment)`), so the signature and the message
//! id cover it; a node of an older build reads the first item only and shows, stores and
//! forwards the message as a text message (docs/protocol.md, "File references in messages"):
//!
//! ```text
//! attachment = [1 (version), hash: bytes(32), name: text (1..=255 bytes), size: uint,
//!               media: uint, width: uint, height: uint, thumbnail: bytes (≤ 6 KiB)]
//! ```
//!
//! `width`, `height` are 0 and `thumbnail` empty when the sender has none. A receiver never
//! trusts the reference: one that breaks a bound or has another version is dropped (the text
//! is still shown), and a thumbnail that does not pass `chat_blobs::thumb::check_thumbnail`
//! is dropped (the reference is shown without it, `thumbnail_refused`).

use chat_blobs::MediaType;
use chat_blobs::thumb::{THUMB_BUDGET, check_thumbnail};
use ciborium::Value;

/// Version of the reference's format.
const VERSION: u64 = 1;
/// Longest file name in a reference, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 255;
/// Largest size a reference may name (far above any `files.max_file_mb`; each node checks
/// its own limit before it fetches).
pub const MAX_SIZE: u64 = 1 << 50;

/// A file reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The blob's BLAKE3 hash.
    pub hash: [u8; 32],
    /// The name the sender gave (not trusted: shown and saved only through
    /// `chat_blobs::media::safe_file_name`).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// The media type the sender's node checked (a claim: serving nodes check again).
    pub media: MediaType,
    /// An image's width and height in pixels (0 when unknown).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// A checked JPEG thumbnail, at most 6 KiB (empty when none or refused).
    pub thumbnail: Vec<u8>,
    /// Whether a thumbnail came but failed its check (and was dropped).
    pub thumbnail_refused: bool,
}

impl Attachment {
    /// 64 lower-case hex digits.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// Why a reference cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachmentError {
    /// Empty, longer than [`MAX_NAME_BYTES`] or with control characters.
    #[error("the file name must be 1 to {MAX_NAME_BYTES} bytes without control characters")]
    Name,
    /// Over [`MAX_SIZE`].
    #[error("the file is too large to reference")]
    Size,
    /// A thumbnail that does not pass the receivers' check.
    #[error("the thumbnail is not a JPEG of at most 6 KiB and 160 pixels a side")]
    Thumbnail,
}

/// The number of a media type on the wire.
pub fn media_code(m: MediaType) -> u64 {
    match m {
        MediaType::Unknown => 0,
        MediaType::Png => 1,
        MediaType::Jpeg => 2,
        MediaType::Gif => 3,
        MediaType::WebP => 4,
        MediaType::Pdf => 5,
        MediaType::Ogg => 6,
        MediaType::Wav => 7,
        MediaType::WebM => 8,
        MediaType::Zip => 9,
        MediaType::Text => 10,
        MediaType::Markup => 11,
    }
}

/// The media type for a wire number (an unknown number is [`MediaType::Unknown`]: served and
/// shown as opaque bytes).
pub fn media_from_code(code: u64) -> MediaType {
    match code {
        1 => MediaType::Png,
        2 => MediaType::Jpeg,
        3 => MediaType::Gif,
        4 => MediaType::WebP,
        5 => MediaType::Pdf,
        6 => MediaType::Ogg,
        7 => MediaType::Wav,
        8 => MediaType::WebM,
        9 => MediaType::Zip,
        10 => MediaType::Text,
        11 => MediaType::Markup,
        _ => MediaType::Unknown,
    }
}

fn name_ok(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME_BYTES && !name.chars().any(char::is_control)
}

/// Checks a reference before it is signed.
pub fn check(a: &Attachment) -> Result<(), AttachmentError> {
    if !name_ok(&a.name) {
        return Err(AttachmentError::Name);
    }
    if a.size > MAX_SIZE {
        return Err(AttachmentError::Size);
    }
    if !a.thumbnail.is_empty() && check_thumbnail(&a.thumbnail, THUMB_BUDGET).is_err() {
        return Err(AttachmentError::Thumbnail);
    }
    Ok(())
}

/// The reference's CBOR item.
pub fn encode(a: &Attachment) -> Value {
    Value::Array(vec![
        Value::from(VERSION),
        Value::Bytes(a.hash.to_vec()),
        Value::Text(a.name.clone()),
        Value::from(a.size),
        Value::from(media_code(a.media)),
        Value::from(u64::from(a.width)),
        Value::from(u64::from(a.height)),
        Value::Bytes(a.thumbnail.clone()),
    ])
}

/// Reads a reference from the network or the store: `None` when it breaks a bound or has
/// another version; a thumbnail that fails its check is dropped.
pub fn decode(v: Value) -> Option<Attachment> {
    let Value::Array(items) = v else {
        return None;
    };
    let [version, hash, name, size, media, width, height, thumbnail]: [Value; 8] =
        items.try_into().ok()?;
    let uint = |v: Value| match v {
        Value::Integer(i) => u64::try_from(i128::from(i)).ok(),
        _ => None,
    };
    if uint(version)? != VERSION {
        return None;
    }
    let hash: [u8; 32] = match hash {
        Value::Bytes(b) => b.try_into().ok()?,
        _ => return None,
    };
    let Value::Text(name) = name else {
        return None;
    };
    if !name_ok(&name) {
        return None;
    }
    let size = uint(size).filter(|s| *s <= MAX_SIZE)?;
    let media = media_from_code(uint(media)?);
    let side = |v: Value| uint(v).and_then(|n| u32::try_from(n).ok());
    let (width, height) = (side(width)?, side(height)?);
    let Value::Bytes(thumbnail) = thumbnail else {
        return None;
    };
    let refused = !thumbnail.is_empty() && check_thumbnail(&thumbnail, THUMB_BUDGET).is_err();
    Some(Attachment {
        hash,
        name,
        size,
        media,
        width,
        height,
        thumbnail: if refused { Vec::new() } else { thumbnail },
        thumbnail_refused: refused,
    })
}

/// Splits signed bytes into their first CBOR item and the reference after it (if any, and
/// valid): what a node of this build reads.
pub fn split(signed: &[u8]) -> Option<(Value, Option<Attachment>)> {
    let mut rest = signed;
    let fields: Value = ciborium::from_reader(&mut rest).ok()?;
    if rest.is_empty() {
        return Some((fields, None));
    }
    let attachment = ciborium::from_reader::<Value, _>(&mut rest)
        .ok()
        .and_then(decode);
    Some((fields, attachment))
}

/// A human size: `2.4 MB`, `512 B`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
#[path = "attachment_tests.rs"]
mod tests;
