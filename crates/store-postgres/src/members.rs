//! People, members and sessions (`people`, `members` and `sessions`, migrations 5 and 9): who
//! signs in to the console, shared by every server on the database so that a session started on
//! one is honoured by all.
//!
//! A person's email is unique across Stele through `email_key` ([`stele_store::email_key`],
//! computed in Rust rather than by `lower()`, whose result depends on the database's collation),
//! so both backends agree on what a duplicate is; a member is one person's membership of one
//! organization.

use stele_core::time::Millis;
use stele_store::{
    Member, MemberUpdate, NewMember, NewSession, OrgKey, Session, SessionHash, StoreError,
    email_key,
};
use tokio_postgres::Row;

use crate::error::{Error, R};
use crate::pool::Conn;

/// The member columns as [`from_row`] reads them, from `m` (a membership) joined to `p` (its
/// person) and `o` (its org).
const COLUMNS: &str = "m.id, m.org_key, o.id, o.name, p.email, p.name, m.role, p.password_hash, \
     m.created_ms, m.disabled";

/// The tables [`COLUMNS`] reads.
const JOINED: &str =
    "members m JOIN people p ON p.key = m.person_key JOIN orgs o ON o.key = m.org_key";

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
    let key = email_key(&member.email);
    let mut tx = conn.transaction().await?;
    if tx
        .query_opt("SELECT 1 FROM orgs WHERE key = $1", &[&org.get()])
        .await?
        .is_none()
    {
        return Err(Error::Store(StoreError::NotFound));
    }
    // An existing person keeps their email and password; only a missing name is filled in. (DO
    // UPDATE rather than DO NOTHING so that RETURNING gives the key either way.)
    let person: i64 = tx
        .query_opt(
            "INSERT INTO people (email, email_key, name, password_hash, created_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (email_key) DO UPDATE SET name = coalesce(people.name, excluded.name)
             RETURNING key",
            &[
                &member.email,
                &key,
                &member.name,
                &member.password_hash,
                &member.created_at,
            ],
        )
        .await?
        .ok_or(Error::Store(StoreError::NotFound))?
        .try_get(0)?;
    let inserted = tx
        .execute(
            "INSERT INTO members (id, org_key, person_key, role, created_ms)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (org_key, person_key) DO NOTHING",
            &[&id, &org.get(), &person, &member.role, &member.created_at],
        )
        .await?;
    if inserted == 0 {
        return Err(Error::Store(StoreError::Conflict(format!(
            "this organization already has a member with the email `{}`",
            member.email.trim()
        ))));
    }
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM {JOINED} WHERE m.id = $1"),
            &[&id],
        )
        .await?
        .ok_or(Error::Store(StoreError::NotFound))?;
    let created = from_row(&row)?;
    tx.commit().await?;
    Ok(created)
}

