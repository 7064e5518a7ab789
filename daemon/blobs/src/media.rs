//! What a blob is, from its bytes, and how a web page may serve it: the checked media type
//! (magic numbers; the sender's claimed type and name are never trusted), the response headers
//! (inline only for a raster image that decoded, everything else an attachment), and a safe
//! download name from a hostile one (`docs/security.md`, "Untrusted files").

use crate::thumb::DecodedImage;

/// How many leading bytes [`MediaType::sniff`] looks at (the text check reads all of them).
pub const SNIFF_BYTES: usize = 1024;

/// Longest download name [`safe_file_name`] returns, in bytes of UTF-8.
pub const MAX_NAME_BYTES: usize = 120;

/// A blob's type as checked from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// `\x89PNG\r\n\x1a\n`.
    Png,
    /// `FF D8 FF`.
    Jpeg,
    /// `GIF87a` / `GIF89a`.
    Gif,
    /// `RIFF····WEBP`.
    WebP,
    /// `%PDF-`.
    Pdf,
    /// `OggS` (Ogg/Opus voice messages among others).
    Ogg,
    /// `RIFF····WAVE`.
    Wav,
    /// EBML with the doctype `webm`.
    WebM,
    /// `PK\x03\x04` or the empty archive `PK\x05\x06`.
    Zip,
    /// UTF-8 without control characters other than tab, line feed, carriage return and form
    /// feed, and not markup.
    Text,
    /// Text that starts like HTML, SVG or XML: never served as anything a browser renders.
    Markup,
    /// Anything else, including an empty blob.
    Unknown,
}

impl MediaType {
    /// The type of a blob from its first bytes (at most [`SNIFF_BYTES`] are read; pass what is
    /// there if the blob is shorter). Only the bytes decide; never the claimed type or name.
    pub fn sniff(head: &[u8]) -> MediaType {
        let head = &head[..head.len().min(SNIFF_BYTES)];
        let at =
            |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
        if at(0, b"\x89PNG\r\n\x1a\n") {
            MediaType::Png
        } else if at(0, &[0xFF, 0xD8, 0xFF]) {
            MediaType::Jpeg
        } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
            MediaType::Gif
        } else if at(0, b"RIFF") && at(8, b"WEBP") {
            MediaType::WebP
        } else if at(0, b"RIFF") && at(8, b"WAVE") {
            MediaType::Wav
        } else if at(0, b"%PDF-") {
            MediaType::Pdf
        } else if at(0, b"OggS") {
            MediaType::Ogg
        } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
            // The doctype element (42 82, a one-byte size 0x84, "webm") is in the EBML header.
            let doctype = head.windows(2).position(|w| w == [0x42, 0x82]);
            if doctype.is_some_and(|i| at(i + 3, b"webm")) {
                MediaType::WebM
            } else {
                MediaType::Unknown
            }
        } else if at(0, b"PK\x03\x04") || at(0, b"PK\x05\x06") {
            MediaType::Zip
        } else if is_text(head) {
            if looks_like_markup(head) {
                MediaType::Markup
            } else {
                MediaType::Text
            }
        } else {
            MediaType::Unknown
        }
    }

    /// One of the four raster formats a page may show inline (once they decode).
    pub fn is_raster_image(self) -> bool {
        matches!(
            self,
            MediaType::Png | MediaType::Jpeg | MediaType::Gif | MediaType::WebP
        )
    }

    /// The type served in `Content-Type` (markup and unknown bytes as
    /// `application/octet-stream`).
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Png => "image/png",
            MediaType::Jpeg => "image/jpeg",
            MediaType::Gif => "image/gif",
            MediaType::WebP => "image/webp",
            MediaType::Pdf => "application/pdf",
            MediaType::Ogg => "audio/ogg",
            MediaType::Wav => "audio/wav",
            MediaType::WebM => "video/webm",
            MediaType::Zip => "application/zip",
            MediaType::Text => "text/plain; charset=utf-8",
            MediaType::Markup | MediaType::Unknown => "application/octet-stream",
        }
    }

    /// The file extension that goes with the type, if it has one.
    pub fn extension(self) -> Option<&'static str> {
        Some(match self {
            MediaType::Png => "png",
            MediaType::Jpeg => "jpg",
            MediaType::Gif => "gif",
            MediaType::WebP => "webp",
            MediaType::Pdf => "pdf",
            MediaType::Ogg => "ogg",
            MediaType::Wav => "wav",
            MediaType::WebM => "webm",
            MediaType::Zip => "zip",
            MediaType::Text => "txt",
            MediaType::Markup | MediaType::Unknown => return None,
        })
    }

    /// Other extensions a name of this type may already end with.
    fn accepts_extension(self, ext: &str) -> bool {
        let ext = ext.to_ascii_lowercase();
        Some(ext.as_str()) == self.extension()
            || matches!(
                (self, ext.as_str()),
                (MediaType::Jpeg, "jpeg" | "jfif")
                    | (MediaType::Ogg, "opus" | "oga")
                    | (MediaType::Text, "md" | "log" | "csv")
            )
    }
}

