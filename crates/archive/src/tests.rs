use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};

use serde_json::{Value, json};
use stele_core::chain::{Personal, SealedEvent, entry_hash, genesis};
use stele_core::redact::RedactionRules;
use stele_core::{Entry, NewEvent, Seq, parse_event};

use super::*;

const ORG: &str = "org_01a200ba10c470ea97c07444fea00801";
const OTHER_ORG: &str = "org_02b311cb21d581fb08d18555afb11912";
const T0: Millis = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn event(n: i64) -> NewEvent {
    let body = json!({
        "action": "update",
        "detailed_action": "printer.rename",
        "description": format!("Renamed printer {n}"),
        "occurred_at": "2025-12-31T02:04:09.120Z",
        "actor": {"type": "user", "id": format!("u{n}"), "name": "Ada", "email": "ada@example.com"},
        "entity": {"type": "Printer", "id": n, "name": "tab\there \u{1F600} \"quoted\" \\"},
        "entity_ids": ["7", "8"],
        "before": {"name": "A", "password": "hunter2", "nickname": null, "gone": 1},
        "after": {"name": "Alpha", "password": "hunter3", "nickname": "al", "added": [1.5, -0.0]},
        "context": {"ip": "203.0.113.7", "user_agent": "curl/8", "correlation_id": "req-1",
                    "impersonator": {"id": "admin"}},
        "metadata": {"site": "Zürich", "toner": 0.1, "big": 1e300, "n": -12, "none": null, "huge": 18446744073709551615u64, "low": i64::MIN}
    });
    parse_event(&body, T0, &RedactionRules::default()).expect("a valid event")
}

/// Entries 1..=n of one organization, chained from its genesis with real hashes.
fn chain(org: &str, n: i64, vary: impl Fn(i64, &mut NewEvent)) -> Vec<RetiredEntry> {
    let mut prev = genesis(org);
    (1..=n)
        .map(|seq| {
            let mut e = event(seq);
            vary(seq, &mut e);
            let salt = [seq as u8; 16];
            let sealed = SealedEvent::seal_format_1(e, salt);
            let id = format!("019b7c72-ae20-7000-8000-{seq:012}");
            let recorded_at = T0 + seq * 1000;
            let seq = Seq::new(seq);
            let hash = entry_hash(&prev, org, seq, &id, recorded_at, &sealed.event_digest);
            let retired = RetiredEntry {
                org_id: org.to_string(),
                entry: Entry {
                    id,
                    seq,
                    recorded_at,
                    event: sealed.event,
                },
                prev_hash: prev,
                hash,
                personal_digest: sealed.personal_digest,
                seal: stele_core::seal::Seal::V1(Some(salt)),
                erased: false,
            };
            prev = hash;
            retired
        })
        .collect()
}

/// The entry after an erasure: only a pseudonym left, no salt, the chain values unchanged.
fn erase(r: &mut RetiredEntry) {
    Personal {
        actor_id: Some("erased-0740ccbb57641d9e".into()),
        ..Personal::default()
    }
    .apply(&mut r.entry.event);
    r.seal = stele_core::seal::Seal::V1(None);
    r.erased = true;
}

fn plain(_: i64, _: &mut NewEvent) {}

/// A person an erasure names by one identifier (an actor id or email).
fn person(id: &str) -> stele_core::erase::Person {
    stele_core::erase::Person {
        other: vec![id.into()],
        ..Default::default()
    }
}

/// Two segments of ORG (seq 1..=5 without 3, kept longer, and 6..=8) and one of OTHER_ORG.
fn sample_archive(dir: &Path) -> (Archive, Vec<SegmentInfo>) {
    let archive = Archive::open(&dir.join("archive")).unwrap();
    let mut entries = chain(ORG, 8, plain);
    erase(&mut entries[1]);
    let first: Vec<RetiredEntry> = entries[..5]
        .iter()
        .filter(|r| r.entry.seq != Seq::new(3))
        .cloned()
        .collect();
    let a = archive.write_segment(&first, T0 + 10_000).unwrap();
    let b = archive.write_segment(&entries[5..], T0 + 20_000).unwrap();
    let c = archive
        .write_segment(&chain(OTHER_ORG, 2, plain), T0 + 20_000)
        .unwrap();
    (archive, vec![a, b, c])
}

