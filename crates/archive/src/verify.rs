//! `stele archive verify DIR`: checks an archive directory against its manifest, offline.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use serde::Serialize;
use sha2::{Digest, Sha256};
use stele_core::Seq;
use stele_core::merkle::Hash;

use crate::line::{self, Chain};
use crate::{ArchiveError, MANIFEST_FILE, SegmentInfo, read_manifest};

/// Problems listed in a report; beyond this they are only counted.
const MAX_PROBLEMS: usize = 100;
/// A longer line is not one Stele wrote (an entry is bounded by the request body limit); reading
/// stops there so that a hostile file cannot exhaust memory.
const MAX_LINE_BYTES: u64 = 64 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A segment the manifest lists is not in the directory.
    MissingFile,
    /// The file's size differs from the manifest's.
    SizeMismatch,
    /// The file's SHA-256 differs from the manifest's.
    Sha256Mismatch,
    /// The file cannot be read or does not decompress.
    Unreadable,
    /// A line is not an archived entry as Stele writes it (not JSON, a missing or extra key, a
    /// value in another form, another organization).
    Malformed,
    /// A line's `seq` is not above the line before it.
    OutOfOrder,
    /// A line's `seq` is outside the manifest's first..last.
    OutOfRange,
    /// The entry's content, id, seq, recorded time or `prev_hash` no longer hash to its `hash`.
    HashMismatch,
    /// The personal fields do not match their salted digest (or an erased entry shows more than
    /// a pseudonym, or an entry that was not erased has no salt).
    PersonalMismatch,
    /// An entry's `prev_hash` is not the hash of the entry before it (the line before, the last
    /// entry of the segment before, or the genesis hash for `seq` 1).
    BrokenLink,
    /// The number of lines differs from the manifest's count.
    CountMismatch,
    /// The first line's seq or `prev_hash`, or the last line's seq or `hash`, differ from the
    /// manifest's anchors.
    AnchorMismatch,
    /// A file in the directory that the manifest does not list.
    UnlistedFile,
}

/// One thing wrong with the archive, as precisely as it is known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file's name in the archive directory.
    pub file: String,
    /// The line (from 1), for a problem with one line.
    pub line: Option<u64>,
    /// The entry's `seq`, when the line showed one.
    pub seq: Option<Seq>,
    pub kind: ProblemKind,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        match (self.line, self.seq) {
            (Some(line), Some(seq)) => write!(f, ": line {line} (seq {seq})")?,
            (Some(line), None) => write!(f, ": line {line}")?,
            _ => {}
        }
        write!(f, ": {}", self.message)
    }
}

/// One organization in an archive, as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OrgSummary {
    pub segments: usize,
    pub entries: u64,
    pub first_seq: Seq,
    pub last_seq: Seq,
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArchiveReport {
    pub segments: usize,
    /// Entries the manifest records, over all segments.
    pub entries: u64,
    /// Per organization id.
    pub orgs: BTreeMap<String, OrgSummary>,
    /// The problems, in the order found (segments in manifest order, lines in file order, then
    /// links between segments, then unlisted files); at most 100.
    pub problems: Vec<Problem>,
    /// Problems found beyond those listed.
    pub problems_not_listed: u64,
}

impl ArchiveReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Default)]
pub(crate) struct Problems {
    pub list: Vec<Problem>,
    pub more: u64,
}

impl Problems {
    fn push(&mut self, problem: Problem) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(problem);
        } else {
            self.more += 1;
        }
    }

    fn file(&mut self, file: &str, kind: ProblemKind, message: String) {
        self.push(Problem {
            file: file.to_string(),
            line: None,
            seq: None,
            kind,
            message,
        });
    }
}

