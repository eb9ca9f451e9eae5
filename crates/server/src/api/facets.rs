//! `/v1/facets`: the values present in the organization's data, for dropdowns and suggestions
//! (actions, channels, entity and actor types: no personal data, so a viewer token reads them too).

use axum::Json;
use axum::extract::State;
use stele_store::{Facets, Scope};

use crate::api::auth::Reader;
use crate::api::error::Result;
use crate::api::openapi::schemas;
use crate::app::state::AppState;

#[utoipa::path(
    get, path = "/v1/facets", tag = "events", operation_id = "getFacets",
    summary = "Values present",
    description = "The actions, detailed actions, entity types, channels and actor types present in the organization's data, for dropdowns.",
    responses(
        (status = 200, description = "The values present in the organization's data", body = schemas::Facets),
    ),
)]
pub async fn show(State(state): State<AppState>, reader: Reader) -> Result<Json<Facets>> {
    reader.require(Scope::Read)?;
    Ok(Json(state.store.facets(reader.org()).await?))
}
