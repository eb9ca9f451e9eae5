//! The limits and error answers that keep one client from getting past the API's contract
//! (issue 17, item 6): an event over the size limit is refused, naming it; a path that is not
//! UTF-8 gets the API's JSON error.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::helpers::{assert_error, event, spawn_app, spawn_app_with};

#[tokio::test]
async fn a_path_that_is_not_utf8_gets_400_in_json() {
    let app = spawn_app().await;
    for path in ["/v1/events/%FF", "/v1/events/%C3%28/proof", "/audit_logs/%FE"] {
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
