//! The store's own identifiers, as types of their own, so that one cannot stand in for another
//! (`print(org, id)` with the arguments swapped does not compile): an organization's internal
//! key ([`OrgKey`]) and a print log row's id ([`PrintId`]).
//!
//! Both are made by the store: a backend turns the integer it stored into one with `new`, and
//! back with `get` where it writes or queries.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A store's internal key of an organization. The public id (`org_…`) is what people see; this
/// one never leaves the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgKey(i64);

impl OrgKey {
    /// The key a backend stored.
    pub const fn new(key: i64) -> OrgKey {
        OrgKey(key)
    }

    /// The key as the backend stores it.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for OrgKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Whether `text` has the form of an organization's public id (`org_` and 32 lowercase hex
/// digits, as both backends make them). Such a text names an organization by id, so it is never
/// taken for an external id: not given to a new organization as one, not created on ingest.
pub fn is_org_id(text: &str) -> bool {
    text.strip_prefix("org_").is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A print log row's id within its organization: 1, 2, 3, … and never reused (see
/// [`crate::print_log`]). Shown as the plain number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PrintId(i64);

impl PrintId {
    /// The id a backend stored (or a caller parsed from a request: it names a row only if the
    /// store has one).
    pub const fn new(id: i64) -> PrintId {
        PrintId(id)
    }

    /// The id as the backend stores it.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for PrintId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
