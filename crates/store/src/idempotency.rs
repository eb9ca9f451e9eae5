//! The idempotency rule of an append, once for every backend: how keys are recorded, when a
//! request is replayed or refused, and which events are written. A backend supplies the records
//! and the writes ([`Ledger`]) inside the transaction that writes the request; what the rule
//! decides is [`append`]'s alone, so both backends answer a retry the same way.
//!
//! A request's `Idempotency-Key` is recorded under `r:<key>` with the request's fingerprint and
//! every receipt; an event's own key under `e:<key>` with its one receipt. The two live in one
//! table per organization without ever meeting.

use stele_core::time::Millis;

use crate::{AppendOutcome, AppendRequest, PreparedEvent, Receipt, StoreError};

/// Idempotency records are kept at least this long (the issue asks for 24 hours).
pub const IDEMPOTENCY_RETENTION_MS: Millis = 48 * 3600 * 1000;

/// The record key of a request's `Idempotency-Key`.
pub fn request_key(key: &str) -> String {
    format!("r:{key}")
}

/// The record key of an event's own idempotency key.
pub fn event_key(key: &str) -> String {
    format!("e:{key}")
}

/// A remembered answer: the request body's fingerprint (request keys only) and the receipts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub fingerprint: Option<Vec<u8>>,
    pub receipts: Vec<Receipt>,
}

/// What [`append`] needs from a backend, for one organization, inside the transaction that
/// writes the request. `Error` is a failure of the database, which ends the whole transaction;
/// a refusal of the request is not an error here (see [`append`]).
pub trait Ledger {
    type Error;

    /// The record kept under `key`, including those remembered earlier in this transaction.
    fn find(&mut self, key: &str) -> Result<Option<Record>, Self::Error>;

    /// Keeps a record under `key`, for [`find`](Ledger::find) in this transaction and after it
    /// commits.
    fn remember(
        &mut self,
        key: String,
        fingerprint: Option<&[u8; 32]>,
        receipts: &[Receipt],
    ) -> Result<(), Self::Error>;

    /// Writes one new event, the request's `index`th, and returns its receipt.
    fn write(&mut self, index: usize, event: &PreparedEvent) -> Result<Receipt, Self::Error>;
}

/// Appends one request through the rule. A request key seen before replays its receipts, unless
/// the fingerprint differs, which refuses the request (`Conflict`, the inner `Err`) before it
/// writes anything. Otherwise each event whose own key was seen before gets its earlier receipt
/// and the rest are written; `replayed` says that nothing new was.
pub fn append<L: Ledger>(
    ledger: &mut L,
    request: &AppendRequest,
) -> Result<crate::Result<AppendOutcome>, L::Error> {
    let request_key = request.idempotency_key.as_deref().map(request_key);
    if let Some(key) = &request_key
        && let Some(record) = ledger.find(key)?
    {
        if record.fingerprint.as_deref() != Some(&request.fingerprint[..]) {
            return Ok(Err(StoreError::Conflict(
                "this Idempotency-Key was already used for a different request".into(),
            )));
        }
        return Ok(Ok(AppendOutcome {
            receipts: record.receipts,
            replayed: true,
        }));
    }

    let mut receipts = Vec::with_capacity(request.events.len());
    let mut wrote_any = false;
    for (index, prepared) in request.events.iter().enumerate() {
        let event_key = prepared
            .sealed
            .event
            .idempotency_key
            .as_deref()
            .map(event_key);
        if let Some(key) = &event_key
            && let Some(earlier) = ledger.find(key)?
            && let Some(receipt) = earlier.receipts.into_iter().next()
        {
            receipts.push(receipt);
            continue;
        }
        let receipt = ledger.write(index, prepared)?;
        if let Some(key) = event_key {
            ledger.remember(key, None, std::slice::from_ref(&receipt))?;
        }
        receipts.push(receipt);
        wrote_any = true;
    }
    if let Some(key) = request_key {
        ledger.remember(key, Some(&request.fingerprint), &receipts)?;
    }
    Ok(Ok(AppendOutcome {
        receipts,
        replayed: !wrote_any && !request.events.is_empty(),
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::conformance::{event, prepared};

    /// Records in a map, and events "written" by numbering them.
    #[derive(Default)]
    struct Memory {
        records: HashMap<String, Record>,
        written: i64,
    }

    impl Ledger for Memory {
        type Error = std::convert::Infallible;

        fn find(&mut self, key: &str) -> Result<Option<Record>, Self::Error> {
            Ok(self.records.get(key).cloned())
        }

        fn remember(
            &mut self,
            key: String,
            fingerprint: Option<&[u8; 32]>,
            receipts: &[Receipt],
        ) -> Result<(), Self::Error> {
            let fingerprint = fingerprint.map(|f| f.to_vec());
            let receipts = receipts.to_vec();
            self.records.insert(
                key,
                Record {
                    fingerprint,
                    receipts,
                },
            );
            Ok(())
        }

        fn write(&mut self, _: usize, _: &PreparedEvent) -> Result<Receipt, Self::Error> {
            self.written += 1;
            Ok(Receipt {
                id: format!("id{}", self.written),
                seq: stele_core::Seq::new(self.written),
            })
        }
    }

    fn keyed(keys: &[&str], request_key: Option<&str>, fingerprint: u8) -> AppendRequest {
        let events = keys
            .iter()
            .map(|k| stele_core::NewEvent {
                idempotency_key: (!k.is_empty()).then(|| k.to_string()),
                ..event("create", 0)
            })
            .collect();
        AppendRequest {
            events: prepared(events),
            idempotency_key: request_key.map(str::to_string),
            fingerprint: [fingerprint; 32],
        }
    }

    fn seqs(outcome: &AppendOutcome) -> Vec<i64> {
        outcome.receipts.iter().map(|r| r.seq.get()).collect()
    }

    #[test]
    fn event_keys_deduplicate_within_a_request_and_across_requests() {
        let mut ledger = Memory::default();
        let first = append(&mut ledger, &keyed(&["x", "", "x"], None, 0))
            .unwrap()
            .unwrap();
        assert_eq!((seqs(&first), first.replayed), (vec![1, 2, 1], false));
        let again = append(&mut ledger, &keyed(&["x"], None, 0))
            .unwrap()
            .unwrap();
        assert_eq!((seqs(&again), again.replayed), (vec![1], true));
        assert!(ledger.records.contains_key("e:x"));
    }

    #[test]
    fn a_request_key_replays_its_receipts_or_refuses_another_request() {
        let mut ledger = Memory::default();
        let first = append(&mut ledger, &keyed(&["", ""], Some("k"), 1))
            .unwrap()
            .unwrap();
        let replay = append(&mut ledger, &keyed(&["", ""], Some("k"), 1))
            .unwrap()
            .unwrap();
        assert_eq!((replay.receipts, replay.replayed), (first.receipts, true));
        let other = append(&mut ledger, &keyed(&[""], Some("k"), 2)).unwrap();
        assert!(matches!(other, Err(StoreError::Conflict(_))), "{other:?}");
        assert_eq!(
            ledger.written, 2,
            "neither the replay nor the refusal wrote"
        );
        assert!(ledger.records.contains_key("r:k"));
    }
}
