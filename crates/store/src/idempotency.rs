//! The idempotency rule of an append, once for every backend: how keys are recorded, when a
//! request is replayed or refused, and which events are written. A backend supplies the records
//! and the writes ([`Ledger`]) inside the transaction that writes the request; what the rule
//! decides is [`append`]'s alone, so both backends answer a retry the same way.
//!
//! A request's `Idempotency-Key` is recorded under `r:<key>` with the request's fingerprint and
//! every receipt; an event's own key with its one receipt, by default under `e:<key>` in the same
//! records (PostgreSQL), or wherever the backend keeps them ([`Ledger::find_event`]: SQLite has
//! a table of small rows for them, as there are as many as events).
//!
//! A request may span organizations (a platform's batch whose events name their own, see
//! [`PreparedEvent::for_org`]). Its request key is still one record, kept under the organization
//! the request is appended for, and its receipts say each event's organization, so a retry gets
//! back the whole answer. An event's own key belongs to the organization the event joins: the
//! same key sent for two organizations names two events.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use stele_core::Seq;
use stele_core::time::Millis;

use crate::{AppendOutcome, AppendRequest, OrgKey, PreparedEvent, Receipt, StoreError};

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

/// The receipts of a record as the backends store them (JSON text): `[{"id", "seq"}]`, with
/// `"org"` for a receipt of another organization than the record's (its internal key, which is
/// why [`Receipt`]'s own serialization, the one clients see, leaves it out). Records written
/// before receipts could name an organization read back as they were.
pub fn encode_receipts(receipts: &[Receipt]) -> Result<String, StoreError> {
    let stored: Vec<StoredReceipt<'_>> = receipts
        .iter()
        .map(|r| StoredReceipt {
            id: Cow::Borrowed(&r.id),
            seq: r.seq,
            org: r.org.map(OrgKey::get),
        })
        .collect();
    serde_json::to_string(&stored)
        .map_err(|e| StoreError::Other(format!("idempotency record: {e}")))
}

/// Reads what [`encode_receipts`] wrote.
pub fn decode_receipts(text: &str) -> Result<Vec<Receipt>, StoreError> {
    let stored: Vec<StoredReceipt<'_>> = serde_json::from_str(text)
        .map_err(|e| StoreError::Other(format!("idempotency record: {e}")))?;
    Ok(stored
        .into_iter()
        .map(|r| Receipt {
            id: r.id.into_owned(),
            seq: r.seq,
            org: r.org.map(OrgKey::new),
        })
        .collect())
}

#[derive(Serialize, Deserialize)]
struct StoredReceipt<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    seq: Seq,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    org: Option<i64>,
}

/// What [`append`] needs from a backend inside the transaction that writes the request: the
/// records and the entries of any organization the request touches. `Error` is a failure of the
/// database, which ends the whole transaction; a refusal of the request is not an error here
/// (see [`append`]).
pub trait Ledger {
    type Error;

    /// The record kept under `key` for `org`, including those remembered earlier in this
    /// transaction.
    fn find(&mut self, org: OrgKey, key: &str) -> Result<Option<Record>, Self::Error>;

    /// Keeps a record under `key` for `org`, for [`find`](Ledger::find) in this transaction and
    /// after it commits.
    fn remember(
        &mut self,
        org: OrgKey,
        key: String,
        fingerprint: Option<&[u8; 32]>,
        receipts: &[Receipt],
    ) -> Result<(), Self::Error>;

    /// The receipt kept under an event's own `key` (as the event carries it) for `org`,
    /// including one remembered earlier in this transaction. By default a record under
    /// [`event_key`] in the same records as the requests'.
    fn find_event(&mut self, org: OrgKey, key: &str) -> Result<Option<Receipt>, Self::Error> {
        Ok(self
            .find(org, &event_key(key))?
            .and_then(|record| record.receipts.into_iter().next()))
    }

    /// Keeps the receipt of the event written for its own `key` in `org` (a bare receipt: the
    /// event joined `org`), for [`find_event`](Ledger::find_event) in this transaction and after
    /// it commits.
    fn remember_event(
        &mut self,
        org: OrgKey,
        key: &str,
        receipt: &Receipt,
    ) -> Result<(), Self::Error> {
        self.remember(org, event_key(key), None, std::slice::from_ref(receipt))
    }

