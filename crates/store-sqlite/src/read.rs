//! The read side: turning an [`EventFilter`] and cursor into a plan whose order an index (or a
//! posting list) already gives, so a first page costs about as much as the rows it returns.
//!
//! Two plans, chosen per request:
//! - **Terms**: every filter but the description search becomes an FTS5 expression over hashed
//!   terms (`terms.rs`): the organization's term AND each exact-match filter, NOT the excluded
//!   actor types (System, by default) or failures. It is walked in the `entry_terms` table by
//!   `rowid = pk` descending and joined to `entries`. A count needs no join at all.
//! - **Candidates**: a description search whose trigrams narrow the rows to a few thousand;
//!   those rows are read and checked with [`EventFilter::matches`], the reference semantics.
//!   (A common substring instead adds a per-row check to the Terms plan.)
//!
//! The search index is written behind the commit (`search.rs`), so every plan reads it together
//! with [`Unindexed`]: the organization's entries written, rewritten or removed since the index's
//! watermark. Their index rows (missing or stale) are left out, and the entries as stored now
//! are checked with [`EventFilter::matches`] and merged in, so an acknowledged entry is found by
//! every filter at once.
//!
//! And one more when the organization is alone in the database and nothing but a time range and
//! the actor types narrow the walk: **Scan**, `entries` read in `pk` order with the actor types
//! checked per row ([`Scan`]); the export's walk (`list_rows`) always, a page or a count when
//! the filter has a time range.

use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use stele_core::filter::{Cursor, CursorDirection, DetailedActionMatch, EventFilter};
use stele_core::params::PageRequest;
use stele_core::{ActorType, Entry, Outcome, Seq};
use stele_store::record::CorruptRow;
use stele_store::rows::RowPage;
use stele_store::{Facets, OrgKey, Page, Result, StoreError};

use crate::codec::{ENTRY_COLUMNS, description_rowid, pk_floor, pk_of_id, with_stored_row};
use crate::dict::Dict;
use crate::error::map_err;
use crate::schema::*;
use crate::terms::{self, Field};

/// Counting stops at this many matches (the total is then a lower bound) ...
const COUNT_CAP: u64 = 10_000;
/// ... or after this long, whichever comes first, so the count never makes a page slow.
const COUNT_BUDGET: Duration = Duration::from_millis(5);
/// A description search asks the trigram index for at most this many candidates; a substring
/// common enough to exceed it is found faster by walking newest first and checking each row.
const FTS_CANDIDATE_CAP: usize = 5_000;

/// How one filtered query runs, before cursor and limit.
#[derive(Clone)]
enum Plan {
    /// Nothing can match: a value the organization never used (the dictionary is written with
    /// the entries, so this holds for entries the index has not taken in too).
    Empty,
    Terms {
        expr: String,
        sql: SqlParts,
    },
    /// The `seq`s of the entries whose description may hold the substring, as the index has
    /// them.
    Candidates {
        seqs: Vec<i64>,
    },
}

/// Per-row conditions on `entries e` (the organization, and a common search substring), and the
/// `pk` range from `from`/`to`.
#[derive(Clone, Default)]
struct SqlParts {
    conditions: Vec<String>,
    params: Vec<SqlValue>,
    pk_from: Option<i64>,
    pk_to: Option<i64>,
    /// Whether a per-row condition beyond the organization exists (then counting must read rows).
    row_checks: bool,
}

impl SqlParts {
    fn param(&mut self, v: impl Into<SqlValue>) -> String {
        self.params.push(v.into());
        format!("?{}", self.params.len())
    }
}