fn read_lines(path: &Path) -> Vec<String> {
    let decoder = zstd::Decoder::new(File::open(path).unwrap()).unwrap();
    BufReader::new(decoder)
        .lines()
        .map(Result::unwrap)
        .collect()
}

/// Replaces a segment's content (recompressed) and fixes its size and SHA-256 in the manifest,
/// as someone who knows the format would.
fn rewrite_segment(archive: &Archive, file: &str, edit: impl FnOnce(&mut Vec<String>)) {
    let path = archive.root().join(file);
    let mut lines = read_lines(&path);
    edit(&mut lines);
    let mut encoder = zstd::Encoder::new(Vec::new(), 3).unwrap();
    for l in &lines {
        writeln!(encoder, "{l}").unwrap();
    }
    let bytes = encoder.finish().unwrap();
    fs::write(&path, &bytes).unwrap();
    let mut manifest = archive.manifest().unwrap();
    let s = manifest
        .segments
        .iter_mut()
        .find(|s| s.file == file)
        .unwrap();
    s.sha256 = Sha256::digest(&bytes).into();
    s.bytes = bytes.len() as u64;
    archive.write_manifest(&manifest).unwrap();
}

fn edit_line(line: &str, edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(line).unwrap();
    edit(&mut v);
    serde_json::to_string(&v).unwrap()
}

fn kinds(report: &ArchiveReport) -> Vec<(String, Option<u64>, ProblemKind)> {
    report
        .problems
        .iter()
        .map(|p| (p.file.clone(), p.line, p.kind))
        .collect()
}

#[test]
fn an_archive_of_two_runs_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    let [a, b, c] = &segments[..] else {
        unreachable!()
    };
    assert_eq!(a.file, format!("000001-{ORG}-1-5.ndjson.zst"));
    assert_eq!(b.file, format!("000002-{ORG}-6-8.ndjson.zst"));
    assert_eq!(c.file, format!("000003-{OTHER_ORG}-1-2.ndjson.zst"));
    assert_eq!(
        (a.entries, a.first_seq, a.last_seq),
        (4, Seq::new(1), Seq::new(5))
    );
    assert_eq!(a.first_prev_hash, genesis(ORG));
    assert_eq!(b.first_prev_hash, a.last_hash);
    let on_disk = fs::read(archive.root().join(&a.file)).unwrap();
    assert_eq!(a.bytes, on_disk.len() as u64);
    assert_eq!(a.sha256, <[u8; 32]>::from(Sha256::digest(&on_disk)));

    let report = verify(archive.root()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!((report.segments, report.entries), (3, 9));
    assert_eq!(
        report.orgs[ORG],
        OrgSummary {
            segments: 2,
            entries: 7,
            first_seq: Seq::new(1),
            last_seq: Seq::new(8)
        }
    );
    assert_eq!(report.orgs[OTHER_ORG].entries, 2);

    // The manifest is what `read_manifest` returns, and readable JSON.
    let manifest: Value =
        serde_json::from_str(&fs::read_to_string(archive.root().join(MANIFEST_FILE)).unwrap())
            .unwrap();
    assert_eq!(manifest["format"], FORMAT);
    assert_eq!(
        manifest["segments"][0]["written_at"],
        "2026-01-01T00:00:10.000Z"
    );
    assert_eq!(
        manifest["segments"][1]["first_prev_hash"],
        to_hex(&a.last_hash)
    );
    assert_eq!(archive.manifest().unwrap().segments, segments);
}

use stele_core::merkle::to_hex;

