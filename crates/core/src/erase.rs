//! What an erasure and a redaction do to one event, without I/O: [`erase_person`] replaces a
//! person with their pseudonym wherever they appear, [`redact_fields`] replaces named fields with
//! `[REDACTED]`. The stores apply them to stored entries and reseal them ([`crate::seal`]).

use serde_json::Value;

use crate::event::{Entity, NewEvent};
use crate::redact::REDACTED;

/// Identifiers shorter than this (in characters) are matched only as a whole value, never inside
/// longer text: replacing every `"jo"` in every description would erase far more than a person.
pub const MIN_SUBSTRING_CHARS: usize = 3;

/// The person an erasure removes, by every identifier the trail may hold for them.
#[derive(Debug, Clone, Default)]
pub struct Person {
    /// Their id in the client's system (an actor id or an entity id).
    pub id: Option<String>,
    pub email: Option<String>,
    /// Their display name; also replaced inside text such as descriptions.
    pub name: Option<String>,
    /// Other strings that identify them (a user name, a phone number, an old email).
    pub other: Vec<String>,
}

impl Person {
    /// The identifiers that name the person as a whole (an actor or entity whose id or email is
    /// one of them *is* the person).
    fn names_them(&self, value: &str) -> bool {
        [self.id.as_deref(), self.email.as_deref()]
            .into_iter()
            .flatten()
            .chain(self.other.iter().map(String::as_str))
            .any(|id| id.eq_ignore_ascii_case(value))
    }

    /// Every identifier, longest first (so an email is replaced before the name inside it).
    fn all(&self) -> Vec<&str> {
        let mut all: Vec<&str> = [
            self.id.as_deref(),
            self.email.as_deref(),
            self.name.as_deref(),
        ]
        .into_iter()
        .flatten()
        .chain(self.other.iter().map(String::as_str))
        .filter(|s| !s.is_empty())
        .collect();
        all.sort_by_key(|s| std::cmp::Reverse(s.len()));
        all.dedup();
        all
    }
}

/// The event with the person replaced by `pseudonym` everywhere, or `None` when it does not
/// mention them.
///
/// - An actor whose id or email names them keeps only the pseudonym as id (as email, when it had
///   no id): name, link, metadata, and the request's IP, user agent and location go.
/// - An entity (primary or related, whatever its type) whose id names them gets the pseudonym as
///   id and as name (if it had one); its link and metadata go. An impersonator likewise.
/// - In every other text (descriptions, names, entity ids, the reason, and every string inside
///   changes, metadata and origin, however deep) each identifier is replaced by the pseudonym,
///   ignoring ASCII case; identifiers under [`MIN_SUBSTRING_CHARS`] only as a whole value.
pub fn erase_person(event: &NewEvent, person: &Person, pseudonym: &str) -> Option<NewEvent> {
    let identifiers = person.all();
    let mut out = event.clone();
    let replace = |text: &mut String| {
        if let Some(new) = replaced(text, &identifiers, pseudonym) {
            *text = new;
        }
    };
    let a = &mut out.actor;
    if a.id.as_deref().is_some_and(|v| person.names_them(v))
        || a.email.as_deref().is_some_and(|v| person.names_them(v))
    {
        // The pseudonym takes the id's place, or the email's when there was no id: a rewrite
        // may change or remove values, never add one (`crate::seal::reseal`).
        if a.id.is_some() {
            a.id = Some(pseudonym.to_string());
            a.email = None;
        } else {
            a.email = Some(pseudonym.to_string());
        }
        a.name = None;
        a.href = None;
        a.metadata.clear();
        out.context.ip = None;
        out.context.user_agent = None;
        out.context.location = None;
    } else {
        a.id.iter_mut()
            .chain(a.name.iter_mut())
            .chain(a.email.iter_mut())
            .for_each(replace);
        a.href.iter_mut().for_each(replace);
        a.metadata
            .values_mut()
            .for_each(|v| replace_in_json(v, &identifiers, pseudonym));
    }
    if let Some(who) = &mut out.context.impersonator {
        if who.id.as_deref().is_some_and(|v| person.names_them(v))
            || who.email.as_deref().is_some_and(|v| person.names_them(v))
        {
            if who.id.is_some() {
                who.id = Some(pseudonym.to_string());
                who.email = None;
            } else {
                who.email = Some(pseudonym.to_string());
            }
        } else {
            who.id
                .iter_mut()
                .chain(who.email.iter_mut())
                .for_each(replace);
        }
    }
    out.context.reason.iter_mut().for_each(replace);
    out.description.iter_mut().for_each(replace);
    let entity = |e: &mut Entity| {
        if e.id.as_deref().is_some_and(|v| person.names_them(v)) {
            e.id = Some(pseudonym.to_string());
            if e.name.is_some() {
                e.name = Some(pseudonym.to_string());
            }
            e.href = None;
            e.metadata.clear();
        } else {
            e.id.iter_mut()
                .chain(e.name.iter_mut())
                .chain(e.href.iter_mut())
                .for_each(replace);
            e.metadata
                .values_mut()
                .for_each(|v| replace_in_json(v, &identifiers, pseudonym));
        }
    };
    out.entity.iter_mut().for_each(entity);
    out.related_entities.iter_mut().for_each(entity);
    for id in &mut out.entity_ids {
        if person.names_them(id) {
            *id = pseudonym.to_string();
        } else {
            replace(id);
        }
    }
    for change in &mut out.changes {
        for v in change.old.iter_mut().chain(change.new.iter_mut()) {
            replace_in_json(v, &identifiers, pseudonym);
        }
    }
    for v in out.metadata.values_mut().chain(out.origin.values_mut()) {
        replace_in_json(v, &identifiers, pseudonym);
    }
    (out != *event).then_some(out)
}

