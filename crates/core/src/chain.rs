//! The hash chain: how an entry is encoded into bytes that its hash commits to.
//!
//! The encoding is part of Stele's public contract (docs/integrity.md describes it for auditors
//! who write their own verifier). In short:
//!
//! ```text
//! personal_digest = SHA-256(salt ‖ canonical_json({"actor_email","actor_id","actor_name","ip","user_agent"}))
//! event_digest    = SHA-256(event_bytes)       -- every other field the client sent, see below
//! entry_hash(k)   = SHA-256("stele-entry-v1" ‖ entry_hash(k-1) ‖ F(org_id) ‖ F(seq) ‖ F(id)
//!                           ‖ F(recorded_at) ‖ event_digest)
//! entry_hash(0)   = SHA-256("stele-chain-v1" ‖ F(org_id))     -- the genesis of each organization
//! merkle leaf k   = RFC 6962 leaf hash of entry_hash(k)
//! ```
//!
//! `F(x)` is a field: a 4-byte big-endian length then the UTF-8 bytes, or `FF FF FF FF` when the
//! field is absent. `event_bytes` is `"stele-event-v1"` followed by these fields in this order:
//! occurred_at, action, detailed_action, channel, description, outcome, actor.type,
//! personal_digest (64 lowercase hex), entity.type, entity.id, entity.name, and the canonical JSON
//! of entity_ids, context (without ip and user_agent), changes and metadata, then, only for an
//! entry that uses any of the fields added to the model later, a 16th field: the canonical JSON
//! of `{"actor": {href, metadata, original_type}, "entity": {href, metadata}, "origin",
//! "related_entities"}` with only the members that hold something (see [`event_bytes`]).
//! Timestamps are RFC 3339 UTC with milliseconds and `Z`; numbers are decimal.
//!
//! Canonical JSON: objects with keys sorted by their UTF-8 bytes, no whitespace, strings escaped
//! as JSON requires (`"` `\` and control characters; other characters as themselves), numbers as
//! serde_json writes them.
//!
//! Why personal data sits behind a salted digest: erasing a person (GDPR) must remove their
//! name, email, id, IP and user agent from every entry without breaking the chain. The chain
//! commits only to the digest; erasure deletes the data and the salt and keeps the digest, so the
//! chain still verifies and the digest can no longer be tested against a guessed email.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::event::NewEvent;
use crate::merkle::{Hash, to_hex};
use crate::seal::Seal;
use crate::seq::Seq;
use crate::time::{Millis, format_rfc3339};

pub const ENTRY_FORMAT: &[u8] = b"stele-entry-v1";
pub const EVENT_FORMAT: &[u8] = b"stele-event-v1";
pub const EVENT_FORMAT_V2: &[u8] = b"stele-event-v2";
pub const GENESIS_FORMAT: &[u8] = b"stele-chain-v1";

/// Random bytes per entry that make its personal digest unguessable.
pub type Salt = [u8; 16];

/// The personal fields of an entry, kept apart so they can be erased. Its JSON is the stored
/// `personal` column of both backends, with short keys as in the stored body (the long names,
/// which rows written before 2026-12-06 have, are read too); the digest does not depend on it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Personal {
    #[serde(
        rename = "ai",
        alias = "actor_id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub actor_id: Option<String>,
    #[serde(
        rename = "an",
        alias = "actor_name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub actor_name: Option<String>,
    #[serde(
        rename = "ae",
        alias = "actor_email",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub actor_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(
        rename = "ua",
        alias = "user_agent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub user_agent: Option<String>,
}

impl Personal {
    pub fn of(event: &NewEvent) -> Personal {
        Personal {
            actor_id: event.actor.id.clone(),
            actor_name: event.actor.name.clone(),
            actor_email: event.actor.email.clone(),
            ip: event.context.ip.clone(),
            user_agent: event.context.user_agent.clone(),
        }
    }

