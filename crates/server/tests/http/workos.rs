//! The WorkOS door (`stele_server::compat::workos`): exports created, polled and downloaded
//! through a link without credentials that lasts as long as the job's window; action schemas in
//! versions; the retention window in WorkOS's periods; the Admin Portal link to the embedded log.
//! Every answer carries an `X-Request-ID` and every error is in WorkOS's shapes, never the native
//! envelope. A platform key reaches each organization only through what the request names, and
//! an export id of another organization is a 404.

use std::time::{Duration, Instant};

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use stele_service::access::api_keys;
use stele_store::Scope;

use super::helpers::{TestApp, event, spawn_app, spawn_app_with};

/// A platform key with these scopes.
async fn platform_key(app: &TestApp, scopes: &[Scope]) -> String {
    let platform = app.store.platform_org().await.unwrap();
    let key = api_keys::generate("workos", scopes.to_vec());
    app.store
        .create_api_key(platform.key, key.record)
        .await
        .unwrap();
    key.secret
}

/// A tenant organization with this external id (through the API, as a platform would); its id.
async fn tenant(app: &TestApp, key: &str, external_id: &str) -> String {
    let response = app
        .send_json_as(
            Method::POST,
            key,
            "/v1/organizations",
            &json!({"name": external_id, "external_id": external_id}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let org: Value = response.json().await.unwrap();
    org["id"].as_str().unwrap().to_string()
}

/// Records events in the organization `org` names, with the platform key.
async fn record_for(app: &TestApp, key: &str, org: &str, events: Vec<Value>) {
    let response = app
        .client
        .post(format!("{}/v1/events", app.url))
        .bearer_auth(key)
        .header("Stele-Organization", org)
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// A sign-in as the WorkOS door's events look in Stele: the dotted action as detailed action.
fn signed_in(actor: &str, target_type: &str) -> Value {
    let mut e = event("login");
    e["detailed_action"] = json!("user.signed_in");
    e["actor"] = json!({"type": "user", "id": actor, "name": actor});
    e["entity"] = json!({"type": target_type, "id": "t1"});
    e["occurred_at"] = json!("2024-01-15T10:00:00.000Z");
    e
}

/// The status, request id and JSON body of a response.
async fn answer(response: Response) -> (StatusCode, String, Value) {
    let status = response.status();
    let request_id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, request_id, body)
}

async fn workos(
    app: &TestApp,
    method: Method,
    key: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .request(method, format!("{}{path}", app.url))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let (status, request_id, body) = answer(request.send().await.unwrap()).await;
    assert!(request_id.starts_with("req_"), "{path}: no X-Request-ID");
    (status, body)
}

/// Asserts a WorkOS error: the status, a message, and never the native `error` envelope.
fn assert_workos_error(status: StatusCode, body: &Value, want: StatusCode) {
    assert_eq!(status, want, "{body}");
    assert!(body.get("error").is_none(), "the native envelope: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// Asserts WorkOS's 422 naming `field`.
fn assert_unprocessable(status: StatusCode, body: &Value, field: &str) {
    assert_workos_error(status, body, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["message"], "Validation failed.");
    assert_eq!(body["errors"][0]["field"], field, "{body}");
}

const RANGE: (&str, &str) = ("2024-01-01T00:00:00.000Z", "2024-02-01T00:00:00.000Z");

fn export_body(org: &str) -> Value {
    json!({"organization_id": org, "range_start": RANGE.0, "range_end": RANGE.1})
}

/// Polls an export until it is no longer pending (at most 30 s), and returns it.
async fn settled(app: &TestApp, key: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, export) = workos(
            app,
            Method::GET,
            key,
            &format!("/audit_logs/exports/{id}"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{export}");
        if export["state"] != "pending" {
            return export;
        }
        assert!(
            Instant::now() < deadline,
            "the export stayed pending: {export}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creates an export, asserting the 201, and returns it settled.
async fn export(app: &TestApp, key: &str, body: Value) -> Value {
    let (status, created) = workos(app, Method::POST, key, "/audit_logs/exports", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["object"], "audit_log_export");
    assert_eq!(created["state"], "pending");
    assert!(created.get("url").is_none(), "{created}");
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("audit_log_export_"), "{id}");
    settled(app, key, id).await
}

#[tokio::test]
async fn an_export_is_created_polled_and_downloaded_without_credentials() {
    let app = spawn_app().await;
    let key = platform_key(&app, &[Scope::Ingest, Scope::Export, Scope::Organizations]).await;
    let org_id = tenant(&app, &key, "tenant-a").await;
    let mut outside = signed_in("user_1", "team");
    outside["occurred_at"] = json!("2024-03-01T00:00:00.000Z");
    let mut other_action = signed_in("user_1", "team");
    other_action["detailed_action"] = json!("user.signed_out");
    record_for(
        &app,
        &key,
        "tenant-a",
        vec![
            signed_in("user_1", "team"),
            signed_in("user_2", "team"),
            signed_in("user_1", "doc"),
            outside,
            other_action,
        ],
    )
    .await;

    // By external id, with every filter WorkOS has that Stele can honour.
    let mut body = export_body("tenant-a");
    body["actions"] = json!(["user.signed_in"]);
    body["actor_ids"] = json!(["user_1"]);
    body["targets"] = json!(["team"]);
    body["actor_names"] = json!([]);
    let ready = export(&app, &key, body).await;
    assert_eq!(ready["state"], "ready", "{ready}");
    for at in ["created_at", "updated_at"] {
        let text = ready[at].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(text).is_ok(), "{text}");
    }
    let url = ready["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/", app.url)), "absolute: {url}");
    assert!(!url.contains(&key), "never the key: {url}");

    // WorkOS clients fetch the url as given: no key.
    let download = app.client.get(url).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    let csv = download.text().await.unwrap();
    assert!(csv.starts_with('\u{feff}'), "a CSV with its BOM");
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{csv}");
    assert!(
        rows[0].contains("user.signed_in")
            && rows[0].contains("user_1")
            && rows[0].contains("team")
    );

    // By organization id, without filters: everything in the range, System actors included.
    let mut system = event("sync");
    system["actor"] = json!({"type": "system"});
    system["occurred_at"] = json!("2024-01-20T00:00:00.000Z");
    record_for(&app, &key, "tenant-a", vec![system]).await;
    let all = export(&app, &key, export_body(&org_id)).await;
    let csv = app
        .client
        .get(all["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 1 + 5, "{csv}");

    // Each poll of a ready export hands out a fresh link.
    let again = settled(&app, &key, all["id"].as_str().unwrap()).await;
    assert_ne!(again["url"], all["url"]);
}

#[tokio::test]
async fn an_export_honours_lists_of_several_values_and_actor_names() {
    let app = spawn_app().await;
    let key = platform_key(&app, &[Scope::Ingest, Scope::Export, Scope::Organizations]).await;
    tenant(&app, &key, "tenant-a").await;
    let mut out = signed_in("ann", "team");
    out["detailed_action"] = json!("user.signed_out");
    out["actor"]["name"] = json!("Ann");
    let mut deleted = signed_in("bob", "team");
    deleted["detailed_action"] = json!("document.deleted");
    deleted["actor"]["name"] = json!("Bob");
    deleted["related_entities"] = json!([{"type": "doc", "id": "d1"}]);
    record_for(
        &app,
        &key,
        "tenant-a",
        vec![signed_in("jon", "team"), out, deleted],
    )
    .await;
    let rows = |export: Value| {
        let app = &app;
        async move {
            let url = export["url"].as_str().unwrap().to_string();
            let csv = app
                .client
                .get(url)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            csv.lines().skip(1).map(str::to_string).collect::<Vec<_>>()
        }
    };

    let mut body = export_body("tenant-a");
    body["actions"] = json!(["user.signed_in", "user.signed_out"]);
    body["actor_names"] = json!(["jon", "Ann"]);
    let found = rows(export(&app, &key, body).await).await;
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found.iter().any(|r| r.contains("user.signed_out")));

    // Target types: the entity's or a related entity's, any of several.
    let mut body = export_body("tenant-a");
    body["targets"] = json!(["doc", "file"]);
    let found = rows(export(&app, &key, body).await).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("document.deleted"), "{found:?}");
    // The deprecated `actors` is `actor_names`; with a single action, the store's filter.
    let mut body = export_body("tenant-a");
    body["actors"] = json!(["Bob"]);
    body["actions"] = json!(["user.signed_in"]);
    assert!(rows(export(&app, &key, body).await).await.is_empty());
}

#[tokio::test]
async fn an_export_of_another_organization_is_not_found() {
    let app = spawn_app().await;
    let key = platform_key(&app, &[Scope::Ingest, Scope::Export, Scope::Organizations]).await;
    let a = tenant(&app, &key, "a").await;
    let b = tenant(&app, &key, "b").await;
    record_for(&app, &key, "a", vec![signed_in("u", "team")]).await;
    let theirs = export(&app, &key, export_body("a")).await;
    let mine = export(&app, &key, export_body("b")).await;
    let (a_hex, b_hex) = (&a["org_".len()..], &b["org_".len()..]);
    let job_hex = |export: &Value| {
        export["id"].as_str().unwrap()["audit_log_export_".len() + 32..].to_string()
    };

    // B's organization with A's job: not B's, so not found, even for the platform key.
    let forged = format!("audit_log_export_{b_hex}{}", job_hex(&theirs));
    let (status, body) = workos(
        &app,
        Method::GET,
        &key,
        &format!("/audit_logs/exports/{forged}"),
        None,
    )
    .await;
    assert_workos_error(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(
        body["message"],
        format!("Audit Log Export not found: '{forged}'.")
    );

    // B's own key (an organization's key) sees its export and never A's.
    let b_key = app.key_for("b", &[Scope::Export]).await;
    let (status, _) = workos(
        &app,
        Method::GET,
        &b_key,
        &format!("/audit_logs/exports/{}", mine["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = workos(
        &app,
        Method::GET,
        &b_key,
        &format!("/audit_logs/exports/{}", theirs["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_workos_error(status, &body, StatusCode::NOT_FOUND);
    // Nor may it start one for A.
    let (status, body) = workos(
        &app,
        Method::POST,
        &b_key,
        "/audit_logs/exports",
        Some(export_body(&a)),
    )
    .await;
    assert_workos_error(status, &body, StatusCode::FORBIDDEN);

    // Ids that name nothing.
    let unknown_org = format!("audit_log_export_{}{}", "0".repeat(32), job_hex(&theirs));
    let mixed = format!("audit_log_export_{a_hex}{}", job_hex(&mine));
    for id in [
        "audit_log_export_01GBZK5MP7TD1YCFQHFR22180V",
        "nope",
        &unknown_org,
        &mixed,
    ] {
        let (status, body) = workos(
            &app,
            Method::GET,
            &key,
            &format!("/audit_logs/exports/{id}"),
            None,
        )
        .await;
        assert_workos_error(status, &body, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn an_export_url_lasts_as_long_as_the_jobs_window() {
    let app = spawn_app_with(|config| config.export_link_ttl = Duration::from_secs(2)).await;
    let key = platform_key(&app, &[Scope::Ingest, Scope::Export, Scope::Organizations]).await;
    tenant(&app, &key, "a").await;
    record_for(&app, &key, "a", vec![signed_in("u", "team")]).await;
    let ready = export(&app, &key, export_body("a")).await;
    let url = ready["url"].as_str().unwrap().to_string();
    assert_eq!(
        app.client.get(&url).send().await.unwrap().status(),
        StatusCode::OK
    );

    let id = ready["id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let expired = loop {
        let (_, export) = workos(
            &app,
            Method::GET,
            &key,
            &format!("/audit_logs/exports/{id}"),
            None,
        )
        .await;
        if export["state"] != "ready" {
            break export;
        }
        assert!(Instant::now() < deadline, "the export never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // WorkOS has no `expired`: the file is gone, so the export can no longer be had.
    assert_eq!(expired["state"], "error", "{expired}");
    assert!(expired.get("url").is_none(), "{expired}");
    assert_eq!(
        app.client.get(&url).send().await.unwrap().status(),
        StatusCode::GONE
    );
    // A link that was never minted downloads nothing.
    let forged = format!("{}{}", &url[..url.len() - 4], "0000");
    assert_eq!(
        app.client.get(&forged).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn export_requests_are_checked_and_refused_in_workos_shapes() {
    let app = spawn_app().await;
    let key = platform_key(&app, &[Scope::Export, Scope::Organizations]).await;
    tenant(&app, &key, "a").await;
    let post = |body: Value| {
        let (app, key) = (&app, &key);
        async move { workos(app, Method::POST, key, "/audit_logs/exports", Some(body)).await }
    };

    let (status, body) = post(json!({"range_start": RANGE.0, "range_end": RANGE.1})).await;
    assert_unprocessable(status, &body, "organization_id");
    assert_eq!(body["errors"][0]["code"], "required");
    let (status, body) = post(json!({"organization_id": "a", "range_end": RANGE.1})).await;
    assert_unprocessable(status, &body, "range_start");
    let mut names = export_body("a");
    names["actor_names"] = json!(["Jon", 3]);
    let (status, body) = post(names).await;
    assert_unprocessable(status, &body, "actor_names");
    let mut bad_action = export_body("a");
    bad_action["actions"] = json!(["a.b", "c d"]);
    let (status, body) = post(bad_action).await;
    assert_unprocessable(status, &body, "actions");
    let mut backwards = export_body("a");
    backwards["range_start"] = json!(RANGE.1);
    backwards["range_end"] = json!(RANGE.0);
    let (status, body) = post(backwards).await;
    assert_unprocessable(status, &body, "range_start");

    let (status, body) = post(export_body("nobody")).await;
    assert_workos_error(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Organization not found: 'nobody'.");

    // A body that is not JSON: the SDK's BadRequestException keeps `code` and `errors`.
    let response = app
        .client
        .post(format!("{}/audit_logs/exports", app.url))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    let (status, request_id, body) = answer(response).await;
    assert_workos_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(
        body["code"].is_string() && body["errors"].is_array(),
        "{body}"
    );
    assert!(request_id.starts_with("req_"));

    // No key, an unknown key, a key without the scope.
    let response = app
        .post_json_anonymous("/audit_logs/exports", &export_body("a"))
        .await;
    let (status, request_id, body) = answer(response).await;
    assert_workos_error(status, &body, StatusCode::UNAUTHORIZED);
    assert!(request_id.starts_with("req_"));
    let (status, body) = workos(
        &app,
        Method::POST,
        "sk_nope",
        "/audit_logs/exports",
        Some(export_body("a")),
    )
    .await;
    assert_workos_error(status, &body, StatusCode::UNAUTHORIZED);
    let reader = platform_key(&app, &[Scope::Read]).await;
    let (status, body) = workos(
        &app,
        Method::POST,
        &reader,
        "/audit_logs/exports",
        Some(export_body("a")),
    )
    .await;
    assert_workos_error(status, &body, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn schemas_are_versioned_per_action_and_listed_newest_first() {
    let app = spawn_app().await;
    let key = platform_key(&app, &[Scope::Admin]).await;
    let schema = json!({
        "actor": {"metadata": {"type": "object", "properties": {"role": {"type": "string"}}}},
        "targets": [{"type": "team", "metadata": {"type": "object",
            "properties": {"size": {"type": "number"}}}}, {"type": "doc"}],
        "metadata": {"type": "object", "properties": {"extra": {"type": "boolean"}}}
    });
    let path = "/audit_logs/actions/user.signed_in/schemas";
    let (status, first) = workos(&app, Method::POST, &key, path, Some(schema.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    assert_eq!(first["object"], "audit_log_schema");
    assert_eq!(first["version"], 1);
    assert_eq!(first["targets"], schema["targets"]);
    assert_eq!(first["actor"], schema["actor"]);
    assert_eq!(first["metadata"], schema["metadata"]);
    assert!(first["created_at"].is_string());
    let (_, second) = workos(
        &app,
        Method::POST,
        &key,
        path,
        Some(json!({"targets": [{"type": "team"}]})),
    )
    .await;
    assert_eq!(second["version"], 2);
    // The actor is always shown; metadata only when defined.
    assert_eq!(
        second["actor"],
        json!({"metadata": {"type": "object", "properties": {}}})
    );
    assert!(second.get("metadata").is_none(), "{second}");
    // Another action counts on its own.
    let (_, other) = workos(
        &app,
        Method::POST,
        &key,
        "/audit_logs/actions/team.created/schemas",
        Some(json!({"targets": []})),
    )
    .await;
    assert_eq!(other["version"], 1);

    let (status, list) = workos(&app, Method::GET, &key, path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["object"], "list");
    let versions: Vec<&Value> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["version"])
        .collect();
    assert_eq!(versions, [&json!(2), &json!(1)]);
    assert_eq!(
        list["list_metadata"],
        json!({"before": null, "after": null})
    );
    assert_eq!(list["data"][1], first);
    let (_, page) = workos(&app, Method::GET, &key, &format!("{path}?limit=1"), None).await;
    assert_eq!(page["data"][0]["version"], 2);
    let after = page["list_metadata"]["after"].as_str().unwrap().to_string();
    let (_, next) = workos(
        &app,
        Method::GET,
        &key,
        &format!("{path}?limit=1&after={after}"),
        None,
    )
    .await;
    assert_eq!(next["data"][0]["version"], 1);
    assert_eq!(next["list_metadata"]["after"], Value::Null);
    let (_, none) = workos(
        &app,
        Method::GET,
        &key,
        "/audit_logs/actions/never.defined/schemas",
        None,
    )
    .await;
    assert_eq!(none["data"], json!([]));

    // Recorded in the platform's own trail.
    let trail = app
        .get_json_as(&key, "/v1/events?detailed_action=audit_log_schema.create")
        .await;
    assert_eq!(trail["entries"].as_array().unwrap().len(), 3, "{trail}");
}

#[tokio::test]
async fn schemas_outside_the_supported_subset_or_without_a_platform_key_are_refused() {
    let app = spawn_app().await;
    let key = platform_key(&app, &[Scope::Admin]).await;
    let path = "/audit_logs/actions/user.signed_in/schemas";
    let (status, body) = workos(&app, Method::POST, &key, path, Some(json!({"actor": {}}))).await;
    assert_unprocessable(status, &body, "targets");
    let pattern = json!({"targets": [], "metadata": {"type": "object",
        "properties": {"name": {"type": "string", "pattern": "^a"}}}});
    let (status, body) = workos(&app, Method::POST, &key, path, Some(pattern)).await;
    assert_workos_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_audit_log_schema");
    assert_eq!(
        body["errors"][0]["field"],
        "metadata.properties.name.pattern"
    );
    let (status, body) = workos(
        &app,
        Method::POST,
        &key,
        "/audit_logs/actions/bad%20action/schemas",
        Some(json!({"targets": []})),
    )
    .await;
    assert_workos_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["field"], "action");
    let (status, body) = workos(&app, Method::GET, &key, &format!("{path}?limit=0"), None).await;
    assert_unprocessable(status, &body, "limit");

    // An organization's key, even an admin one, defines nothing for the whole platform.
    let (status, body) = workos(
        &app,
        Method::POST,
        &app.key,
        path,
        Some(json!({"targets": []})),
    )
    .await;
    assert_workos_error(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = workos(&app, Method::GET, &app.key, path, None).await;
    assert_workos_error(status, &body, StatusCode::FORBIDDEN);
    // Listing takes `read`, defining `admin`.
    let reader = platform_key(&app, &[Scope::Read]).await;
    let (status, _) = workos(&app, Method::GET, &reader, path, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = workos(
        &app,
        Method::POST,
        &reader,
        path,
        Some(json!({"targets": []})),
    )
    .await;
    assert_workos_error(status, &body, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn retention_is_read_and_set_in_workos_periods_through_the_settings() {
    let app = spawn_app().await;
    let key = platform_key(&app, &[Scope::Read, Scope::Admin, Scope::Organizations]).await;
    let org_id = tenant(&app, &key, "tenant-r").await;
    let path = "/organizations/tenant-r/audit_logs_retention";
    let (status, body) = workos(&app, Method::GET, &key, path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"retention_period_in_days": 365}));

    let (status, body) = workos(
        &app,
        Method::PUT,
        &key,
        path,
        Some(json!({"retention_period": "3_MONTHS"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"retention_period_in_days": 90}));
    let by_id = format!("/organizations/{org_id}/audit_logs_retention");
    let (_, body) = workos(&app, Method::GET, &key, &by_id, None).await;
    assert_eq!(body, json!({"retention_period_in_days": 90}));
    let (_, body) = workos(
        &app,
        Method::PUT,
        &key,
        &by_id,
        Some(json!({"retention_period": "10_YEARS"})),
    )
    .await;
    assert_eq!(body, json!({"retention_period_in_days": 3650}));

    // The native settings say the same, and the change is in the organization's trail.
    let settings: Value = app
        .client
        .get(format!("{}/v1/settings", app.url))
        .bearer_auth(&key)
        .header("Stele-Organization", "tenant-r")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(settings["retention_days"], 3650);
    let trail: Value = app
        .client
        .get(format!(
            "{}/v1/events?detailed_action=settings.update",
            app.url
        ))
        .bearer_auth(&key)
        .header("Stele-Organization", "tenant-r")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let changes: Vec<&Value> = trail["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["changes"][0]["new"])
        .collect();
    assert_eq!(changes, [&json!(3650), &json!(90)]);

    for (body, field) in [
        (json!({"retention_period": "12_MONTHS"}), "retention_period"),
        (json!({"retention_period": 30}), "retention_period"),
        (json!({}), "retention_period"),
    ] {
        let (status, answer) = workos(&app, Method::PUT, &key, path, Some(body)).await;
        assert_unprocessable(status, &answer, field);
    }
    let (status, body) = workos(
        &app,
        Method::GET,
        &key,
        "/organizations/nobody/audit_logs_retention",
        None,
    )
    .await;
    assert_workos_error(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Organization not found: 'nobody'.");

    // Reading takes `read`, setting `admin`; an organization's key reaches its own alone.
    let reader = platform_key(&app, &[Scope::Read]).await;
    let (status, _) = workos(&app, Method::GET, &reader, path, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = workos(
        &app,
        Method::PUT,
        &reader,
        path,
        Some(json!({"retention_period": "1_YEAR"})),
    )
    .await;
    assert_workos_error(status, &body, StatusCode::FORBIDDEN);
    let (status, body) = workos(&app, Method::GET, &app.key, path, None).await;
    assert_workos_error(status, &body, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_portal_link_opens_the_organizations_embedded_log() {
    let app = spawn_app().await;
    let key = platform_key(&app, &[Scope::Viewer, Scope::Ingest, Scope::Organizations]).await;
    tenant(&app, &key, "tenant-p").await;
    record_for(
        &app,
        &key,
        "tenant-p",
        vec![signed_in("portal_user", "team")],
    )
    .await;
    let (status, body) = workos(
        &app,
        Method::POST,
        &key,
        "/portal/generate_link",
        Some(json!({"intent": "audit_logs", "organization": "tenant-p",
            "return_url": "https://app.test/back"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let link = body["link"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/embed/log?token=svt_", app.url)),
        "{link}"
    );

    // Opened as a page, without any key: the organization's log.
    let page = app.client.get(link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("portal_user"), "the organization's entries");

    // The minting is recorded in the organization's trail.
    let trail: Value = app
        .client
        .get(format!(
            "{}/v1/events?detailed_action=viewer_token.create&actor_type=all",
            app.url
        ))
        .bearer_auth(platform_key(&app, &[Scope::Read]).await)
        .header("Stele-Organization", "tenant-p")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(trail["entries"].as_array().unwrap().len(), 1, "{trail}");

    for (request, field) in [
        (
            json!({"intent": "sso", "organization": "tenant-p"}),
            "intent",
        ),
        (
            json!({"intent": "dsync", "organization": "tenant-p"}),
            "intent",
        ),
        (json!({"organization": "tenant-p"}), "intent"),
        (json!({"intent": "audit_logs"}), "organization"),
        (
            json!({"intent": "audit_logs", "organization": "tenant-p", "return_url": "/back"}),
            "return_url",
        ),
    ] {
        let (status, body) = workos(
            &app,
            Method::POST,
            &key,
            "/portal/generate_link",
            Some(request),
        )
        .await;
        assert_unprocessable(status, &body, field);
    }
    let (status, body) = workos(
        &app,
        Method::POST,
        &key,
        "/portal/generate_link",
        Some(json!({"intent": "audit_logs", "organization": "nobody"})),
    )
    .await;
    assert_workos_error(status, &body, StatusCode::NOT_FOUND);
    let no_viewer = platform_key(&app, &[Scope::Read]).await;
    let (status, body) = workos(
        &app,
        Method::POST,
        &no_viewer,
        "/portal/generate_link",
        Some(json!({"intent": "audit_logs", "organization": "tenant-p"})),
    )
    .await;
    assert_workos_error(status, &body, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_log_streams_portal_link_opens_the_organizations_stream_settings() {
    let app = spawn_app().await;
    let key = platform_key(
        &app,
        &[
            Scope::Viewer,
            Scope::Admin,
            Scope::Ingest,
            Scope::Organizations,
        ],
    )
    .await;
    tenant(&app, &key, "tenant-s").await;
    record_for(&app, &key, "tenant-s", vec![signed_in("ops_user", "team")]).await;

    // A stream can send the whole trail anywhere: a key without `admin` gets no such link.
    let viewer_only = platform_key(&app, &[Scope::Viewer]).await;
    let request = json!({"intent": "log_streams", "organization": "tenant-s"});
    let (status, body) = workos(
        &app,
        Method::POST,
        &viewer_only,
        "/portal/generate_link",
        Some(request.clone()),
    )
    .await;
    assert_workos_error(status, &body, StatusCode::FORBIDDEN);

    let (status, body) = workos(
        &app,
        Method::POST,
        &key,
        "/portal/generate_link",
        Some(request),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let link = body["link"].as_str().unwrap();
    assert!(
        link.starts_with(&format!("{}/embed/streams?token=svt_", app.url)),
        "{link}"
    );
    // Opened without a key: the organization's streams and the form to create one.
    let page = app.client.get(link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.url().path().starts_with("/embed/s/"), "{}", page.url());
    let html = page.text().await.unwrap();
    assert!(html.contains("no log streams") && html.contains("Create a stream"));
    // Each page carries a fresh session token in its links and forms.
    let action = html
        .split("<form class=\"settings-form\" method=\"post\" action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    assert!(
        action.starts_with("/embed/s/svt_") && action.ends_with("/streams"),
        "{action}"
    );
    let session_base = action.trim_end_matches("/streams").to_string();

    // Created from the page: the secret shown once, the stream the organization's, the
    // creation recorded as the portal's viewer.
    let created = app
        .client
        .post(format!("{}{action}", app.url))
        .form(&[
            ("name", "Customer SIEM"),
            ("transport", "webhook"),
            ("url", "https://siem.example.com/in"),
            ("format", "splunk_hec"),
            ("header_name", "Authorization"),
            ("header_value", "Splunk portal-t0k3n"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let html = created.text().await.unwrap();
    assert!(html.contains("whsec_"), "{html}");
    assert!(!html.contains("portal-t0k3n"));
    let streams: Value = app
        .client
        .get(format!("{}/v1/streams", app.url))
        .bearer_auth(&key)
        .header("Stele-Organization", "tenant-s")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stream = &streams["data"][0];
    assert_eq!(stream["name"], "Customer SIEM", "{streams}");
    assert_eq!(stream["format"], "splunk_hec");
    let trail: Value = app
        .client
        .get(format!(
            "{}/v1/events?detailed_action=log_stream.create&actor_type=all",
            app.url
        ))
        .bearer_auth(&key)
        .header("Stele-Organization", "tenant-s")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        trail["entries"][0]["actor"]["id"], "admin-portal",
        "{trail}"
    );

    // Paused from the page, back to the list with its notice.
    let id = stream["id"].as_str().unwrap();
    let paused = app
        .client
        .post(format!("{}{session_base}/streams/{id}/pause", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status(), StatusCode::OK, "redirected to the list");
    assert!(paused.text().await.unwrap().contains("Paused"));

    // An audit_logs link opens the log, and its session may not manage streams.
    let (_, body) = workos(
        &app,
        Method::POST,
        &key,
        "/portal/generate_link",
        Some(json!({"intent": "audit_logs", "organization": "tenant-s"})),
    )
    .await;
    let log = app
        .client
        .get(body["link"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let log_base = log.url().path().trim_end_matches("/log").to_string();
    let refused = app
        .client
        .get(format!("{}{log_base}/streams", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = app
        .client
        .post(format!("{}{log_base}/streams/{id}/delete", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

/// A WorkOS event as `@workos-inc/node` sends it (interop-wire.md A2), with two targets.
fn workos_event(action: &str) -> Value {
    json!({
        "action": action, "version": 1, "occurred_at": "2024-05-01T12:34:56.789Z",
        "actor": {"id": "user_1", "type": "Service Account", "name": "Jon",
                  "metadata": {"role": "admin"}},
        "targets": [{"id": "team_1", "type": "team", "name": "Team"},
                    {"id": "doc_1", "type": "doc", "name": "Plan", "metadata": {"size": 3}}],
        "context": {"location": "203.0.113.7", "user_agent": "Mozilla/5.0"},
        "metadata": {"extra": "x"}
    })
}

/// Sends a WorkOS event with this idempotency key; the status and body.
async fn send_event(
    app: &TestApp,
    key: &str,
    organization: &str,
    event: Value,
    idempotency_key: &str,
) -> (StatusCode, Value) {
    let response = app
        .client
        .post(format!("{}/audit_logs/events", app.url))
        .bearer_auth(key)
        .header("Idempotency-Key", idempotency_key)
        .json(&json!({"organization_id": organization, "event": event}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    (status, body)
}

/// The entries of the organization `org` names in the default channel (where sent events go;
/// an organization's own creation is recorded in `security`), every actor type, through the
/// native API.
async fn entries_of(app: &TestApp, key: &str, org: &str, query: &str) -> Vec<Value> {
    let response = app
        .client
        .get(format!(
            "{}/v1/events?actor_type=all&channel=default&{query}",
            app.url
        ))
        .bearer_auth(key)
        .header("Stele-Organization", org)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page: Value = response.json().await.unwrap();
    page["entries"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_workos_event_keeps_everything_sent_and_every_target_is_found() {
    let app = spawn_app().await;
    let key = platform_key(&app, &[Scope::Ingest, Scope::Read, Scope::Organizations]).await;
    let id = tenant(&app, &key, "acme").await;
    let (status, body) = send_event(&app, &key, "acme", workos_event("user.signed_in"), "k1").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"success": true}));

    // Through the native API, the same entry, nothing lost.
    let entries = entries_of(&app, &key, &id, "").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = &entries[0];
    assert_eq!(e["action"], "login");
    assert_eq!(e["detailed_action"], "user.signed_in");
    assert_eq!(e["occurred_at"], "2024-05-01T12:34:56.789Z");
    assert_eq!(
        e["actor"],
        json!({"type": "api", "id": "user_1", "name": "Jon",
               "metadata": {"role": "admin"}, "original_type": "Service Account"})
    );
    assert_eq!(
        e["entity"],
        json!({"type": "team", "id": "team_1", "name": "Team"})
    );
    assert_eq!(
        e["related_entities"],
        json!([{"type": "doc", "id": "doc_1", "name": "Plan", "metadata": {"size": 3}}])
    );
    assert_eq!(e["context"]["ip"], "203.0.113.7");
    assert_eq!(e["context"]["user_agent"], "Mozilla/5.0");
    assert_eq!(e["metadata"], json!({"extra": "x"}));
    assert_eq!(e["origin"], json!({"protocol": "workos", "version": 1}));

    // Every target is matched by the entity filters; the actor filter takes the actor's id.
    for query in [
        "entity_type=team",
        "entity_type=doc",
        "entity_id=doc_1",
        "actor=user_1",
        "detailed_action=user.signed_in",
        "action=login",
    ] {
        assert_eq!(entries_of(&app, &key, &id, query).await.len(), 1, "{query}");
    }
    // A place name rather than an address is kept as the location.
    let mut elsewhere = workos_event("user.signed_in");
    elsewhere["context"]["location"] = json!("Berlin, DE");
    let (status, _) = send_event(&app, &key, &id, elsewhere, "k2").await;
    assert_eq!(status, StatusCode::OK);
    let entries = entries_of(&app, &key, &id, "").await;
    assert_eq!(entries[0]["context"]["location"], "Berlin, DE");
    assert!(entries[0]["context"].get("ip").is_none());
    // The chain still verifies with the entries of this door in it.
    let report: Value = app
        .client
        .get(format!("{}/v1/integrity/verify", app.url))
        .bearer_auth(&key)
        .header("Stele-Organization", &id)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["ok"], true, "{report}");
}

#[tokio::test]
async fn a_retried_workos_event_is_stored_once() {
    let app = spawn_app().await;
    let key = platform_key(&app, &[Scope::Ingest, Scope::Read, Scope::Organizations]).await;
    let id = tenant(&app, &key, "acme").await;
    let retry = "workos-node-6f1c8a6e-1d4b-4c58-9d1e-2f4b1f3e9a10";
    for _ in 0..3 {
        let (status, body) =
            send_event(&app, &key, "acme", workos_event("user.signed_in"), retry).await;
        assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    }
    assert_eq!(entries_of(&app, &key, &id, "").await.len(), 1);
    // Another key is another event.
    send_event(&app, &key, "acme", workos_event("user.signed_in"), "other").await;
    assert_eq!(entries_of(&app, &key, &id, "").await.len(), 2);
}

#[tokio::test]
async fn a_workos_event_for_an_unknown_external_id_creates_its_organization() {
    let app = spawn_app().await;
    let key = platform_key(&app, &[Scope::Ingest, Scope::Read, Scope::Organizations]).await;
    let (status, _) = send_event(&app, &key, "new_tenant", workos_event("a.created"), "k").await;
    assert_eq!(status, StatusCode::OK);
    let entries = entries_of(&app, &key, "new_tenant", "").await;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["action"], "create");

    // Off: WorkOS's 404, nothing created.
    let app = spawn_app_with(|config| config.auto_create_organizations = false).await;
    let key = platform_key(&app, &[Scope::Ingest, Scope::Read, Scope::Organizations]).await;
    let (status, body) = send_event(&app, &key, "new_tenant", workos_event("a.b"), "k").await;
    assert_workos_error(status, &body, StatusCode::NOT_FOUND);
    assert_eq!(body["message"], "Organization not found: 'new_tenant'.");
    // An id that names no organization is never made either.
    let app = spawn_app().await;
    let key = platform_key(&app, &[Scope::Ingest]).await;
    let missing = "org_0123456789abcdef0123456789abcdef";
    let (status, body) = send_event(&app, &key, missing, workos_event("a.b"), "k").await;
    assert_workos_error(status, &body, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn workos_events_are_refused_in_workos_shapes_and_never_cross_organizations() {
    let app = spawn_app().await;
    let key = platform_key(&app, &[Scope::Ingest, Scope::Read, Scope::Organizations]).await;
    let a = tenant(&app, &key, "a").await;
    let b = tenant(&app, &key, "b").await;

    // WorkOS's required fields, named as WorkOS names them.
    let mut missing = workos_event("user.signed_in");
    missing.as_object_mut().unwrap().remove("occurred_at");
    let (status, body) = send_event(&app, &key, "a", missing, "k1").await;
    assert_unprocessable(status, &body, "event.occurred_at");
    let mut no_location = workos_event("user.signed_in");
    no_location["context"] = json!({"user_agent": "x"});
    let (status, body) = send_event(&app, &key, "a", no_location, "k2").await;
    assert_unprocessable(status, &body, "event.context.location");
    let response = app
        .client
        .post(format!("{}/audit_logs/events", app.url))
        .bearer_auth(&key)
        .json(&json!({"event": workos_event("a.b")}))
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    assert_unprocessable(status, &body, "organization_id");
    // The native checks, named as the WorkOS field they came from.
    let mut bad = workos_event("user.signed_in");
    bad["targets"][1]["metadata"] = json!({"nested": {"a": 1}});
    bad["occurred_at"] = json!("yesterday");
    let (status, body) = send_event(&app, &key, "a", bad, "k3").await;
    assert_workos_error(status, &body, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["event.occurred_at", "event.targets[1].metadata.nested"],
        "{body}"
    );
    // A bad key: WorkOS's 401, not the native envelope.
    let (status, body) = send_event(&app, "sk_wrong", "a", workos_event("a.b"), "k4").await;
    assert_workos_error(status, &body, StatusCode::UNAUTHORIZED);

    // A schema for the action: an event that does not match is WorkOS's 400.
    let admin = platform_key(&app, &[Scope::Admin]).await;
    let (status, _) = workos(
        &app,
        Method::POST,
        &admin,
        "/audit_logs/actions/user.signed_in/schemas",
        Some(json!({"targets": [{"type": "team"}, {"type": "doc"}],
                    "metadata": {"type": "object", "properties": {"extra": {"type": "boolean"}}}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = send_event(&app, &key, "a", workos_event("user.signed_in"), "k5").await;
    assert_workos_error(status, &body, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_audit_log_event", "{body}");
    assert_eq!(
        body["errors"][0]["instancePath"], "/metadata/extra",
        "{body}"
    );
    let mut matching = workos_event("user.signed_in");
    matching["metadata"] = json!({"extra": true});
    let (status, body) = send_event(&app, &key, "a", matching, "k6").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Nothing refused was stored; the one stored went to `a` only.
    assert_eq!(entries_of(&app, &key, &a, "").await.len(), 1);
    assert_eq!(entries_of(&app, &key, &b, "").await.len(), 0);

    // An organization's own key records into its own organization only.
    let own = app
        .send_json_as(
            Method::POST,
            &key,
            &format!("/v1/organizations/{b}/keys"),
            &json!({"name": "b", "scopes": ["ingest"]}),
        )
        .await;
    assert_eq!(own.status(), StatusCode::CREATED);
    let own: Value = own.json().await.unwrap();
    let own = own["secret"].as_str().unwrap().to_string();
    let mut plain = workos_event("a.b");
    plain.as_object_mut().unwrap().remove("version");
    let (status, body) = send_event(&app, &own, "a", plain.clone(), "k7").await;
    assert_workos_error(status, &body, StatusCode::NOT_FOUND);
    let (status, body) = send_event(&app, &own, "b", plain, "k8").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(entries_of(&app, &key, &a, "").await.len(), 1);
    assert_eq!(entries_of(&app, &key, &b, "").await.len(), 1);
}

/// A key repeated anywhere in the body (the event's metadata here) is refused in WorkOS's shape,
/// as the native API refuses it: an audit event must not be ambiguous.
#[tokio::test]
async fn a_repeated_key_in_the_body_is_refused() {
    let app = spawn_app().await;
    let key = platform_key(&app, &[Scope::Ingest, Scope::Organizations]).await;
    let body = r#"{"organization_id": "acme", "event": {"action": "user.signed_in",
        "occurred_at": "2026-01-02T03:04:05Z", "version": 1,
        "actor": {"type": "user", "id": "u1"}, "targets": [{"type": "team", "id": "t1"}],
        "context": {"location": "203.0.113.9"},
        "metadata": {"plan": "free", "plan": "pro"}}}"#;
    let response = app
        .client
        .post(format!("{}/audit_logs/events", app.url))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, _, body) = answer(response).await;
    assert_workos_error(status, &body, StatusCode::BAD_REQUEST);
    assert!(body.to_string().contains("more than once"), "{body}");
}

#[tokio::test]
async fn a_workos_event_over_the_size_limit_is_a_413_in_workos_shape() {
    let app = spawn_app_with(|c| c.max_event_bytes = 4096).await;
    let key = platform_key(&app, &[Scope::Ingest, Scope::Read, Scope::Organizations]).await;
    tenant(&app, &key, "a").await;
    let mut big = workos_event("user.signed_in");
    big["metadata"] = json!({"note": "x".repeat(4000), "more": "y".repeat(1000)});
    let (status, body) = send_event(&app, &key, "a", big, "big").await;
    assert_workos_error(status, &body, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        body["message"].as_str().unwrap().contains("4096 bytes"),
        "{body}"
    );
    let (status, body) = send_event(&app, &key, "a", workos_event("user.signed_in"), "s").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