/// Checks the archive in `root` against its manifest, without the database: every listed
/// segment's file exists with the recorded size and SHA-256, decompresses, holds the recorded
/// number of lines in ascending seq within the recorded range; every line's hash recomputes from
/// its own content and `prev_hash` (and its personal fields from their salt); consecutive seqs
/// link; the first and last lines match the manifest's anchors; segments of one organization
/// whose seqs follow each other link; no file is there that the manifest does not list.
///
/// Fails (rather than reporting) only when it cannot run: no directory, no readable manifest.
pub fn verify(root: &Path) -> Result<ArchiveReport, ArchiveError> {
    let manifest_path = root.join(MANIFEST_FILE);
    if !root.is_dir() {
        return Err(ArchiveError::Io {
            path: root.to_path_buf(),
            error: io::Error::new(io::ErrorKind::NotFound, "no such directory"),
        });
    }
    let manifest = read_manifest(root)?.ok_or_else(|| ArchiveError::Manifest {
        path: manifest_path,
        message: "no manifest: not a Stele archive directory".into(),
    })?;
    let mut problems = Problems::default();
    for segment in &manifest.segments {
        check_segment(&root.join(&segment.file), segment, &mut problems);
    }
    check_links(&manifest.segments, &mut problems);

    let listed: HashSet<&str> = manifest
        .segments
        .iter()
        .map(|s| s.file.as_str())
        .chain([MANIFEST_FILE])
        .collect();
    for name in crate::list_dir(root)? {
        if !listed.contains(name.as_str()) {
            problems.file(
                &name,
                ProblemKind::UnlistedFile,
                "is in the archive directory but not in the manifest".into(),
            );
        }
    }

    let mut orgs: BTreeMap<String, OrgSummary> = BTreeMap::new();
    for s in &manifest.segments {
        let org = orgs.entry(s.org_id.clone()).or_insert(OrgSummary {
            segments: 0,
            entries: 0,
            first_seq: s.first_seq,
            last_seq: s.last_seq,
        });
        org.segments += 1;
        org.entries += s.entries;
        org.first_seq = org.first_seq.min(s.first_seq);
        org.last_seq = org.last_seq.max(s.last_seq);
    }
    Ok(ArchiveReport {
        segments: manifest.segments.len(),
        entries: manifest.segments.iter().map(|s| s.entries).sum(),
        orgs,
        problems: problems.list,
        problems_not_listed: problems.more,
    })
}

/// Where one segment ends and the next of the same organization begins: when a segment starts
/// right after another one's last seq, its first `prev_hash` must be that one's last `hash`. The
/// anchors are the manifest's, which [`check_segment`] held against the files.
fn check_links(segments: &[SegmentInfo], problems: &mut Problems) {
    let mut ends: HashMap<(&str, Seq), Vec<&SegmentInfo>> = HashMap::new();
    for s in segments {
        ends.entry((s.org_id.as_str(), s.last_seq))
            .or_default()
            .push(s);
    }
    for s in segments {
        let Some(before) = s
            .first_seq
            .get()
            .checked_sub(1)
            .and_then(|seq| ends.get(&(s.org_id.as_str(), Seq::new(seq))))
        else {
            continue;
        };
        for b in before {
            if b.last_hash != s.first_prev_hash {
                problems.push(Problem {
                    file: s.file.clone(),
                    line: Some(1),
                    seq: Some(s.first_seq),
                    kind: ProblemKind::BrokenLink,
                    message: format!(
                        "its prev_hash is not the hash of seq {} that ends {}",
                        b.last_seq, b.file
                    ),
                });
            }
        }
    }
}

/// Checks one segment file (at `path`, which for the writer is still the temporary name)
/// against what the manifest says of it. Reads the file twice, streaming: once for its size and
/// SHA-256, once to decompress and check its lines.
pub(crate) fn check_segment(path: &Path, info: &SegmentInfo, problems: &mut Problems) {
    let name = info.file.as_str();
    match digest_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            problems.file(
                name,
                ProblemKind::MissingFile,
                "the manifest lists it, but the file is missing".into(),
            );
            return;
        }
        Err(e) => {
            problems.file(
                name,
                ProblemKind::Unreadable,
                format!("cannot read it: {e}"),
            );
            return;
        }
        Ok((sha256, bytes)) => {
            if bytes != info.bytes {
                problems.file(
                    name,
                    ProblemKind::SizeMismatch,
                    format!(
                        "the file has {bytes} bytes, the manifest records {}",
                        info.bytes
                    ),
                );
            }
            if sha256 != info.sha256 {
                problems.file(
                    name,
                    ProblemKind::Sha256Mismatch,
                    "the file's SHA-256 differs from the manifest's: it was changed after it \
                     was written"
                        .into(),
                );
            }
        }
    }
    let decoder = File::open(path).and_then(zstd::Decoder::new);
    let mut reader = match decoder {
        Ok(d) => BufReader::with_capacity(1 << 16, d),
        Err(e) => {
            problems.file(
                name,
                ProblemKind::Unreadable,
                format!("cannot read it: {e}"),
            );
            return;
        }
    };
    let mut walk = Walk::new(info);
    let mut buf = Vec::with_capacity(4096);
    loop {
        buf.clear();
        let read = reader
            .by_ref()
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut buf);
        match read {
            Ok(0) => break,
            Ok(_) if buf.len() as u64 > MAX_LINE_BYTES => {
                problems.push(walk.problem(
                    None,
                    ProblemKind::Malformed,
                    "the line is longer than 64 MiB; reading stops here".into(),
                ));
                return;
            }
            Ok(_) => walk.line(&buf, problems),
            Err(e) => {
                let after = match walk.lines {
                    0 => String::new(),
                    n => format!(" after line {n}"),
                };
                problems.file(
                    name,
                    ProblemKind::Unreadable,
                    format!("does not decompress{after}: {e}"),
                );
                return;
            }
        }
    }
    walk.finish(problems);
}