    /// Puts these values back into an event (the inverse of [`Personal::of`]).
    pub fn apply(&self, event: &mut NewEvent) {
        event.actor.id = self.actor_id.clone();
        event.actor.name = self.actor_name.clone();
        event.actor.email = self.actor_email.clone();
        event.context.ip = self.ip.clone();
        event.context.user_agent = self.user_agent.clone();
    }

    pub fn digest(&self, salt: &Salt) -> Hash {
        // Canonical JSON of the five fields, every key present (null when absent), in sorted
        // order, written straight from the fields.
        let mut json = Vec::with_capacity(160);
        let mut object = CanonicalObject::open(&mut json);
        object.text("actor_email", self.actor_email.as_deref(), true);
        object.text("actor_id", self.actor_id.as_deref(), true);
        object.text("actor_name", self.actor_name.as_deref(), true);
        object.text("ip", self.ip.as_deref(), true);
        object.text("user_agent", self.user_agent.as_deref(), true);
        object.close();
        let mut h = Sha256::new();
        h.update(salt);
        h.update(&json);
        h.finalize().into()
    }
}

/// The stable pseudonym that replaces an erased person: `erased-` and 16 hex digits of a keyed
/// hash of the organization and the actor, so the same person gets the same pseudonym in every
/// entry (and in a later erasure), while nobody without the server's secret can link it back.
pub fn pseudonym(secret: &[u8; 32], org_id: &str, actor: &str) -> String {
    let mut bytes = b"stele-pseudonym-v1".to_vec();
    text(&mut bytes, Some(org_id));
    text(&mut bytes, Some(actor));
    let mut h = Sha256::new();
    h.update(secret);
    h.update(&bytes);
    let digest: Hash = h.finalize().into();
    format!("erased-{}", &to_hex(&digest)[..16])
}

/// Detailed actions starting with this are Stele's own; clients cannot send them, so an entry
/// carrying one was written by Stele (verification relies on that for erasures).
pub const RESERVED_DETAILED_ACTION_PREFIX: &str = "stele.";

/// The detailed action of the entry that records an erasure.
pub const ERASURE_DETAILED_ACTION: &str = "stele.erasure";

/// The detailed action of the entry that records a redaction of fields of one entry.
pub const REDACTION_DETAILED_ACTION: &str = "stele.redaction";

/// The entry that records an erasure: a System action in the `compliance` channel that names
/// only the pseudonym, never the person. The store lists the erased entries' `seq`s as its
/// `entity_ids` (a bulk action over audit entries) and their number in `metadata.entries`, so
/// verification can tell a real erasure of an entry from a forged one.
pub fn erasure_record(pseudonym: &str, reason: Option<&str>, now: Millis) -> NewEvent {
    compliance_record(
        ERASURE_DETAILED_ACTION,
        format!("Personal data of one person was erased; their entries now show {pseudonym}"),
        crate::event::Actor::of_kind(crate::event::ActorType::System),
        None,
        reason,
        ("pseudonym", Value::String(pseudonym.to_string())),
        now,
    )
}

/// The entry that records a redaction of one entry's fields: an `update` of that entry (entity
/// `AuditEntry` with its id) in the `compliance` channel, listing the fields in
/// `metadata.fields`; the store puts the entry's `seq` in `entity_ids`, so verification can tell
/// a real redaction from a forged one. `actor` is who asked.
pub fn redaction_record(
    entry_id: &str,
    fields: &[String],
    reason: Option<&str>,
    actor: crate::event::Actor,
    now: Millis,
) -> NewEvent {
    compliance_record(
        REDACTION_DETAILED_ACTION,
        format!("Redacted {} of entry {entry_id}", fields.join(", ")),
        actor,
        Some(entry_id),
        reason,
        (
            "fields",
            Value::Array(fields.iter().cloned().map(Value::String).collect()),
        ),
        now,
    )
}

