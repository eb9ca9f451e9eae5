//! The read side: turning an [`EventFilter`] and cursor into one SQL query whose ORDER BY an
//! index already satisfies, so the first page costs about as much as the rows it returns.

use std::time::{Duration, Instant};

use rusqlite::Connection;
use rusqlite::types::Value as SqlValue;
use stele_core::filter::{Cursor, CursorDirection, DetailedActionMatch, EventFilter, PageRequest};
use stele_core::{ActorType, Entry};
use stele_store::{Facets, OrgId, Page, Result, StoreError};

use crate::codec::{ENTRY_COLUMNS, decode_row, outcome_code};
use crate::dict::Dict;
use crate::error::map_err;
use crate::schema::*;

/// Counting stops at this many matches (the total is then a lower bound) ...
const COUNT_CAP: u64 = 10_000;
/// ... or after this long, whichever comes first, so the count never makes a page slow.
const COUNT_BUDGET: Duration = Duration::from_millis(15);
/// Description search asks the trigram index for at most this many candidates; a substring
/// common enough to exceed it is found faster by walking the time index and checking each row.
const FTS_CANDIDATE_CAP: usize = 5_000;

/// The FROM and WHERE of a filtered query, without ordering or cursor.
#[derive(Clone)]
struct Selection {
    from: &'static str,
    /// Table alias whose `occurred_ms` and `pk` give the order (`e`, or `r` when a ref drives).
    order_by: &'static str,
    conditions: Vec<String>,
    params: Vec<SqlValue>,
}

/// Builds the selection, or `None` when the filter names a value the organization has never
/// used (so nothing can match and no query is needed).
fn select(
    conn: &Connection,
    dict: &Dict,
    org: OrgId,
    f: &EventFilter,
) -> Result<Option<Selection>> {
    let mut s = Selection {
        from: "entries e",
        order_by: "e",
        conditions: vec![],
        params: vec![],
    };
    let p = |s: &mut Selection, v: SqlValue| {
        s.params.push(v);
        format!("?{}", s.params.len())
    };

    // The most selective identifier drives the query through `refs` when present.
    let entity = f.entity_id.as_ref().map(|v| (REF_ENTITY, v));
    let actor = f.actor.as_ref().map(|v| (REF_ACTOR, v));
    let mut refs = entity.into_iter().chain(actor);
    if let Some((kind, value)) = refs.next() {
        s.from = "refs r JOIN entries e ON e.pk = r.pk";
        s.order_by = "r";
        let (o, k, v) = (
            p(&mut s, org.into()),
            p(&mut s, kind.into()),
            p(&mut s, value.clone().into()),
        );
        s.conditions
            .push(format!("r.org_id = {o} AND r.kind = {k} AND r.value = {v}"));
    }
    for (kind, value) in refs {
        let (k, v) = (p(&mut s, kind.into()), p(&mut s, value.clone().into()));
        s.conditions.push(format!(
            "EXISTS (SELECT 1 FROM refs x WHERE x.org_id = e.org_id AND x.kind = {k} \
             AND x.value = {v} AND x.occurred_ms = e.occurred_ms AND x.pk = e.pk)"
        ));
    }
    let o = p(&mut s, org.into());
    s.conditions.push(format!("e.org_id = {o}"));

    let dict_eq = |s: &mut Selection, column: &str, kind: i64, value: &Option<String>| {
        let Some(value) = value else { return Ok(true) };
        match lookup(conn, dict, kind, value)? {
            Some(id) => {
                let ph = p(s, id.into());
                s.conditions.push(format!("e.{column} = {ph}"));
                Ok(true)
            }
            None => Ok::<bool, StoreError>(false),
        }
    };
    if !dict_eq(&mut s, "action", DICT_ACTION, &f.action)?
        || !dict_eq(&mut s, "channel", DICT_CHANNEL, &f.channel)?
        || !dict_eq(&mut s, "entity_type", DICT_ENTITY_TYPE, &f.entity_type)?
    {
        return Ok(None);
    }
    match &f.detailed_action {
        None => {}
        Some(DetailedActionMatch::Exact(v))
            if !dict_eq(
                &mut s,
                "detailed_action",
                DICT_DETAILED_ACTION,
                &Some(v.clone()),
            )? =>
        {
            return Ok(None);
        }
        Some(DetailedActionMatch::Exact(_)) => {}
        Some(DetailedActionMatch::Prefix(prefix)) => {
            dict.refresh(conn).map_err(map_err)?;
            let ids = dict.ids_with_prefix(DICT_DETAILED_ACTION, prefix);
            if ids.is_empty() {
                return Ok(None);
            }
            s.conditions
                .push(format!("e.detailed_action IN ({})", join_ints(&ids)));
        }
    }
    if f.actor_types.len() < ActorType::ALL.len() {
        let excluded: Vec<i64> = ActorType::ALL
            .into_iter()
            .filter(|t| !f.actor_types.contains(t))
            .map(ActorType::code)
            .collect();
        // The default hides one type, so "NOT IN" keeps the condition short.
        if excluded.len() <= f.actor_types.len() {
            s.conditions
                .push(format!("e.actor_type NOT IN ({})", join_ints(&excluded)));
        } else {
            let included: Vec<i64> = f.actor_types.iter().map(|t| t.code()).collect();
            s.conditions
                .push(format!("e.actor_type IN ({})", join_ints(&included)));
        }
    }
    if let Some(outcome) = f.outcome {
        s.conditions
            .push(format!("e.outcome = {}", outcome_code(outcome)));
    }
    if let Some(v) = &f.correlation_id {
        let ph = p(&mut s, v.clone().into());
        s.conditions.push(format!("e.correlation_id = {ph}"));
    }
    if let Some(v) = &f.ip {
        let ph = p(&mut s, v.clone().into());
        s.conditions.push(format!("e.ip = {ph}"));
    }
    let t = s.order_by;
    if let Some(from) = f.from {
        let ph = p(&mut s, from.into());
        s.conditions.push(format!("{t}.occurred_ms >= {ph}"));
    }
    if let Some(to) = f.to {
        let ph = p(&mut s, to.into());
        s.conditions.push(format!("{t}.occurred_ms < {ph}"));
    }
    if let Some(q) = &f.q {
        let needle = q.to_lowercase();
        if let Some(candidates) = fts_candidates(conn, &needle)? {
            if candidates.is_empty() {
                return Ok(None);
            }
            s.conditions
                .push(format!("e.pk IN ({})", join_ints(&candidates)));
        }
        let ph = p(&mut s, needle.into());
        s.conditions
            .push(format!("stele_icontains(e.description, {ph})"));
    }
    Ok(Some(s))
}

