//! The scenarios, one module each; `run` in main.rs chooses (`--scenarios`) and orders them.

pub(crate) mod compat;
pub(crate) mod copy;
pub(crate) mod count;
pub(crate) mod disk;
pub(crate) mod erasure;
pub(crate) mod export;
pub(crate) mod ingest;
pub(crate) mod orgs;
pub(crate) mod proof;
pub(crate) mod prune;
pub(crate) mod query;
pub(crate) mod raw_sqlite;
pub(crate) mod single;
pub(crate) mod soak;
pub(crate) mod startup;
pub(crate) mod streams;
pub(crate) mod tenants;
pub(crate) mod verify;
pub(crate) mod visibility;
