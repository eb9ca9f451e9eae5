//! Log streams as an operator runs them: `stele stream` configures what the running server
//! delivers; a `kill -9` mid-delivery loses nothing, of an organization's stream or of a
//! platform-wide one; on PostgreSQL, two servers deliver each stream from one of them, and the
//! other takes over when that one dies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stele_store_postgres::testing::TestDatabase;

use crate::support::*;

/// A webhook receiver on loopback, on a thread of its own: it keeps the seqs of every batch it
/// answers 2xx, after waiting `delay` milliseconds (so that a batch can be in flight when a test
/// kills the server).
struct Receiver {
    url: String,
    batches: Arc<Mutex<Vec<Vec<i64>>>>,
    /// The organization of each entry of each batch, beside `batches`.
    orgs: Arc<Mutex<Vec<Vec<String>>>>,
    delay: Arc<AtomicU64>,
}

impl Receiver {
    fn start() -> Receiver {
        let batches: Arc<Mutex<Vec<Vec<i64>>>> = Arc::default();
        let orgs: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let delay: Arc<AtomicU64> = Arc::default();
        let (tx, rx) = std::sync::mpsc::channel();
        let (keep, keep_org, wait) = (batches.clone(), orgs.clone(), delay.clone());
        std::thread::spawn(move || {
            runtime().block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().route(
                    "/hook",
                    axum::routing::post(move |body: axum::body::Bytes| {
                        let (keep, keep_org, wait) = (keep.clone(), keep_org.clone(), wait.clone());
                        async move {
                            tokio::time::sleep(Duration::from_millis(wait.load(Ordering::SeqCst)))
                                .await;
                            let body: Value = serde_json::from_slice(&body).unwrap();
                            let entries = body["data"]["entries"].as_array().unwrap();
                            let seqs = entries.iter().map(|e| e["seq"].as_i64().unwrap());
                            let orgs = entries
                                .iter()
                                .map(|e| e["organization_id"].as_str().unwrap().to_string());
                            // One lock for both lists, so they stay side by side.
                            let mut keep = keep.lock().unwrap();
                            keep.push(seqs.collect());
                            keep_org.lock().unwrap().push(orgs.collect());
                            axum::http::StatusCode::OK
                        }
                    }),
                );
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv().unwrap();
        Receiver {
            url: format!("http://{addr}/hook"),
            batches,
            orgs,
            delay,
        }
    }

    /// Each organization's seqs, in the order received.
    fn seqs_by_org(&self) -> std::collections::BTreeMap<String, Vec<i64>> {
        let batches = self.batches.lock().unwrap();
        let orgs = self.orgs.lock().unwrap();
        let mut by_org = std::collections::BTreeMap::<String, Vec<i64>>::new();
        for (org, seq) in orgs.iter().flatten().zip(batches.iter().flatten()) {
            by_org.entry(org.clone()).or_default().push(*seq);
        }
        by_org
    }

    fn batches(&self) -> Vec<Vec<i64>> {
        self.batches.lock().unwrap().clone()
    }

    fn seqs(&self) -> Vec<i64> {
        self.batches().concat()
    }

    /// Waits (at most `deadline`) until `done` holds of the seqs received.
    fn wait_until(&self, deadline: Duration, what: &str, done: impl Fn(&[i64]) -> bool) {
        let until = Instant::now() + deadline;
        while !done(&self.seqs()) {
            assert!(
                Instant::now() < until,
                "not within {deadline:?}: {what}; received {:?}",
                self.seqs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn events(n: usize, action: &str) -> Value {
    let events: Vec<Value> = (0..n)
        .map(|_| json!({"action": action, "actor": {"type": "user", "id": "u1"}}))
        .collect();
    json!({ "events": events })
}

#[test]
fn stream_commands_configure_what_the_server_delivers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = serve_sqlite(dir.path(), &["--streams-allow-private-targets"]);
    let key = server.admin_key();
    let receiver = Receiver::start();

    // The guard applies to the command line too, naming the flag at fault.
    let refused = stele(&[
        "stream",
        "create",
        "--org",
        "default",
        "--webhook",
        &receiver.url,
        "--data-dir",
        data,
    ]);
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("--webhook") && message.contains("private"),
        "{message}"
    );

    record_batches(&server.url, &key, vec![events(5, "before")]);
    let secret = stele_ok(&[
        "stream",
        "create",
        "--org",
        "default",
        "--name",
        "siem",
        "--webhook",
        &receiver.url,
        "--from-seq",
        "1",
        "--actions",
        "before,after",
        "--allow-private-targets",
        "--data-dir",
        data,
    ]);
    assert!(secret.trim().starts_with("whsec_"), "{secret}");
    let listed = stele_ok(&["stream", "list", "--org", "default", "--data-dir", data]);
    let id = listed.split('\t').next().unwrap().to_string();
    assert!(id.starts_with("str_") && listed.contains("webhook") && listed.contains("siem"));
    receiver.wait_until(Duration::from_secs(30), "the back-fill", |s| s.len() == 5);

    let paused = stele_ok(&[
        "stream",
        "pause",
        &id,
        "--org",
        "default",
        "--reason",
        "maintenance",
        "--data-dir",
        data,
    ]);
    assert!(paused.contains("paused"), "{paused}");
    record_batches(&server.url, &key, vec![events(3, "after")]);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.seqs().len(), 5, "nothing while paused");
    let shown: Value = serde_json::from_str(&stele_ok(&[
        "stream",
        "show",
        &id,
        "--org",
        "default",
        "--data-dir",
        data,
    ]))
    .unwrap();
    assert_eq!(shown["paused_reason"], "maintenance");
    stele_ok(&[
        "stream",
        "resume",
        &id,
        "--org",
        "default",
        "--data-dir",
        data,
    ]);
    receiver.wait_until(Duration::from_secs(30), "the rest", |s| s.len() == 8);
    let seqs = receiver.seqs();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");

    // An edit changes what its flags name: here the name, and every entry from now on.
    let edited: Value = serde_json::from_str(&stele_ok(&[
        "stream",
        "edit",
        &id,
        "--org",
        "default",
        "--name",
        "siem-all",
        "--all-entries",
        "--data-dir",
        data,
    ]))
    .unwrap();
    assert_eq!(edited["name"], "siem-all");
    assert_eq!(edited["filter"], json!({}));
    record_batches(&server.url, &key, vec![events(2, "other")]);
    // The two, and the edit's own entry (channel `security`).
    receiver.wait_until(Duration::from_secs(30), "the unfiltered entries", |s| {
        s.len() == 11
    });
    let refused = stele(&[
        "stream",
        "edit",
        &id,
        "--org",
        "default",
        "--syslog-tls",
        "--data-dir",
        data,
    ]);
    assert!(!refused.status.success(), "--syslog-tls needs --syslog");

    let rotated = stele_ok(&[
        "stream",
        "rotate-secret",
        &id,
        "--org",
        "default",
        "--data-dir",
        data,
    ]);
    assert!(rotated.trim().starts_with("whsec_") && rotated != secret);
    stele_ok(&[
        "stream",
        "delete",
        &id,
        "--org",
        "default",
        "--data-dir",
        data,
    ]);
    assert_eq!(
        stele_ok(&["stream", "list", "--org", "default", "--data-dir", data]),
        ""
    );
}

#[test]
fn a_kill_mid_delivery_loses_nothing_and_sends_again_only_the_batch_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_sqlite(dir.path(), &["--streams-allow-private-targets"]);
    let key = server.admin_key();
    let receiver = Receiver::start();
    // Each answer takes a while, so a batch is in flight most of the time.
    receiver.delay.store(300, Ordering::SeqCst);
    runtime().block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/streams", server.url))
            .bearer_auth(&key)
            .json(
                &json!({"transport": {"type": "webhook", "url": receiver.url},
                          "filter": {"actions": ["load"]}, "max_entries": 10}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    });
    record_batches(
        &server.url,
        &key,
        (0..4).map(|_| events(50, "load")).collect(),
    );
    receiver.wait_until(Duration::from_secs(30), "a few batches", |s| s.len() >= 40);
    let port = server.port();
    server.kill();
    let before_kill = receiver.batches().len();
    receiver.delay.store(0, Ordering::SeqCst);

    let server = serve_sqlite_on_with(dir.path(), port, &["--streams-allow-private-targets"]);
    record_batches(&server.url, &key, vec![events(20, "load")]);
    let until = Instant::now() + Duration::from_secs(60);
    while {
        let mut unique = receiver.seqs();
        unique.sort();
        unique.dedup();
        unique.len() < 220
    } {
        assert!(
            Instant::now() < until,
            "not all 220 entries within 60 s: {:?}; log:\n{}",
            receiver.seqs(),
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let batches = receiver.batches();
    let seqs = receiver.seqs();
    let mut unique = seqs.clone();
    unique.sort();
    unique.dedup();
    // Nothing lost: the 220 `load` entries, each delivered.
    assert_eq!(unique.len(), 220);
    // Only the batch in flight at the kill (taken by the receiver, not yet recorded as
    // delivered) may come again: at most one batch, right after the restart.
    let duplicates = seqs.len() - unique.len();
    assert!(
        duplicates <= 10,
        "{duplicates} entries sent twice: {batches:?}"
    );
    let resumed_at = batches[before_kill.saturating_sub(1)..]
        .iter()
        .flatten()
        .copied()
        .collect::<Vec<_>>();
    assert!(
        resumed_at.windows(2).filter(|w| w[0] >= w[1]).count() <= 1,
        "in order after the restart but for one step back: {resumed_at:?}"
    );
    drop(server);
}

#[test]
fn two_servers_deliver_each_stream_once_and_one_takes_over_when_the_other_dies() {
    let rt = runtime();
    let (_database, url) = rt.block_on(TestDatabase::create());
    let shared = tempfile::tempdir().unwrap();
    let key_file = shared.path().join("checkpoint-signing-key");
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut servers: Vec<Server> = dirs
        .iter()
        .map(|dir| {
            spawn_with(
                &ServeOptions::new(dir.path(), &url, 60).with_signing_key_file(&key_file),
                &["--streams-allow-private-targets"],
            )
            .ready()
        })
        .collect();
    let key = servers
        .iter()
        .find_map(|s| key_in(&s.banner))
        .expect("one server bootstraps");
    let receiver = Receiver::start();
    rt.block_on(async {
        let response = reqwest::Client::new()
            .post(format!("{}/v1/streams", servers[0].url))
            .bearer_auth(&key)
            .json(
                &json!({"transport": {"type": "webhook", "url": receiver.url},
                          "filter": {"actions": ["load"]}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    });
    // Both servers take events; exactly one delivers.
    record_batches(&servers[0].url, &key, vec![events(30, "load")]);
    record_batches(&servers[1].url, &key, vec![events(30, "load")]);
    receiver.wait_until(Duration::from_secs(30), "60 entries", |s| s.len() >= 60);
    std::thread::sleep(Duration::from_secs(2));
    let seqs = receiver.seqs();
    assert_eq!(seqs.len(), 60, "each entry once, from one server: {seqs:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
    let delivering: Vec<usize> = servers
        .iter()
        .enumerate()
        .filter(|(_, s)| s.log_text().contains("delivering a log stream"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(delivering.len(), 1, "one server holds the lease");

    // The one delivering dies without giving its lease up; the other takes over once the lease
    // has run out (30 s), from the stored cursor.
    let holder = servers.remove(delivering[0]);
    holder.kill();
    let survivor = &servers[0];
    record_batches(&survivor.url, &key, vec![events(20, "load")]);
    receiver.wait_until(Duration::from_secs(90), "the 20 after the takeover", |s| {
        let mut unique = s.to_vec();
        unique.sort();
        unique.dedup();
        unique.len() == 80
    });
    assert!(survivor.log_text().contains("delivering a log stream"));
    let seqs = receiver.seqs();
    assert_eq!(seqs.len(), 80, "nothing twice: {seqs:?}");
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn a_platform_wide_stream_resumes_each_organization_after_a_kill_losing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    let server = serve_sqlite(dir.path(), &["--streams-allow-private-targets"]);
    let key = server.admin_key();
    stele_ok(&["org", "create", "acme", "--data-dir", data]);
    let acme_key = stele_ok(&[
        "key",
        "create",
        "--org",
        "acme",
        "--scopes",
        "ingest",
        "--data-dir",
        data,
    ]);
    let acme_key = acme_key.trim();
    let receiver = Receiver::start();
    receiver.delay.store(200, Ordering::SeqCst);
    record_batches(&server.url, &key, vec![events(30, "load")]);
    record_batches(&server.url, acme_key, vec![events(30, "load")]);
    // `--platform`: the platform's own stream, every organization's trail, here from the first
    // entry of each.
    stele_ok(&[
        "stream",
        "create",
        "--platform",
        "--webhook",
        &receiver.url,
        "--actions",
        "load",
        "--max-entries",
        "10",
        "--from-seq",
        "1",
        "--allow-private-targets",
        "--data-dir",
        data,
    ]);
    let listed = stele_ok(&["stream", "list", "--platform", "--data-dir", data]);
    let id = listed.split('\t').next().unwrap().to_string();
    let shown: Value = serde_json::from_str(&stele_ok(&[
        "stream",
        "show",
        &id,
        "--platform",
        "--data-dir",
        data,
    ]))
    .unwrap();
    assert_eq!(shown["scope"], "platform");
    record_batches(&server.url, &key, vec![events(30, "load")]);
    record_batches(&server.url, acme_key, vec![events(30, "load")]);
    receiver.wait_until(Duration::from_secs(30), "a few batches", |s| s.len() >= 30);
    let port = server.port();
    server.kill();
    receiver.delay.store(0, Ordering::SeqCst);

    let server = serve_sqlite_on_with(dir.path(), port, &["--streams-allow-private-targets"]);
    record_batches(&server.url, acme_key, vec![events(10, "load")]);
    let until = Instant::now() + Duration::from_secs(60);
    let complete = |by_org: &std::collections::BTreeMap<String, Vec<i64>>| {
        let counts: Vec<usize> = by_org
            .values()
            .map(|seqs| {
                let mut unique = seqs.clone();
                unique.sort();
                unique.dedup();
                unique.len()
            })
            .collect();
        counts == [60, 70] || counts == [70, 60]
    };
    while !complete(&receiver.seqs_by_org()) {
        assert!(
            Instant::now() < until,
            "not every organization's entries within 60 s: {:?}; log:\n{}",
            receiver.seqs_by_org(),
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Each organization's entries, each once but for the batch in flight at the kill (taken,
    // not yet recorded), and in order but for that one step back.
    let by_org = receiver.seqs_by_org();
    let sent: usize = by_org.values().map(Vec::len).sum();
    assert!(
        sent - 130 <= 10,
        "{} entries sent twice: {by_org:?}",
        sent - 130
    );
    for (org, seqs) in &by_org {
        assert!(
            seqs.windows(2).filter(|w| w[0] >= w[1]).count() <= 1,
            "{org}'s entries in order: {seqs:?}"
        );
    }
    drop(server);
}
