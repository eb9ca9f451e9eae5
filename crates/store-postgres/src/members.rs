//! Members and sessions (`members` and `sessions`, migration 5): who signs in to the console,
//! shared by every server on the database so that a session started on one is honoured by all.
//!
//! A member's email is unique across Stele through `email_key` ([`stele_store::email_key`],
//! computed in Rust rather than by `lower()`, whose result depends on the database's collation),
//! so both backends agree on what a duplicate is.

use stele_core::time::Millis;
use stele_store::{
    Member, MemberUpdate, NewMember, NewSession, OrgKey, Session, SessionHash, StoreError,
    email_key,
};
use tokio_postgres::Row;

use crate::error::{Error, R};
use crate::pool::Conn;

/// The member columns as [`from_row`] reads them, from `m` (a member) joined to `o` (its org).
const COLUMNS: &str = "m.id, m.org_key, o.id, o.name, m.email, m.name, m.role, m.password_hash, \
     m.created_ms, m.disabled";

fn from_row(r: &Row) -> R<Member> {
    Ok(Member {
        id: r.try_get(0)?,
        org: OrgKey::new(r.try_get(1)?),
        org_id: r.try_get(2)?,
        org_name: r.try_get(3)?,
        email: r.try_get(4)?,
        name: r.try_get(5)?,
        role: r.try_get(6)?,
        password_hash: r.try_get(7)?,
        created_at: r.try_get(8)?,
        disabled: r.try_get(9)?,
    })
}

/// Text columns cannot hold U+0000: a value with one names nothing stored.
fn storable(value: &str) -> bool {
    !value.contains('\0')
}

pub async fn create(conn: &mut Conn, id: String, org: OrgKey, member: NewMember) -> R<Member> {
    let texts = [&member.email, &member.role, &member.password_hash];
    if texts.iter().any(|t| !storable(t)) || !member.name.as_deref().is_none_or(storable) {
        return Err(Error::Store(StoreError::Conflict(
            "a member's email, name, role and password hash cannot contain U+0000".into(),
        )));
    }
    // Inserting from `orgs` turns an unknown organization into NotFound rather than a foreign
    // key violation (Conflict).
    let row = conn
        .query_opt(
            &format!(
                "WITH m AS (
                     INSERT INTO members (id, org_key, email, email_key, name, role,
                                          password_hash, created_ms)
                     SELECT $1, key, $3, $4, $5, $6, $7, $8 FROM orgs WHERE key = $2
                     RETURNING *
                 )
                 SELECT {COLUMNS} FROM m JOIN orgs o ON o.key = m.org_key"
            ),
            &[
                &id,
                &org.get(),
                &member.email,
                &email_key(&member.email),
                &member.name,
                &member.role,
                &member.password_hash,
                &member.created_at,
            ],
        )
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => Error::Store(StoreError::Conflict(format!(
                "a member with the email `{}` already exists",
                member.email.trim()
            ))),
            other => Error::Store(other),
        })?
        .ok_or(Error::Store(StoreError::NotFound))?;
    from_row(&row)
}