/// An `update` of entity `AuditEntry` (the rewritten entry, where there is one) in the
/// `compliance` channel: the shape both rewrite records share.
fn compliance_record(
    detailed_action: &str,
    description: String,
    actor: crate::event::Actor,
    entry_id: Option<&str>,
    reason: Option<&str>,
    (key, value): (&str, Value),
    now: Millis,
) -> NewEvent {
    NewEvent {
        occurred_at: now,
        action: "update".into(),
        detailed_action: Some(detailed_action.into()),
        channel: "compliance".into(),
        description: Some(description),
        outcome: crate::event::Outcome::Success,
        actor,
        entity: Some(crate::event::Entity::new(
            "AuditEntry",
            entry_id.map(str::to_string),
            None,
        )),
        entity_ids: vec![],
        context: crate::event::Context {
            reason: reason.map(str::to_string),
            ..crate::event::Context::default()
        },
        changes: vec![],
        metadata: [(key.to_string(), value)].into_iter().collect(),
        idempotency_key: None,
        origin: Default::default(),
        related_entities: Vec::new(),
    }
}

/// An event with what the chain needs computed ahead, off the writer's path: its seal (the salt
/// its erasable values are committed with), the digest of those values and the digest of the
/// whole event.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedEvent {
    pub event: NewEvent,
    pub seal: Seal,
    /// Format 2: the fields digest ([`crate::seal`]); format 1: the personal digest.
    pub personal_digest: Hash,
    pub event_digest: Hash,
}

impl SealedEvent {
    /// Seals an event in the current format (2).
    pub fn seal(event: NewEvent, salt: Salt) -> SealedEvent {
        let seal = Seal::V2(salt);
        let personal_digest =
            crate::seal::fields_digest(&event, &seal).expect("a format-2 seal has a digest");
        let event_digest = event_digest_v2(&event, &personal_digest);
        SealedEvent {
            event,
            seal,
            personal_digest,
            event_digest,
        }
    }

    /// Seals an event in format 1, as Stele wrote every entry before format 2: for tests and
    /// tools that must show that such entries still verify.
    pub fn seal_format_1(event: NewEvent, salt: Salt) -> SealedEvent {
        let personal_digest = Personal::of(&event).digest(&salt);
        let event_digest = event_digest(&event, &personal_digest);
        SealedEvent {
            event,
            seal: Seal::V1(Some(salt)),
            personal_digest,
            event_digest,
        }
    }
}

/// `F(x)`: length-prefixed bytes, or the absent marker.
fn field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(bytes) => {
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
        }
        None => out.extend_from_slice(&[0xff; 4]),
    }
}

fn text(out: &mut Vec<u8>, value: Option<&str>) {
    field(out, value.map(str::as_bytes));
}

/// `text` of a digest's 64 lowercase hex digits, written in place (the same bytes as
/// `text(out, Some(&to_hex(digest)))`, without a `String` for every entry sealed or verified).
fn hex_text(out: &mut Vec<u8>, digest: &Hash) {
    let start = out.len() + 4;
    out.extend_from_slice(&(2 * digest.len() as u32).to_be_bytes());
    out.resize(start + 2 * digest.len(), 0);
    hex::encode_to_slice(digest, &mut out[start..]).expect("the slice holds two digits a byte");
}

/// The bytes `event_digest` hashes. Personal fields appear only as their digest.
pub fn event_bytes(event: &NewEvent, personal_digest: &Hash) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(EVENT_FORMAT);
    text(&mut out, Some(&format_rfc3339(event.occurred_at)));
    text(&mut out, Some(&event.action));
    text(&mut out, event.detailed_action.as_deref());
    text(&mut out, Some(&event.channel));
    text(&mut out, event.description.as_deref());
    text(&mut out, Some(event.outcome.as_str()));
    text(&mut out, Some(event.actor.kind.as_str()));
    hex_text(&mut out, personal_digest);
    let entity = event.entity.as_ref();
    text(&mut out, entity.map(|e| e.kind.as_str()));
    text(&mut out, entity.and_then(|e| e.id.as_deref()));
    text(&mut out, entity.and_then(|e| e.name.as_deref()));
    // The four JSON fields are written as canonical JSON straight from the typed values, with
    // their length patched in afterwards: no `Value` tree is built for them.
    json_field(&mut out, |buf| {
        buf.push(b'[');
        for (i, id) in event.entity_ids.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            write_json_string(buf, id);
        }
        buf.push(b']');
    });
    json_field(&mut out, |buf| write_committed_context(buf, &event.context));
    json_field(&mut out, |buf| {
        buf.push(b'[');
        for (i, change) in event.changes.iter().enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            let mut object = CanonicalObject::open(buf);
            object.text("field", Some(&change.field), true);
            object.value("new", change.new.as_ref());
            object.value("old", change.old.as_ref());
            object.close();
        }
        buf.push(b']');
    });
    json_field(&mut out, |buf| {
        // A BTreeMap of `String` keys iterates in the byte order canonical JSON sorts by.
        let mut object = CanonicalObject::open(buf);
        for (key, value) in &event.metadata {
            object.value(key, Some(value));
        }
        object.close();
    });
    if let Some(widened) = widened_fields(event) {
        json_field(&mut out, |buf| write_canonical(&widened, buf));
    }
    out
}

