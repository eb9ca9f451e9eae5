//! The OpenAPI document at `/openapi.json`: served without a key, valid OpenAPI 3.1 by a checker
//! that is not Stele's own (openapi-spec-validator), every operation it documents served (and no
//! other method on its paths), and the API's real answers valid against the schemas it gives
//! for them.

use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stele_service::access::api_keys;
use stele_store::Scope;

use super::helpers::*;

async fn document(app: &TestApp) -> Value {
    let response = app.get_anonymous("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

/// Runs `openapi_check.py` (beside this file) on the document and the answers; fails the test
/// with its output if it finds anything.
fn check(document: &Value, answers: &[Value]) {
    let (ok, output) = run_check(document, answers);
    assert!(ok, "openapi_check.py: {output}");
}

/// Whether `openapi_check.py` passes the document and the answers, and what it printed.
fn run_check(document: &Value, answers: &[Value]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let document_file = dir.path().join("openapi.json");
    let answers_file = dir.path().join("answers.json");
    std::fs::write(&document_file, document.to_string()).unwrap();
    std::fs::write(&answers_file, Value::from(answers.to_vec()).to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/http/openapi_check.py");
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(&document_file)
        .arg(&answers_file)
        .output()
        .expect("python3 runs (scripts/test installs it and openapi-spec-validator)");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), printed)
}

/// The path with each `{name}` filled in.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "x1"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn the_document_is_valid_openapi_3_1_and_needs_no_key() {
    let app = spawn_app().await;
    let document = document(&app).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    check(&document, &[]);
}

/// The document is made from the router's own registrations; this checks it from outside, as a
/// client generated from it would find the server: each documented operation answers (without
/// a key: 401, or what a public one answers), never with the API's "no such endpoint" or a 405,
/// and every other method on a documented path is a 405.
#[tokio::test]
async fn every_documented_operation_is_served_and_no_other_method_is() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let paths = document["paths"].as_object().unwrap();
    assert!(paths.len() >= 30, "{} paths", paths.len());
    for (path, item) in paths {
        for method in [
            Method::GET,
            Method::PUT,
            Method::POST,
            Method::DELETE,
            Method::PATCH,
        ] {
            let documented = item.get(method.as_str().to_lowercase()).is_some();
            let response = app
                .client
                .request(method.clone(), format!("{}{}", app.url, concrete(path)))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            if documented {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert!(
                    !body.contains("no such endpoint"),
                    "{method} {path}: {status} {body}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served but not documented"
                );
            }
        }
    }
}

/// Records the answer of a request to the documented `path` (`concrete` the real one), and the
/// body it sent, for the schema check, asserting its status.
struct Answers {
    answers: Vec<Value>,
}

impl Answers {
    #[allow(clippy::too_many_arguments)]
    async fn call(
        &mut self,
        app: &TestApp,
        key: Option<&str>,
        method: Method,
        path: &str,
        concrete: &str,
        body: Option<Value>,
        status: StatusCode,
    ) -> Value {
        let mut request = app
            .client
            .request(method.clone(), format!("{}{concrete}", app.url));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = &body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{method} {concrete}");
        let answer: Value = response.json().await.unwrap();
        let mut recorded = json!({
            "path": path,
            "method": method.as_str().to_lowercase(),
            "status": status.as_u16(),
            "body": answer,
        });
        if let Some(body) = body {
            recorded["request"] = body;
        }
        self.answers.push(recorded);
        answer
    }
}

