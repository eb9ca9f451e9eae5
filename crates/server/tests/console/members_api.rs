//! Members over the organizations API: a platform adds a member without a password and gets a
//! one-time link; the member sets their password on the console's page and signs in; the link
//! works once; disabling ends their sessions; removing them ends their membership. Each step is
//! recorded in the organization's trail.

use reqwest::StatusCode;
use serde_json::{Value, json};
use stele_service::access::api_keys;
use stele_service::access::roles::Role;
use stele_store::Scope;

use crate::harness::{Console, PASSWORD, hidden_field, set_cookie};

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

#[tokio::test]
async fn a_platform_adds_a_person_of_another_organization_without_touching_their_password() {
    let console = Console::start().await;
    let key = platform_key(&console).await;
    let a = &console.org;
    let b = console.store.create_org("globex").await.unwrap();
    // Kim is a member of the first organization, with a password of her own.
    let kim_a = console
        .add_member("kim@example.com", Some("Kim"), Role::Auditor)
        .await;
    let members_of = |org: &str| format!("/v1/organizations/{org}/members");

    let (status, kim_b) = call(
        &console,
        &key,
        reqwest::Method::POST,
        &members_of(&b.id),
        Some(json!({"email": "KIM@example.com", "name": "Kimberly", "role": "admin"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{kim_b}");
    assert_eq!(kim_b["existing_account"], true);
    assert_eq!(kim_b["has_password"], true);
    assert!(
        kim_b.get("password_link").is_none(),
        "no link: she signs in with her own password: {kim_b}"
    );
    assert_eq!(
        (&kim_b["email"], &kim_b["name"], &kim_b["role"]),
        (&json!("kim@example.com"), &json!("Kim"), &json!("admin")),
        "the person's email and name, this organization's role"
    );
    assert_ne!(kim_b["id"], json!(kim_a.id));
    // Her password still works, in either organization.
    let signed_in = console.sign_in_http("kim@example.com", PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);

    // A second time in the same organization is a conflict; a new person still gets a link.
    let (status, error) = call(
        &console,
        &key,
        reqwest::Method::POST,
        &members_of(&b.id),
        Some(json!({"email": "kim@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    let (status, lee) = call(
        &console,
        &key,
        reqwest::Method::POST,
        &members_of(&b.id),
        Some(json!({"email": "lee@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{lee}");
    assert_eq!(lee["existing_account"], false);
    assert!(lee["password_link"]["password_set_url"].is_string());
    // Lee has no password yet: another organization cannot add him until he has one.
    let (status, error) = call(
        &console,
        &key,
        reqwest::Method::POST,
        &members_of(&a.id),
        Some(json!({"email": "lee@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has not set a password yet"),
        "{error}"
    );

    // Each organization lists its own membership only.
    let emails = |list: &Value| -> Vec<(String, String)> {
        list["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["email"].as_str().unwrap().to_string(),
                    m["role"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let (_, list_a) = call(
        &console,
        &key,
        reqwest::Method::GET,
        &members_of(&a.id),
        None,
    )
    .await;
    assert_eq!(
        emails(&list_a),
        [("kim@example.com".to_string(), "auditor".to_string())]
    );
    let (_, list_b) = call(
        &console,
        &key,
        reqwest::Method::GET,
        &members_of(&b.id),
        None,
    )
    .await;
    assert_eq!(
        emails(&list_b),
        [
            ("kim@example.com".to_string(), "admin".to_string()),
            ("lee@example.com".to_string(), "member".to_string())
        ]
    );
    // One organization's membership id names nothing in the other.
    let (status, _) = call(
        &console,
        &key,
        reqwest::Method::PATCH,
        &format!("{}/{}", members_of(&a.id), kim_b["id"].as_str().unwrap()),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // No organization may make a link that would change a shared person's password.
    let (status, error) = call(
        &console,
        &key,
        reqwest::Method::POST,
        &format!(
            "{}/{}/password-link",
            members_of(&b.id),
            kim_b["id"].as_str().unwrap()
        ),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("also a member of another organization"),
        "{error}"
    );

    // An organization's own key (org A's, every scope) sees no organization's members, neither
    // its own nor B's.
    let a_key = api_keys::generate("acme", vec![Scope::Admin, Scope::Read]);
    console
        .store
        .create_api_key(a.key, a_key.record)
        .await
        .unwrap();
    for org in [&a.id, &b.id] {
        let (status, body) = call(
            &console,
            &a_key.secret,
            reqwest::Method::GET,
            &members_of(org),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{org}: {body}");
        assert!(!body.to_string().contains("kim@"), "{body}");
    }

    // Disabled in B, Kim still signs in (to A).
    let (status, _) = call(
        &console,
        &key,
        reqwest::Method::PATCH,
        &format!("{}/{}", members_of(&b.id), kim_b["id"].as_str().unwrap()),
        Some(json!({"disabled": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let signed_in = console.sign_in_http("kim@example.com", PASSWORD).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session = format!(
        "stele_session={}",
        set_cookie(&signed_in, "stele_session").unwrap()
    );
    let page = console.page_text("/console", &session).await;
    assert!(
        page.contains(&format!(r#"<span class="org" title="{}">"#, a.id)),
        "in A, with no switcher (B is disabled): {page}"
    );

    // Removed from both, the person is gone: no sign-in, and the email is new again.
    for (org, id) in [
        (&a.id, kim_a.id.as_str()),
        (&b.id, kim_b["id"].as_str().unwrap()),
    ] {
        let (status, _) = call(
            &console,
            &key,
            reqwest::Method::DELETE,
            &format!("{}/{id}", members_of(org)),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let refused = console.sign_in_http("kim@example.com", PASSWORD).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let (_, again) = call(
        &console,
        &key,
        reqwest::Method::POST,
        &members_of(&b.id),
        Some(json!({"email": "kim@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(again["existing_account"], false, "{again}");
}