/// The fields added to the event model after `stele-event-v1` was first written (links and
/// metadata of the actor and entity, the actor's original type, related entities, origin), as
/// one JSON object with only the members that hold something; `None` when none does. An entry
/// that uses none of them therefore encodes exactly as before they existed, so every entry
/// stored earlier still verifies; one that uses any gets this object as a 16th field.
fn widened_fields(event: &NewEvent) -> Option<Value> {
    use serde_json::Map;
    // Most events use none of them: answered without building anything (sealing runs per event).
    let a = &event.actor;
    let entity_widened = event
        .entity
        .as_ref()
        .is_some_and(|e| e.href.is_some() || !e.metadata.is_empty());
    if a.href.is_none()
        && a.metadata.is_empty()
        && a.original_type.is_none()
        && !entity_widened
        && event.related_entities.is_empty()
        && event.origin.is_empty()
    {
        return None;
    }
    fn put(map: &mut Map<String, Value>, key: &str, value: Value) {
        let empty = match &value {
            Value::Null => true,
            Value::Object(o) => o.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        };
        if !empty {
            map.insert(key.to_string(), value);
        }
    }
    let metadata = |m: &crate::event::Metadata| Value::Object(m.clone().into_iter().collect());
    let text = |t: &Option<String>| t.clone().map_or(Value::Null, Value::String);
    let mut widened = Map::new();
    let mut actor = Map::new();
    put(&mut actor, "href", text(&event.actor.href));
    put(&mut actor, "metadata", metadata(&event.actor.metadata));
    put(
        &mut actor,
        "original_type",
        text(&event.actor.original_type),
    );
    put(&mut widened, "actor", Value::Object(actor));
    if let Some(entity) = &event.entity {
        let mut more = Map::new();
        put(&mut more, "href", text(&entity.href));
        put(&mut more, "metadata", metadata(&entity.metadata));
        put(&mut widened, "entity", Value::Object(more));
    }
    let related = event
        .related_entities
        .iter()
        .map(|e| {
            // Every member of a related entity, its type, id and name included: unlike the
            // primary entity's, they have no field of their own.
            let mut one = Map::new();
            one.insert("type".into(), Value::String(e.kind.clone()));
            put(&mut one, "id", text(&e.id));
            put(&mut one, "name", text(&e.name));
            put(&mut one, "href", text(&e.href));
            put(&mut one, "metadata", metadata(&e.metadata));
            Value::Object(one)
        })
        .collect();
    put(&mut widened, "related_entities", Value::Array(related));
    put(&mut widened, "origin", metadata(&event.origin));
    (!widened.is_empty()).then_some(Value::Object(widened))
}

