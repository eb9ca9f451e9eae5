//! How an entry's erasable values are committed to, so that an erasure or a redaction can remove
//! a value and the chain still verifies (docs/integrity.md §5.6).
//!
//! **Format 2** (`stele-event-v2`, every entry written since it exists) commits to each erasable
//! value on its own. Every such value is a *leaf* with a label (`actor.email`, `description`,
//! `changes.3.new`, `metadata.plan`, …, see [`leaves`]):
//!
//! ```text
//! leaf_salt(L)   = SHA-256(salt ‖ F(L))                   -- salt: 16 random bytes per entry
//! commitment(L)  = SHA-256(leaf_salt(L) ‖ F(value of L))
//! fields_digest  = SHA-256("stele-fields-v2" ‖ F(L1) ‖ commitment(L1) ‖ F(L2) ‖ …)   -- labels in byte order
//! ```
//!
//! and the event bytes hold `fields_digest` where format 1 held the personal digest, beside the
//! values nobody erases (time, action, channel, outcome, types, field names; see
//! [`crate::chain::event_bytes_v2`]).
//!
//! What is stored beside the entry (its [`Seal`]) changes when a value is removed: the entry's
//! salt is replaced by, for each leaf, either its own leaf salt (the value is still there and
//! still checked) or its commitment (the value is gone). Without the entry salt an erased value's
//! commitment cannot be tested against a guess, and every value still present is still proven.
//!
//! **Format 1** entries (written before format 2) committed only to the five personal fields
//! through a salted digest. When an erasure or redaction rewrites anything else in one, its event
//! digest is kept as it was ([`Seal::V1Frozen`]): the chain and proofs still verify, and the
//! rewritten content is vouched for by the chained erasure or redaction record that names it.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::chain::{self, Salt, canonical_json_bytes};
use crate::event::{Entity, NewEvent};
use crate::merkle::Hash;

/// What is stored beside an entry to check its erasable values (the `salt` column, the
/// archive's `salt`, a proof's `personal_salt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seal {
    /// Format 1: the salt of the personal digest; `None` once erased (only the pseudonym left).
    V1(Option<Salt>),
    /// Format 1, rewritten by an erasure or redaction: the event digest as it was written.
    V1Frozen(Hash),
    /// Format 2: every leaf salt derives from this one.
    V2(Salt),
    /// Format 2 after an erasure or redaction: per label, its leaf salt or its commitment.
    V2Punctured(BTreeMap<String, Leaf>),
}

/// One label of a punctured format-2 seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaf {
    /// The value is still stored; this is its leaf salt.
    Salt(Hash),
    /// The value was erased or redacted; this is what it committed to.
    Commitment(Hash),
}

// The stored bytes: a format-1 salt is its 16 bytes (so every seal stored before format 2 reads
// as it did); the others start with a tag and are never 16 bytes long.
const TAG_V1_FROZEN: u8 = 1;
const TAG_V2: u8 = 2;
const TAG_V2_PUNCTURED: u8 = 3;
const LEAF_SALT: u8 = 0;
const LEAF_COMMITMENT: u8 = 1;

/// Stored seal bytes that are none of the forms [`Seal::to_bytes`] writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the stored seal is malformed")]
pub struct MalformedSeal;

impl Seal {
    /// The stored form (`None` for an erased format-1 entry).
    pub fn to_bytes(&self) -> Option<Vec<u8>> {
        match self {
            Seal::V1(salt) => salt.map(|s| s.to_vec()),
            Seal::V1Frozen(digest) => Some([&[TAG_V1_FROZEN][..], digest].concat()),
            Seal::V2(salt) => Some([&[TAG_V2][..], salt].concat()),
            Seal::V2Punctured(leaves) => {
                let mut out = vec![TAG_V2_PUNCTURED];
                for (label, leaf) in leaves {
                    field(&mut out, label.as_bytes());
                    let (tag, hash) = match leaf {
                        Leaf::Salt(h) => (LEAF_SALT, h),
                        Leaf::Commitment(h) => (LEAF_COMMITMENT, h),
                    };
                    out.push(tag);
                    out.extend_from_slice(hash);
                }
                Some(out)
            }
        }
    }

