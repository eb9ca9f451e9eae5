//! Misspelled query parameters are refused with 400 `invalid_parameter` naming them, on every
//! endpoint of the API, before anything is read or written; the parameters an endpoint reads
//! still work.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::helpers::*;

/// The error's field, from the details.
fn field(body: &Value) -> &str {
    body["error"]["details"][0]["field"].as_str().unwrap_or("")
}

#[tokio::test]
async fn a_misspelled_filter_is_refused_naming_it_instead_of_answering_everything() {
    let app = spawn_app().await;
    app.record(vec![event("update"), event("delete")]).await;

    let body = app
        .get_error(
            "/v1/events?acton=update",
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
        )
        .await;
    assert_eq!(field(&body), "acton");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("`action`"), "{message}");

    // The spelled-out filter still filters.
    let page = app.get_json("/v1/events?action=update&limit=10").await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);

    for path in [
        "/v1/entities/device/dev_1/events?entity=dev_1",
        "/v1/export?fromat=json",
        "/v1/integrity/checkpoints?limt=5",
        "/v1/integrity/consistency?from=1&too=2",
        "/v1/facets?channel=default",
        "/v1/events/evt_unknown?fields=id",
        "/v1/settings?verbose=1",
        "/api/v1/print-log/?state=failed",
        "/api/v1/print-log/stats?status=failed&date=2026-01-01",
    ] {
        let body = app
            .get_error(path, StatusCode::BAD_REQUEST, "invalid_parameter")
            .await;
        let name = path
            .split(['?', '&'])
            .skip(1)
            .map(|pair| pair.split('=').next().unwrap())
            .find(|name| !["from", "status"].contains(name))
            .unwrap();
        assert_eq!(field(&body), name, "{path}: {body}");
    }
}

#[tokio::test]
async fn a_write_with_an_unknown_parameter_writes_nothing() {
    let app = spawn_app().await;
    let response = app
        .send_json_as(
            Method::POST,
            &app.key,
            "/v1/events?dry_run=true",
            &event("login"),
        )
        .await;
    let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_parameter").await;
    assert_eq!(field(&body), "dry_run");
    let page = app
        .get_json("/v1/events?actor_type=user,api,webhook,system,scheduler")
        .await;
    assert_eq!(page["entries"], json!([]));

    let response = app
        .send_json_as(
            Method::PATCH,
            &app.key,
            "/v1/settings?force=1",
            &json!({"enabled": false}),
        )
        .await;
    let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_parameter").await;
    assert_eq!(field(&body), "force");
    let settings = app.get_json("/v1/settings").await;
    assert_eq!(settings["enabled"], json!(true), "{settings}");
}

#[tokio::test]
async fn every_parameter_an_endpoint_documents_is_accepted() {
    let app = spawn_app().await;
    app.record(vec![event("update")]).await;
    for path in [
        "/v1/events?action=update&detailed_action=x&actor_type=user&actor=a&entity_type=t\
         &entity_id=i&channel=default&outcome=success&correlation_id=c&ip=10.0.0.1\
         &from=2020-01-01&to=2100-01-01&q=update&limit=5",
        "/v1/export?format=json&action=update&limit=5&cursor=",
        "/v1/integrity/checkpoints?limit=5",
        "/api/v1/print-log/?search=x&printer_id=1&created_by_username=u&status=failed\
         &date_from=2020-01-01&date_to=2100-01-01&limit=5&offset=0",
        "/api/v1/print-log/stats?status=failed",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}