/// `F(x)` for a JSON field: the 4-byte length is written once `write` has written the text.
fn json_field(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    write(out);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

/// The context as the chain commits to it: canonical JSON without `ip` and `user_agent` (they
/// are personal, behind the personal digest). Keys are those `Context` serializes, absent ones
/// left out, in sorted order.
fn write_committed_context(buf: &mut Vec<u8>, c: &crate::event::Context) {
    let mut object = CanonicalObject::open(buf);
    object.text("api_key_id", c.api_key_id.as_deref(), false);
    object.text("correlation_id", c.correlation_id.as_deref(), false);
    if let Some(who) = &c.impersonator {
        object.key("impersonator");
        let mut inner = CanonicalObject::open(object.buf);
        inner.text("email", who.email.as_deref(), false);
        inner.text("id", who.id.as_deref(), false);
        inner.close();
    }
    object.text("location", c.location.as_deref(), false);
    object.text("reason", c.reason.as_deref(), false);
    object.text("request_id", c.request_id.as_deref(), false);
    object.text("source", c.source.as_deref(), false);
    object.close();
}

/// Writes one JSON object whose keys the caller gives in sorted order.
struct CanonicalObject<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> CanonicalObject<'a> {
    fn open(buf: &'a mut Vec<u8>) -> Self {
        buf.push(b'{');
        CanonicalObject { buf, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
        write_json_string(self.buf, key);
        self.buf.push(b':');
    }

    /// A text member; an absent one is `null` when `keep_null`, else left out.
    fn text(&mut self, key: &str, value: Option<&str>, keep_null: bool) {
        match value {
            Some(v) => {
                self.key(key);
                write_json_string(self.buf, v);
            }
            None if keep_null => {
                self.key(key);
                self.buf.extend_from_slice(b"null");
            }
            None => {}
        }
    }

    /// A JSON member in canonical form; an absent one is left out.
    fn value(&mut self, key: &str, value: Option<&Value>) {
        if let Some(v) = value {
            self.key(key);
            write_canonical(v, self.buf);
        }
    }

    fn close(self) {
        self.buf.push(b'}');
    }
}

fn write_json_string(buf: &mut Vec<u8>, s: &str) {
    // Writing a string into memory cannot fail.
    serde_json::to_writer(&mut *buf, s).expect("JSON into memory");
}

/// The bytes a format-2 event digest hashes: the values nobody erases in the clear, and every
/// erasable value only through `fields_digest` ([`crate::seal`]).
pub fn event_bytes_v2(event: &NewEvent, fields_digest: &Hash) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(EVENT_FORMAT_V2);
    text(&mut out, Some(&format_rfc3339(event.occurred_at)));
    text(&mut out, Some(&event.action));
    text(&mut out, event.detailed_action.as_deref());
    text(&mut out, Some(&event.channel));
    text(&mut out, Some(event.outcome.as_str()));
    text(&mut out, Some(event.actor.kind.as_str()));
    text(&mut out, event.actor.original_type.as_deref());
    text(&mut out, event.entity.as_ref().map(|e| e.kind.as_str()));
    hex_text(&mut out, fields_digest);
    let c = &event.context;
    json_field(&mut out, |buf| {
        let mut object = CanonicalObject::open(buf);
        object.text("api_key_id", c.api_key_id.as_deref(), false);
        object.text("correlation_id", c.correlation_id.as_deref(), false);
        object.text("request_id", c.request_id.as_deref(), false);
        object.text("source", c.source.as_deref(), false);
        object.close();
    });
    let list = |buf: &mut Vec<u8>, items: &mut dyn Iterator<Item = &str>| {
        buf.push(b'[');
        for (i, item) in items.enumerate() {
            if i > 0 {
                buf.push(b',');
            }
            write_json_string(buf, item);
        }
        buf.push(b']');
    };
    json_field(&mut out, |buf| {
        list(buf, &mut event.changes.iter().map(|c| c.field.as_str()))
    });
    json_field(&mut out, |buf| {
        list(
            buf,
            &mut crate::seal::related_types(&event.related_entities),
        )
    });
    out
}

pub fn event_digest_v2(event: &NewEvent, fields_digest: &Hash) -> Hash {
    Sha256::digest(event_bytes_v2(event, fields_digest)).into()
}

pub fn event_digest(event: &NewEvent, personal_digest: &Hash) -> Hash {
    Sha256::digest(event_bytes(event, personal_digest)).into()
}

