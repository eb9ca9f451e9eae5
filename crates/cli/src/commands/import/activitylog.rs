//! The `activity_log` table of spatie/laravel-activitylog, read from MariaDB/MySQL
//! (`mysql_async`) or PostgreSQL (`tokio-postgres`), in pages in id order, so a resumed run
//! continues after the last id imported and a later run imports only the rows added since.
//!
//! Only `id` (an integer, as the package's migration makes it) and `created_at` are required;
//! each other column is read where the table has it (`event` and `batch_uuid` came with version
//! 4 of the package). Every value is read as text (`CAST(… AS CHAR)`, `::text`), so the column
//! types of any version of the migration do. The mapping:
//!
//! | column | event |
//! |---|---|
//! | `event` (`created`, `updated`, `deleted`, `restored`, …) | `action` (`create`, `update`, `delete`, `restore`; another word as itself; none: `other`) and, with the subject's class, `detailed_action` (`Post.created`) |
//! | `subject_type`, `subject_id` | `entity`: the class's basename as type (`App\Models\Post` → `Post`), the id, the class in `entity.metadata.class` |
//! | `causer_type`, `causer_id` | `actor`: type `user` (or what the basename names: `ApiClient` stays `user`, `Bot` is `api`…), the id, the class in `actor.metadata.class`; no causer: a `system` actor |
//! | `properties.attributes`, `properties.old` | `after`, `before`: Stele records the fields that changed (a create's new values, a delete's old ones) |
//! | `properties`' other keys | `metadata`, a value that is not a scalar as JSON text |
//! | `description` | `description` |
//! | `log_name` | `channel`, made a channel name (lowercase; other characters than `a-z0-9_.-` as `-`); the name as it was in `metadata["activitylog.log_name"]` when that changed it |
//! | `batch_uuid` | `context.correlation_id` |
//! | `created_at` | `occurred_at`, in the `--utc-offset` given (Laravel writes the application's time zone, UTC by default); a value with its own offset (PostgreSQL `timestamptz`) keeps it |
//! | `id` | what identifies the row (with the database and table names: its idempotency key), and `metadata.imported_from` (`activity_log:42`) |

use std::str::FromStr as _;

use anyhow::Context as _;
use chrono::{FixedOffset, NaiveDateTime, TimeZone as _};
use serde_json::{Map, Value, json};
use stele_server::compat::vocabulary;

use super::{IMPORTED_FROM, Problem, Resume, Row, Rows, row_key};

pub const KIND: &str = "activitylog";

/// The columns read, in this order; the first two are required.
const COLUMNS: [&str; 11] = [
    "id",
    "created_at",
    "log_name",
    "description",
    "subject_type",
    "subject_id",
    "causer_type",
    "causer_id",
    "properties",
    "event",
    "batch_uuid",
];

/// One row, every value as text.
#[derive(Debug, Clone, Default)]
pub struct ActivityRow {
    pub id: String,
    pub created_at: Option<String>,
    pub log_name: Option<String>,
    pub description: Option<String>,
    pub subject_type: Option<String>,
    pub subject_id: Option<String>,
    pub causer_type: Option<String>,
    pub causer_id: Option<String>,
    pub properties: Option<String>,
    pub event: Option<String>,
    pub batch_uuid: Option<String>,
}

impl ActivityRow {
    fn from_values(mut v: Vec<Option<String>>) -> anyhow::Result<ActivityRow> {
        v.resize(COLUMNS.len(), None);
        let mut v = v.into_iter();
        let mut next = || v.next().flatten();
        Ok(ActivityRow {
            id: next().context("a row without an id")?,
            created_at: next(),
            log_name: next(),
            description: next(),
            subject_type: next(),
            subject_id: next(),
            causer_type: next(),
            causer_id: next(),
            properties: next(),
            event: next(),
            batch_uuid: next(),
        })
    }
}

enum Database {
    Mysql(mysql_async::Opts),
    Postgres(String),
}

