//! GDPR erasure: replaces one person's identity in every entry of an organization with a
//! pseudonym, in the same transaction that records the erasure itself.
//!
//! The chain committed only to a salted digest of the personal fields (stele_core::chain), so
//! replacing them, dropping the salt and setting `erased` (the one update the immutability
//! trigger allows) leaves every hash valid. The person's rows in `entry_keys` (actor id and email,
//! IP) are replaced by the pseudonym's, so filters find the pseudonym and no longer the person.
//! The record lists the erased entries' `seq`s as its `entity_ids`: verification accepts an
//! erased entry only with exactly the pseudonym of the erasure that lists it.
//!
//! The organization's chain row is locked first, as the writer does, before any entry is
//! touched: the erasure record is appended to the same chain, and the lock order (chain, then the
//! `pk` allocation lock) is the writer's, so the two cannot deadlock.

use std::collections::HashSet;

use stele_core::chain::{Personal, SealedEvent};
use stele_core::time::Millis;
use stele_store::{Erasure, OrgKey, PreparedEvent, Receipt, StoreError};

use crate::codec::{ENTRY_COLUMNS, KEY_ACTOR, KEY_ENTITY_ID, decode_row, entry_keys};
use crate::error::{Error, R, other};
use crate::pool::Conn;
use crate::writer::{Group, insert_keys, lock_chains};

/// What an erasure did.
pub struct Erased {
    pub entries: u64,
    pub receipt: Receipt,
}

pub async fn erase_actor(
    conn: &mut Conn,
    org: OrgKey,
    erasure: &Erasure,
    now: Millis,
) -> R<Erased> {
    let (actor, pseudonym) = (erasure.actor.as_str(), erasure.pseudonym.as_str());
    let mut tx = conn.transaction().await?;
    let chains = lock_chains(&mut tx, &[org]).await?;
    if chains.is_empty() {
        return Err(Error::Store(StoreError::NotFound));
    }

    // Every entry that names the actor by id or email, found through its identifier rows.
    // (Stored text cannot contain U+0000, so an identifier with one names nobody.)
    let mut found = Vec::new();
    if !actor.contains('\0') {
        let rows = tx
            .query(
                &format!(
                    "SELECT {ENTRY_COLUMNS} FROM entry_keys k JOIN entries e ON e.pk = k.pk
                     WHERE k.org_id = $1 AND k.kind = $2 AND k.value = $3 AND e.org_id = $1
                     ORDER BY e.seq"
                ),
                &[&org.get(), &KEY_ACTOR, &actor],
            )
            .await?;
        for row in &rows {
            let (pk, entry) = decode_row(row)?;
            let a = &entry.event.actor;
            if a.id.as_deref() == Some(actor) || a.email.as_deref() == Some(actor) {
                found.push((pk, entry.seq, entry.event));
            }
        }
    }

    let replacement = Personal {
        actor_id: Some(pseudonym.to_string()),
        ..Personal::default()
    };
    let personal_json = serde_json::to_string(&replacement).map_err(|e| other(e.to_string()))?;
    if !found.is_empty() {
        let pks: Vec<i64> = found.iter().map(|(pk, _, _)| *pk).collect();
        let updated: HashSet<i64> = tx
            .query(
                "UPDATE entries SET personal = $1, salt = NULL, erased = true
                 WHERE org_id = $2 AND pk = ANY($3) RETURNING pk",
                &[&personal_json, &org.get(), &pks],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        // An entry that a retention run removed meanwhile (it was found, then its row went
        // before it could be updated) is no longer there to erase.
        found.retain(|(pk, _, _)| updated.contains(pk));
        // The identifier rows of the person (actor id, email, IP) go; the pseudonym's come.
        let (mut old_kind, mut old_value, mut old_pk) = (vec![], vec![], vec![]);
        let (mut new_org, mut new_kind, mut new_value, mut new_pk) =
            (vec![], vec![], vec![], vec![]);
        for (pk, _, before) in &found {
            let mut after = before.clone();
            replacement.apply(&mut after);
            for (kind, value) in entry_keys(before) {
                if kind != KEY_ENTITY_ID {
                    old_kind.push(kind);
                    old_value.push(value.to_string());
                    old_pk.push(*pk);
                }
            }
            for (kind, value) in entry_keys(&after) {
                if kind != KEY_ENTITY_ID {
                    new_org.push(org.get());
                    new_kind.push(kind);
                    new_value.push(value.to_string());
                    new_pk.push(*pk);
                }
            }
        }
        tx.execute(
            "DELETE FROM entry_keys k
             USING unnest($2::int2[], $3::text[], $4::int8[]) AS d (kind, value, pk)
             WHERE k.org_id = $1 AND k.kind = d.kind AND k.value = d.value AND k.pk = d.pk",
            &[&org.get(), &old_kind, &old_value, &old_pk],
        )
        .await?;
        insert_keys(&mut tx, &new_org, &new_kind, &new_value, &new_pk).await?;
    }

    let mut record = erasure.record.clone();
    // The record lists what it erased (by `seq`, in order), so verification can tell an erased
    // entry from a forged one (`integrity.rs`).
    record
        .metadata
        .insert("entries".into(), serde_json::json!(found.len()));
    record.entity_ids = found.iter().map(|(_, seq, _)| seq.to_string()).collect();
    let mut group = Group::new(chains, now);
    group.allocate_pks(&mut tx, &[record.occurred_at]).await?;
    let receipt = group.push(
        org,
        &PreparedEvent::new(SealedEvent::seal(record, erasure.salt)),
    )?;
    group.flush(&mut tx).await?;
    tx.commit().await?;
    Ok(Erased {
        entries: found.len() as u64,
        receipt,
    })
}
