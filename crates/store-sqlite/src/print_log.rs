//! The print log (`print_log` and `print_log_ids`, migration 6): an editable table apart from
//! the trail. Reads run on the read pool, each in one read transaction so that a page and its
//! count (or the stats' two queries) see one state of the log; writes run on the writer thread,
//! and each appends the audit entries that describe it in its own transaction, the way erasure
//! records itself (`erasure.rs`), so a change and its entries commit together.
//!
//! Filters and stats are plain SQL over the organization's rows: the list walks an index in
//! `(org_id, created_ms)` order (or `(org_id, status | printer_id | created_by_username,
//! created_ms)` when that filter is given) and stops after the page; the stats read the rows once
//! with conditional sums.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params, params_from_iter};
use stele_core::chain::SealedEvent;
use stele_core::time::Millis;
use stele_store::{
    Classification, FailureReason, OrgKey, Print, PrintAudit, PrintFields, PrintFilter, PrintId,
    PrintLogChange, PrintPage, PrintStats, PrintStatus, Result, StoreError,
};

use crate::dict::Dict;
use crate::error::map_err;
use crate::writer::{NewDictValues, insert_own_entries};

/// A print's columns as [`from_row`] reads them.
const COLUMNS: &str = "id, created_ms, status, failure_reason, print_name, printer_id, \
     printer_name, started_ms, completed_ms, duration_seconds, filament_type, filament_color, \
     filament_used_grams, cost, energy_kwh, energy_cost, created_by_username, archive_id, \
     thumbnail_path";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Print> {
    let status: String = r.get(2)?;
    let reason: Option<String> = r.get(3)?;
    let bad = |column: usize, value: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            format!("`{value}` is not in the vocabulary").into(),
        )
    };
    Ok(Print {
        id: PrintId::new(r.get(0)?),
        fields: PrintFields {
            created_at: r.get(1)?,
            status: PrintStatus::parse(&status).ok_or_else(|| bad(2, &status))?,
            failure_reason: match reason {
                None => None,
                Some(reason) => Some(FailureReason::parse(&reason).ok_or_else(|| bad(3, &reason))?),
            },
            print_name: r.get(4)?,
            printer_id: r.get(5)?,
            printer_name: r.get(6)?,
            started_at: r.get(7)?,
            completed_at: r.get(8)?,
            duration_seconds: r.get(9)?,
            filament_type: r.get(10)?,
            filament_color: r.get(11)?,
            filament_used_grams: r.get(12)?,
            cost: r.get(13)?,
            energy_kwh: r.get(14)?,
            energy_cost: r.get(15)?,
            created_by_username: r.get(16)?,
            archive_id: r.get(17)?,
            thumbnail_path: r.get(18)?,
        },
    })
}

/// The `WHERE` clause of a filter and its parameters (the organization first).
fn where_clause(org: OrgKey, filter: &PrintFilter) -> (String, Vec<Value>) {
    let mut sql = String::from("org_id = ?");
    let mut values = vec![Value::Integer(org.get())];
    if let Some(status) = filter.status {
        sql.push_str(" AND status = ?");
        values.push(Value::Text(status.as_str().into()));
    }
    if let Some(printer) = filter.printer_id {
        sql.push_str(" AND printer_id = ?");
        values.push(Value::Integer(printer));
    }
    if let Some(user) = &filter.created_by_username {
        sql.push_str(" AND created_by_username = ?");
        values.push(Value::Text(user.clone()));
    }
    if let Some(from) = filter.from {
        sql.push_str(" AND created_ms >= ?");
        values.push(Value::Integer(from));
    }
    if let Some(to) = filter.to {
        sql.push_str(" AND created_ms < ?");
        values.push(Value::Integer(to));
    }
    if let Some(search) = &filter.search {
        // Registered on the read connections (`read::register_functions`): Unicode lower-casing
        // of the name, compared with the needle lower-cased the same way here.
        sql.push_str(" AND stele_icontains(print_name, ?)");
        values.push(Value::Text(search.to_lowercase()));
    }
    (sql, values)
}

pub fn find(conn: &Connection, org: OrgKey, id: PrintId) -> Result<Option<Print>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM print_log WHERE org_id = ? AND id = ?"
    ))
    .and_then(|mut s| {
        s.query_row(params![org.get(), id.get()], from_row)
            .optional()
    })
    .map_err(map_err)
}

