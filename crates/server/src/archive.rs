//! The retention archive target: entries go to `stele_archive` (zstd NDJSON and a manifest in a
//! directory) before the database deletes them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use stele_core::time::Millis;
use stele_store::RetiredEntry;

use crate::retention::ArchiveSink;

/// An archive directory. It is opened (created if missing) at each write, so a directory that
/// was unavailable at start is used once it is back, and a failure is reported by the run that
/// met it.
pub struct DirectoryArchive {
    root: PathBuf,
}

impl ArchiveSink for DirectoryArchive {
    fn write(&self, entries: &[RetiredEntry], now: Millis) -> Result<(), String> {
        let archive = stele_archive::Archive::open(&self.root)
            .map_err(|e| format!("{}: {e}", self.root.display()))?;
        archive
            .write_segment(entries, now)
            .map(|_| ())
            .map_err(|e| format!("{}: {e}", self.root.display()))
    }
}

/// The configured archive, if any.
pub fn sink(dir: Option<&Path>) -> Option<Arc<dyn ArchiveSink>> {
    dir.map(|root| {
        Arc::new(DirectoryArchive {
            root: root.to_path_buf(),
        }) as Arc<dyn ArchiveSink>
    })
}
