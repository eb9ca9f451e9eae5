//! The `body` column, packed: its JSON text is compressed with zstd against a fixed dictionary
//! of Stele's own JSON keys, so that a row pays for its values and a few bytes for its keys
//! rather than for their spelling (issue 18's disk target; docs/benchmarks.md, "Packed
//! bodies"). The `personal` column is not packed: with its short keys, a frame of its own would
//! save a few bytes for as much CPU as the body's (zstd's cost is mostly per frame).
//!
//! Why a fixed dictionary of keys and not one trained on the organization's events, which would
//! compress further: a trained dictionary holds what occurs most often, which includes people's
//! names, emails and addresses, and an erasure must leave no trace of a person's values anywhere
//! in the files. The keys below hold nobody's data.
//!
//! The stored form: a TEXT value is the JSON itself (rows written before packing, and texts that
//! compression would not make smaller); a BLOB is a format byte ([`FORMAT_KEYS_1`]) followed by a
//! zstd frame without its 4-byte magic number (the same in every frame, so not worth storing).
//! The dictionary is part of the on-disk format: a new one needs a new format byte, and every
//! format ever written stays readable.

use std::cell::RefCell;
use std::sync::LazyLock;

use rusqlite::types::{Value, ValueRef};
use zstd::bulk::{Compressor, Decompressor};
use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// The first byte of a packed value: zstd against [`KEYS_1`].
const FORMAT_KEYS_1: u8 = 1;

/// The magic number that starts every zstd frame, left out of stored values.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// A raw-content zstd dictionary: the keys and shapes of `stele_store::record::Body` as it is
/// serialized, the rarer first (zstd reaches the end of a dictionary with the shortest offsets).
/// Never change it: rows packed with it need it to be read; add a new format instead.
const KEYS_1: &str = concat!(
    r#"{"ah":"","am":{},"ao":"","eh":"","em":{},"og":{}}"#,
    r#""re":[{"type":"","id":"","name":"","href":"","metadata":{}}]"#,
    r#""impersonator":{"id":"","email":""},"request_id":"","reason":"","location":"","#,
    r#""ids":["",""],"en":"","#,
    r#"{"ei":"","cx":{"source":"","api_key_id":""},"#,
    r#""ch":[{"field":"","old":"","new":""},{"field":"","old":null,"new":""}],"md":{"":""}}"#,
);

/// The packing level: zstd's fastest kind, which leaves values uncoded and finds the keys in
/// the dictionary. A frame of a few hundred bytes costs about 1.3 µs here against 2.9 µs at any
/// positive level (which also builds entropy tables for each frame), for 5% more bytes on the
/// bench's events (docs/benchmarks.md, "Packed bodies").
const LEVEL: i32 = -1;

/// A packed value never unpacks to more than this (an event is limited to far less); a damaged
/// value claiming more is an error, not an allocation.
const MAX_UNPACKED: usize = 64 * 1024 * 1024;

static ENCODER: LazyLock<EncoderDictionary<'static>> =
    LazyLock::new(|| EncoderDictionary::copy(KEYS_1.as_bytes(), LEVEL));
static DECODER: LazyLock<DecoderDictionary<'static>> =
    LazyLock::new(|| DecoderDictionary::copy(KEYS_1.as_bytes()));

thread_local! {
    static COMPRESSOR: RefCell<Option<Compressor<'static>>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor<'static>>> = const { RefCell::new(None) };
}

/// The stored value of a `body` JSON text: packed, or the text itself when packing would not make
/// it smaller (an empty object, say).
pub fn pack(json: &str) -> Value {
    let frame = COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let compressor = match cell.as_mut() {
            Some(c) => c,
            None => cell.insert(Compressor::with_prepared_dictionary(&ENCODER).ok()?),
        };
        compressor.compress(json.as_bytes()).ok()
    });
    // Stored: the format byte and the frame without its magic number, 3 bytes less than it.
    match frame {
        Some(frame) if frame.starts_with(&ZSTD_MAGIC) && frame.len() - 3 < json.len() => {
            let mut packed = Vec::with_capacity(frame.len() - 3);
            packed.push(FORMAT_KEYS_1);
            packed.extend_from_slice(&frame[ZSTD_MAGIC.len()..]);
            Value::Blob(packed)
        }
        _ => Value::Text(json.to_string()),
    }
}

/// Why a stored value could not be read as JSON text.
#[derive(Debug)]
pub struct Unreadable(String);

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreadable {}

/// The JSON text of a stored `body` (or `personal`, which is always text) value: the text itself,
/// or the packed value unpacked into `scratch`.
pub fn unpack<'a>(value: ValueRef<'a>, scratch: &'a mut String) -> Result<&'a str, Unreadable> {
    match value {
        ValueRef::Text(text) => {
            std::str::from_utf8(text).map_err(|e| Unreadable(format!("not UTF-8: {e}")))
        }
        ValueRef::Blob(packed) => {
            *scratch = unpack_blob(packed)?;
            Ok(scratch)
        }
        other => Err(Unreadable(format!(
            "a {:?} value where JSON text was expected",
            other.data_type()
        ))),
    }
}

