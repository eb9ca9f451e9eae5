//! The audit event: what a client sends once validated ([`NewEvent`]) and what Stele stores and
//! returns ([`Entry`]). Field names are the JSON contract of the native API (docs/api.md).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::seq::Seq;
use crate::time::{Millis, format_rfc3339};

/// Who performed an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActorType {
    User,
    Api,
    Webhook,
    System,
    Scheduler,
}

impl ActorType {
    pub const ALL: [ActorType; 5] = [
        ActorType::User,
        ActorType::Api,
        ActorType::Webhook,
        ActorType::System,
        ActorType::Scheduler,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActorType::User => "user",
            ActorType::Api => "api",
            ActorType::Webhook => "webhook",
            ActorType::System => "system",
            ActorType::Scheduler => "scheduler",
        }
    }

    /// A small stable code for compact storage.
    pub fn code(self) -> i64 {
        match self {
            ActorType::User => 0,
            ActorType::Api => 1,
            ActorType::Webhook => 2,
            ActorType::System => 3,
            ActorType::Scheduler => 4,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }
}

impl FromStr for ActorType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s.to_ascii_lowercase())
            .ok_or(())
    }
}

impl fmt::Display for ActorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether the action succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    #[default]
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

impl FromStr for Outcome {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "success" => Ok(Outcome::Success),
            "failure" => Ok(Outcome::Failure),
            _ => Err(()),
        }
    }
}

/// A flat map of scalar values (the event's `metadata`, an actor's or an entity's).
pub type Metadata = BTreeMap<String, Value>;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(rename = "type")]
    pub kind: ActorType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// A link to the actor in the sender's own application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: Metadata,
    /// The actor type as a compatible client sent it, when that is not one of Stele's own
    /// (WorkOS's `actor.type` is free text); `kind` holds the type it maps to, for the filter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_type: Option<String>,
}

impl Actor {
    /// An actor of this type and nothing else.
    pub fn of_kind(kind: ActorType) -> Actor {
        Actor {
            kind,
            id: None,
            name: None,
            email: None,
            href: None,
            metadata: Metadata::new(),
            original_type: None,
        }
    }
}

/// A record an action touched: the entry's primary `entity`, or one of its `related_entities`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A link to the record in the sender's own application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub href: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: Metadata,
}

impl Entity {
    /// An entity of this type with these optional id and name, and nothing else.
    pub fn new(kind: impl Into<String>, id: Option<String>, name: Option<String>) -> Entity {
        Entity {
            kind: kind.into(),
            id,
            name,
            href: None,
            metadata: Metadata::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impersonator {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// Where a request came from. `ip` and `user_agent` are personal data (erasable later).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impersonator: Option<Impersonator>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl Context {
    pub fn is_empty(&self) -> bool {
        self == &Context::default()
    }
}

/// One changed field. `old` is absent for a field that did not exist before (a create), `new` for
/// one that no longer exists (a delete).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub field: String,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub old: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub new: Option<Value>,
}

/// A key that is present is `Some`, even when its value is `null` (a field that was null before
/// is not the same as a field that did not exist); only an absent key is `None`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A validated, redacted event ready to be stored. Built by [`crate::parse_event`] only.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub occurred_at: Millis,
    pub action: String,
    pub detailed_action: Option<String>,
    pub channel: String,
    pub description: Option<String>,
    pub outcome: Outcome,
    pub actor: Actor,
    pub entity: Option<Entity>,
    pub entity_ids: Vec<String>,
    /// Further records the action touched, each with its type (WorkOS's second and later
    /// `targets`); the entity filters match them as they match `entity`.
    pub related_entities: Vec<Entity>,
    pub context: Context,
    pub changes: Vec<Change>,
    pub metadata: Metadata,
    /// What a compatible protocol's client sent that has no native field, under that protocol's
    /// own names, with `protocol` naming the door it came through (docs/platform.md has the
    /// mapping). Set by those doors only; the native API refuses it.
    pub origin: Metadata,
    /// Per-event idempotency key from a batch (`idempotency_key`); not part of the entry.
    pub idempotency_key: Option<String>,
}

impl NewEvent {
    /// The primary entity and every related one, in that order.
    pub fn entities(&self) -> impl Iterator<Item = &Entity> {
        self.entity.iter().chain(&self.related_entities)
    }
}

/// A stored entry, as the API returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: String,
    pub seq: Seq,
    pub recorded_at: Millis,
    pub event: NewEvent,
}

