//! Stele's web server: the HTTP API and the web console over the use cases of `stele_service`.
//!
//! - [`app`]: configuration, startup (including the first-start bootstrap), the storage backend
//!   chosen from the configuration, who a request comes from, the shared state and the router.
//! - [`api`]: the HTTP API, a module per resource.
//! - [`console`]: the web console, server-rendered HTML.
//! - [`compat`]: other audit-log services' wire protocols (so far Retraced's receipt hash).
//!
//! `api` and `console` import `app`'s state and client address and the service crate, never each
//! other; only `app::router` sees both. The `stele` binary is a thin shell around
//! [`Application`], and the integration tests drive it on port 0.

pub mod app;
pub mod compat;
pub mod console;

mod api;

pub use api::openapi::document_json as openapi_json;
pub use app::config::Config;
pub use app::startup::Application;