fn plan(conn: &Connection, dict: &Dict, org: OrgKey, f: &EventFilter) -> Result<Plan> {
    // No stored text holds U+0000, so a filter value with one matches nothing; asked anyway,
    // FTS5 would fail on it.
    if f.holds_nul() {
        return Ok(Plan::Empty);
    }
    // Terms that must all be present. Every term is bound to its organization already; the
    // organization's own term (on every entry) is added only when no filter term is given.
    let mut all: Vec<String> = Vec::new();
    let mut none: Vec<String> = Vec::new();
    let mut sql = SqlParts::default();
    let org_param = sql.param(org.get());
    // Terms are bound to the organization already; this guards against a hash collision.
    sql.conditions.push(format!("e.org_id = {org_param}"));

    // Dictionary-backed filters: a value the dictionary never saw cannot match.
    for (field, kind, value) in [
        (Field::Action, DICT_ACTION, &f.action),
        (Field::Channel, DICT_CHANNEL, &f.channel),
        (Field::EntityType, DICT_ENTITY_TYPE, &f.entity_type),
    ] {
        if let Some(value) = value {
            if lookup(conn, dict, kind, value)?.is_none() {
                return Ok(Plan::Empty);
            }
            all.push(terms::term(org, field, value));
        }
    }
    match &f.detailed_action {
        None => {}
        Some(DetailedActionMatch::Exact(value)) => {
            if lookup(conn, dict, DICT_DETAILED_ACTION, value)?.is_none() {
                return Ok(Plan::Empty);
            }
            all.push(terms::term(org, Field::DetailedAction, value));
        }
        Some(DetailedActionMatch::Prefix(prefix)) => {
            dict.refresh(conn).map_err(map_err)?;
            let values = dict.values_with_prefix(DICT_DETAILED_ACTION, prefix);
            if values.is_empty() {
                return Ok(Plan::Empty);
            }
            let any: Vec<String> = values
                .iter()
                .map(|v| terms::term(org, Field::DetailedAction, v))
                .collect();
            all.push(format!("({})", any.join(" OR ")));
        }
    }
    for (field, value) in [
        (Field::EntityId, &f.entity_id),
        (Field::Actor, &f.actor),
        (Field::CorrelationId, &f.correlation_id),
        (Field::Ip, &f.ip),
    ] {
        if let Some(value) = value {
            all.push(terms::term(org, field, value));
        }
    }
    match f.outcome {
        Some(Outcome::Failure) => all.push(terms::term(org, Field::Failure, "")),
        Some(Outcome::Success) => none.push(terms::term(org, Field::Failure, "")),
        None => {}
    }
    if f.actor_types.len() < ActorType::ALL.len() {
        let excluded: Vec<ActorType> = ActorType::ALL
            .into_iter()
            .filter(|t| !f.actor_types.contains(t))
            .collect();
        // Whichever list is shorter: the default (everyone but System) is one NOT.
        if excluded.len() <= f.actor_types.len() {
            none.extend(excluded.iter().map(|t| terms::actor_type_term(org, *t)));
        } else {
            let any: Vec<String> = f
                .actor_types
                .iter()
                .map(|t| terms::actor_type_term(org, *t))
                .collect();
            all.push(format!("({})", any.join(" OR ")));
        }
    }
    sql.pk_from = f.from.map(pk_floor);
    sql.pk_to = f.to.map(pk_floor);

    if let Some(q) = &f.q {
        let needle = q.to_lowercase();
        if let Some(seqs) = fts_candidates(conn, org, &needle)? {
            // No candidate in the index still leaves the entries it has not taken in.
            return Ok(Plan::Candidates { seqs });
        }
        let p = sql.param(needle);
        sql.conditions
            .push(format!("stele_icontains(e.description, {p})"));
        sql.row_checks = true;
    }
    if all.is_empty() {
        all.push(terms::term(org, Field::Org, ""));
    }
    let mut expr = format!("({})", all.join(" AND "));
    if !none.is_empty() {
        expr = format!("{expr} NOT ({})", none.join(" OR "));
    }
    Ok(Plan::Terms { expr, sql })
}

/// The `seq`s of the organization's entries whose description may contain `needle`, if the
/// trigram index narrows them to a manageable set; `None` when it cannot help (needle too short,
/// or too common).
fn fts_candidates(conn: &Connection, org: OrgKey, needle: &str) -> Result<Option<Vec<i64>>> {
    let chars: Vec<char> = needle.chars().collect();
    if chars.len() < 3 {
        return Ok(None);
    }
    let mut trigrams: Vec<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
    trigrams.sort();
    trigrams.dedup();
    // detail=none cannot match phrases, so ask for rows holding every trigram; the caller
    // re-checks the real text.
    let query = trigrams
        .iter()
        .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut stmt = conn
        .prepare_cached(
            "SELECT rowid FROM entries_fts WHERE entries_fts MATCH ? AND rowid >= ? AND rowid < ?
             ORDER BY rowid DESC LIMIT ?",
        )
        .map_err(map_err)?;
    let ids = stmt
        .query_map(
            rusqlite::params![
                query,
                description_rowid(org.get(), 0),
                description_rowid(org.get() + 1, 0),
                FTS_CANDIDATE_CAP as i64 + 1
            ],
            |r| {
                r.get::<_, i64>(0)
                    .map(|rowid| rowid - description_rowid(org.get(), 0))
            },
        )
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<i64>>>())
        .map_err(map_err)?;
    Ok((ids.len() <= FTS_CANDIDATE_CAP).then_some(ids))
}

fn lookup(conn: &Connection, dict: &Dict, kind: i64, value: &str) -> Result<Option<i64>> {
    if let Some(id) = dict.id_of(kind, value) {
        return Ok(Some(id));
    }
    // Perhaps another process (or a commit this cache has not heard of) added it.
    dict.refresh(conn).map_err(map_err)?;
    Ok(dict.id_of(kind, value))
}