#[test]
fn a_line_is_the_entry_as_the_api_shows_it_plus_its_chain_values() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    let lines = read_lines(&archive.root().join(&segments[0].file));
    assert_eq!(lines.len(), 4);
    let entries = chain(ORG, 8, plain);
    let line: Value = serde_json::from_str(&lines[0]).unwrap();
    let mut expected = json!({"org_id": ORG});
    for (k, v) in entries[0].entry.to_json().as_object().unwrap() {
        expected[k] = v.clone();
    }
    expected["prev_hash"] = to_hex(&genesis(ORG)).into();
    expected["hash"] = to_hex(&entries[0].hash).into();
    expected["personal_digest"] = to_hex(&entries[0].personal_digest).into();
    expected["salt"] = "01010101010101010101010101010101".into();
    expected["erased"] = false.into();
    assert_eq!(line, expected);
    let keys: Vec<&str> = line
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    assert_eq!(keys[..3], ["org_id", "id", "seq"]);
    assert_eq!(line["description"], "Renamed printer 1");
    assert_eq!(line["actor"]["email"], "ada@example.com");
    // Redacted as the API stored it; a null before and an absent after both kept.
    assert!(lines[0].contains(r#""[REDACTED]""#));
    let changes = line["changes"].as_array().unwrap();
    let nickname = changes.iter().find(|c| c["field"] == "nickname").unwrap();
    assert_eq!(nickname["old"], Value::Null);
    assert!(nickname.as_object().unwrap().contains_key("old"));
    let gone = changes.iter().find(|c| c["field"] == "gone").unwrap();
    assert!(!gone.as_object().unwrap().contains_key("new"));
    // The erased entry: a pseudonym, no salt.
    let erased: Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(erased["seq"], 2);
    assert_eq!(erased["erased"], true);
    assert_eq!(erased["salt"], Value::Null);
    assert_eq!(
        erased["actor"],
        json!({"type": "user", "id": "erased-0740ccbb57641d9e"})
    );
    // The gap where seq 3 is kept longer.
    assert_eq!(serde_json::from_str::<Value>(&lines[2]).unwrap()["seq"], 4);
}

#[test]
fn writing_the_same_segment_again_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    let entries = chain(ORG, 8, plain);
    let again = archive.write_segment(&entries[5..], T0 + 99_000).unwrap();
    assert_eq!(again, segments[1]);
    assert_eq!(archive.manifest().unwrap().segments.len(), 3);
    assert!(verify(archive.root()).unwrap().ok());
}

#[test]
fn entries_that_would_not_verify_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(&dir.path().join("a")).unwrap();
    let entries = chain(ORG, 4, plain);
    let refused = |entries: &[RetiredEntry]| match archive.write_segment(entries, T0) {
        Err(ArchiveError::Rejected(message)) => message,
        other => panic!("expected a refusal, got {other:?}"),
    };

    assert_eq!(refused(&[]), "no entries");
    let mut changed = entries.clone();
    changed[2].entry.event.description = Some("Renamed printer 99".into());
    assert_eq!(
        refused(&changed),
        "entry seq 3: its content no longer matches its hash"
    );
    let mut personal = entries.clone();
    personal[1].entry.event.actor.email = Some("eve@example.com".into());
    assert!(
        refused(&personal).contains("salted digest"),
        "{}",
        refused(&personal)
    );
    let reversed: Vec<RetiredEntry> = entries.iter().rev().cloned().collect();
    assert!(refused(&reversed).contains("ascending seq"));
    let mut mixed = entries.clone();
    mixed.extend(chain(OTHER_ORG, 1, plain));
    assert!(refused(&mixed).contains("one organization's entries"));
    // A chain whose seq 3 was rewritten after seq 4 was hashed: 4 no longer links to 3.
    let other = chain(ORG, 4, |seq, e| {
        if seq == 3 {
            e.description = Some("rewritten".into());
        }
    });
    let spliced = [entries[1].clone(), other[2].clone(), entries[3].clone()];
    assert!(refused(&spliced).contains("does not link to seq 3"));

    assert_eq!(list_dir(archive.root()).unwrap(), Vec::<String>::new());
    assert!(archive.manifest().unwrap().segments.is_empty());
}