fn digest_file(path: &Path) -> io::Result<(Hash, u64)> {
    let mut file = File::open(path)?;
    let mut sha = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((sha.finalize().into(), bytes));
        }
        sha.update(&buf[..n]);
        bytes += n as u64;
    }
}

/// The lines of one segment, read in order.
struct Walk<'a> {
    info: &'a SegmentInfo,
    lines: u64,
    /// The last line that showed a seq and hash.
    last: Option<(Seq, Hash)>,
}

impl<'a> Walk<'a> {
    fn new(info: &'a SegmentInfo) -> Self {
        Walk {
            info,
            lines: 0,
            last: None,
        }
    }

    fn problem(&self, seq: Option<Seq>, kind: ProblemKind, message: String) -> Problem {
        Problem {
            file: self.info.file.clone(),
            line: Some(self.lines.max(1)),
            seq,
            kind,
            message,
        }
    }

    fn line(&mut self, bytes: &[u8], problems: &mut Problems) {
        self.lines += 1;
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let value: serde_json::Value = match serde_json::from_slice(bytes) {
            Ok(v) => v,
            Err(e) => {
                problems.push(self.problem(None, ProblemKind::Malformed, format!("not JSON: {e}")));
                return;
            }
        };
        let seq = value
            .get("seq")
            .and_then(serde_json::Value::as_i64)
            .map(Seq::new);
        let decoded = match line::decode(&value) {
            Ok(d) => d,
            Err(message) => {
                problems.push(self.problem(seq, ProblemKind::Malformed, message));
                return;
            }
        };
        let seq = decoded.entry.seq;
        let chain: &Chain = &decoded.chain;
        let mut report = |kind, message| problems.push(self.problem(Some(seq), kind, message));
        if decoded.org_id != self.info.org_id {
            report(
                ProblemKind::Malformed,
                format!(
                    "the entry is {}'s, the segment {}'s",
                    decoded.org_id, self.info.org_id
                ),
            );
        }
        if self.lines == 1 {
            if seq != self.info.first_seq {
                report(
                    ProblemKind::AnchorMismatch,
                    format!(
                        "the first line is seq {seq}, the manifest says the segment starts at {}",
                        self.info.first_seq
                    ),
                );
            }
            if chain.prev_hash != self.info.first_prev_hash {
                report(
                    ProblemKind::AnchorMismatch,
                    "the first line's prev_hash differs from the manifest's first_prev_hash".into(),
                );
            }
        }
        if seq < self.info.first_seq || seq > self.info.last_seq {
            report(
                ProblemKind::OutOfRange,
                format!(
                    "seq {seq} is outside the segment's {}..={}",
                    self.info.first_seq, self.info.last_seq
                ),
            );
        }
        if let Some((last_seq, last_hash)) = self.last {
            if seq <= last_seq {
                report(
                    ProblemKind::OutOfOrder,
                    format!("seq {seq} follows seq {last_seq}: seqs must ascend"),
                );
            } else if seq == last_seq.next() && chain.prev_hash != last_hash {
                report(
                    ProblemKind::BrokenLink,
                    format!("its prev_hash is not the hash of seq {last_seq} on the line before"),
                );
            }
        }
        if let Err((kind, message)) = line::check(&decoded.org_id, &decoded.entry, chain) {
            report(kind, message);
        }
        self.last = Some((seq, chain.hash));
    }

    fn finish(self, problems: &mut Problems) {
        let info = self.info;
        if self.lines != info.entries {
            problems.file(
                &info.file,
                ProblemKind::CountMismatch,
                format!(
                    "the file holds {} lines, the manifest records {} entries",
                    self.lines, info.entries
                ),
            );
        }
        if let Some((seq, hash)) = self.last {
            if seq != info.last_seq {
                problems.push(self.problem(
                    Some(seq),
                    ProblemKind::AnchorMismatch,
                    format!(
                        "the last line is seq {seq}, the manifest says the segment ends at {}",
                        info.last_seq
                    ),
                ));
            }
            if hash != info.last_hash {
                problems.push(self.problem(
                    Some(seq),
                    ProblemKind::AnchorMismatch,
                    "the last line's hash differs from the manifest's last_hash".into(),
                ));
            }
        }
    }
}
