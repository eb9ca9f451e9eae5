//! Recording checked events: the one path every ingest door takes (the native `POST /v1/events`,
//! and the WorkOS and Retraced doors in `crate::compat`). A door reads its own wire format into
//! [`NewEvent`]s and the organization each names; from there on what is stored, where, and what
//! a retry gets back is decided here, once, whatever the door.
//!
//! The request is all or nothing: every problem of every event is reported together and nothing
//! is stored (no organization created either) unless every event is good.
//!
//! Redaction happens here too, once each event's organization is known: a door checks events
//! with `RedactionRules::none()` (validation only) and each event is redacted with the rules of
//! the organization it goes to (`redaction` in its settings), whichever door it came through and
//! whatever organization a platform key's batch names for it.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use stele_core::chain::SealedEvent;
use stele_core::{FieldError, NewEvent};
use stele_service::access::org_policy::OrgPolicy;
use stele_service::trail::By;
use stele_store::{AppendRequest, OrgKey, PreparedEvent, Receipt, StoreError};

use super::organizations::{Named, Target};
use crate::api::auth::{IngestKey, org_error};
use crate::api::error::{ApiError, Result};
use crate::app::state::AppState;

/// What a door read from a request: the events that passed its checks, the organization each
/// names, and the problems found.
pub struct Checked<'a> {
    /// Checked with `RedactionRules::none()`: redacted here, by their organization's rules.
    pub events: Vec<NewEvent>,
    /// Per event, in the order sent, the organization it names (an id `org_…` or an external
    /// id); `None`: the request's own. Empty when no event may name one (an organization key).
    pub references: Vec<Option<Cow<'a, str>>>,
    /// Every problem found so far, each with its event's index (`None` for a lone event).
    pub errors: Vec<FieldError>,
    /// How many events the request sent, good ones and bad.
    pub sent: usize,
    /// Whether the request sent a batch (errors then name each event's index).
    pub batch: bool,
}

/// What makes a retry of the request the same request.
pub struct Request {
    /// The client's `Idempotency-Key`, kept for 24 hours at least.
    pub idempotency_key: Option<String>,
    /// A digest of the request body: the same key with another body is refused.
    pub fingerprint: [u8; 32],
    /// The body's size, counted in `stele_ingest_bytes_total` once its events are stored.
    pub body_bytes: usize,
}

impl Request {
    /// The request of `body`, sent with `idempotency_key`. The body's digest is taken only when
    /// there is a key to remember it under (hashing every body cost batch ingest about 0.4 µs an
    /// event for nothing).
    pub fn new(idempotency_key: Option<String>, body: &[u8]) -> Request {
        let fingerprint = match &idempotency_key {
            Some(_) => <sha2::Sha256 as sha2::Digest>::digest(body).into(),
            None => [0; 32],
        };
        Request {
            idempotency_key,
            fingerprint,
            body_bytes: body.len(),
        }
    }
}

/// The outcome of a request whose events were all good.
pub enum Recorded {
    /// Every organization the events are for has recording turned off: nothing was stored.
    /// `several`: the events were for more than one organization.
    Disabled { several: bool },
    /// Stored (or, `replayed`, stored before under the same idempotency key), one receipt per
    /// event in the order sent.
    Stored {
        replayed: bool,
        receipts: Vec<EventReceipt>,
    },
}

/// One event's receipt, naming its organization.
pub struct EventReceipt {
    /// The organization's public id.
    pub organization_id: String,
    /// `None` when the organization has recording turned off (the event was not stored).
    pub stored: Option<Receipt>,
}

