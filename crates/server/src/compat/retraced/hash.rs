//! Retraced's receipt hash: the SHA-256, as lowercase hex, of a canonical string of an event's
//! id and some of its fields. Retraced's server answers every stored event with `{id, hash}`, and
//! its client library (`@retracedhq/retraced`, `lib/event.js`: `computeHash`, `buildHashTarget`)
//! rebuilds the string from the event it sent and throws when the hashes differ, so Stele must
//! build exactly the same string (../shared/interop-wire.md, B3, has the algorithm and worked
//! examples; the tests below check them and, in `tests/interop`, the library's own function).
//!
//! The string works on the event as the client sent it (the JSON as received), because it tells
//! apart what Stele's model would not: `fields` absent or `null` adds `:`, `{}` adds nothing;
//! `metadata` absent or `null` adds nothing, `{}` adds a lone `:`. The library is JavaScript, so
//! the rules below follow JavaScript's: which values count as empty (lodash's `isEmpty`) or true,
//! how a non-string turns into text, and that keys sort by UTF-16 code units.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The receipt hash of `event` (the JSON object the client sent) stored with `id`.
pub fn receipt_hash(id: &str, event: &Map<String, Value>) -> String {
    hex::encode(Sha256::digest(hash_target(id, event).as_bytes()))
}

/// The canonical string the hash is taken of:
///
/// ```text
/// id:action:target.id:actor.id:group.id:source_ip:is_failure:is_anonymous:fields[:external_id][:metadata]
/// ```
///
/// where an empty `target`, `actor`, `group` or `source_ip` leaves its place empty, the booleans
/// are `1` or `0`, and `fields` and `metadata` are `key=value;` for each key in sorted order.
/// Values have `%` and `:` escaped (`%25`, `%3A`); map keys and values also `=` and `;` (`%3D`,
/// `%3B`).
pub fn hash_target(id: &str, event: &Map<String, Value>) -> String {
    let field = |name: &str| event.get(name).unwrap_or(&Value::Null);
    let mut out = String::with_capacity(128);
    out += &escape(id);
    out.push(':');
    out += &escape(&js_text(field("action")));
    out.push(':');
    for part in ["target", "actor", "group"] {
        let value = field(part);
        if !is_empty(value) {
            let id = value.get("id").map_or_else(|| "undefined".into(), js_text);
            out += &escape(&id);
        }
        out.push(':');
    }
    let source_ip = field("source_ip");
    if !is_empty(source_ip) {
        out += &escape(&js_text(source_ip));
    }
    out.push(':');
    out += if is_truthy(field("is_failure")) {
        "1:"
    } else {
        "0:"
    };
    out += if is_truthy(field("is_anonymous")) {
        "1:"
    } else {
        "0:"
    };
    match field("fields") {
        fields if !is_truthy(fields) => out.push(':'),
        fields => pairs(&mut out, fields),
    }
    let external_id = field("external_id");
    if is_truthy(external_id) {
        out.push(':');
        out += &escape(&js_text(external_id));
    }
    let metadata = field("metadata");
    if is_truthy(metadata) {
        out.push(':');
        pairs(&mut out, metadata);
    }
    out
}

/// `key=value;` for each key of a map, keys in JavaScript's default sort order (UTF-16 code
/// units: not Rust's `str` order, which differs when keys mix characters above U+FFFF with ones
/// from U+E000 to U+FFFF). A value that is not a map has no keys (as `Object.keys` of a string
/// would have, the library never sends one: Retraced refuses it).
fn pairs(out: &mut String, map: &Value) {
    let Value::Object(map) = map else {
        return;
    };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    for key in keys {
        *out += &escape_pair(key);
        out.push('=');
        *out += &escape_pair(&js_text(&map[key]));
        out.push(';');
    }
}

/// The library's first pass: `%` → `%25`, then `:` → `%3A`.
fn escape(text: &str) -> String {
    text.replace('%', "%25").replace(':', "%3A")
}

/// Both passes, for map keys and values: also `=` → `%3D` and `;` → `%3B`.
fn escape_pair(text: &str) -> String {
    escape(text).replace('=', "%3D").replace(';', "%3B")
}

