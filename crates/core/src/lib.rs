//! The Stele event model and everything about an event that needs no I/O: parsing and validating
//! what a client sends, computing field-level changes from `before`/`after`, redacting sensitive
//! values, the search filter, its query language and its pagination cursor.
//!
//! Nothing in this crate touches the network, the disk or the clock except through arguments
//! (the caller passes "now"), so every rule here is testable on its own.

pub mod chain;
pub mod checkpoint;
pub mod diff;
pub mod erase;
pub mod event;
pub mod filter;
pub mod merkle;
pub mod params;
pub mod proof;
pub mod query;
pub mod redact;
pub mod seal;
pub mod sent;
pub mod seq;
pub mod time;
pub mod validate;

pub use event::{
    Actor, ActorType, Change, Context, Entity, Entry, Impersonator, NewEvent, Outcome,
};
pub use filter::{Cursor, CursorDirection, DetailedActionMatch, EventFilter, FilterError};
pub use params::PageRequest;
pub use seq::Seq;
pub use validate::{FieldError, check_event, parse_event};
