//! The one router: the v1 API and the compatible print-log routes (`crate::api`), the web
//! console (`crate::console`), the doors for other services' clients (`crate::compat`), and
//! what applies to all of them (the body limit, the JSON 404).

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::api;
use crate::app::config::Config;
use crate::app::cors;
use crate::app::state::AppState;
use crate::compat;
use crate::console;

pub fn router(state: AppState, config: &Config) -> Router {
    private(api::router())
        // Browsers on allowed origins may read the API with a viewer token (`crate::app::cors`).
        .layer(cors::layer(state.clone()))
        .merge(console::router(state.clone()))
        .merge(console::embed::router(state.clone()))
        // WorkOS's routes sit at the root: its SDK drops any path prefix of the host it is given.
        .merge(private(compat::workos::router()))
        .merge(private(compat::retraced::router()))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
}

/// The API's answers hold audit entries (personal data among them) and secrets shown once: no
/// cache may keep them (`Cache-Control: no-store`, unless a route says otherwise), and no browser
/// may guess their type from their content (`X-Content-Type-Options: nosniff`).
fn private(routes: Router<AppState>) -> Router<AppState> {
    routes
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}