    pub fn from_bytes(bytes: Option<&[u8]>) -> Result<Seal, MalformedSeal> {
        let Some(bytes) = bytes else {
            return Ok(Seal::V1(None));
        };
        if let Ok(salt) = Salt::try_from(bytes) {
            return Ok(Seal::V1(Some(salt)));
        }
        match bytes.split_first() {
            Some((&TAG_V1_FROZEN, rest)) => {
                Ok(Seal::V1Frozen(rest.try_into().map_err(|_| MalformedSeal)?))
            }
            Some((&TAG_V2, rest)) => Ok(Seal::V2(rest.try_into().map_err(|_| MalformedSeal)?)),
            Some((&TAG_V2_PUNCTURED, mut rest)) => {
                let mut leaves = BTreeMap::new();
                while !rest.is_empty() {
                    let len = u32::from_be_bytes(
                        rest.get(..4)
                            .ok_or(MalformedSeal)?
                            .try_into()
                            .expect("4 bytes"),
                    ) as usize;
                    let label = rest.get(4..4 + len).ok_or(MalformedSeal)?;
                    let label = String::from_utf8(label.to_vec()).map_err(|_| MalformedSeal)?;
                    let tag = *rest.get(4 + len).ok_or(MalformedSeal)?;
                    let hash: Hash = rest
                        .get(5 + len..37 + len)
                        .ok_or(MalformedSeal)?
                        .try_into()
                        .expect("32 bytes");
                    let leaf = match tag {
                        LEAF_SALT => Leaf::Salt(hash),
                        LEAF_COMMITMENT => Leaf::Commitment(hash),
                        _ => return Err(MalformedSeal),
                    };
                    leaves.insert(label, leaf);
                    rest = &rest[37 + len..];
                }
                Ok(Seal::V2Punctured(leaves))
            }
            _ => Err(MalformedSeal),
        }
    }

    /// The stored form in lowercase hex, as the archive and proofs carry it.
    pub fn to_hex(&self) -> Option<String> {
        self.to_bytes().map(hex::encode)
    }

    pub fn from_hex(text: Option<&str>) -> Result<Seal, MalformedSeal> {
        let bytes = text
            .map(|t| hex::decode(t).map_err(|_| MalformedSeal))
            .transpose()?;
        Seal::from_bytes(bytes.as_deref())
    }

    /// Whether an erasure or redaction removed or rewrote values of this entry, so that a chained
    /// record must vouch for it.
    pub fn rewritten(&self) -> bool {
        match self {
            Seal::V1(salt) => salt.is_none(),
            Seal::V1Frozen(_) => true,
            Seal::V2(_) => false,
            Seal::V2Punctured(leaves) => leaves.values().any(|l| matches!(l, Leaf::Commitment(_))),
        }
    }
}

/// What checking an entry's content against its seal gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The event digest the chain's entry hash must commit to.
    pub event_digest: Hash,
    /// Whether the values shown match the stored digest (for a rewritten entry: those that are
    /// still there; what was removed is vouched for by the record of its erasure or redaction).
    pub values_match: bool,
}

/// Checks an entry's content against its seal and `personal_digest` (the format-2 fields
/// digest) and gives the event digest its entry hash commits to.
pub fn check(event: &NewEvent, personal_digest: &Hash, seal: &Seal) -> Checked {
    match seal {
        Seal::V1(salt) => Checked {
            event_digest: chain::event_digest(event, personal_digest),
            // An erased format-1 entry has no salt; the caller checks its pseudonym instead.
            values_match: salt
                .is_none_or(|s| chain::Personal::of(event).digest(&s) == *personal_digest),
        },
        Seal::V1Frozen(digest) => Checked {
            event_digest: *digest,
            values_match: true,
        },
        Seal::V2(_) | Seal::V2Punctured(_) => Checked {
            event_digest: chain::event_digest_v2(event, personal_digest),
            values_match: fields_digest(event, seal) == Some(*personal_digest),
        },
    }
}

