//! GDPR erasure of one person and redaction of fields of one entry: [`erase`] is the use case
//! `POST /v1/erasure` and `stele erase` both run, [`redact`] the one behind
//! `POST /v1/events/{id}/redactions`, so every door accepts and refuses the same requests.
//!
//! An erasure replaces the person, wherever an entry of the organization mentions them (as actor,
//! as entity, in descriptions, changes, metadata; `stele_core::erase::erase_person`), with a
//! stable pseudonym (keyed by the server's pseudonym secret, so the same person always gets the
//! same one and erasing twice changes nothing more); the erasure is recorded (System actor,
//! `compliance` channel) without naming them; the store then removes what is left of the old
//! values from its files; then their entries in the retention archive, if there is one, are
//! rewritten the same way.

use std::collections::HashMap;
use std::sync::Arc;

use stele_archive::ArchiveErasure;
use stele_core::chain::{
    RESERVED_DETAILED_ACTION_PREFIX, erasure_record, pseudonym, redaction_record,
};
use stele_core::erase::{Person, redact_fields};
use stele_core::time::Millis;
use stele_core::{Actor, ActorType};
use stele_store::{
    Erasure, ErasureOutcome, OrgKey, Redaction, RedactionOutcome, Store, StoreError,
};

use crate::random;
use crate::retention::ArchiveSink;
use crate::retention::archive_sink;

/// The longest identifier an erasure accepts (characters).
pub const MAX_ACTOR_CHARS: usize = 256;
/// How many `other` identifiers one erasure takes.
pub const MAX_OTHER_IDENTIFIERS: usize = 20;
/// How many fields one redaction names.
pub const MAX_REDACTED_FIELDS: usize = 50;
/// The longest reason an erasure keeps (characters).
pub const MAX_REASON_CHARS: usize = 1024;

/// Who to erase and why. At least one of `actor`, `id` and `email` is given; surrounding white
/// space is ignored.
#[derive(Default)]
pub struct ErasureRequest<'a> {
    /// An actor id or email (the request's first form; either is matched as an id or an email).
    pub actor: Option<&'a str>,
    pub id: Option<&'a str>,
    pub email: Option<&'a str>,
    /// Their name: replaced wherever it appears in text.
    pub name: Option<&'a str>,
    /// Other strings that identify them.
    pub other: &'a [String],
    /// Why (a ticket number, say); kept in the erasure's own entry.
    pub reason: Option<&'a str>,
}

/// Who asked, as the erasure's own entry says it.
pub enum Requester<'a> {
    /// An API key (its public id goes in the entry's context).
    ApiKey { id: &'a str },
    /// An operator at the command line (source `cli`).
    CommandLine,
}

/// The database erasure, and what it changed in the archive when one is configured.
#[derive(Debug)]
pub struct Erased {
    pub outcome: ErasureOutcome,
    pub archive: Option<ArchiveErasure>,
}

#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    /// The request is refused before anything is changed.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database erasure is made, but the archive was not rewritten. Repeating the request
    /// finishes it: the pseudonym is stable, and what is erased already stays as it is.
    #[error(
        "the database erasure is made ({erased_entries} entries), but the archive was not \
         rewritten: {message}"
    )]
    Archive {
        erased_entries: u64,
        message: String,
    },
}

/// The organization an erasure applies to: its store key and its public id (`org_…`), which the
/// pseudonym and the archive's files are keyed by.
#[derive(Clone, Copy)]
pub struct Org<'a> {
    pub key: OrgKey,
    pub id: &'a str,
}

/// Where copies of entries live outside the database, which an erasure reaches too.
pub struct Copies<'a> {
    /// The retention archive, if one is configured.
    pub archive: Option<Arc<dyn ArchiveSink>>,
    /// The export jobs' files (a data directory's `exports`).
    pub exports: &'a std::path::Path,
}