/// The SQL of a Terms plan with extra `pk` bounds, newest or oldest first. With `rows`, it
/// joins `entries` and applies the per-row conditions; without, it reads only the term index.
fn plan_sql(
    plan: &Plan,
    unindexed: &Unindexed,
    select: &str,
    after: Option<(i64, i64)>,
    descending: bool,
    rows: bool,
) -> Option<(String, Vec<SqlValue>)> {
    let Plan::Terms { expr, sql } = plan else {
        return None;
    };
    let mut sql = sql.clone();
    let mut conditions = vec![];
    let p = sql.param(expr.clone());
    conditions.push(format!("t.entry_terms MATCH {p}"));
    if let Some(pks) = &unindexed.pks {
        let p = sql.param(pks.clone());
        conditions.push(format!("t.rowid NOT IN (SELECT value FROM json_each({p}))"));
    }
    let lo = [sql.pk_from, after.map(|(lo, _)| lo)]
        .into_iter()
        .flatten()
        .max();
    let hi = [sql.pk_to, after.map(|(_, hi)| hi)]
        .into_iter()
        .flatten()
        .min();
    if let Some(lo) = lo {
        let p = sql.param(lo);
        conditions.push(format!("t.rowid >= {p}"));
    }
    if let Some(hi) = hi {
        let p = sql.param(hi);
        conditions.push(format!("t.rowid < {p}"));
    }
    let from = if rows {
        conditions.extend(sql.conditions.iter().cloned());
        // CROSS JOIN keeps the term index as the outer loop, so its rowid order is the order.
        "entry_terms t CROSS JOIN entries e ON e.pk = t.rowid"
    } else {
        "entry_terms t"
    };
    let order = if descending { "DESC" } else { "ASC" };
    Some((
        format!(
            "SELECT {select} FROM {from} WHERE {} ORDER BY t.rowid {order}",
            conditions.join(" AND ")
        ),
        sql.params,
    ))
}

/// The `pk` of the entry a cursor points at (`None` if it was pruned meanwhile).
fn cursor_pk(conn: &Connection, org: OrgKey, c: &Cursor) -> Result<i64> {
    let pk: Option<i64> = conn
        .prepare_cached("SELECT pk FROM entries WHERE org_id = ? AND seq = ?")
        .and_then(|mut s| {
            rusqlite::OptionalExtension::optional(
                s.query_row(rusqlite::params![org.get(), c.seq.get()], |r| r.get(0)),
            )
        })
        .map_err(map_err)?;
    Ok(match pk {
        Some(pk) => pk,
        // Pruned: the millisecond boundary is the closest position still meaningful.
        None => match c.direction {
            CursorDirection::Older => pk_floor(c.occurred_at),
            CursorDirection::Newer => pk_floor(c.occurred_at + 1) - 1,
        },
    })
}

/// A page of matches with their capped count.
pub fn list(conn: &Connection, dict: &Dict, org: OrgKey, page: &PageRequest) -> Result<Page> {
    if let Some(scan) = time_range_scan(conn, org, &page.filter)? {
        let entries = scan
            .rows(conn, dict, page)?
            .iter()
            .map(|row| row.entry().map_err(corrupt))
            .collect::<Result<Vec<Entry>>>()?;
        let (total, exact) = scan.count(conn)?;
        return Ok(Page::from_window(entries, page, total, exact));
    }
    let unindexed = Unindexed::load(conn, dict, org)?;
    let plan = plan(conn, dict, org, &page.filter)?;
    let window = window(conn, dict, org, page, &plan, &unindexed)?;
    let entries = window
        .rows
        .iter()
        .map(|row| row.entry().map_err(corrupt))
        .collect::<Result<Vec<Entry>>>()?;
    let (total, exact) = match &plan {
        Plan::Empty => (0, true),
        Plan::Candidates { .. } => (window.matched, true),
        Plan::Terms { .. } => {
            let (indexed, exact) = count_plan(conn, &plan, &unindexed)?;
            (indexed + window.matched, exact)
        }
    };
    Ok(Page::from_window(entries, page, total, exact))
}

/// A page of matches as stored rows, uncounted (the export's walk).
pub fn list_rows(
    conn: &Connection,
    dict: &Dict,
    org: OrgKey,
    page: &PageRequest,
) -> Result<RowPage> {
    if let Some(rows) = scan_window(conn, dict, org, page)? {
        return Ok(rows.finish(page));
    }
    let unindexed = Unindexed::load(conn, dict, org)?;
    let plan = plan(conn, dict, org, &page.filter)?;
    Ok(window(conn, dict, org, page, &plan, &unindexed)?
        .rows
        .finish(page))
}

