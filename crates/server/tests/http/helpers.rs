use reqwest::{Client, Method, Response, StatusCode};
use serde_json::{Value, json};
use stele_server::app::backend::DatabaseUrl;
use stele_server::{Application, Config};
use stele_service::access::api_keys;
use stele_store::{Scope, Store};
use tokio::sync::oneshot;

pub use crate::Backend;

pub struct TestApp {
    pub url: String,
    /// `/metrics`'s own address, when the test gave it one (`Config::metrics_listen`).
    pub metrics_url: Option<String>,
    pub key: String,
    pub client: Client,
    pub store: std::sync::Arc<dyn Store>,
    _dir: tempfile::TempDir,
    _stop: oneshot::Sender<()>,
    /// Dropped last: the PostgreSQL database of this test, if it runs on PostgreSQL.
    _database: Option<stele_store_postgres::testing::TestDatabase>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let database = match super::BACKEND {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let (database, url) = stele_store_postgres::testing::TestDatabase::create().await;
            config.database_url = Some(DatabaseUrl::parse(&url).unwrap());
            Some(database)
        }
    };
    adjust(&mut config);
    let app = Application::build(config).await.expect("app builds");
    let url = app.url();
    let metrics_url = app.metrics_addr().map(|addr| format!("http://{addr}"));
    let key = app
        .bootstrap()
        .expect("fresh directory bootstraps")
        .admin_key
        .clone();
    let store = app.store();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    TestApp {
        url,
        metrics_url,
        key,
        client: Client::new(),
        store,
        _dir: dir,
        _stop: stop,
        _database: database,
    }
}

/// A minimal valid event.
pub fn event(action: &str) -> Value {
    json!({"action": action, "actor": {"type": "user", "id": "u1", "email": "ada@example.com", "name": "Ada"}})
}

impl TestApp {
    /// The server's data directory (export files are in `exports/` there).
    #[allow(dead_code)]
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// A key for a new organization (or the default one when `org` exists) with these scopes.
    pub async fn key_for(&self, org: &str, scopes: &[Scope]) -> String {
        let org = match self.store.find_org(org).await {
            Ok(org) => org,
            Err(_) => self.store.create_org(org).await.unwrap(),
        };
        let key = api_keys::generate("test", scopes.to_vec());
        self.store
            .create_api_key(org.key, key.record)
            .await
            .unwrap();
        key.secret
    }

    /// A request with this method, key and JSON body to `path`.
    pub async fn send_json_as(
        &self,
        method: Method,
        key: &str,
        path: &str,
        body: &Value,
    ) -> Response {
        self.client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `POST` of this JSON body to `path` without an API key.
    pub async fn post_json_anonymous(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// The stored record of the API key with this secret.
    pub async fn key_record(&self, secret: &str) -> stele_store::ApiKeyInfo {
        self.store
            .authenticate(&api_keys::hash(secret))
            .await
            .unwrap()
            .expect("the key exists")
    }

    pub async fn post_events_as(&self, key: &str, body: &Value) -> Response {
        self.send_json_as(Method::POST, key, "/v1/events", body)
            .await
    }

    pub async fn post_events(&self, body: &Value) -> Response {
        self.post_events_as(&self.key, body).await
    }

    /// A request with this method and a raw body of this content type to `path`, with the
    /// admin key.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Response {
        self.client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_raw(&self, content_type: &str, body: impl Into<reqwest::Body>) -> Response {
        self.send_raw(Method::POST, "/v1/events", content_type, body)
            .await
    }

    /// `POST /v1/erasure` with this body.
    pub async fn post_erasure_as(&self, key: &str, body: &Value) -> Response {
        self.send_json_as(Method::POST, key, "/v1/erasure", body)
            .await
    }

    /// Erases with the admin key and returns the answer, asserting 200.
    pub async fn erase(&self, body: &Value) -> Value {
        let response = self.post_erasure_as(&self.key, body).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// Records the events and returns their receipts, asserting 201.
    pub async fn record(&self, events: Vec<Value>) -> Vec<Value> {
        let response = self.post_events(&json!({ "events": events })).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["events"].as_array().unwrap().clone()
    }

    pub async fn get_as(&self, key: &str, path_and_query: &str) -> Response {
        self.client
            .get(format!("{}{}", self.url, path_and_query))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path_and_query: &str) -> Response {
        self.get_as(&self.key, path_and_query).await
    }

    /// GET without an API key.
    pub async fn get_anonymous(&self, path_and_query: &str) -> Response {
        self.client
            .get(format!("{}{}", self.url, path_and_query))
            .send()
            .await
            .unwrap()
    }

    /// GET with this key, its body as JSON whatever the status.
    pub async fn get_json_as(&self, key: &str, path_and_query: &str) -> Value {
        self.get_as(key, path_and_query).await.json().await.unwrap()
    }

    /// GET with the admin key that must answer a JSON error with this status and code (see
    /// [`assert_error`]); returns its body.
    pub async fn get_error(&self, path_and_query: &str, status: StatusCode, code: &str) -> Value {
        assert_error(self.get(path_and_query).await, status, code).await
    }

    /// GET with this key that must answer a JSON error with this status and code (see
    /// [`assert_error`]); returns its body.
    pub async fn get_error_as(
        &self,
        key: &str,
        path_and_query: &str,
        status: StatusCode,
        code: &str,
    ) -> Value {
        assert_error(self.get_as(key, path_and_query).await, status, code).await
    }

    /// GET that must succeed, as JSON.
    pub async fn get_json(&self, path_and_query: &str) -> Value {
        let response = self.get(path_and_query).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path_and_query}");
        response.json().await.unwrap()
    }

    /// The seqs of every entry the list returns for `query`, walking `next_cursor`.
    pub async fn seqs(&self, query: &str) -> Vec<i64> {
        let mut out = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let mut q = format!("/v1/events?{query}");
            if let Some(c) = &cursor {
                q.push_str(&format!("&cursor={c}"));
            }
            let page = self.get_json(&q).await;
            out.extend(
                page["entries"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["seq"].as_i64().unwrap()),
            );
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => return out,
            }
        }
    }
}

/// Asserts that `entry` is the trail entry of an export by this API key: `audit_log.export` on
/// the `compliance` channel, a success.
pub fn assert_export_entry(entry: &Value, key: &stele_store::ApiKeyInfo) {
    assert_eq!(entry["detailed_action"], "audit_log.export");
    assert_eq!(entry["channel"], "compliance");
    assert_eq!(entry["outcome"], "success");
    assert_eq!(
        entry["actor"],
        json!({"type": "api", "id": key.id, "name": key.name})
    );
}

/// Asserts a JSON error with this status and code, and returns its body.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "errors are JSON"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    body
}