/// UTF-8 (a character cut by the end of `head` allowed) without control characters other
/// than `\t`, `\n`, `\f`, `\r`; not empty.
fn is_text(head: &[u8]) -> bool {
    if head.is_empty() {
        return false;
    }
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        // A multi-byte character cut at the end of the sniffed bytes is still text.
        Err(e) if e.error_len().is_none() && head.len() - e.valid_up_to() < 4 => {
            match std::str::from_utf8(&head[..e.valid_up_to()]) {
                Ok(s) => s,
                Err(_) => return false,
            }
        }
        Err(_) => return false,
    };
    valid
        .chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

/// Text a browser could take for a document: it starts (after a BOM and white space) with `<`
/// followed by a tag name, `!` or `?`.
fn looks_like_markup(head: &[u8]) -> bool {
    let text = head.strip_prefix("\u{feff}".as_bytes()).unwrap_or(head);
    let mut rest = text.iter().skip_while(|b| b.is_ascii_whitespace());
    rest.next() == Some(&b'<')
        && rest
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || matches!(b, b'!' | b'?'))
}

/// How a page shows a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Shown in the page (an `<img>`): only a raster image that decoded.
    Inline,
    /// Offered for download, never rendered.
    Attachment,
}

/// The headers a web page serves a blob with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Serving {
    /// `Content-Type`: the checked type, never the claimed one.
    pub content_type: &'static str,
    /// Inline or attachment.
    pub disposition: Disposition,
}

/// Headers every blob response carries, whatever its type: no sniffing by the browser, no
/// script, no plugin, no framing, even if the bytes are a document.
pub const ALWAYS_HEADERS: [(&str, &str); 3] = [
    ("X-Content-Type-Options", "nosniff"),
    (
        "Content-Security-Policy",
        "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
    ),
    ("Cross-Origin-Resource-Policy", "same-origin"),
];

/// How to serve a blob of checked type `kind`. `decoded` is the proof that its bytes decode as
/// that image ([`crate::thumb::decode_limited`] or [`crate::thumb::make`] made it); only then,
/// and only for PNG, JPEG, GIF or WebP, is it inline, with the image's own type. Everything
/// else is an attachment: its checked type if it has a harmless one, otherwise
/// `application/octet-stream`. SVG, HTML and XML are text that [`MediaType::sniff`] calls
/// [`MediaType::Markup`], served as `application/octet-stream` whatever their claimed type.
pub fn serving(kind: MediaType, decoded: Option<&DecodedImage>) -> Serving {
    match decoded {
        Some(image) if kind.is_raster_image() && image.kind() == kind => Serving {
            content_type: kind.mime(),
            disposition: Disposition::Inline,
        },
        // An image whose bytes did not decode is a download of opaque bytes: a browser never
        // gets to try its own decoder on it as an image.
        _ if kind.is_raster_image() => Serving {
            content_type: MediaType::Unknown.mime(),
            disposition: Disposition::Attachment,
        },
        _ => Serving {
            content_type: kind.mime(),
            disposition: Disposition::Attachment,
        },
    }
}

