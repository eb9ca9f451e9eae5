//! A Rust client for Stele, the self-hosted audit trail.
//!
//! - [`Event::builder`] builds an audit event (who did what, to which record, from where, what
//!   changed) and checks it before it leaves your code.
//! - [`Client`] queues events (bounded) and sends them in the background, in batches, retrying
//!   network errors, 408, 429 and 5xx with backoff and idempotency keys so that nothing is stored
//!   twice; [`Client::flush`] and [`Client::shutdown`] wait for the queue to be sent.
//! - [`SteleContextLayer`], a `tower` layer, finds each request's client address (behind trusted
//!   proxies too), user agent, request id and correlation id (or W3C trace id) for
//!   [`EventBuilder::context`].
//!
//! ```no_run
//! use stele_client::{Actor, Client, Entity, Event};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::builder("http://127.0.0.1:8080", std::env::var("STELE_KEY")?).build()?;
//! let event = Event::builder("update")
//!     .detailed_action("printer.rename")
//!     .actor(Actor::user("u1").name("Ada").email("ada@example.com"))
//!     .entity(Entity::new("Printer", "42").name("Alpha"))
//!     .before(serde_json::json!({"name": "A"}))
//!     .after(serde_json::json!({"name": "Alpha"}))
//!     .build()?;
//! client.record(event).await?;
//! client.shutdown().await?; // sends what is queued, then stops
//! # Ok(()) }
//! ```
//!
//! Delivery is at least once to the server and exactly once in the trail within the server's
//! idempotency window (at least 24 hours); events still in memory are lost if the process dies
//! before they are sent. The crate's README says more.

mod client;
mod context;
mod delivery;
mod event;

pub use client::{
    Client, ClientBuilder, DeliveryError, Error, ErrorDetail, FailedEvent, MAX_BATCH_SIZE, Receipt,
    Stats, TryRecordError,
};
pub use context::{InvalidProxy, RequestContext, SteleContext, SteleContextLayer};
pub use event::{
    Actor, ActorType, BuildError, Change, Entity, EntityId, Event, EventBuilder, Outcome, Problem,
    Source,
};
