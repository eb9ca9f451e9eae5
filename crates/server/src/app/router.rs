//! The one router: the v1 API and the compatible print-log routes (`crate::api`), the web
//! console (`crate::console`), the doors for other services' clients (`crate::compat`), and
//! what applies to all of them (the body limit, the JSON 404).

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::api;
use crate::app::config::Config;
use crate::app::cors;
use crate::app::state::AppState;
use crate::compat;
use crate::console;

pub fn router(state: AppState, config: &Config) -> Router {
    api::router()
        // Browsers on allowed origins may read the API with a viewer token (`crate::app::cors`).
        .layer(cors::layer(state.clone()))
        .merge(console::router(state.clone()))
        .merge(console::embed::router(state.clone()))
        // WorkOS's routes sit at the root: its SDK drops any path prefix of the host it is given.
        .merge(compat::workos::router())
        .merge(compat::retraced::router())
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
}
