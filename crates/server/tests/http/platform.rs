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
    async fn platform_key(&self, scopes: &[Scope]) -> String {
        let platform = self.store.platform_org().await.unwrap();
        let key = api_keys::generate("platform", scopes.to_vec());
        self.store
            .create_api_key(platform.key, key.record)
            .await
            .unwrap();
        key.secret
    }

    /// A request with `key`, acting for `org` (the `Stele-Organization` header) when given.
    async fn as_platform(
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

    async fn platform_json(
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

    // Ingest without naming one is refused: it would write into the platform's own trail.
    let response = app
        .as_platform(
            Method::POST,
            &key,
            None,
            "/v1/events",
            Some(&event("create")),
        )
        .await;
    let error = assert_error(response, StatusCode::BAD_REQUEST, "organization_required").await;
    assert_eq!(error["error"]["details"][0]["field"], "Stele-Organization");

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
