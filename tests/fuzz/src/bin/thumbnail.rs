//! Fuzz target: a file's bytes as the daemon will look at an untrusted blob — its checked media
//! type (`chat_blobs::media::MediaType::sniff`), a thumbnail made within decoding limits
//! (`chat_blobs::thumb::make`), how a page serves it, and a safe download name from the same
//! bytes as a hostile name. Beyond "no panic, no hang": a thumbnail fits its budget and passes
//! the receiver's check, and nothing but a decoded raster image is ever inline.

use chat_blobs::media::{self, Disposition, MAX_NAME_BYTES, MediaType};
use chat_blobs::thumb::{self, DecodeLimits, THUMB_BUDGET, THUMB_MAX_SIDE};

fn main() {
    // Lower limits than the daemon's keep one input fast (honggfuzz's timeout is 5 s); the
    // paths are the same.
    let limits = DecodeLimits {
        max_side: 2048,
        max_alloc: 16 * 1024 * 1024,
    };
    loop {
        honggfuzz::fuzz!(|data: &[u8]| {
            if data.len() > 256 * 1024 {
                return;
            }
            let kind = MediaType::sniff(data);
            let made = thumb::make(data, &limits, THUMB_BUDGET).ok();
            if let Some(made) = &made {
                assert!(kind.is_raster_image(), "decoded a {kind:?}");
                assert_eq!(made.image.kind(), kind);
                assert!(made.image.width() <= limits.max_side);
                assert!(made.image.height() <= limits.max_side);
                if let Ok(t) = &made.thumbnail {
                    assert!(t.jpeg.len() <= THUMB_BUDGET);
                    assert!(t.width.max(t.height) <= THUMB_MAX_SIDE);
                    let seen = thumb::check_thumbnail(&t.jpeg, THUMB_BUDGET)
                        .expect("a thumbnail passes the receiver's check");
                    assert_eq!((seen.width(), seen.height()), (t.width, t.height));
                }
            }
            let serving = media::serving(kind, made.as_ref().map(|m| &m.image));
            if serving.disposition == Disposition::Inline {
                assert!(made.is_some() && kind.is_raster_image());
            }
            let name = String::from_utf8_lossy(&data[..data.len().min(512)]);
            let safe = media::safe_file_name(&name, kind);
            assert!(!safe.is_empty() && safe.len() <= MAX_NAME_BYTES, "{safe:?}");
            assert!(
                !safe.contains(['/', '\\']) && !safe.starts_with('.'),
                "{safe:?}"
            );
            assert!(!safe.chars().any(char::is_control), "{safe:?}");
            let header = serving.content_disposition(&name, kind);
            assert!(
                header.is_ascii() && !header.contains(['\r', '\n']),
                "{header:?}"
            );
        });
    }
}
