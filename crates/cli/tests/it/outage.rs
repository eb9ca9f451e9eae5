//! A real `stele serve` on PostgreSQL while the database goes away and comes back: ingest answers
//! 503 (never a 201 for an event that was not committed), `/readyz` reports not ready, and service
//! resumes by itself, without a restart. The shared PostgreSQL server is never stopped (other
//! tests use it): connections are terminated with `pg_terminate_backend`, or cut at a TCP proxy
//! between stele and the server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::*;
use reqwest::Client;
use serde_json::{Value, json};
use stele_store_postgres::testing::{TestDatabase, admin_url};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// Events per request of the load.
const BATCH: usize = 5;

/// One request of the load: its idempotency key, its body, and what the server answered.
struct Sent {
    key: String,
    body: Value,
    receipts: Option<Vec<(String, i64)>>,
}

#[test]
fn ingest_survives_terminated_database_connections() {
    let rt = runtime();
    let (_database, url) = rt.block_on(TestDatabase::create());
    let name = database_name(&url);
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn(&ServeOptions::new(dir.path(), &url, 1)).ready();
    let key = key_in(&server.banner).unwrap();
    let pid = server.pid();

    let sent: Vec<Sent> = rt.block_on(async {
        let client = Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let mut tasks = vec![];
        for t in 0..6 {
            let (client, url, key) = (client.clone(), server.url.clone(), key.clone());
            let (stop, acked, refused) = (stop.clone(), acked.clone(), refused.clone());
            tasks.push(tokio::spawn(async move {
                let mut sent = vec![];
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let request_key = format!("task-{t}-request-{n}");
                    let body = batch(&request_key);
                    let response = client
                        .post(format!("{url}/v1/events"))
                        .bearer_auth(&key)
                        .header("Idempotency-Key", &request_key)
                        .json(&body)
                        .send()
                        .await
                        .expect("the server itself stays up");
                    let status = response.status();
                    let answer: Value = response.json().await.expect("every answer is JSON");
                    let receipts = match status.as_u16() {
                        201 => {
                            acked.fetch_add(1, Ordering::Relaxed);
                            Some(receipts(&answer))
                        }
                        503 => {
                            assert_eq!(answer["error"]["code"], "unavailable", "{answer}");
                            refused.fetch_add(1, Ordering::Relaxed);
                            None
                        }
                        _ => panic!(
                            "only 201 or 503 while connections are cut, got {status}: {answer}"
                        ),
                    };
                    sent.push(Sent {
                        key: request_key,
                        body,
                        receipts,
                    });
                }
                sent
            }));
        }

        let acked_now = || acked.load(Ordering::Relaxed);
        eventually(Duration::from_secs(60), "the load runs", || async {
            (acked_now() >= 20).then_some(())
        })
        .await;
        // Cut every connection of the database, again and again, until requests caught in
        // flight were refused; after each round ingest must succeed again by itself.
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut rounds = 0;
        while rounds < 3 || refused.load(Ordering::Relaxed) == 0 {
            assert!(
                Instant::now() < deadline,
                "no request was caught by {rounds} rounds of terminations"
            );
            let terminated = terminate_backends(&admin_url(), &name).await;
            assert!(terminated > 0, "stele had connections to terminate");
            rounds += 1;
            let before = acked_now();
            eventually(
                Duration::from_secs(20),
                "ingest succeeds again after pg_terminate_backend",
                || async { (acked_now() >= before + 5).then_some(()) },
            )
            .await;
        }
        stop.store(true, Ordering::Relaxed);
        let mut sent = vec![];
        for task in tasks {
            sent.extend(task.await.unwrap());
        }
        sent
    });
    assert!(server.is_running(), "{}", server.log_text());
    assert_eq!(server.pid(), pid, "never restarted");
    let refused = sent.iter().filter(|s| s.receipts.is_none()).count();
    eprintln!(
        "{} requests, {refused} answered 503, {} acknowledged",
        sent.len(),
        sent.len() - refused
    );
    assert!(refused > 0);

    rt.block_on(async {
        let client = Client::new();
        // A 503 leaves the outcome to the retry: with the same key, each request is now either
        // replayed (it had committed) or stored; either way its events exist exactly once.
        let mut retried = vec![];
        for s in sent.iter().filter(|s| s.receipts.is_none()) {
            let r = client
                .post(format!("{}/v1/events", server.url))
                .bearer_auth(&key)
                .header("Idempotency-Key", &s.key)
                .json(&s.body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "the retry of {}", s.key);
            retried.extend(receipts(&r.json().await.unwrap()));
        }
        let listed = list_all(&client, &server.url, &key).await;
        assert_gap_free(&listed, "after the terminations");
        assert_eq!(
            listed.len(),
            sent.len() * BATCH,
            "every request's events stored exactly once ({} requests, {refused} refused)",
            sent.len()
        );
        for (id, seq) in sent.iter().filter_map(|s| s.receipts.as_ref()).flatten() {
            assert_eq!(listed.get(id), Some(seq), "acknowledged {id} is there");
        }
        for (id, seq) in &retried {
            assert_eq!(listed.get(id), Some(seq));
        }
    });

    server.stop();
    let out = verify_ok(&url, dir.path());
    assert!(out.contains(": OK,"), "{out}");
}

