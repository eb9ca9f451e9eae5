//! The embedded audit log over plain HTTP: viewer tokens minted by a platform key or an
//! organization's key, the session they open (recorded under the viewer's identity), fixed filters
//! that nothing in the URL can widen, export only when permitted, sessions that end, and the
//! framing policy. The browser side (another origin framing it, the refresh handshake) is in the
//! console suite.

use std::time::Duration;

use reqwest::header::{CONTENT_SECURITY_POLICY, LOCATION};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use stele_core::time::now_millis;
use stele_service::access::api_keys;
use stele_service::clock::{ManualClock, SharedClock};
use stele_store::Scope;

use super::helpers::{TestApp, spawn_app, spawn_app_with};

/// No redirects followed, so the tests see where a token leads.
fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl TestApp {
    async fn viewer_platform_key(&self) -> String {
        let platform = self.store.platform_org().await.unwrap();
        let key = api_keys::generate(
            "portal",
            vec![
                Scope::Viewer,
                Scope::Ingest,
                Scope::Read,
                Scope::Organizations,
            ],
        );
        self.store
            .create_api_key(platform.key, key.record)
            .await
            .unwrap();
        key.secret
    }

    /// `POST /v1/viewer-tokens` with `key` (and the organization header when given).
    async fn mint(&self, key: &str, org: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request = self
            .client
            .post(format!("{}/v1/viewer-tokens", self.url))
            .bearer_auth(key)
            .json(body);
        if let Some(org) = org {
            request = request.header("Stele-Organization", org);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Opens a minted `url` and returns the session page's path and its HTML.
    async fn open_viewer(&self, url: &str) -> (String, String) {
        let http = browser();
        let opened = http.get(url).send().await.unwrap();
        assert_eq!(opened.status(), StatusCode::SEE_OTHER, "opening redirects");
        let location = opened.headers()[LOCATION].to_str().unwrap().to_string();
        assert!(location.starts_with("/embed/s/svt_"), "{location}");
        let page = http
            .get(format!("{}{location}", self.url))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        (location, page.text().await.unwrap())
    }

    async fn record_in(&self, key: &str, org: &str, events: Vec<Value>) {
        let response = self
            .client
            .post(format!("{}/v1/events", self.url))
            .bearer_auth(key)
            .header("Stele-Organization", org)
            .json(&json!({ "events": events }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
    }
}

fn license_event(id: &str, description: &str) -> Value {
    json!({"action": "update", "actor": {"type": "user", "id": "u1", "email": "ada@example.com"},
           "entity": {"type": "License", "id": id, "name": format!("License {id}")},
           "description": description})
}

#[tokio::test]
async fn a_token_opens_one_organizations_log_and_the_viewing_is_recorded() {
    let app = spawn_app().await;
    let key = app.viewer_platform_key().await;
    app.record_in(
        &key,
        "acme",
        vec![license_event("L-1", "Acme renewed <b>L-1</b>")],
    )
    .await;
    app.record_in(&key, "globex", vec![license_event("G-1", "Globex secret")])
        .await;

    let (status, minted) = app
        .mint(
            &key,
            Some("acme"),
            &json!({"viewer": {"id": "cust-7", "name": "Kim", "email": "kim@acme.example"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let url = minted["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/embed/log?token=svt_", app.url)),
        "{url}"
    );
    let (_, html) = app.open_viewer(url).await;
    assert!(
        html.contains("Acme renewed &lt;b&gt;L-1&lt;/b&gt;"),
        "escaped: {html}"
    );
    assert!(!html.contains("Globex secret"));
    assert!(!html.contains("header class=\"top\""), "no console header");
    assert!(
        html.contains(r#"<body class="embedded">"#),
        "the whole log is not compact"
    );

    // The opening token opens once per request but is not a session: it cannot be used as one.
    let token = minted["token"].as_str().unwrap();
    let response = browser()
        .get(format!("{}/embed/s/{token}/log", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Recorded in Acme's trail under the viewer's identity, naming the key that minted it.
    let key_id = app.key_record(&key).await.id;
    let response = app
        .client
        .get(format!(
            "{}/v1/events?detailed_action=viewer*&actor_type=all",
            app.url
        ))
        .bearer_auth(&key)
        .header("Stele-Organization", "acme")
        .send()
        .await
        .unwrap();
    let entries: Value = response.json().await.unwrap();
    let actions: Vec<_> = entries["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detailed_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["viewer.session_start", "viewer_token.create"]);
    let opened = &entries["entries"][0];
    assert_eq!(opened["actor"]["id"], "cust-7");
    assert_eq!(opened["actor"]["email"], "kim@acme.example");
    assert_eq!(opened["context"]["api_key_id"], key_id.as_str());

    // The minting, a platform key's doing, is in the platform's own trail too (the viewing is
    // the organization's alone).
    let response = app
        .client
        .get(format!(
            "{}/v1/events?detailed_action=viewer*&actor_type=all",
            app.url
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let platform: Value = response.json().await.unwrap();
    let actions: Vec<_> = platform["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detailed_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["viewer_token.create"], "{platform}");
}

#[tokio::test]
async fn fixed_filters_cannot_be_widened_from_the_url() {
    let app = spawn_app().await;
    let key = app.viewer_platform_key().await;
    app.record_in(
        &key,
        "acme",
        vec![
            license_event("L-1", "first license changed"),
            license_event("L-2", "second license changed"),
        ],
    )
    .await;
    let (_, minted) = app
        .mint(
            &key,
            Some("acme"),
            &json!({"viewer": {"id": "cust-7"},
                    "filters": {"entity_type": "License", "entity_id": "L-1"}}),
        )
        .await;
    let (location, html) = app.open_viewer(minted["url"].as_str().unwrap()).await;
    assert!(html.contains("first license changed"));
    assert!(!html.contains("second license changed"));
    assert!(
        html.contains(r#"<body class="embedded compact">"#),
        "a per-record view is compact"
    );

    let session = location
        .trim_start_matches("/embed/s/")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let http = browser();
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{}{path}", app.url);
        async move { http.get(url).send().await.unwrap() }
    };
    // Asking for the other record, in the query or in the path, shows nothing of it.
    let widened = get(format!("/embed/s/{session}/log?entity_id=L-2")).await;
    assert_eq!(widened.status(), StatusCode::OK);
    assert!(!widened.text().await.unwrap().contains("second license"));
    let other = get(format!("/embed/s/{session}/entities/License/L-2")).await;
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
    // Nor its entry by id.
    let all = app
        .client
        .get(format!("{}/v1/events?entity_id=L-2", app.url))
        .bearer_auth(&key)
        .header("Stele-Organization", "acme")
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let l2 = all["entries"][0]["id"].as_str().unwrap();
    let entry = get(format!("/embed/s/{session}/entries/{l2}")).await;
    assert_eq!(entry.status(), StatusCode::NOT_FOUND);
    // Export is not permitted to this token.
    let export = get(format!("/embed/s/{session}/export?format=csv")).await;
    assert_eq!(export.status(), StatusCode::FORBIDDEN);

    // With `export`, the export holds the record's entries only.
    let (_, minted) = app
        .mint(
            &key,
            Some("acme"),
            &json!({"viewer": {"id": "cust-7"}, "permissions": ["read", "export"],
                    "filters": {"entity_type": "License", "entity_id": "L-1"}}),
        )
        .await;
    let (location, _) = app.open_viewer(minted["url"].as_str().unwrap()).await;
    let base = location.trim_end_matches("/log");
    let csv = get(format!("{base}/export?format=csv&entity_id=L-2")).await;
    assert_eq!(csv.status(), StatusCode::OK);
    let csv = csv.text().await.unwrap();
    assert!(csv.contains("first license changed"), "{csv}");
    assert!(!csv.contains("second license changed"), "{csv}");
}

#[tokio::test]
async fn a_session_ends_and_asks_for_a_new_token() {
    let clock = ManualClock::starting_at(now_millis());
    let shared = SharedClock(clock.clone());
    let app = spawn_app_with(|c| c.clock = shared).await;
    let key = app.viewer_platform_key().await;
    app.record_in(&key, "acme", vec![license_event("L-1", "changed")])
        .await;
    let (_, minted) = app
        .mint(
            &key,
            Some("acme"),
            &json!({"viewer": {"id": "cust-7"}, "ttl_seconds": 60, "session_seconds": 3600}),
        )
        .await;
    let url = minted["url"].as_str().unwrap().to_string();
    let (location, _) = app.open_viewer(&url).await;

    // Used within 15 minutes, the session goes on; idle longer, it ends.
    clock.advance(Duration::from_secs(14 * 60));
    let page = browser()
        .get(format!("{}{location}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    clock.advance(Duration::from_secs(16 * 60));
    let ended = browser()
        .get(format!("{}{location}", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::UNAUTHORIZED);
    let html = ended.text().await.unwrap();
    assert!(html.contains("data-stele-session=\"ended\""), "{html}");
    assert!(html.contains("/embed/assets/embed.js"));
    // The opening token's own time to open has passed too.
    let late = browser().get(&url).send().await.unwrap();
    assert_eq!(late.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn only_allowed_origins_may_frame_the_viewer() {
    let app = spawn_app().await;
    let key = app.viewer_platform_key().await;
    app.record_in(&key, "acme", vec![license_event("L-1", "x")])
        .await;
    let (_, minted) = app
        .mint(&key, Some("acme"), &json!({"viewer": {"id": "v"}}))
        .await;
    let opened = browser()
        .get(minted["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let policy = opened.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");

    let allowing =
        spawn_app_with(|c| c.embed_origins = vec!["https://app.example.com".into()]).await;
    let key = allowing.viewer_platform_key().await;
    allowing
        .record_in(&key, "acme", vec![license_event("L-1", "x")])
        .await;
    let (_, minted) = allowing
        .mint(&key, Some("acme"), &json!({"viewer": {"id": "v"}}))
        .await;
    let (location, _) = allowing.open_viewer(minted["url"].as_str().unwrap()).await;
    let page = browser()
        .get(format!("{}{location}", allowing.url))
        .send()
        .await
        .unwrap();
    let policy = page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        policy.contains("frame-ancestors https://app.example.com"),
        "{policy}"
    );
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    // An organization allows its own origins too, in its settings; another's pages do not.
    let response = allowing
        .client
        .patch(format!("{}/v1/settings", allowing.url))
        .bearer_auth(&allowing.key)
        .json(&json!({"embed_origins": ["https://portal.default.example/"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let bad = allowing
        .client
        .patch(format!("{}/v1/settings", allowing.url))
        .bearer_auth(&allowing.key)
        .json(&json!({"embed_origins": ["https://x.example; script-src *"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let error: Value = bad.json().await.unwrap();
    assert_eq!(error["error"]["details"][0]["field"], "embed_origins[0]");
    let (_, own) = allowing
        .mint(&allowing.key, None, &json!({"viewer": {"id": "v"}}))
        .await;
    let (own_location, _) = allowing.open_viewer(own["url"].as_str().unwrap()).await;
    let page = browser()
        .get(format!("{}{own_location}", allowing.url))
        .send()
        .await
        .unwrap();
    let policy = page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        policy.contains("frame-ancestors https://app.example.com https://portal.default.example;")
            || policy.ends_with(
                "frame-ancestors https://app.example.com https://portal.default.example"
            ),
        "{policy}"
    );
    let page = browser()
        .get(format!("{}{location}", allowing.url))
        .send()
        .await
        .unwrap();
    let policy = page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(
        !policy.contains("portal.default.example"),
        "acme's: {policy}"
    );

    // The console itself still refuses every frame.
    let console = browser()
        .get(format!("{}/console/login", allowing.url))
        .send()
        .await
        .unwrap();
    let policy = console.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
}

#[tokio::test]
async fn minting_names_what_is_wrong_and_keeps_to_the_keys_organization() {
    let app = spawn_app().await;
    let key = app.viewer_platform_key().await;
    app.record_in(&key, "acme", vec![license_event("L-1", "x")])
        .await;
    for (body, field) in [
        (json!({}), None),
        (json!({"viewer": {"id": ""}}), Some("viewer.id")),
        (
            json!({"viewer": {"id": "v"}, "filters": {"entity_type": "License"}}),
            Some("filters.entity_id"),
        ),
        (
            json!({"viewer": {"id": "v"}, "theme": {"accent": "red; } body {"}}),
            Some("theme.accent"),
        ),
        (
            json!({"viewer": {"id": "v"}, "ttl_seconds": 0}),
            Some("ttl_seconds"),
        ),
        (json!({"viewer": {"id": "v"}, "scope": "all"}), None),
    ] {
        let (status, error) = app.mint(&key, Some("acme"), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        if let Some(field) = field {
            assert_eq!(error["error"]["details"][0]["field"], field, "{body}");
        }
    }
    // A platform key names the organization.
    let (status, error) = app.mint(&key, None, &json!({"viewer": {"id": "v"}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, _) = app
        .mint(
            &key,
            None,
            &json!({"organization": "nobody-yet", "viewer": {"id": "v"}}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "naming does not create");
    let (status, _) = app
        .mint(
            &key,
            None,
            &json!({"organization": "acme", "viewer": {"id": "v"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "or in the body");

    // An organization's admin key mints for its own organization only.
    let (status, minted) = app
        .mint(&app.key, None, &json!({"viewer": {"id": "v"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let (status, _) = app
        .mint(
            &app.key,
            None,
            &json!({"organization": "acme", "viewer": {"id": "v"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let reader = app.key_for("default", &[Scope::Read]).await;
    let (status, _) = app
        .mint(&reader, None, &json!({"viewer": {"id": "v"}}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the viewer scope is needed");
}

#[tokio::test]
async fn a_viewer_token_reads_the_json_api_within_its_filters_and_nothing_else() {
    let app = spawn_app_with(|c| c.embed_origins = vec!["https://app.example.com".into()]).await;
    let key = app.viewer_platform_key().await;
    app.record_in(
        &key,
        "acme",
        vec![
            license_event("L-1", "first license changed"),
            license_event("L-2", "second license changed"),
        ],
    )
    .await;
    let (_, minted) = app
        .mint(
            &key,
            Some("acme"),
            &json!({"viewer": {"id": "cust-7", "email": "kim@acme.example"},
                    "filters": {"entity_type": "License", "entity_id": "L-1"}}),
        )
        .await;
    let token = minted["token"].as_str().unwrap();
    let get = |path: &str| {
        app.client
            .get(format!("{}{path}", app.url))
            .bearer_auth(token)
            .send()
    };
    let page: Value = get("/v1/events?entity_id=L-2&actor_type=all")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let descriptions: Vec<_> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["description"].as_str().unwrap())
        .collect();
    assert_eq!(descriptions, ["first license changed"], "{page}");
    let shown_id = page["entries"][0]["id"].as_str().unwrap().to_string();
    let shown = get(&format!("/v1/events/{shown_id}")).await.unwrap();
    assert_eq!(shown.status(), StatusCode::OK);

    let all: Value = app
        .client
        .get(format!("{}/v1/events?entity_id=L-2", app.url))
        .bearer_auth(&key)
        .header("Stele-Organization", "acme")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hidden = all["entries"][0]["id"].as_str().unwrap();
    let response = get(&format!("/v1/events/{hidden}")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(get("/v1/facets").await.unwrap().status(), StatusCode::OK);
    let export = get("/v1/export?format=csv").await.unwrap();
    assert_eq!(
        export.status(),
        StatusCode::FORBIDDEN,
        "no export permission"
    );
    for path in [
        "/v1/settings",
        "/v1/integrity/checkpoints",
        "/api/v1/print-log/",
    ] {
        let response = get(path).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let ingest = app
        .client
        .post(format!("{}/v1/events", app.url))
        .bearer_auth(token)
        .json(&license_event("L-1", "forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(ingest.status(), StatusCode::UNAUTHORIZED);

    // Reading the entry was recorded under the viewer's identity.
    let views: Value = app
        .client
        .get(format!(
            "{}/v1/events?detailed_action=entry.view&actor_type=all",
            app.url
        ))
        .bearer_auth(&key)
        .header("Stele-Organization", "acme")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(views["entries"][0]["actor"]["id"], "cust-7", "{views}");

    // Browsers on the allowed origin may call it from script; others get no allowance: not for
    // what a key sends (the organization header), and not to read a viewer's answer.
    for (origin, allowed) in [
        ("https://app.example.com", true),
        ("https://evil.example", false),
    ] {
        let preflight = app
            .preflight(origin, "authorization,stele-organization")
            .await;
        assert_eq!(
            preflight.as_deref() == Some(origin),
            allowed,
            "{origin}: {preflight:?}"
        );
        let (status, allow) = app.read_from(origin, token, "/v1/events").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            allow.as_deref() == Some(origin),
            allowed,
            "{origin}: {allow:?}"
        );
    }
}

impl TestApp {
    /// A platform key that may do anything, an organization's settings included.
    async fn platform_admin_key(&self) -> String {
        let platform = self.store.platform_org().await.unwrap();
        let key = api_keys::generate("portal admin", vec![Scope::Admin]);
        self.store
            .create_api_key(platform.key, key.record)
            .await
            .unwrap();
        key.secret
    }

    /// The `Access-Control-Allow-Origin` of a preflight from `origin` for a `GET` of
    /// `/v1/events` sending `headers`.
    async fn preflight(&self, origin: &str, headers: &str) -> Option<String> {
        let response = self
            .client
            .request(reqwest::Method::OPTIONS, format!("{}/v1/events", self.url))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", headers)
            .send()
            .await
            .unwrap();
        response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// A `GET` of `path` from a page on `origin` with bearer `token`: the status and the
    /// `Access-Control-Allow-Origin` (without which the page's script cannot read the answer).
    async fn read_from(
        &self,
        origin: &str,
        token: &str,
        path: &str,
    ) -> (StatusCode, Option<String>) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .header("Origin", origin)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let allow = response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_string());
        (response.status(), allow)
    }
}

#[tokio::test]
async fn an_organizations_own_origins_read_the_api_with_its_viewer_tokens_only() {
    let app = spawn_app_with(|c| c.embed_origins = vec!["https://app.example.com".into()]).await;
    let key = app.viewer_platform_key().await;
    app.record_in(&key, "acme", vec![license_event("L-1", "acme's")])
        .await;
    app.record_in(&key, "globex", vec![license_event("G-1", "globex's")])
        .await;
    // Acme allows its own portal, in its settings (a platform key writing them for Acme).
    let admin = app.platform_admin_key().await;
    let response = app
        .client
        .patch(format!("{}/v1/settings", app.url))
        .bearer_auth(&admin)
        .header("Stele-Organization", "acme")
        .json(&json!({"embed_origins": ["https://portal.acme.example"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let token_of = |org: &'static str| {
        let app = &app;
        let key = key.clone();
        async move {
            let (status, minted) = app
                .mint(&key, Some(org), &json!({"viewer": {"id": "v"}}))
                .await;
            assert_eq!(status, StatusCode::CREATED, "{minted}");
            minted["token"].as_str().unwrap().to_string()
        }
    };
    let acme = token_of("acme").await;
    let globex = token_of("globex").await;
    let portal = "https://portal.acme.example";

    // Acme's token from Acme's portal: readable, on every read a viewer token may make.
    let (status, allow) = app.read_from(portal, &acme, "/v1/events").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(allow.as_deref(), Some(portal));
    let (_, allow) = app.read_from(portal, &acme, "/v1/facets").await;
    assert_eq!(allow.as_deref(), Some(portal));
    // Globex's token from Acme's portal: answered, but not readable by the page.
    let (status, allow) = app.read_from(portal, &globex, "/v1/events").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(allow, None, "Globex does not list Acme's portal");
    // An origin no one lists gets nothing; the server's own list serves every organization.
    let (_, allow) = app
        .read_from("https://evil.example", &acme, "/v1/events")
        .await;
    assert_eq!(allow, None);
    let (_, allow) = app
        .read_from("https://app.example.com", &globex, "/v1/events")
        .await;
    assert_eq!(allow.as_deref(), Some("https://app.example.com"));
    // An API key is for servers: the organization's own list does not open the API to it.
    let (status, allow) = app.read_from(portal, &app.key, "/v1/events").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(allow, None);
    // A forged token gets neither data nor an allowance.
    let forged = format!("{}x", &acme[..acme.len() - 1]);
    let (status, allow) = app.read_from(portal, &forged, "/v1/events").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(allow, None);

    // The preflight carries no token: a viewer's read (GET with `Authorization` only) may go out
    // from any origin, since only the actual answer's allowance lets a page read it. What a key
    // would send, or another method, is only for the server's list.
    assert_eq!(
        app.preflight(portal, "authorization").await.as_deref(),
        Some(portal)
    );
    assert_eq!(
        app.preflight(portal, "authorization,stele-organization")
            .await,
        None
    );
    let post = app
        .client
        .request(reqwest::Method::OPTIONS, format!("{}/v1/events", app.url))
        .header("Origin", portal)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(post.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn the_platform_sets_the_viewers_default_theme_and_a_token_overrides_it_field_by_field() {
    let app = spawn_app().await;
    let key = app.viewer_platform_key().await;
    app.record_in(&key, "acme", vec![license_event("L-1", "x")])
        .await;
    let admin = app.platform_admin_key().await;
    let patch = |org: Option<&'static str>, body: Value| {
        let mut request = app
            .client
            .patch(format!("{}/v1/settings", app.url))
            .bearer_auth(&admin)
            .json(&body);
        if let Some(org) = org {
            request = request.header("Stele-Organization", org);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    // Refused values name the field under embed_theme.
    for (theme, field) in [
        (json!({"accent": "red; } body {"}), "embed_theme.accent"),
        (json!({"mode": "sepia"}), "embed_theme.mode"),
        (json!({"font": "x</style>"}), "embed_theme.font"),
        (json!({"radius": 25}), "embed_theme.radius"),
        (json!({"radius": "4px"}), "embed_theme.radius"),
        (json!({"colour": "#fff"}), "embed_theme.colour"),
        (json!("dark"), "embed_theme"),
    ] {
        let (status, error) = patch(None, json!({"embed_theme": theme})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{theme}: {error}");
        assert_eq!(error["error"]["details"][0]["field"], field, "{theme}");
    }
    // The platform's default (its own settings: no organization header), and Acme's own font.
    let platform_theme =
        json!({"mode": "dark", "accent": "#112233", "font": "Georgia, serif", "radius": 4});
    let (status, body) = patch(None, json!({"embed_theme": platform_theme})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["embed_theme"], platform_theme);
    let (status, _) = patch(
        Some("acme"),
        json!({"embed_theme": {"font": "Inter, sans-serif"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // A token setting only the accent: the rest from Acme's settings, then the platform's.
    let (_, minted) = app
        .mint(
            &key,
            Some("acme"),
            &json!({"viewer": {"id": "v"}, "theme": {"accent": "#0a7"}}),
        )
        .await;
    let (location, html) = app.open_viewer(minted["url"].as_str().unwrap()).await;
    assert!(
        html.contains("<html lang=\"en\" data-theme=\"dark\">"),
        "{html}"
    );
    let base = location.trim_end_matches("/log");
    let css = browser()
        .get(format!("{}{base}/theme.css", app.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "--accent: #0a7;",
        "--font: Inter, sans-serif;",
        "--radius: 4px;",
        "color-scheme: dark;",
    ] {
        assert!(css.contains(line), "{line} in {css}");
    }

    // A token setting the mode and the radius wins over both.
    let (_, minted) = app
        .mint(
            &key,
            Some("acme"),
            &json!({"viewer": {"id": "v"}, "theme": {"mode": "light", "radius": 0}}),
        )
        .await;
    let (location, html) = app.open_viewer(minted["url"].as_str().unwrap()).await;
    assert!(html.contains("data-theme=\"light\""), "{html}");
    let css = browser()
        .get(format!(
            "{}{}/theme.css",
            app.url,
            location.trim_end_matches("/log")
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        css.contains("--radius: 0px;") && css.contains("--accent: #112233;"),
        "{css}"
    );

    // Cleared, the page's own look is back.
    let (status, body) = patch(None, json!({"embed_theme": null})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["embed_theme"], json!({}));
}
