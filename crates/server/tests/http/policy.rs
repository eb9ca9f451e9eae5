//! Per-organization policy: recording turned off and on (ingest answers 202 `"recorded": false`
//! and stores nothing; the toggle itself is recorded), the IP allowlist on the read APIs, export
//! links and the console (403 `ip_not_allowed`, recorded once a minute per key and address),
//! client addresses behind a trusted proxy and not otherwise, and `view` entries for reading one
//! entry.
//!
//! The test client always connects from 127.0.0.1. The servers "behind a proxy" trust that
//! address as a proxy, so `X-Forwarded-For` sets each request's client address.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use stele_core::time::now_millis;
use stele_server::app::client_ip::{ForwardedHeader, TrustedProxies};
use stele_service::access::{api_keys, members};
use stele_store::{NewMember, OrgSettings, Scope};

use super::helpers::{TestApp, assert_error, event, spawn_app, spawn_app_with};

/// Inside the allowlist the tests set.
const INSIDE: &str = "203.0.113.9";
/// Outside it.
const OUTSIDE: &str = "198.51.100.7";

async fn behind_proxy() -> TestApp {
    spawn_app_with(|config| {
        config.trusted_proxies = TrustedProxies {
            networks: vec!["127.0.0.1".parse().unwrap()],
            header: ForwardedHeader::XForwardedFor,
        }
    })
    .await
}

impl TestApp {
    /// A request with `key`, claiming (through `X-Forwarded-For`) to come from `from`.
    async fn send_from(
        &self,
        method: Method,
        path: &str,
        key: &str,
        from: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(key)
            .header("x-forwarded-for", from);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    async fn get_from(&self, path: &str, from: &str) -> Response {
        self.send_from(Method::GET, path, &self.key, from, None)
            .await
    }

    async fn put_settings_from(&self, body: &Value, from: &str) -> Response {
        self.send_from(Method::PUT, "/v1/settings", &self.key, from, Some(body))
            .await
    }

    /// The id (`key_…`) of the admin key.
    async fn key_id(&self) -> String {
        self.store
            .authenticate(&api_keys::hash(&self.key))
            .await
            .unwrap()
            .unwrap()
            .id
    }

    /// Every entry of `query` (all actor types), newest first, read from inside the allowlist.
    async fn entries_from_inside(&self, query: &str) -> Vec<Value> {
        let response = self
            .get_from(
                &format!("/v1/events?actor_type=all&limit=500&{query}"),
                INSIDE,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let page: Value = response.json().await.unwrap();
        page["entries"].as_array().unwrap().clone()
    }
}

// --- recording on and off ---------------------------------------------------------------------

#[tokio::test]
async fn turned_off_recording_answers_202_not_recorded_and_stores_nothing() {
    let app = spawn_app().await;
    app.record(vec![event("create")]).await;
    let settings = app.get_json("/v1/settings").await;
    assert_eq!(settings["enabled"], true, "on by default: {settings}");
    assert_eq!(settings["ip_allowlist"], json!([]));

    let response = app
        .put_settings_from(&json!({"retention_days": 365, "enabled": false}), "")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["enabled"], false);

    // One event, a batch and NDJSON: each accepted, none stored, and each says so.
    let single = app.post_events(&event("update")).await;
    let batch = app
        .post_events(&json!({"events": [event("a"), event("b")]}))
        .await;
    let ndjson = app
        .post_raw(
            "application/x-ndjson",
            format!("{}\n{}\n", event("c"), event("d")),
        )
        .await;
    for response in [single, batch, ndjson] {
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        assert_eq!(response.headers()["stele-recording"], "disabled");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["recorded"], false, "{body}");
        assert_eq!(body["reason"], "recording_disabled");
        assert_eq!(body["events"], json!([]));
        assert!(body["message"].as_str().unwrap().contains("disabled"));
    }
    // Bad input is still a 422: a client learns of it whether or not recording is on.
    let response = app.post_events(&json!({"action": "Not An Action"})).await;
    assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_event").await;

