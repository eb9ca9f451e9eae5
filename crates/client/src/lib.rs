//! A Rust client for Stele, the self-hosted audit trail.
//!
//! - [`Event::builder`] builds an audit event (who did what, to which record, from where, what
//!   changed) and checks it before it leaves your code.
//! - [`SteleContextLayer`], a `tower` layer, finds each request's client address (behind trusted
//!   proxies too), user agent, request id and correlation id (or W3C trace id) for
//!   [`EventBuilder::context`].

mod context;
mod event;

pub use context::{InvalidProxy, RequestContext, SteleContext, SteleContextLayer};
pub use event::{
    Actor, ActorType, BuildError, Change, Entity, EntityId, Event, EventBuilder, Outcome, Problem,
    Source,
};
