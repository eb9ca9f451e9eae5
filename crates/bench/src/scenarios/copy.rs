//! The `copy` scenario (PostgreSQL only): the raw speed of this machine's PostgreSQL at taking
//! the rows Stele wrote, as the yardstick for Stele's own durable HTTP ingest (issue 4: the ratio
//! of the two should be 1.0 or better).
//!
//! What it does, after the ingest scenario:
//! 1. reads back the first `n` entries Stele stored, and their `entry_keys` rows, byte for byte
//!    in PostgreSQL's binary format (so the yardstick writes exactly the same values);
//! 2. creates `bench_raw_entries` and `bench_raw_entry_keys` with `LIKE … INCLUDING ALL`: the
//!    same columns and the same indexes (the trigram index included), but plain tables, with no
//!    triggers and no partitions, which only makes the yardstick faster;
//! 3. **batched**: as many connections as the ingest had clients each `COPY … FROM STDIN (FORMAT
//!    binary)` batches of the ingest's size, each batch (its entries and their keys) committed
//!    on its own with `synchronous_commit = on`, the durability every HTTP acknowledgement has;
//! 4. **one COPY**: the same rows again, into emptied tables, in one `COPY` per table and one
//!    commit: the ceiling, with no durability point until the end;
//! 5. drops both tables, so the disk scenario sees only Stele's data.
//!
//! What the yardstick leaves out, and Stele does: the HTTP request, JSON parsing and validation,
//! hashing the chain, the chain and idempotency bookkeeping, the facet rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::BytesMut;
use stele_server::app::backend::DatabaseUrl;
use tokio_postgres::binary_copy::{BinaryCopyInWriter, BinaryCopyOutStream};
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls};

// The columns and types the writer copies (`erased` is left to its default, as the writer does).
use stele_store_postgres::{
    ENTRY_COPY_COLUMNS as ENTRY_COLUMNS, ENTRY_COPY_TYPES as ENTRY_TYPES,
    KEY_COPY_COLUMNS as KEY_COLUMNS, KEY_COPY_TYPES as KEY_TYPES,
};

pub struct RawCopyResult {
    pub entries: u64,
    pub key_rows: u64,
    pub batch: usize,
    pub connections: usize,
    /// Wall time of the batched, durable copy.
    pub batched: Duration,
    /// Wall time of the single COPY.
    pub single: Duration,
}

impl RawCopyResult {
    pub fn batched_rate(&self) -> f64 {
        self.entries as f64 / self.batched.as_secs_f64()
    }

    pub fn single_rate(&self) -> f64 {
        self.entries as f64 / self.single.as_secs_f64()
    }
}

/// One column value exactly as PostgreSQL sent it (binary format), sent back unchanged.
#[derive(Debug)]
struct Raw(Option<Vec<u8>>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw.to_vec())))
    }

    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl ToSql for Raw {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            Some(bytes) => {
                out.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // The value came from a column of this very type.
        self.to_sql(ty, out)
    }
}

type RawRow = Vec<Raw>;

async fn connect(url: &DatabaseUrl) -> anyhow::Result<Client> {
    let (client, connection) = tokio_postgres::connect(url.expose(), NoTls)
        .await
        .with_context(|| format!("connecting to {url}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client.batch_execute("SET synchronous_commit = on").await?;
    Ok(client)
}

async fn copy_out(client: &Client, sql: &str, types: &[Type]) -> anyhow::Result<Vec<RawRow>> {
    use futures_util::StreamExt as _;
    let stream = client.copy_out(sql).await?;
    let rows = BinaryCopyOutStream::new(stream, types);
    let mut rows = std::pin::pin!(rows);
    let mut out = Vec::new();
    while let Some(row) = rows.next().await {
        let row = row?;
        out.push(
            (0..types.len())
                .map(|i| row.try_get::<Raw>(i))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    Ok(out)
}

async fn copy_in<'r>(
    client: &Client,
    sql: &str,
    types: &[Type],
    rows: impl IntoIterator<Item = &'r RawRow>,
) -> anyhow::Result<()> {
    let sink = client.copy_in(sql).await?;
    let mut writer = std::pin::pin!(BinaryCopyInWriter::new(sink, types));
    for row in rows {
        let values: Vec<&(dyn ToSql + Sync)> =
            row.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&values).await?;
    }
    writer.finish().await?;
    Ok(())
}

/// One batch: its entries and their key rows.
struct Batch {
    entries: Vec<RawRow>,
    keys: Vec<RawRow>,
}

fn pk_of(row: &RawRow) -> i64 {
    let bytes: [u8; 8] = row[0]
        .0
        .as_deref()
        .and_then(|b| b.try_into().ok())
        .expect("pk is a non-null int8");
    i64::from_be_bytes(bytes)
}

/// Cuts the entries (in `pk` order) into batches of `size`, each with the key rows of its entries
/// (`keys` in `pk` order too, the `pk` being their last column).
fn batches(entries: Vec<RawRow>, mut keys: Vec<RawRow>, size: usize) -> Vec<Batch> {
    let key_pk = |row: &RawRow| {
        let bytes: [u8; 8] = row[3]
            .0
            .as_deref()
            .and_then(|b| b.try_into().ok())
            .expect("entry_keys.pk is a non-null int8");
        i64::from_be_bytes(bytes)
    };
    keys.sort_by_key(key_pk);
    let mut keys = keys.into_iter().peekable();
    let mut out = Vec::new();
    let mut entries = entries.into_iter().peekable();
    while entries.peek().is_some() {
        let chunk: Vec<RawRow> = entries.by_ref().take(size).collect();
        let last = pk_of(chunk.last().expect("a chunk is never empty"));
        let mut chunk_keys = Vec::new();
        while keys.peek().is_some_and(|k| key_pk(k) <= last) {
            chunk_keys.push(keys.next().expect("peeked"));
        }
        out.push(Batch {
            entries: chunk,
            keys: chunk_keys,
        });
    }
    out
}

const RAW_ENTRIES: &str = "bench_raw_entries";
const RAW_KEYS: &str = "bench_raw_entry_keys";

async fn create_tables(client: &Client) -> anyhow::Result<()> {
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {RAW_ENTRIES}, {RAW_KEYS};
             CREATE TABLE {RAW_ENTRIES} (LIKE entries INCLUDING ALL);
             CREATE TABLE {RAW_KEYS} (LIKE entry_keys INCLUDING ALL);"
        ))
        .await?;
    Ok(())
}