impl Serving {
    /// The `Content-Disposition` value for a download named `name` (made safe here).
    pub fn content_disposition(&self, name: &str, kind: MediaType) -> String {
        let safe = safe_file_name(name, kind);
        let kind = match self.disposition {
            Disposition::Inline => "inline",
            Disposition::Attachment => "attachment",
        };
        format!("{kind}; {}", disposition_filename(&safe))
    }
}

/// A download name from a hostile one: the last path component (after `/` or `\`), without
/// control characters, bidirectional overrides or invisible characters, without characters
/// Windows forbids, without leading dots or spaces, not a Windows device name, at most
/// [`MAX_NAME_BYTES`] bytes (the extension kept), and ending with the checked type's extension
/// (appended if the name claims another one). `file` (with that extension) if nothing is left.
pub fn safe_file_name(hostile: &str, kind: MediaType) -> String {
    let last = hostile.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !is_invisible(*c))
        .map(|c| match c {
            '<' | '>' | ':' | '"' | '|' | '?' | '*' => '_',
            c => c,
        })
        .collect();
    let trimmed = cleaned
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' ']);
    let (mut stem, ext) = match trimmed.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && !ext.is_empty() && ext.len() <= 16 => {
            (stem.to_string(), Some(ext.to_string()))
        }
        _ => (trimmed.to_string(), None),
    };
    if stem.is_empty() {
        stem = "file".into();
    }
    let device = stem.split('.').next().unwrap_or("").to_ascii_uppercase();
    let reserved = matches!(device.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || (device.len() == 4
            && (device.starts_with("COM") || device.starts_with("LPT"))
            && device.as_bytes()[3].is_ascii_digit());
    if reserved {
        stem.insert(0, '_');
    }
    let mut suffix = String::new();
    if let Some(ext) = &ext {
        suffix = format!(".{ext}");
    }
    match (kind.extension(), &ext) {
        (Some(_), Some(e)) if kind.accepts_extension(e) => {}
        (Some(want), _) => suffix.push_str(&format!(".{want}")),
        (None, _) => {}
    }
    let room = MAX_NAME_BYTES.saturating_sub(suffix.len()).max(1);
    let mut cut = stem.len().min(room);
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    stem.truncate(cut);
    // The suffix is at most 23 bytes (a 16-byte extension and ours): the bound holds.
    format!("{}{suffix}", stem.trim_end_matches(['.', ' ']))
}

/// Characters that change how a name displays without showing: bidirectional embeddings,
/// overrides and isolates (`U+202E` makes `gnp.exe` read `exe.png`), zero-width characters,
/// the BOM.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{061C}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

