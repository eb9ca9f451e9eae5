//! Redaction: sensitive values never reach storage.
//!
//! Two kinds of value are replaced before an event is stored:
//!
//! - **Sensitive fields.** A field is sensitive when its *name* looks like a password, token,
//!   secret, API key, private key, credential, MFA secret or encrypted value. Its value, whatever
//!   it is (a string, a number, a whole nested object), becomes the string [`REDACTED`].
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
//! `private_key` works.
//!
//! A dotted path (`user.reset_token`, as [`crate::diff`] produces for nested objects) is sensitive
//! when **any** of its segments is a sensitive name: the last segment catches `user.reset_token`,
//! and an earlier one catches a value nested under a sensitive object
//! (`{"mfa_secret": {"value": "…"}}` gives `mfa_secret.value`, which must not leak either). This
//! errs on the side of redacting (`tokens_used` is redacted too), which is the safe side for an
//! audit trail: a redacted value can be asked for again, a leaked one cannot be taken back.
//!
//! Values that are not themselves sensitive are still walked: an object nested inside them (say
//! an array of user records in one change) has its sensitive keys and binary values replaced too.
//! Redaction is idempotent.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event::Change;

/// What a sensitive field's value becomes.
pub const REDACTED: &str = "[REDACTED]";
/// What a binary value becomes.
pub const BINARY_DATA: &str = "[BINARY DATA]";

/// The key that marks a binary value.
pub const BINARY_KEY: &str = "$binary";

/// Which field names are sensitive. Configurable per organization; [`Default`] holds the rules
/// every organization starts with. Patterns are normalized like names (see the module docs) when
/// compared, and a pattern that normalizes to nothing matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionRules {
    /// A name is sensitive when its normalized form contains one of these.
    pub name_contains: Vec<String>,
    /// A name is sensitive when its normalized form starts with one of these.
    pub name_starts_with: Vec<String>,
}

impl Default for RedactionRules {
    fn default() -> Self {
        let list = |names: &[&str]| names.iter().map(|s| s.to_string()).collect();
        RedactionRules {
            name_contains: list(&[
                "password",
                "passwd",
                "secret",
                "token",
                "apikey",
                "privatekey",
                "credential",
                "mfasecret",
            ]),
            name_starts_with: list(&["encrypted"]),
        }
    }
}

impl RedactionRules {
    /// Rules that redact no field by name (binary values are still replaced).
    pub fn none() -> Self {
        RedactionRules {
            name_contains: Vec::new(),
            name_starts_with: Vec::new(),
        }
    }

    /// Whether one name (one key, not a dotted path) is sensitive.
    pub fn is_sensitive_name(&self, name: &str) -> bool {
        let name = normalize(name);
        if name.is_empty() {
            return false;
        }
        self.name_contains
            .iter()
            .map(|p| normalize(p))
            .any(|p| !p.is_empty() && name.contains(p.as_ref()))
            || self
                .name_starts_with
                .iter()
                .map(|p| normalize(p))
                .any(|p| !p.is_empty() && name.starts_with(p.as_ref()))
    }

    /// Whether a field, named by its dotted path, is sensitive: true when any segment of the
    /// path is a sensitive name (see the module docs).
    pub fn is_sensitive(&self, field_path: &str) -> bool {
        field_path.split('.').any(|s| self.is_sensitive_name(s))
    }

    /// Replaces, inside `value`, every binary value with [`BINARY_DATA`] and the value of every
    /// sensitive key of a nested object with [`REDACTED`]. `value` itself is not taken to be
    /// sensitive (its name is the caller's business).
    pub fn redact_value(&self, value: &mut Value) {
        if is_binary(value) {
            *value = Value::String(BINARY_DATA.to_string());
            return;
        }
        match value {
            Value::Object(map) => self.redact_object(map),
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact_value(v)),
            _ => {}
        }
    }

    /// Redacts an object in place, walking nested objects and arrays: the value of a sensitive
    /// key becomes [`REDACTED`] (whole, even when it is an object), binary values become
    /// [`BINARY_DATA`]. Since every ancestor of a nested key was found not sensitive on the way
    /// down, this agrees with [`Self::is_sensitive`] on the joined dotted path.
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
    /// [`REDACTED`]; otherwise binary values and nested sensitive keys inside them are replaced.
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
            prop_assert_eq!(rules().is_sensitive(&mangled), rules().is_sensitive(&plain));
        }
    }
}