#[test]
fn a_segment_that_does_not_continue_the_one_before_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path()).unwrap();
    archive
        .write_segment(&chain(ORG, 3, plain)[..2], T0)
        .unwrap();
    let rewritten = chain(ORG, 3, |seq, e| {
        if seq == 2 {
            e.description = Some("rewritten".into());
        }
    });
    match archive.write_segment(&rewritten[2..], T0) {
        Err(ArchiveError::Rejected(m)) => assert!(m.contains("does not continue"), "{m}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_changed_byte_is_a_sha256_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    let path = archive.root().join(&segments[1].file);
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&path, bytes).unwrap();
    let report = verify(archive.root()).unwrap();
    assert!(!report.ok());
    let first = &report.problems[0];
    assert_eq!(first.file, segments[1].file);
    assert_eq!(first.kind, ProblemKind::Sha256Mismatch);
    assert_eq!(first.line, None);
    assert!(report.problems.iter().all(|p| p.file == segments[1].file));
}

#[test]
fn an_edited_description_with_a_fixed_up_manifest_fails_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    let file = &segments[0].file;
    rewrite_segment(&archive, file, |lines| {
        lines[2] = edit_line(&lines[2], |v| v["description"] = "Renamed printer X".into());
    });
    let report = verify(archive.root()).unwrap();
    assert_eq!(
        kinds(&report),
        [(file.clone(), Some(3), ProblemKind::HashMismatch)]
    );
    assert_eq!(report.problems[0].seq, Some(Seq::new(4)));
    assert_eq!(
        report.problems[0].to_string(),
        format!("{file}: line 3 (seq 4): its content no longer matches its hash")
    );
}

#[test]
fn a_changed_actor_fails_its_personal_digest() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    let file = &segments[1].file;
    rewrite_segment(&archive, file, |lines| {
        lines[0] = edit_line(&lines[0], |v| {
            v["actor"]["email"] = "eve@example.com".into()
        });
    });
    let report = verify(archive.root()).unwrap();
    assert_eq!(
        kinds(&report),
        [(file.clone(), Some(1), ProblemKind::PersonalMismatch)]
    );
}

#[test]
fn an_erased_entry_showing_more_than_a_pseudonym_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    let file = &segments[0].file;
    rewrite_segment(&archive, file, |lines| {
        lines[1] = edit_line(&lines[1], |v| v["actor"]["name"] = "Ada".into());
    });
    let report = verify(archive.root()).unwrap();
    assert_eq!(
        kinds(&report),
        [(file.clone(), Some(2), ProblemKind::PersonalMismatch)]
    );
}

#[test]
fn a_deleted_line_is_a_count_mismatch() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    let file = &segments[1].file;
    rewrite_segment(&archive, file, |lines| {
        lines.remove(1);
    });
    let report = verify(archive.root()).unwrap();
    assert_eq!(
        kinds(&report),
        [(file.clone(), None, ProblemKind::CountMismatch)]
    );
    assert_eq!(
        report.problems[0].message,
        "the file holds 2 lines, the manifest records 3 entries"
    );
}

#[test]
fn swapped_lines_are_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    let file = &segments[1].file;
    rewrite_segment(&archive, file, |lines| lines.swap(1, 2));
    let report = verify(archive.root()).unwrap();
    assert!(
        kinds(&report).contains(&(file.clone(), Some(3), ProblemKind::OutOfOrder)),
        "{:?}",
        report.problems
    );
}

