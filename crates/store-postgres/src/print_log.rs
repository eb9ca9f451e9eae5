//! The print log (`print_log` and `print_log_ids`, migration 6): an editable table apart from
//! the trail. Reads take one snapshot (a page and its count, or the stats' two queries, see one
//! state of the log); each write runs in one transaction with the audit entries that describe it,
//! appended the way erasure appends its record (`erasure.rs`).
//!
//! Why it stays correct with several processes on one database: a write first locks the
//! organization's `chain_state` row, as the group writer does before it appends (and in the same
//! order: chain, then the `pk` allocation lock), so the print log writes of one organization take
//! turns with each other and with its appends, and cannot deadlock with them. The id counter
//! (`print_log_ids`) is bumped under that lock and only grows.

use std::collections::BTreeSet;

use stele_core::chain::SealedEvent;
use stele_core::time::Millis;
use stele_store::{
    Classification, FailureReason, OrgKey, PreparedEvent, Print, PrintAudit, PrintFields,
    PrintFilter, PrintId, PrintLogChange, PrintPage, PrintStats, PrintStatus, StoreError,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::error::{Error, R, other};
use crate::partitions::Month;
use crate::pool::{Conn, Param, Tx};
use crate::read::like_escape;
use crate::writer::{Group, lock_chains};

/// A print's columns as [`from_row`] reads them.
const COLUMNS: &str = "id, created_ms, status, failure_reason, print_name, printer_id, \
     printer_name, started_ms, completed_ms, duration_seconds, filament_type, filament_color, \
     filament_used_grams, cost, energy_kwh, energy_cost, created_by_username, archive_id, \
     thumbnail_path";

fn from_row(r: &Row) -> R<Print> {
    let status: String = r.try_get(2)?;
    let reason: Option<String> = r.try_get(3)?;
    let bad = |value: &str| other(format!("print_log: `{value}` is not in the vocabulary"));
    Ok(Print {
        id: PrintId::new(r.try_get(0)?),
        fields: PrintFields {
            created_at: r.try_get(1)?,
            status: PrintStatus::parse(&status).ok_or_else(|| bad(&status))?,
            failure_reason: match reason {
                None => None,
                Some(reason) => Some(FailureReason::parse(&reason).ok_or_else(|| bad(&reason))?),
            },
            print_name: r.try_get(4)?,
            printer_id: r.try_get(5)?,
            printer_name: r.try_get(6)?,
            started_at: r.try_get(7)?,
            completed_at: r.try_get(8)?,
            duration_seconds: r.try_get(9)?,
            filament_type: r.try_get(10)?,
            filament_color: r.try_get(11)?,
            filament_used_grams: r.try_get(12)?,
            cost: r.try_get(13)?,
            energy_kwh: r.try_get(14)?,
            energy_cost: r.try_get(15)?,
            created_by_username: r.try_get(16)?,
            archive_id: r.try_get(17)?,
            thumbnail_path: r.try_get(18)?,
        },
    })
}

type Boxed = Box<dyn ToSql + Sync + Send>;

/// The `WHERE` clause of a filter and its parameters (`$1` is the organization).
struct Where {
    sql: String,
    params: Vec<Boxed>,
}

impl Where {
    fn of(org: OrgKey, filter: &PrintFilter) -> Where {
        let mut w = Where {
            sql: "org_id = $1".into(),
            params: vec![Box::new(org.get())],
        };
        // Text columns cannot hold U+0000, so a filter text with one matches no row.
        let storable = |s: &str| !s.contains('\0');
        if let Some(status) = filter.status {
            w.condition("status = {}::text", status.as_str().to_string());
        }
        if let Some(printer) = filter.printer_id {
            w.condition("printer_id = {}::int8", printer);
        }
        if let Some(user) = &filter.created_by_username {
            if storable(user) {
                w.condition("created_by_username = {}::text", user.clone());
            } else {
                w.sql.push_str(" AND false");
            }
        }
        if let Some(from) = filter.from {
            w.condition("created_ms >= {}::int8", from);
        }
        if let Some(to) = filter.to {
            w.condition("created_ms < {}::int8", to);
        }
        if let Some(search) = &filter.search {
            if storable(search) {
                // The needle is lower-cased by Rust, the name by `stele_fold` (schema.rs), whose
                // lower-casing is the same Unicode mapping.
                w.condition(
                    "lower(print_name COLLATE stele_fold) LIKE {}::text ESCAPE '\\'",
                    format!("%{}%", like_escape(&search.to_lowercase())),
                );
            } else {
                w.sql.push_str(" AND false");
            }
        }
        w
    }

    /// Adds `template` with its `{}` replaced by the next parameter's placeholder.
    fn condition(&mut self, template: &str, value: impl ToSql + Sync + Send + 'static) {
        self.params.push(Box::new(value));
        let placeholder = format!("${}", self.params.len());
        self.sql.push_str(" AND ");
        self.sql.push_str(&template.replace("{}", &placeholder));
    }

    fn refs(&self) -> Vec<Param<'_>> {
        self.params
            .iter()
            .map(|p| p.as_ref() as Param<'_>)
            .collect()
    }
}

pub async fn find(conn: &mut Conn, org: OrgKey, id: PrintId) -> R<Option<Print>> {
    let row = conn
        .query_opt(
            &format!("SELECT {COLUMNS} FROM print_log WHERE org_id = $1 AND id = $2"),
            &[&org.get(), &id.get()],
        )
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(
    conn: &mut Conn,
    org: OrgKey,
    filter: &PrintFilter,
    limit: u32,
    offset: u64,
) -> R<PrintPage> {
    let w = Where::of(org, filter);
    let n = w.params.len();
    let (limit, offset) = (i64::from(limit), i64::try_from(offset).unwrap_or(i64::MAX));
    let mut tx = conn.snapshot().await?;
    let total: i64 = tx
        .query_opt(
            &format!("SELECT count(*) FROM print_log WHERE {}", w.sql),
            &w.refs(),
        )
        .await?
        .ok_or_else(|| other("count returned no row"))?
        .try_get(0)?;
    let mut params = w.refs();
    params.push(&limit);
    params.push(&offset);
    let rows = tx
        .query(
            &format!(
                "SELECT {COLUMNS} FROM print_log WHERE {}
                 ORDER BY created_ms DESC, id DESC LIMIT ${} OFFSET ${}",
                w.sql,
                n + 1,
                n + 2
            ),
            &params,
        )
        .await?;
    tx.commit().await?;
    Ok(PrintPage {
        items: rows.iter().map(from_row).collect::<R<_>>()?,
        total: total as u64,
    })
}

pub async fn stats(conn: &mut Conn, org: OrgKey, filter: &PrintFilter) -> R<PrintStats> {
    let w = Where::of(org, filter);
    // The vocabularies are fixed, so each count is a filtered aggregate over one pass of the
    // rows; the names are this crate's constants, never client text.
    let mut sums = String::from("count(*)");
    for status in PrintStatus::ALL {
        sums += &format!(", count(*) FILTER (WHERE status = '{status}')");
    }
    for reason in FailureReason::ALL {
        sums += &format!(", count(*) FILTER (WHERE failure_reason = '{reason}')");
    }
    sums += ", count(*) FILTER (WHERE status = 'failed' AND failure_reason IS NULL),
              least(coalesce(sum(duration_seconds), 0), 9223372036854775807)::int8,
              count(duration_seconds),
              coalesce(sum(filament_used_grams), 0)::float8, coalesce(sum(cost), 0)::float8,
              coalesce(sum(energy_kwh), 0)::float8, coalesce(sum(energy_cost), 0)::float8";
    let mut tx = conn.snapshot().await?;
    let row = tx
        .query_opt(
            &format!("SELECT {sums} FROM print_log WHERE {}", w.sql),
            &w.refs(),
        )
        .await?
        .ok_or_else(|| other("stats returned no row"))?;
    let mut stats = PrintStats::from_sums(|i| row.try_get::<_, i64>(i), |i| row.try_get(i))?;
    let rows = tx
        .query(
            &format!(
                "SELECT filament_type, coalesce(sum(filament_used_grams), 0)::float8
                 FROM print_log WHERE {} AND filament_type IS NOT NULL GROUP BY filament_type",
                w.sql
            ),
            &w.refs(),
        )
        .await?;
    tx.commit().await?;
    for row in rows {
        stats
            .filament_grams_by_type
            .push((row.try_get(0)?, row.try_get(1)?));
    }
    // Sorted here, by Rust's string order, so both backends list the types alike.
    stats.filament_grams_by_type.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(stats)
}

/// A write of the print log (the rows boxed: they are large next to an id).
pub enum Write {
    Record(Box<PrintFields>),
    Classify(PrintId, Classification),
    Delete(PrintId),
    Clear,
}

/// What a write did.
pub enum Written {
    Recorded(Box<Print>),
    Classified(Box<(Print, Print)>),
    Deleted(Box<Print>),
    Cleared(u64),
}

/// Runs one write and its audit entries in one transaction. `months` receives the months the
/// entries occurred in, so that the caller can make a missing partition and run it again.
pub async fn write(
    conn: &mut Conn,
    org: OrgKey,
    write: &Write,
    audit: &PrintAudit,
    now: Millis,
    months: &mut BTreeSet<Month>,
) -> R<Written> {
    let mut tx = conn.transaction().await?;
    let chains = lock_chains(&mut tx, &[org]).await?;
    if chains.is_empty() {
        return Err(Error::Store(StoreError::NotFound));
    }
    let (written, events) = match write {
        Write::Record(fields) => {
            let print = insert(&mut tx, org, fields).await?;
            let events = audit(PrintLogChange::Recorded { print: &print });
            (Written::Recorded(Box::new(print)), events)
        }
        Write::Classify(id, classification) => {
            let before = select_for_update(&mut tx, org, *id).await?;
            let mut after = before.clone();
            if let Some(status) = classification.status {
                after.fields.status = status;
            }
            if let Some(reason) = classification.failure_reason {
                after.fields.failure_reason = reason;
            }
            if after == before {
                // Nothing changes, so nothing is written; the transaction only read.
                return Ok(Written::Classified(Box::new((before, after))));
            }
            tx.execute(
                "UPDATE print_log SET status = $3, failure_reason = $4
                 WHERE org_id = $1 AND id = $2",
                &[
                    &org.get(),
                    &id.get(),
                    &after.fields.status.as_str(),
                    &after.fields.failure_reason.map(FailureReason::as_str),
                ],
            )
            .await?;
            let events = audit(PrintLogChange::Classified {
                before: &before,
                after: &after,
            });
            (Written::Classified(Box::new((before, after))), events)
        }
        Write::Delete(id) => {
            let print = select_for_update(&mut tx, org, *id).await?;
            tx.execute(
                "DELETE FROM print_log WHERE org_id = $1 AND id = $2",
                &[&org.get(), &id.get()],
            )
            .await?;
            let events = audit(PrintLogChange::Deleted { print: &print });
            (Written::Deleted(Box::new(print)), events)
        }
        Write::Clear => {
            // Every print log write of the organization waits for the chain lock held here,
            // so the rows deleted are exactly the rows listed.
            let mut ids: Vec<PrintId> = tx
                .query(
                    "DELETE FROM print_log WHERE org_id = $1 RETURNING id",
                    &[&org.get()],
                )
                .await?
                .iter()
                .map(|r| r.try_get(0).map(PrintId::new))
                .collect::<Result<_, _>>()?;
            if ids.is_empty() {
                return Ok(Written::Cleared(0));
            }
            ids.sort_unstable();
            let events = audit(PrintLogChange::Cleared { ids: &ids });
            (Written::Cleared(ids.len() as u64), events)
        }
    };
    append_audit(&mut tx, chains, org, &events, now, months).await?;
    tx.commit().await?;
    Ok(written)
}

/// Appends the audit entries of a change inside its transaction (the chain already locked).
async fn append_audit(
    tx: &mut Tx<'_>,
    chains: std::collections::HashMap<OrgKey, crate::writer::ChainCursor>,
    org: OrgKey,
    events: &[SealedEvent],
    now: Millis,
    months: &mut BTreeSet<Month>,
) -> R<()> {
    if events.is_empty() {
        return Err(other(
            "a print log change must be recorded by at least one audit entry",
        ));
    }
    let occurred: Vec<Millis> = events.iter().map(|e| e.event.occurred_at).collect();
    months.extend(occurred.iter().map(|ms| Month::of(*ms)));
    let mut group = Group::new(chains, now);
    group.allocate_pks(tx, &occurred).await?;
    for sealed in events {
        group.push(org, &PreparedEvent::new(sealed.clone()))?;
    }
    group.flush(tx).await
}

async fn select_for_update(tx: &mut Tx<'_>, org: OrgKey, id: PrintId) -> R<Print> {
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM print_log WHERE org_id = $1 AND id = $2 FOR UPDATE"),
            &[&org.get(), &id.get()],
        )
        .await?
        .ok_or(Error::Store(StoreError::NotFound))?;
    from_row(&row)
}

async fn insert(tx: &mut Tx<'_>, org: OrgKey, f: &PrintFields) -> R<Print> {
    let texts = [
        &f.print_name,
        &f.printer_name,
        &f.filament_type,
        &f.filament_color,
        &f.created_by_username,
        &f.thumbnail_path,
    ];
    if texts
        .iter()
        .any(|t| t.as_deref().is_some_and(|t| t.contains('\0')))
    {
        return Err(Error::Store(StoreError::Conflict(
            "a print's text fields cannot contain U+0000".into(),
        )));
    }
    // The counter only grows, so an id is never handed out twice, whatever was deleted.
    let id: i64 = tx
        .query_opt(
            "INSERT INTO print_log_ids (org_id, last_id) VALUES ($1, 1)
             ON CONFLICT (org_id) DO UPDATE SET last_id = print_log_ids.last_id + 1
             RETURNING last_id",
            &[&org.get()],
        )
        .await?
        .ok_or_else(|| other("the id counter returned no row"))?
        .try_get(0)?;
    tx.execute(
        "INSERT INTO print_log (org_id, id, created_ms, status, failure_reason, print_name,
             printer_id, printer_name, started_ms, completed_ms, duration_seconds, filament_type,
             filament_color, filament_used_grams, cost, energy_kwh, energy_cost,
             created_by_username, archive_id, thumbnail_path)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                 $18, $19, $20)",
        &[
            &org.get(),
            &id,
            &f.created_at,
            &f.status.as_str(),
            &f.failure_reason.map(FailureReason::as_str),
            &f.print_name,
            &f.printer_id,
            &f.printer_name,
            &f.started_at,
            &f.completed_at,
            &f.duration_seconds,
            &f.filament_type,
            &f.filament_color,
            &f.filament_used_grams,
            &f.cost,
            &f.energy_kwh,
            &f.energy_cost,
            &f.created_by_username,
            &f.archive_id,
            &f.thumbnail_path,
        ],
    )
    .await?;
    Ok(Print {
        id: PrintId::new(id),
        fields: f.clone(),
    })
}
