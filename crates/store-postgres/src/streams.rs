//! Log streams (`streams`, migrations 17 and 18): each stream's configuration, cursor and lease,
//! and a platform-wide stream's cursor in each organization (`stream_cursors`), shared by every
//! server on the database.
//!
//! Each change is one statement. A lease is taken by a conditional `UPDATE` (`… WHERE lease_owner
//! IS NULL OR lease_until <= now`): under READ COMMITTED PostgreSQL re-checks the condition on the
//! row it locked, so two servers claiming at once never both get a stream; and a delivery's
//! result is recorded only `WHERE lease_owner = $me AND revision = $read`, so a server that lost
//! its lease, or read a configuration since changed, records nothing.

use stele_core::Seq;
use stele_store::{
    DeliveryReport, NewStream, OrgKey, OrgProgress, StoreError, Stream, StreamChange, StreamClaim,
    StreamStart, StreamState,
};
use tokio_postgres::Row;

use crate::error::{Error, R, other};
use crate::pool::Conn;

const COLUMNS: &str = "s.id, s.org_id, s.name, s.spec, s.state, s.paused_reason, s.cursor_seq, \
     s.delivered, s.failures, s.last_error, s.last_error_ms, s.last_delivery_ms, s.retry_ms, \
     s.secret_version, s.previous_secret_until, s.revision, s.lease_owner, s.lease_until, \
     s.created_ms, s.updated_ms, s.platform_wide";

fn from_row(r: &Row) -> R<Stream> {
    let state: &str = r.try_get(4)?;
    let state = StreamState::parse(state)
        .ok_or_else(|| other(format!("unknown stream state `{state}`")))?;
    Ok(Stream {
        id: r.try_get(0)?,
        org: OrgKey::new(r.try_get(1)?),
        name: r.try_get(2)?,
        spec: r.try_get(3)?,
        state,
        paused_reason: r.try_get(5)?,
        cursor: Seq::new(r.try_get(6)?),
        delivered: r.try_get::<_, i64>(7)? as u64,
        failures: r.try_get::<_, i64>(8)? as u32,
        last_error: r.try_get(9)?,
        last_error_at: r.try_get(10)?,
        last_delivery_at: r.try_get(11)?,
        retry_at: r.try_get(12)?,
        secret_version: r.try_get::<_, i64>(13)? as u32,
        previous_secret_until: r.try_get(14)?,
        revision: r.try_get::<_, i64>(15)? as u64,
        lease_owner: r.try_get(16)?,
        lease_until: r.try_get(17)?,
        created_at: r.try_get(18)?,
        updated_at: r.try_get(19)?,
        platform_wide: r.try_get(20)?,
    })
}

/// Text columns cannot hold U+0000; an id with one names no stream.
fn storable(id: &str) -> bool {
    !id.contains('\0')
}

/// Text a receiver or a person wrote, made storable.
fn text(s: &str) -> String {
    s.replace('\0', "")
}

pub async fn create(conn: &mut Conn, id: String, org: OrgKey, new: NewStream) -> R<Stream> {
    let (cursor, platform_wide) = match new.start {
        StreamStart::After(cursor) => (cursor, false),
        StreamStart::EveryOrganization { .. } => (Seq::new(0), true),
    };
    let from_now = new.start == (StreamStart::EveryOrganization { from_now: true });
    // One statement: the organizations' heads a platform-wide stream starts after are read in
    // the snapshot its row is written in.
    let row = conn
        .query_opt(
            &format!(
                "WITH s AS (
                     INSERT INTO streams (id, org_id, name, spec, state, cursor_seq,
                                          platform_wide, created_ms, updated_ms)
                     VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $7) RETURNING *
                 ), c AS (
                     INSERT INTO stream_cursors (stream_id, org_id, cursor_seq)
                     SELECT $1, org_id, seq FROM chain_state WHERE $8 AND seq > 0
                 )
                 SELECT {COLUMNS} FROM s"
            ),
            &[
                &id,
                &org.get(),
                &text(&new.name),
                &text(&new.spec),
                &cursor.get(),
                &platform_wide,
                &new.created_at,
                &from_now,
            ],
        )
        .await?
        .ok_or(Error::Store(StoreError::NotFound))?;
    from_row(&row)
}