    // A PUT that leaves `enabled` out keeps it off.
    let response = app
        .put_settings_from(&json!({"retention_days": 400}), "")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.get_json("/v1/settings").await["enabled"], false);

    // Only the first event is in the trail; the toggle is too, although recording was off.
    let by_users = app.get_json("/v1/events?actor_type=user").await;
    let actions: Vec<&str> = by_users["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["create"]);
    let toggles = app
        .get_json("/v1/events?detailed_action=settings.update&actor_type=api")
        .await;
    let toggles = toggles["entries"].as_array().unwrap();
    assert_eq!(toggles.len(), 2, "{toggles:?}");
    let off = &toggles[1];
    assert_eq!(off["description"], "Recording turned off");
    assert_eq!(off["channel"], "security");
    assert_eq!(off["actor"]["id"], app.key_id().await);
    assert_eq!(
        off["changes"],
        json!([{"field": "enabled", "old": true, "new": false}])
    );

    // On again: recorded as before.
    let response = app
        .put_settings_from(&json!({"retention_days": 400, "enabled": true}), "")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app.post_events(&event("delete")).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(response.headers().get("stele-recording").is_none());
    let toggles = app
        .get_json("/v1/events?detailed_action=settings.update&actor_type=api")
        .await;
    assert_eq!(toggles["entries"][0]["description"], "Recording turned on");
    assert_eq!(
        app.get_json("/v1/events?actor_type=user").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn recording_is_per_organization_and_bad_values_are_400() {
    let app = spawn_app().await;
    let response = app
        .put_settings_from(&json!({"retention_days": 365, "enabled": "no"}), "")
        .await;
    let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_settings").await;
    assert_eq!(body["error"]["details"][0]["field"], "enabled");

    let response = app
        .put_settings_from(&json!({"retention_days": 365, "enabled": false}), "")
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let other = app.key_for("other", &[Scope::Ingest, Scope::Read]).await;
    let response = app.post_events_as(&other, &event("create")).await;
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "another organization records as before"
    );
}

// --- the IP allowlist -------------------------------------------------------------------------

#[tokio::test]
async fn an_allowlist_is_checked_entry_by_entry_and_cannot_lock_its_author_out() {
    let app = behind_proxy().await;
    for (list, field) in [
        (json!(["203.0.113.0/24", "10.0.0.0/33"]), "ip_allowlist[1]"),
        (json!(["203.0.113.0/24", "example.com"]), "ip_allowlist[1]"),
        (json!([42]), "ip_allowlist[0]"),
        (json!("203.0.113.0/24"), "ip_allowlist"),
    ] {
        let response = app
            .put_settings_from(
                &json!({"retention_days": 365, "ip_allowlist": list}),
                INSIDE,
            )
            .await;
        let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_settings").await;
        assert_eq!(body["error"]["details"][0]["field"], field, "{body}");
    }

    // A list without the address of the request saving it would lock its author out.
    let response = app
        .put_settings_from(
            &json!({"retention_days": 365, "ip_allowlist": ["192.0.2.0/24"]}),
            INSIDE,
        )
        .await;
    let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_settings").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("lock you out") && message.contains(INSIDE),
        "{message}"
    );
    let org = app.store.find_org("default").await.unwrap().key;
    assert_eq!(
        app.store.settings(org).await.unwrap(),
        OrgSettings::default(),
        "nothing was saved"
    );

    // Saved in canonical form: host bits cleared, single addresses bare, duplicates dropped.
    let response = app
        .put_settings_from(
            &json!({"retention_days": 365,
                    "ip_allowlist": ["203.0.113.77/24", "2001:DB8::/32", "192.0.2.1/32", "203.0.113.0/24"]}),
            INSIDE,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let saved: Value = response.json().await.unwrap();
    assert_eq!(
        saved["ip_allowlist"],
        json!(["203.0.113.0/24", "2001:db8::/32", "192.0.2.1"])
    );
    let change = &app
        .entries_from_inside("detailed_action=settings.update")
        .await[0];
    assert_eq!(
        change["changes"],
        json!([{"field": "ip_allowlist", "old": [], "new": ["203.0.113.0/24", "2001:db8::/32", "192.0.2.1"]}])
    );
    // Left out of a PUT, the list stays; `[]` (or null) removes it.
    let response = app
        .put_settings_from(&json!({"retention_days": 400}), INSIDE)
        .await;
    let kept: Value = response.json().await.unwrap();
    assert_eq!(kept["ip_allowlist"].as_array().unwrap().len(), 3);
    let response = app
        .put_settings_from(&json!({"retention_days": 400, "ip_allowlist": []}), INSIDE)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        app.get_from("/v1/settings", OUTSIDE).await.status(),
        StatusCode::OK,
        "open to every address again"
    );
}