#[test]
fn a_relinked_line_breaks_the_link_to_the_line_before() {
    // seq 7's prev_hash and hash recomputed consistently on their own (as someone could): the
    // line verifies alone, but no longer follows seq 6, and seq 8 no longer follows it.
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    let file = &segments[1].file;
    let fake = chain(ORG, 8, |seq, e| {
        if seq == 6 {
            e.description = Some("another history".into());
        }
    });
    let fake_line =
        serde_json::to_string(&line::encode(ORG, &fake[6].entry, &chain_of(&fake[6]))).unwrap();
    rewrite_segment(&archive, file, |lines| lines[1] = fake_line);
    let report = verify(archive.root()).unwrap();
    assert_eq!(
        kinds(&report),
        [
            (file.clone(), Some(2), ProblemKind::BrokenLink),
            (file.clone(), Some(3), ProblemKind::BrokenLink)
        ]
    );
}

#[test]
fn a_line_with_something_its_hash_does_not_cover_is_malformed() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    let file = &segments[2].file;
    rewrite_segment(&archive, file, |lines| {
        lines[0] = edit_line(&lines[0], |v| v["note"] = "not covered".into());
        lines[1] = edit_line(&lines[1], |v| v["actor"]["role"] = "admin".into());
    });
    let report = verify(archive.root()).unwrap();
    assert_eq!(
        kinds(&report),
        [
            (file.clone(), Some(1), ProblemKind::Malformed),
            (file.clone(), Some(2), ProblemKind::Malformed)
        ]
    );
    assert!(report.problems[0].message.contains("`note`"));
    assert!(report.problems[1].message.contains("`actor`"));
}

#[test]
fn a_missing_segment_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    fs::remove_file(archive.root().join(&segments[0].file)).unwrap();
    let report = verify(archive.root()).unwrap();
    assert_eq!(
        kinds(&report),
        [(segments[0].file.clone(), None, ProblemKind::MissingFile)]
    );
}

#[test]
fn a_file_the_manifest_does_not_list_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, _) = sample_archive(dir.path());
    fs::write(archive.root().join("notes.txt"), "hello").unwrap();
    let report = verify(archive.root()).unwrap();
    assert_eq!(
        kinds(&report),
        [("notes.txt".to_string(), None, ProblemKind::UnlistedFile)]
    );
}

#[test]
fn a_segment_dropped_from_the_manifest_leaves_its_file_unlisted() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    let mut manifest = archive.manifest().unwrap();
    manifest.segments.remove(0);
    archive.write_manifest(&manifest).unwrap();
    let report = verify(archive.root()).unwrap();
    assert_eq!(
        kinds(&report),
        [(segments[0].file.clone(), None, ProblemKind::UnlistedFile)]
    );
    // And the next segment gets a new number rather than overwriting that file.
    let next = archive
        .write_segment(&chain(OTHER_ORG, 3, plain)[2..], T0)
        .unwrap();
    assert!(next.file.starts_with("000004-"), "{}", next.file);
}

#[test]
fn segments_of_one_organization_must_link_where_they_meet() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    // Replace segment 2 by a self-consistent one from another history of seq 1..=5.
    let other = Archive::open(&dir.path().join("other")).unwrap();
    let fake = chain(ORG, 8, |seq, e| {
        if seq == 5 {
            e.description = Some("another history".into());
        }
    });
    let info = other.write_segment(&fake[5..], T0).unwrap();
    fs::copy(
        other.root().join(&info.file),
        archive.root().join(&segments[1].file),
    )
    .unwrap();
    let mut manifest = archive.manifest().unwrap();
    manifest.segments[1] = SegmentInfo {
        file: segments[1].file.clone(),
        ..info
    };
    archive.write_manifest(&manifest).unwrap();
    let report = verify(archive.root()).unwrap();
    assert_eq!(
        kinds(&report),
        [(segments[1].file.clone(), Some(1), ProblemKind::BrokenLink)]
    );
    assert!(report.problems[0].message.contains(&segments[0].file));
}

#[test]
fn anchors_in_the_manifest_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    let mut manifest = archive.manifest().unwrap();
    manifest.segments[2].last_hash = [0; 32];
    manifest.segments[2].first_seq = Seq::new(0);
    archive.write_manifest(&manifest).unwrap();
    let report = verify(archive.root()).unwrap();
    let file = segments[2].file.clone();
    assert_eq!(
        kinds(&report),
        [
            (file.clone(), Some(1), ProblemKind::AnchorMismatch),
            (file, Some(2), ProblemKind::AnchorMismatch)
        ]
    );
}

