//! Doors for other audit-log services' clients (issue 16): their wire protocols on top of Stele's
//! own use cases, so that a team moving to Stele changes a host name and not its code.
//!
//! - [`retraced`]: Retraced's publisher API, whose client library checks a receipt hash of each
//!   event it sent.
//! - [`workos`]: WorkOS Audit Logs' API (events, exports, schemas, retention, the Admin Portal
//!   link), at the root of the listener.
//! - [`vocabulary`]: how both services' actions and actor types map onto Stele's.
//!
//! A door here reads its service's wire format and calls the use cases of `stele_service`, as
//! `crate::api` does, sharing its key lookup (`crate::api::auth`) and turning its errors
//! (`crate::api::error`) into the service's own shapes.

pub mod retraced;
pub mod vocabulary;
pub mod workos;
