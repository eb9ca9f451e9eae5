//! The `stele` binary's tests, as an operator runs it: real processes, real files, the real
//! PostgreSQL server. One test binary (one link of the whole server) holding a module per area.

mod archive;
mod cli;
mod client;
mod cluster;
mod deploy;
mod import;
mod independent_verifier;
mod integrity;
mod outage;
mod retention;
mod streams;
mod support;