pub async fn find(conn: &mut Conn, org: OrgKey, id: &str) -> R<Option<Stream>> {
    if !storable(id) {
        return Ok(None);
    }
    let row = conn
        .query_opt(
            &format!("SELECT {COLUMNS} FROM streams s WHERE s.id = $1 AND s.org_id = $2"),
            &[&id, &org.get()],
        )
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(conn: &mut Conn, org: OrgKey) -> R<Vec<Stream>> {
    let rows = conn
        .query(
            &format!(
                "SELECT {COLUMNS} FROM streams s WHERE s.org_id = $1 ORDER BY s.created_ms, s.id"
            ),
            &[&org.get()],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn change(conn: &mut Conn, org: OrgKey, id: &str, change: StreamChange) -> R<Stream> {
    if !storable(id) {
        return Err(Error::Store(StoreError::NotFound));
    }
    let state = change.state.as_ref().map(|(state, _)| state.as_str());
    let reason = change
        .state
        .as_ref()
        .and_then(|(_, reason)| reason.as_deref())
        .map(text);
    let row = conn
        .query_opt(
            &format!(
                "WITH s AS (
                     UPDATE streams SET
                         name = coalesce($3, name),
                         spec = coalesce($4, spec),
                         state = coalesce($5, state),
                         paused_reason = CASE WHEN $5::text IS NULL THEN paused_reason
                                              WHEN $5 = 'active' THEN NULL ELSE $6 END,
                         failures = CASE WHEN $5 = 'active' THEN 0 ELSE failures END,
                         retry_ms = CASE WHEN $5 = 'active' THEN NULL ELSE retry_ms END,
                         cursor_seq = coalesce($7, cursor_seq),
                         secret_version = secret_version
                             + CASE WHEN $8::bigint IS NULL THEN 0 ELSE 1 END,
                         previous_secret_until = coalesce($8, previous_secret_until),
                         revision = revision + 1,
                         updated_ms = $9
                     WHERE id = $1 AND org_id = $2
                     RETURNING *
                 ), c AS (
                     -- A platform-wide stream's cursor moves in every organization.
                     INSERT INTO stream_cursors (stream_id, org_id, cursor_seq)
                     SELECT s.id, o.key, $7 FROM s JOIN orgs o ON o.deleted_ms IS NULL
                     WHERE s.platform_wide AND $7::bigint IS NOT NULL
                     ON CONFLICT (stream_id, org_id) DO UPDATE SET cursor_seq = excluded.cursor_seq
                 )
                 SELECT {COLUMNS} FROM s"
            ),
            &[
                &id,
                &org.get(),
                &change.name.as_deref().map(text),
                &change.spec.as_deref().map(text),
                &state,
                &reason,
                &change.cursor.map(Seq::get),
                &change.rotate_secret,
                &change.at,
            ],
        )
        .await?
        .ok_or(Error::Store(StoreError::NotFound))?;
    from_row(&row)
}

pub async fn delete(conn: &mut Conn, org: OrgKey, id: &str) -> R<bool> {
    if !storable(id) {
        return Ok(false);
    }
    let deleted = conn
        .query_opt(
            "WITH d AS (DELETE FROM streams WHERE id = $1 AND org_id = $2 RETURNING id),
                  c AS (DELETE FROM stream_cursors WHERE stream_id IN (SELECT id FROM d))
             SELECT id FROM d",
            &[&id, &org.get()],
        )
        .await?;
    Ok(deleted.is_some())
}

pub async fn claim(conn: &mut Conn, claim: &StreamClaim) -> R<Vec<Stream>> {
    conn.query(
        "UPDATE streams SET lease_owner = $1, lease_until = $3
         WHERE state = 'active'
           AND (lease_owner IS NULL OR lease_until <= $2
                OR (lease_owner = $1 AND lease_until < $4))
           AND org_id IN (SELECT key FROM orgs WHERE deleted_ms IS NULL)",
        &[&claim.owner, &claim.now, &claim.until, &claim.renew_before],
    )
    .await?;
    // A second statement, so that it sees what the first took (a statement's own changes are
    // not in its snapshot).
    let rows = conn
        .query(
            &format!(
                "SELECT {COLUMNS} FROM streams s
                 WHERE s.lease_owner = $1 AND s.state = 'active'
                 ORDER BY s.created_ms, s.id"
            ),
            &[&claim.owner],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn release(conn: &mut Conn, owner: &str) -> R<()> {
    conn.query(
        "UPDATE streams SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1",
        &[&owner],
    )
    .await?;
    Ok(())
}

pub async fn record_delivery(
    conn: &mut Conn,
    id: &str,
    owner: &str,
    revision: u64,
    report: DeliveryReport,
) -> R<bool> {
    if !storable(id) {
        return Ok(false);
    }
    let revision = revision as i64;
    let changed = match report {
        DeliveryReport::Delivered {
            cursors,
            entries,
            at,
        } => {
            // An organization's stream names only its own organization.
            let own = cursors.iter().map(|(_, seq)| seq.get()).max().unwrap_or(0);
            // One row per organization: an upsert may not touch a row twice in a statement.
            let mut furthest = std::collections::BTreeMap::new();
            for (org, seq) in &cursors {
                let at = furthest.entry(org.get()).or_insert(seq.get());
                *at = (*at).max(seq.get());
            }
            let (orgs, seqs): (Vec<i64>, Vec<i64>) = furthest.into_iter().unzip();
            conn.query_opt(
                "WITH s AS (
                     UPDATE streams SET delivered = delivered + $2, failures = 0, retry_ms = NULL,
                         cursor_seq = CASE WHEN platform_wide THEN cursor_seq
                                           ELSE greatest(cursor_seq, $1) END,
                         last_delivery_ms = CASE WHEN $2 > 0 THEN $3 ELSE last_delivery_ms END
                     WHERE id = $4 AND lease_owner = $5 AND revision = $6 AND state = 'active'
                     RETURNING id, platform_wide
                 ), c AS (
                     -- Not for an organization deleted while the batch was on its way: its
                     -- cursors went with it.
                     INSERT INTO stream_cursors (stream_id, org_id, cursor_seq)
                     SELECT s.id, m.org_id, m.cursor_seq
                     FROM s, unnest($7::bigint[], $8::bigint[]) AS m (org_id, cursor_seq)
                     WHERE s.platform_wide
                       AND EXISTS (SELECT 1 FROM orgs WHERE key = m.org_id AND deleted_ms IS NULL)
                     ON CONFLICT (stream_id, org_id)
                     DO UPDATE SET cursor_seq = greatest(stream_cursors.cursor_seq, excluded.cursor_seq)
                 )
                 SELECT id FROM s",
                &[
                    &own,
                    &(entries as i64),
                    &at,
                    &id,
                    &owner,
                    &revision,
                    &orgs,
                    &seqs,
                ],
            )
            .await?
        }
        DeliveryReport::Failed {
            error,
            at,
            retry_at,
        } => {
            conn.query_opt(
                "UPDATE streams SET failures = failures + 1, last_error = $1, last_error_ms = $2,
                     retry_ms = $3
                 WHERE id = $4 AND lease_owner = $5 AND revision = $6 AND state = 'active'
                 RETURNING id",
                &[&text(&error), &at, &retry_at, &id, &owner, &revision],
            )
            .await?
        }
        DeliveryReport::Refused { error, at } => {
            conn.query_opt(
                "UPDATE streams SET state = 'paused', paused_reason = $1, last_error = $1,
                     last_error_ms = $2, failures = failures + 1, retry_ms = NULL,
                     revision = revision + 1, updated_ms = $2
                 WHERE id = $3 AND lease_owner = $4 AND revision = $5 AND state = 'active'
                 RETURNING id",
                &[&text(&error), &at, &id, &owner, &revision],
            )
            .await?
        }
    };
    Ok(changed.is_some())
}

pub async fn progress(conn: &mut Conn, id: &str) -> R<Vec<OrgProgress>> {
    if !storable(id) {
        return Ok(Vec::new());
    }
    let rows = conn
        .query(
            "SELECT o.key, o.id, coalesce(h.seq, 0), coalesce(c.cursor_seq, 0)
             FROM streams s
             JOIN orgs o ON o.deleted_ms IS NULL
             LEFT JOIN chain_state h ON h.org_id = o.key
             LEFT JOIN stream_cursors c ON c.stream_id = s.id AND c.org_id = o.key
             WHERE s.id = $1 AND s.platform_wide
             ORDER BY o.key",
            &[&id],
        )
        .await?;
    rows.iter()
        .map(|r| {
            Ok(OrgProgress {
                org: OrgKey::new(r.try_get(0)?),
                org_id: r.try_get(1)?,
                head: Seq::new(r.try_get(2)?),
                cursor: Seq::new(r.try_get(3)?),
            })
        })
        .collect()
}

pub async fn oldest_waiting(conn: &mut Conn, id: &str) -> R<Option<i64>> {
    if !storable(id) {
        return Ok(None);
    }
    let row = conn
        .query_opt(
            "SELECT min((SELECT e.recorded_ms FROM entries e
                         WHERE e.org_id = o.key AND e.seq > coalesce(c.cursor_seq, 0)
                         ORDER BY e.seq LIMIT 1))
             FROM streams s
             JOIN orgs o ON o.deleted_ms IS NULL
             JOIN chain_state h ON h.org_id = o.key
             LEFT JOIN stream_cursors c ON c.stream_id = s.id AND c.org_id = o.key
             WHERE s.id = $1 AND s.platform_wide AND h.seq > coalesce(c.cursor_seq, 0)",
            &[&id],
        )
        .await?;
    Ok(match row {
        Some(row) => row.try_get(0)?,
        None => None,
    })
}

pub async fn head_seq(conn: &mut Conn, org: OrgKey) -> R<Seq> {
    let row = conn
        .query_opt(
            "SELECT seq FROM chain_state WHERE org_id = $1",
            &[&org.get()],
        )
        .await?;
    Ok(Seq::new(match row {
        Some(row) => row.try_get(0)?,
        None => 0,
    }))
}
