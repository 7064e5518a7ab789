//! The transcript a voice message carries (issue 36): a third CBOR item in the signed bytes,
//! after the file reference (`attachment.rs`; `null` there when a transcript made later by a
//! recipient references no file):
//!
//! ```text
//! signed = CBOR(fields) ‖ CBOR(attachment | null) ‖ CBOR(voice)
//! voice  = [1 (version), duration_ms: uint, status: uint (0 pending, 1 transcribed),
//!           language: text (≤ 16 bytes), words: [[word: text (1..=64 bytes), start_ms: uint,
//!           end_ms: uint], …] (≤ 2048), of: bytes (empty, or the 32-byte id of the voice
//!           message this later transcript is of)]
//! ```
//!
//! The transcript's text is the message's text (`🎤 0:07 "…"`), so a node of an older build
//! shows it, and the search index holds it with every other text. The words and their time
//! offsets in the audio are what this item adds; a node of an older build ignores the item
//! (it reads at most the first two), and so does this one with an item that breaks a bound.

use ciborium::Value;

use super::envelope::MessageId;

/// Version of the item's format.
const VERSION: u64 = 1;
/// Words an item holds at most.
pub const MAX_WORDS: usize = 2048;
/// Longest word, in bytes.
pub const MAX_WORD_BYTES: usize = 64;
/// Longest language code, in bytes.
pub const MAX_LANGUAGE_BYTES: usize = 16;
/// The largest encoded item a sender makes (words past it are left out; the text keeps them).
pub const ITEM_BUDGET: usize = 8 * 1024;

/// One recognised word and where it is in the audio.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// The word as recognised (with its punctuation).
    pub word: String,
    /// Milliseconds from the start of the recording.
    pub start_ms: u64,
    /// See `start_ms`.
    pub end_ms: u64,
}

/// A voice message's transcript item.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Transcript {
    /// The recording's length.
    pub duration_ms: u64,
    /// False while no node has transcribed it (the sender's had no model).
    pub transcribed: bool,
    /// The language detected, e.g. `en` (empty when pending or unknown).
    pub language: String,
    /// The words with their offsets.
    pub words: Vec<Word>,
    /// For a transcript made later by another node: the voice message it is of.
    pub of: Option<MessageId>,
}

impl Transcript {
    /// The words that match `query`'s words (any case; a trailing `*` matches a prefix;
    /// punctuation around a word ignored).
    pub fn matches(&self, query: &str) -> Vec<Word> {
        let wanted: Vec<(String, bool)> = query
            .split_whitespace()
            .map(|w| match w.strip_suffix('*') {
                Some(stem) => (fold(stem), true),
                None => (fold(w), false),
            })
            .filter(|(w, _)| !w.is_empty())
            .collect();
        self.words
            .iter()
            .filter(|w| {
                let f = fold(&w.word);
                wanted
                    .iter()
                    .any(|(q, prefix)| if *prefix { f.starts_with(q) } else { f == *q })
            })
            .cloned()
            .collect()
    }
}

