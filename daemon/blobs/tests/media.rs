//! Untrusted file content stays harmless: image bombs, truncated and many-frame images,
//! polyglots, markup claimed as an image, hostile names, empty and random bytes each give a
//! typed refusal or a safe answer, never a panic, within a time bound; thumbnails fit their
//! budget. Fixtures are made here with `image`'s encoders or by hand, none committed.

use std::io::Cursor;
use std::time::{Duration, Instant};

use chat_blobs::media::{self, Disposition, MediaType, safe_file_name};
use chat_blobs::thumb::{self, DecodeLimits, THUMB_BUDGET, THUMB_MAX_SIDE};
use chat_blobs::{DecodeError, NoThumbnail};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{
    DynamicImage, ExtendedColorType, GrayImage, ImageEncoder, ImageFormat, Rgb, RgbImage, Rgba,
    RgbaImage,
};
use rand::{Rng, RngCore, SeedableRng, rngs::StdRng};

/// Generous for a debug build on a shared machine; a decode that hangs or decodes a bomb
/// takes far longer.
const BOUND: Duration = Duration::from_secs(10);

fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    println!("{what}: {took:?}");
    assert!(took < BOUND, "{what} took {took:?}");
    out
}

/// A photo-like picture: gradients and noise (compresses like a photo, not like a drawing).
fn photo(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut rng = StdRng::seed_from_u64(seed);
    RgbImage::from_fn(width, height, |x, y| {
        let n: u8 = rng.random_range(0..48);
        Rgb([
            ((x * 200 / width) as u8).wrapping_add(n),
            ((y * 200 / height) as u8).wrapping_add(n / 2),
            (((x + y) * 100 / (width + height)) as u8).wrapping_add(n),
        ])
    })
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).expect("encode a fixture");
    out.into_inner()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Rewrites a PNG's IHDR (right after the signature) and its CRC.
