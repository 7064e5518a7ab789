//! The headers a blob is served with: a PNG that decoded inline as `image/png`; HTML, SVG and
//! an image that did not decode as attachments of opaque bytes; every one with `nosniff`, a
//! sandboxing policy and a safe download name; an Ogg (a voice message) as `audio/ogg` for the
//! page's player.

use chat_blobs::media::{MediaType, serving};
use chat_blobs::thumb::{DecodeLimits, decode_limited};

use super::*;

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8, y as u8, 7]));
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("encodes");
    out
}

fn get<'a>(h: &'a [(HeaderName, HeaderValue)], name: &str) -> &'a str {
    h.iter()
        .find(|(k, _)| k.as_str() == name)
        .and_then(|(_, v)| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// What every blob response carries.
fn assert_harmless(h: &[(HeaderName, HeaderValue)]) {
    assert_eq!(get(h, "x-content-type-options"), "nosniff");
    let csp = get(h, "content-security-policy");
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    assert!(!csp.contains("script-src"), "{csp}");
    assert_eq!(get(h, "cross-origin-resource-policy"), "same-origin");
}

/// The verdict as the route makes it: sniffed, and decoded if it claims to be an image.
fn verdict(bytes: &[u8]) -> (MediaType, Serving) {
    let kind = MediaType::sniff(bytes);
    let decoded = decode_limited(bytes, &DecodeLimits::default())
        .ok()
        .map(|(d, _)| d);
    (kind, serving(kind, decoded.as_ref()))
}

#[test]
fn a_png_is_inline_html_and_svg_are_attachments() {
    let (kind, s) = verdict(&png());
    let h = blob_headers(s, kind, "photo.png");
    assert_eq!(get(&h, "content-type"), "image/png");
    assert!(get(&h, "content-disposition").starts_with("inline"));
    assert_harmless(&h);

    let html = b"<!DOCTYPE html><html><script>alert(1)</script></html>";
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>";
    for (bytes, name) in [(&html[..], "page.html"), (&svg[..], "logo.svg")] {
        let (kind, s) = verdict(bytes);
        assert_eq!(kind, MediaType::Markup, "{name}");
        let h = blob_headers(s, kind, name);
        assert_eq!(
            get(&h, "content-type"),
            "application/octet-stream",
            "{name}"
        );
        let d = get(&h, "content-disposition");
        assert!(d.starts_with("attachment; filename=\""), "{name}: {d}");
        assert_harmless(&h);
    }

    // Bytes that start like a PNG but do not decode: a download of opaque bytes.
    let mut broken = png();
    broken.truncate(40);
    let (kind, s) = verdict(&broken);
    assert_eq!(kind, MediaType::Png);
    let h = blob_headers(s, kind, "broken.png");
    assert_eq!(get(&h, "content-type"), "application/octet-stream");
    assert!(get(&h, "content-disposition").starts_with("attachment"));
}

#[test]
fn a_hostile_name_becomes_a_safe_header() {
    let (kind, s) = verdict(b"%PDF-1.7\n");
    let h = blob_headers(s, kind, "../../x\r\nSet-Cookie: a=b\u{202e}fdp.exe");
    let d = get(&h, "content-disposition");
    assert!(d.starts_with("attachment; filename=\""), "{d}");
    assert!(
        !d.contains('\r') && !d.contains('\n') && !d.contains('/'),
        "{d}"
    );
    assert!(d.contains(".pdf"), "the checked type's extension: {d}");
    assert_eq!(get(&h, "content-type"), "application/pdf");
}

#[test]
fn an_ogg_is_audio_for_the_player_and_a_claimed_ogg_of_markup_is_not() {
    // An Ogg page header (what a voice message's Ogg/Opus starts with).
    let mut ogg = b"OggS\0\x02".to_vec();
    ogg.extend_from_slice(&[0; 20]);
    ogg.extend_from_slice(b"OpusHead");
    let (kind, s) = verdict(&ogg);
    assert_eq!(kind, MediaType::Ogg);
    let h = blob_headers(s, kind, "voice.ogg");
    // `<audio>` plays it (it ignores the disposition); opened directly it is a download.
    assert_eq!(get(&h, "content-type"), "audio/ogg");
    assert!(get(&h, "content-disposition").starts_with("attachment; filename=\"voice.ogg\""));
    assert_harmless(&h);
    // HTML named like a voice message is still opaque bytes, never audio nor a document.
    let (kind, s) = verdict(b"<html><script>alert(1)</script></html>");
    let h = blob_headers(s, kind, "voice.ogg");
    assert_eq!(get(&h, "content-type"), "application/octet-stream");
    assert!(get(&h, "content-disposition").starts_with("attachment"));
}
