//! Members and sessions (`members` and `sessions`, migration 5): who signs in to the console.
//! Writes run on the writer thread like every other write; reads on the read pool.
//!
//! A member's email is unique across Stele through `email_key` ([`stele_store::email_key`],
//! computed here in Rust, not by SQLite's ASCII-only `NOCASE`), so both backends agree on what a
//! duplicate is.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use stele_core::time::Millis;
use stele_store::{
    Member, MemberUpdate, NewMember, NewSession, OrgKey, Result, Session, SessionHash, StoreError,
    email_key,
};

use crate::error::map_err;

/// The member columns as [`from_row`] reads them, from `m` (a member) joined to `o` (its org).
const COLUMNS: &str = "m.id, m.org_key, o.id, o.name, m.email, m.name, m.role, m.password_hash, \
     m.created_ms, m.disabled";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Member> {
    Ok(Member {
        id: r.get(0)?,
        org: OrgKey::new(r.get(1)?),
        org_id: r.get(2)?,
        org_name: r.get(3)?,
        email: r.get(4)?,
        name: r.get(5)?,
        role: r.get(6)?,
        password_hash: r.get(7)?,
        created_at: r.get(8)?,
        disabled: r.get(9)?,
    })
}

pub fn create(tx: &Transaction<'_>, id: String, org: OrgKey, member: NewMember) -> Result<Member> {
    let inserted = tx
        .execute(
            "INSERT INTO members
                 (id, org_key, email, email_key, name, role, password_hash, created_ms, disabled)
             SELECT ?, key, ?, ?, ?, ?, ?, ?, 0 FROM orgs WHERE key = ?",
            params![
                id,
                member.email,
                email_key(&member.email),
                member.name,
                member.role,
                member.password_hash,
                member.created_at,
                org.get()
            ],
        )
        .map_err(|e| match map_err(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "a member with the email `{}` already exists",
                member.email.trim()
            )),
            other => other,
        })?;
    if inserted == 0 {
        return Err(StoreError::NotFound);
    }
    find(tx, org, &id)?.ok_or(StoreError::NotFound)
}

pub fn find(conn: &Connection, org: OrgKey, id: &str) -> Result<Option<Member>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM members m JOIN orgs o ON o.key = m.org_key
         WHERE m.id = ? AND m.org_key = ?"
    ))
    .and_then(|mut s| s.query_row(params![id, org.get()], from_row).optional())
    .map_err(map_err)
}

pub fn by_email(conn: &Connection, email: &str) -> Result<Option<Member>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM members m JOIN orgs o ON o.key = m.org_key WHERE m.email_key = ?"
    ))
    .and_then(|mut s| s.query_row([email_key(email)], from_row).optional())
    .map_err(map_err)
}

pub fn list(conn: &Connection, org: OrgKey) -> Result<Vec<Member>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM members m JOIN orgs o ON o.key = m.org_key
             WHERE m.org_key = ? ORDER BY m.key"
        ))
        .map_err(map_err)?;
    stmt.query_map([org.get()], from_row)
        .and_then(|rows| rows.collect())
        .map_err(map_err)
}

pub fn update(tx: &Transaction<'_>, org: OrgKey, id: &str, update: MemberUpdate) -> Result<Member> {
    let changed = tx
        .execute(
            "UPDATE members SET role = coalesce(?, role), disabled = coalesce(?, disabled),
                                password_hash = coalesce(?, password_hash)
             WHERE id = ? AND org_key = ?",
            params![
                update.role,
                update.disabled,
                update.password_hash,
                id,
                org.get()
            ],
        )
        .map_err(map_err)?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    if update.password_hash.is_some() {
        tx.execute(
            "DELETE FROM sessions WHERE member_key = (SELECT key FROM members WHERE id = ?)",
            [id],
        )
        .map_err(map_err)?;
    }
    find(tx, org, id)?.ok_or(StoreError::NotFound)
}

pub fn remove(tx: &Transaction<'_>, org: OrgKey, id: &str) -> Result<Member> {
    let member = find(tx, org, id)?.ok_or(StoreError::NotFound)?;
    tx.execute(
        "DELETE FROM sessions WHERE member_key = (SELECT key FROM members WHERE id = ?)",
        [id],
    )
    .map_err(map_err)?;
    tx.execute(
        "DELETE FROM members WHERE id = ? AND org_key = ?",
        params![id, org.get()],
    )
    .map_err(map_err)?;
    Ok(member)
}

pub fn create_session(tx: &Transaction<'_>, session: NewSession) -> Result<()> {
    let inserted = tx
        .execute(
            "INSERT INTO sessions (token_hash, member_key, created_ms, expires_ms, last_seen_ms)
             SELECT ?, key, ?, ?, ? FROM members WHERE id = ?",
            params![
                &session.token_hash.0[..],
                session.created_at,
                session.expires_at,
                session.created_at,
                session.member_id
            ],
        )
        .map_err(map_err)?;
    if inserted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

pub fn session(
    conn: &Connection,
    token_hash: &SessionHash,
    now: Millis,
) -> Result<Option<Session>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS}, s.created_ms, s.expires_ms, s.last_seen_ms
         FROM sessions s
         JOIN members m ON m.key = s.member_key
         JOIN orgs o ON o.key = m.org_key
         WHERE s.token_hash = ? AND s.revoked_ms IS NULL AND s.expires_ms > ? AND NOT m.disabled"
    ))
    .and_then(|mut s| {
        s.query_row(params![&token_hash.0[..], now], |r| {
            Ok(Session {
                member: from_row(r)?,
                created_at: r.get(10)?,
                expires_at: r.get(11)?,
                last_seen_at: r.get(12)?,
            })
        })
        .optional()
    })
    .map_err(map_err)
}

pub fn touch_session(tx: &Transaction<'_>, token_hash: &SessionHash, now: Millis) -> Result<()> {
    tx.execute(
        "UPDATE sessions SET last_seen_ms = max(last_seen_ms, ?) WHERE token_hash = ?",
        params![now, &token_hash.0[..]],
    )
    .map_err(map_err)?;
    Ok(())
}

pub fn revoke_session(tx: &Transaction<'_>, token_hash: &SessionHash, now: Millis) -> Result<bool> {
    let changed = tx
        .execute(
            "UPDATE sessions SET revoked_ms = ? WHERE token_hash = ? AND revoked_ms IS NULL",
            params![now, &token_hash.0[..]],
        )
        .map_err(map_err)?;
    Ok(changed == 1)
}

pub fn forget_sessions(tx: &Transaction<'_>, ended_before: Millis) -> Result<u64> {
    let deleted = tx
        .execute(
            "DELETE FROM sessions WHERE expires_ms < ?1 OR revoked_ms < ?1",
            [ended_before],
        )
        .map_err(map_err)?;
    Ok(deleted as u64)
}