pub async fn run(
    url: &DatabaseUrl,
    events: u64,
    batch: usize,
    connections: usize,
) -> anyhow::Result<RawCopyResult> {
    let client = connect(url).await?;
    eprintln!("bench: copy: reading back {events} stored entries and their key rows");
    let entries = copy_out(
        &client,
        &format!(
            "COPY (SELECT {ENTRY_COLUMNS} FROM entries ORDER BY pk LIMIT {events}) TO STDOUT (FORMAT binary)"
        ),
        &ENTRY_TYPES,
    )
    .await?;
    let Some(last_pk) = entries.last().map(pk_of) else {
        anyhow::bail!("the copy scenario needs stored entries: run it with the ingest scenario");
    };
    let keys = copy_out(
        &client,
        &format!(
            "COPY (SELECT {KEY_COLUMNS} FROM entry_keys WHERE pk <= {last_pk}) TO STDOUT (FORMAT binary)"
        ),
        &KEY_TYPES,
    )
    .await?;
    let (entry_count, key_count) = (entries.len() as u64, keys.len() as u64);
    let batches = Arc::new(batches(entries, keys, batch));

    create_tables(&client).await?;
    eprintln!(
        "bench: copy: {entry_count} entries + {key_count} key rows, batches of {batch} committed one by one from {connections} connections"
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (batches, next) = (batches.clone(), next.clone());
        let client = connect(url).await?;
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(b) = batches.get(i) else {
                    return anyhow::Ok(());
                };
                client.batch_execute("BEGIN").await?;
                copy_in(&client, &entries_copy(), &ENTRY_TYPES, &b.entries).await?;
                if !b.keys.is_empty() {
                    copy_in(&client, &keys_copy(), &KEY_TYPES, &b.keys).await?;
                }
                client.batch_execute("COMMIT").await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let batched = started.elapsed();

    create_tables(&client).await?;
    eprintln!("bench: copy: the same rows again in one COPY per table");
    let started = Instant::now();
    client.batch_execute("BEGIN").await?;
    let all_entries = batches.iter().flat_map(|b| b.entries.iter());
    copy_in(&client, &entries_copy(), &ENTRY_TYPES, all_entries).await?;
    let all_keys = batches.iter().flat_map(|b| b.keys.iter());
    copy_in(&client, &keys_copy(), &KEY_TYPES, all_keys).await?;
    client.batch_execute("COMMIT").await?;
    let single = started.elapsed();

    client
        .batch_execute(&format!("DROP TABLE {RAW_ENTRIES}, {RAW_KEYS}"))
        .await?;
    Ok(RawCopyResult {
        entries: entry_count,
        key_rows: key_count,
        batch,
        connections,
        batched,
        single,
    })
}

fn entries_copy() -> String {
    format!("COPY {RAW_ENTRIES} ({ENTRY_COLUMNS}) FROM STDIN (FORMAT binary)")
}

fn keys_copy() -> String {
    format!("COPY {RAW_KEYS} ({KEY_COLUMNS}) FROM STDIN (FORMAT binary)")
}
