//! Several `stele serve` processes on one PostgreSQL database (docs/scaling.md): real processes,
//! real HTTP, one fresh database per test.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::*;
use reqwest::Client;
use serde_json::{Value, json};
use stele_store_postgres::testing::TestDatabase;

/// Requests each plain load task sends.
const ROUNDS: usize = 30;
/// Plain load tasks per server.
const TASKS: usize = 4;
/// Requests sent through both servers at once, with the same `Idempotency-Key`, per organization.
const DUPLICATED: usize = 12;

/// What one acknowledged request told us.
#[derive(Debug)]
struct Acked {
    org: usize,
    receipts: Vec<(String, i64)>,
    /// The event-level idempotency key of each event (`None` for most).
    event_keys: Vec<Option<String>>,
}

#[test]
fn several_servers_share_one_database_and_one_signing_key() {
    let rt = runtime();
    let (_database, url) = rt.block_on(TestDatabase::create());
    let shared = tempfile::tempdir().unwrap();
    // Not there yet: whichever server gets there first creates it, the other loads that one.
    let key_file = shared.path().join("keys").join("checkpoint-signing-key");
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];

    // Both start at once on the empty database: migrations, the key file and the first
    // organization are all raced for.
    let starting: Vec<Starting> = dirs
        .iter()
        .map(|dir| spawn(&ServeOptions::new(dir.path(), &url, 1).with_signing_key_file(&key_file)))
        .collect();
    let mut servers: Vec<Server> = starting.into_iter().map(Starting::ready).collect();

    let banners: Vec<&Vec<String>> = servers.iter().map(|s| &s.banner).collect();
    let admin_keys: Vec<String> = servers.iter().filter_map(|s| key_in(&s.banner)).collect();
    assert_eq!(
        admin_keys.len(),
        1,
        "exactly one server bootstraps the database: {banners:?}"
    );
    let public_keys: Vec<String> = servers
        .iter()
        .map(|s| banner_value(&s.banner, "Checkpoint public key: "))
        .collect();
    assert_eq!(
        public_keys[0], public_keys[1],
        "both sign with the shared key"
    );
    assert!(key_file.exists());
    for dir in &dirs {
        assert!(
            !dir.path().join("checkpoint-signing-key").exists(),
            "no key of its own in the data directory"
        );
    }
    let cli_dir = tempfile::tempdir().unwrap();
    let cli = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", &url, "--data-dir"]);
        all.push(cli_dir.path().to_str().unwrap());
        stele_ok(&all)
    };
    let orgs = cli(&["org", "list"]);
    // The platform's own organization is made at start too (its id is Retraced's project id),
    // once however many servers start.
    assert_eq!(
        orgs.lines().filter(|l| !l.ends_with("(platform)")).count(),
        1,
        "one organization, however the start raced: {orgs}"
    );
    assert_eq!(
        orgs.lines().filter(|l| l.ends_with("(platform)")).count(),
        1,
        "one platform organization: {orgs}"
    );

    // A second organization, made with the CLI next to the running servers.
    cli(&["org", "create", "acme"]);
    let acme_key = cli(&["key", "create", "--org", "acme", "--scopes", "ingest,read"])
        .trim()
        .to_string();
    let keys = vec![admin_keys[0].clone(), acme_key];
    let urls: Vec<String> = servers.iter().map(|s| s.url.clone()).collect();
    // What each trail holds before the load: `stele org create` and `stele key create` recorded
    // the organization's and the acme key's creation.
    let recorded_before: Vec<BTreeMap<String, i64>> = rt.block_on(async {
        let client = Client::new();
        let mut all = vec![];
        for key in &keys {
            all.push(list_all(&client, &urls[0], key).await);
        }
        all
    });
    assert_eq!(
        recorded_before
            .iter()
            .map(BTreeMap::len)
            .collect::<Vec<_>>(),
        [0, 2],
        "only the organization's and the key's creation: {recorded_before:?}"
    );

    let acked: Vec<Acked> = rt.block_on(async {
        let client = Client::new();
        let mut tasks = vec![];
        for (s, url) in urls.iter().enumerate() {
            for t in 0..TASKS {
                let (client, url, keys) = (client.clone(), url.clone(), keys.clone());
                tasks.push(tokio::spawn(async move {
                    load(&client, &url, &keys, s, t).await
                }));
            }
        }
        for (org, key) in keys.iter().enumerate() {
            let (client, urls, key) = (client.clone(), urls.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                duplicates(&client, &urls, &key, org).await
            }));
        }
        let mut all = vec![];
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });

    // What the acknowledgements say, per organization: `id -> seq`, each id always with the same
    // seq, and each event-level idempotency key always answered with the same entry.
    let mut expected: Vec<BTreeMap<String, i64>> = recorded_before;
    let mut by_event_key: BTreeMap<(usize, String), BTreeSet<String>> = BTreeMap::new();
    for a in &acked {
        for ((id, seq), event_key) in a.receipts.iter().zip(&a.event_keys) {
            if let Some(previous) = expected[a.org].insert(id.clone(), *seq) {
                assert_eq!(previous, *seq, "{id} was acknowledged with two seqs");
            }
            if let Some(k) = event_key {
                by_event_key
                    .entry((a.org, k.clone()))
                    .or_default()
                    .insert(id.clone());
            }
        }
    }
    assert!(!by_event_key.is_empty());
    for ((org, k), ids) in &by_event_key {
        assert_eq!(
            ids.len(),
            1,
            "event key {k} of org {org} was sent through both servers and stored once: {ids:?}"
        );
    }

    rt.block_on(async {
        let client = Client::new();
        for (org, key) in keys.iter().enumerate() {
            assert_gap_free(&expected[org], &format!("the receipts of org {org}"));
            let mut seen = vec![];
            for url in &urls {
                let listed = list_all(&client, url, key).await;
                assert_gap_free(&listed, &format!("org {org} listed through {url}"));
                assert_eq!(
                    listed, expected[org],
                    "{url} lists exactly the acknowledged entries of org {org}"
                );
                seen.push(listed);
            }
            assert_eq!(seen[0], seen[1], "both processes see the same trail");
        }
    });

    // Both stop at once, each sealing the chains with a final checkpoint.
    for server in &servers {
        assert!(
            !server.log_text().contains("ERROR"),
            "{}",
            server.log_text()
        );
        server.terminate();
    }
    for server in &mut servers {
        server.wait_stopped();
    }

    let out = stele(&[
        "verify",
        "--json",
        "--database-url",
        &url,
        "--signing-key-file",
        key_file.to_str().unwrap(),
        "--data-dir",
        cli_dir.path().to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains(&public_keys[0]),
        "verify checks signatures with the shared key: {stderr}"
    );
    // The platform's own trail, where `stele org create` and `stele key create` recorded acme's
    // creation and its key's too, verifies as well; the rest of the checks are about the two
    // organizations under load.
    let orgs = cli(&["org", "list"]);
    let (platform, reports): (Vec<Value>, Vec<Value>) = stdout
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .partition(|r| is_platform(&orgs, r["org_id"].as_str().unwrap()));
    assert_eq!(platform.len(), 1, "{stdout}");
    assert_eq!(
        (&platform[0]["ok"], &platform[0]["entries"]),
        (&json!(true), &json!(2))
    );
    assert_eq!(reports.len(), keys.len(), "{stdout}");
    let entries: BTreeSet<u64> = reports
        .iter()
        .map(|r| {
            assert_eq!(r["ok"], true, "{r}");
            assert!(r["checkpoints"].as_u64().unwrap() >= 1, "{r}");
            r["entries"].as_u64().unwrap()
        })
        .collect();
    let acknowledged: BTreeSet<u64> = expected.iter().map(|e| e.len() as u64).collect();
    assert_eq!(entries, acknowledged, "{stdout}");
}

