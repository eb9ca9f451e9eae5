//! The streamed export download: the response `GET /v1/export` and the console's Export buttons
//! both answer with. The export itself (walk, encoding, its own entry) is
//! `stele_service::export`; this module only feeds it into a response body.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use stele_core::time::{Millis, now_millis};
use stele_core::{Actor, Context};
use stele_service::clock::SystemClock;
use stele_service::export::{self, Export, ExportRequest, Exporter, Sink};
use stele_store::OrgKey;
use tokio::sync::mpsc;

use crate::api::error::{ApiError, Result};
use crate::app::state::AppState;

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

/// Streams the export the query parameters ask for as a download, and records it in the trail
/// with `actor` and `context` (an API key here, a signed-in member in the console).
pub async fn stream(
    state: &AppState,
    org: OrgKey,
    params: &[(String, String)],
    actor: Actor,
    context: Context,
) -> Result<Response> {
    let request = ExportRequest::from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    stream_request(state, org, request, actor, context).await
}

/// Streams export `request` as a download and records it in the trail (see [`stream`]): for a
/// door that builds the request itself (the Retraced viewer's saved exports).
pub async fn stream_request(
    state: &AppState,
    org: OrgKey,
    request: ExportRequest,
    actor: Actor,
    context: Context,
) -> Result<Response> {
    let export = Export::start(state.store.as_ref(), org, request, now_millis()).await?;
    let (format, exported_at) = (export.request().format, export.exported_at());

    let (tx, mut rx) = mpsc::channel::<Chunk>(CHANNEL_CHUNKS);
    let store = state.store.clone();
    tokio::spawn(async move {
        let mut sink = ChannelSink(tx);
        let by = Exporter { actor, context };
        let done = export
            .run(store.as_ref(), &mut sink, by, &SystemClock)
            .await;
        if let Some(e) = &done.summary.error {
            tracing::warn!(error = %e, written = done.summary.entries, "export stopped by the store");
        }
        if let Err(e) = &done.recorded {
            tracing::error!(error = %e, "the export could not be recorded in the trail");
        }
        // If the entry could not be recorded, or the store failed midway, the body ends with an
        // error: the download fails visibly instead of looking complete.
        if done.summary.error.is_some() || done.recorded.is_err() {
            let _ = sink
                .0
                .send(Err(std::io::Error::other("the export failed midway")))
                .await;
        }
    });

    let body = Body::from_stream(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)));
    file_response(format, exported_at, None, body)
}

/// An export file as a download (`audit-log-<time>.<ext>`, never cached or sniffed): a streamed
/// export's, or an export job's file with its length.
pub(crate) fn file_response(
    format: export::Format,
    exported_at: Millis,
    length: Option<u64>,
    body: Body,
) -> Result<Response> {
    let disposition = format!(
        "attachment; filename=\"{}\"",
        export::file_name(format, exported_at)
    );
    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, format.content_type())
        .header(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&disposition)
                .map_err(|e| ApiError::Internal(format!("content-disposition: {e}")))?,
        );
    if let Some(length) = length {
        response = response.header(header::CONTENT_LENGTH, length);
    }
    response
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(body)
        .map_err(|e| ApiError::Internal(format!("building the download response: {e}")))
}