#[test]
fn a_directory_without_a_usable_manifest_cannot_be_verified() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        verify(dir.path()),
        Err(ArchiveError::Manifest { .. })
    ));
    assert!(matches!(
        verify(&dir.path().join("nope")),
        Err(ArchiveError::Io { .. })
    ));
    fs::write(
        dir.path().join(MANIFEST_FILE),
        r#"{"format": "stele-archive-v9", "segments": []}"#,
    )
    .unwrap();
    let e = verify(dir.path()).unwrap_err().to_string();
    assert!(e.contains("stele-archive-v9"), "{e}");
    let escape = json!({"format": FORMAT, "segments": [{
        "file": "../../etc/passwd", "org_id": ORG, "entries": 1, "first_seq": 1, "last_seq": 1,
        "first_prev_hash": to_hex(&[0; 32]), "last_hash": to_hex(&[0; 32]),
        "sha256": to_hex(&[0; 32]), "bytes": 1, "written_at": "2026-01-01T00:00:00.000Z"}]});
    fs::write(dir.path().join(MANIFEST_FILE), escape.to_string()).unwrap();
    let e = verify(dir.path()).unwrap_err().to_string();
    assert!(e.contains("not a segment file name"), "{e}");
}

#[test]
fn an_empty_archive_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path()).unwrap();
    archive.write_manifest(&Manifest::default()).unwrap();
    let report = verify(dir.path()).unwrap();
    assert!(report.ok());
    assert_eq!((report.segments, report.entries), (0, 0));
}

#[test]
fn leftovers_of_an_interrupted_write_are_cleaned_up_by_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let archive = Archive::open(dir.path()).unwrap();
    let entries = chain(ORG, 4, plain);
    archive.write_segment(&entries[..2], T0).unwrap();
    let temp = format!("000002-{ORG}-3-4.ndjson.zst.tmp");
    fs::write(dir.path().join(&temp), "half a segment").unwrap();
    assert_eq!(
        kinds(&verify(dir.path()).unwrap()),
        [(temp, None, ProblemKind::UnlistedFile)]
    );
    archive.write_segment(&entries[2..], T0).unwrap();
    assert!(verify(dir.path()).unwrap().ok());
}