/// The format-2 fields digest of `event` under `seal` (`None` for a format-1 seal, or when the
/// event holds a value the punctured seal has no label for).
pub fn fields_digest(event: &NewEvent, seal: &Seal) -> Option<Hash> {
    let mut commitments = Commitments::default();
    let mut scratch = LeafScratch::default();
    match seal {
        Seal::V1(_) | Seal::V1Frozen(_) => return None,
        Seal::V2(salt) => {
            leaves(event, &mut scratch, |label, value| {
                commitments.push(label, commitment(&leaf_salt(salt, label), value));
            });
        }
        Seal::V2Punctured(stored) => {
            let mut unknown = false;
            leaves(event, &mut scratch, |label, value| {
                match stored.get(label) {
                    Some(Leaf::Salt(s)) => commitments.push(label, commitment(s, value)),
                    // An erased or redacted label keeps its commitment whatever it shows now.
                    Some(Leaf::Commitment(_)) => {}
                    None => unknown = true,
                }
            });
            if unknown {
                return None;
            }
            let shown: std::collections::HashSet<&str> =
                commitments.iter().map(|(label, _)| label).collect();
            // Every label still proven by its leaf salt must still be shown.
            if stored
                .iter()
                .any(|(l, leaf)| matches!(leaf, Leaf::Salt(_)) && !shown.contains(l.as_str()))
            {
                return None;
            }
            for (label, leaf) in stored {
                if let Leaf::Commitment(c) = leaf {
                    commitments.push(label, *c);
                }
            }
        }
    }
    commitments.sort();
    let mut h = Sha256::new();
    h.update(b"stele-fields-v2");
    for (label, commitment) in commitments.iter() {
        h.update((label.len() as u32).to_be_bytes());
        h.update(label.as_bytes());
        h.update(commitment);
    }
    Some(h.finalize().into())
}

/// Commitments with their labels, the labels side by side in one `String` (an entry's dozen
/// labels in one allocation rather than one each).
#[derive(Default)]
struct Commitments {
    labels: String,
    list: Vec<(std::ops::Range<usize>, Hash)>,
}

impl Commitments {
    fn push(&mut self, label: &str, commitment: Hash) {
        let at = self.labels.len();
        self.labels.push_str(label);
        self.list.push((at..self.labels.len(), commitment));
    }

    /// In the labels' byte order, as the format orders them (a stable sort, as before, should
    /// two labels ever be equal).
    fn sort(&mut self) {
        let labels = &self.labels;
        self.list
            .sort_by(|a, b| labels[a.0.clone()].cmp(&labels[b.0.clone()]));
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &Hash)> {
        self.list
            .iter()
            .map(|(label, commitment)| (&self.labels[label.clone()], commitment))
    }
}

/// A rewrite that would add a value the entry did not have, or that the seal cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RewriteError(pub String);

