//! The retention archive: before the retention prune deletes entries, the server writes every
//! entry leaving the database here, so the trail stays provable without the database.
//!
//! An archive is a directory (docs/archive.md describes it for auditors):
//!
//! ```text
//! manifest.json                                       the segments, their counts and chain anchors
//! 000001-org_…-1-1500.ndjson.zst                      one segment: one organization's entries
//! 000002-org_…-1501-3000.ndjson.zst                   …
//! ```
//!
//! A segment is zstd-compressed NDJSON, one entry per line in ascending `seq`: the entry as the
//! API shows it plus `org_id`, `prev_hash`, `hash`, `personal_digest`, `salt` and `erased`, enough
//! to recompute its hash. The manifest records, per segment, the file's size and SHA-256, the
//! entry count, the first and last `seq`, the first entry's `prev_hash` and the last entry's
//! `hash`. [`verify`] checks a directory against its manifest without the database.
//!
//! Writing is durable and all-or-nothing per segment: the file is written aside, synced, checked
//! by reading it back, renamed into place and the directory synced; then the manifest is rewritten
//! the same way. Writers (a prune's segment, an erasure's rewrite) take an exclusive lock on the
//! directory, so two of them, in one process or in two, never interleave their manifest updates.

mod erase;
mod line;
mod verify;

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stele_core::Seq;
use stele_core::merkle::Hash;
use stele_core::time::Millis;
use stele_store::RetiredEntry;

pub use erase::ArchiveErasure;
pub use verify::{ArchiveReport, OrgSummary, Problem, ProblemKind, verify};

/// The manifest's file name, in the archive directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// The manifest's `format`: the version of the whole layout (manifest, file names, lines).
pub const FORMAT: &str = "stele-archive-v1";
/// Every segment file name ends with this.
pub const SEGMENT_SUFFIX: &str = ".ndjson.zst";
/// Files being written end with this until they are renamed into place.
const TEMP_SUFFIX: &str = ".tmp";
/// zstd's default level: a fair ratio for NDJSON at a modest CPU cost during a prune.
const LEVEL: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// Reading or writing `path` failed (the message includes the OS error).
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    /// The manifest is missing, not JSON, of another format, or inconsistent.
    #[error("{}: {message}", path.display())]
    Manifest { path: PathBuf, message: String },
    /// `write_segment` refused the entries; nothing was written.
    #[error("not archived: {0}")]
    Rejected(String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |error| ArchiveError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// What the manifest records about one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// The file's name in the archive directory.
    pub file: String,
    /// The organization's public id (`org_…`).
    pub org_id: String,
    /// How many entries (lines) the file holds.
    pub entries: u64,
    pub first_seq: Seq,
    pub last_seq: Seq,
    /// The first entry's `prev_hash`: where this segment attaches to the chain before it.
    #[serde(with = "hex_hash")]
    pub first_prev_hash: Hash,
    /// The last entry's `hash`: what the chain after this segment continues from.
    #[serde(with = "hex_hash")]
    pub last_hash: Hash,
    /// SHA-256 of the compressed file.
    #[serde(with = "hex_hash")]
    pub sha256: Hash,
    /// Size of the compressed file in bytes.
    pub bytes: u64,
    /// When it was written (RFC 3339 in the manifest).
    #[serde(with = "rfc3339")]
    pub written_at: Millis,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// In the order they were written.
    pub segments: Vec<SegmentInfo>,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            format: FORMAT.to_string(),
            segments: Vec::new(),
        }
    }
}

