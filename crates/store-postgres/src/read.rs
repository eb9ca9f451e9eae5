//! The read side: an [`EventFilter`] becomes one `WHERE` clause over `entries`, walked in `pk`
//! order (`ORDER BY e.pk DESC LIMIT n + 1`), so a page costs about as much as the rows it returns
//! when an index leads to them.
//!
//! Which index leads is PostgreSQL's choice, per request: each connection plans every query for
//! its actual values (`plan_cache_mode = force_custom_plan`), because the right plan depends on
//! them (a rare entity id is best found through `entry_keys`, a common one by walking the
//! organization's entries newest first). The filters, and why they have the shape they have:
//! - single-valued filters are equalities on columns with `(org_id, column, pk)` indexes;
//! - entity id (primary or bulk), actor (id or email) and IP go through `entry_keys`, whose
//!   `(org_id, kind, value, pk)` key yields the matching `pk`s: the first such filter is joined
//!   to the entries, further ones are `EXISTS` probes;
//! - a detailed-action prefix is `LIKE 'prefix%'` on a `"C"`-collated column (a B-tree range);
//! - actor types: the default (everyone but System) is one `<>`;
//! - `from`/`to` are a `pk` range (a `pk` starts with its millisecond);
//! - the description search compares `lower()` of both sides, the needle lower-cased by Rust and
//!   the text by the `stele_fold` collation (schema.rs), with `%`, `_` and `\` escaped, which the
//!   trigram GIN index can answer.
//!
//! A value PostgreSQL's `text` cannot hold (one with U+0000) cannot have been stored, so a filter
//! with one matches nothing, without asking the database.
//!
//! The count runs after the page, on the same connection, and has two bounds: it stops at
//! [`COUNT_CAP`] matches (`LIMIT` inside the count), and it stops when [`COUNT_BUDGET`] has
//! passed. Past either the total is a lower bound (`total_exact: false`): the cap's 10,000, or
//! the matches counted when time ran out, as the SQLite backend does. To have something to show
//! when time runs out, the matches are fetched in chunks through a portal (the extended
//! protocol's row limit) instead of `count(*)`; a transaction-local `statement_timeout` bounds one
//! chunk. Most counts are index-only scans (every filter index carries the actor type,
//! schema.rs) and finish well inside the budget; it is for the rest (several filters whose
//! matches are spread thinly, common words in the description).

use std::time::{Duration, Instant};
use stele_core::filter::{Cursor, CursorDirection, DetailedActionMatch, EventFilter};
use stele_core::params::PageRequest;
use stele_core::{ActorType, Entry, Seq};
use stele_store::rows::RowPage;
use stele_store::{Facets, OrgKey, Page};

use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use crate::codec::{
    ENTRY_COLUMNS, FACET_ACTION, FACET_ACTOR_TYPE, FACET_CHANNEL, FACET_DETAILED_ACTION,
    FACET_ENTITY_TYPE, KEY_ACTOR, KEY_ENTITY_ID, KEY_IP, KEY_RELATED_ENTITY_TYPE, decode_row,
    outcome_code, pk_floor, pk_of_id, stored_row,
};
use crate::error::{Error, R};
use crate::pool::{Conn, Param, Tx};

/// Counting stops at this many matches; the total is then a lower bound.
pub const COUNT_CAP: i64 = 10_000;
/// How long a count may run before it answers with what it counted. The target
/// (docs/benchmarks.md): the count shown with a page never adds more than 20 ms.
pub const COUNT_BUDGET: Duration = Duration::from_millis(15);
/// Matches fetched per round trip while counting.
const COUNT_CHUNK: i32 = 2_500;

/// Session settings of the read connections: plans for the actual values (see the module docs),
/// and no JIT compilation. A query over an array of ranges (the proofs' reads of entry hashes,
/// `unnest` of `seq` ranges) is estimated at tens of thousands of rows whatever it reads, which
/// passes `jit_above_cost`: at 10M entries an inclusion proof spent 26 ms compiling for 0.3 ms of
/// execution (docs/benchmarks.md). Every read here is short, so compiling never pays.
pub const READER_SETUP: &str =
    "SET plan_cache_mode = force_custom_plan; SET synchronous_commit = on; SET jit = off";

