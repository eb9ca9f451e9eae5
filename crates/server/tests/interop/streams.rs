//! Log streams against real receivers: webhook signatures checked by the Standard Webhooks
//! reference library (`standardwebhooks` from npm) across a secret rotation; syslog received by a
//! real `rsyslogd` (Debian's rsyslog) through an outage of the receiver, and over TLS; an https
//! webhook whose certificate the operator's CA signed; NATS JetStream through its outage; and the
//! three transports at once through two minutes of outage.

use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use base64::Engine as _;
use serde_json::{Value, json};
use stele_service::access::api_keys;
use stele_store::Scope;

use super::node;
use super::running::Running;

/// An organization with an admin key, on a server whose streams may reach loopback.
async fn organization(running: &Running) -> String {
    let org = running.store.create_org("acme").await.unwrap();
    let key = api_keys::generate("admin", vec![Scope::Admin, Scope::Ingest, Scope::Read]);
    running
        .store
        .create_api_key(org.key, key.record)
        .await
        .unwrap();
    key.secret
}

async fn get(running: &Running, key: &str, path: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{}{path}", running.url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "GET {path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

async fn post(running: &Running, key: &str, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", running.url))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "POST {path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

async fn record(running: &Running, key: &str, n: usize, action: &str) {
    let events: Vec<Value> = (0..n)
        .map(|_| json!({"action": action, "actor": {"type": "user", "id": "u1"}}))
        .collect();
    post(running, key, "/v1/events", json!({ "events": events })).await;
}

/// Waits (at most 60 s) until `done` holds.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn webhook_signatures_verify_with_the_standard_webhooks_library_across_a_rotation() {
    let running = Running::start_with(|c| c.streams_allow_private_targets = true).await;
    let key = organization(&running).await;
    // A receiver that keeps each POST's headers and exact body.
    let taken: Arc<Mutex<Vec<Value>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let keep = taken.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let keep = keep.clone();
            async move {
                let headers: serde_json::Map<String, Value> = headers
                    .iter()
                    .filter(|(name, _)| name.as_str().starts_with("webhook-"))
                    .map(|(name, value)| (name.to_string(), json!(value.to_str().unwrap())))
                    .collect();
                keep.lock().unwrap().push(json!({
                    "headers": headers,
                    "body_base64": base64::engine::general_purpose::STANDARD.encode(&body),
                }));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let created = post(
        &running,
        &key,
        "/v1/streams",
        json!({"transport": {"type": "webhook", "url": url}, "filter": {"actions": ["signed"]}}),
    )
    .await;
    let first_secret = created["secret"].as_str().unwrap().to_string();
    record(&running, &key, 10, "signed").await;
    wait_until("the first batch", || !taken.lock().unwrap().is_empty()).await;
    let before_rotation = taken.lock().unwrap().len();
    let stream = created["id"].as_str().unwrap();
    let rotated = post(
        &running,
        &key,
        &format!("/v1/streams/{stream}/rotate-secret"),
        json!({"overlap_seconds": 3600}),
    )
    .await;
    let second_secret = rotated["secret"].as_str().unwrap().to_string();
    record(&running, &key, 10, "signed").await;
    wait_until("every entry", || {
        let report = taken.lock().unwrap();
        report.len() > before_rotation
    })
    .await;
    wait_until("all 20 entries", || {
        taken
            .lock()
            .unwrap()
            .iter()
            .map(count_entries)
            .sum::<usize>()
            == 20
    })
    .await;

    let mut deliveries = taken.lock().unwrap().clone();
    // A copy of the last delivery with its body changed: the library must refuse it.
    let mut tampered = deliveries.last().unwrap().clone();
    let body = base64::engine::general_purpose::STANDARD
        .decode(tampered["body_base64"].as_str().unwrap())
        .unwrap();
    let body = String::from_utf8(body).unwrap().replace("signed", "SIGNED");
    tampered["body_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(body));
    deliveries.push(tampered);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("deliveries.json");
    std::fs::write(&file, serde_json::to_vec(&deliveries).unwrap()).unwrap();
    let output = tokio::task::spawn_blocking(move || {
        node(
            "verify_webhooks.js",
            &[
                file.as_os_str(),
                first_secret.as_ref(),
                second_secret.as_ref(),
            ],
        )
    })
    .await
    .unwrap();
    let report: Vec<Value> = serde_json::from_str(&output).unwrap();
    let (tampered, report) = report.split_last().unwrap();
    assert_eq!(
        tampered["verified_by"],
        json!([]),
        "a changed body verifies with no secret"
    );
    let mut seqs = Vec::new();
    for (i, delivery) in report.iter().enumerate() {
        let expected = if i < before_rotation {
            json!([0])
        } else {
            json!([0, 1])
        };
        assert_eq!(
            delivery["verified_by"], expected,
            "delivery {i}: {report:?}"
        );
        seqs.extend(
            delivery["entries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_i64().unwrap()),
        );
    }
    let mut sorted = seqs.clone();
    sorted.sort();
    assert_eq!(seqs, sorted, "in order");
    assert_eq!(seqs.len(), 20);
    running.stop().await;
}

fn count_entries(delivery: &Value) -> usize {
    let body = base64::engine::general_purpose::STANDARD
        .decode(delivery["body_base64"].as_str().unwrap())
        .unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    body["data"]["entries"].as_array().unwrap().len()
}

/// The seqs of the organization's entries on the `default` channel (at most 500), ascending.
async fn default_channel_seqs(running: &Running, key: &str) -> Vec<i64> {
    let listed = get(running, key, "/v1/events?channel=default&limit=500").await;
    let mut seqs: Vec<i64> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    seqs.sort();
    seqs
}

fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// A real `rsyslogd` listening on TCP on `port`, writing each message's text to a file in `dir`.
struct Rsyslog {
    child: Child,
}

impl Rsyslog {
    fn start(dir: &Path, port: u16) -> Rsyslog {
        Rsyslog::start_with(dir, port, "module(load=\"imtcp\")")
    }

    /// With TLS (rsyslog's GnuTLS driver, Debian's rsyslog-gnutls), presenting `server.pem`
    /// (signed by `ca.pem`, both in `dir`: [`test_certificates`]).
    fn start_tls(dir: &Path, port: u16) -> Rsyslog {
        let file = |name: &str| dir.join(name).display().to_string();
        let module = format!(
            r#"global(DefaultNetstreamDriver="gtls"
       DefaultNetstreamDriverCAFile="{ca}"
       DefaultNetstreamDriverCertFile="{cert}"
       DefaultNetstreamDriverKeyFile="{key}")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")"#,
            ca = file("ca.pem"),
            cert = file("server.pem"),
            key = file("server.key"),
        );
        Rsyslog::start_with(dir, port, &module)
    }

    fn start_with(dir: &Path, port: u16, module: &str) -> Rsyslog {
        let conf = dir.join("rsyslog.conf");
        let out = dir.join("received.log");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{dir}")
{module}
template(name="message" type="string" string="%msg%\n")
ruleset(name="stele") {{
  action(type="omfile" file="{out}" template="message")
}}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="stele")
"#,
                dir = dir.display(),
                out = out.display(),
            ),
        )
        .unwrap();
        let child = Command::new(rsyslogd())
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.join("rsyslogd.pid"))
            .spawn()
            .expect("rsyslogd runs (Debian package rsyslog)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "rsyslogd listens within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Rsyslog { child }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `rsyslogd`, wherever Debian put it (`/usr/sbin` is not on every user's `PATH`).
fn rsyslogd() -> &'static str {
    if Path::new("/usr/sbin/rsyslogd").exists() {
        "/usr/sbin/rsyslogd"
    } else {
        "rsyslogd"
    }
}

/// The seqs of the entries rsyslogd wrote, in the order it wrote them.
fn received(dir: &Path) -> Vec<i64> {
    std::fs::read_to_string(dir.join("received.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let entry: Value = serde_json::from_str(line.trim()).unwrap();
            assert!(entry["organization_id"].is_string(), "{line}");
            entry["seq"].as_i64().unwrap()
        })
        .collect()
}

#[tokio::test]
async fn syslog_reaches_a_real_rsyslog_in_order_through_its_outage() {
    let running = Running::start_with(|c| c.streams_allow_private_targets = true).await;
    let key = organization(&running).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let rsyslog = Rsyslog::start(dir.path(), port);
    record(&running, &key, 30, "before").await;
    post(
        &running,
        &key,
        "/v1/streams",
        json!({"transport": {"type": "syslog", "host": "127.0.0.1", "port": port},
               "from_seq": 1, "filter": {"channels": ["default"]}}),
    )
    .await;
    wait_until("the back-fill", || received(dir.path()).len() == 30).await;

    // The receiver goes away; entries keep coming; it comes back on the same port.
    rsyslog.stop();
    record(&running, &key, 40, "during").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rsyslog = Rsyslog::start(dir.path(), port);
    record(&running, &key, 30, "after").await;
    wait_until("every entry after the outage", || {
        received(dir.path()).len() >= 100
    })
    .await;
    let seqs = received(dir.path());
    // Every entry of the channel, and nothing else (the stream's own `failing` and `recover`
    // entries are on `security`).
    let expected = default_channel_seqs(&running, &key).await;
    assert_eq!(expected.len(), 100);
    assert_eq!(seqs, expected, "in order, none lost, none twice");
    rsyslog.stop();
    running.stop().await;
}

/// A certificate authority (`ca.pem`) and a certificate it signed for 127.0.0.1 (`server.pem`,
/// `server.key`) in `dir`, made by the `openssl` command.
fn test_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"],
            &["-subj", "/CN=Stele test CA"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &["-keyout", "server.key", "-out", "server.csr"],
            &["-subj", "/CN=127.0.0.1"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

#[tokio::test]
async fn syslog_over_tls_reaches_a_real_rsyslog_and_checks_its_certificate() {
    let dir = tempfile::tempdir().unwrap();
    test_certificates(dir.path());
    let ca_file = dir.path().join("ca.pem");
    let running = Running::start_with(|c| {
        c.streams_allow_private_targets = true;
        c.streams_ca_file = Some(ca_file);
    })
    .await;
    let key = organization(&running).await;
    let port = free_port();
    let rsyslog = Rsyslog::start_tls(dir.path(), port);
    record(&running, &key, 20, "secure").await;
    let created = post(
        &running,
        &key,
        "/v1/streams",
        json!({"transport": {"type": "syslog", "host": "127.0.0.1", "port": port, "tls": true},
               "from_seq": 1}),
    )
    .await;
    assert_eq!(created["transport"]["tls"], json!(true));
    wait_until("the entries over TLS", || received(dir.path()).len() >= 20).await;
    assert_eq!(
        received(dir.path())[..20],
        (1..=20).collect::<Vec<i64>>()[..],
        "in order, over TLS"
    );

    // The certificate names 127.0.0.1, not `localhost`: a stream to `localhost` is refused by
    // the certificate check, and says so.
    let wrong_name = post(
        &running,
        &key,
        "/v1/streams",
        json!({"transport": {"type": "syslog", "host": "localhost", "port": port, "tls": true}}),
    )
    .await;
    record(&running, &key, 1, "after").await;
    let id = wrong_name["id"].as_str().unwrap().to_string();
    let error = {
        let start = Instant::now();
        loop {
            let view = get(&running, &key, &format!("/v1/streams/{id}")).await;
            if view["state"] == "failing" {
                break view["last_error"].as_str().unwrap().to_string();
            }
            assert!(start.elapsed() < Duration::from_secs(60), "{view}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    assert!(
        error.contains("TLS") && error.to_lowercase().contains("certificate"),
        "{error}"
    );
    rsyslog.stop();
    running.stop().await;
}

/// An https receiver on loopback presenting `server.pem` (signed by `ca.pem`, both in `dir`):
/// answers every request `204` and keeps the bodies. HTTP/1.1 read by hand, enough for what
/// reqwest sends (a `Content-Length` body, keep-alive).
async fn https_receiver(dir: &Path) -> (u16, Arc<Mutex<Vec<Value>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&std::fs::read(dir.join("server.pem")).unwrap())
            .collect::<Result<_, _>>()
            .unwrap();
    let key =
        PrivateKeyDer::from_pem_slice(&std::fs::read(dir.join("server.key")).unwrap()).unwrap();
    #[allow(deprecated)] // ring, as the server's own TLS (crates/service/src/streams/tls.rs)
    let provider = rustls::crypto::ring::default_provider();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies: Arc<Mutex<Vec<Value>>> = Arc::default();
    let keep = bodies.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, keep) = (acceptor.clone(), keep.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 16 * 1024];
                loop {
                    let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    while buffer.len() < end + 4 + length {
                        match tls.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buffer[end + 4..end + 4 + length].to_vec();
                    buffer.drain(..end + 4 + length);
                    keep.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    let answer = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                    if tls.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, bodies)
}

#[tokio::test]
async fn an_https_webhook_signed_by_the_operator_s_ca_is_trusted_and_another_is_not() {
    let dir = tempfile::tempdir().unwrap();
    test_certificates(dir.path());
    let (port, bodies) = https_receiver(dir.path()).await;
    let url = format!("https://127.0.0.1:{port}/hook");
    let stream = json!({"transport": {"type": "webhook", "url": url}, "from_seq": 1,
                        "filter": {"channels": ["default"]}});

    // With the CA given (--streams-ca-file): delivered over TLS.
    let ca_file = dir.path().join("ca.pem");
    let trusting = Running::start_with(|c| {
        c.streams_allow_private_targets = true;
        c.streams_ca_file = Some(ca_file);
    })
    .await;
    let key = organization(&trusting).await;
    record(&trusting, &key, 5, "over_https").await;
    post(&trusting, &key, "/v1/streams", stream.clone()).await;
    wait_until("the entries over https", || {
        bodies
            .lock()
            .unwrap()
            .iter()
            .map(|b| b["data"]["entries"].as_array().unwrap().len())
            .sum::<usize>()
            == 5
    })
    .await;
    trusting.stop().await;

    // Without it, the same receiver's certificate chains to nothing the server trusts.
    let wary = Running::start_with(|c| c.streams_allow_private_targets = true).await;
    let key = organization(&wary).await;
    record(&wary, &key, 1, "over_https").await;
    let created = post(&wary, &key, "/v1/streams", stream).await;
    let id = created["id"].as_str().unwrap().to_string();
    let start = Instant::now();
    let error = loop {
        let view = get(&wary, &key, &format!("/v1/streams/{id}")).await;
        if view["state"] == "failing" {
            break view["last_error"].as_str().unwrap().to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert_eq!(bodies.lock().unwrap().len(), 1, "nothing more arrived");
    wary.stop().await;
}

/// A real `nats-server` with JetStream on `port`, keeping its data in `dir`.
struct NatsServer {
    child: Child,
}

impl NatsServer {
    fn start(dir: &Path, port: u16) -> NatsServer {
        let binary = if Path::new("/usr/sbin/nats-server").exists() {
            "/usr/sbin/nats-server"
        } else {
            "nats-server"
        };
        let child = Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server runs (Debian package nats-server)");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "nats-server listens within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        NatsServer { child }
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The entries JetStream holds in Stele's stream, in its order: `(seq, Nats-Msg-Id, subject)`.
async fn published(port: u16) -> Vec<(i64, String, String)> {
    let Ok(client) = async_nats::connect(format!("nats://127.0.0.1:{port}")).await else {
        return vec![];
    };
    let context = async_nats::jetstream::new(client);
    let Ok(mut stream) = context
        .get_stream(stele_service::streams::nats::JETSTREAM_STREAM)
        .await
    else {
        return vec![];
    };
    let count = stream.info().await.map(|i| i.state.messages).unwrap_or(0);
    let mut out = Vec::new();
    for sequence in 1..=count {
        let message = stream.get_raw_message(sequence).await.unwrap();
        let entry: Value = serde_json::from_slice(&message.payload).unwrap();
        let id = message
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.to_string())
            .unwrap_or_default();
        assert_eq!(
            entry["id"].as_str().unwrap(),
            id,
            "the message id is the entry's"
        );
        out.push((
            entry["seq"].as_i64().unwrap(),
            id,
            message.subject.to_string(),
        ));
    }
    out
}

#[tokio::test]
async fn nats_jetstream_gets_every_entry_in_order_once_through_its_outage() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let nats = NatsServer::start(dir.path(), port);
    let running = Running::start_with(|c| {
        c.nats = Some(stele_service::streams::nats::NatsSettings {
            url: format!("nats://127.0.0.1:{port}"),
            subject_prefix: "audit.test".into(),
        })
    })
    .await;
    let key = organization(&running).await;
    record(&running, &key, 20, "before").await;
    let created = post(
        &running,
        &key,
        "/v1/streams",
        json!({"transport": {"type": "nats"}, "from_seq": 1, "filter": {"channels": ["default"]}}),
    )
    .await;
    assert_eq!(created["transport"], json!({"type": "nats"}));
    assert!(
        created.get("secret").is_none(),
        "NATS messages are not signed"
    );
    let start = Instant::now();
    while published(port).await.len() < 20 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the back-fill within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The NATS server goes away while entries keep coming, and comes back with its data.
    nats.stop();
    record(&running, &key, 30, "during").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let nats = NatsServer::start(dir.path(), port);
    let start = Instant::now();
    let messages = loop {
        let messages = published(port).await;
        if messages.len() >= 50 {
            break messages;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "50 messages within 90 s, have {}",
            messages.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let seqs: Vec<i64> = messages.iter().map(|m| m.0).collect();
    let mut sorted = seqs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seqs, sorted, "in order, each once");
    assert_eq!(seqs.len(), 50);
    let org_id = running.store.find_org("acme").await.unwrap().id;
    assert!(
        messages
            .iter()
            .all(|m| m.2 == format!("audit.test.{org_id}")),
        "one subject per organization"
    );

    // A resend of a delivered entry (the same message id) is dropped by JetStream.
    let client = async_nats::connect(format!("nats://127.0.0.1:{port}"))
        .await
        .unwrap();
    let context = async_nats::jetstream::new(client);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, messages[0].1.as_str());
    let ack = context
        .publish_with_headers(format!("audit.test.{org_id}"), headers, "{}".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(ack.duplicate, "JetStream de-duplicates by the entry's id");
    nats.stop();
    running.stop().await;
}

/// How long the receivers stay away in [`every_transport_catches_up_after_minutes_of_outage`]:
/// long enough for each stream's back-off to reach its ceiling several times over.
const LONG_OUTAGE: Duration = Duration::from_secs(120);

/// A plain-HTTP webhook receiver that keeps every batch's seqs in order, and answers `503` while
/// `down` is set.
async fn webhook_receiver() -> (
    String,
    Arc<Mutex<Vec<i64>>>,
    Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let seqs: Arc<Mutex<Vec<i64>>> = Arc::default();
    let down: Arc<AtomicBool> = Arc::default();
    let (keep, refuse) = (seqs.clone(), down.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let (keep, refuse) = (keep.clone(), refuse.clone());
            async move {
                if refuse.load(Ordering::SeqCst) {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let body: Value = serde_json::from_slice(&body).unwrap();
                keep.lock().unwrap().extend(
                    body["data"]["entries"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| e["seq"].as_i64().unwrap()),
                );
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seqs, down)
}

/// The issue's outage test at full length: a webhook answering `503`, rsyslogd and nats-server
/// stopped, for minutes while entries keep coming; each stream keeps retrying under its back-off
/// ceiling, and once the receivers are back every entry arrives, in order, none missing, none
/// twice, within a ceiling of the last one coming back.
#[tokio::test]
async fn every_transport_catches_up_after_minutes_of_outage() {
    use std::sync::atomic::Ordering;
    let ceiling = Duration::from_secs(10);
    let dir = tempfile::tempdir().unwrap();
    let (syslog_dir, nats_dir) = (dir.path().join("syslog"), dir.path().join("nats"));
    std::fs::create_dir_all(&syslog_dir).unwrap();
    std::fs::create_dir_all(&nats_dir).unwrap();
    let (syslog_port, nats_port) = (free_port(), free_port());
    let rsyslog = Rsyslog::start(&syslog_dir, syslog_port);
    let nats = NatsServer::start(&nats_dir, nats_port);
    let (url, webhook_seqs, down) = webhook_receiver().await;
    let running = Running::start_with(|c| {
        c.streams_allow_private_targets = true;
        c.streams_max_backoff = ceiling;
        c.nats = Some(stele_service::streams::nats::NatsSettings {
            url: format!("nats://127.0.0.1:{nats_port}"),
            subject_prefix: "audit.long".into(),
        });
    })
    .await;
    let key = organization(&running).await;
    record(&running, &key, 10, "before").await;
    // Only the default channel: the streams' own `failing` and `recover` entries are on
    // `security`, so the three receivers get the same entries.
    let filter = json!({"channels": ["default"]});
    let mut ids = Vec::new();
    for transport in [
        json!({"type": "webhook", "url": url}),
        json!({"type": "syslog", "host": "127.0.0.1", "port": syslog_port}),
        json!({"type": "nats"}),
    ] {
        let created = post(
            &running,
            &key,
            "/v1/streams",
            json!({"transport": transport, "from_seq": 1, "filter": filter}),
        )
        .await;
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let counts = |webhook: &Mutex<Vec<i64>>| {
        let nats = published(nats_port);
        let webhook = webhook.lock().unwrap().len();
        let syslog = received(&syslog_dir).len();
        async move { (webhook, syslog, nats.await.len()) }
    };
    let start = Instant::now();
    while counts(&webhook_seqs).await != (10, 10, 10) {
        assert!(start.elapsed() < Duration::from_secs(60), "the back-fill");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every receiver away for minutes; five entries every five seconds meanwhile.
    down.store(true, Ordering::SeqCst);
    rsyslog.stop();
    nats.stop();
    let away = Instant::now();
    let mut sent = 10;
    while away.elapsed() < LONG_OUTAGE {
        record(&running, &key, 5, "during").await;
        sent += 5;
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    for id in &ids {
        let view = get(&running, &key, &format!("/v1/streams/{id}")).await;
        assert_eq!(view["state"], "failing", "{view}");
        // The waits stopped growing at the ceiling: uncapped, they would have doubled to 64 s
        // and allowed 7 attempts in two minutes. (A NATS attempt also waits for JetStream's
        // acknowledgement to time out, so it fails fewer times.)
        let least = if view["transport"]["type"] == "nats" {
            4
        } else {
            12
        };
        assert!(view["failures"].as_u64().unwrap() >= least, "{view}");
        assert!(view["lag_entries"].as_u64().unwrap() >= 100, "{view}");
    }

    // Back, one after the other; more entries come.
    down.store(false, Ordering::SeqCst);
    let rsyslog = Rsyslog::start(&syslog_dir, syslog_port);
    let nats = NatsServer::start(&nats_dir, nats_port);
    let back = Instant::now();
    record(&running, &key, 10, "after").await;
    sent += 10;
    while counts(&webhook_seqs).await != (sent, sent, sent) {
        assert!(
            back.elapsed() < ceiling * 3 + Duration::from_secs(30),
            "every entry within a few back-off ceilings of the receivers' return: have {:?} of {sent}",
            counts(&webhook_seqs).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let expected = default_channel_seqs(&running, &key).await;
    assert_eq!(expected.len(), sent);
    let by_nats: Vec<i64> = published(nats_port).await.iter().map(|m| m.0).collect();
    for (transport, seqs) in [
        ("webhook", webhook_seqs.lock().unwrap().clone()),
        ("syslog", received(&syslog_dir)),
        ("nats", by_nats),
    ] {
        assert_eq!(
            seqs, expected,
            "{transport}: in order, none lost, none twice"
        );
    }
    rsyslog.stop();
    nats.stop();
    running.stop().await;
}
