//! Server configuration. The binary fills it from flags and `STELE_*` environment variables;
//! every field has a default, so `stele serve` needs nothing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::app::backend::DatabaseUrl;
use crate::app::client_ip::TrustedProxies;
use stele_service::clock::SharedClock;
use stele_service::integrity::WatchEvery;
use stele_service::retention::schedule::DailyAt;

#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen. Port 0 picks a free port (tests use it).
    pub listen: SocketAddr,
    /// Serve `/metrics` on this address only, instead of beside the API on `listen` (for a
    /// scraper on a private network, with the API's port public).
    pub metrics_listen: Option<SocketAddr>,
    /// Directory holding the embedded database (`stele.db`), export job files (`exports/`) and,
    /// unless `signing_key_file` says otherwise, the checkpoint signing key.
    pub data_dir: PathBuf,
    /// The checkpoint signing key file, instead of `<data_dir>/checkpoint-signing-key`. Servers
    /// that share a database must share one key, so they point here at the same file (or copies).
    pub signing_key_file: Option<PathBuf>,
    /// PostgreSQL instead of the embedded database.
    pub database_url: Option<DatabaseUrl>,
    /// Request bodies above this size are refused with 413.
    pub max_body_bytes: usize,
    /// An event larger than this (its JSON as Stele stores and returns it) is refused with 413
    /// (`event_too_large`), on every ingest door; so a page of entries holds at most its `limit`
    /// times this.
    pub max_event_bytes: usize,
    /// A request's head must arrive within this, counted from when the connection starts waiting
    /// for it (a new connection, or the end of the previous response); otherwise the connection
    /// is closed (`crate::app::serve`).
    pub header_timeout: Duration,
    /// A connection on which nothing moves for this long, and no request is being handled, is
    /// closed.
    pub idle_timeout: Duration,
    /// A request's body must arrive within this, counted from its head; otherwise it is answered
    /// 408 and the connection closed.
    pub request_timeout: Duration,
    /// At most this many connections are open at once; more wait, not accepted, until one
    /// closes.
    pub max_connections: usize,
    /// A signed checkpoint is made at least this often for an organization with new entries.
    pub checkpoint_every: Duration,
    /// How often the server verifies its chains in the background: every organization's new
    /// entries, and every whole chain (`stele_service::integrity::watch`).
    pub verify_every: WatchEvery,
    /// The embedded database: how much of its file each connection reads through a memory map
    /// (`stele_store_sqlite::SqliteOptions::mmap_bytes`).
    pub sqlite_mmap_bytes: u64,
    /// When the daily retention run starts (UTC); `None` turns the schedule off (`stele prune`
    /// still runs it by hand).
    pub prune_at: Option<DailyAt>,
    /// Where entries are archived (zstd NDJSON and a manifest) before retention deletes them.
    /// Without one, expired entries are deleted without an archive.
    pub archive_dir: Option<PathBuf>,
    /// The scheduler's and retention's time (tests move a manual clock).
    pub clock: SharedClock,
    /// How long an export job's file can be downloaded once the job is ready (its links all end
    /// then, and the file is removed).
    pub export_link_ttl: Duration,
    /// Marks the console's cookies `Secure` (sent over HTTPS only). Set it when Stele is served
    /// over TLS or behind a proxy that terminates TLS; browsers drop `Secure` cookies on plain
    /// HTTP, so it stays off for `http://127.0.0.1:8080`.
    pub secure_cookies: bool,
    /// How long a console sign-in lasts.
    pub session_ttl: Duration,
    /// The reverse proxies whose forwarding header names the client (`--trusted-proxies`,
    /// `--forwarded-header`); without any, the client is the TCP peer (`crate::app::client_ip`).
    pub trusted_proxies: TrustedProxies,
    /// How long a server keeps an organization's settings (recording on or off, the IP
    /// allowlist) before reading them again: how late a change made through another server
    /// sharing the database takes effect here (`stele_service::access::org_policy`).
    pub settings_cache_ttl: Duration,
    /// Whether an event a platform key sends for an organization no one has created yet (an
    /// unknown external id) creates it (`--no-auto-create-organizations` turns it off; such
    /// requests then get 404 naming the organization).
    pub auto_create_organizations: bool,
    /// The address people and other products reach this server at (`https://audit.example.com`),
    /// used in every absolute link Stele hands out (a viewer token's `url`). Without it, the
    /// listen address.
    pub public_url: Option<String>,
    /// The origins (`https://app.example.com`) whose pages may frame the embedded audit log
    /// (`frame-ancestors`), for every organization; none by default.
    pub embed_origins: Vec<String>,
    /// Whether log streams may deliver to loopback, private and link-local addresses
    /// (`--streams-allow-private-targets`). Off, a stream's target must be a public address: an
    /// organization's admin cannot make the server reach into the operator's network.
    pub streams_allow_private_targets: bool,
    /// A PEM file of certificate authorities that log streams trust beside the Mozilla roots
    /// (`--streams-ca-file`): for receivers (webhooks over https, syslog over TLS) whose
    /// certificates a private CA signed.
    pub streams_ca_file: Option<PathBuf>,
    /// The longest wait between a failing log stream's attempts (`--streams-max-backoff`): the
    /// back-off doubles from one second up to it, so a receiver back after an outage gets its
    /// entries within this much.
    pub streams_max_backoff: Duration,
    /// The NATS server log streams of type `nats` publish to (JetStream), and their subjects'
    /// prefix; none by default (such streams are then refused).
    pub nats: Option<stele_service::streams::nats::NatsSettings>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            metrics_listen: None,
            data_dir: PathBuf::from("stele-data"),
            signing_key_file: None,
            database_url: None,
            max_body_bytes: 8 * 1024 * 1024,
            max_event_bytes: 64 * 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            checkpoint_every: Duration::from_secs(60),
            verify_every: WatchEvery::default(),
            sqlite_mmap_bytes: stele_store_sqlite::DEFAULT_MMAP_BYTES,
            prune_at: Some(DailyAt::DEFAULT),
            archive_dir: None,
            clock: SharedClock::system(),
            export_link_ttl: Duration::from_secs(10 * 60),
            secure_cookies: false,
            session_ttl: Duration::from_secs(12 * 3600),
            trusted_proxies: TrustedProxies::default(),
            settings_cache_ttl: Duration::from_secs(5),
            auto_create_organizations: true,
            public_url: None,
            embed_origins: Vec::new(),
            streams_allow_private_targets: false,
            streams_ca_file: None,
            streams_max_backoff: stele_service::streams::delivery::DEFAULT_MAX_BACKOFF,
            nats: None,
        }
    }
}

impl Config {
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(crate::app::backend::DATABASE_FILE)
    }

    /// Where the checkpoint signing key is read from (and created, on the first start).
    pub fn signing_key_path(&self) -> PathBuf {
        stele_service::secrets::key_path(&self.data_dir, self.signing_key_file.as_deref())
    }
}