/// Erases one person from the organization's trail, its export files and its archive.
pub async fn erase(
    store: &dyn Store,
    copies: Copies<'_>,
    pseudonym_secret: &[u8; 32],
    org: Org<'_>,
    request: ErasureRequest<'_>,
    requester: Requester<'_>,
    now: Millis,
) -> Result<Erased, ErasureError> {
    let person = person_of(&request)?;
    if request
        .reason
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(ErasureError::Invalid {
            field: "reason",
            message: format!("must be at most {MAX_REASON_CHARS} characters"),
        });
    }
    // Keyed by the identifier the person is best known by, as erasures before `id` and `email`
    // existed keyed it by `actor`, so every erasure of one person shows one pseudonym.
    let key = [&person.id, &person.email]
        .into_iter()
        .flatten()
        .chain(person.other.first())
        .next()
        .expect("person_of requires an id, email or actor")
        .clone();
    let actor = key.as_str();
    let pseudonym = pseudonym(pseudonym_secret, org.id, actor);
    let mut record = erasure_record(&pseudonym, request.reason, now);
    match requester {
        Requester::ApiKey { id } => record.context.api_key_id = Some(id.to_string()),
        Requester::CommandLine => record.context.source = Some("cli".into()),
    }
    let outcome = store
        .erase_person(
            org.key,
            Erasure {
                person: person.clone(),
                pseudonym: pseudonym.clone(),
                record,
                salt: random::salt(),
            },
        )
        .await?;
    // Export files already written hold the old values until their links end: they go.
    let needles = stele_store::rewrite::needles(&person);
    crate::export::jobs::remove_files_mentioning(store, copies.exports, org.key, &needles)
        .await
        .map_err(|e| ErasureError::Store(StoreError::Other(format!("export files: {e}"))))?;
    let archive = archive_sink::erase(copies.archive, org.id, &person, &pseudonym, now)
        .await
        .map_err(|message| ErasureError::Archive {
            erased_entries: outcome.erased_entries,
            message,
        })?;
    Ok(Erased { outcome, archive })
}

/// The person a request names, its identifiers checked.
fn person_of(request: &ErasureRequest<'_>) -> Result<Person, ErasureError> {
    fn one(field: &'static str, value: Option<&str>) -> Result<Option<String>, ErasureError> {
        let Some(value) = value else { return Ok(None) };
        let value = value.trim();
        if value.is_empty() || value.chars().count() > MAX_ACTOR_CHARS {
            return Err(ErasureError::Invalid {
                field,
                message: format!("must be 1 to {MAX_ACTOR_CHARS} characters"),
            });
        }
        Ok(Some(value.to_string()))
    }
    let actor = one("actor", request.actor)?;
    let id = one("id", request.id)?;
    let email = one("email", request.email)?;
    let name = one("name", request.name)?;
    if actor.is_none() && id.is_none() && email.is_none() {
        return Err(ErasureError::Invalid {
            field: "id",
            message: "name the person by `id`, `email` or `actor` (a name alone could be \
                      anyone's)"
                .into(),
        });
    }
    if request.other.len() > MAX_OTHER_IDENTIFIERS {
        return Err(ErasureError::Invalid {
            field: "other",
            message: format!("at most {MAX_OTHER_IDENTIFIERS} identifiers"),
        });
    }
    let mut other: Vec<String> = actor.into_iter().collect();
    for value in request.other {
        other.extend(one("other", Some(value))?);
    }
    Ok(Person {
        id,
        email,
        name,
        other,
    })
}

/// Which fields of which entry to redact, and why.
pub struct RedactionRequest<'a> {
    /// The entry's id.
    pub id: &'a str,
    /// Paths as `stele_core::erase::redact_fields` takes them (`changes.access_code`,
    /// `metadata.token`, `description`, …).
    pub fields: &'a [String],
    pub reason: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum RedactionError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// The organization has no entry with that id (in the database; an archived entry is
    /// rewritten only by an erasure).
    #[error("no such entry")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Redacts fields of one entry of the organization: each becomes `[REDACTED]`, the entry keeps