/// A walk of the `entries` table itself in `pk` order, with the actor types checked on each row:
/// for a filter that narrows by nothing but a time range and the actor types, in a database
/// where no other organization has entries. The Terms plan would walk the organization's posting
/// list, and FTS5's steps cost more the longer the list: backwards through all of it, the bulk
/// walk of an export (a sixth of its time at 10M entries); to the middle of it, a time range's
/// first page (p95 34 ms at 10M, its count finding nothing within its budget). Here every row of
/// the range matches but for its actor type, and the table holds every entry, indexed or not.
struct Scan {
    org: OrgKey,
    /// The filter's time range as `pk` bounds: `lo <= pk < hi`.
    lo: Option<i64>,
    hi: Option<i64>,
    /// ` AND e.actor_type IN (…)`, or nothing when every actor type is asked for.
    actor_types: String,
}

impl Scan {
    /// `None` when the filter or the database asks for the Terms plan.
    fn plan(conn: &Connection, org: OrgKey, f: &EventFilter) -> Result<Option<Scan>> {
        let narrowed = f.action.is_some()
            || f.detailed_action.is_some()
            || f.actor.is_some()
            || f.entity_type.is_some()
            || f.entity_id.is_some()
            || f.channel.is_some()
            || f.outcome.is_some()
            || f.correlation_id.is_some()
            || f.ip.is_some()
            || f.q.is_some();
        if narrowed {
            return Ok(None);
        }
        // Two probes of the (org_id, seq) index: does any other organization have an entry?
        let others: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM entries WHERE org_id < ?1) \
                     OR EXISTS (SELECT 1 FROM entries WHERE org_id > ?1)",
            )
            .and_then(|mut s| s.query_row([org.get()], |r| r.get(0)))
            .map_err(map_err)?;
        if others {
            return Ok(None);
        }
        let actor_types = if f.actor_types.len() < ActorType::ALL.len() {
            let codes: Vec<String> = f.actor_types.iter().map(|t| t.code().to_string()).collect();
            format!(" AND e.actor_type IN ({})", codes.join(","))
        } else {
            String::new()
        };
        Ok(Some(Scan {
            org,
            lo: f.from.map(pk_floor),
            hi: f.to.map(pk_floor),
            actor_types,
        }))
    }

    /// `FROM entries e WHERE …` and its parameters, past the cursor's `position` (its
    /// direction and `pk`) if there is one.
    fn sql_past(&self, position: Option<(CursorDirection, i64)>) -> (String, Vec<SqlValue>) {
        let (mut lo, mut hi) = (self.lo, self.hi);
        match position {
            Some((CursorDirection::Older, pk)) => hi = Some(hi.map_or(pk, |h| h.min(pk))),
            Some((CursorDirection::Newer, pk)) => lo = Some(lo.map_or(pk + 1, |l| l.max(pk + 1))),
            None => {}
        }
        let mut params: Vec<SqlValue> = vec![self.org.get().into()];
        // `+e.org_id`: the walk follows the primary key, never the (org_id, seq) index and a sort.
        let mut sql = "FROM entries e WHERE +e.org_id = ?1".to_string();
        for (bound, op) in [(lo, ">="), (hi, "<")] {
            if let Some(pk) = bound {
                params.push(pk.into());
                sql.push_str(&format!(" AND e.pk {op} ?{}", params.len()));
            }
        }
        sql.push_str(&self.actor_types);
        (sql, params)
    }

    /// The page's rows in walking order, up to `limit + 1` (see [`Page::from_window`]).
    fn rows(&self, conn: &Connection, dict: &Dict, page: &PageRequest) -> Result<RowPage> {
        let direction = page.cursor.map_or(CursorDirection::Older, |c| c.direction);
        let position = page
            .cursor
            .map(|c| Ok::<_, StoreError>((c.direction, cursor_pk(conn, self.org, &c)?)))
            .transpose()?;
        let order = match direction {
            CursorDirection::Older => "DESC",
            CursorDirection::Newer => "ASC",
        };
        let (from_where, mut params) = self.sql_past(position);
        let want = page.limit + 1;
        params.push((want as i64).into());
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} {from_where} ORDER BY e.pk {order} LIMIT ?{}",
            params.len()
        );
        query_row_page(conn, dict, &sql, &params, want)
    }

    /// The number of matches, capped and within the budget like every count ([`counted`]).
    fn count(&self, conn: &Connection) -> Result<(u64, bool)> {
        let (from_where, params) = self.sql_past(None);
        let sql = format!("SELECT 1 {from_where} ORDER BY e.pk DESC");
        counted(conn, &sql, &params)
    }
}

/// The plan for a time range (`from` or `to` given) that nothing else narrows: see [`Scan`].
fn time_range_scan(conn: &Connection, org: OrgKey, f: &EventFilter) -> Result<Option<Scan>> {
    if f.from.is_none() && f.to.is_none() {
        return Ok(None);
    }
    Scan::plan(conn, org, f)
}

/// The export's walk of every entry of an organization alone in the database, at most a time
/// range and the actor types narrowing it ([`Scan`]). `None` when the filter or the database
/// asks for the Terms plan.
fn scan_window(
    conn: &Connection,
    dict: &Dict,
    org: OrgKey,
    page: &PageRequest,
) -> Result<Option<RowPage>> {
    Scan::plan(conn, org, &page.filter)?
        .map(|scan| scan.rows(conn, dict, page))
        .transpose()
}

