//! `stele archive verify DIR` on archives the library wrote: exit codes and what it prints.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;
use stele_archive::Archive;
use stele_core::chain::{SealedEvent, entry_hash, genesis};
use stele_core::redact::RedactionRules;
use stele_core::{Entry, Seq, parse_event};
use stele_store::RetiredEntry;

const STELE: &str = env!("CARGO_BIN_EXE_stele");
const ORG: &str = "org_01a200ba10c470ea97c07444fea00801";
const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// Entries 1..=n of ORG with real chain hashes.
fn chain(n: i64) -> Vec<RetiredEntry> {
    let mut prev = genesis(ORG);
    (1..=n)
        .map(|seq| {
            let body = json!({
                "action": "update", "occurred_at": "2025-12-31T00:00:00Z",
                "description": format!("Renamed printer {seq}"),
                "actor": {"type": "user", "id": "u1", "email": "ada@example.com"},
                "entity": {"type": "Printer", "id": seq},
                "context": {"ip": "203.0.113.7"},
                "before": {"name": "A"}, "after": {"name": "B"}
            });
            let event = parse_event(&body, T0, &RedactionRules::default()).unwrap();
            let salt = [seq as u8; 16];
            let sealed = SealedEvent::seal_format_1(event, salt);
            let id = format!("019b7c72-ae20-7000-8000-{seq:012}");
            let recorded_at = T0 + seq;
            let seq = Seq::new(seq);
            let hash = entry_hash(&prev, ORG, seq, &id, recorded_at, &sealed.event_digest);
            let retired = RetiredEntry {
                org_id: ORG.into(),
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

fn archive_verify(dir: &Path) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(STELE)
        .args(["archive", "verify"])
        .arg(dir)
        .output()
        .expect("stele runs");
    (
        status.code().expect("exited"),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

#[test]
fn archive_verify_passes_an_intact_archive_and_names_the_first_problem_of_a_tampered_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("archive");
    let archive = Archive::open(&root).unwrap();
    let entries = chain(5);
    let first = archive.write_segment(&entries[..3], T0 + 1000).unwrap();
    let second = archive.write_segment(&entries[3..], T0 + 2000).unwrap();

    let (code, out, err) = archive_verify(&root);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        format!(
            "archive {}: 2 segments, 5 entries\n  {ORG}: 2 segments, 5 entries, seq 1..=5\nOK\n",
            root.display()
        )
    );

    // One changed byte in the second segment, and a file the manifest does not list.
    let path = root.join(&second.file);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    std::fs::write(root.join("stray.ndjson.zst"), b"").unwrap();
    let (code, out, _) = archive_verify(&root);
    assert_eq!(code, 1, "{out}");
    let failed = out
        .lines()
        .find(|l| l.starts_with("FAILED: "))
        .unwrap_or_else(|| panic!("no FAILED line in {out}"));
    assert_eq!(
        failed,
        format!(
            "FAILED: {}: the file's SHA-256 differs from the manifest's: it was changed after it \
             was written",
            second.file
        )
    );
    assert!(
        out.contains("stray.ndjson.zst: is in the archive directory but not in the manifest"),
        "{out}"
    );
    assert!(
        !out.contains(&first.file),
        "the first segment is intact: {out}"
    );
    assert!(!out.contains("\nOK"), "{out}");

    // Without a manifest it cannot run at all.
    let (code, _, err) = archive_verify(dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("no manifest"), "{err}");
}