/// The entry as the API's JSON object, written straight from the entry's fields (no
/// intermediate `serde_json::Value`): the key order is the contract's, and
/// [`Entry::from_json`] reads it back.
impl Serialize for Entry {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let e = &self.event;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("seq", &self.seq)?;
        m.serialize_entry("occurred_at", &format_rfc3339(e.occurred_at))?;
        m.serialize_entry("recorded_at", &format_rfc3339(self.recorded_at))?;
        m.serialize_entry("action", &e.action)?;
        m.serialize_entry("detailed_action", &e.detailed_action)?;
        m.serialize_entry("channel", &e.channel)?;
        m.serialize_entry("description", &e.description)?;
        m.serialize_entry("outcome", e.outcome.as_str())?;
        m.serialize_entry("actor", &e.actor)?;
        m.serialize_entry("entity", &e.entity)?;
        m.serialize_entry("entity_ids", &e.entity_ids)?;
        // The widened fields appear only when they hold something, so an entry that does not
        // use them reads exactly as it did before they existed.
        if !e.related_entities.is_empty() {
            m.serialize_entry("related_entities", &e.related_entities)?;
        }
        m.serialize_entry("context", &e.context)?;
        m.serialize_entry("changes", &e.changes)?;
        m.serialize_entry("metadata", &e.metadata)?;
        if !e.origin.is_empty() {
            m.serialize_entry("origin", &e.origin)?;
        }
        m.end()
    }
}

