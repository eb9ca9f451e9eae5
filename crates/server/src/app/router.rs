//! The one router: the v1 API and the compatible print-log routes (`crate::api`), the web
//! console (`crate::console`), the doors for other services' clients (`crate::compat`),
//! `/metrics` (unless it has a listener of its own), and what applies to all of them (the body
//! limit, the JSON 404, the check that paths are text, the request metrics, the request id and
//! the request log).

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::api;
use crate::api::error::ApiError;
use crate::app::config::Config;
use crate::app::cors;
use crate::app::metrics;
use crate::app::request_log;
use crate::app::state::AppState;
use crate::compat;
use crate::console;

pub fn router(state: AppState, config: &Config) -> Router {
    let mut router = private(api::router())
        // Browsers on allowed origins may read the API with a viewer token (`crate::app::cors`).
        .layer(cors::layer(state.clone()))
        .merge(console::router(state.clone()))
        .merge(console::embed::router(state.clone()))
        // WorkOS's routes sit at the root: its SDK drops any path prefix of the host it is given.
        .merge(private(compat::workos::router()))
        .merge(private(compat::retraced::router()));
    if config.metrics_listen.is_none() {
        router = router.merge(metrics_router());
    }
    router
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware::from_fn(readable_path))
        .layer(middleware::from_fn(metrics::track))
        // Outermost: every answer, refusals by the layers above included, has its id and line.
        .layer(request_log::layer())
        .layer(middleware::from_fn(request_log::request_id))
        .with_state(state)
}

/// `/metrics` alone: merged into the main router, or served on `--metrics-listen`.
pub fn metrics_router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new().route("/metrics", get(metrics::render))
}

/// Every path parameter is text: a path that is not UTF-8 once percent-decoded (`/v1/events/%FF`)
/// is refused here, in the API's JSON, rather than by axum's `Path` with a text body.
async fn readable_path(request: Request, next: Next) -> Response {
    if percent_encoding::percent_decode_str(request.uri().path())
        .decode_utf8()
        .is_err()
    {
        return ApiError::bad_request(
            "invalid_path",
            "the request's path is not valid UTF-8 once percent-decoded",
        )
        .into_response();
    }
    next.run(request).await
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
