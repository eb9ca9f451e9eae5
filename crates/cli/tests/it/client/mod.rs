//! stele-client (crates/client) against a real `stele serve` of this binary, a process of its
//! own on a temporary data directory: what the client records is what the server stores, once,
//! through a server killed and started again and an answer lost after the commit, with refused
//! events reported and a platform key's events going to their organizations; and its tower layer
//! inside an axum application. Here rather than in crates/client so that the server is always
//! this tree's (`CARGO_BIN_EXE_stele` exists only for the tests of the `stele` package).

mod delivery;
mod layer;
mod platform;
mod restart;
mod server;
