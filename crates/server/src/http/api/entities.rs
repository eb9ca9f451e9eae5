//! `/v1/entities/{type}/{id}/events`: the history of one record.

use axum::Json;
use axum::extract::{Path, State};
use serde_json::Value;
use stele_core::ActorType;
use stele_store::Scope;

use super::{Params, page_json, page_request, params};
use crate::http::AppState;
use crate::http::auth::Authenticated;
use crate::http::error::Result;

/// Every entry that names the record, as its primary entity or among bulk `entity_ids`, with the
/// list's filters. Unlike the list, a record's history includes System actors unless
/// `actor_type` says otherwise: it is meant to be the whole story of that record.
pub async fn history(
    State(state): State<AppState>,
    auth: Authenticated,
    Path((entity_type, entity_id)): Path<(String, String)>,
    query: Params,
) -> Result<Json<Value>> {
    auth.require(Scope::Read)?;
    let params = params(query)?;
    let mut request = page_request(&params)?;
    if !params
        .iter()
        .any(|(k, v)| k == "actor_type" && !v.trim().is_empty())
    {
        request.filter.actor_types = ActorType::ALL.to_vec();
    }
    request.filter.entity_type = Some(entity_type);
    request.filter.entity_id = Some(entity_id);
    let page = state.store.list(auth.key.org, &request).await?;
    Ok(Json(page_json(page)))
}