#[test]
fn an_erasure_pseudonymises_the_persons_archived_entries_and_the_archive_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, before) = sample_archive(dir.path());
    let old_lines = read_lines(&archive.root().join(&before[0].file));

    // By actor id: seq 4 (u4), in the first segment.
    let pseudonym = "erased-1111111111111111";
    let outcome = archive
        .erase(ORG, &person("u4"), pseudonym, T0 + 30_000)
        .unwrap();
    assert_eq!(
        outcome,
        ArchiveErasure {
            segments: 1,
            entries: 1
        }
    );
    let report = verify(archive.root()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let manifest = archive.manifest().unwrap();
    let now = &manifest.segments[0];
    assert_eq!(
        now.file,
        format!("000004-{ORG}-1-5.ndjson.zst"),
        "a new file"
    );
    assert!(
        !archive.root().join(&before[0].file).exists(),
        "the old one removed"
    );
    assert_eq!(
        (
            now.entries,
            now.first_seq,
            now.last_seq,
            now.first_prev_hash,
            now.last_hash
        ),
        (
            4,
            Seq::new(1),
            Seq::new(5),
            before[0].first_prev_hash,
            before[0].last_hash
        ),
        "the same entries and anchors"
    );
    assert_eq!(manifest.segments[1..], before[1..], "the others untouched");
    let lines = read_lines(&archive.root().join(&now.file));
    assert_eq!(lines.len(), old_lines.len());
    for (new, old) in lines.iter().zip(&old_lines) {
        let (new, old): (Value, Value) = (
            serde_json::from_str(new).unwrap(),
            serde_json::from_str(old).unwrap(),
        );
        if new["seq"] != 4 {
            assert_eq!(new, old);
            continue;
        }
        assert_eq!(new["actor"], json!({"type": "user", "id": pseudonym}));
        assert!(new["context"].get("ip").is_none() && new["context"].get("user_agent").is_none());
        // A format-1 entry keeps its event digest as it was (`Seal::V1Frozen`, tag 01).
        assert!(
            new["salt"].as_str().unwrap().starts_with("01"),
            "{}",
            new["salt"]
        );
        assert_eq!(new["erased"], json!(true));
        assert_eq!(new["hash"], old["hash"]);
        assert_eq!(new["description"], old["description"]);
    }

    // By email: every entry of the organization not erased yet, in both segments; the other
    // organization keeps its own.
    let outcome = archive
        .erase(
            ORG,
            &person("ada@example.com"),
            "erased-2222222222222222",
            T0 + 40_000,
        )
        .unwrap();
    assert_eq!(
        outcome,
        ArchiveErasure {
            segments: 2,
            entries: 5
        }
    );
    let report = verify(archive.root()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    for s in &archive.manifest().unwrap().segments {
        let text = read_lines(&archive.root().join(&s.file)).join("\n");
        assert_eq!(
            text.contains("ada@example.com"),
            s.org_id == OTHER_ORG,
            "{}",
            s.file
        );
    }
    assert_eq!(
        archive
            .erase(
                ORG,
                &person("ada@example.com"),
                "erased-2222222222222222",
                T0 + 50_000
            )
            .unwrap(),
        ArchiveErasure::default(),
        "nothing left to erase"
    );
}

#[test]
fn an_erasure_refuses_to_rewrite_a_segment_that_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, segments) = sample_archive(dir.path());
    let file = &segments[0].file;
    rewrite_segment(&archive, file, |lines| {
        lines[2] = edit_line(&lines[2], |v| v["description"] = "Renamed printer X".into());
    });
    let error = archive
        .erase(ORG, &person("u4"), "erased-1111111111111111", T0 + 30_000)
        .unwrap_err()
        .to_string();
    assert!(error.contains(file.as_str()), "{error}");
    assert!(archive.root().join(file).exists());
    let report = verify(archive.root()).unwrap();
    assert_eq!(
        kinds(&report),
        [(file.clone(), Some(3), ProblemKind::HashMismatch)],
        "still the altered file, still reported"
    );
}

#[test]
fn an_erasure_by_seq_reaches_the_lines_it_lists() {
    let dir = tempfile::tempdir().unwrap();
    let (archive, before) = sample_archive(dir.path());
    let pseudonym = "erased-3333333333333333".to_string();
    // seq 2 was erased before (it keeps its pseudonym), 3 was never archived, 9 does not exist.
    let seqs: BTreeMap<Seq, String> = [2, 3, 4, 7, 9]
        .map(|s| (Seq::new(s), pseudonym.clone()))
        .into();
    let outcome = archive.erase_seqs(ORG, &seqs, T0 + 30_000).unwrap();
    assert_eq!(
        outcome,
        ArchiveErasure {
            segments: 2,
            entries: 2
        }
    );
    let report = verify(archive.root()).unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    let manifest = archive.manifest().unwrap();
    assert_eq!(manifest.segments[2], before[2], "the other organization's");
    let mut erased = Vec::new();
    for s in &manifest.segments[..2] {
        for line in read_lines(&archive.root().join(&s.file)) {
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["actor"]["id"] == pseudonym.as_str() {
                assert_eq!(v["actor"], json!({"type": "user", "id": pseudonym}));
                erased.push(v["seq"].as_i64().unwrap());
            }
        }
    }
    assert_eq!(erased, [4, 7]);
    // Nothing is left to do the second time.
    assert_eq!(
        archive.erase_seqs(ORG, &seqs, T0 + 40_000).unwrap(),
        ArchiveErasure::default()
    );
}
