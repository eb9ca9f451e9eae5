//! `GET /v1/export`: the entries a list query matches, all of them, streamed as a CSV, JSON or
//! NDJSON download (export scope). The export is `stele_service::export`, shared with the
//! console, `stele export` and export jobs; the response is `crate::app::download`'s.

use axum::extract::State;
use axum::response::Response;
use stele_store::Scope;

use super::{Params, params};
use crate::api::auth::Reader;
use crate::api::error::Result;
use crate::api::openapi::schemas;
use crate::app::download;
use crate::app::state::AppState;

#[utoipa::path(
    get, path = "/v1/export", tag = "export", operation_id = "exportEvents",
    summary = "Export the trail",
    description = "Every entry the same list query matches, newest first, streamed as CSV, JSON or NDJSON. Needs the `export` scope; the export is recorded in the trail.",
    responses(
        (status = 200, description = "Every matching entry, newest first, as a download (the export is recorded)", content( (String = "text/csv"), (Vec<schemas::Entry> = "application/json"), (String = "application/x-ndjson"))),
    ),
)]
pub async fn download(
    State(state): State<AppState>,
    reader: Reader,
    query: Params,
) -> Result<Response> {
    reader.require(Scope::Export)?;
    let params = reader.params(params(query)?);
    let (actor, context) = reader.actor();
    download::stream(&state, reader.org(), &params, actor, context).await
}
