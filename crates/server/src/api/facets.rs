//! `/v1/facets`: the values present in the organization's data, for dropdowns and suggestions.

use axum::Json;
use axum::extract::State;
use stele_store::{Facets, Scope};

use crate::api::auth::Authenticated;
use crate::api::error::Result;
use crate::app::state::AppState;

pub async fn show(State(state): State<AppState>, auth: Authenticated) -> Result<Json<Facets>> {
    auth.require(Scope::Read)?;
    Ok(Json(state.store.facets(auth.key.org).await?))
}