/// Records `checked` for `auth`'s request: refuses it whole if any event has a problem, creates
/// the organizations it names for the first time (when the server allows it), leaves out the
/// events of organizations with recording off, and appends the rest in one transaction.
pub async fn record(
    state: &AppState,
    auth: &IngestKey,
    mut checked: Checked<'_>,
    request: Request,
) -> Result<Recorded> {
    let count = checked.sent;
    let batch = checked.batch;
    let index = |i: usize| batch.then_some(i);
    // With no problem found, the events are those sent, in order: each one's index is known.
    if checked.errors.is_empty() {
        checked.events = within_size(checked.events, state.max_event_bytes, batch, count)?;
    }
    let mut named = Named::look_up(state, &checked.references, index, &mut checked.errors).await?;
    if !checked.errors.is_empty() {
        return Err(invalid(checked.errors, batch, count));
    }
    named.create_missing(state, auth).await?;

    // Where each event goes: the organization it names, or the request's own (the header's,
    // made now if it is new: only once every event is known to be good).
    let home = match &auth.pending_organization {
        Some(reference) => {
            let (actor, context) = auth.actor();
            let org = state
                .directory
                .resolve_or_create(
                    state.store.as_ref(),
                    reference,
                    true,
                    By::platform(actor, context),
                    state.clock.now(),
                )
                .await
                .map_err(org_error)?
                .expect("created when missing");
            Target::from(&org)
        }
        None => Target {
            key: auth.key.org,
            id: auth.key.org_id.clone(),
        },
    };
    let targets: Vec<&Target> = (0..count)
        .map(
            |i| match checked.references.get(i).and_then(Option::as_deref) {
                Some(reference) => named
                    .get(reference)
                    .expect("looked up, and created if missing"),
                None => &home,
            },
        )
        .collect();

    // Checked after the events are read, so that a client learns of a bad event whether or not
    // recording is on. Each organization's own setting decides for its events.
    // Each organization's own redaction rules, likewise (from the same settings cache).
    let mut recording: HashMap<OrgKey, bool> = HashMap::new();
    let mut policies: HashMap<OrgKey, Arc<OrgPolicy>> = HashMap::new();
    for target in &targets {
        if let Entry::Vacant(e) = policies.entry(target.key) {
            let policy = state.policies.get(target.key).await?;
            recording.insert(target.key, policy.settings.enabled);
            e.insert(policy);
        }
    }
    if !recording.values().any(|on| *on) {
        return Ok(Recorded::Disabled {
            several: recording.len() > 1,
        });
    }

    // Salts, digests and the stored JSON are made here, on the request's own task (in parallel
    // with other requests), so the single writer only links entries into the chain and writes.
    let mut salts = vec![0u8; 16 * checked.events.len()];
    stele_service::random::fill(&mut salts);
    let prepared = checked
        .events
        .into_iter()
        .zip(salts.chunks_exact(16))
        .zip(&targets)
        .filter(|(_, target)| recording[&target.key])
        .map(|((mut event, salt), target)| {
            policies[&target.key]
                .settings
                .redaction
                .redact_event(&mut event);
            let sealed = SealedEvent::seal(event, salt.try_into().expect("16-byte chunks"));
            let prepared = PreparedEvent::new(sealed);
            if target.key == home.key {
                prepared
            } else {
                prepared.for_org(target.key)
            }
        })
        .collect();
    let outcome = state
        .store
        .append(
            home.key,
            AppendRequest {
                events: prepared,
                idempotency_key: request.idempotency_key,
                fingerprint: request.fingerprint,
            },
        )
        .await
        .map_err(|e| match e {
            // Named before its deletion began (by this server's directory, or another's), and
            // gone by the time the events reached the store: nothing was stored.
            StoreError::NotFound => ApiError::NotFound(
                "an organization this request is for has been deleted; nothing was stored",
            ),
            other => other.into(),
        })?;
    if !outcome.replayed {
        metrics::counter!(stele_store::metrics::INGEST_BYTES).increment(request.body_bytes as u64);
    }
    let ids = organization_ids(state, &home, &named, &outcome.receipts).await?;
    Ok(Recorded::Stored {
        replayed: outcome.replayed,
        receipts: receipts(&ids, home.key, &targets, &recording, outcome.receipts),
    })
}

