//! End-to-end tests of the `stele` binary as a user runs it: real processes, real files.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::support::{Server, key_in, receipts, serve_sqlite, serve_sqlite_with_env, stele_ok};

const STELE: &str = env!("CARGO_BIN_EXE_stele");

fn stele(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(STELE)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .output()
        .expect("stele runs");
    assert!(
        out.status.success(),
        "stele {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_first_start_prints_an_admin_key_once_and_a_restart_reuses_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = serve_sqlite(dir.path(), &[]);
    let key = key_in(&first.banner).expect("first start prints a key");
    assert!(first.banner.iter().any(|l| l.contains("org_")));
    first.stop();

    let second = serve_sqlite(dir.path(), &[]);
    assert_eq!(
        key_in(&second.banner),
        None,
        "no new key: {:?}",
        second.banner
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .get(format!("{}/v1/events", second.url))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the first key still works after a restart");
    });
}

#[test]
fn operators_create_organizations_and_keys_and_revoke_them() {
    let dir = tempfile::tempdir().unwrap();
    let created = stele(dir.path(), &["org", "create", "acme"]);
    assert!(
        created.contains("acme") && created.contains("org_"),
        "{created}"
    );
    let key = stele(
        dir.path(),
        &["key", "create", "--org", "acme", "--scopes", "ingest,read"],
    );
    let key = key.trim().to_string();
    assert!(key.starts_with("stele_"));
    let listed = stele(dir.path(), &["key", "list", "--org", "acme"]);
    assert!(listed.contains("ingest,read") && listed.contains("active"));
    assert!(!listed.contains(&key), "secrets are never listed");
    let key_id = listed.split_whitespace().next().unwrap().to_string();

    let server = serve_sqlite(dir.path(), &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let post = |key: String| {
        let (client, url) = (client.clone(), server.url.clone());
        async move {
            client
                .post(format!("{url}/v1/events"))
                .bearer_auth(key)
                .json(&json!({"action": "create", "actor": {"type": "user", "id": "u1"}}))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(rt.block_on(post(key.clone())), 201);
    stele(dir.path(), &["key", "revoke", &key_id]);
    assert_eq!(
        rt.block_on(post(key.clone())),
        401,
        "revoked from another process"
    );
    assert!(stele(dir.path(), &["org", "list"]).contains("acme"));
}

/// `stele …` with `input` on standard input (not a terminal); returns (success, stdout, stderr).
fn stele_with_input(dir: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(STELE)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_BACKTRACE", "0")
        .spawn()
        .expect("stele runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn operators_add_console_members_and_their_changes_to_access_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    stele(dir.path(), &["org", "create", "acme"]);
    let user = |email: &str, role: &str, password: &str| {
        stele_with_input(
            dir.path(),
            &[
                "user",
                "create",
                "--org",
                "acme",
                "--email",
                email,
                "--role",
                role,
                "--name",
                "Ada Lovelace",
            ],
            &format!("{password}\n"),
        )
    };
    let (ok, out, err) = user("ada@example.com", "admin", "correct horse battery");
    assert!(ok, "{err}");
    let member_id = out.trim().to_string();
    assert!(member_id.starts_with("mem_"), "prints the member id: {out}");

    let (ok, _, err) = user("bob@example.com", "admin", "too short");
    assert!(!ok && err.contains("at least 12 characters"), "{err}");
    let (ok, _, err) = user("ADA@example.com", "auditor", "correct horse battery");
    assert!(!ok && err.contains("already has a member"), "{err}");
    // Ada's account joins another organization without a password: she keeps hers.
    stele(dir.path(), &["org", "create", "globex"]);
    let (ok, out, err) = stele_with_input(
        dir.path(),
        &[
            "user",
            "create",
            "--org",
            "globex",
            "--email",
            "ADA@example.com",
            "--role",
            "auditor",
        ],
        "",
    );
    assert!(ok && err.contains("with their own password"), "{err}");
    assert!(
        out.trim().starts_with("mem_") && out.trim() != member_id,
        "{out}"
    );
    let (ok, _, err) = user("bob@example.com", "root", "correct horse battery");
    assert!(
        !ok && err.contains("owner, admin, super-admin, it-admin, auditor, member"),
        "{err}"
    );
    let (ok, _, err) = user("bob@example.com", "auditor", "");
    assert!(!ok && err.contains("no password"), "{err}");

    let listed = |dir: &Path| stele(dir, &["key", "list", "--org", "acme"]);
    stele(
        dir.path(),
        &["key", "create", "--org", "acme", "--name", "ci"],
    );
    let key_id = listed(dir.path())
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert!(stele(dir.path(), &["key", "revoke", &key_id]).contains("revoked"));
    assert!(
        stele(dir.path(), &["key", "revoke", &key_id]).contains("revoked already"),
        "a second revocation is not recorded again"
    );
    let reader = stele(
        dir.path(),
        &[
            "key", "create", "--org", "acme", "--scopes", "read", "--name", "reader",
        ],
    );

    let server = serve_sqlite(dir.path(), &[]);
    assert!(
        server.banner.iter().any(|l| l.contains("/console")),
        "{:?}",
        server.banner
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let page: Value = rt.block_on(async {
        reqwest::Client::new()
            .get(format!(
                "{}/v1/events?actor_type=all&channel=security",
                server.url
            ))
            .bearer_auth(reader.trim())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    let seen: Vec<(String, String, String)> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["actor"]["type"], "system", "{e}");
            assert_eq!(e["context"]["source"], "cli", "{e}");
            (
                e["detailed_action"].as_str().unwrap().to_string(),
                e["actor"]["name"].as_str().unwrap().to_string(),
                e["entity"]["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let reader_id = listed(dir.path())
        .lines()
        .find(|l| l.ends_with("reader"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let acme_id = stele(dir.path(), &["org", "list"])
        .lines()
        .find(|l| l.contains("\tacme\t"))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let expected = [
        ("api_key.create", "stele key create", reader_id.as_str()),
        ("api_key.revoke", "stele key revoke", key_id.as_str()),
        ("api_key.create", "stele key create", key_id.as_str()),
        ("member.add", "stele user create", member_id.as_str()),
        ("organization.create", "stele org create", acme_id.as_str()),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(seen, expected);
}

#[test]
fn a_killed_server_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_sqlite(dir.path(), &[]);
    let key = key_in(&server.banner).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acked: Vec<Value> = rt.block_on(async {
        let client = reqwest::Client::new();
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = vec![];
        for t in 0..8 {
            let (client, url, key, stop) = (client.clone(), server.url.clone(), key.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let mut acked = vec![];
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let events: Vec<Value> = (0..20)
                        .map(|i| json!({"action": "create", "description": format!("task {t} request {n} event {i}"), "actor": {"type": "api"}}))
                        .collect();
                    let sent = client
                        .post(format!("{url}/v1/events"))
                        .bearer_auth(&key)
                        .json(&json!({ "events": events }))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 201 => {
                            if let Ok(body) = r.json::<Value>().await {
                                acked.extend(body["events"].as_array().unwrap().clone());
                            }
                        }
                        _ => break, // the server is gone
                    }
                }
                acked
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        server_kill(&server);
        stop.store(true, Ordering::Relaxed);
        let mut all = vec![];
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    drop(server);
    assert!(
        acked.len() > 100,
        "the load ran: {} acknowledged",
        acked.len()
    );

    let restarted = serve_sqlite(dir.path(), &[]);
    rt.block_on(async {
        let client = reqwest::Client::new();
        for receipt in &acked {
            let r = client
                .get(format!(
                    "{}/v1/events/{}",
                    restarted.url,
                    receipt["id"].as_str().unwrap()
                ))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "acknowledged {receipt} survives the crash");
        }
        let page: Value = client
            .get(format!(
                "{}/v1/events?actor_type=all&limit=500",
                restarted.url
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // Entries that committed after the last acknowledgement may exist too; seq stays gap-free.
        // The list is newest first by time, and concurrent requests may commit in another order
        // than their times (a batch stamped earlier can get later seqs), so the highest seq is
        // looked for among the newest entries rather than taken from the first.
        let newest = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .max()
            .unwrap();
        let total = page["total"].as_i64().unwrap();
        if page["total_exact"] == true {
            assert_eq!(newest, total, "gap-free seq after the crash");
        }
        assert!(newest >= acked.len() as i64);
    });
    // And the chain still verifies after the crash.
    let out = Command::new(STELE)
        .args(["verify", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(report.contains(": OK,"), "{report}");
}

/// Issue 18's crash case: the server is killed (SIGKILL) while its search index lags behind
/// the trail (its file's write lock held by another connection, so the indexer takes nothing
/// in). After the restart every acknowledged event is found by each filter and by a description
/// search, and the chain verifies.
#[test]
fn a_server_killed_while_its_search_index_lags_loses_nothing_to_any_filter() {
    const BATCHES: usize = 30;
    const EVENTS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let server = serve_sqlite(dir.path(), &[]);
    let key = key_in(&server.banner).unwrap();
    let lock = rusqlite::Connection::open(dir.path().join("stele.db-search")).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    // The acknowledged ids, per batch, in the order sent.
    let acked: Vec<Vec<String>> = rt.block_on(async {
        let mut acked = Vec::new();
        for b in 0..BATCHES {
            let events: Vec<Value> = (0..EVENTS)
                .map(|i| {
                    json!({"action": "update", "detailed_action": "printer.rename",
                           "description": format!("Lagging batch {b}, token{b}x{i}end"),
                           "actor": {"type": "user", "id": format!("actor-{b}-{i}")},
                           "entity": {"type": "Printer", "id": format!("printer-{b}-{i}")},
                           "context": {"correlation_id": format!("corr-{b}")}})
                })
                .collect();
            let answer: Value = client
                .post(format!("{}/v1/events", server.url))
                .bearer_auth(&key)
                .json(&json!({ "events": events }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let ids: Vec<String> = receipts(&answer).into_iter().map(|(id, _)| id).collect();
            assert_eq!(ids.len(), EVENTS);
            acked.push(ids);
        }
        acked
    });
    // The tail the index has not taken in: every event just acknowledged.
    let waiting: i64 = rusqlite::Connection::open(dir.path().join("stele.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM search_queue", [], |r| r.get(0))
        .unwrap();
    assert!(
        waiting >= (BATCHES * EVENTS) as i64,
        "{waiting} entries wait for the index"
    );
    server.kill();
    drop(lock);

    let restarted = serve_sqlite(dir.path(), &[]);
    rt.block_on(async {
        let page = |query: String| {
            let (client, url, key) = (client.clone(), restarted.url.clone(), key.clone());
            async move {
                let page: Value = client
                    .get(format!("{url}/v1/events?{query}&limit=100"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert!(page["entries"].is_array(), "{query}: {page}");
                page
            }
        };
        let found = |query: String| {
            let page = page(query);
            async move {
                let mut ids: Vec<String> = page.await["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["id"].as_str().unwrap().to_string())
                    .collect();
                ids.sort();
                ids
            }
        };
        for (b, ids) in acked.iter().enumerate() {
            let mut batch = ids.clone();
            batch.sort();
            assert_eq!(found(format!("correlation_id=corr-{b}")).await, batch);
            for (i, id) in ids.iter().enumerate() {
                let one = vec![id.clone()];
                assert_eq!(found(format!("actor=actor-{b}-{i}")).await, one);
                assert_eq!(found(format!("entity_id=printer-{b}-{i}")).await, one);
                assert_eq!(
                    found(format!("q=token{b}x{i}end")).await,
                    one,
                    "token{b}x{i}end"
                );
            }
        }
        let all = page("detailed_action=printer.rename".into()).await;
        assert_eq!(all["total"], BATCHES * EVENTS, "{all}");
        assert_eq!(all["total_exact"], true);
    });
    let report = stele_ok(&[
        "verify",
        "--full",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(report.contains(": OK,"), "{report}");
}

fn server_kill(server: &Server) {
    // SIGKILL: no graceful path, the process just stops.
    Command::new("kill")
        .args(["-KILL", &server.child.id().to_string()])
        .status()
        .unwrap();
}

#[test]
fn operators_disable_remove_and_reset_members_and_a_cli_link_opens_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    // The first start makes the signing key that password links are signed with.
    let mut first = serve_sqlite(dir.path(), &[]);
    first.stop();
    let created = stele(
        dir.path(),
        &["org", "create", "Acme", "--external-id", "tenant-9"],
    );
    assert!(created.contains("external id tenant-9"), "{created}");
    assert!(
        stele(dir.path(), &["org", "list"]).contains("\tAcme\ttenant-9"),
        "org list shows the external id"
    );
    let add = |email: &str| {
        let (ok, _, err) = stele_with_input(
            dir.path(),
            &[
                "user", "create", "--org", "tenant-9", "--email", email, "--role", "auditor",
            ],
            "correct horse battery\n",
        );
        assert!(ok, "{err}");
    };
    add("kim@example.com");
    add("lee@example.com");

    let link = stele(
        dir.path(),
        &[
            "user",
            "reset-password",
            "--org",
            "tenant-9",
            "--email",
            "kim@example.com",
            "--public-url",
            "https://audit.example.com/",
        ],
    );
    let link = link.trim();
    assert!(
        link.starts_with("https://audit.example.com/console/set-password?token=psl_"),
        "{link}"
    );
    stele(
        dir.path(),
        &[
            "user",
            "disable",
            "--org",
            "tenant-9",
            "--email",
            "kim@example.com",
        ],
    );
    stele(
        dir.path(),
        &[
            "user",
            "remove",
            "--org",
            "Acme",
            "--email",
            "lee@example.com",
        ],
    );
    let (ok, _, err) = stele_with_input(
        dir.path(),
        &[
            "user",
            "remove",
            "--org",
            "Acme",
            "--email",
            "nobody@example.com",
        ],
        "",
    );
    assert!(!ok && err.contains("no member with the email"), "{err}");

    // The server accepts the link the CLI signed (same signing key).
    let server = serve_sqlite(dir.path(), &[]);
    let path = link.trim_start_matches("https://audit.example.com");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200, "the link opens its form");

    // Deleting the organization takes its confirmation, then everything of it.
    let id = created.split(['(', ',']).nth(1).unwrap().trim().to_string();
    assert!(id.starts_with("org_"), "{created}");
    let (ok, _, err) = stele_with_input(
        dir.path(),
        &["org", "delete", "tenant-9", "--confirm", "tenant-9"],
        "",
    );
    assert!(!ok && err.contains("confirm"), "{err}");
    stele(dir.path(), &["org", "delete", "tenant-9", "--confirm", &id]);
    assert!(!stele(dir.path(), &["org", "list"]).contains("Acme"));
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 410, "its members' links are gone with it");

    // What the operator did to the organization is in the platform's own trail.
    let platform = stele(
        dir.path(),
        &[
            "export",
            "--org",
            "platform",
            "--format",
            "ndjson",
            "--actor-type",
            "all",
        ],
    );
    for action in [
        "organization.create",
        "member.add",
        "member.password_link",
        "member.disable",
        "member.remove",
        "organization.delete",
    ] {
        assert!(
            platform.contains(&format!("\"detailed_action\":\"{action}\"")),
            "{action} in the platform's trail: {platform}"
        );
    }
}

/// `stele serve --metrics-listen` says where `/metrics` is, and the binary's allocator reports
/// there what the program holds live and what it keeps resident.
#[test]
fn serve_reports_its_allocator_on_the_metrics_listener() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_sqlite(dir.path(), &["--metrics-listen", "127.0.0.1:0"]);
    let metrics = server
        .banner
        .iter()
        .find_map(|line| line.strip_prefix("Metrics: "))
        .unwrap_or_else(|| panic!("the banner names the metrics address: {:?}", server.banner))
        .to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let gauge = |text: &str, name: &str| -> f64 {
            text.lines()
                .find_map(|line| line.strip_prefix(&format!("{name} ")))
                .map_or(0.0, |value| value.parse().unwrap())
        };
        // The gauges are set every second from the start.
        for _ in 0..50 {
            let text = reqwest::get(&metrics).await.unwrap().text().await.unwrap();
            let allocated = gauge(&text, "stele_allocator_allocated_bytes");
            let resident = gauge(&text, "stele_allocator_resident_bytes");
            if allocated > 0.0 {
                assert!(resident >= allocated, "{text}");
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!("no allocator figures on {metrics}");
    });
}

/// With `STELE_LOG_FORMAT=json`, every request is one JSON line under `stele::request`: the
/// method, the route pattern (not the path sent), the status, the latency, the organization and
/// the key's id once the key is read, and the request id, taken from `X-Request-Id` when the
/// client sends a plausible one and made otherwise, and sent back. Never a key, nor the path's
/// own ids.
#[test]
fn serve_logs_one_json_line_per_request_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_sqlite_with_env(dir.path(), &[], &[("STELE_LOG_FORMAT", "json")]);
    let key = key_in(&server.banner).expect("a first start prints the admin key");
    let url = server.url.clone();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let created = client
            .post(format!("{url}/v1/events"))
            .bearer_auth(&key)
            .header("x-request-id", "trace-42")
            .json(&json!({"action": "create", "actor": {"type": "user", "id": "u1"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        assert_eq!(created.headers()["x-request-id"], "trace-42");
        let missing = client
            .get(format!("{url}/v1/events/evt_private_17"))
            .bearer_auth(&key)
            .header("x-request-id", "forged\"}, {\"status\": 200")
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);
        let made = missing.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(made.starts_with("req_"), "{made}");
        let refused = client
            .get(format!("{url}/v1/events"))
            .bearer_auth("stk_not_a_real_key")
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401);
    });

    let mut lines: Vec<Value> = Vec::new();
    for _ in 0..100 {
        lines = server
            .log_text()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["target"] == "stele::request")
            .collect();
        if lines.len() >= 3 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(lines.len(), 3, "{}", server.log_text());
    let (created, missing, refused) = (&lines[0], &lines[1], &lines[2]);
    assert_eq!(created["span"]["method"], "POST");
    assert_eq!(created["span"]["route"], "/v1/events");
    assert_eq!(created["span"]["request_id"], "trace-42");
    assert_eq!(created["fields"]["status"], 201);
    assert!(created["fields"]["latency_ms"].as_f64().is_some());
    assert!(created["span"]["org"].as_str().unwrap().starts_with("org_"));
    assert!(
        created["span"]["key_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert_eq!(missing["span"]["route"], "/v1/events/{id}");
    assert_eq!(missing["fields"]["status"], 404);
    assert!(
        missing["span"]["request_id"]
            .as_str()
            .unwrap()
            .starts_with("req_")
    );
    assert_eq!(refused["fields"]["status"], 401);
    assert!(refused["span"].get("key_id").is_none(), "{refused}");

    let log = server.log_text();
    for secret in [
        key.as_str(),
        "stk_not_a_real_key",
        "evt_private_17",
        "forged",
    ] {
        assert!(!log.contains(secret), "the log holds {secret}: {log}");
    }
}

/// Standard output that is not a terminal (a journal, a container's log, this pipe) never gets
/// the first start's admin key: it goes to a file of the data directory only its owner can read,
/// which the banner names; the key works, and a restart does not write it again.
#[test]
fn the_first_admin_key_goes_to_an_owner_only_file_when_output_is_not_a_terminal() {
    use std::os::unix::fs::PermissionsExt as _;

    let dir = tempfile::tempdir().unwrap();
    let mut server = serve_sqlite(dir.path(), &[]);
    let key = key_in(&server.banner).expect("the banner names the key's file");
    let file = dir.path().join("first-admin-key");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), key);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let banner = server.banner.join("\n");
    assert!(!banner.contains(&key), "{banner}");
    assert!(!server.log_text().contains(&key));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::Client::new()
            .get(format!("{}/v1/events", server.url))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
    server.stop();

    std::fs::remove_file(&file).unwrap();
    let server = serve_sqlite(dir.path(), &[]);
    assert!(key_in(&server.banner).is_none());
    assert!(!file.exists());
}

/// `stele.toml` sits under the environment and the flags: `stele config print` shows each value
/// with where it came from (a database URL's password hidden); a key that is no flag, or a value
/// the flag refuses, stops the command naming it; `stele config example` lists every key; and
/// `stele serve` runs with the file's settings.
#[test]
fn the_settings_file_ranks_under_the_environment_and_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("settings.toml");
    std::fs::write(
        &file,
        "checkpoint_every = 9\nsqlite_mmap_mib = 64\nno_prune = true\n\
         trusted_proxies = [\"10.0.0.0/8\", \"192.168.0.0/16\"]\n\
         database_url = \"postgres://stele:hunter2@db.internal/stele\"\n\
         metrics_listen = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let print = |extra: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(STELE)
            .args(["config", "print", "--config"])
            .arg(&file)
            .args(extra)
            .env_remove("STELE_DATABASE_URL")
            .env_remove("STELE_SQLITE_MMAP_MIB")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let shown = print(
        &["--checkpoint-every", "3"],
        &[("STELE_SQLITE_MMAP_MIB", "128")],
    );
    for line in [
        "checkpoint_every = 3  # flag",
        "sqlite_mmap_mib = 128  # environment",
        "no_prune = true  # file",
        "trusted_proxies = [\"10.0.0.0/8\", \"192.168.0.0/16\"]  # file",
        "max_body_bytes = 8388608  # default",
    ] {
        assert!(shown.lines().any(|l| l == line), "{line} in\n{shown}");
    }
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(
        shown.contains("database_url = \"postgres://stele:***@db.internal/stele\"  # file"),
        "{shown}"
    );

    for (text, named) in [
        ("acton = 1\n", "`acton`"),
        ("listen = \"nope\"\n", "--listen"),
    ] {
        std::fs::write(&file, text).unwrap();
        let out = Command::new(STELE)
            .args(["serve", "--config"])
            .arg(&file)
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            said.contains(named) && said.contains("settings.toml"),
            "{said}"
        );
    }

    let example = Command::new(STELE)
        .args(["config", "example"])
        .output()
        .unwrap();
    let example = String::from_utf8(example.stdout).unwrap();
    for key in [
        "listen",
        "sqlite_mmap_mib",
        "no_prune",
        "database_url",
        "trusted_proxies",
    ] {
        assert!(
            example.contains(&format!("# {key} = ")),
            "{key} in\n{example}"
        );
    }

    // The server reads the file: here it serves its metrics on a listener of their own.
    std::fs::write(&file, "metrics_listen = \"127.0.0.1:0\"\n").unwrap();
    let server = serve_sqlite(dir.path(), &["--config", file.to_str().unwrap()]);
    assert!(
        server
            .banner
            .iter()
            .any(|l| l.starts_with("Settings file: ")),
        "{:?}",
        server.banner
    );
    assert!(
        server.banner.iter().any(|l| l.starts_with("Metrics: ")),
        "{:?}",
        server.banner
    );
}

/// `stele openapi` prints the document a running server serves at `/openapi.json`, byte for byte.
#[test]
fn stele_openapi_prints_what_the_server_serves() {
    let printed = crate::support::stele_ok(&["openapi"]);
    let document: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["paths"]["/v1/events"]["post"].is_object());

    let dir = tempfile::tempdir().unwrap();
    let server = serve_sqlite(dir.path(), &[]);
    let served = crate::support::runtime().block_on(async {
        reqwest::get(format!("{}/openapi.json", server.url))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert_eq!(printed.trim_end(), served);
}