/// Lower case, letters and digits only.
fn fold(w: &str) -> String {
    w.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// `0:07`, `12:30`.
pub fn clock(ms: u64) -> String {
    let s = ms.div_ceil(1000);
    format!("{}:{:02}", s / 60, s % 60)
}

/// The item's CBOR.
pub fn encode(t: &Transcript) -> Value {
    Value::Array(vec![
        Value::from(VERSION),
        Value::from(t.duration_ms),
        Value::from(u64::from(t.transcribed)),
        Value::Text(t.language.clone()),
        Value::Array(
            t.words
                .iter()
                .map(|w| {
                    Value::Array(vec![
                        Value::Text(w.word.clone()),
                        Value::from(w.start_ms),
                        Value::from(w.end_ms),
                    ])
                })
                .collect(),
        ),
        Value::Bytes(t.of.map(|id| id.0.to_vec()).unwrap_or_default()),
    ])
}

/// The item's bytes within [`ITEM_BUDGET`]: words past the budget (or over the bounds) left
/// out, a word longer than [`MAX_WORD_BYTES`] dropped, the language cut.
pub fn encode_bounded(t: &Transcript) -> Vec<u8> {
    encode_within(t, ITEM_BUDGET)
}

/// The item's bytes within `budget` (at least the item without words, ~20 bytes), as
/// [`encode_bounded`] cuts it: the words from the last one back are left out first.
pub fn encode_within(t: &Transcript, budget: usize) -> Vec<u8> {
    let mut t = t.clone();
    t.words
        .retain(|w| !w.word.is_empty() && w.word.len() <= MAX_WORD_BYTES);
    t.words.truncate(MAX_WORDS);
    if t.language.len() > MAX_LANGUAGE_BYTES {
        t.language.clear();
    }
    loop {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = ciborium::into_writer(&encode(&t), &mut out);
        if out.len() <= budget || t.words.is_empty() {
            return out;
        }
        let keep = t.words.len() * budget / out.len();
        t.words.truncate(keep.min(t.words.len() - 1));
    }
}

/// Reads an item from the network or the store: `None` when it breaks a bound or has another
/// version.
pub fn decode(v: Value) -> Option<Transcript> {
    let Value::Array(items) = v else {
        return None;
    };
    let [version, duration, status, language, words, of]: [Value; 6] = items.try_into().ok()?;
    if uint(version)? != VERSION {
        return None;
    }
    let duration_ms = uint(duration)?;
    let transcribed = match uint(status)? {
        0 => false,
        1 => true,
        _ => return None,
    };
    let Value::Text(language) = language else {
        return None;
    };
    if language.len() > MAX_LANGUAGE_BYTES
        || language
            .chars()
            .any(|c| !c.is_ascii_alphanumeric() && c != '-')
    {
        return None;
    }
    let Value::Array(words) = words else {
        return None;
    };
    if words.len() > MAX_WORDS {
        return None;
    }
    let words = words
        .into_iter()
        .map(|w| {
            let Value::Array(parts) = w else {
                return None;
            };
            let [word, start, end]: [Value; 3] = parts.try_into().ok()?;
            let Value::Text(word) = word else {
                return None;
            };
            if word.is_empty() || word.len() > MAX_WORD_BYTES || word.chars().any(char::is_control)
            {
                return None;
            }
            Some(Word {
                word,
                start_ms: uint(start)?,
                end_ms: uint(end)?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let of = match of {
        Value::Bytes(b) if b.is_empty() => None,
        Value::Bytes(b) => Some(MessageId(b.try_into().ok()?)),
        _ => return None,
    };
    Some(Transcript {
        duration_ms,
        transcribed,
        language,
        words,
        of,
    })
}

fn uint(v: Value) -> Option<u64> {
    match v {
        Value::Integer(i) => u64::try_from(i128::from(i)).ok(),
        _ => None,
    }
}

/// Splits signed bytes into the fields, the file reference and the transcript (each only if
/// present and valid).
pub fn split(
    signed: &[u8],
) -> Option<(
    Value,
    Option<super::attachment::Attachment>,
    Option<Transcript>,
)> {
    let mut rest = signed;
    let fields: Value = ciborium::from_reader(&mut rest).ok()?;
    if rest.is_empty() {
        return Some((fields, None, None));
    }
    let Ok(second) = ciborium::from_reader::<Value, _>(&mut rest) else {
        return Some((fields, None, None));
    };
    let attachment = super::attachment::decode(second);
    let transcript = match rest.is_empty() {
        true => None,
        false => ciborium::from_reader::<Value, _>(&mut rest)
            .ok()
            .and_then(decode),
    };
    Some((fields, attachment, transcript))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Transcript {
        Transcript {
            duration_ms: 2499,
            transcribed: true,
            language: "en".into(),
            words: [
                "The",
                "meeting",
                "is",
                "moved",
                "to",
                "Tuesday",
                "afternoon.",
            ]
            .iter()
            .enumerate()
            .map(|(i, w)| Word {
                word: (*w).into(),
                start_ms: i as u64 * 300,
                end_ms: i as u64 * 300 + 250,
            })
            .collect(),
            of: None,
        }
    }

    #[test]
    fn an_item_round_trips_and_finds_its_words() {
        let t = sample();
        let bytes = encode_bounded(&t);
        let back = decode(ciborium::from_reader(bytes.as_slice()).expect("cbor")).expect("valid");
        assert_eq!(back, t);
        let hits = back.matches("TUESDAY afternoon");
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].start_ms, 1500);
        assert_eq!(back.matches("tue*")[0].word, "Tuesday");
        assert!(back.matches("wednesday").is_empty());
        assert_eq!(clock(7000), "0:07");
        assert_eq!(clock(61_200), "1:02");
    }

    #[test]
    fn a_long_transcript_is_cut_to_the_budget_and_bad_items_are_refused() {
        let mut t = sample();
        t.words = (0..5000)
            .map(|i| Word {
                word: format!("word{i}"),
                start_ms: i * 100,
                end_ms: i * 100 + 90,
            })
            .collect();
        let bytes = encode_bounded(&t);
        assert!(bytes.len() <= ITEM_BUDGET, "{}", bytes.len());
        let back = decode(ciborium::from_reader(bytes.as_slice()).expect("cbor")).expect("valid");
        assert!(back.words.len() > 100 && back.words.len() < 5000);
        // Another version, a status of 7, a control character in a word: refused.
        let mut v = encode(&sample());
        if let Value::Array(items) = &mut v {
            items[0] = Value::from(2u64);
        }
        assert!(decode(v).is_none());
        let mut v = encode(&sample());
        if let Value::Array(items) = &mut v {
            items[2] = Value::from(7u64);
        }
        assert!(decode(v).is_none());
        let mut bad = sample();
        bad.words[0].word = "a\u{7}".into();
        assert!(decode(encode(&bad)).is_none());
    }
}