/// The events back if each one's JSON (as Stele stores and returns it, less the entry's id, seq and
/// recorded time) is at most `max` bytes; otherwise the 413 naming each event over it (its index
/// in a batch). The request stays all or nothing: none of its events is stored. With this limit a
/// page of entries holds at most its `limit` times `max` bytes (issue 17).
pub(crate) fn within_size(
    events: Vec<NewEvent>,
    max: usize,
    batch: bool,
    count: usize,
) -> Result<Vec<NewEvent>> {
    let mut kept = Vec::with_capacity(events.len());
    let mut over = Vec::new();
    for (i, event) in events.into_iter().enumerate() {
        let entry = stele_core::Entry {
            id: String::new(),
            seq: stele_core::Seq::BEFORE_FIRST,
            recorded_at: 0,
            event,
        };
        // Counts the bytes without keeping them, and stops at the first one over the limit.
        let mut counter = Counter { count: 0, max };
        if serde_json::to_writer(&mut counter, &entry).is_err() {
            over.push(FieldError {
                index: batch.then_some(i),
                field: "event".to_string(),
                message: format!("is larger than {max} bytes of JSON, the most one event may hold"),
            });
        }
        kept.push(entry.event);
    }
    if over.is_empty() {
        return Ok(kept);
    }
    let message = if batch {
        let indexes: Vec<String> = over
            .iter()
            .filter_map(|e| e.index.map(|i| i.to_string()))
            .collect();
        format!(
            "{} of {count} events (index {}) are larger than {max} bytes of JSON, the most one \
             event may hold; nothing was recorded",
            over.len(),
            indexes.join(", ")
        )
    } else {
        format!(
            "the event is larger than {max} bytes of JSON, the most one event may hold; nothing \
             was recorded"
        )
    };
    Err(ApiError::EventTooLarge {
        message,
        details: over,
    })
}

/// A writer that only counts, and fails once past `max`.
struct Counter {
    count: usize,
    max: usize,
}

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.count += buf.len();
        if self.count > self.max {
            return Err(std::io::ErrorKind::FileTooLarge.into());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The refusal of a request with problems: every one of them, in the order of the events.
pub(crate) fn invalid(mut errors: Vec<FieldError>, batch: bool, count: usize) -> ApiError {
    // A stable sort: each event's problems stay in the order they were found.
    errors.sort_by_key(|e| e.index);
    let bad: BTreeSet<_> = errors.iter().filter_map(|e| e.index).collect();
    let message = if batch {
        format!(
            "{} of {} events are invalid; nothing was recorded",
            bad.len(),
            count
        )
    } else {
        "the event is invalid; nothing was recorded".to_string()
    };
    ApiError::Invalid {
        message,
        details: errors,
    }
}

/// The public id of every organization the receipts may name.
async fn organization_ids(
    state: &AppState,
    home: &Target,
    named: &Named,
    receipts: &[Receipt],
) -> Result<HashMap<OrgKey, String>> {
    let mut ids: HashMap<OrgKey, String> = named
        .targets()
        .chain(std::iter::once(home))
        .map(|t| (t.key, t.id.clone()))
        .collect();
    // A replay answers what was stored then. Its organizations are those the same body names
    // now, unless an external id moved to another organization meanwhile: then the receipt's
    // own organization is looked up (rare enough for a full list).
    if receipts
        .iter()
        .any(|r| r.org.is_some_and(|o| !ids.contains_key(&o)))
    {
        for org in state.store.list_orgs().await? {
            ids.entry(org.key).or_insert(org.id);
        }
    }
    Ok(ids)
}

/// One receipt per event, in the order the events were sent, each naming its organization; an
/// event whose organization has recording turned off has none.
fn receipts(
    ids: &HashMap<OrgKey, String>,
    home: OrgKey,
    targets: &[&Target],
    recording: &HashMap<OrgKey, bool>,
    receipts: Vec<Receipt>,
) -> Vec<EventReceipt> {
    let receipt = |r: Receipt| EventReceipt {
        organization_id: ids.get(&r.org.unwrap_or(home)).cloned().unwrap_or_default(),
        stored: Some(r),
    };
    let stored = targets.iter().filter(|t| recording[&t.key]).count();
    if receipts.len() == stored {
        let mut receipts = receipts.into_iter();
        targets
            .iter()
            .map(|t| match recording[&t.key] {
                true => receipt(receipts.next().expect("one receipt per stored event")),
                false => EventReceipt {
                    organization_id: t.id.clone(),
                    stored: None,
                },
            })
            .collect()
    } else {
        // A replay of a request stored while some organization's recording was otherwise: what
        // was stored then, in the order it was sent.
        receipts.into_iter().map(receipt).collect()
    }
}