#[tokio::test]
async fn every_read_api_refuses_an_address_outside_the_allowlist_and_ingest_does_not() {
    let app = behind_proxy().await;
    let receipts = app.record(vec![event("create"), event("update")]).await;
    let id = receipts[0]["id"].as_str().unwrap().to_string();
    let response = app
        .put_settings_from(
            &json!({"retention_days": 365, "ip_allowlist": ["203.0.113.0/24", "2001:db8::/32"]}),
            INSIDE,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let reads = [
        (Method::GET, "/v1/events".to_string(), None),
        (Method::GET, format!("/v1/events/{id}"), None),
        (Method::GET, format!("/v1/events/{id}/proof"), None),
        (Method::GET, "/v1/entities/User/u1/events".to_string(), None),
        (Method::GET, "/v1/facets".to_string(), None),
        (Method::GET, "/v1/export?format=csv".to_string(), None),
        (Method::POST, "/v1/exports".to_string(), Some(json!({}))),
        (Method::GET, "/v1/exports/exp_unknown".to_string(), None),
        (Method::GET, "/v1/integrity/verify".to_string(), None),
        (Method::GET, "/v1/integrity/checkpoints".to_string(), None),
        (
            Method::GET,
            "/v1/integrity/consistency?from=1&to=2".to_string(),
            None,
        ),
        (Method::GET, "/v1/settings".to_string(), None),
        (
            Method::PUT,
            "/v1/settings".to_string(),
            Some(json!({"retention_days": 365, "ip_allowlist": []})),
        ),
        (
            Method::POST,
            "/v1/erasure".to_string(),
            Some(json!({"actor": "ada@example.com", "reason": "test"})),
        ),
    ];
    for (method, path, body) in &reads {
        let response = app
            .send_from(method.clone(), path, &app.key, OUTSIDE, body.as_ref())
            .await;
        let body = assert_error(response, StatusCode::FORBIDDEN, "ip_not_allowed").await;
        assert_eq!(
            body["error"]["details"][0]["ip"], OUTSIDE,
            "{method} {path}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains(OUTSIDE),
            "{body}"
        );
    }
    // Ingest is not restricted: applications send from wherever they run.
    let response = app
        .send_from(
            Method::POST,
            "/v1/events",
            &app.key,
            OUTSIDE,
            Some(&event("login")),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    // Inside, over IPv4 and IPv6, reads work; the public key needs no organization.
    assert_eq!(
        app.get_from(&format!("/v1/events/{id}"), INSIDE)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_from("/v1/facets", "2001:db8::5").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get_from("/v1/integrity/public-key", OUTSIDE)
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.entries_from_inside("actor=ada@example.com").await.len(),
        3,
        "the refused erasure changed nothing"
    );

    // Fourteen refusals of one key from one address within a minute: one entry.
    let denials = app.entries_from_inside("action=access_denied").await;
    assert_eq!(denials.len(), 1, "{denials:?}");
    let denial = &denials[0];
    assert_eq!(denial["channel"], "security");
    assert_eq!(denial["detailed_action"], "ip_allowlist.deny");
    assert_eq!(denial["outcome"], "failure");
    assert_eq!(denial["actor"]["type"], "api");
    assert_eq!(denial["actor"]["id"], app.key_id().await);
    assert_eq!(denial["context"]["ip"], OUTSIDE);
    assert_eq!(denial["metadata"]["path"], "/v1/events");
    assert_eq!(denial["metadata"]["method"], "GET");
    // Another address is another entry.
    let response = app.get_from("/v1/events", "192.0.2.1").await;
    assert_error(response, StatusCode::FORBIDDEN, "ip_not_allowed").await;
    let denials = app.entries_from_inside("action=access_denied").await;
    assert_eq!(denials.len(), 2);
    assert_eq!(denials[0]["context"]["ip"], "192.0.2.1");

    // Another organization, without a list, reads from anywhere.
    let other = app.key_for("other", &[Scope::Read]).await;
    let response = app
        .send_from(Method::GET, "/v1/events", &other, OUTSIDE, None)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn an_export_download_link_obeys_the_allowlist_of_its_organization() {
    let app = behind_proxy().await;
    app.record(vec![event("create")]).await;
    let response = app
        .put_settings_from(
            &json!({"retention_days": 365, "ip_allowlist": ["203.0.113.0/24"]}),
            INSIDE,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .send_from(
            Method::POST,
            "/v1/exports",
            &app.key,
            INSIDE,
            Some(&json!({})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job: Value = response.json().await.unwrap();
    let path = format!("/v1/exports/{}", job["id"].as_str().unwrap());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let url = loop {
        let job: Value = app.get_from(&path, INSIDE).await.json().await.unwrap();
        if let Some(url) = job["url"].as_str() {
            break url.to_string();
        }
        assert_eq!(job["state"], "pending", "{job}");
        assert!(std::time::Instant::now() < deadline, "still pending");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let fetch = |from: &'static str| {
        app.client
            .get(format!("{}{url}", app.url))
            .header("x-forwarded-for", from)
            .send()
    };
    let response = fetch(OUTSIDE).await.unwrap();
    let body = assert_error(response, StatusCode::FORBIDDEN, "ip_not_allowed").await;
    assert_eq!(body["error"]["details"][0]["ip"], OUTSIDE);
    let response = fetch(INSIDE).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let denials = app.entries_from_inside("action=access_denied").await;
    assert_eq!(denials.len(), 1);
    assert!(
        denials[0]["actor"]["name"]
            .as_str()
            .unwrap()
            .contains(job["id"].as_str().unwrap()),
        "{}",
        denials[0]
    );
}

#[tokio::test]
async fn a_peer_that_is_not_a_trusted_proxy_cannot_choose_its_address() {
    // No trusted proxies: X-Forwarded-For from the test client (127.0.0.1) means nothing. No
    // settings cache either, so a list saved straight into the store (as another server sharing
    // the database would) applies at once.
    let app = spawn_app_with(|config| config.settings_cache_ttl = Duration::ZERO).await;
    let response = app
        .put_settings_from(
            &json!({"retention_days": 365, "ip_allowlist": ["203.0.113.0/24"]}),
            INSIDE,
        )
        .await;
    let body = assert_error(response, StatusCode::BAD_REQUEST, "invalid_settings").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "judged by the peer's address: {body}"
    );
    // A list that includes only the claimed address refuses the peer whatever it claims.
    let org = app.store.find_org("default").await.unwrap().key;
    app.store
        .put_settings(
            org,
            &OrgSettings {
                ip_allowlist: vec!["203.0.113.0/24".into()],
                ..OrgSettings::default()
            },
        )
        .await
        .unwrap();
    let response = app.get_from("/v1/events", INSIDE).await;
    let body = assert_error(response, StatusCode::FORBIDDEN, "ip_not_allowed").await;
    assert_eq!(body["error"]["details"][0]["ip"], "127.0.0.1");
    let response = app
        .client
        .get(format!("{}/v1/events", app.url))
        .bearer_auth(&app.key)
        .header("forwarded", format!("for={INSIDE}"))
        .send()
        .await
        .unwrap();
    assert_error(response, StatusCode::FORBIDDEN, "ip_not_allowed").await;
}

// --- view entries -----------------------------------------------------------------------------

#[tokio::test]
async fn reading_one_entry_records_a_view_on_the_pii_read_channel() {
    let app = spawn_app().await;
    let receipts = app.record(vec![event("update")]).await;
    let id = receipts[0]["id"].as_str().unwrap();
    let seq = receipts[0]["seq"].as_i64().unwrap();
    assert!(
        app.get_json("/v1/events?channel=pii-read").await["entries"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let shown = app.get_json(&format!("/v1/events/{id}")).await;
    assert_eq!(shown["id"], id);
    let views = app.get_json("/v1/events?channel=pii-read").await;
    let views = views["entries"].as_array().unwrap();
    assert_eq!(views.len(), 1, "{views:?}");
    let view = &views[0];
    assert_eq!(view["action"], "view");
    assert_eq!(view["detailed_action"], "entry.view");
    assert_eq!(view["entity"]["type"], "AuditLogEntry");
    assert_eq!(view["entity"]["id"], id);
    assert_eq!(view["metadata"]["entry_seq"], seq);
    assert_eq!(view["metadata"]["via"], "api");
    assert_eq!(view["actor"]["type"], "api");
    assert_eq!(view["actor"]["id"], app.key_id().await);
    assert_eq!(view["context"]["ip"], "127.0.0.1");
    assert_eq!(view["context"]["source"], "api");

    // The viewed entry's history is everyone who read it.
    app.get_json(&format!("/v1/events/{id}")).await;
    let history = app
        .get_json(&format!("/v1/entities/AuditLogEntry/{id}/events"))
        .await;
    assert_eq!(history["entries"].as_array().unwrap().len(), 2);

    // Nothing read, nothing recorded: an unknown id, or another organization's entry.
    let response = app
        .get("/v1/events/01a20098-2011-7173-bda2-1f466a792f3f")
        .await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let other = app.key_for("other", &[Scope::Read]).await;
    let response = app.get_as(&other, &format!("/v1/events/{id}")).await;
    assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(
        app.get_json("/v1/events?channel=pii-read").await["entries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let theirs = app.get_as(&other, "/v1/events?channel=pii-read").await;
    let theirs: Value = theirs.json().await.unwrap();
    assert!(theirs["entries"].as_array().unwrap().is_empty());
}

// --- the console ------------------------------------------------------------------------------

const PASSWORD: &str = "correct horse battery staple";

/// Adds a member to the default organization and signs them in over plain HTTP from `from`;
/// returns the session cookie and its CSRF token.
async fn console_session(app: &TestApp, email: &str, from: &str) -> (String, String) {
    let org = app.store.find_org("default").await.unwrap();
    app.store
        .create_member(
            org.key,
            NewMember {
                email: email.into(),
                name: None,
                role: "admin".into(),
                password_hash: members::hash_password(PASSWORD).unwrap(),
                created_at: now_millis(),
            },
        )
        .await
        .unwrap();
    let http = no_redirects();
    let form = http
        .get(format!("{}/console/login", app.url))
        .send()
        .await
        .unwrap();
    let login_cookie = cookie(&form, "stele_login");
    let csrf = hidden_csrf(&form.text().await.unwrap());
    let body = format!(
        "csrf={csrf}&email={}&password={}&next=%2Fconsole",
        email.replace('@', "%40"),
        PASSWORD.replace(' ', "+")
    );
    let response = http
        .post(format!("{}/console/login", app.url))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(COOKIE, format!("stele_login={login_cookie}"))
        .header("x-forwarded-for", from)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "signed in");
    let session = format!("stele_session={}", cookie(&response, "stele_session"));
    let page = console_get(app, "/console", &session, from).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = page
        .text()
        .await
        .unwrap()
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the layout carries the CSRF token")
        .to_string();
    (session, csrf)
}

/// A client that shows every 303 rather than following it.
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn console_get(app: &TestApp, path: &str, session: &str, from: &str) -> Response {
    no_redirects()
        .get(format!("{}{path}", app.url))
        .header(COOKIE, session)
        .header("x-forwarded-for", from)
        .send()
        .await
        .unwrap()
}

fn cookie(response: &Response, name: &str) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

fn hidden_csrf(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a CSRF field")
        .to_string()
}

#[tokio::test]
async fn a_member_outside_the_allowlist_gets_a_403_page_and_can_still_sign_out() {
    let app = behind_proxy().await;
    let (session, csrf) = console_session(&app, "ada@example.com", INSIDE).await;
    // Behind the trusted proxy, the sign-in is recorded with the forwarded address.
    let logins = app.entries_from_inside("action=login").await;
    assert_eq!(logins[0]["context"]["ip"], INSIDE);

    let response = app
        .put_settings_from(
            &json!({"retention_days": 365, "ip_allowlist": ["203.0.113.0/24"]}),
            INSIDE,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let inside = console_get(&app, "/console", &session, INSIDE).await;
    assert_eq!(inside.status(), StatusCode::OK);

    for path in ["/console", "/console/entities/User/u1", "/console/export"] {
        let outside = console_get(&app, path, &session, OUTSIDE).await;
        assert_eq!(outside.status(), StatusCode::FORBIDDEN, "{path}");
        let page = outside.text().await.unwrap();
        assert!(page.contains("Not available from this network"), "{page}");
        assert!(page.contains(OUTSIDE));
        assert!(!page.contains("log-table"), "no part of the log");
    }
    let denials = app.entries_from_inside("action=access_denied").await;
    assert_eq!(denials.len(), 1, "once a minute per member and address");
    let denial = &denials[0];
    assert_eq!(denial["actor"]["type"], "user");
    assert_eq!(denial["actor"]["email"], "ada@example.com");
    assert_eq!(denial["context"]["ip"], OUTSIDE);
    assert_eq!(denial["context"]["source"], "web");
    assert_eq!(denial["metadata"]["path"], "/console");

    // Signing out works from anywhere.
    let response = no_redirects()
        .post(format!("{}/console/logout", app.url))
        .header(COOKIE, &session)
        .header("x-forwarded-for", OUTSIDE)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/console/login");
    let after = console_get(&app, "/console", &session, INSIDE).await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER, "the session ended");
}

#[tokio::test]
async fn without_trusted_proxies_the_console_records_the_peer_not_the_header() {
    let app = spawn_app().await;
    console_session(&app, "ada@example.com", INSIDE).await;
    let logins = app.get_json("/v1/events?action=login&actor_type=all").await;
    assert_eq!(logins["entries"][0]["context"]["ip"], "127.0.0.1");
}
