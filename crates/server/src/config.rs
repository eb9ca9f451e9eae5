//! Server configuration. The binary fills it from flags and `STELE_*` environment variables;
//! every field has a default, so `stele serve` needs nothing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::storage::DatabaseUrl;

#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen. Port 0 picks a free port (tests use it).
    pub listen: SocketAddr,
    /// Directory holding the embedded database (`stele.db`) and the checkpoint signing key.
    pub data_dir: PathBuf,
    /// PostgreSQL instead of the embedded database.
    pub database_url: Option<DatabaseUrl>,
    /// Request bodies above this size are refused with 413.
    pub max_body_bytes: usize,
    /// A signed checkpoint is made at least this often for an organization with new entries.
    pub checkpoint_every: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("stele-data"),
            database_url: None,
            max_body_bytes: 8 * 1024 * 1024,
            checkpoint_every: Duration::from_secs(60),
        }
    }
}

/// The embedded database's file in the data directory.
pub const DATABASE_FILE: &str = "stele.db";

impl Config {
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }
}
