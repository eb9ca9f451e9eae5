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
//! of entity_ids, context (without ip and user_agent), changes and metadata. Timestamps are RFC 3339
//! UTC with milliseconds and `Z`; numbers are decimal.
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
use crate::time::{Millis, format_rfc3339};

pub const ENTRY_FORMAT: &[u8] = b"stele-entry-v1";
pub const EVENT_FORMAT: &[u8] = b"stele-event-v1";
pub const GENESIS_FORMAT: &[u8] = b"stele-chain-v1";

/// Random bytes per entry that make its personal digest unguessable.
pub type Salt = [u8; 16];

/// The personal fields of an entry, kept apart so they can be erased.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Personal {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
        let text = |v: &Option<String>| v.clone().map_or(Value::Null, Value::String);
        let object = serde_json::json!({
            "actor_email": text(&self.actor_email),
            "actor_id": text(&self.actor_id),
            "actor_name": text(&self.actor_name),
            "ip": text(&self.ip),
            "user_agent": text(&self.user_agent),
        });
        let mut h = Sha256::new();
        h.update(salt);
        h.update(canonical_json(&object).as_bytes());
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

/// The entry that records an erasure: a System action in the `compliance` channel that names
/// only the pseudonym, never the person. The store lists the erased entries' `seq`s as its
/// `entity_ids` (a bulk action over audit entries) and their number in `metadata.entries`, so
/// verification can tell a real erasure of an entry from a forged one.
pub fn erasure_record(pseudonym: &str, reason: Option<&str>, now: Millis) -> NewEvent {
    NewEvent {
        occurred_at: now,
        action: "update".into(),
        detailed_action: Some(ERASURE_DETAILED_ACTION.into()),
        channel: "compliance".into(),
        description: Some(format!(
            "Personal data of one person was erased; their entries now show {pseudonym}"
        )),
        outcome: crate::event::Outcome::Success,
        actor: crate::event::Actor {
            kind: crate::event::ActorType::System,
            id: None,
            name: None,
            email: None,
        },
        entity: Some(crate::event::Entity {
            kind: "AuditEntry".into(),
            id: None,
            name: None,
        }),
        entity_ids: vec![],
        context: crate::event::Context {
            reason: reason.map(str::to_string),
            ..crate::event::Context::default()
        },
        changes: vec![],
        metadata: [(
            "pseudonym".to_string(),
            Value::String(pseudonym.to_string()),
        )]
        .into_iter()
        .collect(),
        idempotency_key: None,
    }
}

/// An event with what the chain needs computed ahead, off the writer's path: the salt and
/// digest of its personal fields and the digest of everything else.
#[derive(Debug, Clone, PartialEq)]
pub struct SealedEvent {
    pub event: NewEvent,
    pub salt: Salt,
    pub personal_digest: Hash,
    pub event_digest: Hash,
}

impl SealedEvent {
    pub fn seal(event: NewEvent, salt: Salt) -> SealedEvent {
        let personal_digest = Personal::of(&event).digest(&salt);
        let event_digest = event_digest(&event, &personal_digest);
        SealedEvent {
            event,
            salt,
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
    text(&mut out, Some(&to_hex(personal_digest)));
    let entity = event.entity.as_ref();
    text(&mut out, entity.map(|e| e.kind.as_str()));
    text(&mut out, entity.and_then(|e| e.id.as_deref()));
    text(&mut out, entity.and_then(|e| e.name.as_deref()));
    let json = |v: Value| canonical_json(&v);
    text(&mut out, Some(&json(serde_json::json!(event.entity_ids))));
    let mut context = event.context.clone();
    context.ip = None;
    context.user_agent = None;
    text(
        &mut out,
        Some(&json(serde_json::to_value(&context).unwrap_or(Value::Null))),
    );
    text(
        &mut out,
        Some(&json(
            serde_json::to_value(&event.changes).unwrap_or(Value::Null),
        )),
    );
    text(
        &mut out,
        Some(&json(
            serde_json::to_value(&event.metadata).unwrap_or(Value::Null),
        )),
    );
    out
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
    seq: i64,
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
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(key).unwrap_or_default());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&serde_json::to_string(scalar).unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Actor, ActorType, Context, Outcome};
    use serde_json::json;

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
        let h1 = entry_hash(&g, "org_1", 1, "id1", 5, &d);
        let h2 = entry_hash(&h1, "org_1", 2, "id2", 5, &d);
        assert_ne!(h1, h2);
        assert_ne!(
            h2,
            entry_hash(&g, "org_1", 2, "id2", 5, &d),
            "the previous hash matters"
        );
        assert_ne!(genesis("org_1"), genesis("org_2"));
    }
}
