//! Members over the organizations API: a platform adds a member without a password and gets a
//! one-time link; the member sets their password on the console's page and signs in; the link
//! works once; disabling ends their sessions; removing them ends their membership. Each step is
//! recorded in the organization's trail.

use reqwest::StatusCode;
use serde_json::{Value, json};
use stele_service::access::api_keys;
use stele_store::Scope;

use crate::harness::{Console, hidden_field, set_cookie};

const NEW_PASSWORD: &str = "a long new password";

async fn platform_key(console: &Console) -> String {
    let platform = console.store.platform_org().await.unwrap();
    let key = api_keys::generate("platform", vec![Scope::Organizations]);
    console
        .store
        .create_api_key(platform.key, key.record)
        .await
        .unwrap();
    key.secret
}

async fn call(
    console: &Console,
    key: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = console
        .http
        .request(method, console.at(path))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Opens a password-set link and submits the form with `password` (twice).
async fn set_password(console: &Console, url: &str, password: &str) -> reqwest::Response {
    let page = console.http.get(url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "the link opens its form");
    let cookie = set_cookie(&page, "stele_password").expect("a CSRF nonce cookie");
    let html = page.text().await.unwrap();
    let csrf = hidden_field(&html, "csrf").unwrap();
    let token = hidden_field(&html, "token").unwrap();
    console
        .post_form(
            "/console/set-password",
            &format!("stele_password={cookie}"),
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("password", password),
                ("repeat", password),
            ],
        )
        .await
}

#[tokio::test]
async fn a_platform_adds_a_member_who_sets_their_password_through_a_one_time_link() {
    let console = Console::start().await;
    let key = platform_key(&console).await;
    let org = &console.org.id;
    let (status, member) = call(
        &console,
        &key,
        reqwest::Method::POST,
        &format!("/v1/organizations/{org}/members"),
        Some(json!({"email": "kim@example.com", "name": "Kim", "role": "auditor"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    assert_eq!(member["has_password"], false);
    assert!(!member.to_string().contains("argon2"), "no hash shown");
    let url = member["password_link"]["password_set_url"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(url.starts_with(&format!("{}/console/set-password?token=psl_", console.url)));

    // No password yet: nothing signs in.
    let refused = console.sign_in_http("kim@example.com", NEW_PASSWORD).await;
    assert_ne!(refused.status(), StatusCode::SEE_OTHER);

    // Too short, then right.
    let short = set_password(&console, &url, "short").await;
    assert_eq!(short.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let done = set_password(&console, &url, NEW_PASSWORD).await;
    assert_eq!(done.status(), StatusCode::OK);
    let signed_in = console.sign_in_http("kim@example.com", NEW_PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER, "signs in");
    let session = format!(
        "stele_session={}",
        set_cookie(&signed_in, "stele_session").unwrap()
    );
    // The link worked once.
    let again = console.http.get(&url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::GONE);

    // Disabling ends the session at once; removing ends the membership.
    let id = member["id"].as_str().unwrap();
    let (status, changed) = call(
        &console,
        &key,
        reqwest::Method::PATCH,
        &format!("/v1/organizations/{org}/members/{id}"),
        Some(json!({"disabled": true, "role": "admin"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(
        (&changed["disabled"], &changed["role"]),
        (&json!(true), &json!("admin"))
    );
    let page = console.get("/console", &session).await;
    assert_eq!(page.status(), StatusCode::SEE_OTHER, "back to sign-in");
    let (status, _) = call(
        &console,
        &key,
        reqwest::Method::DELETE,
        &format!("/v1/organizations/{org}/members/{id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, list) = call(
        &console,
        &key,
        reqwest::Method::GET,
        &format!("/v1/organizations/{org}/members"),
        None,
    )
    .await;
    assert_eq!(list["members"], json!([]));

    // Each step is in the organization's trail.
    let actions: Vec<String> = console
        .entries("channel=security")
        .await
        .into_iter()
        .filter_map(|e| e.event.detailed_action)
        .filter(|a| a.starts_with("member."))
        .collect();
    assert_eq!(
        actions,
        [
            "member.remove",
            "member.disable",
            "member.role_change",
            "member.password_set",
            "member.password_link",
            "member.add"
        ]
    );
    // What the platform key did is in the platform's own trail too (the member setting their
    // own password is the member's doing, not the platform's).
    let platform = console.store.platform_org().await.unwrap();
    let request = stele_core::params::PageRequest::from_params(
        [("actor_type", "all"), ("detailed_action", "member.*")].into_iter(),
    )
    .unwrap();
    let echoed: Vec<String> = console
        .store
        .list(platform.key, &request)
        .await
        .unwrap()
        .entries
        .into_iter()
        .filter_map(|e| e.event.detailed_action)
        .collect();
    assert_eq!(
        echoed,
        [
            "member.remove",
            "member.disable",
            "member.role_change",
            "member.password_link",
            "member.add"
        ]
    );
}

#[tokio::test]
async fn bad_member_requests_name_the_field_and_keys_stay_in_their_place() {
    let console = Console::start().await;
    let key = platform_key(&console).await;
    let org = &console.org.id;
    for (body, field) in [
        (json!({"role": "auditor"}), "email"),
        (json!({"email": "not an email", "role": "auditor"}), "email"),
        (json!({"email": "a@example.com", "role": "root"}), "role"),
        (
            json!({"email": "a@example.com", "role": "admin", "password": "x"}),
            "password",
        ),
    ] {
        let (status, error) = call(
            &console,
            &key,
            reqwest::Method::POST,
            &format!("/v1/organizations/{org}/members"),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["error"]["details"][0]["field"], field, "{body}");
    }
    // An organization's own key cannot manage members through this API.
    let (status, _) = call(
        &console,
        &console.admin_key,
        reqwest::Method::GET,
        &format!("/v1/organizations/{org}/members"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A made-up link does not open.
    let response = console
        .http
        .get(console.at("/console/set-password?token=psl_forged.x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::GONE);
}
