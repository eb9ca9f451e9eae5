//! The limits that keep one client from exhausting the server (issue 17, item 6): connections
//! that never finish their head, stay idle or stall in a body are closed; connections over the
//! cap wait; an event over the size limit is refused, naming it; hyper's own answers (414) and a
//! path that is not UTF-8 get the API's JSON error.
//!
//! The connection tests speak raw HTTP/1.1 over TCP, with timeouts shortened to a second through
//! `Config`; their upper bounds are generous, for a loaded machine.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::helpers::{TestApp, assert_error, event, spawn_app, spawn_app_with};

/// Far longer than any shortened timeout below: a connection still open then was not closed.
const PATIENCE: Duration = Duration::from_secs(20);

async fn connect(app: &TestApp) -> TcpStream {
    let addr = app.url.trim_start_matches("http://");
    TcpStream::connect(addr).await.expect("connects")
}

/// Everything the server sends until it closes the connection, or `None` if it is still open
/// after `wait`.
async fn read_until_closed(stream: &mut TcpStream, wait: Duration) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(wait, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&received).into_owned())
}

#[tokio::test]
async fn a_connection_that_never_finishes_its_head_is_closed() {
    let app = spawn_app_with(|c| {
        c.header_timeout = Duration::from_secs(1);
        c.idle_timeout = Duration::from_secs(600);
    })
    .await;
    let mut half = connect(&app).await;
    half.write_all(b"GET /healthz HT").await.unwrap();
    let mut silent = connect(&app).await;
    let answer = read_until_closed(&mut half, PATIENCE).await;
    assert_eq!(
        answer.as_deref(),
        Some(""),
        "half a request line: closed, unanswered"
    );
    let answer = read_until_closed(&mut silent, PATIENCE).await;
    assert_eq!(answer.as_deref(), Some(""), "nothing sent: closed");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = spawn_app_with(|c| {
        c.header_timeout = Duration::from_secs(600);
        c.idle_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: stele\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, PATIENCE)
        .await
        .expect("the idle connection is closed after its answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");
}

#[tokio::test]
async fn a_body_that_stalls_is_answered_408_and_closed() {
    let app = spawn_app_with(|c| {
        c.header_timeout = Duration::from_secs(600);
        c.request_timeout = Duration::from_secs(1);
    })
    .await;
    let mut stream = connect(&app).await;
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: stele\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"action\":",
        app.key
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, PATIENCE)
        .await
        .expect("a stalled body is not waited for");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/json"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    // Nothing was recorded, and the server still serves.
    let page = app.get_json("/v1/events").await;
    assert_eq!(page["entries"], json!([]), "{page}");
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let app = spawn_app_with(|c| {
        c.max_connections = 2;
        c.header_timeout = Duration::from_secs(600);
        c.idle_timeout = Duration::from_secs(600);
    })
    .await;
    let first = connect(&app).await;
    let _second = connect(&app).await;
    let mut third = connect(&app).await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: stele\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // Two connections are open: the third is not served (it waits, not accepted)...
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(1500), third.read(&mut byte)).await;
    assert!(early.is_err(), "the third connection was served: {early:?}");
    // ...until one of them closes.
    drop(first);
    let answer = read_until_closed(&mut third, PATIENCE)
        .await
        .expect("served once a connection closed");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_uri_too_long_gets_414_in_json() {
    let app = spawn_app().await;
    let mut stream = connect(&app).await;
    let request = format!(
        "GET /v1/events/{} HTTP/1.1\r\nHost: stele\r\n\r\n",
        "a".repeat(70_000)
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, PATIENCE)
        .await
        .expect("answered and closed");
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["code"], "uri_too_long", "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

#[tokio::test]
async fn a_path_that_is_not_utf8_gets_400_in_json() {
    let app = spawn_app().await;
    for path in [
        "/v1/events/%FF",
        "/v1/events/%C3%28/proof",
        "/audit_logs/%FE",
    ] {
        let response = app.get(path).await;
        let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_path").await;
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
    }
}

/// An event whose metadata holds `keys` strings of 4,000 characters: about 4 KB of JSON each.
fn event_of(keys: usize) -> Value {
    let mut e = event("create");
    let metadata: serde_json::Map<String, Value> = (0..keys)
        .map(|i| (format!("k{i}"), json!("x".repeat(4000))))
        .collect();
    e["metadata"] = Value::Object(metadata);
    e
}

#[tokio::test]
async fn an_event_over_the_size_limit_is_refused_and_nothing_of_its_batch_is_stored() {
    // The default limit, 64 KiB.
    let app = spawn_app().await;
    let under = event_of(15);
    assert!(under.to_string().len() < 65_536);
    let over = event_of(17);
    assert!(over.to_string().len() > 65_536);

    let response = app.post_events(&under).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let response = app.post_events(&over).await;
    let body = assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "event_too_large").await;
    assert_eq!(body["error"]["details"][0]["field"], "event", "{body}");
    assert!(body["error"]["details"][0].get("index").is_none(), "{body}");

    let batch = json!({"events": [event("create"), over, event("update")]});
    let response = app.post_events(&batch).await;
    let body = assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "event_too_large").await;
    let details = body["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{body}");
    assert_eq!(details[0]["index"], 1, "{body}");
    assert_eq!(details[0]["field"], "event", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("index 1"), "{message}");

    // Only the event under the limit was stored.
    let page = app.get_json("/v1/events").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1, "{page}");

    // The limit is the server's to set.
    let app = spawn_app_with(|c| c.max_event_bytes = 4096).await;
    let response = app.post_events(&event_of(1)).await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "event_too_large").await;
    let response = app.post_events(&event("create")).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}