type Boxed = Box<dyn ToSql + Sync + Send>;

/// A filter as SQL: `e.`-qualified conditions and their parameters (`$1` is the organization).
struct Where {
    /// What the query reads from: `entries e`, or, with an identifier filter, that filter's
    /// `entry_keys` rows joined to their entries (see [`Where::key_filter`]).
    from: String,
    conditions: Vec<String>,
    params: Vec<Boxed>,
}

impl Where {
    fn param(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    fn refs(&self) -> Vec<Param<'_>> {
        self.params
            .iter()
            .map(|p| p.as_ref() as Param<'_>)
            .collect()
    }

    fn sql(&self) -> String {
        self.conditions.join(" AND ")
    }

    /// An identifier filter (entity id, actor, ip). The first one drives the query: its
    /// `entry_keys` rows are joined to their entries, so PostgreSQL starts from the few entries
    /// that match (the key's primary key makes each entry appear at most once). Written as
    /// `EXISTS` instead, the planner gathered and de-duplicated every match before probing the
    /// entries, several times slower at a thousand matches (docs/benchmarks.md). Further ones
    /// are `EXISTS` conditions on the entries found.
    fn key_filter(&mut self, kind: i16, value: &str) {
        let v = self.param(value.to_string());
        if self.from == "entries e" {
            self.from = format!(
                "entry_keys k JOIN entries e ON e.pk = k.pk AND k.org_id = $1 \
                 AND k.kind = {kind} AND k.value = {v}::text"
            );
        } else {
            self.conditions.push(format!(
                "EXISTS (SELECT 1 FROM entry_keys x WHERE x.org_id = $1 AND x.kind = {kind} \
                 AND x.value = {v}::text AND x.pk = e.pk)"
            ));
        }
    }
}

/// `LIKE` pattern text for a literal: `%`, `_` and the escape character itself escaped.
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The conditions of a filter, or `None` when nothing can match. An entity-type filter also
/// matches related entities' types; most organizations have no entry with a related entity of
/// that type, and for them the filter stays one indexed equality on the primary type's column
/// (asked first, one index probe), so its plan is what it was before related entities existed.
async fn filter_conditions(conn: &mut Conn, org: OrgKey, f: &EventFilter) -> R<Option<Where>> {
    let related_types = match f.entity_type.as_deref() {
        Some(t) if !f.holds_nul() => conn
            .query_opt(
                "SELECT 1 FROM entry_keys WHERE org_id = $1 AND kind = $2 AND value = $3::text \
                 LIMIT 1",
                &[&org.get(), &KEY_RELATED_ENTITY_TYPE, &t],
            )
            .await?
            .is_some(),
        _ => false,
    };
    Ok(conditions(org, f, related_types))
}

/// The conditions of a filter, or `None` when nothing can match; `related_types` says whether
/// the entity-type filter must look at related entities too (see [`filter_conditions`]).
fn conditions(org: OrgKey, f: &EventFilter, related_types: bool) -> Option<Where> {
    let mut w = Where {
        from: "entries e".into(),
        conditions: vec!["e.org_id = $1".into()],
        params: vec![Box::new(org.get())],
    };
    if f.holds_nul() {
        return None;
    }
    for (column, value) in [
        ("action", &f.action),
        ("channel", &f.channel),
        ("correlation_id", &f.correlation_id),
    ] {
        if let Some(value) = value {
            let p = w.param(value.clone());
            w.conditions.push(format!("e.{column} = {p}::text"));
        }
    }
    if let Some(value) = &f.entity_type {
        let p = w.param(value.clone());
        w.conditions.push(if related_types {
            format!(
                "(e.entity_type = {p}::text OR EXISTS (SELECT 1 FROM entry_keys r \
                 WHERE r.org_id = $1 AND r.kind = {KEY_RELATED_ENTITY_TYPE} \
                 AND r.value = {p}::text AND r.pk = e.pk))"
            )
        } else {
            format!("e.entity_type = {p}::text")
        });
    }
    match &f.detailed_action {
        None => {}
        Some(DetailedActionMatch::Exact(value)) => {
            let p = w.param(value.clone());
            w.conditions.push(format!("e.detailed_action = {p}::text"));
        }
        Some(DetailedActionMatch::Prefix(prefix)) => {
            let p = w.param(format!("{}%", like_escape(prefix)));
            w.conditions
                .push(format!("e.detailed_action LIKE {p}::text ESCAPE '\\'"));
        }
    }
    if f.actor_types.is_empty() {
        return None;
    }
    if f.actor_types.len() < ActorType::ALL.len() {
        let excluded: Vec<i16> = ActorType::ALL
            .into_iter()
            .filter(|t| !f.actor_types.contains(t))
            .map(|t| t.code() as i16)
            .collect();
        if let [one] = excluded[..] {
            w.conditions.push(format!("e.actor_type <> {one}"));
        } else {
            let included: Vec<String> =
                f.actor_types.iter().map(|t| t.code().to_string()).collect();
            w.conditions
                .push(format!("e.actor_type IN ({})", included.join(", ")));
        }
    }
    if let Some(outcome) = f.outcome {
        // A literal, so the planner can match the partial index `entries_failures`.
        w.conditions
            .push(format!("e.outcome = {}", outcome_code(outcome)));
    }
    if let Some(v) = &f.entity_id {
        w.key_filter(KEY_ENTITY_ID, v);
    }
    if let Some(v) = &f.actor {
        w.key_filter(KEY_ACTOR, v);
    }
    if let Some(v) = &f.ip {
        w.key_filter(KEY_IP, v);
    }
    if let Some(from) = f.from {
        let p = w.param(pk_floor(from));
        w.conditions.push(format!("e.pk >= {p}::int8"));
    }
    if let Some(to) = f.to {
        let p = w.param(pk_floor(to));
        w.conditions.push(format!("e.pk < {p}::int8"));
    }
    if let Some(q) = &f.q {
        let p = w.param(format!("%{}%", like_escape(&q.to_lowercase())));
        w.conditions.push(format!(
            "lower(e.description COLLATE stele_fold) LIKE {p}::text ESCAPE '\\'"
        ));
    }
    Some(w)
}

/// The `pk` of the entry a cursor points at; if it is gone, the nearest millisecond boundary.
async fn cursor_pk(conn: &mut Conn, org: OrgKey, c: &Cursor) -> R<i64> {
    let row = conn
        .query_opt(
            "SELECT pk FROM entries WHERE org_id = $1 AND seq = $2",
            &[&org.get(), &c.seq.get()],
        )
        .await?;
    Ok(match row {
        Some(row) => row.try_get(0)?,
        None => match c.direction {
            CursorDirection::Older => pk_floor(c.occurred_at),
            CursorDirection::Newer => pk_floor(c.occurred_at + 1) - 1,
        },
    })
}

/// One tiny row per match, at most one past the cap.
fn count_sql(w: &Where) -> String {
    format!(
        "SELECT true FROM {} WHERE {} LIMIT {}",
        w.from,
        w.sql(),
        COUNT_CAP + 1
    )
}

fn count_result(n: i64) -> (u64, bool) {
    if n > COUNT_CAP {
        (COUNT_CAP as u64, false)
    } else {
        (n.max(0) as u64, true)
    }
}

/// A page of matches and, with a `budget`, their count within it (without one, `total` is the
/// number read and not exact).
pub async fn list(
    conn: &mut Conn,
    org: OrgKey,
    page: &PageRequest,
    budget: Option<Duration>,
) -> R<Page> {
    let Some(w) = filter_conditions(conn, org, &page.filter).await? else {
        return Ok(Page {
            entries: vec![],
            next_cursor: None,
            prev_cursor: None,
            total: 0,
            total_exact: true,
        });
    };
    let rows = window(conn, org, page, &w).await?;
    let entries = rows
        .iter()
        .map(|r| decode_row(r).map(|(_, e)| e))
        .collect::<R<Vec<Entry>>>()?;
    // A page's own rows are the least the count can be, should it run out of time.
    let (total, total_exact) = match budget {
        Some(budget) => budgeted_count(conn, &w, entries.len() as u64, budget).await?,
        None => (entries.len() as u64, false),
    };

    Ok(Page::from_window(entries, page, total, total_exact))
}

/// A page of matches as stored rows, uncounted (the export's walk).
pub async fn list_rows(conn: &mut Conn, org: OrgKey, page: &PageRequest) -> R<RowPage> {
    let Some(w) = filter_conditions(conn, org, &page.filter).await? else {
        return Ok(RowPage::default());
    };
    let rows = window(conn, org, page, &w).await?;
    let mut out = RowPage::with_capacity(rows.len());
    for row in &rows {
        out.push(&stored_row(row)?);
    }
    Ok(out.finish(page))
}

/// The rows of a page in walking order, up to `limit + 1` (see [`Page::from_window`]).
async fn window(conn: &mut Conn, org: OrgKey, page: &PageRequest, w: &Where) -> R<Vec<Row>> {
    let direction = page.cursor.map_or(CursorDirection::Older, |c| c.direction);
    let position = match &page.cursor {
        Some(c) => Some(cursor_pk(conn, org, c).await?),
        None => None,
    };
    let want = page.limit.saturating_add(1).min(i64::MAX as usize) as i64;

    let mut page_sql = format!("SELECT {ENTRY_COLUMNS} FROM {} WHERE {}", w.from, w.sql());
    let mut extra: Vec<i64> = Vec::new();
    if let Some(pk) = position {
        extra.push(pk);
        let op = match direction {
            CursorDirection::Older => "<",
            CursorDirection::Newer => ">",
        };
        page_sql.push_str(&format!(" AND e.pk {op} ${}::int8", w.params.len() + 1));
    }
    extra.push(want);
    let order = match direction {
        CursorDirection::Older => "DESC",
        CursorDirection::Newer => "ASC",
    };
    page_sql.push_str(&format!(
        " ORDER BY e.pk {order} LIMIT ${}::int8",
        w.params.len() + extra.len()
    ));
    let mut page_params = w.refs();
    page_params.extend(extra.iter().map(|v| v as Param<'_>));
    conn.query(&page_sql, &page_params).await
}

pub async fn count(
    conn: &mut Conn,
    org: OrgKey,
    filter: &EventFilter,
    budget: Duration,
) -> R<(u64, bool)> {
    let Some(w) = filter_conditions(conn, org, filter).await? else {
        return Ok((0, true));
    };
    budgeted_count(conn, &w, 0, budget).await
}

/// The capped count within `budget` ([`COUNT_BUDGET`] unless configured). When time runs out:
/// what was counted by then, or `at_least` (what the caller already knows exists) if that is
/// more, and `false`.
async fn budgeted_count(
    conn: &mut Conn,
    w: &Where,
    at_least: u64,
    budget: Duration,
) -> R<(u64, bool)> {
    let started = Instant::now();
    // Starting the transaction is guarded as its statements are: a 30-minute PostgreSQL soak
    // met one 25P02 on a console page in 209,489 requests that the guards inside the count did
    // not catch. Either way the driver rolls back what was begun (also when `BEGIN` itself
    // fails), so the connection goes back to the pool clean.
    let mut tx = match begin_with_budget(conn, budget).await {
        Ok(tx) => tx,
        Err(e) if ran_out_of_time(&e) => return Ok((at_least, false)),
        Err(e) => return Err(e),
    };
    // The count only reads: the transaction is rolled back as it is dropped.
    count_in(&mut tx, w, at_least, started, budget).await
}

/// A transaction whose `statement_timeout` is `budget`.
async fn begin_with_budget(conn: &mut Conn, budget: Duration) -> R<Tx<'_>> {
    let mut tx = conn.transaction().await?;
    tx.batch_execute(&format!(
        "SET LOCAL statement_timeout = {}",
        budget.as_millis().max(1)
    ))
    .await?;
    Ok(tx)
}

/// The count's statements, in a transaction whose `statement_timeout` is the budget.
async fn count_in(
    tx: &mut Tx<'_>,
    w: &Where,
    at_least: u64,
    started: Instant,
    budget: Duration,
) -> R<(u64, bool)> {
    // Preparing and binding run under the timeout too: on a loaded server, planning alone can
    // outlast the budget, and then the answer is the lower bound already known, not an error.
    let portal = match tx.bind(&count_sql(w), &w.refs()).await {
        Ok(portal) => portal,
        Err(e) if ran_out_of_time(&e) => return Ok((at_least, false)),
        Err(e) => return Err(e),
    };
    let mut counted: i64 = 0;
    loop {
        match tx.query_portal(&portal, COUNT_CHUNK).await {
            Ok(rows) => {
                counted += rows.len() as i64;
                if rows.len() < COUNT_CHUNK as usize {
                    return Ok(count_result(counted));
                }
            }
            Err(e) if ran_out_of_time(&e) => break,
            Err(e) => return Err(e),
        }
        if started.elapsed() >= budget {
            break;
        }
    }
    Ok(((counted as u64).max(at_least), false))
}

/// Whether an error inside the count's transaction means that its budget ran out.
///
/// Mostly it is the budget's own cancel (57014). But the timer can also go off in the instant
/// after the server has answered a Parse or a Bind and before the Sync that follows stops it;
/// the driver has read the answer it waited for and no longer listens, so the cancel's error is
/// dropped unseen, and the count's next statement finds the transaction aborted (25P02). The
/// 30-minute soak met this twice in 187,000 requests, each a 500 until this was handled; counts
/// with a 1–3 ms budget met it 11 times in 20,000. Nothing else in the count's transaction can
/// fail without being seen.
fn ran_out_of_time(e: &Error) -> bool {
    let Error::Db(e) = e else { return false };
    matches!(
        e.code(),
        Some(&SqlState::QUERY_CANCELED) | Some(&SqlState::IN_FAILED_SQL_TRANSACTION)
    )
}

pub async fn get(conn: &mut Conn, org: OrgKey, id: &str) -> R<Option<Entry>> {
    let Some(pk) = pk_of_id(id) else {
        return Ok(None);
    };
    let row = conn
        .query_opt(
            &format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.pk = $1 AND e.org_id = $2"),
            &[&pk, &org.get()],
        )
        .await?;
    row.map(|r| decode_row(&r).map(|(_, e)| e)).transpose()
}

/// The organization's entries after `after`, in `seq` order, at most `limit` (what a log stream
/// delivers next), through `entries_org_seq`.
pub async fn entries_after(
    conn: &mut Conn,
    org: OrgKey,
    after: Seq,
    limit: usize,
) -> R<Vec<Entry>> {
    let limit = limit.min(i64::MAX as usize) as i64;
    let rows = conn
        .query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.org_id = $1 AND e.seq > $2 \
                 ORDER BY e.seq LIMIT $3"
            ),
            &[&org.get(), &after.get(), &limit],
        )
        .await?;
    rows.iter().map(|r| decode_row(r).map(|(_, e)| e)).collect()
}

