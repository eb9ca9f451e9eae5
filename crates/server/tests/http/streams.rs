//! Log streams over HTTP: configuration within the organization (and recorded in its trail),
//! requests refused naming the field, the guard against private targets, and webhook delivery to
//! a receiver in the test: every entry, in order, signed, through an outage and a refusal.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::response::IntoResponse;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stele_store::Scope;

use super::helpers::*;

/// One POST the receiver took.
#[derive(Clone, Debug)]
struct Delivery {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn seqs(&self) -> Vec<i64> {
        self.json()["data"]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect()
    }
}

/// An answer the receiver is told to give: a status, and its `Retry-After` if any.
type Scripted = (u16, Option<&'static str>);

/// A webhook receiver on loopback: answers each POST with the next scripted status (with its
/// `Retry-After`, if any), or 200 once the script is spent; keeps what it took with a 2xx.
#[derive(Clone)]
struct Receiver {
    url: String,
    taken: Arc<Mutex<Vec<Delivery>>>,
    refused: Arc<Mutex<u32>>,
    script: Arc<Mutex<VecDeque<Scripted>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
            taken: Arc::default(),
            refused: Arc::default(),
            script: Arc::default(),
        };
        let state = receiver.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let state = state.clone();
                async move {
                    let next = state.script.lock().unwrap().pop_front();
                    match next {
                        Some((status, retry_after)) => {
                            *state.refused.lock().unwrap() += 1;
                            let mut answer =
                                (AxumStatus::from_u16(status).unwrap(), "not now").into_response();
                            if let Some(after) = retry_after {
                                answer
                                    .headers_mut()
                                    .insert("retry-after", after.parse().unwrap());
                            }
                            answer
                        }
                        None => {
                            state.taken.lock().unwrap().push(Delivery {
                                headers,
                                body: body.to_vec(),
                            });
                            AxumStatus::NO_CONTENT.into_response()
                        }
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        receiver
    }

    fn fail_next(&self, answers: &[Scripted]) {
        self.script.lock().unwrap().extend(answers.iter().copied());
    }

    fn taken(&self) -> Vec<Delivery> {
        self.taken.lock().unwrap().clone()
    }

    /// Every seq delivered, in the order delivered.
    fn seqs(&self) -> Vec<i64> {
        self.taken().iter().flat_map(Delivery::seqs).collect()
    }

    /// Waits (at most 30 s) until `n` entries have arrived.
    async fn wait_for(&self, n: usize) -> Vec<i64> {
        self.wait_until(&format!("{n} entries"), |r| {
            let seqs = r.seqs();
            (seqs.len() >= n).then_some(seqs)
        })
        .await
    }

    /// Waits (at most 30 s) until the receiver has taken `n` POSTs.
    async fn wait_for_posts(&self, n: usize) -> Vec<Delivery> {
        self.wait_until(&format!("{n} POSTs"), |r| {
            let taken = r.taken();
            (taken.len() >= n).then_some(taken)
        })
        .await
    }

    /// Polls `ready` every 50 ms until it gives something, at most 30 s.
    async fn wait_until<T>(&self, what: &str, ready: impl Fn(&Receiver) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(done) = ready(self) {
                return done;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{what} within 30 s; the receiver took {} POSTs",
                self.taken().len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn spawn_streaming_app() -> TestApp {
    spawn_app_with(|c| c.streams_allow_private_targets = true).await
}

impl TestApp {
    async fn create_stream(&self, body: &Value) -> Value {
        let response = self
            .send_json_as(Method::POST, &self.key, "/v1/streams", body)
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// Waits (at most 30 s) until the stream's view satisfies `done`, and returns it.
    async fn wait_for_stream(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        self.wait_for_stream_as(&self.key, id, done).await
    }

    /// [`TestApp::wait_for_stream`] with `key`.
    async fn wait_for_stream_as(
        &self,
        key: &str,
        id: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let view = self.get_json_as(key, &format!("/v1/streams/{id}")).await;
            if done(&view) {
                return view;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the stream did not get there within 30 s: {view}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn webhook(url: &str) -> Value {
    json!({"type": "webhook", "url": url})
}

#[tokio::test]
async fn streams_are_managed_within_their_organization_and_every_change_is_recorded() {
    let app = spawn_app().await;
    let created = app
        .create_stream(&json!({
            "name": "Splunk",
            "transport": webhook("https://siem.example.com/stele"),
            "filter": {"channels": ["security"]},
        }))
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("str_"), "{created}");
    assert_eq!(created["state"], "active");
    assert_eq!(created["filter"], json!({"channels": ["security"]}));
    assert_eq!(created["max_entries"], 100);
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{created}");

    // The secret is shown at creation only.
    let shown = app.get_json(&format!("/v1/streams/{id}")).await;
    assert!(shown.get("secret").is_none(), "{shown}");
    assert!(!shown.to_string().contains(secret));
    let listed = app.get_json("/v1/streams").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);

    // Changes: what a PATCH leaves out stays.
    let changed = app
        .send_json_as(
            Method::PATCH,
            &app.key,
            &format!("/v1/streams/{id}"),
            &json!({"name": "Splunk EU", "max_entries": 10}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(
        (
            &changed["name"],
            &changed["max_entries"],
            &changed["filter"]
        ),
        (
            &json!("Splunk EU"),
            &json!(10),
            &json!({"channels": ["security"]})
        )
    );
    let paused: Value = app
        .send_json_as(
            Method::POST,
            &app.key,
            &format!("/v1/streams/{id}/pause"),
            &json!({"reason": "SIEM maintenance"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (&paused["state"], &paused["paused_reason"]),
        (&json!("paused"), &json!("SIEM maintenance"))
    );
    let resumed: Value = app
        .send_json_as(
            Method::POST,
            &app.key,
            &format!("/v1/streams/{id}/resume"),
            &json!({}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["state"], "active");
    let rotated: Value = app
        .send_json_as(
            Method::POST,
            &app.key,
            &format!("/v1/streams/{id}/rotate-secret"),
            &json!({"overlap_seconds": 60}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rotated["secret_version"], 2);
    let new_secret = rotated["secret"].as_str().unwrap();
    assert!(new_secret.starts_with("whsec_") && new_secret != secret);
    assert!(rotated["previous_secret_until"].is_string());

    // Another organization's admin, and this organization's keys without `admin`, get nothing.
    let other = app.key_for("other", &[Scope::Admin]).await;
    assert_error(
        app.get_as(&other, &format!("/v1/streams/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        app.get_json_as(&other, "/v1/streams").await["data"],
        json!([])
    );
    for (method, path) in [
        (Method::PATCH, format!("/v1/streams/{id}")),
        (Method::POST, format!("/v1/streams/{id}/pause")),
        (Method::DELETE, format!("/v1/streams/{id}")),
    ] {
        let response = app.send_json_as(method, &other, &path, &json!({})).await;
        assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    let reader = app.key_for("default", &[Scope::Read, Scope::Ingest]).await;
    assert_error(
        app.get_as(&reader, "/v1/streams").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;

    let deleted = app
        .send_json_as(
            Method::DELETE,
            &app.key,
            &format!("/v1/streams/{id}"),
            &json!({}),
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    app.get_error(
        &format!("/v1/streams/{id}"),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;

    // Every change is in the organization's trail, with the stream as its entity.
    let recorded = app
        .get_json("/v1/events?channel=security&actor_type=all&limit=50")
        .await;
    let mut actions: Vec<String> = recorded["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"]["type"] == "LogStream")
        .map(|e| e["detailed_action"].as_str().unwrap().to_string())
        .collect();
    actions.reverse();
    assert_eq!(
        actions,
        [
            "log_stream.create",
            "log_stream.update",
            "log_stream.pause",
            "log_stream.resume",
            "log_stream.secret_rotate",
            "log_stream.delete"
        ]
    );
    assert!(
        !recorded.to_string().contains(secret),
        "no secret in the trail"
    );
}

#[tokio::test]
async fn stream_requests_are_refused_naming_the_field_and_private_targets_by_default() {
    let app = spawn_app().await;
    let cases = [
        (json!({"name": "x"}), "transport"),
        (json!({"transport": {"type": "kafka"}}), "transport.type"),
        // This server publishes to no NATS server (--nats-url).
        (json!({"transport": {"type": "nats"}}), "transport.type"),
        (json!({"transport": webhook("not a url")}), "transport.url"),
        (
            json!({"transport": webhook("http://127.0.0.1:9000/in")}),
            "transport.url",
        ),
        (
            json!({"transport": webhook("http://169.254.169.254/latest/meta-data")}),
            "transport.url",
        ),
        (
            json!({"transport": webhook("http://[::1]/in")}),
            "transport.url",
        ),
        (
            json!({"transport": webhook("https://localhost/in")}),
            "transport.url",
        ),
        (
            json!({"transport": {"type": "syslog", "host": "192.168.0.10", "port": 514}}),
            "transport.host",
        ),
        (
            json!({"transport": {"type": "syslog", "host": "logs.example.com"}}),
            "transport.port",
        ),
        (
            json!({"transport": webhook("https://a.example"), "filter": {"channel": ["x"]}}),
            "filter.channel",
        ),
        (
            json!({"transport": webhook("https://a.example"), "from_seq": 0}),
            "from_seq",
        ),
        (
            json!({"transport": webhook("https://a.example"), "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in cases {
        let response = app
            .send_json_as(Method::POST, &app.key, "/v1/streams", &body)
            .await;
        let error = assert_error(response, StatusCode::BAD_REQUEST, "invalid_stream").await;
        assert_eq!(
            error["error"]["details"][0]["field"], field,
            "{body}: {error}"
        );
    }
    assert!(app.get_json("/v1/streams").await["data"] == json!([]));
}

#[tokio::test]
async fn a_webhook_receives_every_entry_in_order_signed_from_a_back_fill_on() {
    let app = spawn_streaming_app().await;
    let receiver = Receiver::start().await;
    // Entries from before the stream: a back-fill from seq 1 delivers them too.
    for batch in 0..3 {
        let events: Vec<Value> = (0..50)
            .map(|i| event(&format!("before_{batch}_{i}")))
            .collect();
        app.record(events).await;
    }
    let created = app
        .create_stream(&json!({
            "transport": webhook(&receiver.url),
            "from_seq": 1,
            "max_entries": 40,
        }))
        .await;
    let id = created["id"].as_str().unwrap();
    let secret = created["secret"].as_str().unwrap().to_string();
    for batch in 0..3 {
        let events: Vec<Value> = (0..50)
            .map(|i| event(&format!("after_{batch}_{i}")))
            .collect();
        app.record(events).await;
    }
    // 300 events, and the stream's own creation entry among them.
    let seqs = receiver.wait_for(301).await;
    assert_eq!(
        seqs,
        (1..=301).collect::<Vec<_>>(),
        "every seq once, in order"
    );
    let deliveries = receiver.taken();
    assert!(deliveries.iter().all(|d| d.seqs().len() <= 40));
    let key = secret_key(&secret);
    for delivery in &deliveries {
        let body = delivery.json();
        assert_eq!(body["type"], "audit_log.entries");
        assert_eq!(body["data"]["stream_id"], id);
        let id_header = delivery.headers["webhook-id"].to_str().unwrap();
        let timestamp = delivery.headers["webhook-timestamp"].to_str().unwrap();
        let signature = delivery.headers["webhook-signature"].to_str().unwrap();
        let expected = stele_service::streams::webhook::signature(
            &[key],
            id_header,
            timestamp.parse().unwrap(),
            &delivery.body,
        );
        assert_eq!(signature, expected);
        for entry in body["data"]["entries"].as_array().unwrap() {
            assert_eq!(entry["organization_id"], body["data"]["organization_id"]);
            assert!(
                entry["id"].is_string() && entry["action"].is_string(),
                "{entry}"
            );
        }
    }
    let view = app.wait_for_stream(id, |v| v["lag_entries"] == 0).await;
    assert_eq!(
        (&view["state"], &view["delivered"]),
        (&json!("active"), &json!(301))
    );
    // The stream's own counter on /metrics.
    let metrics = app.get_anonymous("/metrics").await.text().await.unwrap();
    let line = format!("stele_stream_delivered_entries_total{{stream=\"{id}\"}} 301");
    assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    assert!(view["last_delivery_at"].is_string());
}

/// The key of a `whsec_…` secret.
fn secret_key(secret: &str) -> [u8; 32] {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

#[tokio::test]
async fn an_outage_is_retried_until_the_receiver_takes_everything_and_a_refusal_pauses() {
    let app = spawn_streaming_app().await;
    let receiver = Receiver::start().await;
    // Two 503s and a 429 with Retry-After: the stream fails, waits, and catches up.
    receiver.fail_next(&[(503, None), (503, None), (429, Some("1"))]);
    let created = app
        .create_stream(
            &json!({"transport": webhook(&receiver.url), "filter": {"channels": ["orders"]}}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let events: Vec<Value> = (0..20)
        .map(|i| {
            let mut e = event(&format!("order_{i}"));
            e["channel"] = json!(if i % 2 == 0 { "orders" } else { "other" });
            e
        })
        .collect();
    let receipts = app.record(events).await;
    let wanted: Vec<i64> = receipts
        .iter()
        .step_by(2)
        .map(|r| r["seq"].as_i64().unwrap())
        .collect();
    let failing = app.wait_for_stream(id, |v| v["state"] == "failing").await;
    assert!(
        failing["last_error"].as_str().unwrap().contains("503"),
        "{failing}"
    );
    let seqs = receiver.wait_for(wanted.len()).await;
    assert_eq!(seqs, wanted, "the filter's entries, in order, each once");
    assert_eq!(*receiver.refused.lock().unwrap(), 3);
    let healthy = app
        .wait_for_stream(id, |v| v["state"] == "active" && v["lag_entries"] == 0)
        .await;
    assert_eq!(healthy["failures"], 0);

    // A 410: retrying cannot help, so the stream pauses with the receiver's reason.
    receiver.fail_next(&[(410, None)]);
    app.record(vec![json!({"action": "order_late", "channel": "orders",
        "actor": {"type": "user", "id": "u1"}})])
        .await;
    let paused = app.wait_for_stream(id, |v| v["state"] == "paused").await;
    assert!(
        paused["paused_reason"].as_str().unwrap().contains("410"),
        "{paused}"
    );
    let before = receiver.seqs().len();
    let resumed = app
        .send_json_as(
            Method::POST,
            &app.key,
            &format!("/v1/streams/{id}/resume"),
            &json!({}),
        )
        .await;
    assert_eq!(resumed.status(), StatusCode::OK);
    receiver.wait_for(before + 1).await;

    // The failing, recovered and paused states are in the trail.
    let recorded = app
        .get_json("/v1/events?channel=security&actor_type=all&limit=50")
        .await;
    let actions: Vec<&str> = recorded["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"]["type"] == "LogStream")
        .map(|e| e["detailed_action"].as_str().unwrap())
        .collect();
    for action in [
        "log_stream.failing",
        "log_stream.recover",
        "log_stream.pause",
        "log_stream.resume",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
}

#[tokio::test]
async fn a_paused_stream_delivers_nothing_and_resumes_where_it_stopped() {
    let app = spawn_streaming_app().await;
    let receiver = Receiver::start().await;
    let created = app
        .create_stream(
            &json!({"transport": webhook(&receiver.url), "filter": {"actions": ["kept"]}}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    app.record(vec![event("kept")]).await;
    receiver.wait_for(1).await;
    let response = app
        .send_json_as(
            Method::POST,
            &app.key,
            &format!("/v1/streams/{id}/pause"),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.record((0..5).map(|_| event("kept")).collect()).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.seqs().len(), 1, "nothing while paused");
    let view = app.get_json(&format!("/v1/streams/{id}")).await;
    assert!(view["lag_entries"].as_u64().unwrap() >= 5, "{view}");
    app.send_json_as(
        Method::POST,
        &app.key,
        &format!("/v1/streams/{id}/resume"),
        &json!({}),
    )
    .await;
    let seqs = receiver.wait_for(6).await;
    let mut sorted = seqs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seqs, sorted, "in order, none twice");
}

#[tokio::test]
async fn a_webhook_url_s_query_values_are_hidden_and_a_syslog_stream_has_no_secret() {
    let app = spawn_streaming_app().await;
    let receiver = Receiver::start().await;
    let url = format!("{}?token=s3cr3t-value&region=eu", receiver.url);
    let created = app
        .create_stream(&json!({"transport": webhook(&url)}))
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created["transport"]["url"],
        format!("{}?token=…&region=…", receiver.url)
    );
    // The receiver is still called at the whole URL.
    app.record(vec![event("hidden")]).await;
    receiver.wait_for(2).await;
    let recorded = app
        .get_json("/v1/events?channel=security&actor_type=all&limit=50")
        .await;
    let listed = app.get_json("/v1/streams").await;
    for shown in [&recorded, &listed, &created] {
        assert!(!shown.to_string().contains("s3cr3t-value"), "{shown}");
    }
    assert!(
        recorded.to_string().contains("token=…"),
        "the trail shows where it delivers: {recorded}"
    );
    assert!(
        !app.get_json(&format!("/v1/streams/{id}"))
            .await
            .to_string()
            .contains("s3cr3t")
    );

    let syslog = app
        .create_stream(&json!({"transport": {"type": "syslog", "host": "127.0.0.1", "port": 6514}}))
        .await;
    assert!(syslog.get("secret").is_none(), "{syslog}");
    let rotate = app
        .send_json_as(
            Method::POST,
            &app.key,
            &format!(
                "/v1/streams/{}/rotate-secret",
                syslog["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    let error = assert_error(rotate, StatusCode::BAD_REQUEST, "invalid_stream").await;
    assert_eq!(error["error"]["details"][0]["field"], "transport");
}

#[tokio::test]
async fn an_entry_erased_before_its_delivery_is_delivered_erased() {
    let app = spawn_streaming_app().await;
    let receiver = Receiver::start().await;
    let created = app
        .create_stream(
            &json!({"transport": webhook(&receiver.url), "filter": {"actions": ["signed_in"]}}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    let paused = app
        .send_json_as(
            Method::POST,
            &app.key,
            &format!("/v1/streams/{id}/pause"),
            &json!({}),
        )
        .await;
    assert_eq!(paused.status(), StatusCode::OK);
    app.record(vec![json!({"action": "signed_in",
        "actor": {"type": "user", "id": "grace-1", "email": "grace@example.com", "name": "Grace Hopper"}})])
        .await;
    app.erase(&json!({"email": "grace@example.com"})).await;
    app.send_json_as(
        Method::POST,
        &app.key,
        &format!("/v1/streams/{id}/resume"),
        &json!({}),
    )
    .await;
    receiver.wait_for(1).await;
    let delivered = String::from_utf8(receiver.taken()[0].body.clone()).unwrap();
    assert!(!delivered.contains("grace@example.com"), "{delivered}");
    assert!(!delivered.contains("Grace Hopper"), "{delivered}");
}

#[tokio::test]
async fn siem_formats_post_what_each_intake_takes_with_the_stream_s_sealed_header() {
    let app = spawn_streaming_app().await;
    let receiver = Receiver::start().await;
    let token = "Splunk 5e4d-t0k3n-value";
    app.record((0..3).map(|i| event(&format!("siem_{i}"))).collect())
        .await;
    let created = app
        .create_stream(&json!({
            "transport": {"type": "webhook", "url": receiver.url,
                          "headers": {"Authorization": token}},
            "format": "splunk_hec",
            "from_seq": 1,
            "filter": {"channels": ["default"]},
        }))
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["format"], "splunk_hec");
    assert_eq!(
        created["transport"]["headers"],
        json!({"authorization": "…"})
    );

    // Splunk's HTTP Event Collector: one event object per entry, the token in the header.
    let deliveries = receiver.wait_for_posts(1).await;
    let splunk = &deliveries[0];
    assert_eq!(splunk.headers["authorization"], token);
    assert!(splunk.headers.contains_key("webhook-signature"));
    let events: Vec<Value> = std::str::from_utf8(&splunk.body)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let seqs: Vec<i64> = events
        .iter()
        .map(|e| e["event"]["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(
        events
            .iter()
            .all(|e| e["sourcetype"] == "stele:audit" && e["time"].is_f64())
    );

    // (Each change waits for the cursor: a change made while a delivery is unrecorded sends
    // that batch again, in the new format.)
    app.wait_for_stream(&id, |v| v["lag_entries"] == 0).await;
    // A new URL and format without `headers`: the token stays.
    let patched = app
        .send_json_as(
            Method::PATCH,
            &app.key,
            &format!("/v1/streams/{id}"),
            &json!({"transport": {"type": "webhook", "url": format!("{}?index=audit", receiver.url)},
                    "format": "elastic_bulk"}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    app.record(vec![event("siem_bulk")]).await;
    let deliveries = receiver.wait_for_posts(2).await;
    let bulk = &deliveries[1];
    assert_eq!(bulk.headers["authorization"], token);
    assert_eq!(bulk.headers["content-type"], "application/x-ndjson");
    let lines: Vec<Value> = std::str::from_utf8(&bulk.body)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "an action and a document: {lines:?}");
    assert_eq!(lines[0]["create"]["_id"], lines[1]["id"]);
    assert_eq!(lines[1]["action"], "siem_bulk");
    assert!(lines[1]["@timestamp"].is_string());

    app.wait_for_stream(&id, |v| v["lag_entries"] == 0).await;
    // Datadog's intake: an array of logs; `headers: {}` drops the token.
    let patched = app
        .send_json_as(
            Method::PATCH,
            &app.key,
            &format!("/v1/streams/{id}"),
            &json!({"transport": {"type": "webhook", "url": receiver.url, "headers": {}},
                    "format": "datadog"}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    app.record(vec![event("siem_datadog")]).await;
    let deliveries = receiver.wait_for_posts(3).await;
    let datadog = &deliveries[2];
    assert!(!datadog.headers.contains_key("authorization"));
    let logs = datadog.json();
    assert_eq!(logs[0]["ddsource"], "stele");
    assert_eq!(logs[0]["audit"]["action"], "siem_datadog");

    // The token is in no answer, no trail entry, and not in the database's own row.
    let recorded = app
        .get_json("/v1/events?channel=security&actor_type=all&limit=50")
        .await;
    let shown = app.get_json(&format!("/v1/streams/{id}")).await;
    for text in [recorded.to_string(), shown.to_string(), created.to_string()] {
        assert!(!text.contains("t0k3n"), "{text}");
    }
    for org in app.store.list_orgs().await.unwrap() {
        for stream in app.store.streams(org.key).await.unwrap() {
            assert!(!stream.spec.contains("t0k3n"), "{}", stream.spec);
        }
    }

    // Refusals name the field.
    for (body, field) in [
        (json!({"format": "splunk"}), "format"),
        (
            json!({"transport": {"type": "webhook", "url": receiver.url,
                                 "headers": {"Content-Type": "text/plain"}}}),
            "transport.headers.Content-Type",
        ),
    ] {
        let refused = app
            .send_json_as(Method::PATCH, &app.key, &format!("/v1/streams/{id}"), &body)
            .await;
        let error = assert_error(refused, StatusCode::BAD_REQUEST, "invalid_stream").await;
        assert_eq!(error["error"]["details"][0]["field"], field);
    }
}

#[tokio::test]
async fn a_failing_stream_sent_elsewhere_tries_at_once() {
    let app = spawn_streaming_app().await;
    let receiver = Receiver::start().await;
    // The receiver asks for ten minutes' patience, as an HTTP date.
    let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(600));
    let later: &'static str = Box::leak(later.into_boxed_str());
    receiver.fail_next(&[(503, Some(later))]);
    let created = app
        .create_stream(&json!({"transport": webhook(&receiver.url),
                               "filter": {"channels": ["default"]}}))
        .await;
    let id = created["id"].as_str().unwrap();
    app.record(vec![event("patient")]).await;
    let failing = app.wait_for_stream(id, |v| v["state"] == "failing").await;
    let retry_at = stele_core::time::parse_rfc3339(failing["retry_at"].as_str().unwrap()).unwrap();
    assert!(
        retry_at - stele_core::time::now_millis() > 500_000,
        "the date is honoured: {failing}"
    );

    // Pointed at another URL, it starts afresh instead of waiting out the old receiver's time.
    let patched = app
        .send_json_as(
            Method::PATCH,
            &app.key,
            &format!("/v1/streams/{id}"),
            &json!({"transport": webhook(&format!("{}?v=2", receiver.url))}),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let view: Value = patched.json().await.unwrap();
    assert_eq!(
        (&view["state"], &view["failures"], &view["retry_at"]),
        (&json!("active"), &json!(0), &Value::Null),
        "{view}"
    );
    receiver.wait_for(1).await;
}

#[tokio::test]
async fn a_platform_wide_stream_delivers_every_organization_s_trail_each_in_order() {
    let app = spawn_streaming_app().await;
    let receiver = Receiver::start().await;
    let key = app
        .platform_key(&[Scope::Ingest, Scope::Read, Scope::Admin])
        .await;
    let post_for = |org: &'static str, prefix: &'static str, n: usize| {
        let app = &app;
        let key = &key;
        async move {
            let events: Vec<Value> = (0..n).map(|i| event(&format!("{prefix}_{i}"))).collect();
            let body = json!({ "events": events });
            let response = app
                .as_platform(Method::POST, key, Some(org), "/v1/events", Some(&body))
                .await;
            assert_eq!(response.status(), StatusCode::CREATED);
        }
    };
    // Two tenants with entries from before the stream: the first key's organization, and `beta`.
    app.record((0..30).map(|i| event(&format!("first_{i}"))).collect())
        .await;
    post_for("beta", "beta", 20).await;

    // Each organization numbers its own entries: a platform-wide stream starts now or at the
    // first entry of every one.
    let request = json!({"transport": webhook(&receiver.url), "from_seq": 5});
    let (status, error) = app
        .platform_json(Method::POST, &key, None, "/v1/streams", Some(&request))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["error"]["details"][0]["field"], "from_seq");
    let request = json!({"transport": webhook(&receiver.url), "from_seq": 1, "max_entries": 7});
    let (status, created) = app
        .platform_json(Method::POST, &key, None, "/v1/streams", Some(&request))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["scope"], "platform");
    assert_eq!(created["cursor"], Value::Null);
    let id = created["id"].as_str().unwrap().to_string();
    // A tenant's admin does not see the platform's stream, by list or by id.
    assert_eq!(app.get_json("/v1/streams").await["data"], json!([]));
    let response = app.get(&format!("/v1/streams/{id}")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // A platform key acting for one organization makes that organization's own stream.
    let (status, own) = app
        .platform_json(
            Method::POST,
            &key,
            Some("beta"),
            "/v1/streams",
            Some(&json!({"transport": webhook("http://127.0.0.1:9/other")})),
        )
        .await;
    assert_eq!(
        (status, &own["scope"]),
        (StatusCode::CREATED, &json!("organization"))
    );

    // More in each, and an organization made after the stream: delivered from its first entry.
    app.record((0..10).map(|i| event(&format!("later_{i}"))).collect())
        .await;
    post_for("beta", "beta_later", 10).await;
    post_for("gamma", "gamma", 5).await;

    let view = app
        .wait_for_stream_as(&key, &id, |v| {
            v["lag_entries"] == 0 && v["organizations"]["behind"] == 0
        })
        .await;
    assert_eq!(view["state"], "active");
    // Every organization's trail, each entry once, each organization's in `seq` order. A POST may
    // hold several organizations' entries (each names its own; the envelope names none), and no
    // two POSTs share a `webhook-id`.
    let mut delivered: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    let mut webhook_ids = std::collections::BTreeSet::new();
    let mut mixed = 0;
    for delivery in receiver.taken() {
        let body = delivery.json();
        assert_eq!(body["data"]["organization_id"], Value::Null, "{body}");
        let webhook_id = delivery.headers["webhook-id"].to_str().unwrap();
        assert!(webhook_id.starts_with(&format!("{id}_")), "{webhook_id}");
        assert!(
            webhook_ids.insert(webhook_id.to_string()),
            "{webhook_id} twice"
        );
        let mut orgs = std::collections::BTreeSet::new();
        let entries = body["data"]["entries"].as_array().unwrap();
        assert!(entries.len() <= 7, "max_entries holds across organizations");
        for entry in entries {
            let org_id = entry["organization_id"].as_str().unwrap().to_string();
            orgs.insert(org_id.clone());
            delivered
                .entry(org_id)
                .or_default()
                .push(entry["seq"].as_i64().unwrap());
        }
        if orgs.len() > 1 {
            mixed += 1;
        }
    }
    assert!(
        mixed > 0,
        "a batch holds the next organization's entries when one runs out"
    );
    let mut expected = std::collections::BTreeMap::new();
    for org in app.store.list_orgs().await.unwrap() {
        let head = app.store.head_seq(org.key).await.unwrap().get();
        if head > 0 {
            expected.insert(org.id, (1..=head).collect::<Vec<i64>>());
        }
    }
    // The platform's own trail (the streams' creation), the first key's, beta's and gamma's.
    assert_eq!(expected.len(), 4, "{expected:?}");
    assert_eq!(delivered, expected);
    assert_eq!(view["organizations"]["total"], 4);
    assert_eq!(
        view["delivered"],
        json!(expected.values().map(Vec::len).sum::<usize>())
    );
}