pub fn list(
    conn: &Connection,
    org: OrgKey,
    filter: &PrintFilter,
    limit: u32,
    offset: u64,
) -> Result<PrintPage> {
    let (clause, mut values) = where_clause(org, filter);
    // One read transaction: the page and the count see the same rows.
    let tx = conn.unchecked_transaction().map_err(map_err)?;
    let total: i64 = tx
        .prepare_cached(&format!("SELECT count(*) FROM print_log WHERE {clause}"))
        .and_then(|mut s| s.query_row(params_from_iter(values.iter()), |r| r.get(0)))
        .map_err(map_err)?;
    values.push(Value::Integer(i64::from(limit)));
    values.push(Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
    let items = tx
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM print_log WHERE {clause}
             ORDER BY created_ms DESC, id DESC LIMIT ? OFFSET ?"
        ))
        .and_then(|mut s| {
            s.query_map(params_from_iter(values.iter()), from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_err)?;
    tx.finish().map_err(map_err)?;
    Ok(PrintPage {
        items,
        total: total as u64,
    })
}

pub fn stats(conn: &Connection, org: OrgKey, filter: &PrintFilter) -> Result<PrintStats> {
    let (clause, values) = where_clause(org, filter);
    // The vocabularies are fixed, so each count is a conditional sum over one pass of the rows;
    // the names are this crate's constants, never client text.
    // `total()` adds as floating point and never overflows, where `sum()` of integers fails
    // past i64 (rows stored before ingest bounded their values); the duration's total is then
    // held just under i64::MAX.
    let mut sums = String::from("count(*)");
    for status in PrintStatus::ALL {
        sums += &format!(", coalesce(sum(status = '{status}'), 0)");
    }
    for reason in FailureReason::ALL {
        sums += &format!(", coalesce(sum(failure_reason = '{reason}'), 0)");
    }
    sums += ", coalesce(sum(status = 'failed' AND failure_reason IS NULL), 0),
              CAST(min(total(duration_seconds), 9.2e18) AS INTEGER), count(duration_seconds),
              total(filament_used_grams), total(cost), total(energy_kwh), total(energy_cost)";
    let tx = conn.unchecked_transaction().map_err(map_err)?;
    let mut stats = tx
        .prepare_cached(&format!("SELECT {sums} FROM print_log WHERE {clause}"))
        .and_then(|mut s| {
            s.query_row(params_from_iter(values.iter()), |r| {
                PrintStats::from_sums(|i| r.get::<_, i64>(i), |i| r.get(i))
            })
        })
        .map_err(map_err)?;
    stats.filament_grams_by_type = tx
        .prepare_cached(&format!(
            "SELECT filament_type, total(filament_used_grams) FROM print_log
             WHERE {clause} AND filament_type IS NOT NULL GROUP BY filament_type"
        ))
        .and_then(|mut s| {
            s.query_map(params_from_iter(values.iter()), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_err)?;
    tx.finish().map_err(map_err)?;
    // Sorted here, by Rust's string order, so both backends list the types alike.
    stats.filament_grams_by_type.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(stats)
}

/// What a print log write did, and the dictionary values its audit entries created (published
/// by the caller once the transaction committed).
pub struct Written<T> {
    pub value: T,
    pub new_dict: NewDictValues,
}

impl<T> Written<T> {
    fn nothing(value: T) -> Written<T> {
        Written {
            value,
            new_dict: vec![],
        }
    }
}

/// Appends the audit entries of a change inside its transaction.
fn append_audit(
    tx: &Transaction<'_>,
    dict: &Dict,
    org: OrgKey,
    events: Vec<SealedEvent>,
    now: Millis,
) -> Result<NewDictValues> {
    if events.is_empty() {
        return Err(StoreError::Other(
            "a print log change must be recorded by at least one audit entry".into(),
        ));
    }
    let (_, new_dict) = insert_own_entries(tx, dict, org, events, now)?;
    Ok(new_dict)
}

fn select_one(tx: &Transaction<'_>, org: OrgKey, id: PrintId) -> Result<Print> {
    tx.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM print_log WHERE org_id = ? AND id = ?"
    ))
    .and_then(|mut s| {
        s.query_row(params![org.get(), id.get()], from_row)
            .optional()
    })
    .map_err(map_err)?
    .ok_or(StoreError::NotFound)
}

pub fn record(
    tx: &Transaction<'_>,
    dict: &Dict,
    org: OrgKey,
    fields: PrintFields,
    audit: &PrintAudit,
    now: Millis,
) -> Result<Written<Print>> {
    let known: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM orgs WHERE key = ?)")
        .and_then(|mut s| s.query_row([org.get()], |r| r.get(0)))
        .map_err(map_err)?;
    if !known {
        return Err(StoreError::NotFound);
    }
    // The counter only grows, so an id is never handed out twice, whatever was deleted.
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO print_log_ids (org_id, last_id) VALUES (?, 1)
             ON CONFLICT (org_id) DO UPDATE SET last_id = last_id + 1
             RETURNING last_id",
        )
        .and_then(|mut s| s.query_row([org.get()], |r| r.get(0)))
        .map_err(map_err)?;
    let f = &fields;
    tx.prepare_cached(
        "INSERT INTO print_log (org_id, id, created_ms, status, failure_reason, print_name,
             printer_id, printer_name, started_ms, completed_ms, duration_seconds, filament_type,
             filament_color, filament_used_grams, cost, energy_kwh, energy_cost,
             created_by_username, archive_id, thumbnail_path)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .and_then(|mut s| {
        s.execute(params![
            org.get(),
            id,
            f.created_at,
            f.status.as_str(),
            f.failure_reason.map(FailureReason::as_str),
            f.print_name,
            f.printer_id,
            f.printer_name,
            f.started_at,
            f.completed_at,
            f.duration_seconds,
            f.filament_type,
            f.filament_color,
            f.filament_used_grams,
            f.cost,
            f.energy_kwh,
            f.energy_cost,
            f.created_by_username,
            f.archive_id,
            f.thumbnail_path,
        ])
    })
    .map_err(map_err)?;
    let print = Print {
        id: PrintId::new(id),
        fields,
    };
    let new_dict = append_audit(
        tx,
        dict,
        org,
        audit(PrintLogChange::Recorded { print: &print }),
        now,
    )?;
    Ok(Written {
        value: print,
        new_dict,
    })
}

