//! Redaction: sensitive values never reach storage.
//!
//! Three kinds of value are replaced before an event is stored:
//!
//! - **Sensitive fields.** A field is sensitive when its *name* looks like a password, token,
//!   secret, API or private key, credential, PIN, session, cookie, authorization header, MFA
//!   secret or encrypted value (the rules are below). Its value, whatever it is (a string, a
//!   number, a whole nested object), becomes the string [`REDACTED`].
//! - **Values that look like secrets**, whatever their field is called (unless an organization
//!   turns [`RedactionRules::detect_values`] off): a string holding a JWT, a PEM private key, a
//!   payment card number or a long high-entropy token becomes [`REDACTED`] (see
//!   [`looks_like_secret`] for exactly what each detector matches and what it leaves alone).
//! - **Binary values.** Stele calls a value binary when it is a JSON object whose only key is
//!   `"$binary"` (MongoDB extended-JSON style: `{"$binary": "base64…"}` or
//!   `{"$binary": {"base64": …, "subType": …}}`; the legacy form with a `"$type"` key beside it
//!   counts too). It becomes the string [`BINARY_DATA`] wherever it appears, however deep.
//!
//! # How names are compared
//!
//! A name is *normalized* before it is compared: it is lowercased and every character that is not
//! a letter or a digit (`_`, `-`, spaces, …) is removed, so `api_key`, `API-Key` and `apiKey` all
//! read `apikey`. The configured patterns are normalized the same way, so a rule written as
//! `private_key` works. Four lists of patterns, each matched against the normalized name:
//!
//! - [`name_contains`](RedactionRules::name_contains): anywhere in the name (`token` catches
//!   `access_token` and `tokens_used`). For patterns long enough not to occur inside ordinary
//!   words.
//! - [`name_starts_with`](RedactionRules::name_starts_with): at the start (`encrypted`).
//! - [`name_words`](RedactionRules::name_words): as **whole words** only. A name's words are
//!   its runs of letters and digits, split at every other character and at camelCase humps
//!   (`userPIN`, `pinCode`, `PINCode`, `x-pin` all hold the word `pin`); a pattern matches a run
//!   of one or more whole consecutive words (`session_id` matches `user_session_id` and
//!   `sessionId`). This is for short names that occur inside ordinary words: `pin` catches
//!   `pin`, `pin_code` and `userPin` but not `shipping`, `spinner` or `pinned`; `session`
//!   catches `session`, `session_id`, `sessionToken` but not `sessions_count`.
//! - [`name_last_words`](RedactionRules::name_last_words): as the **last** whole word(s) of a
//!   name of **at least two** words: `key` is the `*_key` rule, which catches `license_key`,
//!   `signingKey`, `api-key`, `public_key` and `primary_key` (on the safe side: an organization
//!   that records such keys on purpose removes the rule), but not `key` alone (a name as generic
//!   as `key` names a map's key far more often than a secret), `monkey`, `keyboard` or `key_id`.
//!
//! A dotted path (`user.reset_token`, as [`crate::diff`] produces for nested objects) is sensitive
//! when **any** of its segments is a sensitive name: the last segment catches `user.reset_token`,
//! and an earlier one catches a value nested under a sensitive object
//! (`{"mfa_secret": {"value": "…"}}` gives `mfa_secret.value`, which must not leak either). This
//! errs on the side of redacting (`tokens_used` is redacted too), which is the safe side for an
//! audit trail: a redacted value can be asked for again, a leaked one cannot be taken back.
//!
//! Values that are not themselves sensitive are still walked: an object nested inside them (say
//! an array of user records in one change) has its sensitive keys, secret-looking strings and
//! binary values replaced too. Redaction is idempotent: neither [`REDACTED`] nor
//! [`BINARY_DATA`] looks like a secret.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::{Change, Metadata, NewEvent};

/// What a sensitive field's value, or a value that looks like a secret, becomes.
pub const REDACTED: &str = "[REDACTED]";
/// What a binary value becomes.
pub const BINARY_DATA: &str = "[BINARY DATA]";

/// The key that marks a binary value.
pub const BINARY_KEY: &str = "$binary";

/// The shortest run of token characters the high-entropy detector looks at.
pub const MIN_TOKEN_LEN: usize = 32;
/// The Shannon entropy, in bits per character, above which a long token is taken to be random
/// (see [`looks_like_secret`]).
pub const MIN_TOKEN_ENTROPY: f64 = 4.0;
/// The share of neighbouring characters of a different class (upper, lower, digit, symbol) at
/// which a long token is taken to be random rather than words (see [`looks_like_secret`]).
pub const MIN_TOKEN_CLASS_CHANGES: f64 = 0.4;

/// What is redacted. Configurable per organization; [`Default`] holds the rules every
/// organization starts with. Patterns are normalized like names (see the module docs) when
/// compared, and a pattern that normalizes to nothing matches nothing. A field left out when the
/// rules are read (stored settings older than the field, a request) takes its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionRules {
    /// A name is sensitive when its normalized form contains one of these.
    pub name_contains: Vec<String>,
    /// A name is sensitive when its normalized form starts with one of these.
    pub name_starts_with: Vec<String>,
    /// A name is sensitive when one of these is one or more of its whole words.
    pub name_words: Vec<String>,
    /// A name of at least two words is sensitive when one of these is its last whole word(s).
    pub name_last_words: Vec<String>,
    /// Whether string values that look like secrets (JWTs, PEM private keys, card numbers, long
    /// high-entropy tokens) are redacted wherever they appear, whatever their field's name.
    pub detect_values: bool,
}

