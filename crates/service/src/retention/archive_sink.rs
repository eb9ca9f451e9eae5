//! The retention archive target: entries go to `stele_archive` (zstd NDJSON and a manifest in a
//! directory) before the database deletes them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use stele_archive::ArchiveErasure;
use stele_core::Seq;
use stele_core::erase::Person;
use stele_core::time::Millis;
use stele_store::RetiredEntry;

use crate::retention::ArchiveSink;

/// An archive directory. It is opened (created if missing) at each write, so a directory that
/// was unavailable at start is used once it is back, and a failure is reported by the run that
/// met it.
pub struct DirectoryArchive {
    root: PathBuf,
}

impl DirectoryArchive {
    fn open(&self) -> Result<stele_archive::Archive, String> {
        stele_archive::Archive::open(&self.root).map_err(|e| self.error(e))
    }

    fn error(&self, e: impl std::fmt::Display) -> String {
        format!("{}: {e}", self.root.display())
    }
}

impl ArchiveSink for DirectoryArchive {
    fn write(&self, entries: &[RetiredEntry], now: Millis) -> Result<(), String> {
        self.open()?
            .write_segment(entries, now)
            .map(|_| ())
            .map_err(|e| self.error(e))
    }

    fn erase(
        &self,
        org_id: &str,
        person: &Person,
        pseudonym: &str,
        now: Millis,
    ) -> Result<ArchiveErasure, String> {
        self.open()?
            .erase(org_id, person, pseudonym, now)
            .map_err(|e| self.error(e))
    }

    fn erase_seqs(
        &self,
        org_id: &str,
        pseudonyms: &BTreeMap<Seq, String>,
        now: Millis,
    ) -> Result<ArchiveErasure, String> {
        self.open()?
            .erase_seqs(org_id, pseudonyms, now)
            .map_err(|e| self.error(e))
    }
}

/// After the database erased a person, the same in the archive (if one is configured), on a
/// blocking thread. The database goes first: an entry pruned meanwhile is either archived before
/// the database erasure (and found here) or archived already erased.
pub async fn erase(
    archive: Option<Arc<dyn ArchiveSink>>,
    org_id: &str,
    person: &Person,
    pseudonym: &str,
    now: Millis,
) -> Result<Option<ArchiveErasure>, String> {
    let Some(archive) = archive else {
        return Ok(None);
    };
    let (org_id, person, pseudonym) = (org_id.to_string(), person.clone(), pseudonym.to_string());
    tokio::task::spawn_blocking(move || archive.erase(&org_id, &person, &pseudonym, now))
        .await
        .map_err(|e| format!("the archive erasure stopped: {e}"))?
        .map(Some)
}

/// The configured archive, if any.
pub fn sink(dir: Option<&Path>) -> Option<Arc<dyn ArchiveSink>> {
    dir.map(|root| {
        Arc::new(DirectoryArchive {
            root: root.to_path_buf(),
        }) as Arc<dyn ArchiveSink>
    })
}
