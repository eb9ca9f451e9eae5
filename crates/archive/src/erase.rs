//! GDPR erasure reaches the archive: the entries of a person that retention already moved out of
//! the database are pseudonymised in their segments as the database erasure does to its own.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::Path;

use stele_core::erase::{Person, erase_person};
use stele_core::seal;
use stele_core::time::Millis;
use stele_core::{NewEvent, Seq};
use stele_store::RetiredEntry;

use crate::{Archive, ArchiveError, SegmentInfo, io_error, line, verify};

/// What an erasure changed in the archive.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveErasure {
    /// Segments rewritten (each holds at least one of the person's entries).
    pub segments: u64,
    /// Archived entries that were rewritten.
    pub entries: u64,
}

impl Archive {
    /// Erases one person from an organization's archived entries as the database erasure does
    /// to its own (`stele_core::erase::erase_person`): every line that mentions them is
    /// rewritten with their pseudonym and resealed (`stele_core::seal::reseal`: what changed
    /// keeps only its commitment), and marked erased. Hashes do not change, so the archive still
    /// verifies.
    ///
    /// A segment holding such a line is checked first (a damaged or altered segment is refused,
    /// not rewritten: rewriting would make it look sound), then written anew under the next
    /// number, read back and checked; the manifest then lists the new file in the old one's
    /// place, and the old file is removed. Until that removal, the old file stays in the
    /// directory unlisted (`stele archive verify` reports it), so an interrupted erasure is seen
    /// and can be run again.
    pub fn erase(
        &self,
        org_id: &str,
        person: &Person,
        pseudonym: &str,
        now: Millis,
    ) -> Result<ArchiveErasure, ArchiveError> {
        // How each identifier appears inside a line's JSON: a segment holding none of them
        // (ignoring ASCII case) needs no closer look.
        let needles: Vec<Vec<u8>> = [&person.id, &person.email, &person.name]
            .into_iter()
            .flatten()
            .chain(&person.other)
            .map(|id| {
                let quoted = serde_json::to_string(id).expect("a string serializes");
                quoted[1..quoted.len() - 1]
                    .to_ascii_lowercase()
                    .into_bytes()
            })
            .filter(|n| !n.is_empty())
            .collect();
        self.rewrite(
            org_id,
            |path, _| mentions(path, &needles),
            |r| erase_person(&r.entry.event, person, pseudonym),
            now,
        )
    }

    /// Erases the archived entries with these `seq`s, each with its pseudonym, as [`erase`] does
    /// by identifier. For entries a recorded erasure lists (its `entity_ids`) that reached the
    /// archive after the erasure looked there.
    ///
    /// [`erase`]: Archive::erase
    pub fn erase_seqs(
        &self,
        org_id: &str,
        pseudonyms: &BTreeMap<Seq, String>,
        now: Millis,
    ) -> Result<ArchiveErasure, ArchiveError> {
        self.rewrite(
            org_id,
            |_, s| Ok(pseudonyms.range(s.first_seq..=s.last_seq).next().is_some()),
            |r| match r.erased {
                true => None,
                // The archived copy of an entry the database erasure rewrote: its own actor is
                // who was erased (an erasure's catch-up knows only the pseudonym).
                false => pseudonyms.get(&r.entry.seq).and_then(|pseudonym| {
                    let a = &r.entry.event.actor;
                    let person = Person {
                        id: a.id.clone(),
                        email: a.email.clone(),
                        name: a.name.clone(),
                        other: vec![],
                    };
                    erase_person(&r.entry.event, &person, pseudonym)
                }),
            },
            now,
        )
    }

    /// Rewrites the organization's segments that `candidate` may concern and that hold lines
    /// `rewritten` gives new content for (see [`Archive::erase`]).
    fn rewrite(
        &self,
        org_id: &str,
        candidate: impl Fn(&Path, &SegmentInfo) -> Result<bool, ArchiveError>,
        rewritten: impl Fn(&RetiredEntry) -> Option<NewEvent>,
        now: Millis,
    ) -> Result<ArchiveErasure, ArchiveError> {
        let _writing = self.lock()?;
        let mut outcome = ArchiveErasure::default();
        let mut manifest = self.manifest()?;
        self.remove_temp_files()?;
        for i in 0..manifest.segments.len() {
            let old = manifest.segments[i].clone();
            if old.org_id != org_id {
                continue;
            }
            let path = self.root.join(&old.file);
            if !candidate(&path, &old)? {
                continue;
            }
            let mut problems = verify::Problems::default();
            verify::check_segment(&path, &old, &mut problems);
            if let Some(p) = problems.list.first() {
                return Err(ArchiveError::Rejected(format!(
                    "{} does not verify, so it was not rewritten: {p}",
                    old.file
                )));
            }
            let mut entries = read_segment(&path)?;
            let mut erased = 0;
            for r in entries.iter_mut() {
                let Some(after) = rewritten(r) else {
                    continue;
                };
                r.seal = seal::reseal(&r.entry.event, &r.personal_digest, &r.seal, &after)
                    .map_err(|e| ArchiveError::Rejected(format!("seq {}: {e}", r.entry.seq)))?;
                r.entry.event = after;
                r.erased = true;
                erased += 1;
            }
            if erased == 0 {
                continue;
            }
            let new = self.place_segment(&manifest, &entries, now)?;
            manifest.segments[i] = new;
            self.write_manifest(&manifest)?;
            fs::remove_file(&path).map_err(io_error(&path))?;
            crate::sync_dir(&self.root)?;
            outcome.segments += 1;
            outcome.entries += erased;
        }
        Ok(outcome)
    }
}

/// Whether any line of the segment holds one of `needles` (lowercase), ignoring ASCII case: a
/// quick scan before the segment is checked and decoded.
fn mentions(path: &Path, needles: &[Vec<u8>]) -> Result<bool, ArchiveError> {
    let file = File::open(path).map_err(io_error(path))?;
    let reader = BufReader::new(zstd::Decoder::new(file).map_err(io_error(path))?);
    for line in reader.split(b'\n') {
        let line = line.map_err(io_error(path))?;
        let line = line.to_ascii_lowercase();
        if needles
            .iter()
            .any(|n| line.windows(n.len()).any(|w| w == n.as_slice()))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Every line of a segment that was checked already, decoded.
fn read_segment(path: &Path) -> Result<Vec<RetiredEntry>, ArchiveError> {
    let file = File::open(path).map_err(io_error(path))?;
    let reader = BufReader::new(zstd::Decoder::new(file).map_err(io_error(path))?);
    let mut entries = Vec::new();
    for line in reader.split(b'\n') {
        let line = line.map_err(io_error(path))?;
        let decoded = serde_json::from_slice(&line)
            .map_err(|e| e.to_string())
            .and_then(|value| line::decode(&value))
            .map_err(|e| ArchiveError::Rejected(format!("{}: {e}", path.display())))?;
        entries.push(RetiredEntry {
            org_id: decoded.org_id,
            entry: decoded.entry,
            prev_hash: decoded.chain.prev_hash,
            hash: decoded.chain.hash,
            personal_digest: decoded.chain.personal_digest,
            seal: decoded.chain.seal,
            erased: decoded.chain.erased,
        });
    }
    Ok(entries)
}
