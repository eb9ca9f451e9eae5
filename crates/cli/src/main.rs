//! The `stele` command: run the server and administer organizations and keys.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

#[cfg(not(target_env = "msvc"))]
mod allocator;
mod commands;
mod config_file;

use stele_server::Config;
use stele_server::app::backend::DatabaseUrl;

/// jemalloc, not glibc's malloc: under mixed load glibc kept what requests freed in its per-thread
/// arenas (16 on 2 cores), and a server's resident memory grew for as long as it ran; with
/// jemalloc it stays flat after warm-up (issue 17, the `soak` figures in docs/benchmarks.md).
/// Built unprefixed, jemalloc is also the process's `malloc`, so the bundled SQLite's C code
/// (its page caches, which it frees and takes again on whichever blocking thread a read runs)
/// allocates from it as well, not from glibc's arenas.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "stele",
    version,
    about = "A self-hosted, tamper-evident audit trail server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Who `stele erase` erases: at least one of `--id`, `--email` and `--actor`.
#[derive(clap::Args)]
#[group(required = true, multiple = true)]
pub(crate) struct PersonArgs {
    /// An actor id or email (matched as either).
    #[arg(long)]
    actor: Option<String>,
    /// Their id in your system (as actor id or entity id).
    #[arg(long)]
    id: Option<String>,
    #[arg(long)]
    email: Option<String>,
    /// Their name: replaced wherever it appears in text.
    #[arg(long)]
    name: Option<String>,
    /// Another string that identifies them (repeat for more).
    #[arg(long = "other")]
    other: Vec<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (zero configuration: ./stele-data, 127.0.0.1:8080).
    Serve(ServeArgs),
    /// The settings file of `stele serve` (stele.toml).
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage the members who sign in to the web console.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage an organization's log streams (its trail delivered to a webhook or a syslog
    /// server; docs/streams.md). The running servers deliver them.
    #[command(subcommand)]
    Stream(StreamCommand),
    /// Recompute every organization's hash chain and check its signed checkpoints (offline:
    /// reads the data directory; safe next to a running server). Exits 1 if anything is wrong.
    /// Checks what came after the last checkpoint an earlier verification passed, unless
    /// `--full`.
    Verify {
        /// Only this organization (id or name).
        #[arg(long)]
        org: Option<String>,
        /// Check every entry and checkpoint from the start, not only what came after the last
        /// checkpoint a verification passed.
        #[arg(long)]
        full: bool,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
        /// Check checkpoint signatures with this public key (64 hex digits), such as one
        /// published elsewhere, instead of the signing key file's.
        #[arg(long)]
        public_key: Option<String>,
        #[command(flatten)]
        key: KeyFile,
        #[command(flatten)]
        data: DataDir,
    },
    /// Erase one person (GDPR): wherever an entry mentions them (as actor, as entity, in
    /// descriptions, changes and metadata) they become a stable pseudonym; the chain still
    /// verifies; the erasure is recorded; no copy of the old values is left in the database file.
    Erase {
        /// Organization id (org_…) or name.
        #[arg(long)]
        org: String,
        #[command(flatten)]
        person: PersonArgs,
        /// Why (a ticket number, say); kept in the erasure's entry.
        #[arg(long)]
        reason: Option<String>,
        /// The retention archive (the servers' `--archive-dir`): the person's archived entries
        /// are erased there too.
        #[arg(long, env = "STELE_ARCHIVE_DIR")]
        archive_dir: Option<PathBuf>,
        #[command(flatten)]
        key: KeyFile,
        #[command(flatten)]
        data: DataDir,
    },
    /// Export an organization's entries (newest first) to standard output as CSV, JSON or
    /// NDJSON, with the filters of `GET /v1/events`; the export is recorded in the trail.
    Export(Box<ExportArgs>),
    /// Run retention now (what `stele serve` does daily): remove the entries past each
    /// organization's retention window, archiving them first if an archive directory is given,
    /// and record the run in each organization's trail.
    Prune {
        /// Only this organization (id or name).
        #[arg(long)]
        org: Option<String>,
        /// Archive the entries here (zstd NDJSON and a manifest) before deleting them.
        #[arg(long, env = "STELE_ARCHIVE_DIR")]
        archive_dir: Option<PathBuf>,
        /// Print the reports as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        key: KeyFile,
        #[command(flatten)]
        data: DataDir,
    },
    /// Print the HTTP API's OpenAPI 3.1 document (what `GET /openapi.json` serves).
    Openapi,
    /// Apply the database migrations and exit (`stele serve` also applies them on start).
    Migrate {
        #[command(flatten)]
        data: DataDir,
    },
    /// Check proofs offline, with the public key alone; print an entry's inclusion proof or two
    /// checkpoints' consistency proof from the database.
    #[command(subcommand)]
    Proof(ProofCommand),
    /// Check the retention archive (entries the prune moved out of the database), offline.
    #[command(subcommand)]
    Archive(ArchiveCommand),
    /// Import an audit trail kept elsewhere into an organization, through a running server's
    /// `POST /v1/events`: a Stele export, a WorkOS CSV export, or a laravel-activitylog table.
    /// Resumable (a state file records how far it got) and idempotent (a row imported twice is
    /// stored once). docs/import.md.
    Import(Box<commands::import::ImportArgs>),
}

