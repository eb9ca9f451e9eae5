//! `stele import` as an operator runs it: real servers, real files, the real MariaDB and
//! PostgreSQL servers of the machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{STELE, Server, key_in, record_batches, runtime, serve_sqlite};

/// A server of its own on a fresh data directory, and its first admin key.
struct Target {
    dir: tempfile::TempDir,
    server: Server,
    key: String,
}

fn target() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_sqlite(dir.path(), &[]);
    let key = key_in(&server.banner).expect("a first start prints a key");
    Target { dir, server, key }
}

/// `stele import ARGS` into `target`'s server with its key (in the environment, as the docs
/// advise).
fn import(target: &Target, args: &[&str]) -> Output {
    Command::new(STELE)
        .arg("import")
        .args(args)
        .args(["--url", &target.server.url])
        .env("STELE_API_KEY", &target.key)
        .env_remove("STELE_ORG")
        .env_remove("STELE_URL")
        .output()
        .expect("stele import runs")
}

fn import_ok(target: &Target, args: &[&str]) -> String {
    let out = import(target, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "stele import {args:?} failed: {stderr}"
    );
    assert!(
        !stderr.contains(&target.key),
        "the API key is never printed: {stderr}"
    );
    stderr
}

/// Every entry of the target's organization, by `stele export` (NDJSON, every actor type).
fn exported(target: &Target) -> Vec<Value> {
    let out = Command::new(STELE)
        .args([
            "export",
            "--org",
            "default",
            "--format",
            "ndjson",
            "--actor-type",
            "all",
        ])
        .arg("--data-dir")
        .arg(target.dir.path())
        .env_remove("STELE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The imported entries of `target` (those with `metadata.imported_from`), by that source id;
/// a source id imported twice fails the test.
fn imported(target: &Target) -> BTreeMap<String, Value> {
    let mut by_source = BTreeMap::new();
    for entry in exported(target) {
        let Some(from) = entry["metadata"]["imported_from"].as_str() else {
            continue;
        };
        let from = from.to_string();
        assert!(
            by_source.insert(from.clone(), entry).is_none(),
            "{from} was imported twice"
        );
    }
    by_source
}

/// `n` varied events, `start` onwards, over the last days.
fn events(start: usize, n: usize) -> Vec<Value> {
    let now = stele_core::time::now_millis();
    (start..start + n)
        .map(|i| {
            let action = ["create", "update", "delete", "login", "export"][i % 5];
            let channel = ["default", "auth", "hardware"][i % 3];
            let actor_type = ["user", "api", "webhook", "scheduler"][i % 4];
            let mut e = json!({
                "occurred_at": stele_core::time::format_rfc3339(now - 86_400_000 * 20 + i as i64 * 997),
                "action": action,
                "detailed_action": format!("thing.{}", i % 13),
                "channel": channel,
                "description": format!("Event {i}: naïve café ✓ \"quoted\""),
                "outcome": if i % 7 == 0 { "failure" } else { "success" },
                "actor": {"type": actor_type,
                          "id": format!("u{}", i % 101), "name": format!("User {}", i % 101),
                          "email": format!("u{}@example.com", i % 101)},
                "entity": {"type": "Printer", "id": format!("{}", i % 997), "name": format!("P{i}")},
                "context": {"ip": format!("203.0.113.{}", i % 250), "correlation_id": format!("req-{}", i / 3),
                            "user_agent": "Mozilla/5.0"},
                "changes": [{"field": "name", "old": format!("a{i}"), "new": format!("b{i}")},
                            {"field": "count", "new": i}],
                "metadata": {"site": "Berlin", "n": i, "flag": i % 2 == 0},
            });
            if i % 11 == 0 {
                e["entity_ids"] = json!([format!("x{i}"), format!("y{i}")]);
                e["related_entities"] = json!([{"type": "Tray", "id": format!("t{i}")}]);
            }
            e
        })
        .collect()
}

/// Records the events in batches of 1000.
fn record(target: &Target, events: Vec<Value>) {
    let bodies = events.chunks(1000).map(|c| json!({"events": c})).collect();
    record_batches(&target.server.url, &target.key, bodies);
}

/// An export of the source's entries as NDJSON in `dir`.
fn export_file(source: &Target, dir: &Path) -> PathBuf {
    let path = dir.join("audit.ndjson");
    let out = Command::new(STELE)
        .args(["export", "--org", "default", "--format", "ndjson"])
        .arg("--data-dir")
        .arg(source.dir.path())
        .env_remove("STELE_DATABASE_URL")
        .stdout(std::fs::File::create(&path).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// An entry without what the target assigns anew (`id`, `seq`, `recorded_at`) and without
/// `imported_from`, with Stele's own detailed actions as the source had them.
fn comparable(entry: &Value) -> Value {
    let mut e = entry.clone();
    let o = e.as_object_mut().unwrap();
    for k in ["id", "seq", "recorded_at"] {
        o.remove(k);
    }
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("imported_from");
    }
    if let Some(d) = o["detailed_action"].as_str()
        && let Some(rest) = d.strip_prefix("imported.stele.")
    {
        o["detailed_action"] = json!(format!("stele.{rest}"));
    }
    e
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn import_round_trips_a_100k_entry_export() {
    let source = target();
    let t = Instant::now();
    record(&source, events(0, 100_000));
    eprintln!(
        "recorded 100,000 events in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let files = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let file = export_file(&source, files.path());
    eprintln!("exported in {:.1} s", t.elapsed().as_secs_f64());
    let source_entries = lines(&file);
    assert!(source_entries.len() >= 100_000, "{}", source_entries.len());

    let into = target();
    let t = Instant::now();
    let said = import_ok(&into, &["stele-export", file.to_str().unwrap()]);
    let took = t.elapsed().as_secs_f64();
    eprintln!(
        "imported {} entries in {took:.1} s ({:.0} entries/s): {said}",
        source_entries.len(),
        source_entries.len() as f64 / took
    );
    assert!(
        said.contains(&format!("imported {} rows", source_entries.len())),
        "{said}"
    );

    let imported = imported(&into);
    assert_eq!(imported.len(), source_entries.len());
    for entry in &source_entries {
        let id = entry["id"].as_str().unwrap();
        let copy = imported
            .get(id)
            .unwrap_or_else(|| panic!("entry {id} was not imported"));
        assert_eq!(comparable(copy), comparable(entry), "entry {id}");
    }
}

#[test]
fn importing_twice_stores_once() {
    let source = target();
    record(&source, events(0, 1_234));
    let files = tempfile::tempdir().unwrap();
    let file = export_file(&source, files.path());
    let file = file.to_str().unwrap();
    let into = target();
    import_ok(&into, &["stele-export", file, "--batch-size", "300"]);
    assert_eq!(imported(&into).len(), 1_234);

    // The state file says it is done: nothing is sent.
    let again = import_ok(&into, &["stele-export", file]);
    assert!(again.contains("already imported"), "{again}");
    assert_eq!(imported(&into).len(), 1_234);

    // Without it every row is sent again, and the server's idempotency keys store none twice
    // (`imported` fails on a source entry found twice).
    let fresh = files.path().join("fresh-state.json");
    let resent = import_ok(
        &into,
        &["stele-export", file, "--state", fresh.to_str().unwrap()],
    );
    assert!(resent.contains("1234 events sent"), "{resent}");
    assert_eq!(imported(&into).len(), 1_234);

    // The same entries as a JSON export: the same keys, so nothing new either.
    let json = files.path().join("audit.json");
    let out = Command::new(STELE)
        .args(["export", "--org", "default", "--format", "json"])
        .arg("--data-dir")
        .arg(source.dir.path())
        .env_remove("STELE_DATABASE_URL")
        .stdout(std::fs::File::create(&json).unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    let as_json = import_ok(&into, &["stele-export", json.to_str().unwrap()]);
    assert!(as_json.contains("imported 1234 rows"), "{as_json}");
    assert_eq!(imported(&into).len(), 1_234);
}

#[test]
fn an_interrupted_import_resumes_after_the_rows_it_did() {
    let source = target();
    record(&source, events(0, 12_000));
    let files = tempfile::tempdir().unwrap();
    let file = export_file(&source, files.path());
    let file_arg = file.to_str().unwrap();
    let into = target();

    // A run stopped by --limit, then the rest.
    let limited = import_ok(
        &into,
        &[
            "stele-export",
            file_arg,
            "--limit",
            "700",
            "--batch-size",
            "200",
        ],
    );
    assert!(limited.contains("--limit 700"), "{limited}");
    assert_eq!(imported(&into).len(), 700);

    // A run stopped by Ctrl-C (it finishes the batches on their way, records them and says so),
    // then one killed in the middle (kill -9: no chance to write anything more), then the rest.
    let state = PathBuf::from(format!("{file_arg}.import-state.json"));
    let start = |stderr: Stdio| {
        Command::new(STELE)
            .args(["import", "stele-export", file_arg, "--batch-size", "100"])
            .args(["--url", &into.server.url])
            .env("STELE_API_KEY", &into.key)
            .stderr(stderr)
            .spawn()
            .unwrap()
    };
    let rows_done = || {
        std::fs::read_to_string(&state)
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .and_then(|s| s["rows_done"].as_u64())
            .unwrap_or(0)
    };
    let wait_for = |child: &mut std::process::Child, rows: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        while rows_done() < rows {
            assert!(
                child.try_wait().unwrap().is_none(),
                "the import ended before it was stopped"
            );
            assert!(Instant::now() < deadline, "the import made no progress");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let mut child = start(Stdio::piped());
    wait_for(&mut child, 1_500);
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("interrupted after"), "{said}");
    let recorded = rows_done();
    assert_eq!(
        imported(&into).len() as u64,
        recorded,
        "what the state records is what is stored"
    );

    let mut child = start(Stdio::null());
    wait_for(&mut child, recorded + 1_000);
    child.kill().unwrap();
    child.wait().unwrap();
    let partly = imported(&into).len();
    assert!(partly > 700 && partly < 12_000, "{partly}");

    let rest = import_ok(&into, &["stele-export", file_arg]);
    assert!(rest.contains("12000 rows imported in all"), "{rest}");
    let all = imported(&into);
    assert_eq!(all.len(), 12_000, "every row once");
}

#[test]
fn a_refused_row_stops_the_import_naming_it_unless_skipped() {
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("x.ndjson");
    let entry = |i: usize, action: &str| {
        json!({"id": format!("00000000-0000-7000-8000-{i:012}"), "seq": i, "recorded_at": "2026-11-01T00:00:00.000Z",
               "occurred_at": "2026-11-01T00:00:00.000Z", "action": action, "detailed_action": null,
               "channel": "default", "description": null, "outcome": "success",
               "actor": {"type": "user", "id": "u1"}, "entity": null, "entity_ids": [],
               "context": {}, "changes": [], "metadata": {}})
        .to_string()
    };
    let text: Vec<String> = (1..=10)
        .map(|i| entry(i, if i == 5 { "Not An Action" } else { "create" }))
        .collect();
    std::fs::write(&file, text.join("\n") + "\n").unwrap();
    let into = target();
    let out = import(&into, &["stele-export", file.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains("line 5") && said.contains("action") && said.contains("--skip-invalid"),
        "{said}"
    );
    assert_eq!(imported(&into).len(), 4, "the rows before it are stored");

    let skipped = import_ok(
        &into,
        &["stele-export", file.to_str().unwrap(), "--skip-invalid"],
    );
    assert!(skipped.contains("skipped line 5"), "{skipped}");
    assert!(skipped.contains("1 skipped"), "{skipped}");
    assert_eq!(imported(&into).len(), 9);
}

#[test]
fn a_platform_key_imports_into_the_organization_it_names() {
    let files = tempfile::tempdir().unwrap();
    let source = target();
    record(&source, events(0, 300));
    let file = export_file(&source, files.path());
    let file = file.to_str().unwrap();
    let into = target();
    let out = Command::new(STELE)
        .args(["key", "create", "--platform", "--scopes", "ingest,read"])
        .arg("--data-dir")
        .arg(into.dir.path())
        .env_remove("STELE_DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let platform = Target {
        key: String::from_utf8(out.stdout).unwrap().trim().to_string(),
        ..into
    };

    // Without --org the server refuses every event, naming `organization`.
    let out = import(&platform, &["stele-export", file]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        said.contains(": organization:") && said.contains("--org"),
        "{said}"
    );

    let state = files.path().join("tenant.json");
    let said = import_ok(
        &platform,
        &[
            "stele-export",
            file,
            "--org",
            "tenant-42",
            "--state",
            state.to_str().unwrap(),
        ],
    );
    assert!(said.contains("(organization tenant-42)"), "{said}");
    let listed = runtime().block_on(async {
        let r = reqwest::Client::new()
            .get(format!("{}/v1/events", platform.server.url))
            .bearer_auth(&platform.key)
            .header("Stele-Organization", "tenant-42")
            .query(&[("actor_type", "all"), ("limit", "1")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    });
    // The 300 imported, and the organization's creation, which the first batch caused.
    assert_eq!(listed["total"], 301, "{listed}");
}

#[test]
fn a_workos_csv_export_is_imported() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/workos-export.csv");
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("workos.csv");
    std::fs::copy(&fixture, &file).unwrap();
    let into = target();
    let said = import_ok(&into, &["workos-csv", file.to_str().unwrap()]);
    assert!(said.contains("imported 4 rows"), "{said}");
    let got = imported(&into);
    assert_eq!(got.len(), 4, "{:?}", got.keys());
    let signed_in = &got["event_01GBZK5MP7TD1YCFQHFR22180V"];
    assert_eq!(signed_in["action"], "login");
    assert_eq!(signed_in["detailed_action"], "user.signed_in");
    assert_eq!(signed_in["occurred_at"], "2026-09-08T19:46:03.435Z");
    assert_eq!(
        signed_in["actor"],
        json!({"type": "user", "id": "user_TF4C5938", "name": "Jon Smith", "metadata": {"role": "admin"}})
    );
    assert_eq!(signed_in["entity"]["id"], "user_98432YHF");
    assert_eq!(signed_in["related_entities"][0]["type"], "team");
    assert_eq!(signed_in["context"]["ip"], "203.0.113.9");
    assert_eq!(signed_in["metadata"]["origin.protocol"], "workos");
    assert_eq!(signed_in["metadata"]["origin.version"], "1");
    let bot = &got["event_01GBZK5MP7TD1YCFQHFR22180X"];
    assert_eq!(bot["actor"]["type"], "api");
    assert_eq!(bot["metadata"]["actor.original_type"], "service_account");
    assert_eq!(bot["context"]["location"], "New York, NY");
    assert_eq!(bot["action"], "delete");
    assert_eq!(bot["metadata"]["reason"], "cleanup, \"quarterly\"");
    // The password the metadata held is redacted on the way in, as on any ingest.
    assert_eq!(bot["metadata"]["password"], "[REDACTED]");
    assert!(
        got.keys().any(|k| k.starts_with("row 4")),
        "{:?}",
        got.keys()
    );
}

/// The table of laravel-activitylog 4's migrations (`create_activity_log_table`,
/// `add_event_column`, `add_batch_uuid_column`).
const MARIADB_TABLE: &str = "CREATE TABLE activity_log (
    id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY,
    log_name VARCHAR(255) NULL,
    description TEXT NOT NULL,
    subject_type VARCHAR(255) NULL,
    event VARCHAR(255) NULL,
    subject_id BIGINT UNSIGNED NULL,
    causer_type VARCHAR(255) NULL,
    causer_id BIGINT UNSIGNED NULL,
    properties JSON NULL,
    batch_uuid CHAR(36) NULL,
    created_at TIMESTAMP NULL,
    updated_at TIMESTAMP NULL)";

const POSTGRES_TABLE: &str = "CREATE TABLE activity_log (
    id BIGSERIAL PRIMARY KEY,
    log_name VARCHAR(255) NULL,
    description TEXT NOT NULL,
    subject_type VARCHAR(255) NULL,
    event VARCHAR(255) NULL,
    subject_id BIGINT NULL,
    causer_type VARCHAR(255) NULL,
    causer_id BIGINT NULL,
    properties JSON NULL,
    batch_uuid UUID NULL,
    created_at TIMESTAMP(0) WITHOUT TIME ZONE NULL,
    updated_at TIMESTAMP(0) WITHOUT TIME ZONE NULL)";

/// Rows as the package writes them: a create, an update and a delete of a post by a user in one
/// batch, a custom activity without subject or causer, and `n` more updates.
fn activity_rows(n: usize) -> Vec<String> {
    let mut rows = vec![
        r#"('default', 'created', 'App\\Models\\Post', 'created', 7, 'App\\Models\\User', 1, '{"attributes": {"title": "Hello", "body": "First"}}', '5d5c3b2a-1d1e-4f43-9b53-2c0f8e8b8a01', '2026-11-02 10:00:00')"#.to_string(),
        r#"('default', 'updated', 'App\\Models\\Post', 'updated', 7, 'App\\Models\\User', 1, '{"attributes": {"title": "Hello world", "body": "First"}, "old": {"title": "Hello", "body": "First"}, "ip": "203.0.113.5"}', '5d5c3b2a-1d1e-4f43-9b53-2c0f8e8b8a01', '2026-11-02 10:00:01')"#.to_string(),
        r#"('Orders', 'deleted', 'App\\Models\\Post', 'deleted', 7, 'App\\Models\\User', 1, '{"old": {"title": "Hello world", "body": "First"}}', NULL, '2026-11-02 10:00:02')"#.to_string(),
        r#"('default', 'Look, I logged something', NULL, NULL, NULL, NULL, NULL, '[]', NULL, '2026-11-02 10:00:03')"#.to_string(),
    ];
    for i in 0..n {
        rows.push(format!(
            r#"('default', 'updated', 'App\\Models\\Post', 'updated', {i}, 'App\\Models\\User', 2, '{{"attributes": {{"n": {}}}, "old": {{"n": {i}}}}}', NULL, '2026-11-03 10:00:00')"#,
            i + 1
        ));
    }
    rows
}

fn insert_sql(rows: &[String], postgres: bool) -> String {
    let rows = if postgres {
        // PostgreSQL takes a backslash in a string as it is.
        rows.iter()
            .map(|r| r.replace("\\\\", "\\"))
            .collect::<Vec<_>>()
    } else {
        rows.to_vec()
    };
    format!(
        "INSERT INTO activity_log (log_name, description, subject_type, event, subject_id, \
         causer_type, causer_id, properties, batch_uuid, created_at) VALUES {}",
        rows.join(", ")
    )
}

fn check_activity(got: &BTreeMap<String, Value>) {
    let created = &got["activity_log:1"];
    assert_eq!(created["action"], "create");
    assert_eq!(created["detailed_action"], "Post.created");
    assert_eq!(created["occurred_at"], "2026-11-02T10:00:00.000Z");
    assert_eq!(
        created["actor"],
        json!({"type": "user", "id": "1", "metadata": {"class": "App\\Models\\User"}})
    );
    assert_eq!(
        created["entity"],
        json!({"type": "Post", "id": "7", "metadata": {"class": "App\\Models\\Post"}})
    );
    assert_eq!(
        created["changes"],
        json!([{"field": "body", "new": "First"}, {"field": "title", "new": "Hello"}])
    );
    assert_eq!(
        created["context"]["correlation_id"],
        "5d5c3b2a-1d1e-4f43-9b53-2c0f8e8b8a01"
    );
    let updated = &got["activity_log:2"];
    assert_eq!(updated["action"], "update");
    assert_eq!(
        updated["changes"],
        json!([{"field": "title", "old": "Hello", "new": "Hello world"}])
    );
    assert_eq!(updated["metadata"]["ip"], "203.0.113.5");
    let deleted = &got["activity_log:3"];
    assert_eq!(deleted["action"], "delete");
    assert_eq!(deleted["channel"], "orders");
    assert_eq!(deleted["metadata"]["activitylog.log_name"], "Orders");
    let custom = &got["activity_log:4"];
    assert_eq!(custom["action"], "other");
    assert_eq!(custom["actor"]["type"], "system");
    assert_eq!(custom["description"], "Look, I logged something");
}

/// Imports the table at `url` (written by `write`), then again (nothing new), then after
/// `write` added rows (only those).
fn import_activity_log(url: &str, write: impl Fn(&[String])) {
    write(&activity_rows(1_200));
    let into = target();
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path().join("state.json");
    let args = [
        "activitylog",
        "--database-url",
        url,
        "--page-size",
        "500",
        "--state",
        state.to_str().unwrap(),
    ];
    let said = import_ok(&into, &args);
    assert!(said.contains("imported 1204 rows"), "{said}");
    assert!(
        !said.contains(url),
        "the database URL is not printed: {said}"
    );
    let got = imported(&into);
    assert_eq!(got.len(), 1_204);
    check_activity(&got);

    let again = import_ok(&into, &args);
    assert!(again.contains("already imported"), "{again}");
    write(&activity_rows(3)[4..]);
    let more = import_ok(&into, &args);
    assert!(more.contains("imported 3 rows"), "{more}");
    assert_eq!(imported(&into).len(), 1_207);
}

/// A MariaDB database made for one test and dropped with it, on the server at
/// `STELE_TEST_MARIADB_URL` (default `mysql://root@127.0.0.1:3306`).
struct MariaDb {
    admin: String,
    name: String,
}

impl MariaDb {
    fn create() -> (MariaDb, String) {
        let admin = std::env::var("STELE_TEST_MARIADB_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| "mysql://root@127.0.0.1:3306".into());
        let admin = admin.trim_end_matches('/').to_string();
        let name = format!("stele_test_{}", uuid_like());
        mysql(&admin, &format!("CREATE DATABASE {name}"));
        let url = format!("{admin}/{name}");
        (MariaDb { admin, name }, url)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        mysql(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {}", self.name),
        );
    }
}

/// A name part unique to this test run.
fn uuid_like() -> String {
    format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Runs SQL on the MariaDB server at `url`.
fn mysql(url: &str, sql: &str) {
    let (url, sql) = (url.to_string(), sql.to_string());
    // On a thread with a runtime of its own: this may run inside a test's runtime or in `drop`.
    std::thread::spawn(move || {
        runtime().block_on(async {
            use mysql_async::prelude::Queryable as _;
            let opts = mysql_async::Opts::from_url(&url).unwrap();
            let mut conn = mysql_async::Conn::new(opts).await.unwrap_or_else(|e| {
                panic!(
                    "MariaDB is not reachable at {url} ({e}). These tests need a running server: \
                     scripts/test starts the local one, or set STELE_TEST_MARIADB_URL."
                )
            });
            conn.query_drop(sql).await.unwrap();
            conn.disconnect().await.unwrap();
        })
    })
    .join()
    .unwrap();
}

#[test]
fn an_activity_log_table_is_imported_from_mariadb() {
    let (_db, url) = MariaDb::create();
    mysql(&url, MARIADB_TABLE);
    import_activity_log(&url, |rows| mysql(&url, &insert_sql(rows, false)));
}

#[test]
fn an_activity_log_table_is_imported_from_postgresql() {
    let rt = runtime();
    let (_db, url) = rt.block_on(stele_store_postgres::testing::TestDatabase::create());
    let run = |sql: String| {
        let url = url.clone();
        std::thread::spawn(move || {
            runtime().block_on(async {
                let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(connection);
                client.batch_execute(&sql).await.unwrap();
            })
        })
        .join()
        .unwrap();
    };
    run(POSTGRES_TABLE.to_string());
    import_activity_log(&url, |rows| run(insert_sql(rows, true)));
}
