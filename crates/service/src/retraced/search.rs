//! A Retraced search over one organization's trail, with Retraced's paging: `last`/`before`
//! walks newest first, `first`/`after` oldest first; the cursor is an entry's position; the total
//! counts every match whatever the cursor (`src/handlers/graphql/search.ts` in Retraced).
//!
//! A [`Plan`] is answered with the stores' own list and count wherever it can be:
//!
//! - `crud` letters without `r` are a union of exact general actions (`create`, `update`,
//!   `delete`), disjoint: each is walked with the store's filter and the walks merged in order,
//!   and the total is the sum of the counts.
//! - `crud` letters with `r` (but not all four) leave out some of those actions: entries are
//!   walked with the store's filter and the left-out actions skipped until the page is full, and
//!   the total is the filter's count minus the left-out actions' counts.
//! - [`super::query::Check`]s (keywords no store filter holds) can only be counted by reading
//!   every entry the filter selects: up to [`SCAN_LIMIT`] of them; a search that would read more
//!   is refused, naming the keywords, rather than answered with a made-up total.
//!
//! The stores count exactly up to their cap (10,000 matches) and give a lower bound past it
//! (`total_exact: false`); so does this.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use stele_core::filter::{Cursor, CursorDirection, EventFilter};
use stele_core::params::PageRequest;
use stele_core::time::Millis;
use stele_core::{Entry, Seq};
use stele_store::{OrgKey, Store, StoreError};

use super::query::Plan;

/// Retraced's page size when the request names none.
pub const DEFAULT_PAGE: usize = 20;
/// The largest page this door serves (the store's own largest page).
pub const MAX_PAGE: usize = stele_core::filter::MAX_LIMIT;
/// The most entries a search with keywords no store filter holds may read to count its matches.
pub const SCAN_LIMIT: u64 = 10_000;

/// Which way a search walks, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    pub newest_first: bool,
    pub size: usize,
    pub cursor: Option<Position>,
}

/// An entry's place in the order, as a cursor carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub occurred_at: Millis,
    pub seq: Seq,
}

impl Position {
    pub fn of(entry: &Entry) -> Position {
        Position {
            occurred_at: entry.event.occurred_at,
            seq: entry.seq,
        }
    }

    /// Base64 of `<ms>,<seq>`, Retraced's cursor shape (`<canonical_time>,<id>`); opaque to
    /// clients.
    pub fn encode(&self) -> String {
        STANDARD.encode(format!("{},{}", self.occurred_at, self.seq.get()))
    }

    pub fn decode(cursor: &str) -> Result<Position, SearchError> {
        let bad = || SearchError::Invalid("Invalid cursor".into());
        let text = STANDARD
            .decode(cursor.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(bad)?;
        let (ms, seq) = text.split_once(',').ok_or_else(bad)?;
        Ok(Position {
            occurred_at: ms.parse().map_err(|_| bad())?,
            seq: Seq::new(seq.parse().map_err(|_| bad())?),
        })
    }
}

impl Paging {
    /// Reads Retraced's `first`/`after`/`last`/`before` (an empty cursor is none, as the viewer's
    /// first page sends `before: ""`).
    pub fn from_arguments(
        first: Option<i64>,
        after: Option<&str>,
        last: Option<i64>,
        before: Option<&str>,
    ) -> Result<Paging, SearchError> {
        let after = after.filter(|c| !c.is_empty());
        let before = before.filter(|c| !c.is_empty());
        if first.is_some() && last.is_some() {
            return Err(SearchError::Invalid(
                "Arguments 'first' and 'last' are exclusive".into(),
            ));
        }
        if after.is_some() && before.is_some() {
            return Err(SearchError::Invalid(
                "Arguments 'before' and 'after' are exclusive".into(),
            ));
        }
        let size = match last.or(first) {
            None | Some(0) => DEFAULT_PAGE,
            Some(n) if n < 0 || n as u64 > MAX_PAGE as u64 => {
                return Err(SearchError::Invalid(format!(
                    "a page holds 1 to {MAX_PAGE} events"
                )));
            }
            Some(n) => n as usize,
        };
        // As Retraced: `last` walks newest first; without it, oldest first.
        let newest_first = last.is_some();
        let cursor = after.or(before).map(Position::decode).transpose()?;
        Ok(Paging {
            newest_first,
            size,
            cursor,
        })
    }
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// In the order walked.
    pub entries: Vec<Entry>,
    /// Every match, whatever the cursor.
    pub total: u64,
    /// False when `total` is a lower bound (the store stopped counting at its cap).
    pub total_exact: bool,
    pub newest_first: bool,
}

impl Found {
    /// Retraced's `hasPreviousPage`: walking newest first, and more matches than this page.
    pub fn has_previous_page(&self) -> bool {
        self.newest_first && self.total > self.entries.len() as u64
    }