#[derive(Subcommand)]
enum ArchiveCommand {
    /// Check an archive directory against its manifest, without the database: files, sizes,
    /// SHA-256, counts, seq ranges, every entry's hash and the chain links. Exits 1 if anything
    /// is wrong.
    Verify {
        /// The archive directory (the one holding manifest.json).
        dir: PathBuf,
    },
}

#[derive(Args, Clone)]
struct DataDir {
    /// Directory holding the embedded database and the checkpoint signing key.
    #[arg(
        long,
        env = "STELE_DATA_DIR",
        default_value_os_t = Config::default().data_dir,
        global = true
    )]
    data_dir: PathBuf,
    /// Use PostgreSQL (postgres://user@host/db) instead of the embedded database.
    #[arg(long, env = "STELE_DATABASE_URL", global = true, value_parser = parse_database_url)]
    database_url: Option<DatabaseUrl>,
}

/// The checkpoint signing key, for the commands that use it (serve, verify, erase).
#[derive(Args, Clone)]
struct KeyFile {
    /// The checkpoint signing key file [default: <data-dir>/checkpoint-signing-key]. Servers
    /// sharing one database must use the same key: point them all at one file (or copies of it).
    #[arg(long, env = "STELE_SIGNING_KEY_FILE")]
    signing_key_file: Option<PathBuf>,
}

impl KeyFile {
    fn path(&self, data: &DataDir) -> PathBuf {
        stele_service::secrets::key_path(&data.data_dir, self.signing_key_file.as_deref())
    }
}

fn parse_database_url(s: &str) -> Result<DatabaseUrl, String> {
    DatabaseUrl::parse(s).map_err(|e| e.to_string())
}