pub async fn find(conn: &mut Conn, org: OrgKey, id: &str) -> R<Option<Member>> {
    if !storable(id) {
        return Ok(None);
    }
    let row = conn
        .query_opt(
            &format!("SELECT {COLUMNS} FROM {JOINED} WHERE m.id = $1 AND m.org_key = $2"),
            &[&id, &org.get()],
        )
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn by_email(conn: &mut Conn, email: &str) -> R<Vec<Member>> {
    if !storable(email) {
        return Ok(Vec::new());
    }
    let rows = conn
        .query(
            &format!(
                "SELECT {COLUMNS} FROM {JOINED} WHERE p.email_key = $1
                 ORDER BY m.last_used_ms DESC NULLS LAST, m.key"
            ),
            &[&email_key(email)],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn list(conn: &mut Conn, org: OrgKey) -> R<Vec<Member>> {
    let rows = conn
        .query(
            &format!("SELECT {COLUMNS} FROM {JOINED} WHERE m.org_key = $1 ORDER BY m.key"),
            &[&org.get()],
        )
        .await?;
    rows.iter().map(from_row).collect()
}

pub async fn update(conn: &mut Conn, org: OrgKey, id: &str, update: MemberUpdate) -> R<Member> {
    if !storable(id)
        || !update.role.as_deref().is_none_or(storable)
        || !update.password_hash.as_deref().is_none_or(storable)
    {
        return Err(Error::Store(StoreError::NotFound));
    }
    let mut tx = conn.transaction().await?;
    let person: i64 = tx
        .query_opt(
            "UPDATE members SET role = coalesce($1, role), disabled = coalesce($2, disabled)
             WHERE id = $3 AND org_key = $4
             RETURNING person_key",
            &[&update.role, &update.disabled, &id, &org.get()],
        )
        .await?
        .ok_or(Error::Store(StoreError::NotFound))?
        .try_get(0)?;
    if let Some(hash) = &update.password_hash {
        // The password is the person's, so every session of theirs ends, in every organization.
        tx.execute(
            "UPDATE people SET password_hash = $1 WHERE key = $2",
            &[hash, &person],
        )
        .await?;
        tx.execute(
            "DELETE FROM sessions
             WHERE member_key IN (SELECT key FROM members WHERE person_key = $1)",
            &[&person],
        )
        .await?;
    }
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM {JOINED} WHERE m.id = $1"),
            &[&id],
        )
        .await?
        .ok_or(Error::Store(StoreError::NotFound))?;
    let updated = from_row(&row)?;
    tx.commit().await?;
    Ok(updated)
}

pub async fn remove(conn: &mut Conn, org: OrgKey, id: &str) -> R<Member> {
    if !storable(id) {
        return Err(Error::Store(StoreError::NotFound));
    }
    let mut tx = conn.transaction().await?;
    let row = tx
        .query_opt(
            &format!(
                "SELECT {COLUMNS}, m.person_key FROM {JOINED} WHERE m.id = $1 AND m.org_key = $2"
            ),
            &[&id, &org.get()],
        )
        .await?
        .ok_or(Error::Store(StoreError::NotFound))?;
    let member = from_row(&row)?;
    let person: i64 = row.try_get(10)?;
    // The sessions on this membership go with it (ON DELETE CASCADE); the person goes with their
    // last membership, so no password hash outlives every organization that knew them.
    tx.execute("DELETE FROM members WHERE id = $1", &[&id])
        .await?;
    tx.execute(
        "DELETE FROM people WHERE key = $1
           AND NOT EXISTS (SELECT 1 FROM members m WHERE m.person_key = people.key)",
        &[&person],
    )
    .await?;
    tx.commit().await?;
    Ok(member)
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
    if row.is_none() {
        return Err(Error::Store(StoreError::NotFound));
    }
    conn.query(
        "UPDATE members SET last_used_ms = $1 WHERE id = $2",
        &[&session.created_at, &session.member_id],
    )
    .await?;
    Ok(())
}

pub async fn switch_session(
    conn: &mut Conn,
    token_hash: &SessionHash,
    member_id: &str,
    now: Millis,
) -> R<Option<Session>> {
    if !storable(member_id) {
        return Ok(None);
    }
    // One statement: the session must be live, and the target an enabled membership of the
    // session's own person; otherwise nothing changes.
    let moved = conn
        .query_opt(
            "WITH current AS (
                 SELECT m.person_key FROM sessions s JOIN members m ON m.key = s.member_key
                 WHERE s.token_hash = $1 AND s.revoked_ms IS NULL AND s.expires_ms > $3
                   AND NOT m.disabled
             ),
             target AS (
                 SELECT t.key FROM members t JOIN current c ON c.person_key = t.person_key
                 WHERE t.id = $2 AND NOT t.disabled
             ),
             used AS (
                 UPDATE members SET last_used_ms = $3 WHERE key IN (SELECT key FROM target)
             )
             UPDATE sessions SET member_key = (SELECT key FROM target),
                                 last_seen_ms = greatest(last_seen_ms, $3)
             WHERE token_hash = $1 AND EXISTS (SELECT 1 FROM target)
             RETURNING member_key",
            &[&&token_hash.0[..], &member_id, &now],
        )
        .await?;
    if moved.is_none() {
        return Ok(None);
    }
    session(conn, token_hash, now).await
}

pub async fn session(conn: &mut Conn, token_hash: &SessionHash, now: Millis) -> R<Option<Session>> {
    let row = conn
        .query_opt(
            &format!(
                "SELECT {COLUMNS}, s.created_ms, s.expires_ms, s.last_seen_ms
                 FROM sessions s
                 JOIN members m ON m.key = s.member_key
                 JOIN people p ON p.key = m.person_key
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