/// Reads `DIR/manifest.json`; `Ok(None)` when there is none.
pub fn read_manifest(root: &Path) -> Result<Option<Manifest>, ArchiveError> {
    let path = root.join(MANIFEST_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(&path)(e)),
    };
    let bad = |message: String| ArchiveError::Manifest {
        path: path.clone(),
        message,
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    match value.get("format").and_then(|f| f.as_str()) {
        Some(FORMAT) => {}
        Some(other) => {
            return Err(bad(format!(
                "format `{other}` is not one this Stele reads ({FORMAT})"
            )));
        }
        None => return Err(bad("no `format`: not a Stele archive manifest".into())),
    }
    let manifest: Manifest =
        serde_json::from_value(value).map_err(|e| bad(format!("malformed: {e}")))?;
    let mut names = std::collections::HashSet::new();
    for (i, s) in manifest.segments.iter().enumerate() {
        let n = i + 1;
        if !is_segment_name(&s.file) {
            return Err(bad(format!(
                "segment {n}: `{}` is not a segment file name (NNNNNN-ORG-FIRST-LAST{SEGMENT_SUFFIX})",
                s.file
            )));
        }
        if !names.insert(s.file.as_str()) {
            return Err(bad(format!("segment {n}: `{}` is listed twice", s.file)));
        }
        if s.entries == 0 || s.first_seq > s.last_seq {
            return Err(bad(format!(
                "segment {n} ({}): {} entries from seq {} to {} is impossible",
                s.file, s.entries, s.first_seq, s.last_seq
            )));
        }
    }
    Ok(Some(manifest))
}

/// A plain file name of the shape the writer gives segments, so that a manifest cannot make the
/// verifier read outside the archive directory.
fn is_segment_name(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) else {
        return false;
    };
    stem.len() > 7
        && stem.as_bytes()[..6].iter().all(u8::is_ascii_digit)
        && stem.as_bytes()[6] == b'-'
        && stem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The number a segment file name starts with.
