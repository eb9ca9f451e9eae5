//! The one router: the v1 API and the compatible print-log routes (`crate::api`), the web
//! console (`crate::console`), and what applies to all of them (the body limit, the JSON 404).

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::api;
use crate::app::config::Config;
use crate::app::state::AppState;
use crate::console;

pub fn router(state: AppState, config: &Config) -> Router {
    api::router()
        .layer(cors(&config.embed_origins))
        .merge(console::router(state.clone()))
        .merge(console::embed::router(state.clone()))
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .with_state(state)
}

/// Browsers on the origins allowed to embed the viewer may call the API with a viewer token (or a
/// key) from their own script: `GET` only, with the `Authorization` and `Stele-Organization`
/// headers. No other origin gets an allowance (without `--embed-origins`, none does).
fn cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::HEAD])
        .allow_headers([
            header::AUTHORIZATION,
            HeaderName::from_static(crate::api::auth::ORGANIZATION_HEADER),
        ])
}
