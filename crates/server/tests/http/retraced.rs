//! The Retraced publisher door (`stele_server::compat::retraced`): who may call it (a platform key
//! as `token=KEY` on the platform's own project id, answered with Retraced's bare 401 otherwise),
//! Retraced's rules and messages for bad events, bulk requests all or nothing (at most 50), the
//! groups' organizations kept apart, and receipts when recording is off.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stele_service::access::api_keys;
use stele_store::Scope;

use super::helpers::{TestApp, spawn_app, spawn_app_with};

/// A platform key with these scopes, and the platform's id (Retraced's project id).
async fn platform_key(app: &TestApp, scopes: &[Scope]) -> (String, String) {
    let platform = app.store.platform_org().await.unwrap();
    let key = api_keys::generate("retraced", scopes.to_vec());
    app.store
        .create_api_key(platform.key, key.record)
        .await
        .unwrap();
    (key.secret, platform.id)
}

/// Sends `body` to the publisher route `path` (after the project) with this Authorization header;
/// the status and body.
async fn publish(
    app: &TestApp,
    method: Method,
    authorization: &str,
    project: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(
            method,
            format!("{}/auditlog/publisher/v1/project/{project}/{path}", app.url),
        )
        .header("Authorization", authorization);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    assert!(
        response.headers().contains_key("x-retraced-requestid"),
        "{path}: no request id"
    );
    (status, response.json().await.unwrap_or(Value::Null))
}

fn event(group: &str, action: &str) -> Value {
    json!({"action": action, "crud": "c", "group": {"id": group}, "actor": {"id": "u1"}})
}

/// The number of client-sent entries of the organization with this external id.
async fn count(app: &TestApp, group: &str) -> usize {
    let Some(org) = app.store.resolve_org(group).await.unwrap() else {
        return 0;
    };
    let page = app
        .store
        .list(
            org.key,
            &stele_core::PageRequest {
                filter: stele_core::EventFilter {
                    channel: Some("default".into()),
                    ..stele_core::EventFilter::default()
                },
                limit: 500,
                cursor: None,
            },
        )
        .await
        .unwrap();
    page.entries.len()
}

fn assert_retraced_error(status: StatusCode, body: &Value, want: StatusCode) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["status"], want.as_u16(), "{body}");
    assert_eq!(body["type"], "Error", "{body}");
    assert!(body["error"].is_string(), "{body}");
}