/// only the commitments of the old values (so the chain still verifies), the redaction is
/// recorded as an entry of its own (who asked, why, which fields), and the store removes what is
/// left of the old values from its files.
pub async fn redact(
    store: &dyn Store,
    org: OrgKey,
    request: RedactionRequest<'_>,
    requester: Requester<'_>,
    now: Millis,
) -> Result<RedactionOutcome, RedactionError> {
    let invalid = |field, message: String| RedactionError::Invalid { field, message };
    if request.fields.is_empty() || request.fields.len() > MAX_REDACTED_FIELDS {
        return Err(invalid(
            "fields",
            format!("must name 1 to {MAX_REDACTED_FIELDS} fields"),
        ));
    }
    if request
        .reason
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(invalid(
            "reason",
            format!("must be at most {MAX_REASON_CHARS} characters"),
        ));
    }
    let entry = store
        .get(org, request.id)
        .await?
        .ok_or(RedactionError::NotFound)?;
    if entry
        .event
        .detailed_action
        .as_deref()
        .is_some_and(|d| d.starts_with(RESERVED_DETAILED_ACTION_PREFIX))
    {
        return Err(invalid(
            "id",
            "Stele's own records (erasures, redactions, …) cannot be redacted".into(),
        ));
    }
    // Checked here so a wrong path is a 400 naming it; the store applies it again in its
    // transaction.
    redact_fields(&entry.event, request.fields).map_err(|e| invalid("fields", e.to_string()))?;
    let mut record = redaction_record(
        &entry.id,
        request.fields,
        request.reason,
        Actor::of_kind(ActorType::System),
        now,
    );
    match requester {
        Requester::ApiKey { id } => record.context.api_key_id = Some(id.to_string()),
        Requester::CommandLine => record.context.source = Some("cli".into()),
    }
    let outcome = store
        .redact(
            org,
            Redaction {
                id: entry.id.clone(),
                fields: request.fields.to_vec(),
                record,
                salt: random::salt(),
            },
        )
        .await
        .map_err(|e| match e {
            StoreError::NotFound => RedactionError::NotFound,
            e => RedactionError::Store(e),
        })?;
    Ok(outcome)
}

/// One redaction of an entry, as its page and `GET /v1/events/{id}` show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RedactionNote {
    /// When it was made (RFC 3339).
    pub at: String,
    pub fields: Vec<String>,
    pub reason: Option<String>,
    /// The entry that records it.
    pub record: String,
}

/// The redactions recorded for one entry, oldest first, read from their records (the
/// `stele.redaction` entries whose entity is this entry).
pub async fn redactions_of(
    store: &dyn Store,
    org: OrgKey,
    entry_id: &str,
) -> Result<Vec<RedactionNote>, StoreError> {
    let mut all = redaction_notes(store, org, Some(entry_id)).await?;
    Ok(all.remove(entry_id).unwrap_or_default())
}

/// Every redaction recorded in the organization, by the id of the entry it redacted, each
/// entry's oldest first: for an export, which would otherwise ask once per rewritten entry (and
/// an erasure can rewrite tens of thousands).
pub async fn redactions_by_entry(
    store: &dyn Store,
    org: OrgKey,
) -> Result<HashMap<String, Vec<RedactionNote>>, StoreError> {
    redaction_notes(store, org, None).await
}

/// Walks the organization's redaction records (those about `entry_id` alone, if given), newest
/// first, into notes by redacted entry, oldest first.
async fn redaction_notes(
    store: &dyn Store,
    org: OrgKey,
    entry_id: Option<&str>,
) -> Result<HashMap<String, Vec<RedactionNote>>, StoreError> {
    use stele_core::filter::{DetailedActionMatch, EventFilter};
    let mut request = stele_core::PageRequest {
        filter: EventFilter {
            detailed_action: Some(DetailedActionMatch::Exact(
                stele_core::chain::REDACTION_DETAILED_ACTION.into(),
            )),
            entity_id: entry_id.map(str::to_string),
            actor_types: ActorType::ALL.to_vec(),
            ..EventFilter::default()
        },
        limit: 1000,
        cursor: None,
    };
    let mut notes: HashMap<String, Vec<RedactionNote>> = HashMap::new();
    loop {
        let page = store.list(org, &request).await?;
        for record in page.entries {
            let Some(redacted) = record.event.entity.as_ref().and_then(|e| e.id.clone()) else {
                continue;
            };
            if entry_id.is_some_and(|id| id != redacted) {
                continue;
            }
            notes.entry(redacted).or_default().push(RedactionNote {
                at: stele_core::time::format_rfc3339(record.event.occurred_at),
                fields: match record.event.metadata.get("fields") {
                    Some(serde_json::Value::Array(items)) => items
                        .iter()
                        .filter_map(|f| f.as_str().map(str::to_string))
                        .collect(),
                    _ => vec![],
                },
                reason: record.event.context.reason.clone(),
                record: record.id,
            });
        }
        match page.next_cursor {
            Some(cursor) => request.cursor = Some(cursor),
            None => break,
        }
    }
    for list in notes.values_mut() {
        list.reverse();
    }
    Ok(notes)
}
