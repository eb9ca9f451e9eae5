//! The dictionary of low-cardinality strings (actions, detailed actions, channels, entity types,
//! actor types), shared by the writer and the readers.
//!
//! Ids are published to this cache only after the transaction that created them commits, so a
//! reader never resolves an id that a rollback could take back. A reader that meets an id or a
//! value it does not know (written by another process) reloads from the database.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use rusqlite::Connection;

#[derive(Default)]
struct Maps {
    by_id: HashMap<i64, Arc<str>>,
    /// kind → value → id, nested so a lookup borrows the `&str` instead of allocating a key.
    by_value: HashMap<i64, HashMap<Arc<str>, i64>>,
    /// Every id up to this one is loaded: [`Dict::refresh`] reads from here on. Only a refresh
    /// moves it. The writer's own new ids are published as they commit, but another process may
    /// have added lower ids this cache has not loaded yet, so they say nothing about what lies
    /// below them.
    loaded_up_to: i64,
}

#[derive(Default)]
pub struct Dict {
    maps: RwLock<Maps>,
}

impl Dict {
    pub fn id_of(&self, kind: i64, value: &str) -> Option<i64> {
        let maps = self.maps.read().expect("dict lock");
        maps.by_value.get(&kind)?.get(value).copied()
    }

    pub fn value_of(&self, id: i64) -> Option<Arc<str>> {
        self.maps.read().expect("dict lock").by_id.get(&id).cloned()
    }

    /// Every value of `kind` that starts with `prefix`.
    pub fn values_with_prefix(&self, kind: i64, prefix: &str) -> Vec<Arc<str>> {
        let maps = self.maps.read().expect("dict lock");
        let mut values: Vec<Arc<str>> = maps
            .by_value
            .get(&kind)
            .into_iter()
            .flatten()
            .filter(|(v, _)| v.starts_with(prefix))
            .map(|(v, _)| v.clone())
            .collect();
        values.sort();
        values
    }

    pub fn publish(&self, id: i64, kind: i64, value: Arc<str>) {
        let mut maps = self.maps.write().expect("dict lock");
        maps.by_id.insert(id, value.clone());
        maps.by_value.entry(kind).or_default().insert(value, id);
    }

    /// Loads dictionary rows this cache has not seen yet. Rows are never deleted and one writer
    /// commits at a time, so the rows a snapshot shows are every id up to the largest.
    pub fn refresh(&self, conn: &Connection) -> rusqlite::Result<()> {
        let after = self.maps.read().expect("dict lock").loaded_up_to;
        let mut stmt =
            conn.prepare_cached("SELECT id, kind, value FROM dict WHERE id > ? ORDER BY id")?;
        let rows = stmt.query_map([after], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (id, kind, value) = row?;
            self.publish(id, kind, Arc::from(value));
            let mut maps = self.maps.write().expect("dict lock");
            maps.loaded_up_to = maps.loaded_up_to.max(id);
        }
        Ok(())
    }
}