#[tokio::test]
async fn only_a_platform_key_on_its_own_project_may_publish() {
    let app = spawn_app().await;
    let (key, project) = platform_key(&app, &[Scope::Ingest, Scope::Viewer]).await;
    let good = event("acme", "a.b");
    for authorization in [format!("token={key}"), format!("Token token={key}")] {
        let (status, body) = publish(
            &app,
            Method::POST,
            &authorization,
            &project,
            "event",
            Some(good.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(body["id"].is_string() && body["hash"].is_string(), "{body}");
    }
    // Retraced's bare 401: a bearer key, an unknown key, another project, an organization's key.
    let unauthorized = json!({"status": 401, "type": "Error", "error": "Unauthorized"});
    for (authorization, project) in [
        (format!("Bearer {key}"), project.clone()),
        ("token=sk_unknown".to_string(), project.clone()),
        (
            format!("token={key}"),
            "org_0123456789abcdef0123456789abcdef".into(),
        ),
        (format!("token={}", app.key), project.clone()),
    ] {
        let (status, body) = publish(
            &app,
            Method::POST,
            &authorization,
            &project,
            "event",
            Some(good.clone()),
        )
        .await;
        assert_eq!(
            (status, body),
            (StatusCode::UNAUTHORIZED, unauthorized.clone())
        );
    }
    // A platform key without the scope.
    let (reader, _) = platform_key(&app, &[Scope::Read]).await;
    let (status, body) = publish(
        &app,
        Method::POST,
        &format!("token={reader}"),
        &project,
        "event",
        Some(good),
    )
    .await;
    assert_retraced_error(status, &body, StatusCode::FORBIDDEN);
    assert_eq!(count(&app, "acme").await, 2);
}

#[tokio::test]
async fn bad_events_get_retraceds_messages_and_a_bulk_is_all_or_nothing() {
    let app = spawn_app().await;
    let (key, project) = platform_key(&app, &[Scope::Ingest]).await;
    let auth = format!("token={key}");
    let (status, body) = publish(
        &app,
        Method::POST,
        &auth,
        &project,
        "event",
        Some(json!({"action": "a.b", "group": {"id": "acme"}, "actor": {"name": "x"}})),
    )
    .await;
    assert_retraced_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "Missing required field 'crud'\n--Field 'actor.id' is required if 'actor' is present\n--Invalid value for 'crud' field: undefined"
    );

    // One bad event of three: nothing stored, each bad one named with its index.
    let events = json!({"events": [
        event("acme", "a.one"),
        {"action": "a.two", "crud": "z", "group": {"id": "acme"}, "actor": {"id": "u"}},
        event("globex", "a.three"),
    ]});
    let (status, body) = publish(
        &app,
        Method::POST,
        &auth,
        &project,
        "event/bulk",
        Some(events),
    )
    .await;
    assert_retraced_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().starts_with(
            "One or more invalid inputs, no events were logged:\n- Invalid event input at index 1:"
        ),
        "{body}"
    );
    assert_eq!(body["invalid"][0]["index"], 1, "{body}");
    assert_eq!(body["invalid"][0]["violations"][0]["field"], "crud");
    assert_eq!(body["invalid"][0]["violations"][0]["violation"], "invalid");
    assert_eq!(body["invalid"][0]["violations"][0]["received"], "z");
    assert_eq!(count(&app, "acme").await, 0);
    assert_eq!(
        count(&app, "globex").await,
        0,
        "no organization left behind either"
    );

    // At most 50 at once.
    let many: Vec<Value> = (0..51).map(|_| event("acme", "a.b")).collect();
    let (status, body) = publish(
        &app,
        Method::POST,
        &auth,
        &project,
        "event/bulk",
        Some(json!({ "events": many })),
    )
    .await;
    assert_retraced_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(
        body["error"],
        "A maximum of 50 events may be created at once, received 51"
    );

    // A good bulk: one receipt per event, in order, each in its group's organization.
    let events = json!({"events": [event("acme", "a.one"), event("globex", "a.two"), event("acme", "a.three")]});
    let (status, body) = publish(
        &app,
        Method::POST,
        &auth,
        &project,
        "event/bulk",
        Some(events),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 3);
    assert_eq!(
        (count(&app, "acme").await, count(&app, "globex").await),
        (2, 1)
    );
    // A malformed body is a 400 too, never a 5xx.
    let response = app
        .client
        .post(format!(
            "{}/auditlog/publisher/v1/project/{project}/event",
            app.url
        ))
        .header("Authorization", &auth)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn groups_follow_the_servers_auto_create_setting_and_recording_off_says_so() {
    let app = spawn_app_with(|config| config.auto_create_organizations = false).await;
    let (key, project) = platform_key(&app, &[Scope::Ingest, Scope::Viewer]).await;
    let auth = format!("token={key}");
    let (status, body) = publish(
        &app,
        Method::POST,
        &auth,
        &project,
        "event",
        Some(event("nobody", "a.b")),
    )
    .await;
    assert_retraced_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("nobody"), "{body}");
    let (status, body) = publish(
        &app,
        Method::GET,
        &auth,
        &project,
        "viewertoken?group_id=nobody&actor_id=u1",
        None,
    )
    .await;
    assert_retraced_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = publish(
        &app,
        Method::GET,
        &auth,
        &project,
        "viewertoken?actor_id=u1",
        None,
    )
    .await;
    assert_retraced_error(status, &body, StatusCode::BAD_REQUEST);

    // Recording off for the group's organization: 201 with an empty id, and the header.
    let app = spawn_app().await;
    let (key, project) =
        platform_key(&app, &[Scope::Ingest, Scope::Organizations, Scope::Admin]).await;
    let created = app
        .send_json_as(
            Method::POST,
            &key,
            "/v1/organizations",
            &json!({"name": "Quiet", "external_id": "quiet"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let off = app
        .client
        .patch(format!("{}/v1/settings", app.url))
        .bearer_auth(&key)
        .header("Stele-Organization", "quiet")
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status(), StatusCode::OK);
    let response = app
        .client
        .post(format!(
            "{}/auditlog/publisher/v1/project/{project}/event",
            app.url
        ))
        .header("Authorization", format!("token={key}"))
        .json(&event("quiet", "a.b"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["stele-recording"], "disabled");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["id"], "");
    assert_eq!(count(&app, "quiet").await, 0);
}

/// A key repeated anywhere in an event (its `fields` here) is refused with Retraced's 400, as the
/// native API refuses it: an audit event must not be ambiguous.
#[tokio::test]
async fn a_repeated_key_in_an_event_is_refused() {
    let app = spawn_app().await;
    let (key, project) = platform_key(&app, &[Scope::Ingest]).await;
    let response = app
        .client
        .post(format!(
            "{}/auditlog/publisher/v1/project/{project}/event",
            app.url
        ))
        .header("Authorization", format!("token={key}"))
        .header("content-type", "application/json")
        .body(
            r#"{"action": "a.b", "group": {"id": "acme"}, "actor": {"id": "u1"}, "crud": "u",
                "fields": {"plan": "free", "plan": "pro"}}"#,
        )
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_retraced_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("more than once"), "{body}");
}

#[tokio::test]
async fn an_event_over_the_size_limit_is_a_413_in_retraceds_shape_and_the_bulk_stores_nothing() {
    let app = spawn_app_with(|c| c.max_event_bytes = 4096).await;
    let (key, project) = platform_key(&app, &[Scope::Ingest]).await;
    let auth = format!("token={key}");
    let mut big = event("acme", "doc.read");
    big["fields"] = json!({"note": "x".repeat(4000), "more": "y".repeat(1000)});
    let (status, body) = publish(
        &app,
        Method::POST,
        &auth,
        &project,
        "event",
        Some(big.clone()),
    )
    .await;
    assert_retraced_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    let bulk = json!({"events": [event("acme", "doc.read"), big]});
    let (status, body) = publish(
        &app,
        Method::POST,
        &auth,
        &project,
        "event/bulk",
        Some(bulk),
    )
    .await;
    assert_retraced_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body["error"].as_str().unwrap().contains("index 1"),
        "{body}"
    );
    assert_eq!(count(&app, "acme").await, 0);
}
