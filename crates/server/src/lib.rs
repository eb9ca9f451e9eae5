//! Stele's HTTP server as a library: configuration, startup (including the first-start
//! bootstrap), API keys, console members, the HTTP layer and the web console. The `stele` binary is a thin shell around it, and
//! the integration tests drive it through [`startup::Application`] on port 0.

pub mod activity;
pub mod archive;
pub mod clock;
pub mod config;
pub mod console;
pub mod export;
pub mod export_jobs;
pub mod integrity;
pub mod keys;
pub mod members;
pub mod net;
pub mod policy;
pub mod print_log;
pub mod retention;
pub mod scheduler;
pub mod startup;
pub mod storage;

mod http;

pub use config::Config;
pub use startup::Application;