fn segment_number(name: &str) -> Option<u64> {
    let digits = name.get(..6)?;
    (name.as_bytes().get(6) == Some(&b'-') && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// An archive directory, for writing.
#[derive(Debug, Clone)]
pub struct Archive {
    root: PathBuf,
}

impl Archive {
    /// Opens (and creates, if missing) the archive directory.
    pub fn open(root: &Path) -> io::Result<Archive> {
        fs::create_dir_all(root)?;
        Ok(Archive {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The manifest, or an empty one while nothing was archived.
    pub fn manifest(&self) -> Result<Manifest, ArchiveError> {
        Ok(read_manifest(&self.root)?.unwrap_or_default())
    }

    /// Writes one segment: `entries` are one organization's, in ascending `seq` (with gaps where
    /// other entries are kept longer). Each is checked first (its hash recomputes, its personal
    /// fields match their digest, consecutive entries link), so an archive that would not verify
    /// is refused rather than written. The file is written aside, synced, read back and checked
    /// against what the manifest will say, renamed into place and the directory synced; then the
    /// manifest is rewritten the same way. Only once this returns may the entries be deleted.
    ///
    /// Writing the same segment again (the same organization, count, seq range and anchors, as a
    /// prune that was interrupted before its delete does) writes nothing and returns the segment
    /// already recorded.
    pub fn write_segment(
        &self,
        entries: &[RetiredEntry],
        written_at: Millis,
    ) -> Result<SegmentInfo, ArchiveError> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Err(ArchiveError::Rejected("no entries".into()));
        };
        let _writing = self.lock()?;
        let org_id = first.org_id.as_str();
        if org_id.is_empty()
            || !org_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ArchiveError::Rejected(format!(
                "organization id `{org_id}` is not of the form org_…"
            )));
        }
        let mut previous: Option<&RetiredEntry> = None;
        for r in entries {
            if r.org_id != org_id {
                return Err(ArchiveError::Rejected(format!(
                    "a segment holds one organization's entries: seq {} is {}'s, seq {} is {org_id}'s",
                    r.entry.seq, r.org_id, first.entry.seq
                )));
            }
            let chain = chain_of(r);
            line::check(org_id, &r.entry, &chain).map_err(|(_, message)| {
                ArchiveError::Rejected(format!("entry seq {}: {message}", r.entry.seq))
            })?;
            if let Some(p) = previous {
                if r.entry.seq <= p.entry.seq {
                    return Err(ArchiveError::Rejected(format!(
                        "entries must be in ascending seq: {} follows {}",
                        r.entry.seq, p.entry.seq
                    )));
                }
                if r.entry.seq == p.entry.seq.next() && r.prev_hash != p.hash {
                    return Err(ArchiveError::Rejected(format!(
                        "entry seq {} does not link to seq {}: its prev_hash is not that entry's hash",
                        r.entry.seq, p.entry.seq
                    )));
                }
            }
            previous = Some(r);
        }

        let mut manifest = self.manifest()?;
        let count = entries.len() as u64;
        if let Some(done) = manifest.segments.iter().find(|s| {
            s.org_id == org_id
                && s.entries == count
                && s.first_seq == first.entry.seq
                && s.last_seq == last.entry.seq
                && s.first_prev_hash == first.prev_hash
                && s.last_hash == last.hash
        }) {
            return Ok(done.clone());
        }
        // Where this segment meets one already archived, the chain must go on across them.
        for s in manifest.segments.iter().filter(|s| s.org_id == org_id) {
            if s.last_seq.next() == first.entry.seq && s.last_hash != first.prev_hash {
                return Err(ArchiveError::Rejected(format!(
                    "entry seq {} does not continue {}: its prev_hash is not the hash of seq {}",
                    first.entry.seq, s.file, s.last_seq
                )));
            }
            if last.entry.seq.next() == s.first_seq && last.hash != s.first_prev_hash {
                return Err(ArchiveError::Rejected(format!(
                    "entry seq {} does not continue into {}: that segment's first prev_hash is \
                     not its hash",
                    last.entry.seq, s.file
                )));
            }
        }

        self.remove_temp_files()?;
        let info = self.place_segment(&manifest, entries, written_at)?;
        manifest.segments.push(info.clone());
        self.write_manifest(&manifest)?;
        Ok(info)
    }

    /// Writes checked entries (one organization's, ascending `seq`) as a new segment file under
    /// the next free number: aside first, synced, read back and checked as `verify` will, then
    /// renamed into place and the directory synced. The manifest is the caller's to update.
    fn place_segment(
        &self,
        manifest: &Manifest,
        entries: &[RetiredEntry],
        written_at: Millis,
    ) -> Result<SegmentInfo, ArchiveError> {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Err(ArchiveError::Rejected("no entries".into()));
        };
        let org_id = first.org_id.as_str();
        let number = self.next_number(manifest)?;
        let file = format!(
            "{number:06}-{org_id}-{}-{}{SEGMENT_SUFFIX}",
            first.entry.seq, last.entry.seq
        );
        let temp = self.root.join(format!("{file}{TEMP_SUFFIX}"));
        let (sha256, bytes) = write_lines(&temp, entries).inspect_err(|_| {
            let _ = fs::remove_file(&temp);
        })?;
        let info = SegmentInfo {
            file: file.clone(),
            org_id: org_id.to_string(),
            entries: entries.len() as u64,
            first_seq: first.entry.seq,
            last_seq: last.entry.seq,
            first_prev_hash: first.prev_hash,
            last_hash: last.hash,
            sha256,
            bytes,
            written_at,
        };
        // Read back what is on disk, as `verify` will.
        let mut problems = verify::Problems::default();
        verify::check_segment(&temp, &info, &mut problems);
        if let Some(p) = problems.list.first() {
            let _ = fs::remove_file(&temp);
            return Err(ArchiveError::Rejected(format!(
                "the segment did not read back as written: {p}"
            )));
        }
        let path = self.root.join(&file);
        fs::rename(&temp, &path).map_err(io_error(&path))?;
        sync_dir(&self.root)?;
        Ok(info)
    }

    /// Waits for, and holds until the returned file is dropped, the exclusive lock on the
    /// directory that every writer takes (an advisory `flock` on the directory itself, so no lock
    /// file joins the segments).
    fn lock(&self) -> Result<File, ArchiveError> {
        let dir = File::open(&self.root).map_err(io_error(&self.root))?;
        dir.lock().map_err(io_error(&self.root))?;
        Ok(dir)
    }

    /// One more than any segment number in use, in the manifest or among the files: a segment
    /// file left unrecorded by an interrupted write is never overwritten.
    fn next_number(&self, manifest: &Manifest) -> Result<u64, ArchiveError> {
        let mut highest = manifest
            .segments
            .iter()
            .filter_map(|s| segment_number(&s.file))
            .max()
            .unwrap_or(0);
        for name in list_dir(&self.root)? {
            if !name.ends_with(TEMP_SUFFIX)
                && let Some(n) = segment_number(&name)
            {
                highest = highest.max(n);
            }
        }
        Ok(highest + 1)
    }

    /// Files being written when a previous write was interrupted: never part of the archive.
    fn remove_temp_files(&self) -> Result<(), ArchiveError> {
        for name in list_dir(&self.root)? {
            let ours = name == format!("{MANIFEST_FILE}{TEMP_SUFFIX}")
                || name.strip_suffix(TEMP_SUFFIX).is_some_and(is_segment_name);
            if ours {
                let path = self.root.join(&name);
                fs::remove_file(&path).map_err(io_error(&path))?;
            }
        }
        Ok(())
    }

    fn write_manifest(&self, manifest: &Manifest) -> Result<(), ArchiveError> {
        let path = self.root.join(MANIFEST_FILE);
        let temp = self.root.join(format!("{MANIFEST_FILE}{TEMP_SUFFIX}"));
        let mut text = serde_json::to_vec_pretty(manifest).map_err(|e| ArchiveError::Manifest {
            path: path.clone(),
            message: e.to_string(),
        })?;
        text.push(b'\n');
        let write = || -> io::Result<()> {
            let mut f = File::create(&temp)?;
            f.write_all(&text)?;
            f.sync_all()
        };
        write().map_err(io_error(&temp))?;
        fs::rename(&temp, &path).map_err(io_error(&path))?;
        sync_dir(&self.root)
    }
}