    /// Retraced's `hasNextPage`: walking oldest first, and more matches than this page.
    pub fn has_next_page(&self) -> bool {
        !self.newest_first && self.total > self.entries.len() as u64
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The request cannot be answered as asked (a 400 for Retraced).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The page of matches of `plan` in `org` at `paging`, with the total.
pub async fn search(
    store: &dyn Store,
    org: OrgKey,
    plan: &Plan,
    paging: &Paging,
) -> Result<Found, SearchError> {
    search_reading_at_most(store, org, plan, paging, SCAN_LIMIT).await
}

/// [`search`], counting by reading at most `scan_limit` entries (the tests' smaller limit).
async fn search_reading_at_most(
    store: &dyn Store,
    org: OrgKey,
    plan: &Plan,
    paging: &Paging,
    scan_limit: u64,
) -> Result<Found, SearchError> {
    let branches = branches(plan);
    let (total, total_exact) = count(store, org, plan, &branches, scan_limit).await?;
    let entries = read_page(store, org, plan, &branches, paging).await?;
    Ok(Found {
        entries,
        total,
        total_exact,
        newest_first: paging.newest_first,
    })
}

/// The store filters whose matches together are the plan's candidates: one per kept action when
/// `r` is left out (disjoint: each names one general action), else the plan's filter alone.
fn branches(plan: &Plan) -> Vec<EventFilter> {
    if plan.crud.r {
        return vec![plan.filter.clone()];
    }
    plan.crud
        .actions()
        .into_iter()
        .filter(|a| plan.filter.action.as_deref().is_none_or(|set| set == *a))
        .map(|action| EventFilter {
            action: Some(action.to_string()),
            ..plan.filter.clone()
        })
        .collect()
}

/// Whether an entry a branch selected is a match: the left-out actions of a set with `r`, and
/// the checks. (A branch of a set without `r` holds only kept actions.)
fn admits(plan: &Plan, entry: &Entry) -> bool {
    plan.admits(entry)
}

async fn count(
    store: &dyn Store,
    org: OrgKey,
    plan: &Plan,
    branches: &[EventFilter],
    scan_limit: u64,
) -> Result<(u64, bool), SearchError> {
    if !plan.checks.is_empty() {
        return count_by_reading(store, org, plan, branches, scan_limit).await;
    }
    let mut total = 0;
    let mut exact = true;
    for branch in branches {
        let (n, e) = store.count(org, branch).await?;
        total += n;
        exact &= e;
    }
    if !plan.crud.r || plan.crud.is_all() {
        return Ok((total, exact));
    }
    // `r` with some of c, u, d: the filter's matches less the left-out actions'.
    let mut excluded = 0;
    let mut excluded_exact = true;
    for action in plan.crud.excluded_actions() {
        let filter = EventFilter {
            action: Some(action.to_string()),
            ..plan.filter.clone()
        };
        let (n, e) = store.count(org, &filter).await?;
        excluded += n;
        excluded_exact &= e;
    }
    if exact && excluded_exact {
        return Ok((total.saturating_sub(excluded), true));
    }
    // Past the store's cap the difference bounds nothing; count what reading finds instead.
    count_by_reading(store, org, plan, branches, scan_limit).await
}

/// Counts the matches by reading every candidate, up to `scan_limit` of them.
async fn count_by_reading(
    store: &dyn Store,
    org: OrgKey,
    plan: &Plan,
    branches: &[EventFilter],
    scan_limit: u64,
) -> Result<(u64, bool), SearchError> {
    let mut walk = Merge::new(branches, true, None, PAGE_READ);
    let mut read = 0u64;
    let mut matches = 0u64;
    while let Some(entry) = walk.next(store, org).await? {
        read += 1;
        if read > scan_limit {
            if plan.checks.is_empty() {
                // Only the `crud` letters were left to check: a lower bound, as the store's own.
                return Ok((matches, false));
            }
            let keywords: Vec<&str> = plan.checks.iter().map(|c| c.keyword()).collect();
            return Err(SearchError::Invalid(format!(
                "{}: Stele checks this keyword entry by entry, and this search would read more \
                 than {scan_limit} events to count its matches; narrow it with received:, \
                 action:, actor.id: or target.id:",
                keywords.join(", ")
            )));
        }
        if admits(plan, &entry) {
            matches += 1;
        }
    }
    Ok((matches, true))
}

/// Entries read from the store per request when matches are picked out entry by entry.
const PAGE_READ: usize = 200;

async fn read_page(
    store: &dyn Store,
    org: OrgKey,
    plan: &Plan,
    branches: &[EventFilter],
    paging: &Paging,
) -> Result<Vec<Entry>, SearchError> {
    let picking = !plan.checks.is_empty() || (plan.crud.r && !plan.crud.is_all());
    // Without picking, a page of the store holds the page (and one more says nothing here: the
    // total does). With it, read in larger pages.
    let batch = if picking {
        PAGE_READ.max(paging.size)
    } else {
        paging.size
    };
    let mut walk = Merge::new(branches, paging.newest_first, paging.cursor, batch);
    let mut out = Vec::with_capacity(paging.size);
    while out.len() < paging.size {
        let Some(entry) = walk.next(store, org).await? else {
            break;
        };
        if admits(plan, &entry) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Several filters' matches walked together in one order (newest or oldest first), each read a
/// page at a time with the store's keyset cursor.
struct Merge {
    walks: Vec<Walk>,
    newest_first: bool,
}

struct Walk {
    request: PageRequest,
    buffer: std::collections::VecDeque<Entry>,
    done: bool,
}

impl Merge {
    fn new(
        filters: &[EventFilter],
        newest_first: bool,
        from: Option<Position>,
        batch: usize,
    ) -> Merge {
        let cursor = match (newest_first, from) {
            (true, None) => None,
            (true, Some(p)) => Some(Cursor {
                direction: CursorDirection::Older,
                occurred_at: p.occurred_at,
                seq: p.seq,
            }),
            // Oldest first from the very start: everything newer than before the first entry.
            (false, None) => Some(Cursor {
                direction: CursorDirection::Newer,
                occurred_at: Millis::MIN,
                seq: Seq::BEFORE_FIRST,
            }),
            (false, Some(p)) => Some(Cursor {
                direction: CursorDirection::Newer,
                occurred_at: p.occurred_at,
                seq: p.seq,
            }),
        };
        Merge {
            walks: filters
                .iter()
                .map(|filter| Walk {
                    request: PageRequest {
                        filter: filter.clone(),
                        limit: batch.clamp(1, MAX_PAGE),
                        cursor,
                    },
                    buffer: Default::default(),
                    done: false,
                })
                .collect(),
            newest_first,
        }
    }

    /// The next entry in the order over every walk, `None` when all are done.
    async fn next(&mut self, store: &dyn Store, org: OrgKey) -> Result<Option<Entry>, StoreError> {
        for walk in &mut self.walks {
            if walk.buffer.is_empty() && !walk.done {
                walk.fill(store, org, self.newest_first).await?;
            }
        }
        let key = |e: &Entry| (e.event.occurred_at, e.seq);
        let newest_first = self.newest_first;
        let best = self
            .walks
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.buffer.front().map(|e| (i, key(e))))
            .reduce(|a, b| {
                let b_first = if newest_first { b.1 > a.1 } else { b.1 < a.1 };
                if b_first { b } else { a }
            });
        Ok(best.and_then(|(i, _)| self.walks[i].buffer.pop_front()))
    }
}

impl Walk {
    async fn fill(
        &mut self,
        store: &dyn Store,
        org: OrgKey,
        newest_first: bool,
    ) -> Result<(), StoreError> {
        let page = store.list(org, &self.request).await?;
        let mut entries = page.entries;
        // A page is newest first whichever way it was walked.
        if !newest_first {
            entries.reverse();
        }
        if entries.len() < self.request.limit {
            self.done = true;
        }
        if let Some(last) = entries.last() {
            self.request.cursor = Some(Cursor {
                direction: if newest_first {
                    CursorDirection::Older
                } else {
                    CursorDirection::Newer
                },
                occurred_at: last.event.occurred_at,
                seq: last.seq,
            });
        } else {
            self.done = true;
        }
        self.buffer.extend(entries);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use stele_core::event::{Actor, ActorType, NewEvent, Outcome};

    use super::*;
    use crate::retraced::query;

    /// An organization with 30 entries a second apart: `create`, `update` and `view` in turn,
    /// by Ada on every even one.
    async fn trail() -> (Arc<dyn Store>, OrgKey, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> =
            Arc::new(stele_store_sqlite::SqliteStore::open(&dir.path().join("stele.db")).unwrap());
        let org = store.create_org("acme").await.unwrap().key;
        for i in 0..30i64 {
            let event = NewEvent {
                occurred_at: 1_700_000_000_000 + i * 1000,
                action: ["create", "update", "view"][i as usize % 3].into(),
                detailed_action: None,
                channel: "default".into(),
                description: Some(format!("entry {i}")),
                outcome: Outcome::Success,
                actor: Actor {
                    name: Some(if i % 2 == 0 { "Ada" } else { "Bo" }.into()),
                    ..Actor::of_kind(ActorType::User)
                },
                entity: None,
                entity_ids: vec![],
                context: Default::default(),
                changes: vec![],
                metadata: Default::default(),
                idempotency_key: None,
                origin: Default::default(),
                related_entities: vec![],
            };
            crate::trail::record(store.as_ref(), org, event)
                .await
                .unwrap();
        }
        (store, org, dir)
    }

    fn plan(text: &str) -> Plan {
        query::plan(text, query::every_entry()).unwrap()
    }

    fn newest(size: usize, cursor: Option<Position>) -> Paging {
        Paging {
            newest_first: true,
            size,
            cursor,
        }
    }

    /// Every page of a search, walked with its cursor: the descriptions' numbers, and the totals.
    async fn walk(store: &dyn Store, org: OrgKey, text: &str) -> (Vec<i64>, Vec<u64>) {
        let (mut seen, mut totals, mut cursor) = (Vec::new(), Vec::new(), None);
        loop {
            let found = search(store, org, &plan(text), &newest(4, cursor))
                .await
                .unwrap();
            totals.push(found.total);
            let Some(last) = found.entries.last() else {
                break;
            };
            cursor = Some(Position::of(last));
            seen.extend(found.entries.iter().map(|e| {
                e.event.description.as_deref().unwrap()[6..]
                    .parse::<i64>()
                    .unwrap()
            }));
        }
        (seen, totals)
    }

    #[tokio::test]
    async fn crud_sets_walk_every_match_once_newest_first_with_the_total_whatever_the_cursor() {
        let (store, org, _dir) = trail().await;
        let expect =
            |keep: &dyn Fn(i64) -> bool| (0..30).rev().filter(|i| keep(*i)).collect::<Vec<_>>();
        // Without r: the create and update walks merged.
        let (seen, totals) = walk(store.as_ref(), org, "crud:c,u").await;
        assert_eq!(seen, expect(&|i| i % 3 != 2));
        assert!(totals.iter().all(|t| *t == 20), "{totals:?}");
        // With r: the filter's count less the left-out actions'.
        let (seen, totals) = walk(store.as_ref(), org, "crud:r,d").await;
        assert_eq!(seen, expect(&|i| i % 3 == 2));
        assert!(totals.iter().all(|t| *t == 10), "{totals:?}");
        // A check, counted by reading.
        let (seen, totals) = walk(store.as_ref(), org, "crud:c,r actor.name:ada").await;
        assert_eq!(seen, expect(&|i| i % 3 != 1 && i % 2 == 0));
        assert!(totals.iter().all(|t| *t == 10), "{totals:?}");
    }

    #[tokio::test]
    async fn a_check_that_would_read_too_much_is_refused_by_name() {
        let (store, org, _dir) = trail().await;
        let refused = search_reading_at_most(
            store.as_ref(),
            org,
            &plan("actor.name:ada"),
            &newest(5, None),
            10,
        )
        .await;
        match refused {
            Err(SearchError::Invalid(message)) => {
                assert!(message.starts_with("actor.name:"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let within = search_reading_at_most(
            store.as_ref(),
            org,
            &plan("actor.name:ada"),
            &newest(5, None),
            30,
        )
        .await
        .unwrap();
        assert_eq!((within.total, within.total_exact), (15, true));
        assert_eq!(within.entries.len(), 5);
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_invalid() {
        let p = Position {
            occurred_at: 1_714_566_896_789,
            seq: Seq::new(42),
        };
        assert_eq!(Position::decode(&p.encode()).unwrap(), p);
        for bad in ["", "!!", "MTIz", "YSxi"] {
            assert!(matches!(
                Position::decode(bad),
                Err(SearchError::Invalid(_))
            ));
        }
    }

    #[test]
    fn paging_reads_retraceds_arguments() {
        let p = Paging::from_arguments(None, None, Some(20), Some("")).unwrap();
        assert!(p.newest_first && p.cursor.is_none() && p.size == 20);
        let p = Paging::from_arguments(Some(5), None, None, None).unwrap();
        assert!(!p.newest_first && p.size == 5);
        assert_eq!(
            Paging::from_arguments(None, None, None, None).unwrap().size,
            DEFAULT_PAGE
        );
        assert!(Paging::from_arguments(Some(1), None, Some(1), None).is_err());
        assert!(Paging::from_arguments(None, Some("a"), None, Some("b")).is_err());
        assert!(Paging::from_arguments(None, None, Some(-1), None).is_err());
        assert!(Paging::from_arguments(None, None, Some(100_000), None).is_err());
    }
}
