//! Stele's HTTP server as a library: configuration, startup (including the first-start
//! bootstrap), API keys, console members, the HTTP layer and the web console. The `stele` binary is a thin shell around it, and
//! the integration tests drive it through [`startup::Application`] on port 0.

pub mod config;
pub mod console;
pub mod net;
pub mod startup;
pub mod storage;

mod http;

pub use config::Config;
pub use startup::Application;
