//! What the web doors stand on: configuration, startup, the storage backend, the client's
//! address, the state every handler shares, and the router that joins the API and the console.

pub mod backend;
pub mod client_ip;
pub mod config;
pub mod cors;
pub(crate) mod download;
pub mod logging;
pub mod metrics;
pub mod request_log;
pub mod router;
pub mod serve;
pub mod startup;
pub mod state;