/// The seal of an entry after its content changed from `before` to `after` (an erasure or a
/// redaction): every value that changed or went keeps only its commitment, every other keeps
/// its leaf salt. A rewrite may change or remove values, never add one.
pub fn reseal(
    before: &NewEvent,
    personal_digest: &Hash,
    seal: &Seal,
    after: &NewEvent,
) -> Result<Seal, RewriteError> {
    let stored: BTreeMap<String, Leaf> = match seal {
        Seal::V1(_) => return Ok(Seal::V1Frozen(chain::event_digest(before, personal_digest))),
        Seal::V1Frozen(d) => return Ok(Seal::V1Frozen(*d)),
        Seal::V2(salt) => {
            let mut out = BTreeMap::new();
            leaves(before, &mut LeafScratch::default(), |label, _| {
                out.insert(label.to_string(), Leaf::Salt(leaf_salt(salt, label)));
            });
            out
        }
        Seal::V2Punctured(stored) => stored.clone(),
    };
    let mut scratch = LeafScratch::default();
    let mut old_values: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    leaves(before, &mut scratch, |label, value| {
        old_values.insert(label.to_string(), value.to_vec());
    });
    let mut new_values: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    leaves(after, &mut scratch, |label, value| {
        new_values.insert(label.to_string(), value.to_vec());
    });
    if let Some(added) = new_values.keys().find(|l| !old_values.contains_key(*l)) {
        return Err(RewriteError(format!("a rewrite cannot add {added}")));
    }
    let mut out = BTreeMap::new();
    for (label, leaf) in stored {
        let leaf = match (leaf, old_values.get(&label)) {
            (Leaf::Salt(s), Some(old)) if new_values.get(&label) != Some(old) => {
                Leaf::Commitment(commitment(&s, old))
            }
            (leaf, _) => leaf,
        };
        out.insert(label, leaf);
    }
    Ok(Seal::V2Punctured(out))
}

fn leaf_salt(salt: &Salt, label: &str) -> Hash {
    let mut h = Sha256::new();
    h.update(salt);
    h.update((label.len() as u32).to_be_bytes());
    h.update(label.as_bytes());
    h.finalize().into()
}

fn commitment(leaf_salt: &Hash, value: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(leaf_salt);
    h.update((value.len() as u32).to_be_bytes());
    h.update(value);
    h.finalize().into()
}

fn field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// Calls `f` with every erasable value of `event`: its label and its bytes (text as UTF-8; JSON
/// values, those of changes, metadata and origin, as canonical JSON). An absent value has no
/// leaf. `scratch` is reused for the labels and the JSON text, so that sealing and checking an
/// entry allocate nothing per value.
///
/// Labels: `actor.id`, `actor.name`, `actor.email`, `actor.href`, `actor.metadata.<key>`,
/// `context.ip`, `context.user_agent`, `context.location`, `context.reason`,
/// `context.impersonator.id`, `context.impersonator.email`, `description`, `entity.id`,
/// `entity.name`, `entity.href`, `entity.metadata.<key>`, `entity_ids.<i>`, `changes.<i>.old`,
/// `changes.<i>.new`, `metadata.<key>`, `related_entities.<i>.id` (and `.name`, `.href`,
/// `.metadata.<key>`), `origin.<key>`; `<i>` counts from 0.
pub fn leaves(event: &NewEvent, scratch: &mut LeafScratch, mut f: impl FnMut(&str, &[u8])) {
    let mut text = |label: &str, value: &Option<String>| {
        if let Some(v) = value {
            f(label, v.as_bytes());
        }
    };
    let a = &event.actor;
    text("actor.id", &a.id);
    text("actor.name", &a.name);
    text("actor.email", &a.email);
    text("actor.href", &a.href);
    let c = &event.context;
    text("context.ip", &c.ip);
    text("context.user_agent", &c.user_agent);
    text("context.location", &c.location);
    text("context.reason", &c.reason);
    if let Some(who) = &c.impersonator {
        text("context.impersonator.id", &who.id);
        text("context.impersonator.email", &who.email);
    }
    text("description", &event.description);
    if let Some(e) = &event.entity {
        text("entity.id", &e.id);
        text("entity.name", &e.name);
        text("entity.href", &e.href);
    }
    let LeafScratch { label, json } = scratch;
    // Writes a numbered or keyed label into `label` and hands it out with its value.
    let mut numbered =
        |parts: std::fmt::Arguments<'_>, value: &[u8], f: &mut dyn FnMut(&str, &[u8])| {
            use std::fmt::Write;
            label.clear();
            label.write_fmt(parts).expect("writing to a String");
            f(label, value);
        };
    for (i, id) in event.entity_ids.iter().enumerate() {
        numbered(format_args!("entity_ids.{i}"), id.as_bytes(), &mut f);
    }
    for (i, e) in event.related_entities.iter().enumerate() {
        for (part, value) in [("id", &e.id), ("name", &e.name), ("href", &e.href)] {
            if let Some(v) = value {
                numbered(
                    format_args!("related_entities.{i}.{part}"),
                    v.as_bytes(),
                    &mut f,
                );
            }
        }
    }
    let mut json_value = |parts: std::fmt::Arguments<'_>,
                          value: &serde_json::Value,
                          f: &mut dyn FnMut(&str, &[u8])| {
        json.clear();
        canonical_json_bytes(value, json);
        numbered(parts, json, f);
    };
    for (key, value) in &a.metadata {
        json_value(format_args!("actor.metadata.{key}"), value, &mut f);
    }
    if let Some(e) = &event.entity {
        for (key, value) in &e.metadata {
            json_value(format_args!("entity.metadata.{key}"), value, &mut f);
        }
    }
    for (i, e) in event.related_entities.iter().enumerate() {
        for (key, value) in &e.metadata {
            json_value(
                format_args!("related_entities.{i}.metadata.{key}"),
                value,
                &mut f,
            );
        }
    }
    for (i, change) in event.changes.iter().enumerate() {
        if let Some(old) = &change.old {
            json_value(format_args!("changes.{i}.old"), old, &mut f);
        }
        if let Some(new) = &change.new {
            json_value(format_args!("changes.{i}.new"), new, &mut f);
        }
    }
    for (key, value) in &event.metadata {
        json_value(format_args!("metadata.{key}"), value, &mut f);
    }
    for (key, value) in &event.origin {
        json_value(format_args!("origin.{key}"), value, &mut f);
    }
}