#[derive(Args)]
struct ServeArgs {
    /// A settings file (TOML: each key a flag below in snake case, `sqlite_mmap_mib = 2048`)
    /// [default: ./stele.toml if it exists]. Environment variables and flags override it.
    #[arg(long, env = "STELE_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "STELE_LISTEN", default_value_t = Config::default().listen)]
    listen: SocketAddr,
    /// Serve Prometheus metrics (`/metrics`) on this address only, instead of beside the API on
    /// --listen (say 127.0.0.1:9090, for a scraper on a private network).
    #[arg(long, env = "STELE_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Request bodies above this many bytes get 413.
    #[arg(long, env = "STELE_MAX_BODY_BYTES", default_value_t = Config::default().max_body_bytes)]
    max_body_bytes: usize,
    /// An event whose JSON is over this many bytes gets 413 (`event_too_large`), on every ingest
    /// door; a page of entries is then at most its `limit` times this.
    #[arg(long, env = "STELE_MAX_EVENT_BYTES", default_value_t = Config::default().max_event_bytes)]
    max_event_bytes: usize,
    /// Close a connection whose request head has not arrived this many seconds after it started
    /// waiting for one (a new connection, or an idle keep-alive one).
    #[arg(
        long,
        env = "STELE_HEADER_TIMEOUT_SECS",
        default_value_t = Config::default().header_timeout.as_secs()
    )]
    header_timeout_secs: u64,
    /// Close a connection on which nothing has moved for this many seconds while no request is
    /// being handled.
    #[arg(
        long,
        env = "STELE_IDLE_TIMEOUT_SECS",
        default_value_t = Config::default().idle_timeout.as_secs()
    )]
    idle_timeout_secs: u64,
    /// Answer 408 and close the connection when a request's body has not arrived this many
    /// seconds after its head.
    #[arg(
        long,
        env = "STELE_REQUEST_TIMEOUT_SECS",
        default_value_t = Config::default().request_timeout.as_secs()
    )]
    request_timeout_secs: u64,
    /// Serve at most this many connections at once; more wait (not accepted) until one closes.
    #[arg(long, env = "STELE_MAX_CONNECTIONS", default_value_t = Config::default().max_connections)]
    max_connections: usize,
    /// Sign a checkpoint at least this often (seconds) while entries arrive.
    #[arg(
        long,
        env = "STELE_CHECKPOINT_EVERY",
        default_value_t = Config::default().checkpoint_every.as_secs()
    )]
    checkpoint_every: u64,
    /// Verify every organization's new entries (since the last checkpoint a verification
    /// passed) this often, in seconds, in the background; a failure shows in `/readyz` and the
    /// log. 0 turns the background verification off.
    #[arg(
        long,
        env = "STELE_VERIFY_EVERY",
        default_value_t = Config::default().verify_every.new_entries.as_secs()
    )]
    verify_every: u64,
    /// Verify every organization's whole chain on the first background pass (one `--verify-every`
    /// after start) and then this often, in hours.
    #[arg(
        long,
        env = "STELE_VERIFY_ALL_EVERY_HOURS",
        default_value_t = Config::default().verify_every.whole_trail.as_secs() / 3600
    )]
    verify_all_every_hours: u64,
    /// The embedded database: how many MiB of its file each connection reads through a memory
    /// map (0: plain reads only; SQLite maps at most 2047 MiB, whatever is asked). Ignored with
    /// --database-url.
    #[arg(
        long,
        env = "STELE_SQLITE_MMAP_MIB",
        default_value_t = Config::default().sqlite_mmap_bytes / (1024 * 1024)
    )]
    sqlite_mmap_mib: u64,
    /// Run retention daily at this time (HH:MM, UTC).
    #[arg(long, env = "STELE_PRUNE_AT", default_value_t = stele_service::retention::schedule::DailyAt::DEFAULT)]
    prune_at: stele_service::retention::schedule::DailyAt,
    /// Do not run retention on a schedule (`stele prune` still runs it by hand).
    #[arg(long, env = "STELE_NO_PRUNE")]
    no_prune: bool,
    /// Archive entries here (zstd NDJSON and a manifest) before retention deletes them.
    #[arg(long, env = "STELE_ARCHIVE_DIR")]
    archive_dir: Option<PathBuf>,
    /// How long an export job's file stays downloadable once ready (seconds).
    #[arg(
        long,
        env = "STELE_EXPORT_LINK_TTL",
        default_value_t = Config::default().export_link_ttl.as_secs()
    )]
    export_link_ttl: u64,
    /// Mark the console's cookies `Secure`: set when served over TLS or behind a TLS proxy.
    #[arg(long, env = "STELE_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Reverse proxies in front of Stele (comma-separated CIDR networks or addresses, e.g.
    /// 10.0.0.0/8,192.0.2.7). Only for requests from these does the forwarding header name the
    /// client; otherwise the client is the TCP peer.
    #[arg(long, env = "STELE_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<stele_service::access::Cidr>,
    /// The header the trusted proxies put the client's address in: x-forwarded-for or forwarded
    /// (RFC 7239). Only this one is read.
    #[arg(
        long,
        env = "STELE_FORWARDED_HEADER",
        default_value_t = stele_server::app::client_ip::ForwardedHeader::default()
    )]
    forwarded_header: stele_server::app::client_ip::ForwardedHeader,
    /// Refuse (404) events a platform key sends for an organization that does not exist yet,
    /// instead of creating it with the external id the request names.
    #[arg(long, env = "STELE_NO_AUTO_CREATE_ORGANIZATIONS")]
    no_auto_create_organizations: bool,
    /// The address people reach this server at (https://audit.example.com), for the absolute
    /// links Stele hands out (viewer tokens' `url`). Default: the listen address.
    #[arg(long, env = "STELE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Origins whose pages may frame the embedded audit log (comma-separated,
    /// https://app.example.com). None by default.
    #[arg(long, env = "STELE_EMBED_ORIGINS", value_delimiter = ',')]
    embed_origins: Vec<String>,
    /// Let log streams deliver to loopback, private and link-local addresses (a receiver on
    /// this machine or the private network). Off by default: an organization's admin cannot
    /// make the server reach into the operator's network.
    #[arg(long, env = "STELE_STREAMS_ALLOW_PRIVATE_TARGETS")]
    streams_allow_private_targets: bool,
    /// A PEM file of certificate authorities log streams trust beside the Mozilla roots, for
    /// receivers (https webhooks, syslog over TLS) whose certificates a private CA signed.
    #[arg(long, env = "STELE_STREAMS_CA_FILE")]
    streams_ca_file: Option<PathBuf>,
    /// The longest wait between a failing log stream's attempts (seconds): the wait doubles from
    /// one second up to it, so a receiver back after an outage gets its entries within this.
    #[arg(
        long,
        env = "STELE_STREAMS_MAX_BACKOFF",
        default_value_t = Config::default().streams_max_backoff.as_secs()
    )]
    streams_max_backoff: u64,
    /// The NATS server (nats://host:4222; comma-separated for a cluster) that log streams of
    /// type `nats` publish to, with JetStream. None by default: such streams are refused.
    #[arg(long, env = "STELE_NATS_URL")]
    nats_url: Option<String>,
    /// The subjects log streams publish under: `<prefix>.<organization id>`.
    #[arg(long, env = "STELE_NATS_SUBJECT_PREFIX", default_value = stele_service::streams::nats::DEFAULT_SUBJECT_PREFIX)]
    nats_subject_prefix: String,
    #[command(flatten)]
    key: KeyFile,
    #[command(flatten)]
    data: DataDir,
}