fn unpack_blob(packed: &[u8]) -> Result<String, Unreadable> {
    let Some((&format, frame)) = packed.split_first() else {
        return Err(Unreadable("an empty packed value".into()));
    };
    if format != FORMAT_KEYS_1 {
        return Err(Unreadable(format!("unknown packing format {format}")));
    }
    let mut whole = Vec::with_capacity(ZSTD_MAGIC.len() + frame.len());
    whole.extend_from_slice(&ZSTD_MAGIC);
    whole.extend_from_slice(frame);
    let bytes = DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let decompressor = match cell.as_mut() {
            Some(d) => d,
            None => cell.insert(
                Decompressor::with_prepared_dictionary(&DECODER)
                    .map_err(|e| Unreadable(format!("zstd: {e}")))?,
            ),
        };
        // Packing writes the text's length into the frame; allocating exactly that matters, as
        // `decompress` would otherwise allocate all of the capacity it is given, every time.
        let size = match zstd::zstd_safe::get_frame_content_size(&whole) {
            Ok(Some(size)) if size <= MAX_UNPACKED as u64 => size as usize,
            Ok(Some(size)) => return Err(Unreadable(format!("claims {size} bytes unpacked"))),
            Ok(None) | Err(_) => return Err(Unreadable("no unpacked size in the frame".into())),
        };
        decompressor
            .decompress(&whole, size)
            .map_err(|e| Unreadable(format!("zstd: {e}")))
    })?;
    String::from_utf8(bytes).map_err(|e| Unreadable(format!("unpacked, not UTF-8: {e}")))
}

/// Every packed value that `bytes` (the bytes of a database file) holds anywhere, in live rows or
/// in free space, unpacked; a value is found wherever a frame of up to 16 KB starts and decodes,
/// so a few may be chance matches. A byte scan for values that must be gone (an erasure's) has to
/// look inside these too, as packed text does not hold its values byte for byte.
pub fn texts_packed_in(bytes: &[u8]) -> Vec<String> {
    // Packed values are a row's columns: no frame reaches past a few pages.
    const WINDOW: usize = 16 * 1024;
    let mut found = Vec::new();
    let mut whole = Vec::with_capacity(ZSTD_MAGIC.len() + WINDOW);
    for (i, byte) in bytes.iter().enumerate() {
        if *byte != FORMAT_KEYS_1 {
            continue;
        }
        let frame = &bytes[i + 1..bytes.len().min(i + 1 + WINDOW)];
        whole.clear();
        whole.extend_from_slice(&ZSTD_MAGIC);
        whole.extend_from_slice(frame);
        let Ok(size) = zstd::zstd_safe::find_frame_compressed_size(&whole) else {
            continue;
        };
        // The stored value: the format byte here and the frame without its magic number.
        if let Ok(text) = unpack_blob(&bytes[i..i + 1 + size - ZSTD_MAGIC.len()]) {
            found.push(text);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(json: &str) -> Value {
        let stored = pack(json);
        let mut scratch = String::new();
        let value = match &stored {
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
            other => panic!("{other:?}"),
        };
        assert_eq!(unpack(value, &mut scratch).unwrap(), json);
        stored
    }

    #[test]
    fn bodies_pack_smaller_and_unpack_to_the_same_text() {
        let body = r#"{"ei":"dev_1665","cx":{"source":"web"},"ch":[{"field":"locale","new":"de-DE"},{"field":"status","new":"archived"}],"md":{"app_version":"4.9.7","duration_ms":2992,"plan":"enterprise"}}"#;
        let Value::Blob(packed) = round_trip(body) else {
            panic!("not packed");
        };
        assert_eq!(packed[0], FORMAT_KEYS_1);
        // The frame records the text's length: unpacking allocates exactly that.
        let whole = [&ZSTD_MAGIC[..], &packed[1..]].concat();
        assert_eq!(
            zstd::zstd_safe::get_frame_content_size(&whole).unwrap(),
            Some(body.len() as u64)
        );
        assert!(
            packed.len() * 10 < body.len() * 8,
            "{} of {} bytes",
            packed.len(),
            body.len()
        );
        // Unicode, escapes and numbers come back byte for byte.
        round_trip(r#"{"md":{"名前":"Zoë \"Z\" Ünal\n","n":1.50e3,"x":[null,true,-0]}}"#);
    }

    #[test]
    fn short_texts_stay_text() {
        for json in ["{}", r#"{"ei":"7"}"#] {
            assert!(matches!(round_trip(json), Value::Text(_)), "{json}");
        }
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let mut scratch = String::new();
        for bad in [&[][..], &[9, 1, 2, 3], &[FORMAT_KEYS_1, 0, 0, 0, 0, 0]] {
            assert!(
                unpack(ValueRef::Blob(bad), &mut scratch).is_err(),
                "{bad:?}"
            );
        }
        assert!(unpack(ValueRef::Integer(3), &mut scratch).is_err());
    }

    #[test]
    fn packed_values_are_found_among_other_bytes() {
        let Value::Blob(packed) =
            pack(r#"{"ei":"usr_1","en":"someone@example.com","cx":{"source":"web"}}"#)
        else {
            panic!("not packed");
        };
        let mut file = vec![0u8, 1, 7, 1, 1];
        file.extend_from_slice(&packed);
        file.extend_from_slice(&[1, 0, 1, 255, 1]);
        let found = texts_packed_in(&file);
        assert!(
            found.iter().any(|t| t.contains("someone@example.com")),
            "{found:?}"
        );
    }

    /// What the dictionary must never hold: a value of anybody's (see the module's comment).
    #[test]
    fn the_dictionary_holds_keys_only() {
        assert!(!KEYS_1.contains('@') && !KEYS_1.chars().any(|c| c.is_ascii_digit()));
    }
}