/// The rows of a page in walking order, up to `limit + 1` (see [`Page::from_window`]).
struct Window {
    rows: RowPage,
    /// Matches counted while reading: for a Candidates plan, every match of the filter (its
    /// exact count); for a Terms plan, those among the entries the index has not taken in.
    matched: u64,
}

fn window(
    conn: &Connection,
    dict: &Dict,
    org: OrgKey,
    page: &PageRequest,
    plan: &Plan,
    unindexed: &Unindexed,
) -> Result<Window> {
    let direction = page.cursor.map_or(CursorDirection::Older, |c| c.direction);
    let position = page.cursor.map(|c| cursor_pk(conn, org, &c)).transpose()?;
    let tail = unindexed.matching(&page.filter)?;
    let indexed = indexed_window(conn, dict, org, page, plan, unindexed, position)?;
    if tail.is_empty() {
        return Ok(indexed);
    }
    let rows = merge(&indexed.rows, &tail, position, direction, page.limit + 1);
    Ok(Window {
        rows,
        matched: indexed.matched + tail.len() as u64,
    })
}

/// Merges two pages of rows, each in walking order (`tail` newest first), keeping those past
/// the cursor's `position`, up to `want`.
fn merge(
    indexed: &RowPage,
    tail: &RowPage,
    position: Option<i64>,
    direction: CursorDirection,
    want: usize,
) -> RowPage {
    let past = |pk: i64| match (position, direction) {
        (None, _) => true,
        (Some(at), CursorDirection::Older) => pk < at,
        (Some(at), CursorDirection::Newer) => pk > at,
    };
    let mut extra: Vec<_> = tail.iter().filter(|row| past(row.pk)).collect();
    if direction == CursorDirection::Newer {
        extra.reverse();
    }
    let first = |a: i64, b: i64| match direction {
        CursorDirection::Older => a > b,
        CursorDirection::Newer => a < b,
    };
    let mut out = RowPage::with_capacity(want);
    let mut indexed = indexed.iter().peekable();
    let mut extra = extra.into_iter().peekable();
    while out.len() < want {
        let take_indexed = match (indexed.peek(), extra.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(a), Some(b)) => first(a.pk, b.pk),
        };
        let row = if take_indexed {
            indexed.next()
        } else {
            extra.next()
        };
        if let Some(row) = row {
            out.push(&row);
        }
    }
    out
}

/// The page as the index answers it, the entries it has not taken in left out; `position` is
/// the cursor's `pk`.
fn indexed_window(
    conn: &Connection,
    dict: &Dict,
    org: OrgKey,
    page: &PageRequest,
    plan: &Plan,
    unindexed: &Unindexed,
    position: Option<i64>,
) -> Result<Window> {
    let direction = page.cursor.map_or(CursorDirection::Older, |c| c.direction);
    // `(lo, hi)`: strictly older is pk < position, strictly newer is pk > position.
    let bounds = position.map(|pk| match direction {
        CursorDirection::Older => (i64::MIN, pk),
        CursorDirection::Newer => (pk + 1, i64::MAX),
    });
    let want = page.limit + 1;
    match plan {
        Plan::Empty => Ok(Window {
            rows: RowPage::default(),
            matched: 0,
        }),
        Plan::Candidates { seqs } => {
            let seqs = unindexed.without(seqs);
            let matched = candidate_matches(conn, dict, org, &seqs, &page.filter)?;
            let mut after: Vec<_> = matched
                .iter()
                .filter(|row| bounds.is_none_or(|(lo, hi)| row.pk >= lo && row.pk < hi))
                .collect();
            if direction == CursorDirection::Newer {
                after.reverse();
            }
            after.truncate(want);
            let mut rows = RowPage::with_capacity(after.len());
            for row in &after {
                rows.push(row);
            }
            Ok(Window {
                rows,
                matched: matched.len() as u64,
            })
        }
        Plan::Terms { .. } => {
            let descending = direction == CursorDirection::Older;
            let (sql, mut params) =
                plan_sql(plan, unindexed, ENTRY_COLUMNS, bounds, descending, true)
                    .expect("a query plan");
            params.push((want as i64).into());
            let sql = format!("{sql} LIMIT ?{}", params.len());
            Ok(Window {
                rows: query_row_page(conn, dict, &sql, &params, want)?,
                matched: 0,
            })
        }
    }
}