impl Entry {
    /// The entry as a JSON value, for a caller that adds to it (an entry with its correlated
    /// entries, a proof). To write an entry out, serialize it instead.
    pub fn to_json(&self) -> Value {
        // Serializing an entry cannot fail: keys are strings and values are JSON already.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

impl Entry {
    /// Reads an entry back from the API's JSON (the inverse of [`Entry::to_json`]), as an
    /// independent verifier does with a proof. Extra keys (such as `correlated`) are ignored.
    pub fn from_json(value: &Value) -> Option<Entry> {
        #[derive(Deserialize)]
        struct Shape {
            id: String,
            seq: Seq,
            occurred_at: String,
            recorded_at: String,
            action: String,
            detailed_action: Option<String>,
            channel: String,
            description: Option<String>,
            outcome: Outcome,
            actor: Actor,
            entity: Option<Entity>,
            #[serde(default)]
            entity_ids: Vec<String>,
            #[serde(default)]
            related_entities: Vec<Entity>,
            #[serde(default)]
            context: Context,
            #[serde(default)]
            changes: Vec<Change>,
            #[serde(default)]
            metadata: Metadata,
            #[serde(default)]
            origin: Metadata,
        }
        let s: Shape = serde_json::from_value(value.clone()).ok()?;
        Some(Entry {
            id: s.id,
            seq: s.seq,
            recorded_at: crate::time::parse_rfc3339(&s.recorded_at)?,
            event: NewEvent {
                occurred_at: crate::time::parse_rfc3339(&s.occurred_at)?,
                action: s.action,
                detailed_action: s.detailed_action,
                channel: s.channel,
                description: s.description,
                outcome: s.outcome,
                actor: s.actor,
                entity: s.entity,
                entity_ids: s.entity_ids,
                related_entities: s.related_entities,
                context: s.context,
                changes: s.changes,
                metadata: s.metadata,
                origin: s.origin,
                idempotency_key: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_from_its_json() {
        let entry = Entry {
            id: "e1".into(),
            seq: Seq::new(7),
            recorded_at: 1_767_322_245_679,
            event: NewEvent {
                occurred_at: 1_767_322_245_678,
                action: "update".into(),
                detailed_action: None,
                channel: "default".into(),
                description: Some("x".into()),
                outcome: Outcome::Failure,
                actor: Actor {
                    kind: ActorType::Api,
                    id: Some("k".into()),
                    name: None,
                    email: None,
                    href: None,
                    metadata: Default::default(),
                    original_type: None,
                },
                entity: Some(Entity::new("Printer", Some("1".into()), None)),
                entity_ids: vec!["1".into(), "2".into()],
                context: Context {
                    ip: Some("::1".into()),
                    ..Context::default()
                },
                changes: vec![Change {
                    field: "a".into(),
                    old: Some(Value::Null),
                    new: Some(Value::from(1.5)),
                }],
                metadata: [("k".to_string(), Value::from(true))].into_iter().collect(),
                idempotency_key: None,
                origin: Default::default(),
                related_entities: Vec::new(),
            },
        };
        // Written straight to text, the keys come in the contract's order, absent values as null.
        let text = serde_json::to_string(&entry).unwrap();
        assert!(
            text.starts_with(
                r#"{"id":"e1","seq":7,"occurred_at":"2026-01-02T02:50:45.678Z","recorded_at":"2026-01-02T02:50:45.679Z","action":"update","detailed_action":null,"channel":"default","description":"x","outcome":"failure","actor":{"type":"api","id":"k"},"entity":{"type":"Printer","id":"1"},"entity_ids":["1","2"],"context":{"ip":"::1"},"changes":[{"field":"a","old":null,"new":1.5}],"metadata":{"k":true}}"#
            ),
            "{text}"
        );
        assert_eq!(Entry::from_json(&entry.to_json()), Some(entry));
    }

    #[test]
    fn a_null_old_value_survives_a_round_trip() {
        let change = Change {
            field: "nickname".into(),
            old: Some(Value::Null),
            new: None,
        };
        let text = serde_json::to_string(&change).unwrap();
        assert_eq!(text, r#"{"field":"nickname","old":null}"#);
        assert_eq!(serde_json::from_str::<Change>(&text).unwrap(), change);
    }

    mod round_trip {
        use super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-zA-Z0-9 ._@-]{0,12}",
                any::<String>(),
                Just("é\"\\\n\t\u{1F600}".to_string()),
            ]
        }

        fn scalar() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(Value::from),
                prop::sample::select(vec![0.1, -0.0, 1e300, 5e-324, 1e16]).prop_map(Value::from),
                text().prop_map(Value::from),
            ]
        }

        fn json() -> impl Strategy<Value = Value> {
            scalar().prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map(text(), inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn change() -> impl Strategy<Value = Change> {
            // old/new: absent, present as null, or a value.
            let side = || prop_oneof![Just(None), Just(Some(Value::Null)), json().prop_map(Some),];
            (text(), side(), side()).prop_map(|(field, old, new)| Change { field, old, new })
        }

        fn context() -> impl Strategy<Value = Context> {
            let t = || prop::option::of(text());
            let impersonator =
                prop::option::of((t(), t()).prop_map(|(id, email)| Impersonator { id, email }));
            ((t(), t(), t(), t()), (t(), t(), t(), t()), impersonator).prop_map(
                |(
                    (ip, user_agent, correlation_id, request_id),
                    (reason, source, api_key_id, location),
                    impersonator,
                )| Context {
                    ip,
                    user_agent,
                    correlation_id,
                    request_id,
                    reason,
                    source,
                    api_key_id,
                    impersonator,
                    location,
                },
            )
        }

        fn metadata() -> impl Strategy<Value = Metadata> {
            prop::collection::btree_map(text(), scalar(), 0..3)
        }

        fn entity() -> impl Strategy<Value = Entity> {
            let t = || prop::option::of(text());
            (text(), t(), t(), t(), metadata()).prop_map(|(kind, id, name, href, metadata)| {
                Entity {
                    kind,
                    id,
                    name,
                    href,
                    metadata,
                }
            })
        }

        fn entry() -> impl Strategy<Value = Entry> {
            let t = || prop::option::of(text());
            let millis = 0i64..4_102_444_800_000; // up to 2100
            let actor = (
                prop::sample::select(ActorType::ALL.to_vec()),
                (t(), t(), t()),
                (t(), metadata(), t()),
            )
                .prop_map(
                    |(kind, (id, name, email), (href, metadata, original_type))| Actor {
                        kind,
                        id,
                        name,
                        email,
                        href,
                        metadata,
                        original_type,
                    },
                );
            (
                (text(), 1i64..i64::MAX, millis.clone(), millis),
                (text(), t(), text(), t(), any::<bool>()),
                (
                    actor,
                    prop::option::of(entity()),
                    prop::collection::vec(text(), 0..4),
                    prop::collection::vec(entity(), 0..3),
                    context(),
                ),
                (
                    prop::collection::vec(change(), 0..4),
                    prop::collection::btree_map(text(), scalar(), 0..5),
                    metadata(),
                ),
            )
                .prop_map(
                    |(
                        (id, seq, recorded_at, occurred_at),
                        (action, detailed_action, channel, description, failed),
                        (actor, entity, entity_ids, related_entities, context),
                        (changes, metadata, origin),
                    )| Entry {
                        id,
                        seq: Seq::new(seq),
                        recorded_at,
                        event: NewEvent {
                            occurred_at,
                            action,
                            detailed_action,
                            channel,
                            description,
                            outcome: if failed {
                                Outcome::Failure
                            } else {
                                Outcome::Success
                            },
                            actor,
                            entity,
                            entity_ids,
                            related_entities,
                            context,
                            changes,
                            metadata,
                            origin,
                            idempotency_key: None,
                        },
                    },
                )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// What the API (or an archive line) shows, written as text and read back, is the
            /// same entry: a null old value stays distinct from an absent one, numbers keep their
            /// value, every context field and the metadata survive.
            #[test]
            fn to_json_then_from_json_is_the_same_entry(entry in entry()) {
                let text = serde_json::to_string(&entry.to_json()).unwrap();
                let value: Value = serde_json::from_str(&text).unwrap();
                prop_assert_eq!(&value, &entry.to_json());
                let back = Entry::from_json(&value);
                prop_assert_eq!(back.as_ref(), Some(&entry));
                prop_assert_eq!(back.unwrap().to_json(), value);
            }
        }
    }
}