    /// Writes one new event, the request's `index`th, into `org`'s trail and returns its receipt
    /// (whose `org` [`append`] fills in).
    fn write(
        &mut self,
        index: usize,
        org: OrgKey,
        event: &PreparedEvent,
    ) -> Result<Receipt, Self::Error>;
}

/// Appends one request, made for `org`, through the rule. A request key seen before (in `org`)
/// replays its receipts, unless the fingerprint differs, which refuses the request (`Conflict`,
/// the inner `Err`) before it writes anything. Otherwise each event whose own key was seen
/// before in its organization gets its earlier receipt and the rest are written; `replayed` says
/// that nothing new was.
///
/// Nothing after the request-key check refuses a request, so a request is never half-written:
/// the backend commits all of it or, on a database failure, none of it.
pub fn append<L: Ledger>(
    ledger: &mut L,
    org: OrgKey,
    request: &AppendRequest,
) -> Result<crate::Result<AppendOutcome>, L::Error> {
    let request_key = request.idempotency_key.as_deref().map(request_key);
    if let Some(key) = &request_key
        && let Some(record) = ledger.find(org, key)?
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
        let target = prepared.org_or(org);
        // A receipt names its organization only when the event had a target of its own; an
        // event key's record holds the bare receipt, as it lives in that organization's records
        // whichever request wrote it (an organization's own key, or a platform's batch).
        let named = |receipt: Receipt| Receipt {
            org: prepared.target(),
            ..receipt
        };
        let event_key = prepared.sealed.event.idempotency_key.as_deref();
        if let Some(key) = event_key
            && let Some(earlier) = ledger.find_event(target, key)?
        {
            receipts.push(named(earlier));
            continue;
        }
        let receipt = Receipt {
            org: None,
            ..ledger.write(index, target, prepared)?
        };
        if let Some(key) = event_key {
            ledger.remember_event(target, key, &receipt)?;
        }
        receipts.push(named(receipt));
        wrote_any = true;
    }
    if let Some(key) = request_key {
        ledger.remember(org, key, Some(&request.fingerprint), &receipts)?;
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

    const HOME: OrgKey = OrgKey::new(1);
    const OTHER: OrgKey = OrgKey::new(2);

    /// Records in a map, and events "written" by numbering them per organization.
    #[derive(Default)]
    struct Memory {
        records: HashMap<(OrgKey, String), Record>,
        written: HashMap<OrgKey, i64>,
    }

    impl Memory {
        fn written(&self) -> i64 {
            self.written.values().sum()
        }
    }

    impl Ledger for Memory {
        type Error = std::convert::Infallible;

        fn find(&mut self, org: OrgKey, key: &str) -> Result<Option<Record>, Self::Error> {
            Ok(self.records.get(&(org, key.to_string())).cloned())
        }

        fn remember(
            &mut self,
            org: OrgKey,
            key: String,
            fingerprint: Option<&[u8; 32]>,
            receipts: &[Receipt],
        ) -> Result<(), Self::Error> {
            let fingerprint = fingerprint.map(|f| f.to_vec());
            let receipts = receipts.to_vec();
            self.records.insert(
                (org, key),
                Record {
                    fingerprint,
                    receipts,
                },
            );
            Ok(())
        }

        fn write(
            &mut self,
            _: usize,
            org: OrgKey,
            _: &PreparedEvent,
        ) -> Result<Receipt, Self::Error> {
            let n = self.written.entry(org).or_default();
            *n += 1;
            Ok(Receipt::new(format!("{org}-{n}"), stele_core::Seq::new(*n)))
        }
    }

    /// Events with these keys (`""`: none), each for the organization given (`None`: the
    /// request's own).
    fn keyed_for(
        events: &[(&str, Option<OrgKey>)],
        request_key: Option<&str>,
        fingerprint: u8,
    ) -> AppendRequest {
        let new_events = events
            .iter()
            .map(|(k, _)| stele_core::NewEvent {
                idempotency_key: (!k.is_empty()).then(|| k.to_string()),
                ..event("create", 0)
            })
            .collect();
        let events = prepared(new_events)
            .into_iter()
            .zip(events)
            .map(|(p, (_, org))| match org {
                Some(org) => p.for_org(*org),
                None => p,
            })
            .collect();
        AppendRequest {
            events,
            idempotency_key: request_key.map(str::to_string),
            fingerprint: [fingerprint; 32],
        }
    }

    fn keyed(keys: &[&str], request_key: Option<&str>, fingerprint: u8) -> AppendRequest {
        let events: Vec<_> = keys.iter().map(|k| (*k, None)).collect();
        keyed_for(&events, request_key, fingerprint)
    }

    fn seqs(outcome: &AppendOutcome) -> Vec<i64> {
        outcome.receipts.iter().map(|r| r.seq.get()).collect()
    }

    #[test]
    fn event_keys_deduplicate_within_a_request_and_across_requests() {
        let mut ledger = Memory::default();
        let first = append(&mut ledger, HOME, &keyed(&["x", "", "x"], None, 0))
            .unwrap()
            .unwrap();
        assert_eq!((seqs(&first), first.replayed), (vec![1, 2, 1], false));
        let again = append(&mut ledger, HOME, &keyed(&["x"], None, 0))
            .unwrap()
            .unwrap();
        assert_eq!((seqs(&again), again.replayed), (vec![1], true));
        assert!(ledger.records.contains_key(&(HOME, "e:x".to_string())));
    }

    #[test]
    fn a_request_key_replays_its_receipts_or_refuses_another_request() {
        let mut ledger = Memory::default();
        let first = append(&mut ledger, HOME, &keyed(&["", ""], Some("k"), 1))
            .unwrap()
            .unwrap();
        let replay = append(&mut ledger, HOME, &keyed(&["", ""], Some("k"), 1))
            .unwrap()
            .unwrap();
        assert_eq!((replay.receipts, replay.replayed), (first.receipts, true));
        let other = append(&mut ledger, HOME, &keyed(&[""], Some("k"), 2)).unwrap();
        assert!(matches!(other, Err(StoreError::Conflict(_))), "{other:?}");
        assert_eq!(
            ledger.written(),
            2,
            "neither the replay nor the refusal wrote"
        );
        assert!(ledger.records.contains_key(&(HOME, "r:k".to_string())));
    }

    #[test]
    fn events_with_targets_keep_their_keys_and_receipts_in_their_organization() {
        let mut ledger = Memory::default();
        // "x" for HOME and "x" for OTHER are two events; the second "x" for OTHER is the first.
        let request = keyed_for(
            &[
                ("x", None),
                ("x", Some(OTHER)),
                ("", Some(OTHER)),
                ("x", Some(OTHER)),
            ],
            Some("k"),
            1,
        );
        let first = append(&mut ledger, HOME, &request).unwrap().unwrap();
        let orgs: Vec<_> = first.receipts.iter().map(|r| r.org).collect();
        assert_eq!(orgs, [None, Some(OTHER), Some(OTHER), Some(OTHER)]);
        assert_eq!(seqs(&first), [1, 1, 2, 1]);
        assert_eq!(first.receipts[1], first.receipts[3]);
        // The request key is the home organization's; the event keys are each their own's,
        // holding the bare receipt.
        assert!(ledger.records.contains_key(&(HOME, "r:k".to_string())));
        assert!(!ledger.records.contains_key(&(OTHER, "r:k".to_string())));
        assert_eq!(
            ledger.records[&(OTHER, "e:x".to_string())].receipts[0].org,
            None
        );
        // A retry replays every receipt with its organization; an event key sent again for
        // OTHER alone (its own request) finds its entry.
        let replay = append(&mut ledger, HOME, &request).unwrap().unwrap();
        assert_eq!((&replay.receipts, replay.replayed), (&first.receipts, true));
        let alone = append(&mut ledger, OTHER, &keyed(&["x"], None, 0))
            .unwrap()
            .unwrap();
        assert_eq!(alone.receipts[0].id, first.receipts[1].id);
        assert_eq!((alone.receipts[0].org, alone.replayed), (None, true));
        assert_eq!(ledger.written(), 3);
    }

    #[test]
    fn receipts_are_stored_with_their_organization_and_read_back_from_older_records() {
        let receipts = vec![
            Receipt::new("a".into(), stele_core::Seq::new(1)),
            Receipt {
                org: Some(OTHER),
                ..Receipt::new("b".into(), stele_core::Seq::new(7))
            },
        ];
        let text = encode_receipts(&receipts).unwrap();
        assert_eq!(text, r#"[{"id":"a","seq":1},{"id":"b","seq":7,"org":2}]"#);
        assert_eq!(decode_receipts(&text).unwrap(), receipts);
        // What clients see never carries the internal key.
        assert_eq!(
            serde_json::to_string(&receipts[1]).unwrap(),
            r#"{"id":"b","seq":7}"#
        );
    }
}