/// The candidate rows of a description search: the seqs come as one parameter, a JSON array
/// ([`seq_list`]), so that every candidate list runs the same statement. Written into the SQL as
/// literals (up to [`FTS_CANDIDATE_CAP`] of them), each list made a statement of its own, with a
/// program of hundreds of kilobytes, and each reader connection's statement cache (128
/// statements) kept the last 128 of them: well over 100 MB of a server's memory held by
/// statements never run again (issue 17; the `soak` scenario of docs/benchmarks.md).
const CANDIDATES_WHERE: &str = "e.org_id = ?1 AND e.seq IN (SELECT value FROM json_each(?2))";

/// Numbers as the JSON array `json_each` reads ([`CANDIDATES_WHERE`], [`Unindexed`]).
fn json_list(numbers: &[i64]) -> String {
    let mut list = String::with_capacity(numbers.len() * 8 + 2);
    list.push('[');
    for (i, n) in numbers.iter().enumerate() {
        if i > 0 {
            list.push(',');
        }
        list.push_str(&n.to_string());
    }
    list.push(']');
    list
}

/// The candidate rows of a description search that the filter matches, newest first.
fn candidate_matches(
    conn: &Connection,
    dict: &Dict,
    org: OrgKey,
    seqs: &[i64],
    filter: &EventFilter,
) -> Result<RowPage> {
    if seqs.is_empty() {
        return Ok(RowPage::default());
    }
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM entries e WHERE {CANDIDATES_WHERE} ORDER BY e.pk DESC"
    );
    let params = [org.get().into(), json_list(seqs).into()];
    let candidates = query_row_page(conn, dict, &sql, &params, seqs.len())?;
    // Checked with the reference semantics, which need the whole entry.
    let mut matched = RowPage::with_capacity(candidates.len());
    for row in candidates.iter() {
        if filter.matches(&row.entry().map_err(corrupt)?) {
            matched.push(&row);
        }
    }
    Ok(matched)
}

pub fn count_matches(
    conn: &Connection,
    dict: &Dict,
    org: OrgKey,
    f: &EventFilter,
) -> Result<(u64, bool)> {
    if let Some(scan) = time_range_scan(conn, org, f)? {
        return scan.count(conn);
    }
    let unindexed = Unindexed::load(conn, dict, org)?;
    let plan = plan(conn, dict, org, f)?;
    let tail = match plan {
        Plan::Empty => return Ok((0, true)),
        _ => unindexed.matching(f)?.len() as u64,
    };
    let (indexed, exact) = match plan {
        Plan::Candidates { seqs } => (
            candidate_matches(conn, dict, org, &unindexed.without(&seqs), f)?.len() as u64,
            true,
        ),
        plan => count_plan(conn, &plan, &unindexed)?,
    };
    Ok((indexed + tail, exact))
}

/// Counts the index's matches of a plan ([`counted`]).
fn count_plan(conn: &Connection, plan: &Plan, unindexed: &Unindexed) -> Result<(u64, bool)> {
    let rows = matches!(plan, Plan::Terms { sql, .. } if sql.row_checks);
    let Some((sql, params)) = plan_sql(plan, unindexed, "1", None, true, rows) else {
        return Ok((0, true));
    };
    counted(conn, &sql, &params)
}

/// Counts the rows `sql` (ordered, without a limit) gives, up to [`COUNT_CAP`] or
/// [`COUNT_BUDGET`]; past either, the number counted so far is an honest lower bound.
fn counted(conn: &Connection, sql: &str, params: &[SqlValue]) -> Result<(u64, bool)> {
    let sql = format!("{sql} LIMIT {}", COUNT_CAP + 1);
    // SQLite calls the progress handler every few hundred virtual-machine steps, whether or not
    // rows come out, so the budget also bounds the search before the first match and long runs
    // between matches; returning true interrupts the statement.
    let deadline = Instant::now() + COUNT_BUDGET;
    conn.progress_handler(PROGRESS_STEPS, Some(move || Instant::now() > deadline));
    let counted = count_rows(conn, &sql, params);
    conn.progress_handler(0, None::<fn() -> bool>);
    counted
}

/// Virtual-machine steps between two looks at the count's clock.
const PROGRESS_STEPS: std::ffi::c_int = 500;

fn count_rows(conn: &Connection, sql: &str, params: &[SqlValue]) -> Result<(u64, bool)> {
    let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(params.iter()))
        .map_err(map_err)?;
    let mut n = 0u64;
    loop {
        match rows.next() {
            Ok(Some(_)) => {
                n += 1;
                if n > COUNT_CAP {
                    return Ok((COUNT_CAP, false));
                }
            }
            Ok(None) => return Ok((n, true)),
            // The budget ran out: what was counted so far is an honest lower bound.
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::OperationInterrupted =>
            {
                return Ok((n, false));
            }
            Err(e) => return Err(map_err(e)),
        }
    }
}

fn query_entries(
    conn: &Connection,
    dict: &Dict,
    sql: &str,
    params: &[SqlValue],
) -> Result<Vec<Entry>> {
    query_row_page(conn, dict, sql, params, 16)?
        .iter()
        .map(|row| row.entry().map_err(corrupt))
        .collect()
}

