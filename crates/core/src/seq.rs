//! [`Seq`]: an entry's position in its organization's chain.

use std::fmt;
use std::num::ParseIntError;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An entry's position in its organization's hash chain: 1 for the organization's first entry,
/// then 2, 3, … without gaps. A checkpoint's `seq` is the last entry it covers, so it is also the
/// size of the Merkle tree it signs (leaf `seq - 1` is the entry at `seq`); 0
/// ([`Seq::BEFORE_FIRST`]) stands for "no entry yet".
///
/// A type of its own, not a bare `i64`, so that a count, a limit or a row's primary key cannot
/// be passed where a position is meant, nor the other way round. It shows, serializes and is
/// hashed into the chain as the plain number; a backend turns the integer it stored into one
/// with [`Seq::new`], and back with [`Seq::get`] where it writes or queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Seq(i64);

impl Seq {
    /// Before the first entry: where an organization's chain stands before anything was
    /// recorded, and the `seq` of a checkpoint that covers no entry.
    pub const BEFORE_FIRST: Seq = Seq(0);

    /// The organization's first entry, the one whose `prev_hash` is the genesis hash.
    pub const FIRST: Seq = Seq(1);

    /// The position a backend stored (or a caller parsed from a request: it names an entry only
    /// if the organization has one there).
    pub const fn new(seq: i64) -> Seq {
        Seq(seq)
    }

    /// The position as the backend stores it.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// The position after this one.
    pub const fn next(self) -> Seq {
        Seq(self.0 + 1)
    }

    /// The position before this one ([`Seq::BEFORE_FIRST`] before the first entry).
    pub const fn prev(self) -> Seq {
        Seq(self.0 - 1)
    }

    /// The size of the Merkle tree over the entries up to this one: the `tree_size` of a
    /// checkpoint at this `seq`. Meaningful from [`Seq::BEFORE_FIRST`] on.
    pub const fn tree_size(self) -> u64 {
        self.0 as u64
    }

    /// This entry's leaf in the Merkle tree (`seq - 1`). Meaningful from [`Seq::FIRST`] on.
    pub const fn leaf_index(self) -> u64 {
        self.prev().tree_size()
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Reads the plain number back, as a cursor, a query parameter or an erasure record's
/// `entity_ids` spell it.
impl FromStr for Seq {
    type Err = ParseIntError;

    fn from_str(s: &str) -> Result<Seq, ParseIntError> {
        s.parse().map(Seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_and_serializes_as_the_plain_number() {
        let seq = Seq::new(42);
        assert_eq!(seq.to_string(), "42");
        assert_eq!("42".parse::<Seq>(), Ok(seq));
        assert!("4x".parse::<Seq>().is_err());
        assert_eq!(serde_json::to_string(&seq).unwrap(), "42");
        assert_eq!(serde_json::from_str::<Seq>("42").unwrap(), seq);
        assert!(serde_json::from_str::<Seq>("\"42\"").is_err());
    }

    #[test]
    fn steps_and_merkle_positions() {
        assert_eq!(Seq::BEFORE_FIRST.next(), Seq::FIRST);
        assert_eq!(Seq::FIRST.prev(), Seq::BEFORE_FIRST);
        assert_eq!((Seq::FIRST.leaf_index(), Seq::FIRST.tree_size()), (0, 1));
        assert_eq!(Seq::BEFORE_FIRST.tree_size(), 0);
        assert_eq!(Seq::new(7).leaf_index(), 6);
        assert!(Seq::new(2) < Seq::new(10));
    }
}