fn batch(request: &str) -> Value {
    let events: Vec<Value> = (0..BATCH)
        .map(|i| {
            json!({
                "action": "create",
                "description": format!("{request} event {i}"),
                "actor": {"type": "api", "id": "loader"},
            })
        })
        .collect();
    json!({ "events": events })
}

/// What the proxy does with connections.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Passes them through to PostgreSQL.
    Forward,
    /// Closes new ones at once, like a server that is down.
    Refuse,
    /// Accepts new ones and never answers, like a host that vanished behind a load balancer.
    Stall,
}

/// A TCP proxy between stele and PostgreSQL that can take the database away from stele alone.
struct Proxy {
    addr: SocketAddr,
    state: Arc<Mutex<ProxyState>>,
}

struct ProxyState {
    mode: Mode,
    /// The tasks copying forwarded connections; aborting one closes both of its sockets.
    links: Vec<AbortHandle>,
    /// Connections accepted in `Stall` mode, held open unanswered.
    stalled: Vec<TcpStream>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(ProxyState {
            mode: Mode::Forward,
            links: vec![],
            stalled: vec![],
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                // Decided under the lock, so a connection accepted while the proxy is being cut
                // is either cut with the others or refused.
                let mut state = shared.lock().unwrap();
                match state.mode {
                    Mode::Refuse => drop(inbound),
                    Mode::Stall => state.stalled.push(inbound),
                    Mode::Forward => {
                        let upstream = upstream.clone();
                        let link = tokio::spawn(async move {
                            if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        });
                        state.links.push(link.abort_handle());
                    }
                }
            }
        });
        Proxy { addr, state }
    }

    /// Closes every connection and treats new ones as `mode` says.
    fn set(&self, mode: Mode) {
        let mut state = self.state.lock().unwrap();
        state.mode = mode;
        if mode != Mode::Forward {
            for link in state.links.drain(..) {
                link.abort();
            }
        }
        if mode != Mode::Stall {
            state.stalled.clear();
        }
    }
}

/// The test database's URL with the proxy as its host, and a password in it (the local server
/// trusts its clients and never asks for it) that must not leak into answers or logs.
fn through(proxy: SocketAddr, url: &str) -> (String, String) {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let user = config.get_user().unwrap_or("postgres").to_string();
    let password = config
        .get_password()
        .map(|p| String::from_utf8(p.to_vec()).unwrap())
        .unwrap_or_else(|| "proxy-test-secret-5f1c".to_string());
    let database = config.get_dbname().unwrap();
    (
        format!("postgres://{user}:{password}@{proxy}/{database}"),
        password,
    )
}