/// Runs a query selecting [`ENTRY_COLUMNS`] and copies its rows into a page.
fn query_row_page(
    conn: &Connection,
    dict: &Dict,
    sql: &str,
    params: &[SqlValue],
    capacity: usize,
) -> Result<RowPage> {
    // At most two passes: the second after loading dictionary values another writer added.
    for _ in 0..2 {
        let mut page = RowPage::with_capacity(capacity);
        let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(map_err)?;
        let mut complete = true;
        while let Some(row) = rows.next().map_err(map_err)? {
            let pushed =
                with_stored_row(row, dict, |stored| page.push(&stored)).map_err(map_err)?;
            if pushed.is_err() {
                complete = false;
                break;
            }
        }
        if complete {
            return Ok(page);
        }
        drop(rows);
        dict.refresh(conn).map_err(map_err)?;
    }
    Err(StoreError::Other(
        "entry refers to an unknown dictionary id".into(),
    ))
}

fn corrupt(e: CorruptRow) -> StoreError {
    StoreError::Other(e.to_string())
}

pub fn get(conn: &Connection, dict: &Dict, org: OrgKey, id: &str) -> Result<Option<Entry>> {
    let Some(pk) = pk_of_id(id) else {
        return Ok(None);
    };
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.pk = ?1 AND e.org_id = ?2");
    let params = [pk.into(), org.get().into()];
    Ok(query_entries(conn, dict, &sql, &params)?.into_iter().next())
}

/// The organization's entries after `after`, in `seq` order, at most `limit` (what a log stream
/// delivers next), through the `(org_id, seq)` index.
pub fn entries_after(
    conn: &Connection,
    dict: &Dict,
    org: OrgKey,
    after: Seq,
    limit: usize,
) -> Result<Vec<Entry>> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.org_id = ?1 AND e.seq > ?2 \
         ORDER BY e.seq LIMIT ?3"
    );
    let params = [
        org.get().into(),
        after.get().into(),
        (limit.min(i64::MAX as usize) as i64).into(),
    ];
    query_row_page(conn, dict, &sql, &params, limit.min(1024))?
        .iter()
        .map(|row| row.entry().map_err(corrupt))
        .collect()
}

pub fn correlated(
    conn: &Connection,
    dict: &Dict,
    org: OrgKey,
    correlation_id: &str,
    limit: usize,
) -> Result<Vec<Entry>> {
    let unindexed = Unindexed::load(conn, dict, org)?;
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM entry_terms t CROSS JOIN entries e ON e.pk = t.rowid \
         WHERE t.entry_terms MATCH ?1 AND e.org_id = ?2 AND e.correlation_id = ?3 \
           AND t.rowid NOT IN (SELECT value FROM json_each(?5)) \
         ORDER BY t.rowid DESC LIMIT ?4"
    );
    let params = [
        terms::term(org, Field::CorrelationId, correlation_id).into(),
        org.get().into(),
        correlation_id.to_string().into(),
        (limit as i64).into(),
        unindexed.excluded().to_string().into(),
    ];
    let indexed = query_row_page(conn, dict, &sql, &params, limit)?;
    let tail = unindexed
        .matching_entries(|e| e.event.context.correlation_id.as_deref() == Some(correlation_id))?;
    merge(&indexed, &tail, None, CursorDirection::Older, limit)
        .iter()
        .map(|row| row.entry().map_err(corrupt))
        .collect()
}

/// The organization's entries that the search index does not answer for yet: written,
/// rewritten or removed after the index's watermark (see `search.rs`). Queries leave the index's
/// rows for them out (missing, or stale after a rewrite) and check the entries as stored now.
///
/// Loaded first in a read's transaction: its one statement reads the queue (this database) and
/// then the watermark (the index file), so every later statement of the read sees the database
/// as of that moment or later, and the index as of that moment.
#[derive(Default)]
pub(crate) struct Unindexed {
    /// Their `pk`s as the JSON array `json_each` reads; `None` when there are none.
    pks: Option<String>,
    /// Their `seq`s (the description index's rows are by `seq`).
    seqs: std::collections::HashSet<i64>,
    /// Those still stored, newest first.
    rows: RowPage,
}