pub(crate) fn chain_of(r: &RetiredEntry) -> line::Chain {
    line::Chain {
        prev_hash: r.prev_hash,
        hash: r.hash,
        personal_digest: r.personal_digest,
        seal: r.seal.clone(),
        erased: r.erased,
    }
}

/// Streams the entries as NDJSON into a zstd encoder over the file, hashing what reaches the
/// disk; syncs the file. Returns the compressed file's SHA-256 and size.
fn write_lines(path: &Path, entries: &[RetiredEntry]) -> Result<(Hash, u64), ArchiveError> {
    let write = || -> io::Result<(Hash, u64)> {
        let file = File::create(path)?;
        let counted = Counted {
            inner: BufWriter::with_capacity(1 << 16, file),
            sha: Sha256::new(),
            bytes: 0,
        };
        let mut encoder = zstd::Encoder::new(counted, LEVEL)?;
        encoder.include_checksum(true)?;
        let mut buf = Vec::with_capacity(4096);
        for r in entries {
            buf.clear();
            let value = line::encode(&r.org_id, &r.entry, &chain_of(r));
            serde_json::to_writer(&mut buf, &value)?;
            buf.push(b'\n');
            encoder.write_all(&buf)?;
        }
        let counted = encoder.finish()?;
        let file = counted.inner.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok((counted.sha.finalize().into(), counted.bytes))
    };
    write().map_err(io_error(path))
}

/// A writer that hashes and counts what passes through it.
struct Counted<W> {
    inner: W,
    sha: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Makes a rename in the directory durable.
fn sync_dir(dir: &Path) -> Result<(), ArchiveError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// The names of the directory's entries (lossy for names that are not UTF-8).
fn list_dir(dir: &Path) -> Result<Vec<String>, ArchiveError> {
    let mut names = Vec::new();
    for item in fs::read_dir(dir).map_err(io_error(dir))? {
        let item = item.map_err(io_error(dir))?;
        names.push(item.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use stele_core::merkle::{Hash, from_hex, to_hex};

    pub fn serialize<S: Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(h))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let s = String::deserialize(d)?;
        from_hex(&s).ok_or_else(|| D::Error::custom(format!("not 64 hex digits: {s:?}")))
    }
}

mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};
    use stele_core::time::{Millis, format_rfc3339, parse_rfc3339};

    pub fn serialize<S: Serializer>(t: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_rfc3339(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        let s = String::deserialize(d)?;
        parse_rfc3339(&s).ok_or_else(|| D::Error::custom(format!("not an RFC 3339 time: {s:?}")))
    }
}

#[cfg(test)]
mod tests;
