use reqwest::StatusCode;
use serde_json::json;

use super::helpers::{assert_error, event, spawn_app, spawn_app_with};

#[tokio::test]
async fn malformed_json_is_a_400() {
    let app = spawn_app().await;
    let response = app
        .post_raw("application/json", r#"{"action": "create","#)
        .await;
    assert_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
}

#[tokio::test]
async fn invalid_utf8_is_a_400() {
    let app = spawn_app().await;
    let mut body = br#"{"action": "create", "description": "caf"#.to_vec();
    body.extend_from_slice(&[0xff, 0xfe]);
    body.extend_from_slice(br#"", "actor": {"type": "user"}}"#);
    let response = app.post_raw("application/json", body).await;
    assert_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
}

#[tokio::test]
async fn absurd_nesting_is_a_400_not_a_crash() {
    let app = spawn_app().await;
    let body = format!(
        r#"{{"action":"create","actor":{{"type":"user"}},"metadata":{{"x":{}{}}}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let response = app.post_raw("application/json", body).await;
    assert_error(response, StatusCode::BAD_REQUEST, "malformed_json").await;
}

#[tokio::test]
async fn wrong_types_unknown_enums_and_future_times_are_422_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({"action": 5, "actor": {"type": "user"}}), "action"),
        (
            json!({"action": "create", "actor": {"type": "robot"}}),
            "actor.type",
        ),
        (
            json!({"action": "create", "actor": {"type": "user"}, "outcome": "maybe"}),
            "outcome",
        ),
        (
            json!({"action": "create", "actor": {"type": "user"}, "occurred_at": "2999-01-01T00:00:00Z"}),
            "occurred_at",
        ),
        (
            json!({"action": "create", "actor": {"type": "user"}, "occurred_at": "last tuesday"}),
            "occurred_at",
        ),
        (
            json!({"action": "create", "actor": {"type": "user"}, "context": {"ip": "999.1.1.1"}}),
            "context.ip",
        ),
        (
            json!({"action": "create", "actor": {"type": "user"}, "metadata": {"nested": {"a": 1}}}),
            "metadata.nested",
        ),
        (
            json!({"action": "create", "actor": {"type": "user"}, "colour": "red"}),
            "colour",
        ),
        // NUL is refused wherever it hides (PostgreSQL cannot store it).
        (
            json!({"action": "create", "actor": {"type": "user"}, "metadata": {"note": "a\u{0}b"}}),
            "metadata.note",
        ),
        // Stele's own detailed actions cannot be forged by a client (erasure records rely on it).
        (
            json!({"action": "update", "actor": {"type": "system"}, "detailed_action": "stele.erasure"}),
            "detailed_action",
        ),
    ];
    for (body, field) in cases {
        let response = app.post_events(&body).await;
        let error = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_event").await;
        let fields: Vec<&str> = error["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["field"].as_str().unwrap())
            .collect();
        assert!(
            fields.contains(&field),
            "{body} should name {field}, named {fields:?}"
        );
    }
}

#[tokio::test]
async fn an_empty_batch_or_one_over_a_thousand_events_is_refused() {
    let app = spawn_app().await;
    let none = app.post_events(&json!({"events": []})).await;
    assert_error(none, StatusCode::BAD_REQUEST, "invalid_body").await;
    let many: Vec<_> = (0..1001).map(|_| event("create")).collect();
    let response = app.post_events(&json!({ "events": many })).await;
    assert_error(response, StatusCode::BAD_REQUEST, "too_many_events").await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let app = spawn_app_with(|c| c.max_body_bytes = 10_000).await;
    let mut e = event("create");
    e["description"] = json!("x".repeat(20_000));
    let response = app.post_events(&e).await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    // Settings too, and the compatible doors in their own JSON shapes: never axum's text.
    let big = json!({"retention_days": 30, "note": "x".repeat(20_000)});
    for (method, path) in [
        (reqwest::Method::PUT, "/v1/settings"),
        (reqwest::Method::PATCH, "/v1/settings"),
        (reqwest::Method::POST, "/v1/viewer-tokens"),
        (reqwest::Method::POST, "/audit_logs/events"),
    ] {
        let response = app
            .client
            .request(method, format!("{}{path}", app.url))
            .bearer_auth(&app.key)
            .json(&big)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let body: serde_json::Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{path}: not JSON: {e}"));
        assert!(body.is_object(), "{path}: {body}");
    }
    // An erasure request too: the limit's 413 in the API's JSON, not a bad body.
    let response = app
        .post_erasure_as(&app.key, &json!({"actor": "x".repeat(20_000)}))
        .await;
    assert_error(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

#[tokio::test]
async fn bad_query_parameters_are_400_naming_the_parameter() {
    let app = spawn_app().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=ten", "limit"),
        ("cursor=garbage", "cursor"),
        ("from=yesterday", "from"),
        ("to=2026-13-45", "to"),
        ("actor_type=robot", "actor_type"),
        ("outcome=maybe", "outcome"),
    ] {
        let response = app.get(&format!("/v1/events?{query}")).await;
        let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_parameter").await;
        assert_eq!(body["error"]["details"][0]["field"], field, "{query}");
    }
}

#[tokio::test]
async fn unknown_endpoints_and_entries_are_json_404s() {
    let app = spawn_app().await;
    app.get_error("/v2/nothing", StatusCode::NOT_FOUND, "not_found")
        .await;
    app.get_error(
        "/v1/events/01890000-0000-7000-8000-000000000000",
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    app.get_error("/v1/events/not-an-id", StatusCode::NOT_FOUND, "not_found")
        .await;
}

#[tokio::test]
async fn readiness_reports_the_database_check_and_liveness_is_plain() {
    let app = spawn_app().await;
    let ready = app.get_anonymous("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let mut body = ready.json::<serde_json::Value>().await.unwrap();
    // The background verification's check (its times vary with when its first pass ended).
    let integrity = body["checks"]
        .as_object_mut()
        .unwrap()
        .remove("integrity")
        .unwrap();
    assert_eq!(integrity["status"], "ok", "{integrity}");
    assert_eq!(integrity["problems"], json!([]), "{integrity}");
    assert_eq!(
        body,
        json!({"status": "ready", "checks": {
            "database": {"status": "ok"},
            "retention": {"status": "ok", "last_run_at": null, "archive_error": null},
        }})
    );
    let live = app.get_anonymous("/healthz").await;
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.text().await.unwrap(), "ok");
}

/// The API's answers are kept by no cache and sniffed by no browser, whatever the door and the
/// status: audit entries hold personal data, and some answers a secret shown once.
#[tokio::test]
async fn api_answers_are_not_cached_nor_sniffed() {
    let app = spawn_app().await;
    for path in [
        "/v1/events",
        "/v1/facets",
        "/v1/events/not-an-id",
        "/audit_logs/exports/audit_log_export_x",
        "/auditlog/publisher/v1/project/p/viewertoken",
    ] {
        let response = app.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["cache-control"], "no-store", "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
    }
}

/// Two credentials are refused, not read by the first: which one a proxy or a server honours
/// differs.
#[tokio::test]
async fn a_request_with_two_authorization_headers_is_refused() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/v1/events", app.url))
        .header("Authorization", format!("Bearer {}", app.key))
        .header("Authorization", "Bearer stele_someone_else")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = app
        .client
        .get(format!("{}/v1/events", app.url))
        .header("X-API-Key", &app.key)
        .header("X-API-Key", &app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // One is read as always.
    assert_eq!(app.get("/v1/events").await.status(), StatusCode::OK);
}

/// A key sent twice in one object is refused, never read as one or the other: an audit event
/// must not be ambiguous.
#[tokio::test]
async fn an_event_with_a_repeated_key_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/v1/events", app.url))
        .bearer_auth(&app.key)
        .header("content-type", "application/json")
        .body(r#"{"action": "update", "action": "delete", "actor": {"type": "user"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`action` appears more than once"),
        "{body}"
    );
    let page: serde_json::Value = app.get("/v1/events").await.json().await.unwrap();
    assert_eq!(page["entries"], json!([]));
}
