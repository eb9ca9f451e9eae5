use reqwest::StatusCode;
use serde_json::json;
use stele_store::Scope;

use super::helpers::{assert_error, event, spawn_app};

#[tokio::test]
async fn organizations_never_see_each_others_entries() {
    let app = spawn_app().await;
    let mut secret = event("delete");
    secret["entity"] = json!({"type": "Invoice", "id": "inv-1"});
    secret["context"] = json!({"correlation_id": "shared"});
    let receipts = app.record(vec![secret]).await;
    let id = receipts[0]["id"].as_str().unwrap();

    let other = app.key_for("other", &[Scope::Ingest, Scope::Read]).await;
    let mut theirs = event("create");
    theirs["context"] = json!({"correlation_id": "shared"});
    let response = app.post_events_as(&other, &theirs).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["events"][0]["seq"], 1,
        "each organization has its own sequence"
    );

    app.get_error_as(
        &other,
        &format!("/v1/events/{id}"),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let list: serde_json::Value = app.get_json_as(&other, "/v1/events?actor_type=all").await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["entries"][0]["action"], "create");
    let history: serde_json::Value = app
        .get_json_as(&other, "/v1/entities/Invoice/inv-1/events")
        .await;
    assert_eq!(history["entries"], json!([]));
    let facets: serde_json::Value = app.get_json_as(&other, "/v1/facets").await;
    assert_eq!(facets["actions"], json!(["create"]));
    // The correlated list of one organization's entry never includes the other's.
    let mine = app.get_json(&format!("/v1/events/{id}")).await;
    assert_eq!(mine["correlated"], json!([]));
}

#[tokio::test]
async fn a_missing_or_unknown_key_is_401() {
    let app = spawn_app().await;
    let none = app.get_anonymous("/v1/events").await;
    assert_error(none, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let wrong = app.get_as("stele_000000", "/v1/events").await;
    assert_error(wrong, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let basic = app
        .client
        .get(format!("{}/v1/events", app.url))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_error(basic, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn a_key_without_the_scope_is_403() {
    let app = spawn_app().await;
    let ingest_only = app.key_for("default", &[Scope::Ingest]).await;
    assert_eq!(
        app.post_events_as(&ingest_only, &event("create"))
            .await
            .status(),
        StatusCode::CREATED
    );
    let read = app.get_as(&ingest_only, "/v1/events").await;
    let body = assert_error(read, StatusCode::FORBIDDEN, "forbidden").await;
    assert!(body["error"]["message"].as_str().unwrap().contains("read"));

    let read_only = app.key_for("default", &[Scope::Read]).await;
    let write = app.post_events_as(&read_only, &event("create")).await;
    assert_error(write, StatusCode::FORBIDDEN, "forbidden").await;
    assert_eq!(
        app.get_as(&read_only, "/v1/events").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_revoked_key_stops_working_at_once() {
    let app = spawn_app().await;
    let org = app.store.find_org("default").await.unwrap();
    let key = stele_service::access::api_keys::generate("temp", vec![Scope::Read]);
    let info = app.store.create_api_key(org.key, key.record).await.unwrap();
    assert_eq!(
        app.get_as(&key.secret, "/v1/events").await.status(),
        StatusCode::OK
    );
    app.store.revoke_api_key(&info.id).await.unwrap();
    app.get_error_as(
        &key.secret,
        "/v1/events",
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}