impl Default for RedactionRules {
    fn default() -> Self {
        let list = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
        RedactionRules {
            name_contains: list(&[
                "password",
                "passwd",
                "passphrase",
                "secret",
                "token",
                "apikey",
                "privatekey",
                "credential",
                "mfasecret",
                "accesscode",
            ]),
            name_starts_with: list(&["encrypted"]),
            name_words: list(&[
                "pin",
                "otp",
                "totp",
                "cvv",
                "cvc",
                "session",
                "cookie",
                "cookies",
                "authorization",
            ]),
            name_last_words: list(&["key"]),
            detect_values: true,
        }
    }
}

impl RedactionRules {
    /// Rules that redact nothing by name or by value (binary values are still replaced).
    pub fn none() -> Self {
        RedactionRules {
            name_contains: Vec::new(),
            name_starts_with: Vec::new(),
            name_words: Vec::new(),
            name_last_words: Vec::new(),
            detect_values: false,
        }
    }

    /// Whether one name (one key, not a dotted path) is sensitive.
    pub fn is_sensitive_name(&self, name: &str) -> bool {
        // No name rule (the rules a door checks events with before redacting them): nothing to
        // normalize the name for.
        if self.name_contains.is_empty()
            && self.name_starts_with.is_empty()
            && self.name_words.is_empty()
            && self.name_last_words.is_empty()
        {
            return false;
        }
        let normalized = normalize(name);
        if normalized.is_empty() {
            return false;
        }
        if self.name_contains.iter().any(|p| {
            let p = normalize(p);
            !p.is_empty() && normalized.contains(p.as_ref())
        }) || self.name_starts_with.iter().any(|p| {
            let p = normalize(p);
            !p.is_empty() && normalized.starts_with(p.as_ref())
        }) {
            return true;
        }
        // Splitting into words allocates: only for the names that hold such a pattern at all,
        // which most names do not.
        if !patterns(&self.name_words)
            .chain(patterns(&self.name_last_words))
            .any(|p| normalized.contains(p.as_ref()))
        {
            return false;
        }
        let (joined, bounds) = words(name);
        let at_bound = |i: usize| bounds.binary_search(&i).is_ok();
        patterns(&self.name_words).any(|p| {
            joined
                .match_indices(p.as_ref())
                .any(|(i, m)| at_bound(i) && at_bound(i + m.len()))
        }) || patterns(&self.name_last_words).any(|p| {
            joined.len() > p.len()
                && joined.ends_with(p.as_ref())
                && at_bound(joined.len() - p.len())
        })
    }

    /// Whether a field, named by its dotted path, is sensitive: true when any segment of the
    /// path is a sensitive name (see the module docs).
    pub fn is_sensitive(&self, field_path: &str) -> bool {
        field_path.split('.').any(|s| self.is_sensitive_name(s))
    }

    /// Replaces, inside `value`, every binary value with [`BINARY_DATA`], the value of every
    /// sensitive key of a nested object with [`REDACTED`], and (with
    /// [`Self::detect_values`]) every string that looks like a secret with [`REDACTED`]; `value`
    /// itself too when it is such a string. `value`'s own name is the caller's business.
    pub fn redact_value(&self, value: &mut Value) {
        if is_binary(value) {
            *value = Value::String(BINARY_DATA.to_string());
            return;
        }
        match value {
            Value::Object(map) => self.redact_object(map),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_value(v)),
            Value::String(s) if self.detect_values && looks_like_secret(s) => {
                *value = Value::String(REDACTED.to_string());
            }
            _ => {}
        }
    }

    /// Redacts an object in place, walking nested objects and arrays: the value of a sensitive
    /// key becomes [`REDACTED`] (whole, even when it is an object), binary values become
    /// [`BINARY_DATA`], strings that look like secrets [`REDACTED`]. Since every ancestor of a
    /// nested key was found not sensitive on the way down, this agrees with
    /// [`Self::is_sensitive`] on the joined dotted path.
    pub fn redact_object(&self, object: &mut Map<String, Value>) {
        for (key, value) in object.iter_mut() {
            if self.is_sensitive(key) {
                *value = Value::String(REDACTED.to_string());
            } else {
                self.redact_value(value);
            }
        }
    }

    /// Redacts field-level changes: a sensitive field's present `old`/`new` become
    /// [`REDACTED`]; otherwise they are redacted as [`Self::redact_value`] does.
    pub fn redact_changes(&self, changes: &mut [Change]) {
        for change in changes {
            let sensitive = self.is_sensitive(&change.field);
            for value in [&mut change.old, &mut change.new].into_iter().flatten() {
                if sensitive {
                    *value = Value::String(REDACTED.to_string());
                } else {
                    self.redact_value(value);
                }
            }
        }
    }

    /// Redacts a checked event: its changes and every metadata map (the event's, the actor's,
    /// each entity's, since secrets are as likely there). `origin`, which only the compatible
    /// doors set, is theirs to fill after checking and is not walked.
    pub fn redact_event(&self, event: &mut NewEvent) {
        self.redact_changes(&mut event.changes);
        self.redact_metadata(&mut event.metadata);
        self.redact_metadata(&mut event.actor.metadata);
        for e in event
            .entity
            .iter_mut()
            .chain(event.related_entities.iter_mut())
        {
            self.redact_metadata(&mut e.metadata);
        }
    }

    /// Redacts metadata by key, as [`Self::redact_object`] does.
    pub fn redact_metadata(&self, metadata: &mut BTreeMap<String, Value>) {
        for (key, value) in metadata.iter_mut() {
            if self.is_sensitive(key) {
                *value = Value::String(REDACTED.to_string());
            } else {
                self.redact_value(value);
            }
        }
    }
}

