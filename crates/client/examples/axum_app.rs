//! An axum application that records an audit event from a handler, with the request's context
//! (client address, user agent, request id, correlation id) filled by `SteleContextLayer`.
//!
//! Start a Stele (`cargo run -p stele -- serve`), then run this with its key:
//!
//! ```sh
//! STELE_URL=http://127.0.0.1:8080 STELE_KEY=stele_… cargo run -p stele-client --example axum_app
//! curl -X PUT http://127.0.0.1:3000/printers/42 -H 'content-type: application/json' \
//!   -H 'x-user-id: u1' -H 'x-request-id: req-1' -d '{"name": "Alpha"}'
//! curl -H "Authorization: Bearer $STELE_KEY" 'http://127.0.0.1:8080/v1/events?entity_type=Printer'
//! ```
//!
//! Behind a reverse proxy, name it in `TRUSTED_PROXIES` (`10.0.0.0/8,192.0.2.1`) so that the
//! client address comes from its `X-Forwarded-For`. Ctrl-C stops the app after the client has
//! sent what it queued.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::put;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use stele_client::{Actor, Client, Entity, Event, RequestContext, SteleContextLayer};

#[derive(Clone)]
struct App {
    stele: Client,
    /// The application's own data: printer names by id.
    printers: Arc<Mutex<HashMap<u64, String>>>,
}

#[derive(serde::Deserialize)]
struct Rename {
    name: String,
}

/// `PUT /printers/{id}`: renames a printer and records who did it, from where.
async fn rename(
    State(app): State<App>,
    Extension(context): Extension<RequestContext>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    Json(rename): Json<Rename>,
) -> Result<Json<Value>, (StatusCode, String)> {
    // Your authentication says who the user is; this example trusts a header.
    let user = headers
        .get("x-user-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("anonymous")
        .to_string();
    let before = app.printers.lock().unwrap().insert(id, rename.name.clone());
    let event = Event::builder("update")
        .detailed_action("printer.rename")
        .actor(Actor::user(user))
        .entity(Entity::new("Printer", id).name(&rename.name))
        .before(json!({ "name": before }))
        .after(json!({ "name": rename.name }))
        .context(&context)
        .build()
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    // Enqueued; sent in the background, in a batch.
    app.stele
        .record(event)
        .await
        .map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e.to_string()))?;
    Ok(Json(json!({ "id": id, "name": rename.name })))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("STELE_URL").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let key = std::env::var("STELE_KEY").map_err(|_| "set STELE_KEY to a key with `ingest`")?;
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let proxies = std::env::var("TRUSTED_PROXIES").unwrap_or_default();

    let stele = Client::builder(url, key).build()?;
    let layer = SteleContextLayer::new()
        .trusted_proxies(proxies.split(',').filter(|p| !p.trim().is_empty()))?;
    let app = Router::new()
        .route("/printers/{id}", put(rename))
        .with_state(App {
            stele: stele.clone(),
            printers: Arc::default(),
        })
        .layer(layer);

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    // `ConnectInfo` gives the layer the TCP peer's address.
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    // Without this, events still queued would be lost when the process exits.
    let stats = stele.shutdown().await?;
    println!(
        "stopped: {} events delivered, {} failed",
        stats.delivered, stats.failed
    );
    Ok(())
}
