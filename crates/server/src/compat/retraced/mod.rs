//! Retraced (`@retracedhq/retraced`, the publisher API under `/auditlog`).
//!
//! - [`hash`]: the receipt hash Retraced answers each stored event with, which the client library
//!   recomputes and compares (it throws on a mismatch).

pub mod hash;