/// The buffers [`leaves`] writes its numbered and keyed labels and its JSON values into.
#[derive(Debug, Default)]
pub struct LeafScratch {
    label: String,
    json: Vec<u8>,
}

/// The entity types of the related entities, in order (committed in the clear: a type is not
/// erasable).
pub(crate) fn related_types(related: &[Entity]) -> impl Iterator<Item = &str> {
    related.iter().map(|e| e.kind.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::SealedEvent;
    use crate::erase::{Person, erase_person, redact_fields};
    use crate::event::{Actor, ActorType, Change, Context, Outcome};
    use serde_json::json;

    fn event() -> NewEvent {
        NewEvent {
            occurred_at: 1_767_322_245_678,
            action: "update".into(),
            detailed_action: Some("door.code".into()),
            channel: "default".into(),
            description: Some("Ada changed the door code".into()),
            outcome: Outcome::Success,
            actor: Actor {
                id: Some("u1".into()),
                name: Some("Ada".into()),
                email: Some("ada@example.com".into()),
                ..Actor::of_kind(ActorType::User)
            },
            entity: Some(Entity::new("Door", Some("d1".into()), Some("Front".into()))),
            entity_ids: vec!["d1".into()],
            context: Context {
                ip: Some("203.0.113.7".into()),
                correlation_id: Some("c1".into()),
                ..Context::default()
            },
            changes: vec![Change {
                field: "access_code".into(),
                old: Some(json!(1234)),
                new: Some(json!("5678")),
            }],
            metadata: [("site".to_string(), json!({"city": "Oslo"}))]
                .into_iter()
                .collect(),
            idempotency_key: None,
            origin: Default::default(),
            related_entities: vec![],
        }
    }

    fn check_sealed(sealed: &SealedEvent) -> Checked {
        check(&sealed.event, &sealed.personal_digest, &sealed.seal)
    }

    #[test]
    fn a_sealed_event_checks_and_any_changed_value_does_not() {
        let sealed = SealedEvent::seal(event(), [5; 16]);
        let ok = check_sealed(&sealed);
        assert!(ok.values_match);
        assert_eq!(ok.event_digest, sealed.event_digest);
        type Tamper = Box<dyn Fn(&mut NewEvent)>;
        let changes: Vec<Tamper> = vec![
            Box::new(|e| e.description = Some("x".into())),
            Box::new(|e| e.actor.email = None),
            Box::new(|e| e.context.ip = Some("::1".into())),
            Box::new(|e| e.changes[0].old = Some(json!("1234"))),
            Box::new(|e| e.changes[0].field = "code".into()),
            Box::new(|e| {
                e.metadata.insert("more".into(), json!(1));
            }),
            Box::new(|e| e.entity_ids.push("d2".into())),
            Box::new(|e| e.context.correlation_id = None),
            Box::new(|e| e.occurred_at += 1),
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut e = sealed.event.clone();
            change(&mut e);
            let c = check(&e, &sealed.personal_digest, &sealed.seal);
            assert!(
                !c.values_match || c.event_digest != sealed.event_digest,
                "change {i} went unnoticed"
            );
        }
    }

    #[test]
    fn a_redacted_or_erased_entry_still_checks_and_keeps_no_salt_for_what_went() {
        let sealed = SealedEvent::seal(event(), [5; 16]);
        let redacted = redact_fields(&sealed.event, &["changes.access_code".to_string()]).unwrap();
        let seal = reseal(
            &sealed.event,
            &sealed.personal_digest,
            &sealed.seal,
            &redacted,
        )
        .unwrap();
        let c = check(&redacted, &sealed.personal_digest, &seal);
        assert!(c.values_match && c.event_digest == sealed.event_digest);
        assert!(seal.rewritten());
        let Seal::V2Punctured(leaves) = &seal else {
            panic!("{seal:?}")
        };
        assert!(matches!(leaves["changes.0.old"], Leaf::Commitment(_)));
        assert!(matches!(leaves["description"], Leaf::Salt(_)));
        // What is still there is still proven.
        let mut tampered = redacted.clone();
        tampered.description = Some("Eve changed it".into());
        assert!(!check(&tampered, &sealed.personal_digest, &seal).values_match);
        // The stored form round-trips.
        assert_eq!(
            Seal::from_bytes(seal.to_bytes().as_deref()),
            Ok(seal.clone())
        );

        // An erasure after the redaction.
        let person = Person {
            id: Some("u1".into()),
            email: Some("ada@example.com".into()),
            name: Some("Ada".into()),
            other: vec![],
        };
        let erased = erase_person(&redacted, &person, "erased-9").unwrap();
        let seal2 = reseal(&redacted, &sealed.personal_digest, &seal, &erased).unwrap();
        let c = check(&erased, &sealed.personal_digest, &seal2);
        assert!(c.values_match && c.event_digest == sealed.event_digest);
        assert!(!format!("{erased:?}").contains("Ada"));
        // A rewrite cannot add a value.
        let mut added = erased.clone();
        added.context.reason = Some("new".into());
        assert!(reseal(&erased, &sealed.personal_digest, &seal2, &added).is_err());
    }

    #[test]
    fn format_1_entries_still_check_and_freeze_when_rewritten() {
        let sealed = SealedEvent::seal_format_1(event(), [5; 16]);
        let c = check_sealed(&sealed);
        assert!(c.values_match && c.event_digest == sealed.event_digest);
        assert_eq!(
            Seal::from_bytes(sealed.seal.to_bytes().as_deref()),
            Ok(sealed.seal.clone())
        );
        let redacted = redact_fields(&sealed.event, &["description".to_string()]).unwrap();
        let seal = reseal(
            &sealed.event,
            &sealed.personal_digest,
            &sealed.seal,
            &redacted,
        )
        .unwrap();
        let c = check(&redacted, &sealed.personal_digest, &seal);
        assert!(c.values_match && c.event_digest == sealed.event_digest && seal.rewritten());
    }

    #[test]
    fn malformed_seals_are_refused() {
        for bytes in [&[][..], &[9, 1, 2], &[2, 1], &[3, 0, 0, 0, 9, b'a']] {
            assert_eq!(
                Seal::from_bytes(Some(bytes)),
                Err(MalformedSeal),
                "{bytes:?}"
            );
        }
    }
}
