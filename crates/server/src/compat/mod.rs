//! Doors for other audit-log services' clients (issue 16): their wire protocols on top of Stele's
//! own use cases, so that a team moving to Stele changes a host name and not its code.
//!
//! - [`retraced`]: Retraced's publisher API, whose client library checks a receipt hash of each
//!   event it sent.

pub mod retraced;
