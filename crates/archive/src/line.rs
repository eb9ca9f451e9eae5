//! One archive line: an entry as the API shows it plus the chain values that prove it, and the
//! checks one line allows on its own.

use serde_json::{Map, Value};
use stele_core::chain::{self, Personal};
use stele_core::merkle::{Hash, from_hex, to_hex};
use stele_core::seal::{self, Seal};
use stele_core::{Entry, Seq};

use crate::ProblemKind;

/// The chain values stored beside an entry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Chain {
    pub prev_hash: Hash,
    pub hash: Hash,
    pub personal_digest: Hash,
    pub seal: Seal,
    pub erased: bool,
}

/// The line's JSON object: `org_id` first, then the entry exactly as `Entry::to_json` gives it,
/// then the chain values in hex.
pub(crate) fn encode(org_id: &str, entry: &Entry, chain: &Chain) -> Value {
    let mut line = Map::with_capacity(24);
    line.insert("org_id".into(), org_id.into());
    if let Value::Object(fields) = entry.to_json() {
        line.extend(fields);
    }
    line.insert("prev_hash".into(), to_hex(&chain.prev_hash).into());
    line.insert("hash".into(), to_hex(&chain.hash).into());
    line.insert(
        "personal_digest".into(),
        to_hex(&chain.personal_digest).into(),
    );
    line.insert(
        "salt".into(),
        chain.seal.to_hex().map_or(Value::Null, Value::from),
    );
    line.insert("erased".into(), chain.erased.into());
    Value::Object(line)
}

/// A decoded line.
pub(crate) struct Decoded {
    pub org_id: String,
    pub entry: Entry,
    pub chain: Chain,
}

/// Reads a line back. Refuses a line that is not exactly what [`encode`] makes of its own
/// values: a key the hash does not cover, or a value in another form, would show data that the
/// archive does not prove.
pub(crate) fn decode(value: &Value) -> Result<Decoded, String> {
    let object = value.as_object().ok_or("not a JSON object")?;
    let text = |key: &str| -> Result<&str, String> {
        object
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("`{key}` is missing or not a string"))
    };
    let hash = |key: &str| -> Result<Hash, String> {
        from_hex(text(key)?).ok_or_else(|| format!("`{key}` is not 64 hex digits"))
    };
    let org_id = text("org_id")?.to_string();
    let seal = match object.get("salt") {
        Some(Value::Null) => Seal::V1(None),
        Some(Value::String(s)) => {
            Seal::from_hex(Some(s)).map_err(|_| "`salt` is not a seal in hex, or null")?
        }
        _ => return Err("`salt` is missing or neither a string nor null".into()),
    };
    let erased = object
        .get("erased")
        .and_then(Value::as_bool)
        .ok_or("`erased` is missing or not true or false")?;
    let chain = Chain {
        prev_hash: hash("prev_hash")?,
        hash: hash("hash")?,
        personal_digest: hash("personal_digest")?,
        seal,
        erased,
    };
    let entry = Entry::from_json(value).ok_or("not an entry as the API shows it")?;
    let canonical = encode(&org_id, &entry, &chain);
    if &canonical != value {
        return Err(match first_difference(object, &canonical) {
            Some(key) => format!(
                "`{key}` is not as Stele writes it: the line shows something its hash does not cover"
            ),
            None => "the line is not as Stele writes it".into(),
        });
    }
    Ok(Decoded {
        org_id,
        entry,
        chain,
    })
}

fn first_difference(line: &Map<String, Value>, canonical: &Value) -> Option<String> {
    let canonical = canonical.as_object()?;
    line.iter()
        .find(|(k, v)| canonical.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .or_else(|| canonical.keys().find(|k| !line.contains_key(*k)).cloned())
}

/// What one line proves on its own: for `seq` 1 the organization's genesis as `prev_hash`; the
/// personal fields against their salted digest (or, once erased, that nothing but a pseudonym is
/// left); the entry's hash recomputed from its content, its `prev_hash` and its personal digest.
pub(crate) fn check(
    org_id: &str,
    entry: &Entry,
    chain: &Chain,
) -> Result<(), (ProblemKind, String)> {
    if entry.seq < Seq::FIRST {
        return Err((
            ProblemKind::Malformed,
            format!("seq {} is not positive", entry.seq),
        ));
    }
    if entry.seq == Seq::FIRST && chain.prev_hash != chain::genesis(org_id) {
        return Err((
            ProblemKind::BrokenLink,
            "the first entry of the organization does not start from its genesis hash".into(),
        ));
    }
    let checked = seal::check(&entry.event, &chain.personal_digest, &chain.seal);
    match &chain.seal {
        Seal::V1(None) => {
            let personal = Personal::of(&entry.event);
            let pseudonym_only = Personal {
                actor_id: personal.actor_id.clone(),
                ..Personal::default()
            };
            let is_pseudonym = personal
                .actor_id
                .as_deref()
                .is_some_and(|id| id.starts_with("erased-"));
            if !chain.erased {
                return Err((
                    ProblemKind::PersonalMismatch,
                    "the entry was not erased but has no salt: its personal fields are not proven"
                        .into(),
                ));
            }
            if personal != pseudonym_only || !is_pseudonym {
                return Err((
                    ProblemKind::PersonalMismatch,
                    "the entry is marked erased but shows personal fields other than a pseudonym"
                        .into(),
                ));
            }
        }
        seal if seal.rewritten() && !chain.erased => {
            return Err((
                ProblemKind::PersonalMismatch,
                "the entry has values removed but is not marked erased or redacted".into(),
            ));
        }
        _ if !checked.values_match => {
            return Err((
                ProblemKind::PersonalMismatch,
                "its values (actor, context, description, entity, changes or metadata) no longer \
                 match their salted digest"
                    .into(),
            ));
        }
        _ => {}
    }
    let digest = checked.event_digest;
    let recomputed = chain::entry_hash(
        &chain.prev_hash,
        org_id,
        entry.seq,
        &entry.id,
        entry.recorded_at,
        &digest,
    );
    if recomputed != chain.hash {
        return Err((
            ProblemKind::HashMismatch,
            "its content no longer matches its hash".into(),
        ));
    }
    Ok(())
}