/// The non-empty patterns of `list`, normalized (borrowed when they already are, as the
/// defaults are).
fn patterns(list: &[String]) -> impl Iterator<Item = Cow<'_, str>> {
    list.iter().map(|p| normalize(p)).filter(|p| !p.is_empty())
}

/// Whether `value` is a binary value: an object with the key `"$binary"` and no other key than
/// (optionally) `"$type"`.
pub fn is_binary(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            map.contains_key(BINARY_KEY) && map.keys().all(|k| k == BINARY_KEY || k == "$type")
        }
        _ => false,
    }
}

/// Lowercases and drops every character that is not a letter or a digit. Borrows when the name
/// is already normalized, which the default patterns and most field names are.
fn normalize(name: &str) -> Cow<'_, str> {
    if name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect(),
    )
}

/// A name's normalized form (as [`normalize`] gives it) and the byte offsets in it where a word
/// starts or ends (0 and the length included). Words are split at every character that is not a
/// letter or a digit, where a lowercase letter or a digit is followed by an uppercase one
/// (`pinCode`), and before the last capital of a run of capitals followed by a lowercase letter
/// (`PINCode` is `PIN` `Code`).
fn words(name: &str) -> (String, Vec<usize>) {
    let chars: Vec<char> = name.chars().collect();
    let mut joined = String::with_capacity(name.len());
    let mut bounds = vec![0];
    let mut in_word = false;
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            in_word = false;
            continue;
        }
        let hump = in_word && c.is_uppercase() && {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            !prev.is_uppercase() || next_lower
        };
        if (!in_word || hump) && bounds.last() != Some(&joined.len()) {
            bounds.push(joined.len());
        }
        in_word = true;
        joined.extend(c.to_lowercase());
    }
    if bounds.last() != Some(&joined.len()) {
        bounds.push(joined.len());
    }
    (joined, bounds)
}

/// Whether a string looks like a secret, wherever in it the secret sits (a token inside a
/// header line, a key inside a pasted config). Each detector, with what it leaves alone:
///
/// - **JWT**: a run of `[A-Za-z0-9_.-]` made of three `.`-separated base64url segments (the
///   signature may be empty, as in `alg: none`), the first of which decodes to a JSON object
///   with an `"alg"` key. Dotted names (`a.b.c`), version numbers and host names are not JWTs:
///   their first segment does not decode to such a header.
/// - **PEM private key**: `-----BEGIN … PRIVATE KEY-----` (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP
///   `… PRIVATE KEY BLOCK`, or none). Public keys and certificates are not secrets and stay.
/// - **Card number**: 13 to 19 digits, optionally grouped by single spaces or single dashes (one
///   kind of separator throughout), not preceded by `+` nor touching a letter or a digit, whose
///   first digit is 2 to 6 (the payment networks' major industry identifiers: Mastercard 2 and 5,
///   Amex/Diners/JCB 3, Visa 4, Discover/UnionPay 6) and that pass the Luhn check. The first digit
///   spares millisecond timestamps (13 digits starting with 1 until the year 2286) and snowflake
///   ids, which start with 1 for decades; `+` spares international phone numbers. JSON numbers
///   are not looked at (only strings are).
/// - **High-entropy token**: a run of at least [`MIN_TOKEN_LEN`] characters of
///   `[A-Za-z0-9_+/=-]` that holds an uppercase letter, a lowercase letter and a digit, whose
///   Shannon entropy is at least [`MIN_TOKEN_ENTROPY`] bits per character, and in which at least
///   [`MIN_TOKEN_CLASS_CHANGES`] of neighbouring characters change class (upper, lower, digit,
///   symbol). Random base64/base62 of 32 characters has a median entropy near 4.56 and class
///   changes near 0.65 (fewer than 1 in 100 fall under either bar), while long identifiers and
///   paths made of words (`GetOrganizationMembersWithRoles2`, `/v1/orgs/acme/Website2/settings`)
///   reach 4.0 to 4.35 bits but change class at only 0.29 to 0.39 of their neighbours. Requiring
///   all three letter-and-digit classes deliberately spares hexadecimal (UUIDs, SHA-256 digests,
///   git commit ids, which audit entries name all the time) and lowercase-only tokens: such
///   secrets are caught by their field's name. ISO timestamps, e-mail addresses and URLs are cut
///   into short runs by `:`, `.`, `@`, `?`, `&`.
pub fn looks_like_secret(s: &str) -> bool {
    contains_private_key(s)
        || contains_jwt(s)
        || contains_card_number(s)
        || contains_random_token(s)
}

