//! Retraced's embedded viewer door (`stele_server::compat::retraced::viewer`) and the search
//! both viewer and publisher use: a viewer token from the publisher's `viewertoken` route opens a
//! session that dies with the token (Retraced's expiry body), the search pages with Retraced's
//! cursor and `totalCount`, reads Retraced's query keywords and renders the default markdown
//! escaped, saved exports render CSV, API tokens are kept per organization, CORS lets any origin
//! call, and no organization ever sees another's entries, exports or tokens.

use std::time::Duration;

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use stele_core::time::now_millis;
use stele_service::access::api_keys;
use stele_service::clock::{ManualClock, SharedClock};
use stele_store::Scope;

use super::helpers::{TestApp, spawn_app, spawn_app_with};

const VIEWER: &str = "/auditlog/viewer/v1";

/// The selection the viewer sends (`@retracedhq/logs-viewer` 2.10.1), with fields and metadata.
const SEARCH: &str = r#"query Search($query: String!, $last: Int, $before: String) {
  search(query: $query, last: $last, before: $before) {
    totalCount pageInfo { hasPreviousPage }
    edges { cursor node {
      id action crud created received canonical_time description
      actor { id name href } group { id name } target { id name href type } display { markdown }
      fields { key value } metadata { key value }
      is_failure is_anonymous source_ip country loc_subdiv1 loc_subdiv2 external_id component version } } } }"#;

/// The platform's project id and a platform key with the scopes the publisher door needs.
async fn publisher(app: &TestApp) -> (String, String) {
    let platform = app.store.platform_org().await.unwrap();
    let key = api_keys::generate("retraced", vec![Scope::Ingest, Scope::Read, Scope::Viewer]);
    app.store
        .create_api_key(platform.key, key.record)
        .await
        .unwrap();
    (platform.id, key.secret)
}

