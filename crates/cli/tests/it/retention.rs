//! Retention from the command line, on a real data directory: `stele prune` archives and then
//! removes the expired entries and records its run; `stele verify` reports the chain intact from
//! the new first entry, anchored by a checkpoint; `stele archive verify` checks the archive; and
//! the database still refuses any other deletion.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;
use stele_core::time::{format_rfc3339, now_millis};

use crate::support::{key_in, record_batches, serve_sqlite};

const STELE: &str = env!("CARGO_BIN_EXE_stele");
const DAY: i64 = 24 * 3600 * 1000;

fn stele(args: &[&str], dir: &Path) -> Output {
    Command::new(STELE)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env_remove("STELE_ARCHIVE_DIR")
        .output()
        .unwrap()
}

/// `stele archive verify` says OK.
fn archive_verifies(dir: &str) {
    let out = Command::new(STELE)
        .args(["archive", "verify", dir])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A data directory whose first three entries are 400 days old and last two recent, recorded
/// by a real server that was then stopped.
fn trail_with_old_entries() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_sqlite(dir.path(), &["--no-prune"]);
    let (url, key) = (
        server.url.clone(),
        key_in(&server.banner).expect("a first start prints the admin key"),
    );
    let now = now_millis();
    let event = |action: &str, age_days: i64| {
        json!({"action": action, "occurred_at": format_rfc3339(now - age_days * DAY),
               "description": format!("{action} <b>"),
               "actor": {"type": "user", "id": "u1", "email": "ada@example.com"}})
    };
    let body = json!({"events": [event("old", 402), event("old", 401), event("old", 400)]});
    let recent = json!({"events": [event("recent", 2), event("recent", 1)]});
    record_batches(&url, &key, vec![body, recent]);
    server.stop();
    dir
}

#[test]
fn prune_archives_then_removes_and_verify_reports_the_anchored_chain() {
    let dir = trail_with_old_entries();
    let archive = dir.path().join("archive");
    let archive_arg = archive.to_str().unwrap();

    let out = stele(&["prune", "--archive-dir", archive_arg], dir.path());
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("removed 3 entries (default 3), 3 archived"),
        "{said}"
    );

    let out = stele(&["verify"], dir.path());
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("OK, 3 entries (seq 4..=6), "),
        "two recent and the run's own entry: {said}"
    );
    assert!(
        said.contains("3 entries pruned by retention (every entry up to seq 3), anchored by the checkpoint at seq"),
        "{said}"
    );

    archive_verifies(archive_arg);

    // Erasing the person reaches their archived entries too, and the archive still verifies.
    let out = stele(
        &[
            "erase",
            "--org",
            "default",
            "--actor",
            "u1",
            "--archive-dir",
            archive_arg,
        ],
        dir.path(),
    );
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("erased 2 entries in default"), "{said}");
    assert!(
        said.contains("erased 3 archived entries, rewriting 1 segments"),
        "{said}"
    );
    archive_verifies(archive_arg);

    // A second run finds nothing more, and says so in its own entry.
    let out = stele(&["prune", "--json"], dir.path());
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    let report: serde_json::Value =
        serde_json::from_str(said.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(report["removed_total"], 0, "{report}");
    assert_eq!(
        report["record"]["seq"], 8,
        "after the erasure's record, seq 7: {report}"
    );

    // Retention is the only way out: the database refuses any other deletion.
    for (sql, says) in [
        (
            "DELETE FROM entries WHERE seq = 4",
            "audit entries are immutable",
        ),
        ("DELETE FROM pruned_entries", "the chain only moves forward"),
        (
            "UPDATE pruned_entries SET seq = 9",
            "the chain only moves forward",
        ),
    ] {
        let out = Command::new("sqlite3")
            .arg(dir.path().join("stele.db"))
            .arg(sql)
            .output()
            .expect("the sqlite3 command-line tool is installed (CI installs it)");
        assert!(text(&out).contains(says), "{sql}: {}", text(&out));
    }
}
