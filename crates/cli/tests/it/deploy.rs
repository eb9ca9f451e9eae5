//! What an operator installs and how they back up and restore: the systemd unit in `deploy/`
//! passes systemd's own check, and the backup procedures of docs/operations.md give back a trail
//! that serves every entry and verifies, on both backends.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use stele_store_postgres::testing::TestDatabase;

use crate::support::{
    ServeOptions, key_in, list_all, record_batches, runtime, serve_sqlite, spawn, stele_ok,
    verify_ok,
};

const STELE: &str = env!("CARGO_BIN_EXE_stele");

/// `deploy/stele.service`, with its `ExecStart` pointed at the binary under test (systemd checks
/// that the program exists), passes `systemd-analyze verify` without a word.
#[test]
fn the_systemd_unit_verifies() {
    let unit = include_str!("../../../../deploy/stele.service");
    assert!(unit.contains("ExecStart=/usr/local/bin/stele serve"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stele.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/stele", STELE)).unwrap();
    let out = run_ok(
        Command::new("systemd-analyze").arg("verify").arg(&path),
        "systemd-analyze (Debian package systemd; scripts/test installs it)",
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("stele.service"), "{said}");
}

/// Runs an operator's tool (`what` names it); it must succeed. Returns its output.
fn run_ok(command: &mut Command, what: &str) -> std::process::Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what} does not run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn events(n: usize) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"action": "update", "description": format!("change {i}"), "actor": {"type": "user", "id": "u1"}}))
        .collect();
    json!({ "events": events })
}

/// The entries the server at `url` lists (every actor type), by id with their `seq`.
fn entries(url: &str, key: &str) -> std::collections::BTreeMap<String, i64> {
    runtime().block_on(list_all(&reqwest::Client::new(), url, key))
}

/// The embedded database, backed up while the server runs (`sqlite3 … ".backup …"`) with the
/// signing key beside it, restored into a new data directory: a server there serves every entry
/// the original acknowledged before the backup, and the trail verifies.
#[test]
fn a_live_sqlite_backup_restores_a_trail_that_serves_and_verifies() {
    let original = tempfile::tempdir().unwrap();
    let mut server = serve_sqlite(original.path(), &[]);
    let key = key_in(&server.banner).unwrap();
    record_batches(&server.url, &key, vec![events(40), events(25)]);
    let before = entries(&server.url, &key);
    assert!(before.len() >= 65);

    let restored = tempfile::tempdir().unwrap();
    let backup = restored.path().join("stele.db");
    run_ok(
        Command::new("sqlite3")
            .arg(original.path().join("stele.db"))
            .arg(format!(".backup '{}'", backup.display())),
        "sqlite3",
    );
    // Written after the backup: not in it.
    record_batches(&server.url, &key, vec![events(5)]);
    server.stop();
    copy_key(original.path(), restored.path());

    let server = serve_sqlite(restored.path(), &[]);
    assert!(
        key_in(&server.banner).is_none(),
        "a restored trail is not a first start"
    );
    assert_served(&entries(&server.url, &key), &before);
    let report = stele_ok(&["verify", "--data-dir", restored.path().to_str().unwrap()]);
    assert!(report.contains(": OK,"), "{report}");
}

/// PostgreSQL, dumped while the server runs (`pg_dump -Fc`) and restored into a new database
/// (`pg_restore`), with the signing key: a server on it serves every entry and the trail
/// verifies.
#[test]
fn a_postgres_dump_restores_a_trail_that_serves_and_verifies() {
    let rt = runtime();
    let (_database, url) = rt.block_on(TestDatabase::create());
    let (_copy, copy_url) = rt.block_on(TestDatabase::create());
    let original = tempfile::tempdir().unwrap();
    let mut server = spawn(&ServeOptions::new(original.path(), &url, 1)).ready();
    let key = key_in(&server.banner).unwrap();
    record_batches(&server.url, &key, vec![events(30), events(12)]);
    let before = entries(&server.url, &key);
    assert!(before.len() >= 42);

    let dump = original.path().join("stele.dump");
    run_ok(
        Command::new("pg_dump")
            .args(["-Fc", "-f"])
            .arg(&dump)
            .arg(&url),
        "pg_dump",
    );
    server.stop();
    run_ok(
        Command::new("pg_restore")
            .args(["--no-owner", "-d", &copy_url])
            .arg(&dump),
        "pg_restore",
    );

    let restored = tempfile::tempdir().unwrap();
    copy_key(original.path(), restored.path());
    let server = spawn(&ServeOptions::new(restored.path(), &copy_url, 1)).ready();
    assert!(
        key_in(&server.banner).is_none(),
        "a restored trail is not a first start"
    );
    assert_served(&entries(&server.url, &key), &before);
    verify_ok(&copy_url, restored.path());
}

/// Every entry listed before the backup is served after the restore, at the same `seq`.
fn assert_served(
    after: &std::collections::BTreeMap<String, i64>,
    before: &std::collections::BTreeMap<String, i64>,
) {
    for (id, seq) in before {
        assert_eq!(after.get(id), Some(seq), "{id} after the restore");
    }
}

fn copy_key(from: &Path, to: &Path) {
    std::fs::copy(
        from.join("checkpoint-signing-key"),
        to.join("checkpoint-signing-key"),
    )
    .unwrap();
}