/// lodash's `isEmpty`: `null`, booleans and numbers are empty; strings, arrays and objects when
/// they have no length or keys.
pub(super) fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// JavaScript's truthiness of a JSON value (which Retraced's checks, and its hash, use).
pub(super) fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A value as a JavaScript template string shows it. Retraced accepts only strings where the hash
/// reads them; the rest follows JavaScript for the simple cases (a number's text, `true`,
/// `null`), so a client that hashes what it sent agrees even then.
fn js_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) => String::new(),
        Value::Object(_) => "[object Object]".into(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    /// interop-wire.md B3's worked examples, computed with the library's own `computeHash`.
    #[test]
    fn the_worked_examples_hash_as_the_library_does() {
        let cases = [
            (
                "abf053dc4a3042459818833276eec717",
                json!({"action":"document.update","group":{"id":"acme","name":"Acme Inc"},
                       "crud":"u","created":"2024-05-01T12:34:56.789Z",
                       "actor":{"id":"user@acme.test","name":"Jo User","href":"https://acme.test/u/1",
                                "fields":{"dept":"ops"}},
                       "target":{"id":"doc:42","name":"Q2 plan","href":"https://acme.test/d/42",
                                 "type":"document","fields":{"size":"10"}},
                       "source_ip":"203.0.113.7","description":"Updated the doc",
                       "is_failure":false,"is_anonymous":false,"fields":{"b;k":"v=1","a":"50%"},
                       "component":"web","version":"abc123","external_id":"ext:1",
                       "metadata":{"trace":"abc"}}),
                "abf053dc4a3042459818833276eec717:document.update:doc%3A42:user@acme.test:acme:\
                 203.0.113.7:0:0:a=50%25;b%3Bk=v%3D1;:ext%3A1:trace=abc;",
                "94a4d82af5bfcf193f8148429f22db4902e3ea9d7aecc3a18aeec94675c269ac",
            ),
            (
                "abf053dc4a3042459818833276eec717",
                json!({"action":"even.more.of.a.test","target":{"id":"some_object01234"},
                       "actor":{"id":"user@domain.xyz"},
                       "group":{"id":"%% :: some %% customer :: %%"},"is_failure":true,
                       "fields":{";Zyx=Cba%Abc=Xyz":"% hi there %",";zyx=cba;abc=xyz":"nothing special"}}),
                "abf053dc4a3042459818833276eec717:even.more.of.a.test:some_object01234:\
                 user@domain.xyz:%25%25 %3A%3A some %25%25 customer %3A%3A %25%25::1:0:\
                 %3BZyx%3DCba%25Abc%3DXyz=%25 hi there %25;%3Bzyx%3Dcba%3Babc%3Dxyz=nothing special;",
                "5b570bff4628b35262fb401d2f6c9bb38d29e212f6e0e8ea93445b4e5a253d50",
            ),
            (
                "0123456789abcdef0123456789abcdef",
                json!({"action":"a.b","crud":"c","is_anonymous":true}),
                "0123456789abcdef0123456789abcdef:a.b:::::0:1::",
                "04538e4a6533d350f1706662cb8965793d08b41bae940c01d381736ba75c58df",
            ),
            (
                "0123456789abcdef0123456789abcdef",
                json!({"action":"a.b","crud":"c","is_anonymous":true,"fields":{}}),
                "0123456789abcdef0123456789abcdef:a.b:::::0:1:",
                "e914cd85eec2b32d1bfdbd9be9f778830b7aaa48b800bd47420447ad9253d42d",
            ),
            (
                "id1",
                json!({"action":"a.b","crud":"c","actor":{"id":"u"},"metadata":{"k":"v"}}),
                "id1:a.b::u:::0:0:::k=v;",
                "37986fc1c21b92be40d464ec63f3e4e156da0d403002d42f10046b2536d5f498",
            ),
            (
                "id1",
                json!({"action":"a.b","crud":"c","actor":{"id":"u"},"external_id":"e"}),
                "id1:a.b::u:::0:0:::e",
                "f568348d137d1ea96d734b456202cfbe7fc9b63f24566448cf1df20b694c01f1",
            ),
        ];
        for (id, event, target, hash) in cases {
            let event = object(event);
            assert_eq!(hash_target(id, &event), target);
            assert_eq!(receipt_hash(id, &event), hash, "{target}");
        }
    }

    #[test]
    fn keys_sort_by_utf16_code_units_as_javascript_sorts_them() {
        // U+FF5E sorts after U+1F600 in Rust's `str` order (by code point) but before it in
        // JavaScript's (U+1F600 is the surrogate pair D83D DE00, and D83D < FF5E).
        let event = object(
            json!({"action":"a","fields":{"\u{1F600}":"1","\u{FF5E}":"2","B":"3","_":"4","a":"5"}}),
        );
        assert_eq!(
            hash_target("i", &event),
            "i:a:::::0:0:B=3;_=4;a=5;\u{1F600}=1;\u{FF5E}=2;"
        );
    }

    #[test]
    fn empty_and_absent_parts_follow_javascript() {
        let target = |event: Value| hash_target("i", &object(event));
        // An empty object, string or null leaves the place empty.
        assert_eq!(
            target(json!({"action":"a","actor":{},"group":null,"source_ip":""})),
            "i:a:::::0:0::"
        );
        // Truthiness of the flags as JavaScript sees the raw value.
        assert_eq!(
            target(json!({"action":"a","is_failure":"false","is_anonymous":0})),
            "i:a:::::1:0::"
        );
        // `metadata: {}` adds a lone separator, `metadata: null` nothing.
        assert_eq!(
            target(json!({"action":"a","metadata":{}})),
            "i:a:::::0:0:::"
        );
        assert_eq!(
            target(json!({"action":"a","metadata":null})),
            "i:a:::::0:0::"
        );
    }
}
