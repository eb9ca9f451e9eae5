//! Redaction rules as an organization sets them, and the preview of what an event would be
//! stored as under them. `POST /v1/redaction/test` and the console's settings page both call
//! [`preview`]; `PUT /v1/settings` and the console check rules with [`check_rules`].
//!
//! The preview runs the ingest's own [`check_event`] (so it refuses exactly what
//! `POST /v1/events` refuses, with the same field errors) and stores nothing.

use serde_json::Value;
use stele_core::event::Entry;
use stele_core::redact::{RedactionRules, redacted_paths};
use stele_core::sent::{SentEvent, Shaped};
use stele_core::time::Millis;
use stele_core::{FieldError, Seq, check_event};

use crate::settings::SettingsProblem;

/// The most patterns in one list of a rule set.
pub const MAX_PATTERNS: usize = 200;
/// The longest pattern, in characters.
pub const MAX_PATTERN_LEN: usize = 128;

/// The keys of an entry that the server assigns when it stores it, left out of a preview.
const ASSIGNED: [&str; 3] = ["id", "seq", "recorded_at"];

/// What an event would be stored as.
#[derive(Debug, Clone, PartialEq)]
pub struct Preview {
    /// The entry as the API shows it, without what storing it assigns (`id`, `seq`,
    /// `recorded_at`).
    pub event: Value,
    /// Where redaction put `[REDACTED]`, as [`redacted_paths`] names them.
    pub redacted: Vec<String>,
}

/// Checks `sent` as `POST /v1/events` does and redacts it with `rules`; `now` stands in for the
/// time it would arrive. Every field error the ingest would answer, or the preview.
pub fn preview(
    sent: Shaped<SentEvent<'_>>,
    now: Millis,
    rules: &RedactionRules,
) -> Result<Preview, Vec<FieldError>> {
    // The same event, checked without redaction, is what the paths are found against.
    let raw = check_event(sent.clone(), now, &RedactionRules::none())?;
    let stored = check_event(sent, now, rules)?;
    let redacted = redacted_paths(&raw, &stored);
    let mut event = Entry {
        id: String::new(),
        seq: Seq::FIRST,
        recorded_at: now,
        event: stored,
    }
    .to_json();
    if let Value::Object(map) = &mut event {
        for key in ASSIGNED {
            map.shift_remove(key);
        }
    }
    Ok(Preview { event, redacted })
}

/// Checks a rule set as an organization saves it: at most [`MAX_PATTERNS`] patterns per list,
/// each at most [`MAX_PATTERN_LEN`] characters, with a letter or a digit (a pattern of
/// punctuation alone would match nothing). Patterns are trimmed, and empty and repeated ones
/// dropped. `field` names the rules in a problem (`redaction`).
pub fn check_rules(field: &str, rules: RedactionRules) -> Result<RedactionRules, SettingsProblem> {
    let list = |name: &str, patterns: Vec<String>| -> Result<Vec<String>, SettingsProblem> {
        let mut out: Vec<String> = Vec::new();
        for (i, p) in patterns.into_iter().enumerate() {
            let p = p.trim();
            if p.is_empty() {
                continue;
            }
            let at = format!("{field}.{name}[{i}]");
            if p.chars().count() > MAX_PATTERN_LEN {
                return Err(SettingsProblem::new(
                    &at,
                    format!("is longer than {MAX_PATTERN_LEN} characters"),
                ));
            }
            if !p.chars().any(char::is_alphanumeric) {
                return Err(SettingsProblem::new(
                    &at,
                    "holds no letter or digit, so it would match nothing",
                ));
            }
            if !out.iter().any(|o| o == p) {
                out.push(p.to_string());
            }
        }
        if out.len() > MAX_PATTERNS {
            return Err(SettingsProblem::new(
                &format!("{field}.{name}"),
                format!("holds more than {MAX_PATTERNS} patterns"),
            ));
        }
        Ok(out)
    };
    Ok(RedactionRules {
        name_contains: list("name_contains", rules.name_contains)?,
        name_starts_with: list("name_starts_with", rules.name_starts_with)?,
        name_words: list("name_words", rules.name_words)?,
        name_last_words: list("name_last_words", rules.name_last_words)?,
        detect_values: rules.detect_values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sent(v: &Value) -> Shaped<SentEvent<'_>> {
        serde::Deserialize::deserialize(v).unwrap()
    }

    #[test]
    fn a_preview_is_the_stored_form_and_names_what_was_redacted() {
        let v = json!({
            "action": "update",
            "occurred_at": "2026-01-01T00:00:00Z",
            "actor": {"type": "user", "id": "u1"},
            "changes": [{"field": "password", "old": "a", "new": "b"}],
            "metadata": {"plan": "pro", "pin": "1234"},
        });
        let p = preview(sent(&v), 1_800_000_000_000, &RedactionRules::default()).unwrap();
        assert_eq!(
            p.redacted,
            [
                "changes.password.old",
                "changes.password.new",
                "metadata.pin"
            ]
        );
        assert_eq!(
            p.event["metadata"],
            json!({"pin": "[REDACTED]", "plan": "pro"})
        );
        assert_eq!(p.event["occurred_at"], json!("2026-01-01T00:00:00.000Z"));
        for key in ASSIGNED {
            assert!(p.event.get(key).is_none(), "{key}");
        }
        let p = preview(sent(&v), 1_800_000_000_000, &RedactionRules::none()).unwrap();
        assert!(p.redacted.is_empty());
    }

    #[test]
    fn an_invalid_event_gets_the_ingest_s_errors() {
        let v = json!({"actor": {"type": "robot"}});
        let errors = preview(sent(&v), 0, &RedactionRules::default()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"action"), "{fields:?}");
        assert!(fields.contains(&"actor.type"), "{fields:?}");
    }

    #[test]
    fn rules_are_trimmed_deduplicated_and_bounded() {
        let rules = RedactionRules {
            name_words: vec![" pin ".into(), "pin".into(), "".into()],
            ..RedactionRules::none()
        };
        assert_eq!(check_rules("redaction", rules).unwrap().name_words, ["pin"]);
        let bad = RedactionRules {
            name_contains: vec!["ok".into(), "__".into()],
            ..RedactionRules::none()
        };
        assert_eq!(
            check_rules("redaction", bad).unwrap_err().field,
            "redaction.name_contains[1]"
        );
        let long = RedactionRules {
            name_contains: vec!["x".repeat(MAX_PATTERN_LEN + 1)],
            ..RedactionRules::none()
        };
        assert!(check_rules("redaction", long).is_err());
        let many = RedactionRules {
            name_contains: (0..=MAX_PATTERNS).map(|i| format!("p{i}")).collect(),
            ..RedactionRules::none()
        };
        assert!(check_rules("redaction", many).is_err());
    }
}