/// Whether `s` holds a PEM private key's header line.
pub fn contains_private_key(s: &str) -> bool {
    s.match_indices("-----BEGIN ").any(|(i, m)| {
        let rest = &s[i + m.len()..];
        let Some(end) = rest.find("-----") else {
            return false;
        };
        let label = &rest[..end];
        label.bytes().all(|b| b.is_ascii_uppercase() || b == b' ')
            && (label.ends_with("PRIVATE KEY") || label.ends_with("PRIVATE KEY BLOCK"))
    })
}

/// Whether `s` holds a JWT (see [`looks_like_secret`]).
pub fn contains_jwt(s: &str) -> bool {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .any(is_jwt)
}

fn is_jwt(s: &str) -> bool {
    let mut parts = s.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    // `{"` encodes as `eyI` or `eyJ`: a cheap filter before decoding.
    if !header.starts_with("ey") || payload.is_empty() {
        return false;
    }
    let Some(bytes) = base64url_decode(header) else {
        return false;
    };
    matches!(
        serde_json::from_slice::<Value>(&bytes),
        Ok(Value::Object(map)) if map.contains_key("alg")
    )
}

/// Decodes unpadded base64url (RFC 4648 §5), as JWT segments are written. `None` when a
/// character is outside the alphabet or the length cannot be base64.
fn base64url_decode(s: &str) -> Option<Vec<u8>> {
    fn sextet(b: u8) -> Option<u32> {
        Some(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32)
    }
    if s.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for chunk in s.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, &b) in chunk.iter().enumerate() {
            n |= sextet(b)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// Whether `s` holds a payment card number (see [`looks_like_secret`]).
pub fn contains_card_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'+'));
        if !starts {
            i += 1;
            continue;
        }
        // The first 19 digits (a card has no more), and how many there are.
        let mut digits = [0u8; 19];
        let mut count = 0;
        let mut separator: Option<u8> = None;
        let mut j = i;
        loop {
            if count < digits.len() {
                digits[count] = b[j] - b'0';
            }
            count += 1;
            j += 1;
            if j < b.len() && b[j].is_ascii_digit() {
                continue;
            }
            // A single separator between two digits, the same one throughout.
            if j + 1 < b.len()
                && matches!(b[j], b' ' | b'-')
                && separator.is_none_or(|sep| sep == b[j])
                && b[j + 1].is_ascii_digit()
            {
                separator = Some(b[j]);
                j += 1;
                continue;
            }
            break;
        }
        let ends = j == b.len() || !b[j].is_ascii_alphanumeric();
        if ends && count <= digits.len() && is_card_number(&digits[..count]) {
            return true;
        }
        i = j.max(i + 1);
    }
    false
}

fn is_card_number(digits: &[u8]) -> bool {
    if !(13..=19).contains(&digits.len()) || !(2..=6).contains(&digits[0]) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let d = d * 2;
                if d > 9 { d - 9 } else { d }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Whether `s` holds a long high-entropy token (see [`looks_like_secret`]).
pub fn contains_random_token(s: &str) -> bool {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '/' | '=')))
        .any(is_random_token)
}

fn is_random_token(t: &str) -> bool {
    let b = t.as_bytes();
    if b.len() < MIN_TOKEN_LEN
        || !b.iter().any(u8::is_ascii_uppercase)
        || !b.iter().any(u8::is_ascii_lowercase)
        || !b.iter().any(u8::is_ascii_digit)
    {
        return false;
    }
    let class = |c: &u8| match c {
        b'A'..=b'Z' => 0,
        b'a'..=b'z' => 1,
        b'0'..=b'9' => 2,
        _ => 3,
    };
    let changes = b
        .windows(2)
        .filter(|w| class(&w[0]) != class(&w[1]))
        .count();
    if (changes as f64) < MIN_TOKEN_CLASS_CHANGES * (b.len() - 1) as f64 {
        return false;
    }
    shannon_entropy(b) >= MIN_TOKEN_ENTROPY
}

