//! Images from untrusted bytes: decoding with limits (dimensions from the header checked
//! before a pixel is decoded, memory bounded by `image::Limits`), the proof that an image
//! decoded ([`DecodedImage`], what [`crate::media::serving`] needs to show it inline), and the
//! thumbnail a file reference carries: a JPEG within a byte budget (`docs/protocol.md`,
//! "Files"; `docs/security.md`, "Untrusted files").

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use crate::error::{DecodeError, NoThumbnail};
use crate::media::MediaType;

/// Widest and tallest image decoded, in pixels.
pub const MAX_SIDE: u32 = 8192;
/// Most memory the decoder may allocate, in bytes (the decoded pixels included).
pub const MAX_ALLOC: u64 = 128 * 1024 * 1024;
/// Largest thumbnail in a file reference, in bytes: a message is at most 16 KiB
/// (`MAX_WIRE_BYTES`), its text at most 4 KiB; this leaves 6 KiB for the rest of the
/// envelope, the reference and the end-to-end encryption of a private message.
pub const THUMB_BUDGET: usize = 6 * 1024;
/// The thumbnail's longest side, in pixels, at most.
pub const THUMB_MAX_SIDE: u32 = 160;
/// The longest sides tried, largest first, until the thumbnail fits its budget.
const SIDES: [u32; 3] = [THUMB_MAX_SIDE, 128, 96];
/// The JPEG qualities tried at each side, best first.
const QUALITIES: [u8; 4] = [80, 65, 50, 35];

/// The bounds one decode keeps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Widest and tallest image, in pixels.
    pub max_side: u32,
    /// Most bytes the decoder allocates.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_side: MAX_SIDE,
            max_alloc: MAX_ALLOC,
        }
    }
}

/// Proof that a blob's bytes decoded, within limits, as the raster image its checked type
/// says: only [`decode_limited`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedImage {
    kind: MediaType,
    width: u32,
    height: u32,
}

impl DecodedImage {
    /// The checked type (PNG, JPEG, GIF or WebP).
    pub fn kind(&self) -> MediaType {
        self.kind
    }

    /// The original's width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// The original's height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }
}

/// A thumbnail: a baseline JPEG, its longest side at most [`THUMB_MAX_SIDE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// The JPEG bytes, at most the budget.
    pub jpeg: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// What [`make`] made of an image that decoded: its size, and a thumbnail or why none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Made {
    /// The decoded original (its type, width and height).
    pub image: DecodedImage,
    /// The thumbnail, or why there is none (the image itself is still fine to show).
    pub thumbnail: Result<Thumbnail, NoThumbnail>,
}

fn image_format(kind: MediaType) -> Option<ImageFormat> {
    match kind {
        MediaType::Png => Some(ImageFormat::Png),
        MediaType::Jpeg => Some(ImageFormat::Jpeg),
        MediaType::Gif => Some(ImageFormat::Gif),
        MediaType::WebP => Some(ImageFormat::WebP),
        _ => None,
    }
}

/// Decodes `bytes` as the raster image their magic numbers say (only PNG, JPEG, GIF, WebP; the
/// first frame of an animation), within `limits`: the header's dimensions are checked before
/// any pixel is decoded, so the time spent is bounded by `max_side²`, and the decoder's
/// allocations by `max_alloc`.
pub fn decode_limited(
    bytes: &[u8],
    limits: &DecodeLimits,
) -> Result<(DecodedImage, DynamicImage), DecodeError> {
    let kind = MediaType::sniff(bytes);
    let format = image_format(kind).ok_or(DecodeError::NotAnImage(kind))?;
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| DecodeError::Decode(e.to_string()))?;
    // image's own guess must agree with ours: never a format the checked type does not name.
    if reader.format() != Some(format) {
        return Err(DecodeError::FormatMismatch(kind));
    }
    let mut bounds = Limits::default();
    bounds.max_image_width = Some(limits.max_side);
    bounds.max_image_height = Some(limits.max_side);
    bounds.max_alloc = Some(limits.max_alloc);
    reader.limits(bounds);
    // Making the decoder reads the header only; set_limits checks the dimensions.
    let decoder = reader.into_decoder().map_err(refusal)?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 || width > limits.max_side || height > limits.max_side {
        return Err(DecodeError::TooLarge {
            width,
            height,
            max_side: limits.max_side,
        });
    }
    let needed = decoder.total_bytes();
    if needed > limits.max_alloc {
        return Err(DecodeError::TooMuchMemory {
            needed,
            limit: limits.max_alloc,
        });
    }
    let image = DynamicImage::from_decoder(decoder).map_err(refusal)?;
    let decoded = DecodedImage {
        kind,
        width,
        height,
    };
    Ok((decoded, image))
}

/// image's errors as ours: its limit errors stay limits, the rest is "does not decode".
fn refusal(e: image::ImageError) -> DecodeError {
    match e {
        image::ImageError::Limits(l) => DecodeError::Limits(l.to_string()),
        other => DecodeError::Decode(other.to_string()),
    }
}

/// Decodes an image (as [`decode_limited`]) and makes its thumbnail: a JPEG of at most
/// `budget` bytes, its longest side 160, 128 or 96 pixels (never larger than the original) at
/// falling JPEG qualities, the first that fits. Transparency is flattened onto white.
pub fn make(bytes: &[u8], limits: &DecodeLimits, budget: usize) -> Result<Made, DecodeError> {
    let (decoded, image) = decode_limited(bytes, limits)?;
    Ok(Made {
        image: decoded,
        thumbnail: thumbnail_of(&image, budget),
    })
}

fn thumbnail_of(image: &DynamicImage, budget: usize) -> Result<Thumbnail, NoThumbnail> {
    let longest = image.width().max(image.height());
    let mut smallest = usize::MAX;
    let mut last_side = 0;
    for side in SIDES {
        let side = side.min(longest);
        if side == last_side {
            continue;
        }
        last_side = side;
        let rgb = flatten(&image.thumbnail(side, side));
        for quality in QUALITIES {
            let mut jpeg = Vec::with_capacity(budget);
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, quality)
                .encode_image(&rgb)
                .map_err(|e| NoThumbnail::Encode(e.to_string()))?;
            if jpeg.len() <= budget {
                return Ok(Thumbnail {
                    jpeg,
                    width: rgb.width(),
                    height: rgb.height(),
                });
            }
            smallest = smallest.min(jpeg.len());
        }
    }
    Err(NoThumbnail::OverBudget { smallest, budget })
}

/// RGB with any transparency composed onto white (JPEG has no alpha channel).
fn flatten(image: &DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.to_rgb8();
    }
    let rgba = image.to_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        image::Rgb([over(r), over(g), over(b)])
    })
}

/// Checks a thumbnail received in a file reference before it is shown: a JPEG of at most
/// `budget` bytes that decodes, its sides at most [`THUMB_MAX_SIDE`].
pub fn check_thumbnail(bytes: &[u8], budget: usize) -> Result<DecodedImage, DecodeError> {
    if bytes.len() > budget {
        return Err(DecodeError::TooManyBytes {
            len: bytes.len(),
            limit: budget,
        });
    }
    let kind = MediaType::sniff(bytes);
    if kind != MediaType::Jpeg {
        return Err(DecodeError::NotAnImage(kind));
    }
    let limits = DecodeLimits {
        max_side: THUMB_MAX_SIDE,
        max_alloc: 4 * 1024 * 1024,
    };
    decode_limited(bytes, &limits).map(|(decoded, _)| decoded)
}
