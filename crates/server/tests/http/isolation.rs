//! Organizations never reach each other's data, whatever the credential: an organization's key, a
//! platform key acting for one organization, and a viewer token for one organization, each trying
//! to reach another organization's entries, proofs, keys, export jobs and print log. Every attempt
//! is refused (401/403/404) and none reveals the other's data.

use reqwest::header::LOCATION;
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use stele_service::access::api_keys;
use stele_store::Scope;

use super::helpers::{TestApp, spawn_app};

/// What the other organization (`globex`) holds, by id.
struct Theirs {
    entry_id: String,
    job_id: String,
    print_id: i64,
    key_id: String,
}

/// A request with `key` as bearer, acting for `org` when given.
fn request(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    org: Option<&str>,
) -> RequestBuilder {
    let mut r = app
        .client
        .request(method, format!("{}{path}", app.url))
        .bearer_auth(key);
    if let Some(org) = org {
        r = r.header("Stele-Organization", org);
    }
    r
}

async fn json_of(r: RequestBuilder) -> (StatusCode, Value) {
    let response = r.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Globex's entry, export job, print log row and key, made with its own admin key.
async fn globex(app: &TestApp, platform: &str) -> (String, Theirs) {
    let (status, minted) = json_of(
        request(app, Method::POST, "/v1/organizations", platform, None)
            .json(&json!({"name": "Globex", "external_id": "globex"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let (_, key) = json_of(
        request(app, Method::POST, "/v1/organizations/globex/keys", platform, None).json(
            &json!({"name": "globex admin", "scopes": ["admin", "printlog.update.all", "printlog.delete.all"]}),
        ),
    )
    .await;
    let secret = key["secret"].as_str().unwrap().to_string();
    let (status, recorded) = json_of(
        request(app, Method::POST, "/v1/events", &secret, None).json(&json!({
            "action": "update", "description": "globex confidential",
            "actor": {"type": "user", "id": "g1", "email": "boss@globex.example"}
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, job) = json_of(
        request(app, Method::POST, "/v1/exports", &secret, None).json(&json!({"format": "csv"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let (status, print) = json_of(
        request(app, Method::POST, "/api/v1/print-log/", &secret, None)
            .json(&json!({"print_name": "Globex part", "status": "completed"})),
    )
    .await;
    assert!(status.is_success(), "{status} {print}");
    (
        secret,
        Theirs {
            entry_id: recorded["events"][0]["id"].as_str().unwrap().to_string(),
            job_id: job["id"].as_str().unwrap().to_string(),
            print_id: print["id"].as_i64().unwrap(),
            key_id: key["id"].as_str().unwrap().to_string(),
        },
    )
}

/// Every way into globex's data, tried with `key` (acting for `org` when given): none works.
async fn refused_everywhere(app: &TestApp, key: &str, org: Option<&str>, theirs: &Theirs) {
    let tries = [
        (Method::GET, format!("/v1/events/{}", theirs.entry_id)),
        (Method::GET, format!("/v1/events/{}/proof", theirs.entry_id)),
        (Method::GET, format!("/v1/exports/{}", theirs.job_id)),
        (
            Method::GET,
            format!("/v1/exports/{}/download", theirs.job_id),
        ),
        (
            Method::PATCH,
            format!("/api/v1/print-log/{}", theirs.print_id),
        ),
        (
            Method::DELETE,
            format!("/api/v1/print-log/{}", theirs.print_id),
        ),
    ];
    for (method, path) in tries {
        let mut r = request(app, method.clone(), &path, key, org);
        if method == Method::PATCH {
            r = r.json(&json!({"status": "failed"}));
        }
        let response = r.send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            matches!(status.as_u16(), 401 | 403 | 404),
            "{method} {path} with {org:?}: {status} {body}"
        );
        assert!(
            !body.contains("globex confidential"),
            "{method} {path}: {body}"
        );
    }
    // Lists and searches of one's own organization hold none of globex's entries.
    for path in [
        "/v1/events?actor_type=all",
        "/v1/events?q=globex",
        "/v1/export?format=csv&actor_type=all",
        "/api/v1/print-log/",
    ] {
        let response = request(app, Method::GET, path, key, org)
            .send()
            .await
            .unwrap();
        let body = response.text().await.unwrap();
        assert!(
            !body.contains("globex confidential") && !body.contains("Globex part"),
            "{path}: {body}"
        );
    }
    // Naming globex outright is refused to an organization's key; a platform key acting for
    // another organization cannot touch globex's keys through it.
    if org.is_none() {
        let (status, _) =
            json_of(request(app, Method::GET, "/v1/events", key, Some("globex"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = json_of(
            request(app, Method::POST, "/v1/viewer-tokens", key, None)
                .json(&json!({"organization": "globex", "viewer": {"id": "x"}})),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = json_of(request(
            app,
            Method::GET,
            "/v1/organizations/globex/keys",
            key,
            None,
        ))
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn no_credential_reaches_another_organizations_data() {
    let app = spawn_app().await;
    let platform_org = app.store.platform_org().await.unwrap();
    let key = api_keys::generate(
        "platform",
        vec![Scope::Admin, Scope::Organizations, Scope::PrintlogDeleteAll],
    );
    app.store
        .create_api_key(platform_org.key, key.record)
        .await
        .unwrap();
    let platform = key.secret;
    let (_, theirs) = globex(&app, &platform).await;

    // Acme, with a key of its own.
    let (_, acme_key) = json_of(
        request(&app, Method::POST, "/v1/organizations", &platform, None)
            .json(&json!({"name": "Acme", "external_id": "acme"})),
    )
    .await;
    assert_eq!(acme_key["external_id"], "acme");
    let (_, minted) = json_of(
        request(
            &app,
            Method::POST,
            "/v1/organizations/acme/keys",
            &platform,
            None,
        )
        .json(
            &json!({"scopes": ["admin", "printlog.update.all", "printlog.delete.all", "viewer"]}),
        ),
    )
    .await;
    let acme = minted["secret"].as_str().unwrap().to_string();

    // An organization's key; the platform key acting for acme; the bootstrap organization's key.
    refused_everywhere(&app, &acme, None, &theirs).await;
    refused_everywhere(&app, &platform, Some("acme"), &theirs).await;
    refused_everywhere(&app, &app.key, None, &theirs).await;

    // Acme's key cannot revoke globex's key through acme's path.
    let (status, _) = json_of(request(
        &app,
        Method::DELETE,
        &format!("/v1/organizations/acme/keys/{}", theirs.key_id),
        &platform,
        None,
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A viewer token for acme: globex's entry is not found, by id or by search, and its export
    // holds none of globex's entries.
    let (status, token) = json_of(
        request(&app, Method::POST, "/v1/viewer-tokens", &acme, None)
            .json(&json!({"viewer": {"id": "v"}, "permissions": ["read", "export"]})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let browser = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let opened = browser
        .get(token["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let base = opened.headers()[LOCATION]
        .to_str()
        .unwrap()
        .trim_end_matches("/log")
        .to_string();
    for path in [
        format!("{base}/entries/{}", theirs.entry_id),
        format!("{base}/log?q=globex&actor_type=all"),
        format!("{base}/export?format=csv&actor_type=all"),
    ] {
        let response = browser
            .get(format!("{}{path}", app.url))
            .send()
            .await
            .unwrap();
        let body = response.text().await.unwrap();
        assert!(!body.contains("globex confidential"), "{path}: {body}");
    }
    // The viewer's session token reads acme's log over the API too, and nothing of globex's;
    // everywhere else it is no key at all.
    let session = base.trim_start_matches("/embed/s/");
    let response = request(
        &app,
        Method::GET,
        "/v1/events?q=globex&actor_type=all",
        session,
        None,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        !response
            .text()
            .await
            .unwrap()
            .contains("globex confidential")
    );
    let (status, _) = json_of(request(
        &app,
        Method::GET,
        &format!("/v1/events/{}", theirs.entry_id),
        session,
        None,
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = json_of(request(&app, Method::GET, "/v1/settings", session, None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
