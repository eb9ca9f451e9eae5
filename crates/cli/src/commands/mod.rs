//! The operator's commands, one module each. Each parses what the command line gave and calls
//! the use case in `stele_service` (or the server, for `serve`), as the HTTP API does.

pub mod archive;
pub mod erase;
pub mod export;
pub mod import;
pub mod key;
pub mod open;
pub mod org;
pub mod proof;
pub mod prune;
pub mod serve;
pub mod stream;
pub mod user;
pub mod verify;
