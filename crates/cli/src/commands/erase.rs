//! `stele erase`: GDPR erasure from the command line, the same use case as `POST /v1/erasure`.

use std::path::PathBuf;

use stele_core::time::now_millis;

use super::open::{find_org, open_existing};
use crate::{DataDir, KeyFile, PersonArgs};

pub(crate) async fn erase(
    org: String,
    person: PersonArgs,
    reason: Option<String>,
    archive_dir: Option<PathBuf>,
    key_file: KeyFile,
    data: DataDir,
) -> anyhow::Result<()> {
    use stele_service::erasure::{self, ErasureError, ErasureRequest, Org, Requester};
    let key_path = key_file.path(&data);
    let key = stele_service::secrets::load_signing_key(&key_path)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no signing key at {}: start `stele serve` on this data directory once, or give the \
             servers' key with --signing-key-file",
            key_path.display()
        )
    })?;
    let secret = stele_service::secrets::pseudonym_secret(&key);
    let store = open_existing(&data).await?;
    let org = find_org(store.as_ref(), &org).await?;
    let archive = stele_service::retention::archive_sink::sink(archive_dir.as_deref());
    let exports = data.data_dir.join(stele_service::export::jobs::EXPORTS_DIR);
    let erased = erasure::erase(
        store.as_ref(),
        erasure::Copies {
            archive,
            exports: &exports,
        },
        &secret,
        Org {
            key: org.key,
            id: &org.id,
        },
        ErasureRequest {
            actor: person.actor.as_deref(),
            id: person.id.as_deref(),
            email: person.email.as_deref(),
            name: person.name.as_deref(),
            other: &person.other,
            reason: reason.as_deref(),
        },
        Requester::CommandLine,
        now_millis(),
    )
    .await;
    let erased = match erased {
        Ok(erased) => erased,
        Err(ErasureError::Invalid { field, message }) => anyhow::bail!("--{field}: {message}"),
        Err(ErasureError::Store(e)) => return Err(e.into()),
        Err(ErasureError::Archive {
            erased_entries,
            message,
        }) => anyhow::bail!(
            "erased {erased_entries} entries in {}, but the archive was not rewritten (the \
             database erasure is made; run this again): {message}",
            org.name
        ),
    };
    let outcome = erased.outcome;
    println!(
        "erased {} entries in {}; they now show {}; the erasure is entry {} (seq {}); the \
         database files were cleaned of the old values in {} ms",
        outcome.erased_entries,
        org.name,
        outcome.pseudonym,
        outcome.record.id,
        outcome.record.seq,
        outcome.cleanup.duration_ms
    );
    if let Some(a) = erased.archive {
        println!(
            "erased {} archived entries, rewriting {} segments",
            a.entries, a.segments
        );
    }
    Ok(())
}