pub async fn correlated(
    conn: &mut Conn,
    org: OrgKey,
    correlation_id: &str,
    limit: usize,
) -> R<Vec<Entry>> {
    if correlation_id.contains('\0') {
        return Ok(vec![]);
    }
    let limit = limit.min(i64::MAX as usize) as i64;
    let rows = conn
        .query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM entries e
                 WHERE e.org_id = $1 AND e.correlation_id = $2::text
                 ORDER BY e.pk DESC LIMIT $3"
            ),
            &[&org.get(), &correlation_id, &limit],
        )
        .await?;
    rows.iter().map(|r| decode_row(r).map(|(_, e)| e)).collect()
}

pub async fn facets(conn: &mut Conn, org: OrgKey) -> R<Facets> {
    let rows = conn
        .query(
            "SELECT kind, value FROM facets WHERE org_id = $1 ORDER BY kind, value",
            &[&org.get()],
        )
        .await?;
    let mut facets = Facets::default();
    for row in rows {
        let kind: i16 = row.try_get(0)?;
        let value: String = row.try_get(1)?;
        let list = match kind {
            FACET_ACTION => &mut facets.actions,
            FACET_DETAILED_ACTION => &mut facets.detailed_actions,
            FACET_CHANNEL => &mut facets.channels,
            FACET_ENTITY_TYPE => &mut facets.entity_types,
            FACET_ACTOR_TYPE => &mut facets.actor_types,
            _ => continue,
        };
        list.push(value);
    }
    Ok(facets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_metacharacters_are_literal() {
        assert_eq!(like_escape("50%_off\\x"), "50\\%\\_off\\\\x");
        assert_eq!(like_escape("plain"), "plain");
    }

    use crate::pool::connect;
    use crate::testing::TestDatabase;

    /// A read connection to a new test database with a table `one` of one row, and the
    /// condition that matches it.
    async fn reader_with_one_row() -> (TestDatabase, Conn, Where) {
        let (db, url) = TestDatabase::create().await;
        let config = crate::pool::base_config(&url).unwrap();
        let conn = connect(&config, READER_SETUP).await.unwrap();
        conn.client
            .batch_execute("CREATE TEMP TABLE one AS SELECT 1 AS org_id")
            .await
            .unwrap();
        let quick = Where {
            from: "one e".into(),
            conditions: vec!["e.org_id = $1".into()],
            params: vec![Box::new(1_i64 as i32)],
        };
        (db, conn, quick)
    }

    /// A count that runs out of time answers with its lower bound instead of failing, and the
    /// connection stays usable.
    #[tokio::test]
    async fn a_count_past_its_budget_is_a_lower_bound() {
        let (_db, mut conn, quick) = reader_with_one_row().await;
        assert_eq!(
            budgeted_count(&mut conn, &quick, 7, COUNT_BUDGET)
                .await
                .unwrap(),
            (1, true)
        );
        // One second per row: far past the budget, however busy the machine.
        let slow = Where {
            conditions: vec!["e.org_id = $1".into(), "pg_sleep(1) IS NOT NULL".into()],
            ..quick
        };
        assert_eq!(
            budgeted_count(&mut conn, &slow, 7, COUNT_BUDGET)
                .await
                .unwrap(),
            (7, false)
        );
        let quick = Where {
            conditions: vec!["e.org_id = $1".into()],
            ..slow
        };
        assert_eq!(
            budgeted_count(&mut conn, &quick, 7, COUNT_BUDGET)
                .await
                .unwrap(),
            (1, true)
        );

        // Time runs out in the second chunk: the first chunk's matches are the answer.
        conn.client
            .batch_execute(
                "CREATE TEMP TABLE many AS SELECT n, 1 AS org_id FROM generate_series(1, 6000) n",
            )
            .await
            .unwrap();
        let partly_slow = Where {
            from: "many e".into(),
            conditions: vec![
                "e.org_id = $1".into(),
                format!("(e.n <= {COUNT_CHUNK} OR pg_sleep(1) IS NOT NULL)"),
            ],
            ..quick
        };
        assert_eq!(
            budgeted_count(&mut conn, &partly_slow, 7, COUNT_BUDGET)
                .await
                .unwrap(),
            (COUNT_CHUNK as u64, false)
        );
    }

    /// A connection lent in the middle of an aborted transaction (however it got there) makes
    /// the count's own `BEGIN` fail with 25P02: the count is its lower bound, and the driver's
    /// rollback leaves the connection clean for the next count.
    #[tokio::test]
    async fn a_count_that_cannot_begin_is_a_lower_bound() {
        let (_db, mut conn, quick) = reader_with_one_row().await;
        assert!(
            conn.client
                .batch_execute("BEGIN; SELECT 1 / 0")
                .await
                .is_err()
        );
        assert_eq!(
            budgeted_count(&mut conn, &quick, 7, COUNT_BUDGET)
                .await
                .unwrap(),
            (7, false)
        );
        assert_eq!(
            budgeted_count(&mut conn, &quick, 7, COUNT_BUDGET)
                .await
                .unwrap(),
            (1, true)
        );
    }

    /// The budget's cancel can abort the count's transaction without the driver hearing of it
    /// (see [`ran_out_of_time`]): the count then answers with its lower bound, not 500, and the
    /// connection is usable again afterwards.
    #[tokio::test]
    async fn a_count_whose_transaction_was_aborted_unseen_is_a_lower_bound() {
        let (_db, mut conn, quick) = reader_with_one_row().await;
        {
            let mut tx = conn.transaction().await.unwrap();
            // Stands in for the cancel whose error was dropped: the transaction is aborted.
            assert!(tx.batch_execute("SELECT 1 / 0").await.is_err());
            assert_eq!(
                count_in(&mut tx, &quick, 7, Instant::now(), COUNT_BUDGET)
                    .await
                    .unwrap(),
                (7, false)
            );
        }
        assert_eq!(
            budgeted_count(&mut conn, &quick, 7, COUNT_BUDGET)
                .await
                .unwrap(),
            (1, true)
        );
    }
}
