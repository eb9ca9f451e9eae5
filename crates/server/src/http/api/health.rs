//! `/readyz`: ready when the store answers.

use axum::extract::State;
use axum::http::StatusCode;

use crate::http::AppState;

pub async fn ready(State(state): State<AppState>) -> (StatusCode, &'static str) {
    match state.store.list_orgs().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "not ready"),
    }
}