/// `stele export`: the flags are the query parameters of `GET /v1/export`, parsed by the same
/// code, so they accept (and refuse) the same values.
#[derive(Args)]
struct ExportArgs {
    /// Organization id (org_…) or name.
    #[arg(long)]
    org: String,
    /// csv, json or ndjson.
    #[arg(long, default_value = "csv")]
    format: String,
    /// Exact action.
    #[arg(long)]
    action: Option<String>,
    /// Exact detailed action, or a prefix ending in `*` (`printJob.*`).
    #[arg(long)]
    detailed_action: Option<String>,
    /// Comma list of user, api, webhook, system, scheduler, or `all` [default: all but system].
    #[arg(long)]
    actor_type: Option<String>,
    /// The actor's email or id.
    #[arg(long)]
    actor: Option<String>,
    #[arg(long)]
    entity_type: Option<String>,
    /// The entity's id, or any id of a bulk action.
    #[arg(long)]
    entity_id: Option<String>,
    #[arg(long)]
    channel: Option<String>,
    /// success or failure.
    #[arg(long)]
    outcome: Option<String>,
    #[arg(long)]
    correlation_id: Option<String>,
    #[arg(long)]
    ip: Option<String>,
    /// From this time on (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    from: Option<String>,
    /// Up to this time (RFC 3339, or YYYY-MM-DD for the whole day).
    #[arg(long)]
    to: Option<String>,
    /// A search in the query language of `q`: free text (a case-insensitive substring of the
    /// description) and `key:value` terms, e.g. `action:update created:>2026-01-01 "paper jam"`.
    #[arg(long)]
    q: Option<String>,
    #[command(flatten)]
    data: DataDir,
}