fn replace_in_json(value: &mut Value, identifiers: &[&str], pseudonym: &str) {
    match value {
        Value::String(s) => {
            if let Some(new) = replaced(s, identifiers, pseudonym) {
                *s = new;
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| replace_in_json(v, identifiers, pseudonym)),
        Value::Object(map) => map
            .values_mut()
            .for_each(|v| replace_in_json(v, identifiers, pseudonym)),
        _ => {}
    }
}

/// `text` with every identifier replaced (ASCII case ignored), or `None` when none occurs.
fn replaced(text: &str, identifiers: &[&str], pseudonym: &str) -> Option<String> {
    let mut current: Option<String> = None;
    for id in identifiers {
        let now = current.as_deref().unwrap_or(text);
        if now.eq_ignore_ascii_case(id) {
            return Some(pseudonym.to_string());
        }
        if id.chars().count() < MIN_SUBSTRING_CHARS {
            continue;
        }
        if let Some(new) = replace_ignoring_ascii_case(now, id, pseudonym) {
            current = Some(new);
        }
    }
    current
}

fn replace_ignoring_ascii_case(text: &str, needle: &str, with: &str) -> Option<String> {
    let (hay, pat) = (text.as_bytes(), needle.as_bytes());
    let mut out = String::new();
    let (mut from, mut i, mut found) = (0, 0, false);
    while i + pat.len() <= hay.len() {
        // A match starts and ends on character boundaries: `pat` is whole UTF-8 and ASCII case
        // folding never touches a byte of a multi-byte character.
        if hay[i..i + pat.len()].eq_ignore_ascii_case(pat) && text.is_char_boundary(i) {
            out.push_str(&text[from..i]);
            out.push_str(with);
            i += pat.len();
            from = i;
            found = true;
        } else {
            i += 1;
        }
    }
    found.then(|| {
        out.push_str(&text[from..]);
        out
    })
}

/// A field a redaction names that the entry does not have, or cannot be redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldPathError {
    pub path: String,
    pub message: String,
}