/// The hash before an organization's first entry.
pub fn genesis(org_id: &str) -> Hash {
    let mut out = GENESIS_FORMAT.to_vec();
    text(&mut out, Some(org_id));
    Sha256::digest(out).into()
}

/// The hash of entry `seq`, committing to the previous entry's hash and to this entry.
pub fn entry_hash(
    prev: &Hash,
    org_id: &str,
    seq: Seq,
    id: &str,
    recorded_at: Millis,
    event_digest: &Hash,
) -> Hash {
    let mut out = Vec::with_capacity(160);
    out.extend_from_slice(ENTRY_FORMAT);
    out.extend_from_slice(prev);
    text(&mut out, Some(org_id));
    text(&mut out, Some(&seq.to_string()));
    text(&mut out, Some(id));
    text(&mut out, Some(&format_rfc3339(recorded_at)));
    out.extend_from_slice(event_digest);
    Sha256::digest(out).into()
}

/// Canonical JSON text: sorted keys, no whitespace (see the module docs).
pub fn canonical_json(value: &Value) -> String {
    let mut out = Vec::new();
    write_canonical(value, &mut out);
    String::from_utf8(out).expect("JSON text is UTF-8")
}

/// Canonical JSON text appended to `out`.
pub fn canonical_json_bytes(value: &Value, out: &mut Vec<u8>) {
    write_canonical(value, out)
}

