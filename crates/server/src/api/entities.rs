//! `/v1/entities/{type}/{id}/events`: the history of one record.

use axum::Json;
use axum::extract::{Path, State};
use stele_core::PageRequest;
use stele_store::Scope;

use super::{PageBody, Params, params};
use crate::api::auth::Authenticated;
use crate::api::error::Result;
use crate::api::openapi::schemas;
use crate::app::state::AppState;

/// Every entry that names the record, as its primary entity or among bulk `entity_ids`, with the
/// list's filters. Unlike the list, a record's history includes System actors unless
/// `actor_type` says otherwise: it is meant to be the whole story of that record.
#[utoipa::path(
    get, path = "/v1/entities/{entity_type}/{entity_id}/events", tag = "events", operation_id = "listEntityEvents",
    summary = "A record's history",
    description = "Every entry naming the record, as its primary or a related entity or in a bulk action's `entity_ids`, with the list's filters. System actors are included unless `actor_type` says otherwise.",
    responses(
        (status = 200, description = "Every entry naming the record, System actors included", body = schemas::Page),
    ),
)]
pub async fn history(
    State(state): State<AppState>,
    auth: Authenticated,
    Path((entity_type, entity_id)): Path<(String, String)>,
    query: Params,
) -> Result<Json<PageBody>> {
    auth.require(Scope::Read)?;
    let params = params(query)?;
    let request = PageRequest::for_record(
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &entity_type,
        &entity_id,
    )?;
    let page = state.store.list(auth.key.org, &request).await?;
    Ok(Json(PageBody::from(page)))
}
