//! GDPR erasure of one person: [`erase`] is the use case `POST /v1/erasure` and `stele erase`
//! both run, so both accept and refuse the same requests.
//!
//! The person's id, name, email, IP and user agent are replaced in every entry of the
//! organization with a stable pseudonym (keyed by the server's pseudonym secret, so the same
//! person always gets the same one and erasing twice changes nothing more); the erasure is
//! recorded (System actor, `compliance` channel) without naming them; then their entries in the
//! retention archive, if there is one, are rewritten the same way.

use std::sync::Arc;

use stele_archive::ArchiveErasure;
use stele_core::chain::{erasure_record, pseudonym};
use stele_core::time::Millis;
use stele_store::{Erasure, ErasureOutcome, OrgKey, Store, StoreError};

use crate::random;
use crate::retention::ArchiveSink;
use crate::retention::archive_sink;

/// The longest actor identifier an erasure accepts (characters).
pub const MAX_ACTOR_CHARS: usize = 256;
/// The longest reason an erasure keeps (characters).
pub const MAX_REASON_CHARS: usize = 1024;

/// What to erase and why.
pub struct ErasureRequest<'a> {
    /// The actor id or email whose identity is erased (surrounding white space is ignored).
    pub actor: &'a str,
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

/// Erases one person from the organization's trail and its archive.
pub async fn erase(
    store: &dyn Store,
    archive: Option<Arc<dyn ArchiveSink>>,
    pseudonym_secret: &[u8; 32],
    org: Org<'_>,
    request: ErasureRequest<'_>,
    requester: Requester<'_>,
    now: Millis,
) -> Result<Erased, ErasureError> {
    let actor = request.actor.trim();
    if actor.is_empty() || actor.chars().count() > MAX_ACTOR_CHARS {
        return Err(ErasureError::Invalid {
            field: "actor",
            message: format!("must be 1 to {MAX_ACTOR_CHARS} characters"),
        });
    }
    if request
        .reason
        .is_some_and(|r| r.chars().count() > MAX_REASON_CHARS)
    {
        return Err(ErasureError::Invalid {
            field: "reason",
            message: format!("must be at most {MAX_REASON_CHARS} characters"),
        });
    }
    let pseudonym = pseudonym(pseudonym_secret, org.id, actor);
    let mut record = erasure_record(&pseudonym, request.reason, now);
    match requester {
        Requester::ApiKey { id } => record.context.api_key_id = Some(id.to_string()),
        Requester::CommandLine => record.context.source = Some("cli".into()),
    }
    let outcome = store
        .erase_actor(
            org.key,
            Erasure {
                actor: actor.to_string(),
                pseudonym: pseudonym.clone(),
                record,
                salt: random::salt(),
            },
        )
        .await?;
    let archive = archive_sink::erase(archive, org.id, actor, &pseudonym, now)
        .await
        .map_err(|message| ErasureError::Archive {
            erased_entries: outcome.erased_entries,
            message,
        })?;
    Ok(Erased { outcome, archive })
}
