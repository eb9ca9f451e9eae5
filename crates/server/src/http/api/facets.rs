//! `/v1/facets`: the values present in the organization's data, for dropdowns and suggestions.

use axum::Json;
use axum::extract::State;
use stele_store::{Facets, Scope};

use crate::http::AppState;
use crate::http::auth::Authenticated;
use crate::http::error::Result;

pub async fn show(State(state): State<AppState>, auth: Authenticated) -> Result<Json<Facets>> {
    auth.require(Scope::Read)?;
    Ok(Json(state.store.facets(auth.key.org).await?))
}