/// The `filename="…"; filename*=UTF-8''…` parameters of `Content-Disposition` (RFC 6266,
/// RFC 8187) for a name already made safe: an ASCII fallback with every other character as
/// `_`, and the exact name percent-encoded.
pub fn disposition_filename(safe: &str) -> String {
    let fallback: String = safe
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' && c != '%' => c,
            _ => '_',
        })
        .collect();
    let mut encoded = String::with_capacity(safe.len() * 3);
    for b in safe.bytes() {
        // RFC 8187 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~".
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers() {
        let cases: [(&[u8], MediaType); 14] = [
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", MediaType::Png),
            (&[0xFF, 0xD8, 0xFF, 0xE0], MediaType::Jpeg),
            (b"GIF89a\x01\0", MediaType::Gif),
            (b"RIFF\x10\0\0\0WEBPVP8L", MediaType::WebP),
            (b"RIFF\x10\0\0\0WAVEfmt ", MediaType::Wav),
            (b"%PDF-1.7\n", MediaType::Pdf),
            (b"OggS\0\x02\0\0", MediaType::Ogg),
            (
                b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm",
                MediaType::WebM,
            ),
            (
                b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska",
                MediaType::Unknown,
            ),
            (b"PK\x03\x04\x14\0", MediaType::Zip),
            ("h\u{e9}llo\r\n\tworld".as_bytes(), MediaType::Text),
            (b"hello\x1b[31m", MediaType::Unknown),
            (b"", MediaType::Unknown),
            (
                b"\xef\xbb\xbf  <svg xmlns='http://www.w3.org/2000/svg'>",
                MediaType::Markup,
            ),
        ];
        for (bytes, want) in cases {
            assert_eq!(MediaType::sniff(bytes), want, "{bytes:?}");
        }
        // A character cut by the sniffing window is still text; an invalid byte is not.
        let mut long = vec![b'a'; SNIFF_BYTES - 1];
        long.extend_from_slice("é".as_bytes());
        assert_eq!(MediaType::sniff(&long), MediaType::Text);
        assert_eq!(MediaType::sniff(b"abc\xff"), MediaType::Unknown);
        for doc in [
            "<!DOCTYPE html>",
            "<html>",
            "<?xml version='1.0'?>",
            "\n<script>",
        ] {
            assert_eq!(MediaType::sniff(doc.as_bytes()), MediaType::Markup, "{doc}");
        }
        assert_eq!(MediaType::sniff(b"< 3 is less"), MediaType::Text);
    }

    #[test]
    fn only_decoded_raster_images_are_inline() {
        for kind in [
            MediaType::Pdf,
            MediaType::Text,
            MediaType::Markup,
            MediaType::Unknown,
            MediaType::Zip,
        ] {
            let s = serving(kind, None);
            assert_eq!(s.disposition, Disposition::Attachment, "{kind:?}");
            assert!(!s.content_type.contains("html") && !s.content_type.contains("xml"));
        }
        assert_eq!(
            serving(MediaType::Markup, None).content_type,
            "application/octet-stream"
        );
        let png = serving(MediaType::Png, None);
        assert_eq!(
            png,
            Serving {
                content_type: "application/octet-stream",
                disposition: Disposition::Attachment
            }
        );
    }

    #[test]
    fn hostile_names() {
        let cases = [
            (
                "../../etc/passwd\u{202e}gnp.exe",
                MediaType::Unknown,
                "passwdgnp.exe",
            ),
            (
                "../../etc/passwd\u{202e}gnp.exe",
                MediaType::Png,
                "passwdgnp.exe.png",
            ),
            ("C:\\Users\\x\\photo.JPEG", MediaType::Jpeg, "photo.JPEG"),
            ("...hidden", MediaType::Unknown, "hidden"),
            ("..", MediaType::Unknown, "file"),
            ("", MediaType::Pdf, "file.pdf"),
            ("a\nb\r\u{0}c\u{7f}.txt", MediaType::Text, "abc.txt"),
            ("con.txt", MediaType::Text, "_con.txt"),
            ("what?<x>:\"y\"|*.pdf", MediaType::Pdf, "what__x___y___.pdf"),
            ("report .pdf. ", MediaType::Pdf, "report.pdf"),
            ("x.svg", MediaType::Markup, "x.svg"),
            ("x.html", MediaType::Png, "x.html.png"),
        ];
        for (name, kind, want) in cases {
            assert_eq!(safe_file_name(name, kind), want, "{name:?}");
        }
        let long = format!("{}.pdf", "é".repeat(500));
        let safe = safe_file_name(&long, MediaType::Pdf);
        assert!(
            safe.len() <= MAX_NAME_BYTES && safe.ends_with("é.pdf"),
            "{safe}"
        );
    }

    #[test]
    fn content_disposition_encodes_rfc_8187() {
        let s = serving(MediaType::Pdf, None);
        assert_eq!(
            s.content_disposition("dir/Ré sumé \"1\".pdf", MediaType::Pdf),
            "attachment; filename=\"R_ sum_ _1_.pdf\"; \
             filename*=UTF-8''R%C3%A9%20sum%C3%A9%20_1_.pdf"
        );
    }
}