/// The rows whose description may contain `needle`, if the trigram index narrows them to a
/// manageable set; `None` when it cannot help (needle too short, or too common).
fn fts_candidates(conn: &Connection, needle: &str) -> Result<Option<Vec<i64>>> {
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
        .prepare_cached("SELECT rowid FROM entries_fts WHERE entries_fts MATCH ? LIMIT ?")
        .map_err(map_err)?;
    let ids = stmt
        .query_map(
            rusqlite::params![query, FTS_CANDIDATE_CAP as i64 + 1],
            |r| r.get(0),
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

fn join_ints(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

pub fn list(conn: &Connection, dict: &Dict, org: OrgId, page: &PageRequest) -> Result<Page> {
    let Some(selection) = select(conn, dict, org, &page.filter)? else {
        return Ok(Page {
            entries: vec![],
            next_cursor: None,
            prev_cursor: None,
            total: 0,
            total_exact: true,
        });
    };
    let direction = page.cursor.map_or(CursorDirection::Older, |c| c.direction);
    let mut s = selection.clone();
    let t = s.order_by;
    if let Some(c) = page.cursor {
        s.params.push(c.occurred_at.into());
        let ms = format!("?{}", s.params.len());
        s.params.push(c.seq.into());
        let seq = format!("?{}", s.params.len());
        let (cmp, eq) = match c.direction {
            CursorDirection::Older => ("<", "<="),
            CursorDirection::Newer => (">", ">="),
        };
        s.conditions.push(format!(
            "{t}.occurred_ms {eq} {ms} AND ({t}.occurred_ms {cmp} {ms} OR e.seq {cmp} {seq})"
        ));
    }
    let order = match direction {
        CursorDirection::Older => "DESC",
        CursorDirection::Newer => "ASC",
    };
    s.params.push((page.limit as i64 + 1).into());
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM {} WHERE {} ORDER BY {t}.occurred_ms {order}, {t}.pk {order} LIMIT ?{}",
        s.from,
        s.conditions.join(" AND "),
        s.params.len()
    );
    let mut entries = query_entries(conn, dict, &sql, &s.params)?;
    let more = entries.len() > page.limit;
    entries.truncate(page.limit);
    if direction == CursorDirection::Newer {
        entries.reverse();
    }
    let at = |e: &Entry, direction| Cursor {
        direction,
        occurred_at: e.event.occurred_at,
        seq: e.seq,
    };
    let (older_exists, newer_exists) = match direction {
        CursorDirection::Older => (more, page.cursor.is_some()),
        CursorDirection::Newer => (true, more),
    };
    let next_cursor = entries
        .last()
        .filter(|_| older_exists)
        .map(|e| at(e, CursorDirection::Older));
    let prev_cursor = entries
        .first()
        .filter(|_| newer_exists)
        .map(|e| at(e, CursorDirection::Newer));
    let (total, total_exact) = count(conn, &selection)?;
    Ok(Page {
        entries,
        next_cursor,
        prev_cursor,
        total,
        total_exact,
    })
}

pub fn count_matches(
    conn: &Connection,
    dict: &Dict,
    org: OrgId,
    f: &EventFilter,
) -> Result<(u64, bool)> {
    match select(conn, dict, org, f)? {
        Some(selection) => count(conn, &selection),
        None => Ok((0, true)),
    }
}

/// Counts matches up to [`COUNT_CAP`] or [`COUNT_BUDGET`]; past either, the number counted so far
/// is an honest lower bound.
fn count(conn: &Connection, s: &Selection) -> Result<(u64, bool)> {
    let sql = format!(
        "SELECT 1 FROM {} WHERE {} LIMIT {}",
        s.from,
        s.conditions.join(" AND "),
        COUNT_CAP + 1
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(map_err)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(s.params.iter()))
        .map_err(map_err)?;
    let started = Instant::now();
    let mut n = 0u64;
    while rows.next().map_err(map_err)?.is_some() {
        n += 1;
        if n > COUNT_CAP {
            return Ok((COUNT_CAP, false));
        }
        if n.is_multiple_of(256) && started.elapsed() > COUNT_BUDGET {
            return Ok((n, false));
        }
    }
    Ok((n, true))
}

fn query_entries(
    conn: &Connection,
    dict: &Dict,
    sql: &str,
    params: &[SqlValue],
) -> Result<Vec<Entry>> {
    // At most two passes: the second after loading dictionary values another writer added.
    for _ in 0..2 {
        let mut stmt = conn.prepare_cached(sql).map_err(map_err)?;
        let decoded = stmt
            .query_map(rusqlite::params_from_iter(params.iter()), |row| {
                decode_row(row, dict)
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(map_err)?;
        if let Ok(entries) = decoded.into_iter().collect::<Result<Vec<Entry>, _>>() {
            return Ok(entries);
        }
        dict.refresh(conn).map_err(map_err)?;
    }
    Err(StoreError::Other(
        "entry refers to an unknown dictionary id".into(),
    ))
}

pub fn get(conn: &Connection, dict: &Dict, org: OrgId, id: &str) -> Result<Option<Entry>> {
    let Ok(uid) = uuid::Uuid::parse_str(id) else {
        return Ok(None);
    };
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.uid = ?1 AND e.org_id = ?2");
    let params = [SqlValue::Blob(uid.as_bytes().to_vec()), org.into()];
    Ok(query_entries(conn, dict, &sql, &params)?.into_iter().next())
}

pub fn correlated(
    conn: &Connection,
    dict: &Dict,
    org: OrgId,
    correlation_id: &str,
    limit: usize,
) -> Result<Vec<Entry>> {
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.org_id = ?1 AND e.correlation_id = ?2 \
         ORDER BY e.occurred_ms DESC, e.pk DESC LIMIT ?3"
    );
    let params = [
        org.into(),
        correlation_id.to_string().into(),
        (limit as i64).into(),
    ];
    query_entries(conn, dict, &sql, &params)
}

pub fn facets(conn: &Connection, org: OrgId) -> Result<Facets> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT d.kind, d.value FROM org_facets f JOIN dict d ON d.id = f.dict_id
             WHERE f.org_id = ? ORDER BY d.value",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map([org], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
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
/// SQLite's own `lower()` and `LIKE` cannot do beyond ASCII.
pub fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    conn.create_scalar_function(
        "stele_icontains",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let Some(haystack) = ctx.get::<Option<String>>(0)? else {
                return Ok(false);
            };
            let needle = ctx.get::<String>(1)?;
            Ok(if haystack.is_ascii() && needle.is_ascii() {
                contains_ascii_ci(haystack.as_bytes(), needle.as_bytes())
            } else {
                haystack.to_lowercase().contains(&needle)
            })
        },
    )
}

fn contains_ascii_ci(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty()
        || haystack
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}
