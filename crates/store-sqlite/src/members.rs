//! People, members and sessions (`people`, `members` and `sessions`, migrations 5 and 9): who
//! signs in to the console. Writes run on the writer thread like every other write; reads on the
//! read pool.
//!
//! A person's email is unique across Stele through `email_key` ([`stele_store::email_key`],
//! computed here in Rust, not by SQLite's ASCII-only `NOCASE`), so both backends agree on what a
//! duplicate is; a member is one person's membership of one organization.

use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use stele_core::time::Millis;
use stele_store::{
    Member, MemberUpdate, NewMember, NewSession, OrgKey, Result, Session, SessionHash, StoreError,
    email_key,
};

use crate::error::map_err;

/// The member columns as [`from_row`] reads them, from `m` (a membership) joined to `p` (its
/// person) and `o` (its org).
const COLUMNS: &str = "m.id, m.org_key, o.id, o.name, p.email, p.name, m.role, p.password_hash, \
     m.created_ms, m.disabled";

/// The tables [`COLUMNS`] reads.
const JOINED: &str =
    "members m JOIN people p ON p.key = m.person_key JOIN orgs o ON o.key = m.org_key";

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
    let org_exists = tx
        .query_row("SELECT 1 FROM orgs WHERE key = ?", [org.get()], |_| Ok(()))
        .optional()
        .map_err(map_err)?
        .is_some();
    if !org_exists {
        return Err(StoreError::NotFound);
    }
    let key = email_key(&member.email);
    // An existing person keeps their email and password; only a missing name is filled in.
    tx.execute(
        "INSERT INTO people (email, email_key, name, password_hash, created_ms)
         VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (email_key) DO UPDATE SET name = coalesce(people.name, excluded.name)",
        params![
            member.email,
            key,
            member.name,
            member.password_hash,
            member.created_at
        ],
    )
    .map_err(map_err)?;
    tx.execute(
        "INSERT INTO members (id, org_key, person_key, role, created_ms, disabled)
         SELECT ?, ?, key, ?, ?, 0 FROM people WHERE email_key = ?",
        params![id, org.get(), member.role, member.created_at, key],
    )
    .map_err(|e| match map_err(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!(
            "this organization already has a member with the email `{}`",
            member.email.trim()
        )),
        other => other,
    })?;
    find(tx, org, &id)?.ok_or(StoreError::NotFound)
}

pub fn find(conn: &Connection, org: OrgKey, id: &str) -> Result<Option<Member>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM {JOINED} WHERE m.id = ? AND m.org_key = ?"
    ))
    .and_then(|mut s| s.query_row(params![id, org.get()], from_row).optional())
    .map_err(map_err)
}

pub fn by_email(conn: &Connection, email: &str) -> Result<Vec<Member>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM {JOINED} WHERE p.email_key = ?
             ORDER BY m.last_used_ms IS NULL, m.last_used_ms DESC, m.key"
        ))
        .map_err(map_err)?;
    stmt.query_map([email_key(email)], from_row)
        .and_then(|rows| rows.collect())
        .map_err(map_err)
}

pub fn list(conn: &Connection, org: OrgKey) -> Result<Vec<Member>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM {JOINED} WHERE m.org_key = ? ORDER BY m.key"
        ))
        .map_err(map_err)?;
    stmt.query_map([org.get()], from_row)
        .and_then(|rows| rows.collect())
        .map_err(map_err)
}

pub fn update(tx: &Transaction<'_>, org: OrgKey, id: &str, update: MemberUpdate) -> Result<Member> {
    let person: i64 = tx
        .query_row(
            "SELECT person_key FROM members WHERE id = ? AND org_key = ?",
            params![id, org.get()],
            |r| r.get(0),
        )
        .optional()
        .map_err(map_err)?
        .ok_or(StoreError::NotFound)?;
    tx.execute(
        "UPDATE members SET role = coalesce(?, role), disabled = coalesce(?, disabled)
         WHERE id = ? AND org_key = ?",
        params![update.role, update.disabled, id, org.get()],
    )
    .map_err(map_err)?;
    if let Some(hash) = &update.password_hash {
        // The password is the person's, so every session of theirs ends, in every organization.
        tx.execute(
            "UPDATE people SET password_hash = ? WHERE key = ?",
            params![hash, person],
        )
        .map_err(map_err)?;
        tx.execute(
            "DELETE FROM sessions
             WHERE member_key IN (SELECT key FROM members WHERE person_key = ?)",
            [person],
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
    forget_people_without_members(tx, &email_key(&member.email))?;
    Ok(member)
}

/// Deletes the person with this email key if no membership is left: a password hash outlives no
/// organization that knew the person.
fn forget_people_without_members(tx: &Transaction<'_>, email_key: &str) -> Result<()> {
    tx.execute(
        "DELETE FROM people WHERE email_key = ?
           AND NOT EXISTS (SELECT 1 FROM members m WHERE m.person_key = people.key)",
        [email_key],
    )
    .map_err(map_err)?;
    Ok(())
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
    tx.execute(
        "UPDATE members SET last_used_ms = ? WHERE id = ?",
        params![session.created_at, session.member_id],
    )
    .map_err(map_err)?;
    Ok(())
}

pub fn switch_session(
    tx: &Transaction<'_>,
    token_hash: &SessionHash,
    member_id: &str,
    now: Millis,
) -> Result<Option<Session>> {
    let Some(current) = session(tx, token_hash, now)? else {
        return Ok(None);
    };
    // The target must be an enabled membership of the session's own person.
    let target: Option<i64> = tx
        .query_row(
            "SELECT t.key FROM members t JOIN members c ON c.person_key = t.person_key
             WHERE t.id = ? AND c.id = ? AND NOT t.disabled",
            params![member_id, current.member.id],
            |r| r.get(0),
        )
        .optional()
        .map_err(map_err)?;
    let Some(target) = target else {
        return Ok(None);
    };
    tx.execute(
        "UPDATE sessions SET member_key = ?, last_seen_ms = max(last_seen_ms, ?)
         WHERE token_hash = ?",
        params![target, now, &token_hash.0[..]],
    )
    .map_err(map_err)?;
    tx.execute(
        "UPDATE members SET last_used_ms = ? WHERE key = ?",
        params![now, target],
    )
    .map_err(map_err)?;
    session(tx, token_hash, now)
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
         JOIN people p ON p.key = m.person_key
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
