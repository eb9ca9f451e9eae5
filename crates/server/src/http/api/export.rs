//! `GET /v1/export`: the entries a list query matches, all of them, streamed as a CSV, JSON or
//! NDJSON download (export scope). The encoding lives in [`crate::export`], shared with
//! `stele export`.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use stele_core::time::now_millis;
use stele_core::{Actor, Context};
use stele_store::{OrgId, Scope};
use tokio::sync::mpsc;

use super::{Params, params};
use crate::export::{self, Encoder, ExportRequest, Sink, Walk};
use crate::http::AppState;
use crate::http::auth::Authenticated;
use crate::http::error::{ApiError, Result};

type Chunk = std::result::Result<Bytes, std::io::Error>;

/// Chunks (pages) buffered between the export task and the connection: enough to keep the
/// connection busy while the next page is read, few enough that memory stays flat.
const CHANNEL_CHUNKS: usize = 2;

struct ChannelSink(mpsc::Sender<Chunk>);

impl Sink for ChannelSink {
    async fn send(&mut self, chunk: Vec<u8>) -> bool {
        // The receiver is the response body; it is dropped when the client disconnects.
        self.0.send(Ok(Bytes::from(chunk))).await.is_ok()
    }
}

pub async fn download(
    State(state): State<AppState>,
    auth: Authenticated,
    query: Params,
) -> Result<Response> {
    auth.require(Scope::Export)?;
    let params = params(query)?;
    let (actor, context) = auth.actor();
    stream(&state, auth.key.org, &params, actor, context).await
}

/// Streams the export the query parameters ask for as a download, and records it in the trail
/// with `actor` and `context` (an API key here, a signed-in member in the console).
pub async fn stream(
    state: &AppState,
    org: OrgId,
    params: &[(String, String)],
    actor: Actor,
    context: Context,
) -> Result<Response> {
    let request = ExportRequest::from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let exported_at = now_millis();
    let mut walk = Walk::new(request.filter.clone());
    // The first page is read before answering, so an unavailable store is still a 503 JSON error
    // rather than a download that breaks off at its first byte.
    let first = walk
        .next_page(state.store.as_ref(), org)
        .await?
        .unwrap_or_default();

    let (tx, mut rx) = mpsc::channel::<Chunk>(CHANNEL_CHUNKS);
    let store = state.store.clone();
    let task_request = request.clone();
    tokio::spawn(async move {
        let encoder = Encoder::new(&task_request, exported_at);
        let mut sink = ChannelSink(tx);
        let summary = export::pump(store.as_ref(), org, &mut walk, first, encoder, &mut sink).await;
        if let Some(e) = &summary.error {
            tracing::warn!(error = %e, written = summary.entries, "export stopped by the store");
        }
        let event = export::export_record(actor, context, &task_request, &summary, now_millis());
        // The entry is recorded before the body ends, so a client that has the whole file finds
        // its export in the trail. If it cannot be recorded, or the store failed midway, the
        // body ends with an error: the download fails visibly instead of looking complete.
        let recorded = export::record(store.as_ref(), org, event).await;
        if let Err(e) = &recorded {
            tracing::error!(error = %e, "the export could not be recorded in the trail");
        }
        if summary.error.is_some() || recorded.is_err() {
            let _ = sink
                .0
                .send(Err(std::io::Error::other("the export failed midway")))
                .await;
        }
    });

    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    let disposition = format!(
        "attachment; filename=\"{}\"",
        export::file_name(request.format, exported_at)
    );
    Response::builder()
        .header(header::CONTENT_TYPE, request.format.content_type())
        .header(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&disposition)
                .map_err(|e| ApiError::Internal(format!("content-disposition: {e}")))?,
        )
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(body)
        .map_err(|e| ApiError::Internal(format!("building the export response: {e}")))
}