/// One client: `ROUNDS` requests through one server, alternating organizations, single events and
/// batches of up to 7. Every fifth round's batch carries an event whose idempotency key the same
/// task on the other server sends too (same round, same organization), so one of the two copies
/// is stored.
async fn load(
    client: &Client,
    url: &str,
    keys: &[String],
    server: usize,
    task: usize,
) -> Vec<Acked> {
    let mut acked = vec![];
    for round in 0..ROUNDS {
        let org = (task + round) % keys.len();
        let mut event_keys = vec![];
        let body = if round % 4 == 0 {
            event_keys.push(None);
            event(&format!("server {server} task {task} round {round}"))
        } else {
            let mut events: Vec<Value> = (0..1 + round % 7)
                .map(|i| {
                    event_keys.push(None);
                    event(&format!(
                        "server {server} task {task} round {round} event {i}"
                    ))
                })
                .collect();
            if round % 5 == 1 {
                let key = format!("shared-{task}-{round}");
                let mut shared = event(&format!("shared by task {task} round {round}"));
                shared["idempotency_key"] = json!(key);
                events.insert(0, shared);
                event_keys.insert(0, Some(key));
            }
            json!({ "events": events })
        };
        let response = client
            .post(format!("{url}/v1/events"))
            .bearer_auth(&keys[org])
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{url}: {answer}");
        let receipts = receipts(&answer);
        assert_eq!(receipts.len(), event_keys.len());
        acked.push(Acked {
            org,
            receipts,
            event_keys,
        });
    }
    acked
}