#[tokio::test]
async fn the_answers_match_the_documented_schemas() {
    let app = spawn_app().await;
    let key = Some(app.key.as_str());
    let mut a = Answers { answers: vec![] };
    use Method as M;
    use StatusCode as S;

    let full = json!({
        "action": "update", "detailed_action": "printer.rename", "channel": "hardware",
        "description": "Renamed printer Alpha",
        "actor": {"type": "user", "id": "u1", "name": "Ada", "email": "ada@example.com",
                  "metadata": {"team": "ops"}},
        "entity": {"type": "Printer", "id": 42, "name": "Alpha", "href": "https://x.example/p/42"},
        "related_entities": [{"type": "Site", "id": "berlin"}],
        "context": {"ip": "203.0.113.7", "correlation_id": "req-1", "user_agent": "curl/8"},
        "changes": [{"field": "name", "old": "A", "new": "Alpha"}, {"field": "site", "new": null}],
        "metadata": {"site": "Berlin", "floor": 3, "ok": true}
    });
    let receipts = a
        .call(
            &app,
            key,
            M::POST,
            "/v1/events",
            "/v1/events",
            Some(json!({"events": [full.clone(), full, event("delete")]})),
            S::CREATED,
        )
        .await;
    let id = receipts["events"][0]["id"].as_str().unwrap().to_string();
    a.call(
        &app,
        key,
        M::POST,
        "/v1/events",
        "/v1/events",
        Some(json!({"events": [event("create"), {"action": "Bad"}]})),
        S::UNPROCESSABLE_ENTITY,
    )
    .await;
    a.call(
        &app,
        key,
        M::GET,
        "/v1/events",
        "/v1/events?limit=2",
        None,
        S::OK,
    )
    .await;
    a.call(
        &app,
        None,
        M::GET,
        "/v1/events",
        "/v1/events",
        None,
        S::UNAUTHORIZED,
    )
    .await;
    a.call(
        &app,
        key,
        M::GET,
        "/v1/events",
        "/v1/events?acton=update",
        None,
        S::BAD_REQUEST,
    )
    .await;
    a.call(
        &app,
        key,
        M::GET,
        "/v1/events/{id}",
        &format!("/v1/events/{id}"),
        None,
        S::OK,
    )
    .await;
    a.call(
        &app,
        key,
        M::GET,
        "/v1/events/{id}",
        "/v1/events/nope",
        None,
        S::NOT_FOUND,
    )
    .await;
    a.call(
        &app,
        key,
        M::GET,
        "/v1/entities/{entity_type}/{entity_id}/events",
        "/v1/entities/Printer/42/events",
        None,
        S::OK,
    )
    .await;
    a.call(&app, key, M::GET, "/v1/facets", "/v1/facets", None, S::OK)
        .await;

    // Integrity: a checkpoint, more entries, another checkpoint.
    app.store.checkpoint_now().await.unwrap();
    app.record(vec![event("create"), event("update")]).await;
    app.store.checkpoint_now().await.unwrap();
    for (path, status) in [
        ("/v1/integrity/verify", S::OK),
        ("/v1/integrity/checkpoints", S::OK),
        ("/v1/integrity/public-key", S::OK),
    ] {
        a.call(&app, key, M::GET, path, path, None, status).await;
    }
    let checkpoints = app.get_json("/v1/integrity/checkpoints").await;
    let seqs: Vec<u64> = checkpoints["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 2, "{checkpoints}");
    a.call(
        &app,
        key,
        M::GET,
        "/v1/integrity/consistency",
        &format!("/v1/integrity/consistency?from={}&to={}", seqs[1], seqs[0]),
        None,
        S::OK,
    )
    .await;
    a.call(
        &app,
        key,
        M::GET,
        "/v1/events/{id}/proof",
        &format!("/v1/events/{id}/proof"),
        None,
        S::OK,
    )
    .await;

    // Settings, redaction, viewer tokens, export jobs.
    a.call(
        &app,
        key,
        M::GET,
        "/v1/settings",
        "/v1/settings",
        None,
        S::OK,
    )
    .await;
    a.call(
        &app,
        key,
        M::PATCH,
        "/v1/settings",
        "/v1/settings",
        Some(json!({"enabled": true, "channel_retention_days": {"auth": 90, "legal": null}})),
        S::OK,
    )
    .await;
    a.call(
        &app,
        key,
        M::PUT,
        "/v1/settings",
        "/v1/settings",
        Some(json!({"retention_days": 3})),
        S::BAD_REQUEST,
    )
    .await;
    a.call(
        &app,
        key,
        M::POST,
        "/v1/redaction/test",
        "/v1/redaction/test",
        Some(
            json!({"event": {"action": "update", "actor": {"type": "user"},
                              "metadata": {"password": "hunter2", "site": "Berlin"}}}),
        ),
        S::OK,
    )
    .await;
    a.call(
        &app,
        key,
        M::POST,
        "/v1/viewer-tokens",
        "/v1/viewer-tokens",
        Some(json!({"viewer": {"id": "u1", "email": "ada@example.com"}})),
        S::CREATED,
    )
    .await;
    let job = a
        .call(
            &app,
            key,
            M::POST,
            "/v1/exports",
            "/v1/exports",
            Some(json!({"format": "ndjson", "filters": {"action": "update"}})),
            S::ACCEPTED,
        )
        .await;
    a.call(
        &app,
        key,
        M::GET,
        "/v1/exports/{id}",
        &format!("/v1/exports/{}", job["id"].as_str().unwrap()),
        None,
        S::OK,
    )
    .await;

    // Redaction of one entry, then erasure of a person.
    a.call(
        &app,
        key,
        M::POST,
        "/v1/events/{id}/redactions",
        &format!("/v1/events/{id}/redactions"),
        Some(json!({"fields": ["metadata.site"], "reason": "test"})),
        S::OK,
    )
    .await;
    a.call(
        &app,
        key,
        M::POST,
        "/v1/erasure",
        "/v1/erasure",
        Some(json!({"email": "ada@example.com", "name": "Ada"})),
        S::OK,
    )
    .await;

    // The print log.
    let print = a
        .call(
            &app,
            key,
            M::POST,
            "/api/v1/print-log/",
            "/api/v1/print-log/",
            Some(
                json!({"print_name": "Benchy", "printer_id": 7, "status": "failed",
                        "failure_reason": "layerShift", "duration_seconds": 3600,
                        "filament_type": "PLA", "filament_used_grams": 12.5, "cost": 0.75,
                        "started_at": "2026-01-07T09:00:00Z"}),
            ),
            S::CREATED,
        )
        .await;
    let row = format!("/api/v1/print-log/{}", print["id"]);
    for path in ["/api/v1/print-log/", "/api/v1/print-log/stats"] {
        a.call(&app, key, M::GET, path, path, None, S::OK).await;
    }
    a.call(
        &app,
        key,
        M::PATCH,
        "/api/v1/print-log/{id}",
        &row,
        Some(json!({"failure_reason": "cloggedNozzle"})),
        S::OK,
    )
    .await;
    a.call(
        &app,
        key,
        M::DELETE,
        "/api/v1/print-log/{id}",
        &row,
        None,
        S::OK,
    )
    .await;
    a.call(
        &app,
        key,
        M::DELETE,
        "/api/v1/print-log/",
        "/api/v1/print-log/",
        None,
        S::OK,
    )
    .await;

    // Organizations, their keys and members, with a platform key.
    let platform = app.store.platform_org().await.unwrap();
    let generated = api_keys::generate("platform", vec![Scope::Organizations]);
    app.store
        .create_api_key(platform.key, generated.record)
        .await
        .unwrap();
    let pk = Some(generated.secret.as_str());
    let org = a
        .call(
            &app,
            pk,
            M::POST,
            "/v1/organizations",
            "/v1/organizations",
            Some(json!({"name": "Acme", "external_id": "acme"})),
            S::CREATED,
        )
        .await;
    let org_id = org["id"].as_str().unwrap().to_string();
    a.call(
        &app,
        pk,
        M::GET,
        "/v1/organizations",
        "/v1/organizations",
        None,
        S::OK,
    )
    .await;
    let one = "/v1/organizations/{org}";
    a.call(&app, pk, M::GET, one, "/v1/organizations/acme", None, S::OK)
        .await;
    a.call(
        &app,
        pk,
        M::PATCH,
        one,
        "/v1/organizations/acme",
        Some(json!({"name": "Acme Inc."})),
        S::OK,
    )
    .await;
    let keys = "/v1/organizations/{org}/keys";
    let created = a
        .call(
            &app,
            pk,
            M::POST,
            keys,
            "/v1/organizations/acme/keys",
            Some(json!({"name": "billing", "scopes": ["ingest"]})),
            S::CREATED,
        )
        .await;
    a.call(
        &app,
        pk,
        M::GET,
        keys,
        "/v1/organizations/acme/keys",
        None,
        S::OK,
    )
    .await;
    a.call(
        &app,
        pk,
        M::DELETE,
        "/v1/organizations/{org}/keys/{key_id}",
        &format!(
            "/v1/organizations/acme/keys/{}",
            created["id"].as_str().unwrap()
        ),
        None,
        S::OK,
    )
    .await;
    let members = "/v1/organizations/{org}/members";
    let member = a
        .call(
            &app,
            pk,
            M::POST,
            members,
            "/v1/organizations/acme/members",
            Some(json!({"email": "grace@example.com", "name": "Grace", "role": "auditor"})),
            S::CREATED,
        )
        .await;
    a.call(
        &app,
        pk,
        M::GET,
        members,
        "/v1/organizations/acme/members",
        None,
        S::OK,
    )
    .await;
    let member_path = format!(
        "/v1/organizations/acme/members/{}",
        member["id"].as_str().unwrap()
    );
    a.call(
        &app,
        pk,
        M::PATCH,
        "/v1/organizations/{org}/members/{id}",
        &member_path,
        Some(json!({"role": "admin"})),
        S::OK,
    )
    .await;
    a.call(
        &app,
        pk,
        M::POST,
        "/v1/organizations/{org}/members/{id}/password-link",
        &format!("{member_path}/password-link"),
        None,
        S::CREATED,
    )
    .await;
    a.call(
        &app,
        pk,
        M::DELETE,
        "/v1/organizations/{org}/members/{id}",
        &member_path,
        None,
        S::OK,
    )
    .await;
    a.call(
        &app,
        pk,
        M::DELETE,
        one,
        &format!("/v1/organizations/acme?confirm={org_id}"),
        None,
        S::OK,
    )
    .await;

    a.call(&app, None, M::GET, "/readyz", "/readyz", None, S::OK)
        .await;

    let document = document(&app).await;
    check(&document, &a.answers);

    // The check can fail: a page whose total is text, and an entry without its seq, do not pass.
    let mut wrong = a
        .answers
        .iter()
        .find(|answer| answer["path"] == "/v1/events" && answer["status"] == 200)
        .unwrap()
        .clone();
    wrong["body"]["total"] = json!("many");
    wrong["body"]["entries"][0]
        .as_object_mut()
        .unwrap()
        .remove("seq");
    let (ok, output) = run_check(&document, &[wrong]);
    assert!(!ok, "{output}");
    assert!(
        output.contains("total") && output.contains("'seq' is a required property"),
        "{output}"
    );
}
