//! Tamper evidence, tested the way an attacker with database access would try it: stop the
//! server, edit the SQLite file with the `sqlite3` command-line tool, run `stele verify`.

use std::path::Path;
use std::process::Command;

use crate::support::{key_in, record_batches, serve_sqlite};

const STELE: &str = env!("CARGO_BIN_EXE_stele");

/// A data directory with six entries and a signed checkpoint at seq 6, made by a real server.
fn recorded_trail() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_sqlite(dir.path(), &[]);
    let (url, key) = (
        server.url.clone(),
        key_in(&server.banner).expect("a first start prints the admin key"),
    );
    let bodies = (0..3)
        .map(|i| {
            serde_json::json!({"events": [
                {"action": "create", "description": format!("create {i}"),
                 "actor": {"type": "user", "id": "u1", "email": "ada@example.com"},
                 "context": {"ip": "10.0.0.1", "user_agent": "curl"}},
                {"action": "update", "description": format!("update {i}"), "actor": {"type": "api"}},
            ]})
        })
        .collect();
    record_batches(&url, &key, bodies);
    // A graceful stop signs the final checkpoint.
    server.stop();
    dir
}

fn verify(dir: &Path) -> (bool, String) {
    let out = stele_on(dir, &["verify"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs `stele` with these arguments and `--data-dir dir`; returns its output.
fn stele_on(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(STELE)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .unwrap()
}

fn sqlite3(dir: &Path, sql: &str) -> std::process::Output {
    Command::new("sqlite3")
        .arg(dir.join("stele.db"))
        .arg(sql)
        .output()
        .expect("the sqlite3 command-line tool is installed (CI installs it)")
}

/// Copies the trail, drops the immutability triggers, applies `sql`, and verifies.
fn tampered(trail: &Path, sql: &str) -> String {
    let copy = tempfile::tempdir().unwrap();
    for file in std::fs::read_dir(trail).unwrap() {
        let file = file.unwrap();
        std::fs::copy(file.path(), copy.path().join(file.file_name())).unwrap();
    }
    let out = sqlite3(
        copy.path(),
        &format!(
            "DROP TRIGGER entries_immutable; DROP TRIGGER entries_undeletable; \
             DROP TRIGGER checkpoints_immutable; DROP TRIGGER checkpoints_undeletable; {sql}"
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, report) = verify(copy.path());
    assert!(!ok, "tampering must be detected: {report}");
    report
}

#[test]
fn an_untouched_trail_verifies_with_its_checkpoint() {
    let trail = recorded_trail();
    let (ok, report) = verify(trail.path());
    assert!(ok, "{report}");
    assert!(
        report.contains("OK, 6 entries (seq 1..=6), 1 checkpoints, in"),
        "{report}"
    );

    // With a published key instead of the key file: another key fails the signatures.
    let stranger = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    let out = stele_on(trail.path(), &["verify", "--public-key", stranger]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("BadSignature"));

    // Without any key, the OK line says the signatures were not checked.
    let bare = tempfile::tempdir().unwrap();
    std::fs::copy(trail.path().join("stele.db"), bare.path().join("stele.db")).unwrap();
    let (ok, report) = verify(bare.path());
    assert!(ok && report.contains("signatures NOT checked"), "{report}");

    // A mistyped directory is an error, not an empty success.
    let out = stele_on(&trail.path().join("typo"), &["verify"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no Stele database"));
    assert!(!trail.path().join("typo").exists());
}

#[test]
fn the_database_refuses_updates_and_deletes_of_entries() {
    let trail = recorded_trail();
    for (sql, refusal) in [
        (
            "UPDATE entries SET description = 'x' WHERE seq = 2",
            "audit entries are immutable",
        ),
        (
            "DELETE FROM entries WHERE seq = 2",
            "audit entries are immutable",
        ),
        ("DELETE FROM checkpoints", "checkpoints are immutable"),
        (
            "UPDATE checkpoints SET seq = 1",
            "checkpoints are immutable",
        ),
        (
            "UPDATE chain_state SET seq = 1",
            "the chain only moves forward",
        ),
    ] {
        let out = sqlite3(trail.path(), sql);
        assert!(!out.status.success(), "{sql}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(refusal),
            "{sql}"
        );
    }
    assert!(verify(trail.path()).0);
}

#[test]
fn every_kind_of_tampering_is_detected_and_named() {
    let trail = recorded_trail();
    let cases = [
        (
            "UPDATE entries SET description = 'forged' WHERE seq = 3",
            "FAILED at seq 3: Changed",
        ),
        (
            r#"UPDATE entries SET personal = '{"actor_id":"u2"}' WHERE seq = 3"#,
            "FAILED at seq 3: Changed: entry 3 was changed: its personal fields",
        ),
        (
            // The one update the triggers allow, abused: a fake erasure that rewrites the actor.
            r#"UPDATE entries SET erased = 1, salt = NULL, personal = '{"actor_id":"mallory"}' WHERE seq = 1"#,
            "FAILED at seq 1: Changed: entry 1 was changed: its personal fields",
        ),
        (
            "DELETE FROM entries WHERE seq = 4",
            "FAILED at seq 4: Missing",
        ),
        (
            "DELETE FROM entries WHERE seq = 6",
            "FAILED at seq 6: Missing",
        ),
        (
            "UPDATE entries SET seq = -1 WHERE seq = 2; UPDATE entries SET seq = 2 WHERE seq = 5; \
             UPDATE entries SET seq = 5 WHERE seq = -1",
            "FAILED at seq 2: Reordered",
        ),
        (
            "UPDATE checkpoints SET chain_head = zeroblob(32)",
            "FAILED at seq 6: BadSignature",
        ),
        (
            "UPDATE checkpoints SET seq = 5",
            "FAILED at seq 5: BadSignature",
        ),
    ];
    for (sql, expected) in cases {
        let report = tampered(trail.path(), sql);
        assert!(
            report.contains(expected),
            "{sql}\n expected {expected}\n got {report}"
        );
    }
}

#[test]
fn erasure_from_the_cli_keeps_the_chain_verifiable() {
    let trail = recorded_trail();
    let out = stele_on(
        trail.path(),
        &[
            "erase",
            "--org",
            "default",
            "--actor",
            "ada@example.com",
            "--reason",
            "GDPR request",
        ],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("erased 3 entries") && said.contains("erased-"),
        "{said}"
    );
    let (ok, report) = verify(trail.path());
    assert!(ok, "{report}");
    assert!(report.contains("OK, 7 entries"), "{report}");
    let leftovers = sqlite3(
        trail.path(),
        "SELECT count(*) FROM entries WHERE personal LIKE '%ada@%' OR salt IS NULL AND erased = 0",
    );
    assert_eq!(String::from_utf8_lossy(&leftovers.stdout).trim(), "0");
}

#[test]
fn proofs_from_the_api_verify_offline_with_the_public_key() {
    let trail = recorded_trail();
    let key = stele_on(
        trail.path(),
        &["key", "create", "--org", "default", "--scopes", "read"],
    );
    let key = String::from_utf8(key.stdout).unwrap().trim().to_string();
    let server = serve_sqlite(trail.path(), &[]);
    let url = server.url.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (proof, public) = rt.block_on(async {
        let client = reqwest::Client::new();
        let get = |path: String| {
            let (client, key) = (client.clone(), key.clone());
            async move {
                let r = client.get(path).bearer_auth(key).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.json::<serde_json::Value>().await.unwrap()
            }
        };
        // The newest recorded create (not the key's creation, which `stele key create` just
        // recorded after the last checkpoint, as a System actor).
        let page = get(format!(
            "{url}/v1/events?actor_type=user&limit=1&action=create"
        ))
        .await;
        let id = page["entries"][0]["id"].as_str().unwrap().to_string();
        let proof = get(format!("{url}/v1/events/{id}/proof")).await;
        let public = get(format!("{url}/v1/integrity/public-key")).await;
        (proof, public["public_key"].as_str().unwrap().to_string())
    });
    drop(server);

    let file = trail.path().join("proof.json");
    let check = |document: &serde_json::Value| {
        std::fs::write(&file, document.to_string()).unwrap();
        let out = Command::new(STELE)
            .args(["proof", "verify"])
            .arg(&file)
            .args(["--public-key", &public])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (ok, said) = check(&proof);
    assert!(ok, "{said}");
    assert!(
        said.starts_with("OK: entry seq 5 is included in the checkpoint at seq 6"),
        "{said}"
    );
    let mut forged = proof.clone();
    forged["entry"]["action"] = serde_json::json!("delete");
    let (ok, said) = check(&forged);
    assert!(!ok && said.starts_with("INVALID"), "{said}");

    // The same documents from the database, without a server.
    let id = proof["entry"]["id"].as_str().unwrap();
    let out = stele_on(
        trail.path(),
        &["proof", "inclusion", "--org", "default", id],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let offline: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(offline["entry"], proof["entry"]);
    let (ok, said) = check(&offline);
    assert!(
        ok && said.starts_with("OK: entry seq 5 is included"),
        "{said}"
    );
    let consistency_from = |from: &str| {
        let args = [
            "proof",
            "consistency",
            "--org",
            "default",
            "--from",
            from,
            "--to",
            "6",
        ];
        stele_on(trail.path(), &args)
    };
    let out = consistency_from("6");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let consistency: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (ok, said) = check(&consistency);
    assert!(
        ok && said.starts_with("OK: the checkpoint at seq 6 extends"),
        "{said}"
    );
    let out = consistency_from("5");
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && error.contains("there is no checkpoint at seq 5"),
        "{error}"
    );
}

#[test]
fn export_from_the_cli_writes_the_file_and_records_itself() {
    let trail = recorded_trail();
    let run = |args: &[&str]| stele_on(trail.path(), args);
    let out = run(&[
        "export", "--org", "default", "--format", "csv", "--action", "update",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    let csv = csv.strip_prefix('\u{feff}').expect("a BOM");
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert!(lines[0].starts_with("id,seq,occurred_at,channel,action,"));
    assert_eq!(lines.len(), 1 + 3, "{csv}");
    assert!(lines[1..].iter().all(|l| l.contains(",update,")));

    // The export is in the trail as a System action from the command line, not in itself.
    let out = run(&[
        "export",
        "--org",
        "default",
        "--format",
        "ndjson",
        "--actor-type",
        "system",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let entries: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 1, "{text}");
    let entry = &entries[0];
    assert_eq!(entry["detailed_action"], "audit_log.export");
    assert_eq!(entry["context"]["source"], "cli");
    assert_eq!(entry["metadata"]["format"], "csv");
    assert_eq!(entry["metadata"]["entries"], 3);
    let (ok, report) = verify(trail.path());
    assert!(ok && report.contains("OK, 8 entries"), "{report}");

    let out = run(&["export", "--org", "default", "--format", "xml"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--format"));
    let out = run(&["export", "--org", "default", "--from", "soon"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from"));
}

/// `stele verify` checks what came after the last checkpoint a verification passed; `--full`
/// checks everything. The point it resumes from is trusted only through the checkpoint's
/// signature: a forged one means a full verification.
#[test]
fn verify_checks_what_is_new_unless_full() {
    let trail = tempfile::tempdir().unwrap();
    let mut server = serve_sqlite(trail.path(), &[]);
    let key = key_in(&server.banner).expect("a first start prints the admin key");
    let batch = |n: usize| {
        let events: Vec<_> = (0..n)
            .map(|i| serde_json::json!({"action": format!("a{i}"), "actor": {"type": "api"}}))
            .collect();
        serde_json::json!({ "events": events })
    };
    record_batches(&server.url, &key, vec![batch(6)]);
    server.stop();
    let (ok, first) = verify(trail.path());
    assert!(
        ok && first.contains("OK, 6 entries (seq 1..=6), 1 checkpoints"),
        "{first}"
    );
    let (ok, again) = verify(trail.path());
    assert!(
        ok && again.contains("OK, 0 entries (none new) after the checkpoint at seq 6"),
        "{again}"
    );

    // New entries (and the checkpoint the graceful stop signs): only they are checked.
    let mut server = serve_sqlite(trail.path(), &[]);
    record_batches(&server.url, &key, vec![batch(2)]);
    server.stop();
    let (ok, report) = verify(trail.path());
    assert!(
        ok && report.contains("OK, 2 entries (seq 7..=8) after the checkpoint at seq 6"),
        "{report}"
    );

    // Tampering before the verified checkpoint: only `--full` looks there.
    let out = sqlite3(
        trail.path(),
        "DROP TRIGGER entries_immutable; UPDATE entries SET description = 'forged' WHERE seq = 3",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, report) = verify(trail.path());
    assert!(ok, "{report}");
    let out = stele_on(trail.path(), &["verify", "--full"]);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && report.contains("FAILED at seq 3: Changed"),
        "{report}"
    );

    // A recorded point whose frontier does not fold to the signed root is not trusted.
    let forged = format!(r#"{{"size":8,"nodes":["{}"]}}"#, "ab".repeat(32));
    let out = sqlite3(
        trail.path(),
        &format!("UPDATE verified_points SET checkpoint_seq = 8, frontier = '{forged}'"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, report) = verify(trail.path());
    assert!(
        !ok && report.contains("FAILED at seq 3: Changed"),
        "{report}"
    );
}

/// The server verifies its chains by itself: a tampered entry shows in `/readyz` (organization,
/// `seq`, kind) and in the log, while the server keeps serving.
#[test]
fn the_server_finds_a_tampered_chain_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    // No checkpoint while it runs: every pass checks the whole (short) chain.
    let mut server = serve_sqlite(
        dir.path(),
        &["--verify-every", "1", "--checkpoint-every", "3600"],
    );
    let key = key_in(&server.banner).expect("a first start prints the admin key");
    let events = (0..4)
        .map(|i| serde_json::json!({"action": format!("a{i}"), "actor": {"type": "api"}}))
        .collect::<Vec<_>>();
    record_batches(
        &server.url,
        &key,
        vec![serde_json::json!({ "events": events })],
    );
    let ready = |server: &crate::support::Server| -> serde_json::Value {
        crate::support::runtime().block_on(async {
            reqwest::get(format!("{}/readyz", server.url))
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        })
    };
    let integrity_until = |server: &crate::support::Server, status: &str| {
        let started = std::time::Instant::now();
        loop {
            let body = ready(server);
            let check = &body["checks"]["integrity"];
            if check["status"] == status && check["last_pass_at"].is_i64() {
                return body;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "integrity never became {status}: {body}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    integrity_until(&server, "ok");

    let out = sqlite3(
        dir.path(),
        "DROP TRIGGER entries_immutable; UPDATE entries SET description = 'forged' WHERE seq = 2",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let body = integrity_until(&server, "failing");
    assert_eq!(
        body["status"], "ready",
        "a failing chain does not stop the server: {body}"
    );
    let problem = &body["checks"]["integrity"]["problems"][0];
    assert_eq!(
        (problem["seq"].as_i64(), problem["kind"].as_str()),
        (Some(2), Some("changed"))
    );
    assert!(
        problem["org_id"].as_str().unwrap().starts_with("org_"),
        "{problem}"
    );
    assert!(
        server
            .log_text()
            .contains("the organization's chain failed verification"),
        "the log names it too"
    );
    server.stop();
}
