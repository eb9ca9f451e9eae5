//! `POST /v1/redaction/test`: the preview of what an event would be stored as stores nothing,
//! and is exactly what `POST /v1/events` then stores; the organization's rules (`redaction` in
//! its settings) are what both apply.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use stele_store::Scope;

use super::helpers::{TestApp, assert_error, spawn_app};

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.\
                   dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";

impl TestApp {
    async fn redaction_test_as(&self, key: &str, body: &Value) -> Response {
        self.send_json_as(Method::POST, key, "/v1/redaction/test", body)
            .await
    }

    async fn redaction_test(&self, body: &Value) -> Value {
        let response = self.redaction_test_as(&self.key, body).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The stored entry with this id, without what storing assigned.
    async fn stored_form(&self, id: &str) -> Value {
        let mut entry = self.get_json(&format!("/v1/events/{id}")).await;
        let map = entry.as_object_mut().unwrap();
        for key in ["id", "seq", "recorded_at", "correlated"] {
            map.remove(key);
        }
        entry
    }
}

fn sample() -> Value {
    json!({
        "action": "update",
        "occurred_at": "2026-01-02T03:04:05Z",
        "actor": {"type": "user", "id": "u1", "metadata": {"session_id": "s-1"}},
        "entity": {"type": "account", "id": "a1"},
        "changes": [
            {"field": "password", "old": "hunter2", "new": "correct horse"},
            {"field": "shipping_address", "old": "1 Main St", "new": "2 Main St"},
            {"field": "note", "new": format!("Bearer {JWT}")},
        ],
        "metadata": {"pin": "1234", "card": "4111 1111 1111 1111", "plan": "pro",
                     "request_id": "550e8400-e29b-41d4-a716-446655440000"},
    })
}

#[tokio::test]
async fn the_preview_stores_nothing_and_is_what_ingest_then_stores() {
    let app = spawn_app().await;
    let before = app.seqs("actor_type=all").await;
    let preview = app.redaction_test(&json!({"event": sample()})).await;
    assert_eq!(
        app.seqs("actor_type=all").await,
        before,
        "the preview stored nothing"
    );
    assert_eq!(
        preview["redacted"],
        json!([
            "changes.password.old",
            "changes.password.new",
            "changes.note.new",
            "metadata.card",
            "metadata.pin",
            "actor.metadata.session_id",
        ])
    );
    assert_eq!(preview["event"]["metadata"]["plan"], "pro");
    assert_eq!(
        preview["event"]["metadata"]["request_id"],
        "550e8400-e29b-41d4-a716-446655440000"
    );
    assert_eq!(preview["event"]["changes"][1]["new"], "2 Main St");

    let response = app.post_events(&sample()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let receipt: Value = response.json().await.unwrap();
    let stored = app
        .stored_form(receipt["events"][0]["id"].as_str().unwrap())
        .await;
    assert_eq!(stored, preview["event"]);
}

#[tokio::test]
async fn the_organization_s_rules_apply_to_the_preview_and_to_ingest() {
    let app = spawn_app().await;
    let rules = json!({"name_contains": ["password"], "name_starts_with": [], "name_words": [],
                       "name_last_words": [], "detect_values": false});
    let response = app
        .send_json_as(
            Method::PATCH,
            &app.key,
            "/v1/settings",
            &json!({"redaction": rules}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let settings: Value = response.json().await.unwrap();
    assert_eq!(settings["redaction"], rules);

    let preview = app.redaction_test(&json!({"event": sample()})).await;
    assert_eq!(
        preview["redacted"],
        json!(["changes.password.old", "changes.password.new"])
    );
    assert_eq!(preview["event"]["metadata"]["pin"], "1234");
    let response = app.post_events(&sample()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let receipt: Value = response.json().await.unwrap();
    let stored = app
        .stored_form(receipt["events"][0]["id"].as_str().unwrap())
        .await;
    assert_eq!(stored, preview["event"]);

    // Rules sent with the test are used instead, and saved nowhere.
    let preview = app
        .redaction_test(&json!({"event": sample(), "rules": {"name_words": ["plan"]}}))
        .await;
    assert_eq!(preview["event"]["metadata"]["plan"], "[REDACTED]");
    // A list sent replaces that list (`pin` is not in it); the lists left out keep their defaults.
    assert_eq!(preview["event"]["metadata"]["pin"], "1234");
    assert_eq!(preview["event"]["changes"][0]["new"], "[REDACTED]");
    assert_eq!(app.get_json("/v1/settings").await["redaction"], rules);

    // `null` restores the default rules.
    let response = app
        .send_json_as(
            Method::PATCH,
            &app.key,
            "/v1/settings",
            &json!({"redaction": null}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let settings: Value = response.json().await.unwrap();
    assert_eq!(settings["redaction"]["detect_values"], true);
}

#[tokio::test]
async fn an_invalid_event_gets_the_ingest_s_errors() {
    let app = spawn_app().await;
    let bad = json!({"action": "Not A Word", "actor": {"type": "robot"}});
    let preview = assert_error(
        app.redaction_test_as(&app.key, &json!({"event": bad}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_event",
    )
    .await;
    let ingest = assert_error(
        app.post_events(&bad).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_event",
    )
    .await;
    assert_eq!(preview["error"]["details"], ingest["error"]["details"]);
    let fields: Vec<&str> = preview["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["field"].as_str().unwrap())
        .collect();
    assert!(
        fields.contains(&"action") && fields.contains(&"actor.type"),
        "{fields:?}"
    );

    // A key sent twice in the event, as ingest refuses it.
    let response = app
        .send_raw(
            Method::POST,
            "/v1/redaction/test",
            "application/json",
            r#"{"event": {"action": "a", "action": "b", "actor": {"type": "user"}}}"#,
        )
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    let response = app
        .send_raw(Method::POST, "/v1/redaction/test", "application/json", "{")
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    // No event, an unknown key, bad rules.
    for body in [json!({}), json!({"event": sample(), "extra": 1})] {
        assert_error(
            app.redaction_test_as(&app.key, &body).await,
            StatusCode::BAD_REQUEST,
            "invalid_body",
        )
        .await;
    }
    let body = assert_error(
        app.redaction_test_as(
            &app.key,
            &json!({"event": sample(), "rules": {"name_word": []}}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_settings",
    )
    .await;
    assert_eq!(body["error"]["details"][0]["field"], "rules", "{body}");
    assert_eq!(app.seqs("actor_type=all").await, Vec::<i64>::new());
}

#[tokio::test]
async fn the_test_takes_the_admin_scope() {
    let app = spawn_app().await;
    let ingest = app.key_for("default", &[Scope::Ingest, Scope::Read]).await;
    assert_error(
        app.redaction_test_as(&ingest, &json!({"event": sample()}))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let response = app
        .post_json_anonymous("/v1/redaction/test", &json!({"event": sample()}))
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
