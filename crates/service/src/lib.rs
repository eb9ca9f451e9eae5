//! Stele's use cases, each one function that every door calls: the HTTP API, the web console and
//! the command line are thin layers over this crate, so a rule lives in one place and the doors
//! cannot drift apart.
//!
//! - [`trail`]: Stele's own entries in an organization's trail (`trail::record`) and what they say.
//! - [`action_schemas`]: what each action's events must carry, in versions (the WorkOS door's
//!   schemas), and the check of an event against one.
//! - [`access`]: API keys, members and their passwords, roles and permissions, and each
//!   organization's policy (recording on or off, IP allowlist).
//! - [`export`]: an export in any format, streamed or as a job, and its own entry.
//! - [`organizations`]: organizations created and changed for a platform, and finding the one a
//!   request names.
//! - [`erasure`]: GDPR erasure of one person, in the trail and the retention archive.
//! - [`integrity`]: verifying a chain, in full or since the last verification, and the
//!   background verification of every chain.
//! - [`retention`]: a retention run, its schedule and the archive it writes to.
//! - [`print_log`]: the print log's permissions, requests and the audit entries its changes write.
//! - [`retraced`]: Retraced's search, its embedded viewer's saved exports and API tokens.
//! - [`settings`]: an organization's settings, checked, saved and recorded.
//! - [`redaction`]: checking an organization's redaction rules, and the preview of an event
//!   stored under them.
//! - [`streams`]: log streams: each organization's trail delivered to its SIEM (webhooks,
//!   syslog), their configuration, health and the deliveries themselves.
//! - [`secrets`]: the checkpoint signing key and the secrets derived from it.
//! - [`clock`] and [`random`]: time and randomness, the effects every use case takes from here.
//! - [`low_priority`]: a thread that yields the cores to the server's requests.
//!
//! This crate depends on no web framework, template engine or argument parser; `Cargo.toml` keeps
//! it that way. It talks to storage only through `stele_store::Store`.

pub mod access;
pub mod action_schemas;
pub mod clock;
pub mod erasure;
pub mod export;
pub mod integrity;
pub mod low_priority;
pub mod organizations;
pub mod print_log;
pub mod random;
pub mod redaction;
pub mod retention;
pub mod retraced;
pub mod secrets;
pub mod settings;
pub mod streams;
pub mod trail;