/// The same request with the same `Idempotency-Key` through both servers at the same moment:
/// both answer 201 with the same receipts, exactly one of them as a replay.
async fn duplicates(client: &Client, urls: &[String], key: &str, org: usize) -> Vec<Acked> {
    let mut acked = vec![];
    for n in 0..DUPLICATED {
        let body = json!({"events": [
            event(&format!("duplicate {n} of org {org}, first")),
            event(&format!("duplicate {n} of org {org}, second")),
        ]});
        let idempotency_key = format!("request-{org}-{n}");
        let send = |url: &String| {
            client
                .post(format!("{url}/v1/events"))
                .bearer_auth(key)
                .header("Idempotency-Key", &idempotency_key)
                .json(&body)
                .send()
        };
        let (a, b) = tokio::join!(send(&urls[0]), send(&urls[1]));
        let (a, b) = (a.unwrap(), b.unwrap());
        let replayed = [&a, &b]
            .iter()
            .filter(|r| r.headers().get("idempotent-replayed").is_some())
            .count();
        assert_eq!((a.status().as_u16(), b.status().as_u16()), (201, 201));
        let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
        assert_eq!(
            a, b,
            "both servers answer with the one stored request's receipts"
        );
        assert_eq!(replayed, 1, "exactly one of the two was stored");
        acked.push(Acked {
            org,
            receipts: receipts(&a),
            event_keys: vec![None; 2],
        });
    }
    acked
}

fn event(description: &str) -> Value {
    json!({
        "action": "update",
        "description": description,
        "actor": {"type": "user", "id": "u1", "email": "ada@example.com"},
        "entity": {"type": "Printer", "id": "42"},
    })
}

#[test]
fn a_server_with_another_signing_key_refuses_the_database() {
    let rt = runtime();
    let (_database, url) = rt.block_on(TestDatabase::create());
    let first_dir = tempfile::tempdir().unwrap();
    let mut first = spawn(&ServeOptions::new(first_dir.path(), &url, 60)).ready();
    let admin = key_in(&first.banner).expect("the first start bootstraps");
    let database_key_id = key_id_in(&first.banner);
    rt.block_on(async {
        let r = Client::new()
            .post(format!("{}/v1/events", first.url))
            .bearer_auth(&admin)
            .json(&event("signed by the first key"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    });
    // The graceful stop signs a checkpoint of the entry with the first server's key.
    first.stop();
    let first_key_file = first_dir.path().join("checkpoint-signing-key");
    assert!(first_key_file.exists());

    // A second server with a key of its own (a new one, in its own data directory).
    let second_dir = tempfile::tempdir().unwrap();
    let (status, log) = spawn(&ServeOptions::new(second_dir.path(), &url, 60)).refused();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!("signed with key id {database_key_id}")),
        "the error names the database's key id {database_key_id}: {log}"
    );
    let second_key_file = second_dir.path().join("checkpoint-signing-key");
    assert!(
        log.contains(&second_key_file.display().to_string()),
        "and the key file it used: {log}"
    );
    assert!(
        log.contains("--signing-key-file"),
        "and how to fix it: {log}"
    );
    assert!(log.contains("created a new key"), "{log}");

    // Pointed at the first server's key, the same second server starts and serves the trail.
    let mut second = spawn(
        &ServeOptions::new(second_dir.path(), &url, 60).with_signing_key_file(&first_key_file),
    )
    .ready();
    assert_eq!(key_in(&second.banner), None, "{:?}", second.banner);
    rt.block_on(async {
        let listed = list_all(&Client::new(), &second.url, &admin).await;
        assert_eq!(listed.len(), 1);
    });
    second.stop();

    let out = verify_ok(&url, first_dir.path());
    assert!(
        out.contains(": OK, 1 entries") && out.contains("1 checkpoints"),
        "{out}"
    );
}

/// The signing key id a server's banner shows: "Checkpoint public key: <hex> (key id <id>)".
fn key_id_in(banner: &[String]) -> String {
    banner
        .iter()
        .find_map(|l| l.strip_prefix("Checkpoint public key: "))
        .and_then(|rest| rest.split("key id ").nth(1))
        .map(|id| id.trim_end_matches(')').to_string())
        .unwrap_or_else(|| panic!("no key id in {banner:?}"))
}

/// Before anything is signed, the database belongs to the key of the first server that started on
/// it: two servers with different keys starting together cannot both sign.
#[test]
fn the_first_key_claims_a_database_before_any_checkpoint() {
    let rt = runtime();
    let (_database, url) = rt.block_on(TestDatabase::create());
    let first_dir = tempfile::tempdir().unwrap();
    let mut first = spawn(&ServeOptions::new(first_dir.path(), &url, 60)).ready();
    let claimed = key_id_in(&first.banner);
    // No entry, so no checkpoint: only the claim says whose database this is.
    first.stop();

    let second_dir = tempfile::tempdir().unwrap();
    let (status, log) = spawn(&ServeOptions::new(second_dir.path(), &url, 60)).refused();
    assert!(!status.success(), "{log}");
    assert!(
        log.contains(&format!("key id {claimed} (or it is claimed by that key)")),
        "the error names the claiming key {claimed}: {log}"
    );
}

/// Whether `stele org list` marks this organization as the platform's own.
fn is_platform(org_list: &str, org_id: &str) -> bool {
    org_list
        .lines()
        .any(|l| l.starts_with(&format!("{org_id}\t")) && l.ends_with("(platform)"))
}
