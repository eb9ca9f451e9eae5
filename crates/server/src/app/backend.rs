//! Picks the storage backend from the configuration: the embedded SQLite database in the data
//! directory by default, PostgreSQL when a `postgres://` URL is given. Everything above this
//! module sees only `Arc<dyn Store>`.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use stele_core::checkpoint::SigningKey;
use stele_store::Store;
use stele_store_postgres::{PgOptions, PgStore};
use stele_store_sqlite::{SqliteOptions, SqliteStore};

/// The embedded database's file in the data directory.
pub const DATABASE_FILE: &str = "stele.db";

/// A database URL. Its `Debug` and `Display` hide the password, so it can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Accepts `postgres://…` and `postgresql://…`.
    pub fn parse(url: &str) -> anyhow::Result<DatabaseUrl> {
        let url = url.trim();
        anyhow::ensure!(
            url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "--database-url must be a postgres:// URL (without one, Stele uses SQLite in the data directory)"
        );
        Ok(DatabaseUrl(url.to_string()))
    }

    /// The URL with its password, for connecting only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&stele_store_postgres::redact_url(&self.0))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

/// How the store runs, beyond where it is.
#[derive(Debug, Clone, Copy)]
pub struct StoreTuning {
    /// A signed checkpoint is made at least this often for an organization with new entries.
    pub checkpoint_every: Duration,
    /// The embedded database's memory map per connection (ignored for PostgreSQL).
    pub sqlite_mmap_bytes: u64,
}

impl Default for StoreTuning {
    fn default() -> Self {
        let config = crate::Config::default();
        StoreTuning {
            checkpoint_every: config.checkpoint_every,
            sqlite_mmap_bytes: config.sqlite_mmap_bytes,
        }
    }
}

/// Opens the configured backend. `signing_key` signs checkpoints (the server has it; operator
/// commands may not).
pub async fn open(
    database_url: Option<&DatabaseUrl>,
    data_dir: &Path,
    signing_key: Option<SigningKey>,
    tuning: StoreTuning,
) -> anyhow::Result<Arc<dyn Store>> {
    let StoreTuning {
        checkpoint_every,
        sqlite_mmap_bytes,
    } = tuning;
    Ok(match database_url {
        Some(url) => {
            let options = PgOptions {
                signing_key,
                checkpoint_every,
                ..PgOptions::default()
            };
            Arc::new(
                PgStore::connect(url.expose(), options)
                    .await
                    .with_context(|| format!("connecting to {url}"))?,
            )
        }
        None => {
            let path = data_dir.join(DATABASE_FILE);
            let options = SqliteOptions {
                signing_key,
                checkpoint_every,
                mmap_bytes: sqlite_mmap_bytes,
                ..SqliteOptions::default()
            };
            Arc::new(
                SqliteStore::open_with(&path, options)
                    .with_context(|| format!("opening the database at {}", path.display()))?,
            )
        }
    })
}

/// Applies the backend's migrations and returns (what `stele migrate` does).
pub async fn migrate(database_url: Option<&DatabaseUrl>, data_dir: &Path) -> anyhow::Result<()> {
    match database_url {
        Some(url) => stele_store_postgres::migrate(url.expose())
            .await
            .with_context(|| format!("migrating {url}")),
        None => {
            let path = data_dir.join(DATABASE_FILE);
            SqliteStore::open(&path)
                .map(drop)
                .with_context(|| format!("migrating {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_never_show_their_password() {
        let url = DatabaseUrl::parse("postgres://stele:hunter2@db.internal:5432/audit").unwrap();
        assert!(!format!("{url}").contains("hunter2"));
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(url.expose().contains("hunter2"));
        assert!(DatabaseUrl::parse("mysql://x").is_err());
    }
}