fn patch_ihdr(png: &mut [u8], width: u32, height: u32, bit_depth: u8, color: u8) {
    assert_eq!(&png[12..16], b"IHDR");
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    png[24] = bit_depth;
    png[25] = color;
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn photos_in_all_four_formats_get_a_thumbnail_within_budget() {
    let original = DynamicImage::ImageRgb8(photo(1200, 900, 1));
    for format in [
        ImageFormat::Png,
        ImageFormat::Jpeg,
        ImageFormat::Gif,
        ImageFormat::WebP,
    ] {
        let bytes = encode(&original, format);
        let kind = MediaType::sniff(&bytes);
        assert!(kind.is_raster_image(), "{format:?} sniffed as {kind:?}");
        let made = timed("a 1200×900 thumbnail", || {
            thumb::make(&bytes, &DecodeLimits::default(), THUMB_BUDGET)
        })
        .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!((made.image.width(), made.image.height()), (1200, 900));
        assert_eq!(made.image.kind(), kind);
        let t = made.thumbnail.expect("a thumbnail");
        assert!(
            t.jpeg.len() <= THUMB_BUDGET,
            "{format:?}: {} bytes",
            t.jpeg.len()
        );
        assert_eq!(
            t.width.max(t.height),
            THUMB_MAX_SIDE,
            "the largest side that fits"
        );
        assert_eq!((t.width, t.height), (160, 120), "aspect ratio kept");
        let seen = thumb::check_thumbnail(&t.jpeg, THUMB_BUDGET).expect("the receiver's check");
        assert_eq!((seen.width(), seen.height()), (t.width, t.height));
        let serving = media::serving(kind, Some(&made.image));
        assert_eq!(serving.disposition, Disposition::Inline);
        assert_eq!(serving.content_type, kind.mime());
    }
}

#[test]
fn a_tight_budget_lowers_size_and_quality_or_says_why_not() {
    let bytes = encode(
        &DynamicImage::ImageRgb8(photo(640, 480, 2)),
        ImageFormat::Png,
    );
    let made = thumb::make(&bytes, &DecodeLimits::default(), 1500).expect("decodes");
    let t = made.thumbnail.expect("fits at a smaller size or quality");
    assert!(
        t.jpeg.len() <= 2500 && t.width < THUMB_MAX_SIDE,
        "{}×{}",
        t.width,
        t.height
    );
    let made = thumb::make(&bytes, &DecodeLimits::default(), 300).expect("decodes");
    match made.thumbnail {
        Err(NoThumbnail::OverBudget { smallest, budget }) => {
            assert!(smallest > 300 && budget == 300)
        }
        other => panic!("a 300-byte budget: {other:?}"),
    }
    // The image itself still decoded and is still shown.
    assert_eq!(
        media::serving(MediaType::Png, Some(&made.image)).disposition,
        Disposition::Inline
    );
    // A tiny original is never scaled up.
    let tiny = encode(&DynamicImage::ImageRgb8(photo(20, 10, 3)), ImageFormat::Png);
    let t = thumb::make(&tiny, &DecodeLimits::default(), THUMB_BUDGET)
        .expect("decodes")
        .thumbnail
        .expect("fits");
    assert_eq!((t.width, t.height), (20, 10));
    // A line of pixels keeps at least one row.
    let line = encode(
        &DynamicImage::ImageRgb8(photo(8000, 1, 4)),
        ImageFormat::Png,
    );
    let t = thumb::make(&line, &DecodeLimits::default(), THUMB_BUDGET)
        .expect("decodes")
        .thumbnail
        .expect("fits");
    assert_eq!((t.width, t.height), (THUMB_MAX_SIDE, 1));
}

#[test]
fn transparency_is_flattened_onto_white() {
    let clear = RgbaImage::from_pixel(64, 64, Rgba([0, 0, 0, 0]));
    let bytes = encode(&DynamicImage::ImageRgba8(clear), ImageFormat::Png);
    let t = thumb::make(&bytes, &DecodeLimits::default(), THUMB_BUDGET)
        .expect("decodes")
        .thumbnail
        .expect("fits");
    let back = image::load_from_memory(&t.jpeg).expect("a JPEG").to_rgb8();
    assert!(
        back.pixels().all(|p| p.0.iter().all(|&c| c > 245)),
        "white, not black"
    );
}

/// Why the thumbnail is a JPEG: for a photo at thumbnail size it is the smallest of what the
/// decoders we build can also encode (PNG, lossless WebP, JPEG).
#[test]
fn jpeg_is_the_smallest_thumbnail_format() {
    let small = DynamicImage::ImageRgb8(photo(1200, 900, 4)).thumbnail(160, 160);
    let png = encode(&small, ImageFormat::Png).len();
    let webp = encode(&small, ImageFormat::WebP).len();
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode_image(&small)
        .expect("encode");
    println!(
        "160×120 photo: png {png} B, webp lossless {webp} B, jpeg q80 {} B",
        jpeg.len()
    );
    assert!(jpeg.len() < webp && jpeg.len() < png);
}

#[test]
fn a_png_claiming_100000_by_100000_is_refused_before_decoding() {
    let mut bytes = encode(&DynamicImage::ImageRgb8(photo(8, 8, 5)), ImageFormat::Png);
    patch_ihdr(&mut bytes, 100_000, 100_000, 8, 2);
    let err = timed("the 100000² header", || {
        thumb::make(&bytes, &DecodeLimits::default(), THUMB_BUDGET)
    })
    .expect_err("refused");
    assert!(
        matches!(
            err,
            DecodeError::TooLarge { width: 100_000, .. } | DecodeError::Limits(_)
        ),
        "{err}"
    );
    assert_eq!(
        media::serving(MediaType::sniff(&bytes), None).disposition,
        Disposition::Attachment
    );
}

#[test]
fn a_small_file_that_inflates_hugely_is_refused_or_bounded() {
    // 16 MiB of zero pixels deflate to a few KiB: within the limits it decodes, in bounded time.
    let zeros = GrayImage::new(4096, 4096);
    let mut bytes = Vec::new();
    PngEncoder::new_with_quality(&mut bytes, CompressionType::Best, FilterType::NoFilter)
        .write_image(&zeros, 4096, 4096, ExtendedColorType::L8)
        .expect("encode");
    assert!(bytes.len() < 32 * 1024, "{} bytes", bytes.len());
    let made = timed("a 4096² PNG of zeros", || {
        thumb::make(&bytes, &DecodeLimits::default(), THUMB_BUDGET)
    })
    .expect("within the limits");
    assert_eq!((made.image.width(), made.image.height()), (4096, 4096));
    // The same bytes claiming 8192² pixels of 16-bit RGBA (512 MiB): refused from the header.
    patch_ihdr(&mut bytes, 8192, 8192, 16, 6);
    let err = timed("the 512 MiB claim", || {
        thumb::make(&bytes, &DecodeLimits::default(), THUMB_BUDGET)
    })
    .expect_err("refused");
    assert!(
        matches!(
            err,
            DecodeError::TooMuchMemory { .. } | DecodeError::Limits(_)
        ),
        "{err}"
    );
    // Lower limits refuse the honest 16 MiB one too.
    patch_ihdr(&mut bytes, 4096, 4096, 8, 0);
    let small = DecodeLimits {
        max_side: 8192,
        max_alloc: 8 * 1024 * 1024,
    };
    let err = thumb::make(&bytes, &small, THUMB_BUDGET).expect_err("over 8 MiB");
    assert!(
        matches!(err, DecodeError::TooMuchMemory { needed, .. } if needed == 16 << 20),
        "{err}"
    );
}

#[test]
fn a_truncated_jpeg_is_a_typed_error_or_an_image() {
    let bytes = encode(
        &DynamicImage::ImageRgb8(photo(400, 300, 6)),
        ImageFormat::Jpeg,
    );
    for cut in [0, 2, 3, 20, 100, 600, bytes.len() / 2, bytes.len() - 2] {
        let part = &bytes[..cut];
        match timed("a cut JPEG", || {
            thumb::make(part, &DecodeLimits::default(), THUMB_BUDGET)
        }) {
            Ok(made) => {
                // A decoder may fill what is missing; then it is a whole image of the header's size.
                assert!(cut >= 600, "decoded from {cut} bytes");
                assert_eq!((made.image.width(), made.image.height()), (400, 300));
            }
            Err(e) => {
                assert!(
                    cut < bytes.len() / 2 || matches!(e, DecodeError::Decode(_)),
                    "{e}"
                );
                assert_eq!(
                    media::serving(MediaType::sniff(part), None).disposition,
                    Disposition::Attachment
                );
            }
        }
    }
}

/// A GIF of `frames` 1×1 frames on a 256×256 screen, written by hand: one LZW code stream per
/// frame (clear, index 0, end).
fn many_frame_gif(frames: usize) -> Vec<u8> {
    let mut gif = b"GIF89a".to_vec();
    gif.extend_from_slice(&[0, 1, 0, 1, 0x80, 0, 0]); // 256×256, a 2-colour global table
    gif.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    for i in 0..frames {
        let (x, y) = ((i % 256) as u16, ((i / 256) % 256) as u16);
        gif.push(0x2C);
        gif.extend_from_slice(&x.to_le_bytes());
        gif.extend_from_slice(&y.to_le_bytes());
        gif.extend_from_slice(&[1, 0, 1, 0, 0]); // 1×1, no local table
        gif.extend_from_slice(&[2, 2, 0x44, 0x01, 0]); // min code size 2, one sub-block
    }
    gif.push(0x3B);
    gif
}

#[test]
fn a_gif_with_thousands_of_frames_decodes_only_the_first() {
    let bytes = many_frame_gif(20_000);
    assert_eq!(MediaType::sniff(&bytes), MediaType::Gif);
    let made = timed("a 20000-frame GIF", || {
        thumb::make(&bytes, &DecodeLimits::default(), THUMB_BUDGET)
    })
    .expect("the first frame decodes");
    assert_eq!((made.image.width(), made.image.height()), (256, 256));
    assert!(made.thumbnail.is_ok());
    // Garbage after the first frame is never read.
    let mut broken = many_frame_gif(1);
    broken.pop();
    broken.extend(std::iter::repeat_n(0xFFu8, 100_000));
    thumb::make(&broken, &DecodeLimits::default(), THUMB_BUDGET).expect("the first frame");
}

#[test]
fn a_png_html_polyglot_is_an_image_or_an_attachment_never_html() {
    let html = b"<html><body><script>alert(document.cookie)</script></body></html>";
    // A PNG with HTML after its end: it decodes, so it is shown, as image/png only.
    let mut png_then_html = encode(&DynamicImage::ImageRgb8(photo(32, 32, 7)), ImageFormat::Png);
    png_then_html.extend_from_slice(html);
    let made = thumb::make(&png_then_html, &DecodeLimits::default(), THUMB_BUDGET)
        .expect("the PNG part decodes");
    let serving = media::serving(MediaType::sniff(&png_then_html), Some(&made.image));
    assert_eq!(
        (serving.content_type, serving.disposition),
        ("image/png", Disposition::Inline)
    );
    // PNG magic, then HTML: does not decode, so opaque bytes to download.
    let mut magic_then_html = b"\x89PNG\r\n\x1a\n".to_vec();
    magic_then_html.extend_from_slice(html);
    let err = thumb::make(&magic_then_html, &DecodeLimits::default(), THUMB_BUDGET)
        .expect_err("not a PNG");
    assert!(matches!(err, DecodeError::Decode(_)), "{err}");
    let serving = media::serving(MediaType::Png, None);
    assert_eq!(
        (serving.content_type, serving.disposition),
        ("application/octet-stream", Disposition::Attachment)
    );
    // HTML first, a PNG inside: binary, not text, not an image.
    let mut html_then_png = html.to_vec();
    html_then_png.extend_from_slice(&png_then_html);
    let kind = MediaType::sniff(&html_then_png);
    assert_eq!(kind, MediaType::Unknown);
    assert!(thumb::make(&html_then_png, &DecodeLimits::default(), THUMB_BUDGET).is_err());
    assert_eq!(
        media::serving(kind, None),
        media::Serving {
            content_type: "application/octet-stream",
            disposition: Disposition::Attachment
        }
    );
    // The decoded-image proof of another type does not make HTML inline.
    assert_eq!(
        media::serving(MediaType::Markup, Some(&made.image)).disposition,
        Disposition::Attachment
    );
}

#[test]
fn an_svg_claimed_as_png_is_markup_served_as_opaque_bytes() {
    let svg =
        br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#;
    // The claimed type ("image/png", "x.png") is not an input anywhere: only the bytes count.
    let kind = MediaType::sniff(svg);
    assert_eq!(kind, MediaType::Markup);
    assert_eq!(
        thumb::make(svg, &DecodeLimits::default(), THUMB_BUDGET),
        Err(DecodeError::NotAnImage(MediaType::Markup))
    );
    let serving = media::serving(kind, None);
    assert_eq!(serving.content_type, "application/octet-stream");
    assert_eq!(serving.disposition, Disposition::Attachment);
    assert_eq!(safe_file_name("x.png", kind), "x.png");
    let disposition = serving.content_disposition("x.png", kind);
    assert!(disposition.starts_with("attachment; "), "{disposition}");
}

#[test]
fn a_hostile_name_becomes_a_plain_download_name() {
    let hostile = "../../etc/passwd\u{202e}gnp.exe";
    for kind in [MediaType::Unknown, MediaType::Png, MediaType::Text] {
        let safe = safe_file_name(hostile, kind);
        assert!(!safe.contains(['/', '\\', '\u{202e}']), "{safe}");
        assert!(safe.starts_with("passwdgnp.exe"), "{safe}");
        assert!(!safe.starts_with('.') && !safe.chars().any(char::is_control));
        let header = media::serving(kind, None).content_disposition(hostile, kind);
        assert!(
            !header.contains("%E2%80%AE") && !header.contains("%2F"),
            "{header}"
        );
        assert!(header.is_ascii(), "{header}");
    }
    assert_eq!(safe_file_name(hostile, MediaType::Png), "passwdgnp.exe.png");
}

#[test]
fn zero_bytes_and_random_bytes_never_panic() {
    assert_eq!(MediaType::sniff(b""), MediaType::Unknown);
    assert_eq!(
        thumb::make(b"", &DecodeLimits::default(), THUMB_BUDGET),
        Err(DecodeError::NotAnImage(MediaType::Unknown))
    );
    assert_eq!(
        media::serving(MediaType::Unknown, None).disposition,
        Disposition::Attachment
    );
    assert_eq!(safe_file_name("", MediaType::Unknown), "file");
    let magics: [&[u8]; 6] = [
        b"",
        b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR",
        &[0xFF, 0xD8, 0xFF],
        b"GIF89a",
        b"RIFF\0\0\0\0WEBPVP8 ",
        b"RIFF\0\0\0\0WEBPVP8L",
    ];
    let mut rng = StdRng::seed_from_u64(35);
    timed("random inputs", || {
        for i in 0..3000 {
            let mut bytes = magics[i % magics.len()].to_vec();
            let mut tail = vec![0u8; rng.random_range(0..2048)];
            rng.fill_bytes(&mut tail);
            bytes.extend_from_slice(&tail);
            let kind = MediaType::sniff(&bytes);
            let decoded = thumb::make(&bytes, &DecodeLimits::default(), THUMB_BUDGET).ok();
            let serving = media::serving(kind, decoded.as_ref().map(|m| &m.image));
            if serving.disposition == Disposition::Inline {
                assert!(kind.is_raster_image());
            }
            let name = String::from_utf8_lossy(&tail[..tail.len().min(300)]).into_owned();
            let safe = safe_file_name(&name, kind);
            assert!(
                safe.len() <= media::MAX_NAME_BYTES && !safe.is_empty(),
                "{safe:?}"
            );
            assert!(!safe.contains(['/', '\\']) && !safe.chars().any(char::is_control));
        }
    });
}

#[test]
fn a_received_thumbnail_is_checked() {
    let png = encode(
        &DynamicImage::ImageRgb8(photo(100, 100, 8)),
        ImageFormat::Png,
    );
    assert_eq!(
        thumb::check_thumbnail(&png, usize::MAX),
        Err(DecodeError::NotAnImage(MediaType::Png))
    );
    let big = encode(
        &DynamicImage::ImageRgb8(photo(400, 300, 9)),
        ImageFormat::Jpeg,
    );
    assert!(matches!(
        thumb::check_thumbnail(&big, usize::MAX),
        Err(DecodeError::TooLarge { .. } | DecodeError::Limits(_))
    ));
    assert!(matches!(
        thumb::check_thumbnail(&big, THUMB_BUDGET),
        Err(DecodeError::TooManyBytes { .. })
    ));
}