fn write_canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut object = CanonicalObject::open(out);
            for key in keys {
                object.value(key, map.get(key));
            }
            object.close();
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        // Scalars as serde_json writes them; writing into memory cannot fail.
        scalar => serde_json::to_writer(&mut *out, scalar).expect("JSON into memory"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, ActorType, Context, Outcome};
    use serde_json::json;

    /// The stored `personal` JSON has short keys; rows written with the long names read the same.
    #[test]
    fn personal_json_is_short_and_reads_the_long_names_too() {
        let p = Personal {
            actor_id: Some("u1".into()),
            actor_name: Some("Ada".into()),
            actor_email: Some("ada@example.com".into()),
            ip: Some("192.0.2.1".into()),
            user_agent: Some("curl/8".into()),
        };
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(
            json,
            r#"{"ai":"u1","an":"Ada","ae":"ada@example.com","ip":"192.0.2.1","ua":"curl/8"}"#
        );
        let long = r#"{"actor_id":"u1","actor_name":"Ada","actor_email":"ada@example.com","ip":"192.0.2.1","user_agent":"curl/8"}"#;
        for stored in [json.as_str(), long] {
            assert_eq!(serde_json::from_str::<Personal>(stored).unwrap(), p);
        }
    }

    fn sample() -> NewEvent {
        NewEvent {
            occurred_at: 1_767_322_245_678,
            action: "update".into(),
            detailed_action: Some("printer.rename".into()),
            channel: "default".into(),
            description: Some("Renamed".into()),
            outcome: Outcome::Success,
            actor: Actor {
                kind: ActorType::User,
                id: Some("u1".into()),
                name: Some("Ada".into()),
                email: Some("ada@example.com".into()),
                href: None,
                metadata: Default::default(),
                original_type: None,
            },
            entity: None,
            entity_ids: vec![],
            context: Context {
                ip: Some("203.0.113.7".into()),
                correlation_id: Some("c".into()),
                ..Context::default()
            },
            changes: vec![],
            metadata: [("b".to_string(), json!(1)), ("a".to_string(), json!("x"))]
                .into_iter()
                .collect(),
            idempotency_key: None,
            origin: Default::default(),
            related_entities: Vec::new(),
        }
    }

    /// The chain's encoding as first written: each JSON field built as a `serde_json::Value`
    /// and then written canonically. `event_bytes` writes the same bytes from the typed values.
    fn event_bytes_through_values(event: &NewEvent, personal_digest: &Hash) -> Vec<u8> {
        let mut prefix = Vec::new();
        prefix.extend_from_slice(EVENT_FORMAT);
        text(&mut prefix, Some(&format_rfc3339(event.occurred_at)));
        text(&mut prefix, Some(&event.action));
        text(&mut prefix, event.detailed_action.as_deref());
        text(&mut prefix, Some(&event.channel));
        text(&mut prefix, event.description.as_deref());
        text(&mut prefix, Some(event.outcome.as_str()));
        text(&mut prefix, Some(event.actor.kind.as_str()));
        text(&mut prefix, Some(&to_hex(personal_digest)));
        let entity = event.entity.as_ref();
        text(&mut prefix, entity.map(|e| e.kind.as_str()));
        text(&mut prefix, entity.and_then(|e| e.id.as_deref()));
        text(&mut prefix, entity.and_then(|e| e.name.as_deref()));
        let json = |v: Value| canonical_json(&v);
        text(&mut prefix, Some(&json(json!(event.entity_ids))));
        let mut context = event.context.clone();
        context.ip = None;
        context.user_agent = None;
        text(
            &mut prefix,
            Some(&json(serde_json::to_value(&context).unwrap())),
        );
        text(
            &mut prefix,
            Some(&json(serde_json::to_value(&event.changes).unwrap())),
        );
        text(
            &mut prefix,
            Some(&json(serde_json::to_value(&event.metadata).unwrap())),
        );
        prefix
    }

    fn personal_digest_through_values(p: &Personal, salt: &Salt) -> Hash {
        let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
        let object = json!({
            "actor_email": text(&p.actor_email),
            "actor_id": text(&p.actor_id),
            "actor_name": text(&p.actor_name),
            "ip": text(&p.ip),
            "user_agent": text(&p.user_agent),
        });
        let mut h = Sha256::new();
        h.update(salt);
        h.update(canonical_json(&object).as_bytes());
        h.finalize().into()
    }

    #[test]
    fn the_typed_encoding_writes_the_bytes_the_value_encoding_did() {
        use crate::event::{Change, Entity, Impersonator};
        let mut events = vec![sample()];
        let mut e = sample();
        e.entity = Some(Entity::new(
            "Printer",
            Some("42".into()),
            Some("Büro \"A\"".into()),
        ));
        e.entity_ids = vec!["1".into(), "é\u{1}".into()];
        e.context = Context {
            ip: Some("::1".into()),
            user_agent: Some("ua".into()),
            correlation_id: Some("c".into()),
            request_id: Some("r".into()),
            reason: Some("why\n".into()),
            source: Some("web".into()),
            api_key_id: Some("key_1".into()),
            impersonator: Some(Impersonator {
                id: Some("u9".into()),
                email: None,
            }),
            location: Some("Zürich".into()),
        };
        e.changes = vec![
            Change {
                field: "a.b".into(),
                old: Some(Value::Null),
                new: Some(json!({"z": [1, 2.5, {"y": null, "b": "x"}], "a": -0.0})),
            },
            Change {
                field: "gone".into(),
                old: Some(json!(1e300)),
                new: None,
            },
        ];
        e.metadata = [
            ("b".to_string(), json!(1)),
            ("a".to_string(), json!("x")),
            ("Z".to_string(), json!(true)),
            ("é".to_string(), json!(0.1)),
        ]
        .into_iter()
        .collect();
        events.push(e);
        let mut e = sample();
        e.context.impersonator = Some(Impersonator {
            id: None,
            email: None,
        });
        events.push(e);
        for event in &events {
            let personal = Personal::of(event);
            let salt = [3; 16];
            assert_eq!(
                personal.digest(&salt),
                personal_digest_through_values(&personal, &salt)
            );
            let digest = personal.digest(&salt);
            assert_eq!(
                event_bytes(event, &digest),
                event_bytes_through_values(event, &digest),
                "{event:?}"
            );
        }
    }

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let v = json!({"b": [1, {"z": null, "a": "é\n"}], "a": true});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":true,"b":[1,{"a":"é\n","z":null}]}"#
        );
    }

    #[test]
    fn every_field_is_committed_to() {
        let salt = [7; 16];
        let base = SealedEvent::seal(sample(), salt);
        let mut changed = Vec::new();
        let mut e = sample();
        e.description = Some("Renamed!".into());
        changed.push(e);
        let mut e = sample();
        e.metadata.insert("c".into(), json!(false));
        changed.push(e);
        let mut e = sample();
        e.context.correlation_id = None;
        changed.push(e);
        let mut e = sample();
        e.actor.email = Some("eve@example.com".into());
        changed.push(e);
        let mut e = sample();
        e.context.ip = Some("203.0.113.8".into());
        changed.push(e);
        let mut e = sample();
        e.occurred_at += 1;
        changed.push(e);
        for e in changed {
            assert_ne!(SealedEvent::seal(e, salt).event_digest, base.event_digest);
        }
        // The personal digest depends on the salt, so a guessed email cannot be confirmed.
        assert_ne!(
            SealedEvent::seal(sample(), [8; 16]).personal_digest,
            base.personal_digest
        );
    }

    #[test]
    fn widened_fields_are_committed_in_a_sixteenth_field_only_when_used() {
        use crate::event::Entity;
        let salt = [7; 16];
        let digest = SealedEvent::seal(sample(), salt).personal_digest;
        // An event that uses none of them encodes as the fifteen v1 fields (what
        // `event_bytes_through_values` wrote before they existed).
        assert_eq!(
            event_bytes(&sample(), &digest),
            event_bytes_through_values(&sample(), &digest)
        );
        let mut e = sample();
        e.actor.original_type = Some("service account".into());
        e.actor.metadata.insert("role".into(), json!("admin"));
        e.entity = Some(Entity {
            href: Some("https://app.test/t/1".into()),
            ..Entity::new("team", Some("t1".into()), None)
        });
        e.related_entities = vec![Entity::new("doc", Some("d1".into()), Some("Plan".into()))];
        e.origin.insert("protocol".into(), json!("workos"));
        let bytes = event_bytes(&e, &digest);
        let expected = r#"{"actor":{"metadata":{"role":"admin"},"original_type":"service account"},"entity":{"href":"https://app.test/t/1"},"origin":{"protocol":"workos"},"related_entities":[{"id":"d1","name":"Plan","type":"doc"}]}"#;
        let mut tail = Vec::new();
        text(&mut tail, Some(expected));
        assert!(
            bytes.ends_with(&tail),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        // Each of them is committed to.
        let base = SealedEvent::seal(e.clone(), salt).event_digest;
        let mut changed = Vec::new();
        let mut x = e.clone();
        x.actor.href = Some("https://app.test/u/1".into());
        changed.push(x);
        let mut x = e.clone();
        x.actor.metadata.clear();
        changed.push(x);
        let mut x = e.clone();
        x.actor.original_type = None;
        changed.push(x);
        let mut x = e.clone();
        x.entity
            .as_mut()
            .unwrap()
            .metadata
            .insert("size".into(), json!(3));
        changed.push(x);
        let mut x = e.clone();
        x.related_entities[0].kind = "file".into();
        changed.push(x);
        let mut x = e.clone();
        x.related_entities.push(Entity::new("doc", None, None));
        changed.push(x);
        let mut x = e.clone();
        x.origin.insert("version".into(), json!(2));
        changed.push(x);
        for x in changed {
            assert_ne!(SealedEvent::seal(x, salt).event_digest, base);
        }
    }

    #[test]
    fn absent_and_empty_fields_differ() {
        let mut a = Vec::new();
        text(&mut a, None);
        let mut b = Vec::new();
        text(&mut b, Some(""));
        assert_ne!(a, b);
    }

    #[test]
    fn entry_hashes_chain() {
        let d = SealedEvent::seal(sample(), [1; 16]).event_digest;
        let g = genesis("org_1");
        let h1 = entry_hash(&g, "org_1", Seq::new(1), "id1", 5, &d);
        let h2 = entry_hash(&h1, "org_1", Seq::new(2), "id2", 5, &d);
        assert_ne!(h1, h2);
        assert_ne!(
            h2,
            entry_hash(&g, "org_1", Seq::new(2), "id2", 5, &d),
            "the previous hash matters"
        );
        assert_ne!(genesis("org_1"), genesis("org_2"));
    }
}
