//! `GET /v1/export`: the entries a list query matches, all of them, streamed as a CSV, JSON or
//! NDJSON download (export scope). The export is `stele_service::export`, shared with the
//! console, `stele export` and export jobs; the response is `crate::app::download`'s.

use axum::extract::State;
use axum::response::Response;
use stele_store::Scope;

use super::{Params, params};
use crate::api::auth::Authenticated;
use crate::api::error::Result;
use crate::app::download;
use crate::app::state::AppState;

pub async fn download(
    State(state): State<AppState>,
    auth: Authenticated,
    query: Params,
) -> Result<Response> {
    auth.require(Scope::Export)?;
    let params = params(query)?;
    let (actor, context) = auth.actor();
    download::stream(&state, auth.key.org, &params, actor, context).await
}