impl ExportArgs {
    fn params(&self) -> Vec<(&'static str, &str)> {
        let flags = [
            ("format", Some(&self.format)),
            ("action", self.action.as_ref()),
            ("detailed_action", self.detailed_action.as_ref()),
            ("actor_type", self.actor_type.as_ref()),
            ("actor", self.actor.as_ref()),
            ("entity_type", self.entity_type.as_ref()),
            ("entity_id", self.entity_id.as_ref()),
            ("channel", self.channel.as_ref()),
            ("outcome", self.outcome.as_ref()),
            ("correlation_id", self.correlation_id.as_ref()),
            ("ip", self.ip.as_ref()),
            ("from", self.from.as_ref()),
            ("to", self.to.as_ref()),
            ("q", self.q.as_ref()),
        ];
        flags
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v.as_str())))
            .collect()
    }
}

#[derive(Subcommand)]
enum ProofCommand {
    /// Verify an inclusion proof (`GET /v1/events/{id}/proof`) or a consistency proof
    /// (`GET /v1/integrity/consistency`), read from a file or `-` for stdin. Exits 1 if invalid.
    Verify {
        /// The proof document (JSON).
        file: PathBuf,
        /// The checkpoint public key, 64 hex digits (`GET /v1/integrity/public-key`).
        #[arg(long)]
        public_key: String,
    },
    /// Print the inclusion proof of an entry in its organization's newest signed checkpoint,
    /// the document `GET /v1/events/{id}/proof` answers, read from the database.
    Inclusion {
        /// Organization id (org_…) or name.
        #[arg(long)]
        org: String,
        /// The entry's id.
        id: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// Print the consistency proof between two of an organization's signed checkpoints, the
    /// document `GET /v1/integrity/consistency` answers, read from the database.
    Consistency {
        /// Organization id (org_…) or name.
        #[arg(long)]
        org: String,
        /// The earlier checkpoint's seq.
        #[arg(long)]
        from: i64,
        /// The later checkpoint's seq.
        #[arg(long)]
        to: i64,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization.
    Create {
        name: String,
        /// The platform's own id for this tenant, by which requests may name it.
        #[arg(long)]
        external_id: Option<String>,
        #[command(flatten)]
        data: DataDir,
    },
    /// List organizations.
    List {
        #[command(flatten)]
        data: DataDir,
    },
    /// Delete an organization with all its data (its trail, keys, members, settings, export
    /// jobs, print log); recorded in the platform's trail. Cannot be undone.
    Delete {
        /// Organization id (org_…), external id or name.
        org: String,
        /// The organization's id (org_…) again, to confirm.
        #[arg(long)]
        confirm: String,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the settings `stele serve` would run with, given these flags, the environment and
    /// the settings file, each with where it came from; secrets (a database URL's password) are
    /// not shown.
    Print(Box<ServeArgs>),
    /// Print an example settings file: every key, commented out at its default, with its help.
    Example,
}

/// Where a stream delivers: one of `--webhook`, `--syslog` and `--nats` (a new stream needs one;
/// an edit changes the target only if it names one).
#[derive(Args)]
#[group(multiple = false)]
pub(crate) struct StreamTarget {
    /// A webhook: each batch is POSTed to this https:// (or http://) URL, signed.
    #[arg(long)]
    webhook: Option<String>,
    /// A syslog server (RFC 5424 over TCP): HOST:PORT (with --syslog-tls, over TLS).
    #[arg(long)]
    syslog: Option<String>,
    /// The servers' NATS JetStream (`stele serve --nats-url`), on the organization's subject.
    #[arg(long)]
    nats: bool,
}

/// Which entries a stream delivers; each list empty for any.
#[derive(Args)]
pub(crate) struct StreamFilterArgs {
    /// Only these channels (comma-separated).
    #[arg(long, value_delimiter = ',')]
    channels: Vec<String>,
    /// Only these actions or detailed actions (comma-separated).
    #[arg(long, value_delimiter = ',')]
    actions: Vec<String>,
    /// Only these actor types: user, api, webhook, system, scheduler (comma-separated).
    #[arg(long, value_delimiter = ',')]
    actor_types: Vec<String>,
}

/// A stream's settings as `create` and `edit` take them (an edit changes only those given).
#[derive(Args)]
pub(crate) struct StreamSettings {
    /// A name to tell streams apart [default on create: the target].
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    target: StreamTarget,
    /// The syslog server speaks TLS (RFC 5425); its certificate is checked.
    #[arg(long, requires = "syslog")]
    syslog_tls: bool,
    /// A webhook's body: native, splunk_hec, elastic_bulk or datadog (docs/streams.md).
    #[arg(long)]
    format: Option<String>,
    /// A header each webhook POST carries, "Name: value" (a SIEM's token:
    /// "Authorization: Splunk …"); repeatable. Stored sealed, never shown.
    #[arg(long = "header", requires = "webhook")]
    headers: Vec<String>,
    /// Which entries (an edit's lists replace the stream's whole filter).
    #[command(flatten)]
    filter: StreamFilterArgs,
    /// Deliver from this entry on: on create a back-fill instead of from the next new entry,
    /// on edit a replay (the receiver gets those entries again).
    #[arg(long)]
    from_seq: Option<i64>,
    /// Entries per webhook POST, 1 to 1000 [default: 100].
    #[arg(long)]
    max_entries: Option<u32>,
    /// Allow a loopback, private or link-local target (the servers must allow them too:
    /// --streams-allow-private-targets).
    #[arg(long, env = "STELE_STREAMS_ALLOW_PRIVATE_TARGETS")]
    allow_private_targets: bool,
}

/// Whose streams a command is about: one organization's, or the platform's own, which are
/// platform-wide (every organization's trail).
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub(crate) struct StreamOwner {
    /// Organization id (org_…), external id or name.
    #[arg(long)]
    pub(crate) org: Option<String>,
    /// The platform's own streams, which deliver every organization's trail.
    #[arg(long)]
    pub(crate) platform: bool,
}

#[derive(Subcommand)]
pub(crate) enum StreamCommand {
    /// List an organization's streams: id, state, target, lag, name.
    List {
        #[command(flatten)]
        org: StreamOwner,
        #[command(flatten)]
        data: DataDir,
    },
    /// One stream's configuration and health, as JSON (as `GET /v1/streams/{id}` answers).
    Show {
        id: String,
        #[command(flatten)]
        org: StreamOwner,
        #[command(flatten)]
        data: DataDir,
    },
    /// Create a stream; its webhook secret is printed once.
    Create {
        #[command(flatten)]
        org: StreamOwner,
        #[command(flatten)]
        settings: StreamSettings,
        #[command(flatten)]
        key: KeyFile,
        #[command(flatten)]
        data: DataDir,
    },
    /// Change a stream: what a flag names changes, the rest stays. Recorded in the trail.
    Edit {
        id: String,
        #[command(flatten)]
        org: StreamOwner,
        #[command(flatten)]
        settings: StreamSettings,
        /// Deliver every entry from now on (drops the stream's filter).
        #[arg(long, conflicts_with_all = ["channels", "actions", "actor_types"])]
        all_entries: bool,
        #[command(flatten)]
        key: KeyFile,
        #[command(flatten)]
        data: DataDir,
    },
    /// Pause a stream: delivery stops at its cursor until it is resumed.
    Pause {
        id: String,
        #[command(flatten)]
        org: StreamOwner,
        /// Why; shown with the stream and recorded.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        data: DataDir,
    },
    /// Resume a stream from its cursor (a failing stream's back-off is cleared).
    Resume {
        id: String,
        #[command(flatten)]
        org: StreamOwner,
        #[command(flatten)]
        data: DataDir,
    },
    /// Rotate a stream's webhook secret; the new one is printed once, and the previous one
    /// still signs beside it for the overlap.
    RotateSecret {
        id: String,
        #[command(flatten)]
        org: StreamOwner,
        /// How long the previous secret still signs, in hours (at most 168).
        #[arg(long, default_value_t = 24)]
        overlap_hours: u64,
        #[command(flatten)]
        key: KeyFile,
        #[command(flatten)]
        data: DataDir,
    },
    /// Delete a stream; its deliveries stop.
    Delete {
        id: String,
        #[command(flatten)]
        org: StreamOwner,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key; the key is printed once and only its hash is stored.
    Create {
        /// Organization id (org_…), external id or name.
        #[arg(
            long,
            required_unless_present = "platform",
            conflicts_with = "platform"
        )]
        org: Option<String>,
        /// A platform key: it belongs to no one tenant and names the organization it acts for
        /// per request (the Stele-Organization header; docs/platforms.md).
        #[arg(long)]
        platform: bool,
        /// Comma-separated: ingest, read, export, admin, printlog.update.own,
        /// printlog.update.all, printlog.delete.own, printlog.delete.all, viewer, and for a
        /// platform key organizations.
        #[arg(long, default_value = "ingest")]
        scopes: String,
        /// A label to tell keys apart; for the print log, also the user whose prints are the
        /// key's own (docs/print-log.md).
        #[arg(long, default_value = "api key")]
        name: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// List an organization's keys (never their secrets).
    List {
        #[arg(long)]
        org: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// Revoke a key by its id (key_…); requests with it get 401 from then on.
    Revoke {
        key_id: String,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a member who signs in to the console. The password is prompted twice (without echo)
    /// on a terminal, or read as the first line of standard input otherwise; at least 12
    /// characters. An email that already has an account (a member of another organization) is
    /// added without a password: they keep theirs. Prints the member's id.
    Create {
        /// Organization id (org_…) or name.
        #[arg(long)]
        org: String,
        /// What the member signs in with: one person across this Stele server, who may be a member
        /// of several organizations.
        #[arg(long)]
        email: String,
        /// owner, admin, super-admin, it-admin, auditor or member (docs/console.md).
        #[arg(long)]
        role: String,
        /// The member's name, as the console shows it.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        data: DataDir,
    },
    /// Disable a member: they cannot sign in, and their sessions stop at once (recorded).
    Disable(UserArgs),
    /// Enable a disabled member again (recorded).
    Enable(UserArgs),
    /// Remove a member from the organization, with their sessions (recorded).
    Remove(UserArgs),
    /// Print a one-time link (valid 7 days) for the member to set a new password; their old one
    /// keeps working until they do (recorded).
    ResetPassword {
        #[command(flatten)]
        user: UserArgs,
        /// The address people reach the server at, to print an absolute link
        /// (https://audit.example.com); without it, the link's path.
        #[arg(long, env = "STELE_PUBLIC_URL")]
        public_url: Option<String>,
        #[command(flatten)]
        key: KeyFile,
    },
}

/// A member named by organization and email.
#[derive(Args)]
struct UserArgs {
    /// Organization id (org_…), external id or name.
    #[arg(long)]
    org: String,
    #[arg(long)]
    email: String,
    #[command(flatten)]
    data: DataDir,
}

fn main() -> anyhow::Result<()> {
    stele_server::app::logging::init();
    // `None`: `stele config print` or `example` has printed what it shows.
    let Some(cli) = parse()? else {
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli.command))
}

/// Parses the command line, with the settings file under the flags and the environment for the
/// commands that read it (`serve`, `config print`; see `config_file`). `None` once `stele
/// config` has printed what it shows.
fn parse() -> anyhow::Result<Option<Cli>> {
    use clap::{CommandFactory as _, FromArgMatches as _};
    let command = Cli::command();
    let matches = command.clone().get_matches();
    let (path, sub_matches): (&[&str], &clap::ArgMatches) = match matches.subcommand() {
        Some(("serve", m)) => (&["serve"], m),
        Some(("config", m)) => match m.subcommand() {
            Some(("print", p)) => (&["config", "print"], p),
            _ => {
                let serve = command.find_subcommand("serve").expect("serve exists");
                print!("{}", config_file::example(serve));
                return Ok(None);
            }
        },
        _ => return Ok(Some(Cli::from_arg_matches(&matches)?)),
    };
    let sub_command = path
        .iter()
        .try_fold(&command, |c, name| c.find_subcommand(name))
        .expect("the subcommand exists");
    let file = config_file::chosen(sub_matches);
    let (mut matches, mut from_file) = (matches.clone(), Vec::new());
    if let Some(file) = &file {
        let (extra, keys) = config_file::flags(file, sub_command, sub_matches)?;
        if !extra.is_empty() {
            let argv = std::env::args_os().chain(extra);
            matches = command.clone().try_get_matches_from(argv).map_err(|e| {
                // Clap's first line names the flag and the problem; the rest is usage help.
                let said = e.to_string();
                let first = said.lines().next().unwrap_or_default();
                anyhow::anyhow!(
                    "{}: {}",
                    file.display(),
                    first.trim_start_matches("error: ")
                )
            })?;
            from_file = keys;
        }
    }
    if path == ["config", "print"] {
        let printed = path
            .iter()
            .try_fold(&matches, |m, name| m.subcommand_matches(name))
            .expect("the subcommand matched");
        print!(
            "{}",
            config_file::effective(sub_command, printed, file.as_deref(), &from_file)
        );
        return Ok(None);
    }
    Ok(Some(Cli::from_arg_matches(&matches)?))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => commands::serve::serve(args).await,
        Command::Config(_) => unreachable!("`parse` prints the configuration"),
        Command::Org(OrgCommand::Create {
            name,
            external_id,
            data,
        }) => commands::org::create(name, external_id, data).await,
        Command::Org(OrgCommand::List { data }) => commands::org::list(data).await,
        Command::Org(OrgCommand::Delete { org, confirm, data }) => {
            commands::org::delete(org, confirm, data).await
        }
        Command::Key(KeyCommand::Create {
            org,
            platform,
            scopes,
            name,
            data,
        }) => commands::key::create(org, platform, scopes, name, data).await,
        Command::Key(KeyCommand::List { org, data }) => commands::key::list(org, data).await,
        Command::Stream(command) => commands::stream::run(command).await,
        Command::Key(KeyCommand::Revoke { key_id, data }) => {
            commands::key::revoke(key_id, data).await
        }
        Command::User(UserCommand::Create {
            org,
            email,
            role,
            name,
            data,
        }) => commands::user::create_user(org, email, role, name, data).await,
        Command::User(UserCommand::Disable(u)) => {
            commands::user::set_disabled(u.org, u.email, true, u.data).await
        }
        Command::User(UserCommand::Enable(u)) => {
            commands::user::set_disabled(u.org, u.email, false, u.data).await
        }
        Command::User(UserCommand::Remove(u)) => {
            commands::user::remove(u.org, u.email, u.data).await
        }
        Command::User(UserCommand::ResetPassword {
            user,
            public_url,
            key,
        }) => {
            let key_path = key.path(&user.data);
            commands::user::reset_password(user.org, user.email, public_url, key_path, user.data)
                .await
        }
        Command::Openapi => {
            println!("{}", stele_server::openapi_json());
            Ok(())
        }
        Command::Migrate { data } => {
            stele_server::app::backend::migrate(data.database_url.as_ref(), &data.data_dir).await?;
            match &data.database_url {
                Some(url) => println!("migrated {url}"),
                None => println!("migrated {}", data.data_dir.display()),
            }
            Ok(())
        }
        Command::Verify {
            org,
            full,
            json,
            public_key,
            key,
            data,
        } => commands::verify::verify(org, full, json, public_key, key, data).await,
        Command::Erase {
            org,
            person,
            reason,
            archive_dir,
            key,
            data,
        } => commands::erase::erase(org, person, reason, archive_dir, key, data).await,
        Command::Export(args) => commands::export::export(*args).await,
        Command::Prune {
            org,
            archive_dir,
            json,
            key,
            data,
        } => commands::prune::prune(org, archive_dir, json, key, data).await,
        Command::Proof(ProofCommand::Verify { file, public_key }) => {
            commands::proof::verify_proof(&file, &public_key)
        }
        Command::Proof(ProofCommand::Inclusion { org, id, data }) => {
            commands::proof::inclusion(&org, &id, data).await
        }
        Command::Proof(ProofCommand::Consistency {
            org,
            from,
            to,
            data,
        }) => commands::proof::consistency(&org, from, to, data).await,
        Command::Archive(ArchiveCommand::Verify { dir }) => commands::archive::verify_archive(&dir),
        Command::Import(args) => commands::import::import(*args).await,
    }
}