/// Where the test database's server listens.
fn upstream(url: &str) -> String {
    let config: tokio_postgres::Config = url.parse().unwrap();
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

#[test]
fn a_database_outage_answers_503_and_service_resumes_without_a_restart() {
    let rt = runtime();
    let (_database, url) = rt.block_on(TestDatabase::create());
    let proxy = rt.block_on(Proxy::start(upstream(&url)));
    let (proxied, password) = through(proxy.addr, &url);
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn(&ServeOptions::new(dir.path(), &proxied, 1)).ready();
    let key = key_in(&server.banner).unwrap();
    let pid = server.pid();
    assert!(!server.banner.concat().contains(&password));

    let acked = rt.block_on(async {
        let client = Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let base = server.url.clone();
        let post = |n: usize| {
            client
                .post(format!("{base}/v1/events"))
                .bearer_auth(&key)
                .json(
                    &json!({"action": "create", "description": format!("event {n}"),
                              "actor": {"type": "user", "id": "u1"}}),
                )
                .send()
        };
        let ready = || async {
            let r = client.get(format!("{base}/readyz")).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        };
        let mut acked = vec![];
        let mut n = 0;
        for _ in 0..3 {
            n += 1;
            let r = post(n).await.unwrap();
            assert_eq!(r.status(), 201);
            acked.extend(receipts(&r.json().await.unwrap()));
        }
        // The background verification's check is there too (its times vary): looked at alone.
        let (status, mut body) = ready().await;
        let integrity = body["checks"]
            .as_object_mut()
            .unwrap()
            .remove("integrity")
            .unwrap();
        assert_eq!(integrity["status"], "ok", "{integrity}");
        assert_eq!(
            (status, body),
            (
                200,
                json!({"status": "ready", "checks": {
                    "database": {"status": "ok"},
                    "retention": {"status": "ok", "last_run_at": null, "archive_error": null},
                }})
            )
        );

        // The database goes away: every connection closes, new ones are refused.
        proxy.set(Mode::Refuse);
        let (_, not_ready) = eventually(
            Duration::from_secs(30),
            "/readyz reports not ready",
            || async {
                let (status, body) = ready().await;
                (status == 503).then_some((status, body))
            },
        )
        .await;
        assert_eq!(not_ready["status"], "not_ready", "{not_ready}");
        assert_eq!(
            not_ready["checks"]["database"]["status"], "unavailable",
            "{not_ready}"
        );
        eprintln!("/readyz while the database is down: {not_ready}");
        let error = not_ready["checks"]["database"]["error"].as_str().unwrap();
        assert!(!error.is_empty() && !error.contains(&password), "{error}");
        for _ in 0..3 {
            n += 1;
            let started = Instant::now();
            let r = post(n).await.unwrap();
            assert_eq!(r.status(), 503, "no acknowledgement without the database");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "unavailable", "{body}");
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{:?}",
                started.elapsed()
            );
        }
        let r = client
            .get(format!("{base}/v1/events"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "reads too");
        let r = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert_eq!(r.status(), 200, "the process itself is alive");

        // Worse: the host stops answering at all. Requests still get their 503 in bounded time.
        proxy.set(Mode::Stall);
        for _ in 0..2 {
            n += 1;
            let started = Instant::now();
            let r = post(n).await.unwrap();
            assert_eq!(r.status(), 503);
            eprintln!("503 from a stalled database after {:?}", started.elapsed());
            assert!(
                started.elapsed() < Duration::from_secs(40),
                "a stalled database must not hold a request: {:?}",
                started.elapsed()
            );
        }
        let started = Instant::now();
        let (status, _) = ready().await;
        assert_eq!(status, 503);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );

        // The database returns: service resumes within seconds, by itself.
        proxy.set(Mode::Forward);
        let back = Instant::now();
        eventually(
            Duration::from_secs(30),
            "/readyz reports ready again",
            || async { (ready().await.0 == 200).then_some(()) },
        )
        .await;
        let receipt = eventually(Duration::from_secs(30), "ingest succeeds again", || {
            n += 1;
            let sent = post(n);
            async move {
                let r = sent.await.unwrap();
                if r.status() == 201 {
                    Some(receipts(&r.json().await.unwrap()))
                } else {
                    None
                }
            }
        })
        .await;
        eprintln!(
            "ingest resumed {:?} after the database returned",
            back.elapsed()
        );
        assert!(
            back.elapsed() < Duration::from_secs(15),
            "resumed {:?} after the database returned",
            back.elapsed()
        );
        acked.extend(receipt);
        acked
    });
    assert!(server.is_running(), "{}", server.log_text());
    assert_eq!(server.pid(), pid, "never restarted");

    rt.block_on(async {
        let listed = list_all(&Client::new(), &server.url, &key).await;
        assert_gap_free(&listed, "after the outage");
        for (id, seq) in &acked {
            assert_eq!(listed.get(id), Some(seq), "acknowledged {id} is there");
        }
    });
    server.stop();
    assert!(
        !server.log_text().contains(&password),
        "the password never reaches the log"
    );
    let out = verify_ok(&url, dir.path());
    assert!(out.contains(": OK,"), "{out}");
}