pub async fn find(conn: &mut Conn, org: OrgKey, id: &str) -> R<Option<Member>> {
    if !storable(id) {
        return Ok(None);
    }
    let row = conn
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM members m JOIN orgs o ON o.key = m.org_key
                 WHERE m.id = $1 AND m.org_key = $2"
            ),
            &[&id, &org.get()],
        )
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_email(conn: &mut Conn, email: &str) -> R<Option<Member>> {
    if !storable(email) {
        return Ok(None);
    }
    let row = conn
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM members m JOIN orgs o ON o.key = m.org_key
                 WHERE m.email_key = $1"
            ),
            &[&email_key(email)],
        )
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(conn: &mut Conn, org: OrgKey) -> R<Vec<Member>> {
    let rows = conn
        .query(
            &format!(
                "SELECT {COLUMNS} FROM members m JOIN orgs o ON o.key = m.org_key
                 WHERE m.org_key = $1 ORDER BY m.key"
            ),
            &[&org.get()],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn update(conn: &mut Conn, org: OrgKey, id: &str, update: MemberUpdate) -> R<Member> {
    if !storable(id) || !update.role.as_deref().is_none_or(storable) {
        return Err(Error::Store(StoreError::NotFound));
    }
    let row = conn
        .query_opt(
            &format!(
                "WITH m AS (
                     UPDATE members SET role = coalesce($1, role),
                                        disabled = coalesce($2, disabled),
                                        password_hash = coalesce($5, password_hash)
                     WHERE id = $3 AND org_key = $4
                     RETURNING *
                 ),
                 -- A new password ends the member's sessions, in the same statement.
                 s AS (
                     DELETE FROM sessions
                     WHERE $5::text IS NOT NULL AND member_key IN (SELECT key FROM m)
                 )
                 SELECT {COLUMNS} FROM m JOIN orgs o ON o.key = m.org_key"
            ),
            &[
                &update.role,
                &update.disabled,
                &id,
                &org.get(),
                &update.password_hash,
            ],
        )
        .await?
        .ok_or(Error::Store(StoreError::NotFound))?;
    from_row(&row)
}

pub async fn remove(conn: &mut Conn, org: OrgKey, id: &str) -> R<Member> {
    if !storable(id) {
        return Err(Error::Store(StoreError::NotFound));
    }
    // The sessions go with the member (ON DELETE CASCADE).
    let row = conn
        .query_opt(
            &format!(
                "WITH m AS (DELETE FROM members WHERE id = $1 AND org_key = $2 RETURNING *)
                 SELECT {COLUMNS} FROM m JOIN orgs o ON o.key = m.org_key"
            ),
            &[&id, &org.get()],
        )
        .await?
        .ok_or(Error::Store(StoreError::NotFound))?;
    from_row(&row)
}

pub async fn create_session(conn: &mut Conn, session: NewSession) -> R<()> {
    if !storable(&session.member_id) {
        return Err(Error::Store(StoreError::NotFound));
    }
    let row = conn
        .query_opt(
            "INSERT INTO sessions (token_hash, member_key, created_ms, expires_ms, last_seen_ms)
             SELECT $1, key, $2, $3, $2 FROM members WHERE id = $4
             RETURNING member_key",
            &[
                &&session.token_hash.0[..],
                &session.created_at,
                &session.expires_at,
                &session.member_id,
            ],
        )
        .await?;
    match row {
        Some(_) => Ok(()),
        None => Err(Error::Store(StoreError::NotFound)),
    }
}

pub async fn session(conn: &mut Conn, token_hash: &SessionHash, now: Millis) -> R<Option<Session>> {
    let row = conn
        .query_opt(
            &format!(
                "SELECT {COLUMNS}, s.created_ms, s.expires_ms, s.last_seen_ms
                 FROM sessions s
                 JOIN members m ON m.key = s.member_key
                 JOIN orgs o ON o.key = m.org_key
                 WHERE s.token_hash = $1 AND s.revoked_ms IS NULL AND s.expires_ms > $2
                   AND NOT m.disabled"
            ),
            &[&&token_hash.0[..], &now],
        )
        .await?;
    row.map(|r| {
        Ok(Session {
            member: from_row(&r)?,
            created_at: r.try_get(10)?,
            expires_at: r.try_get(11)?,
            last_seen_at: r.try_get(12)?,
        })
    })
    .transpose()
}

pub async fn touch_session(conn: &mut Conn, token_hash: &SessionHash, now: Millis) -> R<()> {
    conn.query(
        "UPDATE sessions SET last_seen_ms = greatest(last_seen_ms, $1) WHERE token_hash = $2",
        &[&now, &&token_hash.0[..]],
    )
    .await?;
    Ok(())
}

pub async fn revoke_session(conn: &mut Conn, token_hash: &SessionHash, now: Millis) -> R<bool> {
    let row = conn
        .query_opt(
            "UPDATE sessions SET revoked_ms = $1
             WHERE token_hash = $2 AND revoked_ms IS NULL RETURNING member_key",
            &[&now, &&token_hash.0[..]],
        )
        .await?;
    Ok(row.is_some())
}

pub async fn forget_sessions(conn: &mut Conn, ended_before: Millis) -> R<u64> {
    let rows = conn
        .query(
            "DELETE FROM sessions WHERE expires_ms < $1 OR revoked_ms < $1 RETURNING member_key",
            &[&ended_before],
        )
        .await?;
    Ok(rows.len() as u64)
}