/// The table to import, checked: reachable, with the required columns.
pub struct Table {
    database: Database,
    /// The database's name, part of each row's identity.
    database_name: String,
    /// Where it is, without credentials: `mysql 127.0.0.1:3306/app`.
    shown: String,
    table: String,
    /// The select list: each of [`COLUMNS`] as text, or NULL where the table lacks it.
    select: String,
    offset: FixedOffset,
    page_size: u32,
}

impl Table {
    /// Connects to the database and reads the table's columns: an unknown database, a missing
    /// table or a missing required column is an error naming it.
    pub async fn connect(
        url: &str,
        table: &str,
        utc_offset: &str,
        page_size: u32,
    ) -> anyhow::Result<Table> {
        let offset = FixedOffset::from_str(utc_offset).ok().with_context(|| {
            format!("--utc-offset `{utc_offset}` is not an offset such as +02:00")
        })?;
        anyhow::ensure!(
            !table.is_empty()
                && table.split('.').count() <= 2
                && table
                    .split('.')
                    .all(|p| !p.is_empty()
                        && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')),
            "--table `{table}`: a table name is letters, digits and `_` (a PostgreSQL schema may \
             come first: schema.table)"
        );
        let (database, database_name, shown, present) =
            if url.starts_with("mysql://") || url.starts_with("mariadb://") {
                let url = url.replacen("mariadb://", "mysql://", 1);
                let opts = mysql_async::Opts::from_url(&url)
                    .map_err(|e| anyhow::anyhow!("--database-url is not a MySQL URL: {e}"))?;
                let name = opts
                    .db_name()
                    .context("--database-url names no database (mysql://user@host:3306/DATABASE)")?
                    .to_string();
                let shown = format!("mysql {}:{}/{name}", opts.ip_or_hostname(), opts.tcp_port());
                let present = mysql_columns(&opts, table, &shown).await?;
                (Database::Mysql(opts), name, shown, present)
            } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                let config: tokio_postgres::Config = url
                    .parse()
                    .map_err(|e| anyhow::anyhow!("--database-url is not a PostgreSQL URL: {e}"))?;
                let name = config
                    .get_dbname()
                    .or(config.get_user())
                    .unwrap_or("postgres")
                    .to_string();
                let host = match config.get_hosts().first() {
                    Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
                    Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
                    None => "localhost".into(),
                };
                let port = config.get_ports().first().copied().unwrap_or(5432);
                let shown = format!("postgres {host}:{port}/{name}");
                let present = postgres_columns(url, table, &shown).await?;
                (Database::Postgres(url.to_string()), name, shown, present)
            } else {
                anyhow::bail!(
                    "--database-url must start with mysql:// (MariaDB or MySQL) or postgres://"
                );
            };
        for required in &COLUMNS[..2] {
            anyhow::ensure!(
                present.iter().any(|c| c == required),
                "{shown}: table `{table}` has no `{required}` column (its columns: {})",
                present.join(", ")
            );
        }
        let mysql = matches!(database, Database::Mysql(_));
        let select = COLUMNS
            .iter()
            .map(|c| match (present.iter().any(|p| p == c), mysql) {
                (true, true) => format!("CAST(`{c}` AS CHAR)"),
                (true, false) => format!("\"{c}\"::text"),
                (false, true) => "NULL".to_string(),
                (false, false) => "NULL::text".to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Table {
            database,
            database_name,
            shown,
            table: table.to_string(),
            select,
            offset,
            page_size,
        })
    }

    /// The source as the state file and messages name it (no credentials).
    pub fn name(&self) -> String {
        format!("{} table {}", self.shown, self.table)
    }

    pub fn state_file_name(&self) -> String {
        format!(
            "stele-import-{}-{}.json",
            self.database_name.replace(['/', '\\'], "_"),
            self.table
        )
    }

    fn quoted_table(&self) -> String {
        let q = if matches!(self.database, Database::Mysql(_)) {
            '`'
        } else {
            '"'
        };
        self.table
            .split('.')
            .map(|p| format!("{q}{p}{q}"))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// Reads the rows after `resume.cursor`, a page at a time, on a task of its own.
    pub fn read(self, resume: Resume) -> Rows {
        let (tx, rx) = tokio::sync::mpsc::channel(2 * self.page_size.max(500) as usize);
        tokio::spawn(async move {
            if let Err(e) = self.read_pages(resume, &tx).await {
                let _ = tx.send(Err(e)).await;
            }
        });
        rx
    }

    async fn read_pages(
        &self,
        resume: Resume,
        tx: &tokio::sync::mpsc::Sender<anyhow::Result<Row>>,
    ) -> anyhow::Result<()> {
        let mut after: i64 = match &resume.cursor {
            Some(c) => c
                .parse()
                .with_context(|| format!("the state file's last id `{c}` is not an integer"))?,
            None => i64::MIN,
        };
        let mut ordinal = resume.rows_done;
        // The table's `id`, qualified: PostgreSQL would read a bare `"id"` in ORDER BY as the
        // output column of that name, `"id"::text`, and order the ids as text.
        let sql = format!(
            "SELECT {} FROM {} AS t WHERE t.\"id\" > {} ORDER BY t.\"id\" LIMIT {}",
            self.select,
            self.quoted_table(),
            if matches!(self.database, Database::Mysql(_)) {
                "?"
            } else {
                "$1::bigint"
            },
            self.page_size
        );
        let mut pages = Pages::open(&self.database, &self.shown).await?;
        loop {
            let rows = pages.next(&sql, after).await?;
            let Some(last) = rows.last() else {
                pages.close().await;
                return Ok(());
            };
            after = last
                .id
                .parse()
                .with_context(|| format!("{}: id `{}` is not an integer", self.name(), last.id))?;
            for row in rows {
                ordinal += 1;
                let key = row_key(
                    KIND,
                    row.id.parse().unwrap_or(0),
                    &format!("{}\n{}\n{}", self.database_name, self.table, row.id),
                );
                let event = map_activity(&row, &self.table, self.offset);
                let row = Row {
                    ordinal,
                    at: format!("id {}", row.id),
                    cursor: Some(row.id.clone()),
                    key,
                    event,
                };
                if tx.send(Ok(row)).await.is_err() {
                    pages.close().await;
                    return Ok(());
                }
            }
        }
    }
}

/// A connection reading pages.
enum Pages {
    Mysql(mysql_async::Conn),
    Postgres(tokio_postgres::Client),
}

impl Pages {
    async fn open(database: &Database, shown: &str) -> anyhow::Result<Pages> {
        Ok(match database {
            Database::Mysql(opts) => Pages::Mysql(
                mysql_async::Conn::new(opts.clone())
                    .await
                    .with_context(|| format!("connecting to {shown}"))?,
            ),
            Database::Postgres(url) => Pages::Postgres(postgres_client(url, shown).await?),
        })
    }

    async fn next(&mut self, sql: &str, after: i64) -> anyhow::Result<Vec<ActivityRow>> {
        match self {
            Pages::Mysql(conn) => {
                use mysql_async::prelude::Queryable as _;
                // MySQL quotes identifiers with backticks.
                let sql = sql.replace("t.\"id\"", "t.`id`");
                let rows: Vec<mysql_async::Row> = conn
                    .exec(sql, (after,))
                    .await
                    .context("reading the table")?;
                rows.into_iter()
                    .map(|mut row| {
                        let values = (0..row.len())
                            .map(|i| match row.take_opt::<Option<String>, usize>(i) {
                                Some(Ok(v)) => Ok(v),
                                Some(Err(e)) => Err(anyhow::anyhow!("column {}: {e}", COLUMNS[i])),
                                None => Ok(None),
                            })
                            .collect::<anyhow::Result<Vec<_>>>()?;
                        ActivityRow::from_values(values)
                    })
                    .collect()
            }
            Pages::Postgres(client) => {
                let rows = client
                    .query(sql, &[&after])
                    .await
                    .context("reading the table")?;
                rows.iter()
                    .map(|row| {
                        let values = (0..row.len())
                            .map(|i| row.try_get::<_, Option<String>>(i))
                            .collect::<Result<Vec<_>, _>>()?;
                        ActivityRow::from_values(values)
                    })
                    .collect()
            }
        }
    }

    async fn close(self) {
        if let Pages::Mysql(conn) = self {
            let _ = conn.disconnect().await;
        }
    }
}

async fn mysql_columns(
    opts: &mysql_async::Opts,
    table: &str,
    shown: &str,
) -> anyhow::Result<Vec<String>> {
    use mysql_async::prelude::Queryable as _;
    let mut conn = mysql_async::Conn::new(opts.clone())
        .await
        .with_context(|| format!("connecting to {shown}"))?;
    let columns: Vec<String> = conn
        .exec(
            "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (table,),
        )
        .await
        .with_context(|| format!("{shown}: reading the columns of `{table}`"))?;
    let _ = conn.disconnect().await;
    anyhow::ensure!(!columns.is_empty(), "{shown}: there is no table `{table}`");
    Ok(columns)
}

async fn postgres_client(url: &str, shown: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {shown}"))?;
    tokio::spawn(connection);
    Ok(client)
}

async fn postgres_columns(url: &str, table: &str, shown: &str) -> anyhow::Result<Vec<String>> {
    let client = postgres_client(url, shown).await?;
    let (schema, name) = match table.split_once('.') {
        Some((s, t)) => (Some(s), t),
        None => (None, table),
    };
    let rows = client
        .query(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = coalesce($1, current_schema()) AND table_name = $2",
            &[&schema, &name],
        )
        .await
        .with_context(|| format!("{shown}: reading the columns of `{table}`"))?;
    let columns: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    anyhow::ensure!(!columns.is_empty(), "{shown}: there is no table `{table}`");
    Ok(columns)
}

/// The last segment of a PHP class name: `App\Models\Post` → `Post`.
fn basename(class: &str) -> &str {
    class.rsplit('\\').next().unwrap_or(class)
}

/// Maps one row onto an event (the table in the module's comment).
pub fn map_activity(
    row: &ActivityRow,
    table: &str,
    offset: FixedOffset,
) -> Result<Map<String, Value>, Problem> {
    let created_at = row
        .created_at
        .as_deref()
        .ok_or_else(|| Problem::new("created_at", "is empty"))?;
    let occurred_at = occurred_at(created_at, offset)?;
    let mut metadata = Map::new();
    let mut event = Map::new();
    event.insert("occurred_at".into(), json!(occurred_at));

    let happened = row.event.as_deref().unwrap_or("").trim();
    let action = match happened.to_ascii_lowercase().as_str() {
        "created" => "create".to_string(),
        "updated" => "update".to_string(),
        "deleted" => "delete".to_string(),
        "restored" => "restore".to_string(),
        other => vocabulary::general_action(other),
    };
    event.insert("action".into(), json!(action));
    if !happened.is_empty() {
        let detailed = match row.subject_type.as_deref() {
            Some(class) => format!("{}.{happened}", basename(class)),
            None => happened.to_string(),
        };
        if detailed.len() <= 128
            && detailed
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.:/-".contains(c))
            && !detailed.starts_with("stele.")
        {
            event.insert("detailed_action".into(), json!(detailed));
        } else {
            metadata.insert("activitylog.event".into(), json!(happened));
        }
    }

    if let Some(log) = row.log_name.as_deref().filter(|l| !l.is_empty()) {
        let channel = channel_of(log);
        if channel != log {
            metadata.insert("activitylog.log_name".into(), json!(log));
        }
        event.insert("channel".into(), json!(channel));
    }
    if let Some(d) = row.description.as_deref().filter(|d| !d.is_empty()) {
        event.insert("description".into(), json!(d));
    }

    let actor = match (&row.causer_type, &row.causer_id) {
        (None, None) => json!({"type": "system"}),
        (class, id) => {
            let kind = class.as_deref().map_or(stele_core::ActorType::User, |c| {
                vocabulary::actor_type(basename(c))
            });
            let mut actor = Map::new();
            actor.insert("type".into(), json!(kind.as_str()));
            if let Some(id) = id {
                actor.insert("id".into(), json!(id));
            }
            if let Some(class) = class {
                actor.insert("metadata".into(), json!({"class": class}));
            }
            Value::Object(actor)
        }
    };
    event.insert("actor".into(), actor);

    if let Some(class) = &row.subject_type {
        let mut entity = Map::new();
        entity.insert("type".into(), json!(basename(class)));
        if let Some(id) = &row.subject_id {
            entity.insert("id".into(), json!(id));
        }
        entity.insert("metadata".into(), json!({"class": class}));
        event.insert("entity".into(), Value::Object(entity));
    }

    if let Some(text) = row.properties.as_deref().filter(|p| !p.trim().is_empty()) {
        let properties: Value = serde_json::from_str(text)
            .map_err(|e| Problem::new("properties", format!("is not JSON: {e}")))?;
        match properties {
            Value::Object(properties) => {
                for (key, value) in properties {
                    match key.as_str() {
                        "attributes" | "old" => {
                            let field = if key == "old" { "before" } else { "after" };
                            match value {
                                Value::Object(_) => {
                                    event.insert(field.into(), value);
                                }
                                Value::Null => {}
                                // An empty PHP array is written `[]`.
                                Value::Array(a) if a.is_empty() => {}
                                _ => {
                                    return Err(Problem::new(
                                        format!("properties.{key}"),
                                        "is not a JSON object",
                                    ));
                                }
                            }
                        }
                        _ if key == IMPORTED_FROM => {
                            return Err(Problem::new(
                                format!("properties.{key}"),
                                "is the metadata key the import names the row with",
                            ));
                        }
                        _ => {
                            let value = match value {
                                Value::Array(_) | Value::Object(_) => json!(value.to_string()),
                                scalar => scalar,
                            };
                            metadata.insert(key, value);
                        }
                    }
                }
            }
            // An empty PHP array is written `[]`.
            Value::Array(a) if a.is_empty() => {}
            Value::Null => {}
            other => {
                metadata.insert("properties".into(), json!(other.to_string()));
            }
        }
    }

    if let Some(batch) = row.batch_uuid.as_deref().filter(|b| !b.is_empty()) {
        event.insert("context".into(), json!({"correlation_id": batch}));
    }
    metadata.insert(IMPORTED_FROM.into(), json!(format!("{table}:{}", row.id)));
    event.insert("metadata".into(), Value::Object(metadata));
    Ok(event)
}

/// A channel name made of a log name: lowercase, other characters than `a-z0-9_.-` as `-`,
/// starting with a letter or digit, at most 64 characters.
fn channel_of(log: &str) -> String {
    let mut c: String = log
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !c.starts_with(|ch: char| ch.is_ascii_alphanumeric()) {
        c.insert_str(0, "log");
    }
    c.chars().take(64).collect()
}

/// `created_at` as RFC 3339 in UTC: `YYYY-MM-DD HH:MM:SS[.ffffff]` in `offset`, or with an offset
/// of its own (`+00`, `+05:30`, as PostgreSQL writes a `timestamptz`).
pub fn occurred_at(text: &str, offset: FixedOffset) -> Result<String, Problem> {
    let bad = || {
        Problem::new(
            "created_at",
            format!("`{text}` is not a date and time (YYYY-MM-DD HH:MM:SS)"),
        )
    };
    let text = text.trim();
    // An offset of its own: a sign after the time part (position 19 on).
    let (local, own) = match text
        .char_indices()
        .skip(19)
        .find(|(_, c)| *c == '+' || *c == '-')
    {
        Some((i, _)) => (&text[..i], Some(&text[i..])),
        None => (text, None),
    };
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M:%S%.f")
        .or_else(|_| NaiveDateTime::parse_from_str(local, "%Y-%m-%dT%H:%M:%S%.f"))
        .map_err(|_| bad())?;
    let offset = match own {
        None => offset,
        Some(o) => {
            let o = if o.len() == 3 {
                format!("{o}:00")
            } else {
                o.to_string()
            };
            FixedOffset::from_str(&o).map_err(|_| bad())?
        }
    };
    let at = offset
        .from_local_datetime(&naive)
        .single()
        .ok_or_else(bad)?;
    Ok(stele_core::time::format_rfc3339(at.timestamp_millis()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    fn row() -> ActivityRow {
        ActivityRow {
            id: "42".into(),
            created_at: Some("2026-01-02 03:04:05".into()),
            log_name: Some("default".into()),
            description: Some("updated".into()),
            subject_type: Some("App\\Models\\Post".into()),
            subject_id: Some("7".into()),
            causer_type: Some("App\\Models\\User".into()),
            causer_id: Some("1".into()),
            properties: Some(
                r#"{"attributes": {"title": "New", "body": "Same"}, "old": {"title": "Old", "body": "Same"}, "ip": "x", "tags": ["a"]}"#
                    .into(),
            ),
            event: Some("updated".into()),
            batch_uuid: Some("9a7c-batch".into()),
        }
    }

    #[test]
    fn an_update_maps_onto_actor_entity_and_before_after() {
        let event = Value::Object(map_activity(&row(), "activity_log", utc()).unwrap());
        assert_eq!(
            event,
            json!({"occurred_at": "2026-01-02T03:04:05.000Z", "action": "update",
                   "detailed_action": "Post.updated", "channel": "default",
                   "description": "updated",
                   "actor": {"type": "user", "id": "1", "metadata": {"class": "App\\Models\\User"}},
                   "entity": {"type": "Post", "id": "7", "metadata": {"class": "App\\Models\\Post"}},
                   "after": {"title": "New", "body": "Same"},
                   "before": {"title": "Old", "body": "Same"},
                   "context": {"correlation_id": "9a7c-batch"},
                   "metadata": {"ip": "x", "tags": "[\"a\"]", "imported_from": "activity_log:42"}})
        );
    }

    #[test]
    fn created_deleted_and_causerless_rows() {
        let mut r = row();
        r.event = Some("created".into());
        r.properties = Some(r#"{"attributes": {"title": "New"}}"#.into());
        r.causer_type = None;
        r.causer_id = None;
        r.log_name = Some("Orders & Billing".into());
        let e = Value::Object(map_activity(&r, "activity_log", utc()).unwrap());
        assert_eq!(e["action"], "create");
        assert_eq!(e["actor"], json!({"type": "system"}));
        assert_eq!(e.get("before"), None);
        assert_eq!(e["channel"], "orders---billing");
        assert_eq!(e["metadata"]["activitylog.log_name"], "Orders & Billing");
        r.event = Some("deleted".into());
        r.properties = Some("[]".into());
        r.batch_uuid = None;
        let e = Value::Object(map_activity(&r, "activity_log", utc()).unwrap());
        assert_eq!(e["action"], "delete");
        assert_eq!((e.get("after"), e.get("context")), (None, None));
        r.event = None;
        r.subject_type = None;
        let e = Value::Object(map_activity(&r, "activity_log", utc()).unwrap());
        assert_eq!(
            (e["action"].as_str(), e.get("detailed_action")),
            (Some("other"), None)
        );
    }

    #[test]
    fn times_take_the_offset_given_or_their_own() {
        let plus2 = FixedOffset::east_opt(7200).unwrap();
        assert_eq!(
            occurred_at("2026-01-02 03:04:05", plus2).unwrap(),
            "2026-01-02T01:04:05.000Z"
        );
        assert_eq!(
            occurred_at("2026-01-02 03:04:05.123456+00", plus2).unwrap(),
            "2026-01-02T03:04:05.123Z"
        );
        assert_eq!(
            occurred_at("2026-01-02 03:04:05-05:30", utc()).unwrap(),
            "2026-01-02T08:34:05.000Z"
        );
    }

    #[test]
    fn bad_rows_name_the_column() {
        let mut r = row();
        r.created_at = Some("02/01/2026".into());
        let p = map_activity(&r, "t", utc()).unwrap_err();
        assert_eq!(p.field, "created_at");
        assert!(p.message.contains("`02/01/2026`"), "{}", p.message);
        r.created_at = None;
        assert_eq!(
            map_activity(&r, "t", utc()).unwrap_err().field,
            "created_at"
        );
        let mut r = row();
        r.properties = Some("{not json".into());
        assert_eq!(
            map_activity(&r, "t", utc()).unwrap_err().field,
            "properties"
        );
        r.properties = Some(r#"{"attributes": "x"}"#.into());
        assert_eq!(
            map_activity(&r, "t", utc()).unwrap_err().field,
            "properties.attributes"
        );
    }
}
