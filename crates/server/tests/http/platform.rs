//! Platforms: a platform key names the organization it acts for per request (the
//! `Stele-Organization` header, by id or external id), creates organizations it names for the
//! first time on ingest (unless the server says not to), manages organizations and their keys over
//! `/v1/organizations`, and what it does to organizations is recorded in their trails and in the
//! platform's own. An organization key keeps working as before and reaches nothing else.

use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use stele_service::access::api_keys;
use stele_store::Scope;

use super::helpers::{TestApp, assert_error, event, spawn_app, spawn_app_with};

impl TestApp {
    /// A platform key with these scopes.
    pub(super) async fn platform_key(&self, scopes: &[Scope]) -> String {
        let platform = self.store.platform_org().await.unwrap();
        let key = api_keys::generate("platform", scopes.to_vec());
        self.store
            .create_api_key(platform.key, key.record)
            .await
            .unwrap();
        key.secret
    }

    /// A request with `key`, acting for `org` (the `Stele-Organization` header) when given.
    pub(super) async fn as_platform(
        &self,
        method: Method,
        key: &str,
        org: Option<&str>,
        path: &str,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(key);
        if let Some(org) = org {
            request = request.header("Stele-Organization", org);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    pub(super) async fn platform_json(
        &self,
        method: Method,
        key: &str,
        org: Option<&str>,
        path: &str,
        body: Option<&Value>,
    ) -> (StatusCode, Value) {
        let response = self.as_platform(method, key, org, path, body).await;
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

const ALL: &[Scope] = &[
    Scope::Ingest,
    Scope::Read,
    Scope::Export,
    Scope::Organizations,
];

#[tokio::test]
async fn a_platform_key_names_the_organization_by_id_or_external_id() {
    let app = spawn_app().await;
    let key = app.platform_key(ALL).await;
    let (status, acme) = app
        .platform_json(
            Method::POST,
            &key,
            None,
            "/v1/organizations",
            Some(&json!({"name": "Acme", "external_id": "tenant-1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{acme}");
    assert_eq!(acme["external_id"], "tenant-1");
    let acme_id = acme["id"].as_str().unwrap().to_string();

    // By external id, then by id: the same organization, one gap-free chain.
    let by_external = app
        .as_platform(
            Method::POST,
            &key,
            Some("tenant-1"),
            "/v1/events",
            Some(&event("create")),
        )
        .await;
    assert_eq!(by_external.status(), StatusCode::CREATED);
    let by_id = app
        .as_platform(
            Method::POST,
            &key,
            Some(&acme_id),
            "/v1/events",
            Some(&json!({"events": [event("update"), event("delete")]})),
        )
        .await;
    assert_eq!(by_id.status(), StatusCode::CREATED);
    let (status, page) = app
        .platform_json(
            Method::GET,
            &key,
            Some("tenant-1"),
            "/v1/events?actor_type=user",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let seqs: Vec<i64> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    // The organization's creation is its first entry.
    assert_eq!(seqs, [4, 3, 2]);

    // The default organization's key sees none of it.
    let mine = app.get_json("/v1/events?actor_type=user").await;
    assert_eq!(mine["entries"], json!([]));
    // Nor can it name Acme.
    let response = app
        .as_platform(Method::GET, &app.key, Some("tenant-1"), "/v1/events", None)
        .await;
    assert_error(response, StatusCode::FORBIDDEN, "forbidden").await;
}

#[tokio::test]
async fn ingest_creates_an_unknown_organization_unless_the_server_says_not_to() {
    let app = spawn_app().await;
    let key = app.platform_key(ALL).await;
    let response = app
        .as_platform(
            Method::POST,
            &key,
            Some("cust_42"),
            "/v1/events",
            Some(&event("create")),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let (status, list) = app
        .platform_json(
            Method::GET,
            &key,
            None,
            "/v1/organizations?external_id=cust_42",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["organizations"][0]["name"], "cust_42", "{list}");

    // Reads never create one.
    let response = app
        .as_platform(Method::GET, &key, Some("cust_43"), "/v1/events", None)
        .await;
    let error = assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(error["error"]["details"][0]["field"], "Stele-Organization");

    // Ingest naming none, neither in the header nor in the event, is refused: it would write
    // into the platform's own trail.
    let response = app
        .as_platform(
            Method::POST,
            &key,
            None,
            "/v1/events",
            Some(&event("create")),
        )
        .await;
    let error = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_event").await;
    assert_eq!(
        error["error"]["details"],
        json!([{"field": "organization", "message": error["error"]["details"][0]["message"]}])
    );

    let strict = spawn_app_with(|c| c.auto_create_organizations = false).await;
    let key = strict.platform_key(ALL).await;
    let response = strict
        .as_platform(
            Method::POST,
            &key,
            Some("cust_42"),
            "/v1/events",
            Some(&event("create")),
        )
        .await;
    let error = assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(error["error"]["details"][0]["field"], "Stele-Organization");
}

#[tokio::test]
async fn an_organization_id_that_names_none_is_never_made_into_a_tenant() {
    let app = spawn_app().await;
    let key = app.platform_key(ALL).await;
    // A deleted organization's id, or a mistyped one: the form of an id, naming nothing.
    let gone = "org_01a246bd964e7697ba53412241afbebb";
    let response = app
        .as_platform(
            Method::POST,
            &key,
            Some(gone),
            "/v1/events",
            Some(&event("create")),
        )
        .await;
    let error = assert_error(response, StatusCode::NOT_FOUND, "not_found").await;
    assert_eq!(error["error"]["details"][0]["field"], "Stele-Organization");

    let batch =
        json!({"events": [for_org(event("create"), gone), for_org(event("create"), "cust_1")]});
    let response = app
        .as_platform(Method::POST, &key, None, "/v1/events", Some(&batch))
        .await;
    let error = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_event").await;
    let details = &error["error"]["details"];
    assert_eq!(details.as_array().unwrap().len(), 1, "{error}");
    assert_eq!(details[0]["field"], "organization");
    assert_eq!(details[0]["index"], 0);
    assert!(
        details[0]["message"]
            .as_str()
            .unwrap()
            .contains("no organization has the id"),
        "{error}"
    );

    // Nor can an organization take such an external id.
    let (status, error) = app
        .platform_json(
            Method::POST,
            &key,
            None,
            "/v1/organizations",
            Some(&json!({"name": "Lookalike", "external_id": gone})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["error"]["details"][0]["field"], "external_id");

    // Nothing was created, not even the batch's other, good organization.
    let (_, list) = app
        .platform_json(Method::GET, &key, None, "/v1/organizations", None)
        .await;
    let names: Vec<_> = list["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default"], "{list}");
}

#[tokio::test]
async fn organizations_are_listed_shown_renamed_and_recorded_in_both_trails() {
    let app = spawn_app().await;
    let key = app.platform_key(ALL).await;
    let mut ids = Vec::new();
    for n in 1..=3 {
        let (status, org) = app
            .platform_json(
                Method::POST,
                &key,
                None,
                "/v1/organizations",
                Some(&json!({"name": format!("Org {n}"), "external_id": format!("t{n}")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        ids.push(org["id"].as_str().unwrap().to_string());
    }
    // Pages of two, oldest first; the platform's own organization is not a tenant. The
    // bootstrap's `default` organization is one.
    let (_, first) = app
        .platform_json(Method::GET, &key, None, "/v1/organizations?limit=2", None)
        .await;
    let names: Vec<_> = first["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "Org 1"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, rest) = app
        .platform_json(
            Method::GET,
            &key,
            None,
            &format!("/v1/organizations?limit=2&after={cursor}"),
            None,
        )
        .await;
    let names: Vec<_> = rest["organizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Org 2", "Org 3"]);
    assert_eq!(rest["next_cursor"], Value::Null);
    // A cursor that names no organization is an error of `after`, not the first page again.
    let (status, error) = app
        .platform_json(
            Method::GET,
            &key,
            None,
            "/v1/organizations?limit=2&after=org_0000",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error["error"]["details"][0]["field"], "after");

    let (status, shown) = app
        .platform_json(Method::GET, &key, None, "/v1/organizations/t2", None)
        .await;
    assert_eq!(
        (status, shown["id"].as_str()),
        (StatusCode::OK, Some(&*ids[1]))
    );
    let (status, renamed) = app
        .platform_json(
            Method::PATCH,
            &key,
            None,
            &format!("/v1/organizations/{}", ids[1]),
            Some(&json!({"name": "Org Two", "external_id": "t2b"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(
        (&renamed["name"], &renamed["external_id"]),
        (&json!("Org Two"), &json!("t2b"))
    );
    // The old external id names nothing any more; the new one does, at once.
    let (status, _) = app
        .platform_json(Method::GET, &key, None, "/v1/organizations/t2", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, taken) = app
        .platform_json(
            Method::PATCH,
            &key,
            None,
            "/v1/organizations/t2b",
            Some(&json!({"external_id": "t1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{taken}");
    for (body, field) in [
        (json!({"name": ""}), "name"),
        (json!({"name": "a\nb"}), "name"),
        (json!({"external_id": "has space"}), "external_id"),
        (json!({"colour": "red"}), "colour"),
    ] {
        let (status, error) = app
            .platform_json(
                Method::PATCH,
                &key,
                None,
                "/v1/organizations/t2b",
                Some(&body),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {error}");
        assert_eq!(error["error"]["details"][0]["field"], field, "{body}");
    }

    // Recorded in the organization's trail and in the platform's, with the key as actor.
    let (_, own) = app
        .platform_json(
            Method::GET,
            &key,
            Some("t2b"),
            "/v1/events?detailed_action=organization.*&actor_type=api",
            None,
        )
        .await;
    let actions: Vec<_> = own["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detailed_action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["organization.update", "organization.create"]);
    let (_, platform) = app
        .platform_json(
            Method::GET,
            &key,
            None,
            "/v1/events?detailed_action=organization.*&actor_type=api",
            None,
        )
        .await;
    let entities: Vec<_> = platform["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entity"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(entities, ["Org Two", "Org 3", "Org 2", "Org 1"]);
    assert_eq!(
        platform["entries"][0]["changes"],
        json!([{"field": "name", "old": "Org 2", "new": "Org Two"},
               {"field": "external_id", "old": "t2", "new": "t2b"}])
    );
}

#[tokio::test]
async fn a_platform_mints_and_revokes_an_organizations_keys() {
    let app = spawn_app().await;
    let key = app.platform_key(ALL).await;
    app.platform_json(
        Method::POST,
        &key,
        None,
        "/v1/organizations",
        Some(&json!({"name": "Acme", "external_id": "acme"})),
    )
    .await;
    let (status, minted) = app
        .platform_json(
            Method::POST,
            &key,
            None,
            "/v1/organizations/acme/keys",
            Some(&json!({"name": "acme-backend", "scopes": ["ingest", "read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{minted}");
    let secret = minted["secret"].as_str().unwrap().to_string();
    assert_eq!(minted["scopes"], json!(["ingest", "read"]));
    let response = app.post_events_as(&secret, &event("create")).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let listed = app
        .platform_json(Method::GET, &key, None, "/v1/organizations/acme/keys", None)
        .await
        .1;
    assert_eq!(listed["keys"][0]["name"], "acme-backend");
    assert!(
        listed.to_string().find(&secret).is_none(),
        "a key's secret is shown once"
    );

    // An organization's key cannot hold the platform's scope.
    let (status, error) = app
        .platform_json(
            Method::POST,
            &key,
            None,
            "/v1/organizations/acme/keys",
            Some(&json!({"scopes": ["organizations"]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["details"][0]["field"], "scopes");

    // A key is revoked through its own organization only.
    let key_id = minted["id"].as_str().unwrap();
    let default_id = app.key_record(&app.key).await.id;
    let (status, _) = app
        .platform_json(
            Method::DELETE,
            &key,
            None,
            &format!("/v1/organizations/acme/keys/{default_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, revoked) = app
        .platform_json(
            Method::DELETE,
            &key,
            None,
            &format!("/v1/organizations/acme/keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(revoked["revoked_at"].is_string());
    let response = app.post_events_as(&secret, &event("create")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Revoking again changes and records nothing.
    let (status, _) = app
        .platform_json(
            Method::DELETE,
            &key,
            None,
            &format!("/v1/organizations/acme/keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    // Minting and revoking are recorded once each in the organization's trail and in the
    // platform's, with the platform key as the actor.
    let platform_key_id = app.key_record(&key).await.id;
    for trail in [Some("acme"), None] {
        let (_, page) = app
            .platform_json(
                Method::GET,
                &key,
                trail,
                "/v1/events?detailed_action=api_key.*&actor_type=all",
                None,
            )
            .await;
        let entries = page["entries"].as_array().unwrap();
        let actions: Vec<_> = entries
            .iter()
            .map(|e| e["detailed_action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            ["api_key.revoke", "api_key.create"],
            "{trail:?}: {page}"
        );
        for entry in entries {
            assert_eq!(entry["actor"]["id"], platform_key_id, "{entry}");
            assert_eq!(entry["entity"]["id"], key_id, "{entry}");
        }
    }
}

#[tokio::test]
async fn only_a_platform_key_with_the_scope_manages_organizations() {
    let app = spawn_app().await;
    // The bootstrap admin key is an organization's key.
    let (status, _) = app
        .platform_json(Method::GET, &app.key, None, "/v1/organizations", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let reader = app.platform_key(&[Scope::Read, Scope::Ingest]).await;
    let (status, _) = app
        .platform_json(
            Method::POST,
            &reader,
            None,
            "/v1/organizations",
            Some(&json!({"name": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = app
        .platform_json(Method::GET, &reader, None, "/v1/organizations", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A scope an organization's key may not hold is refused from the console's list too.
    assert!(Scope::check_for(&[Scope::Organizations], false).is_err());
    assert!(Scope::check_for(&[Scope::Organizations], true).is_ok());
}

#[tokio::test]
async fn deleting_an_organization_takes_its_data_after_a_confirmation_and_is_recorded() {
    let app = spawn_app().await;
    let key = app
        .platform_key(&[Scope::Ingest, Scope::Read, Scope::Organizations])
        .await;
    let (_, acme) = app
        .platform_json(
            Method::POST,
            &key,
            None,
            "/v1/organizations",
            Some(&json!({"name": "Acme", "external_id": "acme"})),
        )
        .await;
    let acme_id = acme["id"].as_str().unwrap().to_string();
    let (_, minted) = app
        .platform_json(
            Method::POST,
            &key,
            None,
            "/v1/organizations/acme/keys",
            Some(&json!({"scopes": ["ingest", "read"]})),
        )
        .await;
    let acme_key = minted["secret"].as_str().unwrap().to_string();
    let response = app
        .post_events_as(
            &acme_key,
            &json!({"events": [event("create"), event("update")]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    for confirm in ["", "?confirm=acme", "?confirm=org_other"] {
        let (status, error) = app
            .platform_json(
                Method::DELETE,
                &key,
                None,
                &format!("/v1/organizations/acme{confirm}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{confirm}: {error}");
        assert_eq!(error["error"]["details"][0]["field"], "confirm");
    }
    let (status, deleted) = app
        .platform_json(
            Method::DELETE,
            &key,
            None,
            &format!("/v1/organizations/acme?confirm={acme_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["deleted"], true);
    // Its two events, and the entries of its creation and its key's.
    assert_eq!(deleted["entries_removed"], 4);

    // Gone for every door: its key, its ids, its events.
    let response = app.post_events_as(&acme_key, &event("create")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let (status, _) = app
        .platform_json(
            Method::GET,
            &key,
            None,
            &format!("/v1/organizations/{acme_id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .platform_json(Method::GET, &key, Some(&acme_id), "/v1/events", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The external id and the name are free again; a new organization starts its own chain.
    let (status, again) = app
        .platform_json(
            Method::POST,
            &key,
            None,
            "/v1/organizations",
            Some(&json!({"name": "Acme", "external_id": "acme"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_ne!(again["id"], acme_id.as_str());

    // The platform's trail says who deleted what.
    let (_, platform) = app
        .platform_json(
            Method::GET,
            &key,
            None,
            "/v1/events?detailed_action=organization.delete&actor_type=api",
            None,
        )
        .await;
    let entry = &platform["entries"][0];
    assert_eq!(entry["entity"]["id"], acme_id.as_str());
    assert_eq!(entry["metadata"]["entries_removed"], 4);
}

/// Events of many organizations in one batch: each event may name its organization
/// (`organization`), which wins over the header.
impl TestApp {
    /// `POST /v1/events` with a platform key, naming `org` in the header when given, with an
    /// `Idempotency-Key` when given.
    async fn ingest_as_platform(
        &self,
        key: &str,
        org: Option<&str>,
        body: &Value,
        idempotency_key: Option<&str>,
    ) -> Response {
        let mut request = self
            .client
            .post(format!("{}/v1/events", self.url))
            .bearer_auth(key)
            .json(body);
        if let Some(org) = org {
            request = request.header("Stele-Organization", org);
        }
        if let Some(k) = idempotency_key {
            request = request.header("Idempotency-Key", k);
        }
        request.send().await.unwrap()
    }

    /// A new organization with this external id (named after it); its id.
    async fn organization(&self, key: &str, external_id: &str) -> String {
        let (status, org) = self
            .platform_json(
                Method::POST,
                key,
                None,
                "/v1/organizations",
                Some(&json!({"name": external_id, "external_id": external_id})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{org}");
        org["id"].as_str().unwrap().to_string()
    }

    /// The actions of the entries clients sent to `org`'s trail, oldest first.
    async fn sent_actions(&self, key: &str, org: &str) -> Vec<String> {
        let (status, page) = self
            .platform_json(
                Method::GET,
                key,
                Some(org),
                "/v1/events?actor_type=user",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let entries = page["entries"].as_array().unwrap();
        assert!(
            entries.iter().all(|e| e.get("organization").is_none()),
            "the field is not part of the entry: {page}"
        );
        entries
            .iter()
            .rev()
            .map(|e| e["action"].as_str().unwrap().to_string())
            .collect()
    }
}

/// `event` for the organization `org` names.
fn for_org(mut event: Value, org: impl Into<Value>) -> Value {
    event["organization"] = org.into();
    event
}

/// Each receipt's organization id and `seq`.
fn placed(body: &Value) -> Vec<(String, i64)> {
    body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["organization_id"].as_str().unwrap().to_string(),
                r["seq"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_batch_of_many_organizations_stores_each_event_in_its_own_organizations_chain() {
    let app = spawn_app().await;
    let key = app.platform_key(ALL).await;
    let t1 = app.organization(&key, "t1").await;
    let t2 = app.organization(&key, "t2").await;
    let batch = json!({"events": [
        for_org(event("create"), "t2"),
        // None named: the header's.
        event("update"),
        // An external id no organization has yet: created on the way, as the header's would be.
        for_org(event("login"), "brand-new"),
        // By id.
        for_org(event("delete"), t2.as_str()),
        for_org(event("logout"), "brand-new"),
    ]});
    let response = app.ingest_as_platform(&key, Some("t1"), &batch, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let (_, new) = app
        .platform_json(Method::GET, &key, None, "/v1/organizations/brand-new", None)
        .await;
    let new = new["id"].as_str().unwrap().to_string();
    // In the order sent; each organization's creation is its first entry.
    assert_eq!(
        placed(&body),
        [
            (t2.clone(), 2),
            (t1.clone(), 2),
            (new.clone(), 2),
            (t2.clone(), 3),
            (new.clone(), 3)
        ]
    );
    for receipt in body["events"].as_array().unwrap() {
        let keys: Vec<_> = receipt.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "seq", "organization_id"]);
    }
    for (org, actions) in [
        ("t1", vec!["update"]),
        ("t2", vec!["create", "delete"]),
        ("brand-new", vec!["login", "logout"]),
    ] {
        assert_eq!(app.sent_actions(&key, org).await, actions, "{org}");
        let (_, report) = app
            .platform_json(Method::GET, &key, Some(org), "/v1/integrity/verify", None)
            .await;
        assert_eq!(report["ok"], true, "{org}: {report}");
        assert_eq!(report["entries"], 1 + actions.len(), "{org}: {report}");
    }

    // Without the header, a batch whose every event names its organization is just as good,
    // NDJSON too.
    let lines = format!(
        "{}\n{}\n",
        for_org(event("export"), "t1"),
        for_org(event("import"), t2.as_str())
    );
    let response = app
        .client
        .post(format!("{}/v1/events", app.url))
        .bearer_auth(&key)
        .header("Content-Type", "application/x-ndjson")
        .body(lines)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(placed(&body), [(t1, 3), (t2, 4)]);
}

#[tokio::test]
async fn an_invalid_event_for_one_organization_stores_nothing_for_any() {
    let app = spawn_app().await;
    let key = app.platform_key(ALL).await;
    app.organization(&key, "t1").await;
    app.organization(&key, "t2").await;
    let batch = json!({"events": [
        for_org(event("create"), "t1"),
        for_org(event("create"), "ghost"),
        for_org(json!({"action": "Not An Action", "actor": {"type": "user"}}), "t2"),
        for_org(event("create"), "has space"),
        for_org(event("create"), 7),
    ]});
    let response = app.ingest_as_platform(&key, Some("t1"), &batch, None).await;
    let error = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_event").await;
    assert_eq!(
        error["error"]["message"],
        "3 of 5 events are invalid; nothing was recorded"
    );
    let named: Vec<_> = error["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["index"].as_u64().unwrap(), d["field"].as_str().unwrap()))
        .collect();
    assert_eq!(
        named,
        [(2, "action"), (3, "organization"), (4, "organization")]
    );
    for org in ["t1", "t2"] {
        assert!(app.sent_actions(&key, org).await.is_empty(), "{org}");
    }
    // Nor was the organization the batch named for the first time made.
    let (status, _) = app
        .platform_json(Method::GET, &key, None, "/v1/organizations/ghost", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Without the header, an event that names no organization is an error of its own.
    let batch = json!({"events": [for_org(event("create"), "t1"), event("update")]});
    let response = app.ingest_as_platform(&key, None, &batch, None).await;
    let error = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_event").await;
    let details = &error["error"]["details"];
    assert_eq!(
        (&details[0]["index"], &details[0]["field"]),
        (&json!(1), &json!("organization")),
        "{error}"
    );
    assert_eq!(details.as_array().unwrap().len(), 1);
    assert!(app.sent_actions(&key, "t1").await.is_empty());
}

#[tokio::test]
async fn an_organization_key_sending_organization_gets_a_422() {
    let app = spawn_app().await;
    let batch = json!({"events": [event("create"), for_org(event("update"), "default")]});
    let response = app.post_events(&batch).await;
    let error = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_event").await;
    let details = &error["error"]["details"];
    assert_eq!(details.as_array().unwrap().len(), 1, "{error}");
    assert_eq!(
        (&details[0]["index"], &details[0]["field"]),
        (&json!(1), &json!("organization"))
    );
    let response = app.post_events(&for_org(event("create"), "other")).await;
    let error = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_event").await;
    assert_eq!(
        error["error"]["details"][0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["field", "message"]
    );
    assert_eq!(error["error"]["details"][0]["field"], "organization");
    assert!(app.seqs("actor_type=user").await.is_empty());

    // Its receipts are as they always were: no organization.
    let response = app.post_events(&json!({"events": [event("create")]})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let keys: Vec<_> = body["events"][0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "seq"]);
}

#[tokio::test]
async fn a_retried_batch_of_many_organizations_is_stored_once() {
    let app = spawn_app().await;
    let key = app.platform_key(ALL).await;
    app.organization(&key, "t1").await;
    app.organization(&key, "t2").await;
    let batch = json!({"events": [
        for_org(event("create"), "t1"),
        for_org(event("create"), "t2"),
        for_org(event("create"), "t3"),
    ]});
    let first = app
        .ingest_as_platform(&key, None, &batch, Some("batch-1"))
        .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let retry = app
        .ingest_as_platform(&key, None, &batch, Some("batch-1"))
        .await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    for org in ["t1", "t2", "t3"] {
        assert_eq!(app.sent_actions(&key, org).await, ["create"], "{org}");
    }
    // The key with another body is refused, and stores nothing either.
    let other = json!({"events": [for_org(event("update"), "t1")]});
    let response = app
        .ingest_as_platform(&key, None, &other, Some("batch-1"))
        .await;
    assert_error(response, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(app.sent_actions(&key, "t1").await, ["create"]);

    // An event's own key is its organization's: the same key for t1 and t2 is two events, and
    // sent again for t1 it is t1's first.
    let keyed = |org: &str| {
        let mut e = for_org(event("update"), org);
        e["idempotency_key"] = json!("e-1");
        e
    };
    let response = app
        .ingest_as_platform(
            &key,
            None,
            &json!({"events": [keyed("t1"), keyed("t2")]}),
            None,
        )
        .await;
    let both: Value = response.json().await.unwrap();
    assert_ne!(both["events"][0]["id"], both["events"][1]["id"]);
    let response = app
        .ingest_as_platform(&key, None, &json!({"events": [keyed("t1")]}), None)
        .await;
    assert_eq!(response.headers()["idempotent-replayed"], "true");
    let again: Value = response.json().await.unwrap();
    assert_eq!(again["events"][0], both["events"][0]);
    assert_eq!(app.sent_actions(&key, "t1").await, ["create", "update"]);
}

#[tokio::test]
async fn without_auto_create_an_unknown_organization_is_an_error_of_its_event() {
    let app = spawn_app_with(|c| c.auto_create_organizations = false).await;
    let key = app.platform_key(ALL).await;
    app.organization(&key, "t1").await;
    let batch =
        json!({"events": [for_org(event("create"), "t1"), for_org(event("create"), "nobody")]});
    let response = app.ingest_as_platform(&key, None, &batch, None).await;
    // A 422 with the batch's other problems (not the header's 404): see api::events.
    let error = assert_error(response, StatusCode::UNPROCESSABLE_ENTITY, "invalid_event").await;
    let details = &error["error"]["details"];
    assert_eq!(
        (&details[0]["index"], &details[0]["field"]),
        (&json!(1), &json!("organization")),
        "{error}"
    );
    assert!(app.sent_actions(&key, "t1").await.is_empty());
    let (status, _) = app
        .platform_json(Method::GET, &key, None, "/v1/organizations/nobody", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn events_for_an_organization_that_records_nothing_are_answered_not_recorded() {
    let app = spawn_app().await;
    let key = app.platform_key(&[Scope::Admin]).await;
    let t1 = app.organization(&key, "t1").await;
    let t2 = app.organization(&key, "t2").await;
    let (status, settings) = app
        .platform_json(
            Method::PATCH,
            &key,
            Some("t2"),
            "/v1/settings",
            Some(&json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    let batch = json!({"events": [
        for_org(event("create"), "t1"),
        for_org(event("create"), "t2"),
        for_org(event("update"), "t1"),
    ]});
    let response = app.ingest_as_platform(&key, None, &batch, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["events"][0]["organization_id"], t1.as_str());
    assert_eq!(
        body["events"][1],
        json!({"organization_id": t2, "recorded": false})
    );
    assert_eq!(body["events"][2]["seq"], 3);
    assert_eq!(app.sent_actions(&key, "t1").await, ["create", "update"]);
    assert!(app.sent_actions(&key, "t2").await.is_empty());
    // Only events for organizations that record nothing: the 202 of a single organization's.
    let only = json!({"events": [for_org(event("create"), "t2")]});
    let response = app.ingest_as_platform(&key, None, &only, None).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(response.headers()["stele-recording"], "disabled");
}

#[tokio::test]
async fn a_new_organization_named_in_the_header_is_made_only_by_a_good_request() {
    let app = spawn_app().await;
    let key = app.platform_key(ALL).await;
    let exists = |external_id: &'static str| {
        let app = &app;
        let key = key.clone();
        async move {
            let (_, list) = app
                .platform_json(
                    Method::GET,
                    &key,
                    None,
                    &format!("/v1/organizations?external_id={external_id}"),
                    None,
                )
                .await;
            !list["organizations"].as_array().unwrap().is_empty()
        }
    };
    let bad = json!({"events": [event("create"), {"action": "Not An Action"}]});
    let response = app
        .as_platform(
            Method::POST,
            &key,
            Some("cust_new"),
            "/v1/events",
            Some(&bad),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        !exists("cust_new").await,
        "a refused batch makes no organization"
    );
    let response = app
        .as_platform(
            Method::POST,
            &key,
            Some("has space"),
            "/v1/events",
            Some(&event("create")),
        )
        .await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "invalid_header").await;
    assert_eq!(error["error"]["details"][0]["field"], "Stele-Organization");

    // A good one makes it, and its retry (same Idempotency-Key) records nothing twice.
    let good = json!({"events": [event("create"), event("update")]});
    let send = || {
        app.client
            .post(format!("{}/v1/events", app.url))
            .bearer_auth(&key)
            .header("Stele-Organization", "cust_new")
            .header("Idempotency-Key", "first-contact")
            .json(&good)
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert!(exists("cust_new").await);
    let again = send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
}

#[tokio::test]
async fn each_event_of_a_batch_is_redacted_by_its_own_organizations_rules() {
    let app = spawn_app().await;
    let key = app.platform_key(ALL).await;
    let admin = app.platform_key(&[Scope::Admin]).await;
    app.organization(&key, "t1").await;
    app.organization(&key, "t2").await;
    let (status, settings) = app
        .platform_json(
            Method::PATCH,
            &admin,
            Some("t1"),
            "/v1/settings",
            Some(&json!({"redaction": {"name_words": ["plan"], "detect_values": false}})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{settings}");
    let sample = || {
        let mut e = event("update");
        e["metadata"] = json!({"plan": "pro", "pin": "1234", "card": "4111 1111 1111 1111"});
        e
    };
    let batch = json!({"events": [for_org(sample(), "t1"), for_org(sample(), "t2")]});
    let response = app.ingest_as_platform(&key, None, &batch, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let stored = |org: &'static str| {
        let app = &app;
        let key = &key;
        async move {
            let (status, page) = app
                .platform_json(
                    Method::GET,
                    key,
                    Some(org),
                    "/v1/events?action=update",
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{page}");
            page["entries"][0]["metadata"].clone()
        }
    };
    let t1 = stored("t1").await;
    assert_eq!(
        t1,
        json!({"card": "4111 1111 1111 1111", "pin": "1234", "plan": "[REDACTED]"})
    );
    assert_eq!(
        stored("t2").await,
        json!({"card": "[REDACTED]", "pin": "[REDACTED]", "plan": "pro"})
    );
    // The preview for the organization the header names is what that organization stored.
    let (status, preview) = app
        .platform_json(
            Method::POST,
            &admin,
            Some("t1"),
            "/v1/redaction/test",
            Some(&json!({"event": sample()})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["event"]["metadata"], t1);
}
