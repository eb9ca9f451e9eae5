//! The layer in an axum application served over TCP: a handler records with the context the
//! layer found, and the stored entry shows it.

use std::net::SocketAddr;

use axum::extract::State;
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde_json::Value;
use stele_client::{Actor, Client, Event, Receipt, RequestContext, SteleContextLayer};

use crate::support::{Server, serve_sqlite};

async fn record(
    State(stele): State<Client>,
    Extension(context): Extension<RequestContext>,
) -> Json<Value> {
    let event = Event::builder("view")
        .actor(Actor::user("u1"))
        .context(&context)
        .build()
        .unwrap();
    match stele.record_and_wait(event).await.unwrap() {
        Receipt::Stored { id, .. } => Json(serde_json::json!({ "id": id })),
        other => panic!("{other:?}"),
    }
}

/// Serves the app with the layer on a free port; returns its URL.
async fn serve(stele: Client, layer: SteleContextLayer) -> String {
    let app = Router::new()
        .route("/record", post(record))
        .with_state(stele)
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    url
}

/// Calls the app with these headers; returns the context of the entry it recorded.
async fn recorded_context(
    app: &str,
    server: &Server,
    key: &str,
    headers: &[(&str, &str)],
) -> Value {
    let http = reqwest::Client::new();
    let mut request = http.post(format!("{app}/record"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let answer: Value = request.send().await.unwrap().json().await.unwrap();
    let id = answer["id"].as_str().unwrap();
    let entry: Value = http
        .get(format!("{}/v1/events/{id}", server.url))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    entry["context"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_records_the_context_the_layer_found() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_sqlite(dir.path(), &[]);
    let key = server.admin_key();
    let stele = Client::builder(&server.url, &key).build().unwrap();

    // No trusted proxy: the peer (this test, on loopback) is the client, whatever
    // X-Forwarded-For claims.
    let app = serve(stele.clone(), SteleContextLayer::new()).await;
    let context = recorded_context(
        &app,
        &server,
        &key,
        &[
            ("user-agent", "client-test/1.0"),
            ("x-request-id", "req-77"),
            ("x-forwarded-for", "198.51.100.7"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        ],
    )
    .await;
    assert_eq!(context["ip"], "127.0.0.1");
    assert_eq!(context["user_agent"], "client-test/1.0");
    assert_eq!(context["request_id"], "req-77");
    assert_eq!(
        context["correlation_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );

    // Behind a trusted proxy (loopback, here), its X-Forwarded-For names the client.
    let behind = serve(
        stele.clone(),
        SteleContextLayer::new()
            .trusted_proxies(["127.0.0.0/8"])
            .unwrap(),
    )
    .await;
    let context = recorded_context(
        &behind,
        &server,
        &key,
        &[
            ("x-forwarded-for", "203.0.113.50, 198.51.100.7"),
            ("x-correlation-id", "order-9"),
        ],
    )
    .await;
    assert_eq!(context["ip"], "198.51.100.7");
    assert_eq!(context["correlation_id"], "order-9");
    stele.shutdown().await.unwrap();
}