impl Unindexed {
    pub(crate) fn load(conn: &Connection, dict: &Dict, org: OrgKey) -> Result<Unindexed> {
        let pending: Vec<(i64, i64)> = conn
            .prepare_cached(
                "SELECT DISTINCT q.pk, q.seq FROM search_queue q
                 WHERE q.id > (SELECT watermark FROM search.state) AND q.org_id = ?1",
            )
            .and_then(|mut s| {
                s.query_map([org.get()], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(map_err)?;
        if pending.is_empty() {
            return Ok(Unindexed::default());
        }
        let pks: Vec<i64> = pending.iter().map(|(pk, _)| *pk).collect();
        let pks = json_list(&pks);
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM entries e
             WHERE e.org_id = ?1 AND e.pk IN (SELECT value FROM json_each(?2))
             ORDER BY e.pk DESC"
        );
        let params = [org.get().into(), pks.clone().into()];
        let rows = query_row_page(conn, dict, &sql, &params, pending.len())?;
        Ok(Unindexed {
            pks: Some(pks),
            seqs: pending.into_iter().map(|(_, seq)| seq).collect(),
            rows,
        })
    }

    /// Their `pk`s as a JSON array, for `rowid NOT IN (SELECT value FROM json_each(?))`.
    pub(crate) fn excluded(&self) -> &str {
        self.pks.as_deref().unwrap_or("[]")
    }

    /// Those of the entries that `filter` matches, newest first.
    fn matching(&self, filter: &EventFilter) -> Result<RowPage> {
        self.matching_entries(|entry| filter.matches(entry))
    }

    /// Those of the entries that `keep` keeps, newest first.
    pub(crate) fn matching_entries(&self, keep: impl Fn(&Entry) -> bool) -> Result<RowPage> {
        let mut out = RowPage::default();
        for row in self.rows.iter() {
            if keep(&row.entry().map_err(corrupt)?) {
                out.push(&row);
            }
        }
        Ok(out)
    }

    /// `seqs` without those of the entries the index does not answer for.
    fn without(&self, seqs: &[i64]) -> Vec<i64> {
        seqs.iter()
            .copied()
            .filter(|seq| !self.seqs.contains(seq))
            .collect()
    }
}

pub fn facets(conn: &Connection, org: OrgKey) -> Result<Facets> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT d.kind, d.value FROM org_facets f JOIN dict d ON d.id = f.dict_id
             WHERE f.org_id = ? ORDER BY d.value",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map([org.get()], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(map_err)?;
    let mut facets = Facets::default();
    for (kind, value) in rows {
        let list = match kind {
            DICT_ACTION => &mut facets.actions,
            DICT_DETAILED_ACTION => &mut facets.detailed_actions,
            DICT_CHANNEL => &mut facets.channels,
            DICT_ENTITY_TYPE => &mut facets.entity_types,
            DICT_ACTOR_TYPE => &mut facets.actor_types,
            _ => continue,
        };
        list.push(value);
    }
    Ok(facets)
}

/// `stele_icontains(haystack, lowercase_needle)`: Unicode case-insensitive substring test, which
/// SQLite's own `lower()` and `LIKE` cannot do beyond ASCII; and the erasure's `stele_mentions`.
pub fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    use rusqlite::types::ValueRef;
    crate::erasure::register_function(conn)?;
    conn.create_scalar_function(
        "stele_icontains",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let (ValueRef::Text(haystack), ValueRef::Text(needle)) =
                (ctx.get_raw(0), ctx.get_raw(1))
            else {
                return Ok(false);
            };
            Ok(if haystack.is_ascii() && needle.is_ascii() {
                contains_ascii_ci(haystack, needle)
            } else {
                String::from_utf8_lossy(haystack)
                    .to_lowercase()
                    .contains(&*String::from_utf8_lossy(needle))
            })
        },
    )
}

pub(crate) fn contains_ascii_ci(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every candidate list runs one statement (the statement cache holds one, whatever the
    /// lists), and it selects exactly the listed seqs of the organization.
    #[test]
    fn candidate_lists_share_one_statement() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE entries (pk INTEGER PRIMARY KEY, org_id INTEGER, seq INTEGER);
             CREATE INDEX entries_seq ON entries (org_id, seq);",
        )
        .unwrap();
        for seq in 1..=50i64 {
            for org in [1i64, 2] {
                conn.execute(
                    "INSERT INTO entries (org_id, seq) VALUES (?1, ?2)",
                    [org, seq],
                )
                .unwrap();
            }
        }
        let sql =
            format!("SELECT e.seq FROM entries e WHERE {CANDIDATES_WHERE} ORDER BY e.pk DESC");
        let run = |seqs: &[i64]| -> Vec<i64> {
            let mut stmt = conn.prepare_cached(&sql).unwrap();
            stmt.query_map(rusqlite::params![1i64, json_list(seqs)], |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<Vec<i64>>>()
                .unwrap()
        };
        assert_eq!(run(&[3, 17, 42]), vec![42, 17, 3]);
        assert_eq!(run(&[5]), vec![5]);
        assert_eq!(run(&[]), Vec::<i64>::new());
        let many: Vec<i64> = (1..=FTS_CANDIDATE_CAP as i64).collect();
        assert_eq!(run(&many).len(), 50);
        assert_eq!(json_list(&[1, 22, 333]), "[1,22,333]");
        // The text the cache is keyed by does not depend on the list.
        assert!(!sql.contains("42"));
    }
}