pub fn classify(
    tx: &Transaction<'_>,
    dict: &Dict,
    org: OrgKey,
    id: PrintId,
    classification: Classification,
    audit: &PrintAudit,
    now: Millis,
) -> Result<Written<(Print, Print)>> {
    let before = select_one(tx, org, id)?;
    let mut after = before.clone();
    if let Some(status) = classification.status {
        after.fields.status = status;
    }
    if let Some(reason) = classification.failure_reason {
        after.fields.failure_reason = reason;
    }
    if after == before {
        return Ok(Written::nothing((before, after)));
    }
    tx.prepare_cached(
        "UPDATE print_log SET status = ?, failure_reason = ? WHERE org_id = ? AND id = ?",
    )
    .and_then(|mut s| {
        s.execute(params![
            after.fields.status.as_str(),
            after.fields.failure_reason.map(FailureReason::as_str),
            org.get(),
            id.get()
        ])
    })
    .map_err(map_err)?;
    let events = audit(PrintLogChange::Classified {
        before: &before,
        after: &after,
    });
    let new_dict = append_audit(tx, dict, org, events, now)?;
    Ok(Written {
        value: (before, after),
        new_dict,
    })
}

pub fn delete(
    tx: &Transaction<'_>,
    dict: &Dict,
    org: OrgKey,
    id: PrintId,
    audit: &PrintAudit,
    now: Millis,
) -> Result<Written<Print>> {
    let print = select_one(tx, org, id)?;
    tx.prepare_cached("DELETE FROM print_log WHERE org_id = ? AND id = ?")
        .and_then(|mut s| s.execute(params![org.get(), id.get()]))
        .map_err(map_err)?;
    let new_dict = append_audit(
        tx,
        dict,
        org,
        audit(PrintLogChange::Deleted { print: &print }),
        now,
    )?;
    Ok(Written {
        value: print,
        new_dict,
    })
}

pub fn clear(
    tx: &Transaction<'_>,
    dict: &Dict,
    org: OrgKey,
    audit: &PrintAudit,
    now: Millis,
) -> Result<Written<u64>> {
    let ids = tx
        .prepare_cached("SELECT id FROM print_log WHERE org_id = ? ORDER BY id")
        .and_then(|mut s| {
            s.query_map([org.get()], |r| r.get(0).map(PrintId::new))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_err)?;
    if ids.is_empty() {
        return Ok(Written::nothing(0));
    }
    // The transaction holds the write lock since it began (IMMEDIATE), so the rows deleted
    // are exactly the rows just listed.
    tx.prepare_cached("DELETE FROM print_log WHERE org_id = ?")
        .and_then(|mut s| s.execute([org.get()]))
        .map_err(map_err)?;
    let new_dict = append_audit(
        tx,
        dict,
        org,
        audit(PrintLogChange::Cleared { ids: &ids }),
        now,
    )?;
    Ok(Written {
        value: ids.len() as u64,
        new_dict,
    })
}