/// Bits per byte of `bytes`' own byte frequencies.
fn shannon_entropy(bytes: &[u8]) -> f64 {
    let mut counts = [0usize; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// The places in `stored` where redaction put [`REDACTED`] over what `raw` (the same event
/// checked without redaction, see [`RedactionRules::none`]) holds, named as a person reads
/// them: `changes.password.new`, `metadata.token`, `actor.metadata.session`,
/// `entity.metadata.key`, `related_entities[1].metadata.pin`, and under them `.key` and `[i]`
/// into nested objects and arrays (`changes.users.new[0].password`). A value that was sent as
/// the text `[REDACTED]` is not listed; binary values, replaced whatever the rules, are not
/// either.
pub fn redacted_paths(raw: &NewEvent, stored: &NewEvent) -> Vec<String> {
    let mut out = Vec::new();
    for (r, s) in raw.changes.iter().zip(&stored.changes) {
        for (side, rv, sv) in [("old", &r.old, &s.old), ("new", &r.new, &s.new)] {
            if let (Some(rv), Some(sv)) = (rv, sv) {
                diff_values(&format!("changes.{}.{side}", s.field), rv, sv, &mut out);
            }
        }
    }
    diff_metadata("metadata", &raw.metadata, &stored.metadata, &mut out);
    diff_metadata(
        "actor.metadata",
        &raw.actor.metadata,
        &stored.actor.metadata,
        &mut out,
    );
    if let (Some(r), Some(s)) = (&raw.entity, &stored.entity) {
        diff_metadata("entity.metadata", &r.metadata, &s.metadata, &mut out);
    }
    for (i, (r, s)) in raw
        .related_entities
        .iter()
        .zip(&stored.related_entities)
        .enumerate()
    {
        diff_metadata(
            &format!("related_entities[{i}].metadata"),
            &r.metadata,
            &s.metadata,
            &mut out,
        );
    }
    out
}

fn diff_metadata(path: &str, raw: &Metadata, stored: &Metadata, out: &mut Vec<String>) {
    for (key, sv) in stored {
        if let Some(rv) = raw.get(key) {
            diff_values(&format!("{path}.{key}"), rv, sv, out);
        }
    }
}

fn diff_values(path: &str, raw: &Value, stored: &Value, out: &mut Vec<String>) {
    match (raw, stored) {
        (_, Value::String(s)) if s == REDACTED && raw != stored => out.push(path.to_string()),
        (Value::Object(r), Value::Object(s)) => {
            for (key, sv) in s {
                if let Some(rv) = r.get(key) {
                    diff_values(&format!("{path}.{key}"), rv, sv, out);
                }
            }
        }
        (Value::Array(r), Value::Array(s)) => {
            for (i, (rv, sv)) in r.iter().zip(s).enumerate() {
                diff_values(&format!("{path}[{i}]"), rv, sv, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn rules() -> RedactionRules {
        RedactionRules::default()
    }

    #[test]
    fn default_sensitive_names() {
        for name in [
            "password",
            "newPassword",
            "new_password",
            "PASSWORD",
            "passwd",
            "client_secret",
            "api_key",
            "API-Key",
            "apiKey",
            "api key",
            "x-api-key",
            "mfa_secret",
            "mfaSecret",
            "encrypted_ssn",
            "encryptedPayload",
            "private_key",
            "credentials",
            "access_token",
            "tokens_used",
            "user.reset_token",
        ] {
            assert!(rules().is_sensitive(name), "{name} should be sensitive");
        }
    }

    #[test]
    fn ordinary_names_are_not_sensitive() {
        for name in [
            "author",
            "passage",
            "name",
            "email",
            "ssn_encrypted_at",
            "key",
            "api",
            "",
            "user.name",
            "pass.word",
        ] {
            assert!(
                !rules().is_sensitive(name),
                "{name} should not be sensitive"
            );
        }
    }

    #[test]
    fn a_path_under_a_sensitive_name_is_sensitive() {
        assert!(rules().is_sensitive("mfa_secret.value"));
        assert!(rules().is_sensitive("credentials.username"));
        assert!(!rules().is_sensitive("profile.display_name"));
    }

    #[test]
    fn configured_patterns_are_normalized() {
        let r = RedactionRules {
            name_contains: vec!["Social_Security".into(), "".into(), "__".into()],
            name_starts_with: vec!["PIN".into()],
            ..RedactionRules::none()
        };
        assert!(r.is_sensitive("socialSecurityNumber"));
        assert!(r.is_sensitive("pin_code"));
        assert!(!r.is_sensitive("spin"));
        // Empty patterns match nothing.
        assert!(!r.is_sensitive("anything"));
        assert!(!RedactionRules::none().is_sensitive("password"));
    }

    #[test]
    fn rules_round_trip_through_serde_and_fill_defaults() {
        let r = rules();
        let back: RedactionRules =
            serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let partial: RedactionRules =
            serde_json::from_value(json!({"name_contains": ["pin"]})).unwrap();
        assert_eq!(partial.name_contains, vec!["pin".to_string()]);
        assert_eq!(partial.name_starts_with, rules().name_starts_with);
        assert!(serde_json::from_value::<RedactionRules>(json!({"name_contain": []})).is_err());
    }

    #[test]
    fn binary_values_are_recognized() {
        assert!(is_binary(&json!({"$binary": "AAEC"})));
        assert!(is_binary(
            &json!({"$binary": {"base64": "AAEC", "subType": "00"}})
        ));
        assert!(is_binary(&json!({"$binary": "AAEC", "$type": "00"})));
        assert!(!is_binary(&json!({"$binary": "AAEC", "name": "x"})));
        assert!(!is_binary(&json!({"$type": "00"})));
        assert!(!is_binary(&json!("$binary")));
        assert!(!is_binary(&json!({})));
    }

    #[test]
    fn changes_of_sensitive_fields_are_redacted() {
        let mut changes = vec![
            Change {
                field: "password".into(),
                old: Some(json!("hunter2")),
                new: Some(json!("correct horse")),
            },
            Change {
                field: "user.reset_token".into(),
                old: None,
                new: Some(json!({"value": 1})),
            },
            Change {
                field: "name".into(),
                old: Some(json!("Ada")),
                new: Some(json!("Grace")),
            },
        ];
        rules().redact_changes(&mut changes);
        assert_eq!(changes[0].old, Some(json!(REDACTED)));
        assert_eq!(changes[0].new, Some(json!(REDACTED)));
        assert_eq!(changes[1].old, None, "an absent value stays absent");
        assert_eq!(changes[1].new, Some(json!(REDACTED)));
        assert_eq!(changes[2].old, Some(json!("Ada")));
        assert_eq!(changes[2].new, Some(json!("Grace")));
    }

    #[test]
    fn binary_and_nested_sensitive_values_inside_changes_are_replaced() {
        let mut changes = vec![
            Change {
                field: "avatar".into(),
                old: Some(json!({"$binary": "AAEC"})),
                new: Some(json!([1, {"$binary": "AAEC"}])),
            },
            Change {
                field: "users".into(),
                old: None,
                new: Some(json!([{"name": "ada", "password": "x"}])),
            },
        ];
        rules().redact_changes(&mut changes);
        assert_eq!(changes[0].old, Some(json!(BINARY_DATA)));
        assert_eq!(changes[0].new, Some(json!([1, BINARY_DATA])));
        assert_eq!(
            changes[1].new,
            Some(json!([{"name": "ada", "password": REDACTED}]))
        );
    }

    #[test]
    fn metadata_is_redacted_by_key() {
        let mut m = BTreeMap::new();
        m.insert("apiKey".to_string(), json!("sk_live_1"));
        m.insert("file".to_string(), json!({"$binary": "AAEC"}));
        m.insert("plan".to_string(), json!("pro"));
        m.insert("token_count".to_string(), json!(null));
        rules().redact_metadata(&mut m);
        assert_eq!(m["apiKey"], json!(REDACTED));
        assert_eq!(m["file"], json!(BINARY_DATA));
        assert_eq!(m["plan"], json!("pro"));
        assert_eq!(m["token_count"], json!(REDACTED));
    }

    #[test]
    fn objects_are_walked_at_any_depth() {
        let mut v = json!({
            "name": "ada",
            "secret": {"nested": "whole subtree goes"},
            "profile": {
                "encrypted_ssn": "abc",
                "photo": {"$binary": {"base64": "AAEC", "subType": "00"}},
                "history": [{"old_password": "p"}, {"$binary": "AA"}, 3],
            },
        });
        rules().redact_object(v.as_object_mut().unwrap());
        assert_eq!(
            v,
            json!({
                "name": "ada",
                "secret": REDACTED,
                "profile": {
                    "encrypted_ssn": REDACTED,
                    "photo": BINARY_DATA,
                    "history": [{"old_password": REDACTED}, BINARY_DATA, 3],
                },
            })
        );
    }

    const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.\
                       dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    const CARD: &str = "4111 1111 1111 1111";
    const PEM: &str =
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----";
    const TOKEN: &str = "sk_live_4eC39HqLyjWDarjtT1zdp7dcQ2x";

    #[test]
    fn wider_default_names() {
        for name in [
            "pin",
            "PIN",
            "pin_code",
            "pinCode",
            "PINCode",
            "userPin",
            "user_pin",
            "x-pin",
            "access_code",
            "accessCode",
            "private_key",
            "client_secret",
            "session",
            "session_id",
            "sessionId",
            "sessionToken",
            "user_session",
            "cookie",
            "Cookie",
            "set-cookie",
            "cookies",
            "authorization",
            "Authorization",
            "proxy_authorization",
            "otp",
            "totp_code",
            "cvv",
            "passphrase",
            "license_key",
            "signingKey",
            "signing-key",
            "LICENSE_KEY",
            "public_key",
            "profile.session",
            "session.user_id",
        ] {
            assert!(rules().is_sensitive(name), "{name} should be sensitive");
        }
    }

    #[test]
    fn short_names_match_whole_words_only() {
        for name in [
            "shipping",
            "spinner",
            "pinned",
            "pinned_at",
            "opinion",
            "sessions_count",
            "obsession",
            "cookiecutter_version",
            "cvvv",
            "key",
            "Key",
            "keys",
            "monkey",
            "turkey",
            "keyboard",
            "key_id",
            "keyName",
            "hotkey",
            "api.key",
            "author",
            "auth_method",
            "ssn_encrypted_at",
        ] {
            assert!(
                !rules().is_sensitive(name),
                "{name} should not be sensitive"
            );
        }
    }

    #[test]
    fn words_split_at_separators_and_humps() {
        let w = |n: &str| {
            let (joined, bounds) = words(n);
            bounds
                .windows(2)
                .map(|b| joined[b[0]..b[1]].to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(w("user_pin"), ["user", "pin"]);
        assert_eq!(w("userPin"), ["user", "pin"]);
        assert_eq!(w("PINCode"), ["pin", "code"]);
        assert_eq!(w("oauth2Token"), ["oauth2", "token"]);
        assert_eq!(w("--a--b--"), ["a", "b"]);
        assert_eq!(w("shipping"), ["shipping"]);
        assert!(w("").is_empty());
        assert!(w("__").is_empty());
    }

    #[test]
    fn word_patterns_may_span_several_words_and_are_normalized() {
        let r = RedactionRules {
            name_words: vec!["Session-ID".into(), "".into()],
            name_last_words: vec!["root_key".into()],
            ..RedactionRules::none()
        };
        assert!(r.is_sensitive("user_session_id"));
        assert!(r.is_sensitive("sessionId"));
        assert!(!r.is_sensitive("session"));
        assert!(!r.is_sensitive("session_identity"));
        assert!(r.is_sensitive("aws_root_key"));
        assert!(
            !r.is_sensitive("root_key"),
            "the last words of several only"
        );
        assert!(!r.is_sensitive("aws_root_key_id"));
        assert!(!r.is_sensitive("anything"));
    }

    #[test]
    fn jwts_are_detected() {
        assert!(contains_jwt(JWT));
        assert!(contains_jwt(&format!("Bearer {JWT}")));
        assert!(contains_jwt(&format!("{{\"auth\":\"{JWT}\"}}")));
        // `alg: none` has an empty signature.
        assert!(contains_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."));
        for not in [
            "a.b.c",
            "1.2.3",
            "api.example.com",
            "eyJ.eyJ.eyJ",
            // A header without "alg" ({"typ":"JWT"}).
            "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2ln",
            // Two segments only.
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0",
            "",
        ] {
            assert!(!contains_jwt(not), "{not} is no JWT");
        }
    }

    #[test]
    fn base64url_decodes() {
        assert_eq!(base64url_decode("").unwrap(), b"");
        assert_eq!(base64url_decode("TQ").unwrap(), b"M");
        assert_eq!(base64url_decode("TWE").unwrap(), b"Ma");
        assert_eq!(base64url_decode("TWFu").unwrap(), b"Man");
        assert_eq!(base64url_decode("-_8").unwrap(), [0xfb, 0xff]);
        assert!(base64url_decode("TWFuT").is_none());
        assert!(base64url_decode("TW+u").is_none());
    }

    #[test]
    fn pem_private_keys_are_detected() {
        assert!(contains_private_key(PEM));
        for label in [
            "PRIVATE KEY",
            "EC PRIVATE KEY",
            "OPENSSH PRIVATE KEY",
            "ENCRYPTED PRIVATE KEY",
            "PGP PRIVATE KEY BLOCK",
        ] {
            let pem = format!("config:\n-----BEGIN {label}-----\nAAAA\n");
            assert!(contains_private_key(&pem), "{label}");
        }
        for not in [
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
            "-----BEGIN CERTIFICATE-----",
            "-----BEGIN private key-----",
            "BEGIN PRIVATE KEY",
            "-----BEGIN PRIVATE KEY",
        ] {
            assert!(!contains_private_key(not), "{not}");
        }
    }

    #[test]
    fn card_numbers_are_detected_by_luhn() {
        for card in [
            "4111111111111111",
            CARD,
            "4111-1111-1111-1111",
            "5500 0000 0000 0004",
            "378282246310005",
            "6011111111111117",
            "card 4111 1111 1111 1111 declined",
            "(4111111111111111)",
        ] {
            assert!(contains_card_number(card), "{card}");
        }
        for not in [
            // Luhn fails.
            "4111111111111112",
            // Too short, too long.
            "411111111111",
            "41111111111111111111",
            // Mixed separators, double separators.
            "4111 1111-1111 1111",
            "4111  1111 1111 1111",
            // Touching letters or digits; a phone number.
            "x4111111111111111",
            "4111111111111111x",
            "+4111111111111111",
            // Millisecond timestamps and snowflake ids start with 1.
            "1733425000000",
            "1234567890123456789",
            "0000000000000000",
            "2026-12-05T19:15:36Z",
            "2026-12-05 2026-12-06",
            "550e8400-e29b-41d4-a716-446655440000",
            "12345678-1234-1234-1234-123456789012",
        ] {
            assert!(!contains_card_number(not), "{not}");
        }
    }

    /// A deterministic stream of pseudo-random bytes (xorshift), for statistical checks.
    fn xorshift(mut x: u64) -> impl FnMut() -> u64 {
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        }
    }

    fn random_text(next: &mut impl FnMut() -> u64, alphabet: &[u8], len: usize) -> String {
        (0..len)
            .map(|_| char::from(alphabet[(next() % alphabet.len() as u64) as usize]))
            .collect()
    }

    #[test]
    fn random_tokens_are_detected() {
        const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        assert!(contains_random_token(TOKEN));
        assert!(contains_random_token(&format!("key={TOKEN}&x=1")));
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15);
        for (len, at_least) in [(32, 950), (40, 990), (64, 999)] {
            let caught = (0..1000)
                .filter(|_| contains_random_token(&random_text(&mut next, B64URL, len)))
                .count();
            assert!(caught >= at_least, "{caught} of 1000 at {len} characters");
        }
    }

    #[test]
    fn ids_digests_times_and_words_are_not_tokens() {
        let mut next = xorshift(42);
        for _ in 0..200 {
            let hex = random_text(&mut next, b"0123456789abcdef", 64);
            let uuid = format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..32]
            );
            for s in [
                hex.clone(),
                hex.to_uppercase(),
                uuid.clone(),
                uuid.to_uppercase(),
            ] {
                assert!(!looks_like_secret(&s), "{s}");
            }
            let base36 = random_text(&mut next, b"abcdefghijklmnopqrstuvwxyz0123456789", 40);
            assert!(!looks_like_secret(&base36), "{base36}");
        }
        for not in [
            "2026-12-05T19:15:36.123Z",
            "2026-12-05T19:15:36+01:00",
            "ada.lovelace@example.com",
            "ThisIsALongCamelCaseIdentifierName123",
            "GetOrganizationMembersWithRolesAndPermissions2",
            "/v1/organizations/acme/projects/Website2/settings",
            "projects/Stele/audit/Events/2024/January/Report1",
            "Organization_Settings_Update_Request_2024",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) \
             Chrome/120.0.0.0 Safari/537.36",
            "https://app.example.com/settings/organization?tab=members&page=2",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "abcdefghijklmnopqrstuvwxyzabcdefghijklmnop",
            REDACTED,
            BINARY_DATA,
            "",
        ] {
            assert!(!looks_like_secret(not), "{not}");
        }
    }

    #[test]
    fn secret_values_are_redacted_wherever_they_appear() {
        let mut changes = vec![Change {
            field: "note".into(),
            old: Some(json!({"deep": [JWT, "fine", 4111111111111111u64]})),
            new: Some(json!(format!("pasted: {PEM}"))),
        }];
        rules().redact_changes(&mut changes);
        assert_eq!(
            changes[0].old,
            Some(json!({"deep": [REDACTED, "fine", 4111111111111111u64]})),
            "a number is not looked at"
        );
        assert_eq!(changes[0].new, Some(json!(REDACTED)));
        let mut m = BTreeMap::new();
        m.insert("card".to_string(), json!(CARD));
        m.insert("header".to_string(), json!(format!("Bearer {TOKEN}")));
        m.insert(
            "request_id".to_string(),
            json!("550e8400-e29b-41d4-a716-446655440000"),
        );
        rules().redact_metadata(&mut m);
        assert_eq!(m["card"], json!(REDACTED));
        assert_eq!(m["header"], json!(REDACTED));
        assert_eq!(
            m["request_id"],
            json!("550e8400-e29b-41d4-a716-446655440000")
        );
    }

    #[test]
    fn value_detection_can_be_turned_off() {
        let r = RedactionRules {
            detect_values: false,
            ..rules()
        };
        let mut v = json!({"note": JWT, "password": "x"});
        r.redact_value(&mut v);
        assert_eq!(v, json!({"note": JWT, "password": REDACTED}));
        let old: RedactionRules =
            serde_json::from_value(json!({"name_contains": ["x"], "name_starts_with": []}))
                .unwrap();
        assert!(
            old.detect_values,
            "rules stored without the field detect values"
        );
        assert_eq!(old.name_words, rules().name_words);
    }

    #[test]
    fn redacted_paths_name_what_redaction_replaced() {
        let event = json!({
            "action": "update",
            "actor": {"type": "user", "id": "u1", "metadata": {"session": "s1"}},
            "entity": {"type": "doc", "id": "d1", "metadata": {"license_key": "k"}},
            "changes": [
                {"field": "password", "old": "a", "new": "b"},
                {"field": "users", "new": [{"name": "ada", "pin": "1234"}]},
                {"field": "title", "old": "x", "new": "y"},
            ],
            "metadata": {"token": "t", "plan": "pro", "note": JWT, "sent": REDACTED},
        });
        let raw = crate::parse_event(&event, 0, &RedactionRules::none()).unwrap();
        let stored = crate::parse_event(&event, 0, &rules()).unwrap();
        assert_eq!(
            redacted_paths(&raw, &stored),
            [
                "changes.password.old",
                "changes.password.new",
                "changes.users.new[0].pin",
                "metadata.note",
                "metadata.token",
                "actor.metadata.session",
                "entity.metadata.license_key",
            ]
        );
        assert!(redacted_paths(&raw, &raw).is_empty());
    }

    fn arb_key() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "password",
                "apiKey",
                "user.token",
                "name",
                "$binary",
                "$type",
                "a",
                "b.c",
                "",
            ])
            .prop_map(String::from),
            "[a-zA-Z_.$-]{0,12}",
        ]
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z ]{0,8}".prop_map(Value::from),
            prop::sample::select(vec![JWT, CARD, PEM, TOKEN]).prop_map(Value::from),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(arb_key(), inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// No binary value left, and every sensitive key holds [`REDACTED`], at any depth.
    fn clean(rules: &RedactionRules, v: &Value) -> bool {
        if is_binary(v) {
            return false;
        }
        match v {
            Value::Object(m) => m.iter().all(|(k, v)| {
                if rules.is_sensitive(k) {
                    v == REDACTED
                } else {
                    clean(rules, v)
                }
            }),
            Value::Array(items) => items.iter().all(|v| clean(rules, v)),
            Value::String(s) => !rules.detect_values || !looks_like_secret(s),
            _ => true,
        }
    }

    proptest! {
        #[test]
        fn redacted_values_are_clean_and_redaction_is_idempotent(v in arb_json()) {
            let r = rules();
            let mut once = v.clone();
            r.redact_value(&mut once);
            prop_assert!(clean(&r, &once));
            let mut twice = once.clone();
            r.redact_value(&mut twice);
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn names_are_compared_case_and_separator_insensitively(
            name in "[a-zA-Z]{0,6}",
            seps in prop::collection::vec(prop::sample::select(vec!["", "_", "-"]), 0..6),
        ) {
            let mut mangled = String::new();
            for (i, c) in name.chars().enumerate() {
                mangled.push(c);
                mangled.push_str(seps.get(i).copied().unwrap_or(""));
            }
            let plain = name.to_lowercase();
            // Whole-word rules depend on where words split, which separators and case decide:
            // this holds for the substring and prefix rules.
            let r = RedactionRules {
                name_words: vec![],
                name_last_words: vec![],
                ..rules()
            };
            prop_assert_eq!(r.is_sensitive(&mangled), r.is_sensitive(&plain));
        }
    }
}