/// The paths a redaction may name: `description`, `actor.id|name|email|href`,
/// `actor.metadata.<key>`, `entity.id|name|href`, `entity.metadata.<key>`,
/// `context.ip|user_agent|location|reason`, `changes.<field>` (its old and new values),
/// `metadata.<key>`, `origin.<key>`, `entity_ids.<i>`, `related_entities.<i>.id|name|href`.
/// Each becomes `[REDACTED]`. Every path must name a value the entry holds.
pub fn redact_fields(event: &NewEvent, paths: &[String]) -> Result<NewEvent, FieldPathError> {
    let mut out = event.clone();
    let redacted = || Some(REDACTED.to_string());
    for path in paths {
        let missing = || FieldPathError {
            path: path.clone(),
            message: "the entry has no such value".into(),
        };
        let text = |slot: &mut Option<String>| match slot {
            Some(_) => {
                *slot = redacted();
                Ok(())
            }
            None => Err(missing()),
        };
        let json = |map: &mut crate::event::Metadata, key: &str| match map.get_mut(key) {
            Some(v) => {
                *v = Value::String(REDACTED.into());
                Ok(())
            }
            None => Err(missing()),
        };
        let (head, rest) = path.split_once('.').unwrap_or((path.as_str(), ""));
        match (head, rest) {
            ("description", "") => text(&mut out.description)?,
            ("actor", "id") => text(&mut out.actor.id)?,
            ("actor", "name") => text(&mut out.actor.name)?,
            ("actor", "email") => text(&mut out.actor.email)?,
            ("actor", "href") => text(&mut out.actor.href)?,
            ("actor", key) if key.starts_with("metadata.") => {
                json(&mut out.actor.metadata, &key["metadata.".len()..])?
            }
            ("entity", part) => {
                let e = out.entity.as_mut().ok_or_else(missing)?;
                match part {
                    "id" => text(&mut e.id)?,
                    "name" => text(&mut e.name)?,
                    "href" => text(&mut e.href)?,
                    key if key.starts_with("metadata.") => {
                        json(&mut e.metadata, &key["metadata.".len()..])?
                    }
                    _ => return Err(missing()),
                }
            }
            ("context", "ip") => text(&mut out.context.ip)?,
            ("context", "user_agent") => text(&mut out.context.user_agent)?,
            ("context", "location") => text(&mut out.context.location)?,
            ("context", "reason") => text(&mut out.context.reason)?,
            ("changes", field) if !field.is_empty() => {
                let mut any = false;
                for change in out.changes.iter_mut().filter(|c| c.field == field) {
                    for v in change.old.iter_mut().chain(change.new.iter_mut()) {
                        *v = Value::String(REDACTED.into());
                        any = true;
                    }
                }
                if !any {
                    return Err(missing());
                }
            }
            ("metadata", key) if !key.is_empty() => json(&mut out.metadata, key)?,
            ("origin", key) if !key.is_empty() => json(&mut out.origin, key)?,
            ("entity_ids", i) => {
                let slot = i
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| out.entity_ids.get_mut(i))
                    .ok_or_else(missing)?;
                *slot = REDACTED.into();
            }
            ("related_entities", rest) => {
                let (i, part) = rest.split_once('.').ok_or_else(missing)?;
                let e = i
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| out.related_entities.get_mut(i))
                    .ok_or_else(missing)?;
                match part {
                    "id" => text(&mut e.id)?,
                    "name" => text(&mut e.name)?,
                    "href" => text(&mut e.href)?,
                    _ => return Err(missing()),
                }
            }
            _ => {
                return Err(FieldPathError {
                    path: path.clone(),
                    message: "not a field a redaction can name (see docs/api.md)".into(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, ActorType, Change, Context, Outcome};
    use serde_json::json;

    fn event() -> NewEvent {
        NewEvent {
            occurred_at: 1_767_322_245_678,
            action: "delete".into(),
            detailed_action: Some("user.delete".into()),
            channel: "default".into(),
            description: Some("Admin deleted José Álvarez (JOSE@example.com)".into()),
            outcome: Outcome::Success,
            actor: Actor {
                id: Some("admin-1".into()),
                name: Some("Ada".into()),
                ..Actor::of_kind(ActorType::User)
            },
            entity: Some(Entity::new(
                "User",
                Some("u-42".into()),
                Some("José Álvarez".into()),
            )),
            entity_ids: vec!["u-42".into(), "u-7".into()],
            context: Context {
                ip: Some("203.0.113.7".into()),
                ..Context::default()
            },
            changes: vec![Change {
                field: "email".into(),
                old: Some(json!({"primary": "jose@example.com", "n": 1})),
                new: None,
            }],
            metadata: [("who".to_string(), json!(["José Álvarez"]))]
                .into_iter()
                .collect(),
            idempotency_key: None,
            origin: Default::default(),
            related_entities: vec![],
        }
    }

    fn jose() -> Person {
        Person {
            id: Some("u-42".into()),
            email: Some("jose@example.com".into()),
            name: Some("José Álvarez".into()),
            other: vec![],
        }
    }

    #[test]
    fn every_occurrence_of_the_person_is_replaced() {
        let erased = erase_person(&event(), &jose(), "erased-1").expect("mentions them");
        let text = format!("{erased:?}");
        for id in ["u-42", "jose@", "JOSE@", "José"] {
            assert!(!text.contains(id), "{id} in {text}");
        }
        assert_eq!(
            erased.description.as_deref(),
            Some("Admin deleted erased-1 (erased-1)")
        );
        let entity = erased.entity.as_ref().unwrap();
        assert_eq!(
            (entity.id.as_deref(), entity.name.as_deref()),
            (Some("erased-1"), Some("erased-1"))
        );
        assert_eq!(erased.entity_ids, vec!["erased-1", "u-7"]);
        // The actor is someone else: kept, with their IP.
        assert_eq!(erased.actor.name.as_deref(), Some("Ada"));
        assert_eq!(erased.context.ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(
            erase_person(&erased, &jose(), "erased-1"),
            None,
            "idempotent"
        );
    }

    #[test]
    fn the_person_as_actor_keeps_only_the_pseudonym() {
        let mut e = event();
        e.actor.email = Some("jose@example.com".into());
        e.actor.name = Some("José".into());
        let erased = erase_person(&e, &jose(), "erased-1").unwrap();
        assert_eq!(erased.actor.id.as_deref(), Some("erased-1"));
        assert_eq!(
            (erased.actor.name.clone(), erased.actor.email.clone()),
            (None, None)
        );
        assert_eq!(erased.context.ip, None);
    }

    #[test]
    fn short_identifiers_match_only_whole_values() {
        let person = Person {
            id: Some("7".into()),
            ..Person::default()
        };
        let mut e = event();
        e.description = Some("Printed 7 pages on printer 17".into());
        e.entity_ids = vec!["7".into()];
        let erased = erase_person(&e, &person, "erased-1").unwrap();
        assert_eq!(erased.description, e.description);
        assert_eq!(erased.entity_ids, vec!["erased-1"]);
    }

    #[test]
    fn matching_respects_character_boundaries() {
        assert_eq!(
            replace_ignoring_ascii_case("ÉÉabcÉ", "abc", "x").as_deref(),
            Some("ÉÉxÉ")
        );
        assert_eq!(
            replace_ignoring_ascii_case("ABC abc", "aBc", "-").as_deref(),
            Some("- -")
        );
        assert_eq!(replace_ignoring_ascii_case("ab", "abc", "-"), None);
    }

    #[test]
    fn named_fields_are_redacted_and_unknown_ones_refused() {
        let e = event();
        let paths = vec![
            "changes.email".to_string(),
            "metadata.who".into(),
            "context.ip".into(),
        ];
        let out = redact_fields(&e, &paths).unwrap();
        assert_eq!(out.changes[0].old, Some(json!(REDACTED)));
        assert_eq!(out.changes[0].new, None, "an absent value stays absent");
        assert_eq!(out.metadata["who"], json!(REDACTED));
        assert_eq!(out.context.ip.as_deref(), Some(REDACTED));
        let err = redact_fields(&e, &["metadata.nope".to_string()]).unwrap_err();
        assert_eq!(err.path, "metadata.nope");
        let err = redact_fields(&e, &["action".to_string()]).unwrap_err();
        assert!(err.message.contains("not a field"), "{err}");
    }
}