/// Publishes events for a group through the publisher door.
async fn publish(app: &TestApp, project: &str, key: &str, events: Vec<Value>) {
    let response = app
        .client
        .post(format!(
            "{}/auditlog/publisher/v1/project/{project}/event/bulk",
            app.url
        ))
        .header("Authorization", format!("token={key}"))
        .json(&json!({ "events": events }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::CREATED,
        "{:?}",
        response.text().await
    );
}

/// A Retraced event of `group` at minute `minute` of 2024-05-01 12:00 UTC.
fn retraced_event(group: &str, action: &str, crud: &str, minute: u32) -> Value {
    json!({
        "action": action,
        "crud": crud,
        "group": {"id": group, "name": format!("{group} Inc")},
        "created": format!("2024-05-01T12:{minute:02}:00.000Z"),
        "actor": {"id": format!("user{minute}@{group}.test"), "name": format!("User {minute}")},
        "target": {"id": format!("doc:{minute}"), "name": format!("Doc {minute}"), "type": "document"},
        "description": format!("{action} number {minute}"),
        "source_ip": "203.0.113.7",
        "fields": {"n": minute.to_string()},
    })
}

/// A viewer token for `group` from the publisher's route.
async fn viewer_token(app: &TestApp, project: &str, key: &str, group: &str) -> String {
    let response = app
        .client
        .get(format!(
            "{}/auditlog/publisher/v1/project/{project}/viewertoken?group_id={group}&actor_id=viewer@{group}.test&is_admin=true",
            app.url
        ))
        .header("Authorization", format!("Token token={key}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

/// A session for `group`: the session token, after checking the project id it names.
async fn session(app: &TestApp, project: &str, key: &str, group: &str) -> String {
    let token = viewer_token(app, project, key, group).await;
    let response = app
        .post_json_anonymous(&format!("{VIEWER}/viewersession"), &json!({"token": token}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["project_id"], project);
    body["token"].as_str().unwrap().to_string()
}

async fn graphql(app: &TestApp, session: &str, query_string: &str, body: &Value) -> Response {
    app.client
        .post(format!("{}{VIEWER}/graphql{query_string}", app.url))
        .header("Authorization", session)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// The viewer's search: status and body.
async fn search(
    app: &TestApp,
    session: &str,
    text: &str,
    last: i64,
    before: &str,
) -> (StatusCode, Value) {
    let response = graphql(
        app,
        session,
        "?skipViewLogEvent=true",
        &json!({"query": SEARCH, "variables": {"query": text, "last": last, "before": before}}),
    )
    .await;
    let status = response.status();
    (status, response.json().await.unwrap())
}

/// The search's actions, in order; panics on an error answer.
async fn actions(app: &TestApp, session: &str, text: &str) -> (i64, Vec<String>) {
    let (status, body) = search(app, session, text, 50, "").await;
    assert_eq!(status, StatusCode::OK, "{text}: {body}");
    let found = &body["data"]["search"];
    let names = found["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["node"]["description"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    (found["totalCount"].as_i64().unwrap(), names)
}

async fn two_groups(app: &TestApp) -> (String, String) {
    let (project, key) = publisher(app).await;
    publish(
        app,
        &project,
        &key,
        vec![
            retraced_event("acme", "document.create", "c", 1),
            retraced_event("acme", "document.update", "u", 2),
            retraced_event("acme", "document.read", "r", 3),
            retraced_event("acme", "user.delete", "d", 4),
            retraced_event("acme", "document.update", "u", 5),
        ],
    )
    .await;
    publish(
        app,
        &project,
        &key,
        vec![retraced_event("globex", "document.update", "u", 6)],
    )
    .await;
    (project, key)
}

#[tokio::test]
async fn a_session_shows_the_groups_events_as_retraced_shows_them() {
    let app = spawn_app().await;
    let (project, key) = two_groups(&app).await;
    let acme = session(&app, &project, &key, "acme").await;
    let (status, body) = search(&app, &acme, "crud:c,u,d target.type:document", 20, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let found = &body["data"]["search"];
    // The read is left out by crud:c,u,d, and globex's event is not acme's (the trail's own
    // entries, the organization's creation and the viewer token's, are left out by the type).
    assert_eq!(found["totalCount"], 4);
    assert_eq!(found["pageInfo"]["hasPreviousPage"], false);
    let nodes: Vec<&Value> = found["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    let minutes: Vec<&str> = nodes
        .iter()
        .map(|n| n["fields"][0]["value"].as_str().unwrap())
        .collect();
    assert_eq!(minutes, ["5", "4", "2", "1"], "newest first");
    let newest = nodes[0];
    assert_eq!(newest["action"], "document.update");
    assert_eq!(newest["crud"], "u");
    assert_eq!(newest["created"], "2024-05-01T12:05:00Z");
    assert_eq!(newest["canonical_time"], "2024-05-01T12:05:00Z");
    assert!(newest["received"].as_str().unwrap().ends_with('Z'));
    assert_eq!(newest["group"], json!({"id": "acme", "name": "acme Inc"}));
    assert_eq!(newest["actor"]["id"], "user5@acme.test");
    assert_eq!(newest["target"]["type"], "document");
    assert_eq!(newest["source_ip"], "203.0.113.7");
    assert_eq!(newest["is_failure"], false);
    assert_eq!(newest["country"], Value::Null);
    assert_eq!(
        newest["display"]["markdown"],
        "**User 5** performed the action **document\\.update** on the item **Doc 5**."
    );
}

#[tokio::test]
async fn a_search_is_recorded_as_an_audit_log_view_unless_skipped() {
    let app = spawn_app().await;
    let (project, key) = two_groups(&app).await;
    let acme = session(&app, &project, &key, "acme").await;
    let recorded = graphql(
        &app,
        &acme,
        "",
        &json!({"query": SEARCH, "variables": {"query": "crud:c,u,d", "last": 20, "before": ""}}),
    )
    .await;
    assert_eq!(recorded.status(), StatusCode::OK);
    let (total, _) = actions(&app, &acme, "action:audit.log.view").await;
    assert_eq!(
        total, 1,
        "one recorded viewing; the skipped searches are not"
    );
    let (_, body) = search(&app, &acme, "action:audit.log.view", 5, "").await;
    let node = &body["data"]["search"]["edges"][0]["node"];
    assert_eq!(node["crud"], "r");
    assert_eq!(node["actor"]["id"], "viewer@acme.test");
}

#[tokio::test]
async fn paging_walks_with_the_cursor_and_the_total_ignores_it() {
    let app = spawn_app().await;
    let (project, key) = two_groups(&app).await;
    let acme = session(&app, &project, &key, "acme").await;
    let mut seen = Vec::new();
    let mut cursor = String::new();
    for page in 0..3 {
        let (status, body) =
            search(&app, &acme, "crud:c,r,u,d target.type:document", 2, &cursor).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let found = &body["data"]["search"];
        assert_eq!(found["totalCount"], 5, "page {page}");
        let edges = found["edges"].as_array().unwrap();
        seen.extend(edges.iter().map(|e| {
            e["node"]["fields"][0]["value"]
                .as_str()
                .unwrap()
                .to_string()
        }));
        // Retraced's rule: newest first, and more matches than this page.
        assert_eq!(found["pageInfo"]["hasPreviousPage"], true);
        cursor = edges.last().unwrap()["cursor"]
            .as_str()
            .unwrap()
            .to_string();
    }
    assert_eq!(seen, ["5", "4", "3", "2", "1"]);

    // Oldest first with `first`/`after`.
    let first = |after: &str| {
        json!({"query": "query($q: String!, $a: String) { search(query: $q, first: 3, after: $a) { totalCount pageInfo { hasNextPage hasPreviousPage } edges { cursor node { fields { value } } } } }",
               "variables": {"q": "target.type:document", "a": after}})
    };
    let body: Value = graphql(&app, &acme, "?skipViewLogEvent=true", &first(""))
        .await
        .json()
        .await
        .unwrap();
    let found = &body["data"]["search"];
    assert_eq!(
        found["pageInfo"],
        json!({"hasNextPage": true, "hasPreviousPage": false})
    );
    let values: Vec<&str> = found["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["fields"][0]["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["1", "2", "3"]);
    let after = found["edges"][2]["cursor"].as_str().unwrap();
    let body: Value = graphql(&app, &acme, "?skipViewLogEvent=true", &first(after))
        .await
        .json()
        .await
        .unwrap();
    let values: Vec<&str> = body["data"]["search"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["fields"][0]["value"].as_str().unwrap())
        .collect();
    assert_eq!(values, ["4", "5"]);

    // A cursor that is not one is a 400 with GraphQL errors.
    let (status, body) = search(&app, &acme, "", 2, "not a cursor").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errors"][0]["message"], "Invalid cursor");
}

#[tokio::test]
async fn query_keywords_narrow_the_search() {
    let app = spawn_app().await;
    let (project, key) = two_groups(&app).await;
    let acme = session(&app, &project, &key, "acme").await;
    let cases: &[(&str, &[&str])] = &[
        (
            "action:document.update",
            &["document.update number 5", "document.update number 2"],
        ),
        ("action:user.*", &["user.delete number 4"]),
        ("crud:r target.type:document", &["document.read number 3"]),
        (
            "crud:c,d target.type:document",
            &["user.delete number 4", "document.create number 1"],
        ),
        (
            "crud:r,u target.type:document",
            &[
                "document.update number 5",
                "document.read number 3",
                "document.update number 2",
            ],
        ),
        ("actor.id:user2@acme.test", &["document.update number 2"]),
        (r#"actor.name:"user 4""#, &["user.delete number 4"]),
        ("target.id:doc:3", &["document.read number 3"]),
        ("target.type:document crud:c", &["document.create number 1"]),
        ("target.name:\"Doc 1\"", &["document.create number 1"]),
        (r#"description:"number 2""#, &["document.update number 2"]),
        ("target.type:document create", &["document.create number 1"]),
        (
            "received:2024-05-01T14:01:30+02:00,2024-05-01T12:03:30Z target.type:document",
            &["document.read number 3", "document.update number 2"],
        ),
        ("external_id:nothing", &[]),
    ];
    for (text, want) in cases {
        let (total, got) = actions(&app, &acme, text).await;
        assert_eq!(&got, want, "{text}");
        assert_eq!(total, want.len() as i64, "{text}");
    }
    // What Stele's filter cannot hold is refused by keyword, never answered wrongly.
    for (text, keyword) in [
        ("action:a action:b", "action"),
        ("crud:x", "crud"),
        ("received:2024-05-01T00:00:00.000Z,", "received"),
    ] {
        let (status, body) = search(&app, &acme, text, 20, "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.starts_with(keyword), "{text}: {message}");
    }
}

#[tokio::test]
async fn the_description_markdown_shows_what_was_sent_as_text() {
    let app = spawn_app().await;
    let (project, key) = publisher(&app).await;
    let mut event = retraced_event("acme", "x.y", "c", 1);
    event["actor"]["name"] = json!("<img src=x onerror=alert(1)> [click](javascript:alert(1))");
    event["target"]["name"] = json!("**bold**\n# heading");
    // Anonymous, with no target: Retraced's wording, and objects with null members (the
    // viewer reads `actor` and `target` unguarded).
    let anonymous = json!({"action": "x.z", "crud": "r", "is_anonymous": true,
                           "group": {"id": "acme"}});
    publish(&app, &project, &key, vec![event, anonymous]).await;
    let acme = session(&app, &project, &key, "acme").await;
    let (_, body) = search(&app, &acme, "action:x.z", 20, "").await;
    let node = &body["data"]["search"]["edges"][0]["node"];
    assert_eq!(
        node["display"]["markdown"],
        "**An unknown actor** performed the action **x\\.z**."
    );
    assert_eq!(
        node["actor"],
        json!({"id": null, "name": null, "href": null})
    );
    assert_eq!(
        node["target"],
        json!({"id": null, "name": null, "href": null, "type": null})
    );
    assert_eq!(node["is_anonymous"], true);
    let (_, body) = search(&app, &acme, "action:x.y", 20, "").await;
    let markdown = body["data"]["search"]["edges"][0]["node"]["display"]["markdown"]
        .as_str()
        .unwrap();
    assert_eq!(
        markdown,
        "**&lt;img src\\=x onerror\\=alert\\(1\\)&gt; \\[click\\]\\(javascript\\:alert\\(1\\)\\)** \
         performed the action **x\\.y** on the item **\\*\\*bold\\*\\* \\# heading**."
    );
}

#[tokio::test]
async fn a_session_dies_with_its_token_and_answers_retraceds_expiry_body() {
    let clock = ManualClock::starting_at(now_millis());
    let shared = SharedClock(clock.clone());
    let app = spawn_app_with(|c| c.clock = shared).await;
    let (project, key) = two_groups(&app).await;
    let token = viewer_token(&app, &project, &key, "acme").await;
    let exchange = || async {
        app.post_json_anonymous(&format!("{VIEWER}/viewersession"), &json!({"token": token}))
            .await
    };
    // Exchanged twice (the viewer does, on mount): both sessions work.
    let first: Value = exchange().await.json().await.unwrap();
    let second: Value = exchange().await.json().await.unwrap();
    for s in [&first, &second] {
        let (status, _) = search(&app, s["token"].as_str().unwrap(), "", 20, "").await;
        assert_eq!(status, StatusCode::OK);
    }
    // Used or not, the session ends five minutes after the token was minted.
    clock.advance(Duration::from_secs(4 * 60));
    let (status, _) = search(&app, first["token"].as_str().unwrap(), "", 20, "").await;
    assert_eq!(status, StatusCode::OK);
    clock.advance(Duration::from_secs(61));
    let (status, body) = search(&app, first["token"].as_str().unwrap(), "", 20, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"status": 401, "type": "Error", "error": "Invalid token"})
    );
    // The token itself can no longer open one either; neither can garbage.
    assert_eq!(exchange().await.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = search(&app, "svt_garbage", "", 20, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let response = app
        .client
        .post(format!("{}{VIEWER}/graphql", app.url))
        .json(&json!({"query": SEARCH}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_saved_export_renders_its_search_as_csv() {
    let app = spawn_app().await;
    let (project, key) = two_groups(&app).await;
    let acme = session(&app, &project, &key, "acme").await;
    let created = app
        .client
        .post(format!("{}{VIEWER}/project/{project}/export", app.url))
        .header("Authorization", &acme)
        .json(&json!({"name": "Updates", "exportBody": {
            "searchQuery": "document", "showCreate": false, "showRead": false,
            "showUpdate": true, "showDelete": false, "version": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["name"], "Updates");
    let id = created["id"].as_str().unwrap();

    let list: Value = app
        .client
        .get(format!(
            "{}{VIEWER}/project/{project}/exports?limit=",
            app.url
        ))
        .header("Authorization", &acme)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["name"], "Updates");

    let rendered = app
        .client
        .get(format!(
            "{}{VIEWER}/project/{project}/export/{id}/rendered",
            app.url
        ))
        .header("Authorization", &acme)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(rendered.status(), StatusCode::OK);
    let disposition = rendered.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"audit-log-"),
        "{disposition}"
    );
    let csv = rendered.text().await.unwrap();
    let rows: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert_eq!(rows.len(), 3, "a header and acme's two updates: {csv}");
    assert!(
        rows[1..].iter().all(|r| r.contains("document.update")),
        "{csv}"
    );

    // A bad body is a 400 naming the field; an unknown export a 404.
    let bad = app
        .client
        .post(format!("{}{VIEWER}/project/{project}/export", app.url))
        .header("Authorization", &acme)
        .json(&json!({"name": "", "exportBody": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let missing = app
        .client
        .get(format!(
            "{}{VIEWER}/project/{project}/export/rse_nope/rendered",
            app.url
        ))
        .header("Authorization", &acme)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

async fn tokens(app: &TestApp, project: &str, session: &str) -> Vec<Value> {
    app.client
        .get(format!(
            "{}{VIEWER}/project/{project}/eitapi_tokens",
            app.url
        ))
        .header("Authorization", session)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn token_call(
    app: &TestApp,
    method: Method,
    path: &str,
    session: &str,
    body: Option<Value>,
) -> StatusCode {
    let mut request = app
        .client
        .request(method, format!("{}{VIEWER}{path}", app.url))
        .header("Authorization", session);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn api_tokens_are_kept_per_organization_and_their_changes_recorded() {
    let app = spawn_app().await;
    let (project, key) = two_groups(&app).await;
    let acme = session(&app, &project, &key, "acme").await;
    let globex = session(&app, &project, &key, "globex").await;
    let created = app
        .client
        .post(format!(
            "{}{VIEWER}/project/{project}/eitapi_token",
            app.url
        ))
        .header("Authorization", &acme)
        .json(&json!({"displayName": "SIEM"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    assert!(created["token"].as_str().unwrap().starts_with("eit_"));
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        tokens(&app, &project, &acme).await,
        [json!({"id": id, "display_name": "SIEM"})]
    );
    assert_eq!(tokens(&app, &project, &globex).await, Vec::<Value>::new());

    let path = format!("/project/{project}/eitapi_token/{id}");
    // Another organization's session cannot touch it.
    assert_eq!(
        token_call(
            &app,
            Method::PUT,
            &path,
            &globex,
            Some(json!({"displayName": "x", "id": id}))
        )
        .await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        token_call(&app, Method::DELETE, &path, &globex, None).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        token_call(
            &app,
            Method::PUT,
            &path,
            &acme,
            Some(json!({"displayName": "Splunk", "id": id}))
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        tokens(&app, &project, &acme).await[0]["display_name"],
        "Splunk"
    );
    assert_eq!(
        token_call(
            &app,
            Method::PUT,
            &path,
            &acme,
            Some(json!({"displayName": ""}))
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        token_call(&app, Method::DELETE, &path, &acme, None).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(tokens(&app, &project, &acme).await, Vec::<Value>::new());

    let (total, got) = actions(&app, &acme, "action:eitapi_token.*").await;
    assert_eq!(total, 3);
    assert_eq!(
        got,
        [
            "Deleted API token \"Splunk\"",
            "Renamed API token \"Splunk\"",
            "Created API token \"SIEM\""
        ]
    );
}

#[tokio::test]
async fn any_origin_may_call_the_viewer_and_read_the_file_name() {
    let app = spawn_app().await;
    let (project, key) = two_groups(&app).await;
    let acme = session(&app, &project, &key, "acme").await;
    let preflight = app
        .client
        .request(Method::OPTIONS, format!("{}{VIEWER}/graphql", app.url))
        .header("Origin", "https://app.example")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("authorization")
    );

    // An actual answer, an error's too, is readable by the page.
    let ended = app
        .client
        .post(format!("{}{VIEWER}/graphql", app.url))
        .header("Origin", "https://app.example")
        .header("Authorization", "svt_nothing")
        .json(&json!({"query": SEARCH}))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.headers()["access-control-allow-origin"], "*");
    let download = app
        .client
        .get(format!("{}{VIEWER}/project/{project}/exports", app.url))
        .header("Origin", "https://app.example")
        .header("Authorization", &acme)
        .send()
        .await
        .unwrap();
    assert_eq!(download.headers()["access-control-allow-origin"], "*");
    assert!(
        download.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase()
            .contains("content-disposition")
    );
}

#[tokio::test]
async fn organizations_never_see_each_others_entries_or_exports() {
    let app = spawn_app().await;
    let (project, key) = two_groups(&app).await;
    let acme = session(&app, &project, &key, "acme").await;
    let globex = session(&app, &project, &key, "globex").await;
    let (total, got) = actions(&app, &globex, "target.type:document").await;
    assert_eq!(
        (total, got),
        (1, vec!["document.update number 6".to_string()])
    );
    // Naming the other group's entries finds nothing.
    let (total, _) = actions(&app, &globex, "actor.id:user1@acme.test").await;
    assert_eq!(total, 0);
    let created: Value = app
        .client
        .post(format!("{}{VIEWER}/project/{project}/export", app.url))
        .header("Authorization", &acme)
        .json(&json!({"name": "All", "exportBody": {"searchQuery": "", "showCreate": true, "showRead": true, "showUpdate": true, "showDelete": true}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let theirs = app
        .client
        .get(format!(
            "{}{VIEWER}/project/{project}/export/{id}/rendered",
            app.url
        ))
        .header("Authorization", &globex)
        .send()
        .await
        .unwrap();
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    let list: Value = app
        .client
        .get(format!("{}{VIEWER}/project/{project}/exports", app.url))
        .header("Authorization", &globex)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!([]));
    // Another project id is not this session's.
    let other = app
        .client
        .get(format!("{}{VIEWER}/project/org_other/exports", app.url))
        .header("Authorization", &acme)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_publisher_searches_the_group_its_query_names() {
    let app = spawn_app().await;
    let (project, key) = two_groups(&app).await;
    let publisher_search =
        |text: &str| {
            app.client
            .post(format!("{}/auditlog/publisher/v1/project/{project}/graphql", app.url))
            .header("Authorization", format!("Token token={key}"))
            .json(&json!({"query": SEARCH, "variables": {"query": text, "last": 20, "before": ""}}))
            .send()
        };
    let response = publisher_search("crud:u group.id:acme").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["search"]["totalCount"], 2);
    assert_eq!(
        body["data"]["search"]["edges"][0]["node"]["group"]["id"],
        "acme"
    );

    // Without a group, every group of the project, merged newest first, paged with a cursor
    // of its own, the total added up.
    let response = publisher_search("crud:u").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let search = &body["data"]["search"];
    assert_eq!(search["totalCount"], 3, "{body}");
    let groups: Vec<&str> = search["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["group"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["globex", "acme", "acme"], "{body}");
    let mut seen = Vec::new();
    let mut before = String::new();
    loop {
        let body: Value = app
            .client
            .post(format!(
                "{}/auditlog/publisher/v1/project/{project}/graphql",
                app.url
            ))
            .header("Authorization", format!("Token token={key}"))
            .json(
                &json!({"query": SEARCH, "variables": {"query": "", "last": 2, "before": before}}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let edges = body["data"]["search"]["edges"].as_array().unwrap().clone();
        if edges.is_empty() {
            break;
        }
        for edge in &edges {
            seen.push(edge["node"]["id"].as_str().unwrap().to_string());
        }
        before = edges.last().unwrap()["cursor"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(seen.len() <= 20, "the walk ends");
    }
    let all = body_total(&app, &project, &key).await;
    assert_eq!(seen.len() as u64, all, "every entry once: {seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "{seen:?}");
    let response = publisher_search("group.id:nobody").await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // Without the key, Retraced's 401.
    let response = app
        .client
        .post(format!(
            "{}/auditlog/publisher/v1/project/{project}/graphql",
            app.url
        ))
        .header("Authorization", "token=nope")
        .json(&json!({"query": SEARCH}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// Every entry of the project's groups, as the project's search counts them.
async fn body_total(app: &TestApp, project: &str, key: &str) -> u64 {
    let body: Value = app
        .client
        .post(format!(
            "{}/auditlog/publisher/v1/project/{project}/graphql",
            app.url
        ))
        .header("Authorization", format!("Token token={key}"))
        .json(&json!({"query": SEARCH, "variables": {"query": "", "last": 1, "before": ""}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"]["search"]["totalCount"].as_u64().unwrap()
}

#[tokio::test]
async fn the_publisher_searches_a_project_of_one_group_without_naming_it() {
    let app = spawn_app().await;
    let (project, key) = publisher(&app).await;
    publish(
        &app,
        &project,
        &key,
        vec![
            retraced_event("acme", "document.create", "c", 1),
            retraced_event("acme", "document.update", "u", 2),
        ],
    )
    .await;
    let response = app
        .client
        .post(format!(
            "{}/auditlog/publisher/v1/project/{project}/graphql",
            app.url
        ))
        .header("Authorization", format!("Token token={key}"))
        .json(
            &json!({"query": SEARCH, "variables": {"query": "crud:c,u", "last": 20, "before": ""}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    // The two events, and Stele's own entry of the group's organization being made.
    assert_eq!(body["data"]["search"]["totalCount"], 3, "{body}");
    let actions: Vec<&str> = body["data"]["search"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["organization.create", "document.update", "document.create"]
    );
}

/// A body over the server's limit gets the viewer's 413 in JSON, on the session exchange and on a
/// session's own requests (search, exports, tokens): never axum's plain text.
#[tokio::test]
async fn a_body_over_the_limit_is_a_413_in_json() {
    let app = spawn_app_with(|c| c.max_body_bytes = 10_000).await;
    let (project, key) = publisher(&app).await;
    let session = session(&app, &project, &key, "g1").await;
    let big = json!({"token": "x".repeat(20_000), "query": "x".repeat(20_000)});
    let exchange = app
        .post_json_anonymous(&format!("{VIEWER}/viewersession"), &big)
        .await;
    let search = graphql(&app, &session, "", &big).await;
    for (what, response) in [("viewersession", exchange), ("graphql", search)] {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{what}");
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
        assert!(body.is_object(), "{what}: {body}");
    }
}
