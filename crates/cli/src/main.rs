//! The `stele` command: run the server and administer organizations and keys.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use stele_core::time::now_millis;
use stele_server::app::backend::DatabaseUrl;
use stele_server::{Application, Config};
use stele_service::access::api_keys;
use stele_service::trail::activity;
use stele_store::{Scope, Store};

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

#[derive(Subcommand)]
enum Command {
    /// Run the server (zero configuration: ./stele-data, 127.0.0.1:8080).
    Serve(ServeArgs),
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Manage the members who sign in to the web console.
    #[command(subcommand)]
    User(UserCommand),
    /// Recompute every organization's hash chain and check its signed checkpoints (offline:
    /// reads the data directory; safe next to a running server). Exits 1 if anything is wrong.
    Verify {
        /// Only this organization (id or name).
        #[arg(long)]
        org: Option<String>,
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
    /// Erase one person's identity (GDPR): their actor id, name, email, IP and user agent become
    /// a stable pseudonym in every entry; the chain still verifies; the erasure is recorded.
    Erase {
        /// Organization id (org_…) or name.
        #[arg(long)]
        org: String,
        /// The actor id or email to erase.
        #[arg(long)]
        actor: String,
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
    /// Apply the database migrations and exit (`stele serve` also applies them on start).
    Migrate {
        #[command(flatten)]
        data: DataDir,
    },
    /// Check proofs offline, with the public key alone.
    #[command(subcommand)]
    Proof(ProofCommand),
    /// Check the retention archive (entries the prune moved out of the database), offline.
    #[command(subcommand)]
    Archive(ArchiveCommand),
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
    /// Address to listen on.
    #[arg(long, env = "STELE_LISTEN", default_value_t = Config::default().listen)]
    listen: SocketAddr,
    /// Request bodies above this many bytes get 413.
    #[arg(long, env = "STELE_MAX_BODY_BYTES", default_value_t = Config::default().max_body_bytes)]
    max_body_bytes: usize,
    /// Sign a checkpoint at least this often (seconds) while entries arrive.
    #[arg(
        long,
        env = "STELE_CHECKPOINT_EVERY",
        default_value_t = Config::default().checkpoint_every.as_secs()
    )]
    checkpoint_every: u64,
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
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organization.
    Create {
        name: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// List organizations.
    List {
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key; the key is printed once and only its hash is stored.
    Create {
        /// Organization id (org_…) or name.
        #[arg(long)]
        org: String,
        /// Comma-separated: ingest, read, export, admin, printlog.update.own,
        /// printlog.update.all, printlog.delete.own, printlog.delete.all.
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
    /// characters. Prints the member's id.
    Create {
        /// Organization id (org_…) or name.
        #[arg(long)]
        org: String,
        /// What the member signs in with; unique across this Stele server.
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
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STELE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => serve(args).await,
        Command::Org(OrgCommand::Create { name, data }) => {
            let org = open(&data).await?.create_org(&name).await?;
            println!("created organization {} ({})", org.name, org.id);
            Ok(())
        }
        Command::Org(OrgCommand::List { data }) => {
            for org in open_existing(&data).await?.list_orgs().await? {
                println!("{}\t{}", org.id, org.name);
            }
            Ok(())
        }
        Command::Key(KeyCommand::Create {
            org,
            scopes,
            name,
            data,
        }) => {
            let scopes =
                Scope::parse_list(&scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
            let store = open_existing(&data).await?;
            let org = find_org(store.as_ref(), &org).await?;
            let created = api_keys::create(
                store.as_ref(),
                org.key,
                &name,
                scopes,
                activity::system_actor("stele key create"),
                activity::cli_context(),
                now_millis(),
            )
            .await?;
            eprintln!(
                "recorded as entry seq {} of {}",
                created.recorded.seq, org.name
            );
            eprintln!(
                "created key {} for {} with scopes {}; it is shown once:",
                created.info.id,
                org.name,
                Scope::join(&created.info.scopes)
            );
            println!("{}", created.secret);
            Ok(())
        }
        Command::Key(KeyCommand::List { org, data }) => {
            let store = open_existing(&data).await?;
            let org = find_org(store.as_ref(), &org).await?;
            for k in store.list_api_keys(org.key).await? {
                let state = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}…\t{}\t{}\t{}",
                    k.id,
                    k.prefix,
                    Scope::join(&k.scopes),
                    state,
                    k.name
                );
            }
            Ok(())
        }
        Command::Key(KeyCommand::Revoke { key_id, data }) => {
            let store = open_existing(&data).await?;
            let revoked = api_keys::revoke(
                store.as_ref(),
                &key_id,
                activity::system_actor("stele key revoke"),
                activity::cli_context(),
                now_millis(),
            )
            .await
            .map_err(|e| match e {
                stele_store::StoreError::NotFound => anyhow::anyhow!("no key with id {key_id}"),
                other => other.into(),
            })?;
            match revoked {
                api_keys::Revoked::Already(info) => println!("{} was revoked already", info.id),
                api_keys::Revoked::Now { info, recorded } => {
                    println!("revoked {}", info.id);
                    eprintln!("recorded as entry seq {} of {}", recorded.seq, info.org_id);
                }
            }
            Ok(())
        }
        Command::User(UserCommand::Create {
            org,
            email,
            role,
            name,
            data,
        }) => create_user(org, email, role, name, data).await,
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
            json,
            public_key,
            key,
            data,
        } => verify(org, json, public_key, key, data).await,
        Command::Erase {
            org,
            actor,
            reason,
            archive_dir,
            key,
            data,
        } => erase(org, actor, reason, archive_dir, key, data).await,
        Command::Export(args) => export(*args).await,
        Command::Prune {
            org,
            archive_dir,
            json,
            key,
            data,
        } => prune(org, archive_dir, json, key, data).await,
        Command::Proof(ProofCommand::Verify { file, public_key }) => {
            verify_proof(&file, &public_key)
        }
        Command::Archive(ArchiveCommand::Verify { dir }) => verify_archive(&dir),
    }
}

/// `stele archive verify DIR`: a summary, then OK (exit 0) or every problem found, the first
/// one first (exit 1).
fn verify_archive(dir: &std::path::Path) -> anyhow::Result<()> {
    let report = stele_archive::verify(dir)?;
    println!(
        "archive {}: {} segments, {} entries",
        dir.display(),
        report.segments,
        report.entries
    );
    for (org, s) in &report.orgs {
        println!(
            "  {org}: {} segments, {} entries, seq {}..={}",
            s.segments, s.entries, s.first_seq, s.last_seq
        );
    }
    let Some(first) = report.problems.first() else {
        println!("OK");
        return Ok(());
    };
    let count = report.problems.len() as u64 + report.problems_not_listed;
    println!("FAILED: {first}");
    for p in &report.problems[1..] {
        println!("  also: {p}");
    }
    if report.problems_not_listed > 0 {
        println!("  and {} more", report.problems_not_listed);
    }
    println!("{count} problem{}", if count == 1 { "" } else { "s" });
    std::process::exit(1);
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config {
        listen: args.listen,
        signing_key_file: args.key.signing_key_file,
        data_dir: args.data.data_dir,
        database_url: args.data.database_url,
        max_body_bytes: args.max_body_bytes,
        checkpoint_every: std::time::Duration::from_secs(args.checkpoint_every.max(1)),
        prune_at: (!args.no_prune).then_some(args.prune_at),
        archive_dir: args.archive_dir,
        export_link_ttl: std::time::Duration::from_secs(args.export_link_ttl.max(1)),
        secure_cookies: args.secure_cookies,
        trusted_proxies: stele_server::app::client_ip::TrustedProxies {
            networks: args.trusted_proxies,
            header: args.forwarded_header,
        },
        ..Config::default()
    };
    let app = Application::build(config.clone()).await?;
    let shutdown = shutdown_signal()?;
    println!("Stele is listening on {}", app.url());
    match &config.database_url {
        Some(url) => println!("Database: {url}"),
        None => println!("Data directory: {}", config.data_dir.display()),
    }
    println!(
        "Checkpoint public key: {} (key id {})",
        app.public_key().to_hex(),
        app.public_key().key_id()
    );
    println!("Signing key file: {}", config.signing_key_path().display());
    if let Some(first) = app.bootstrap() {
        println!();
        println!(
            "First start: created organization `{}` ({}).",
            first.org_name, first.org_id
        );
        println!("Its admin API key is shown this once; keep it somewhere safe:");
        println!();
        println!("    {}", first.admin_key);
        println!();
        println!(
            "Try: curl -H 'Authorization: Bearer {}' {}/v1/events",
            first.admin_key,
            app.url()
        );
    }
    println!(
        "Console: {}/console (add a member with `stele user create`)",
        app.url()
    );
    println!("Press Ctrl-C to stop.");
    app.run_until(shutdown).await?;
    tracing::info!("stopped; every acknowledged event is committed");
    Ok(())
}

async fn verify(
    org: Option<String>,
    json: bool,
    public_key: Option<String>,
    key_file: KeyFile,
    data: DataDir,
) -> anyhow::Result<()> {
    let key_path = key_file.path(&data);
    let public_key = match public_key {
        Some(hex) => Some(
            stele_core::checkpoint::PublicKey::from_hex(&hex).ok_or_else(|| {
                anyhow::anyhow!("--public-key: not 64 hex digits of an Ed25519 key")
            })?,
        ),
        None => stele_service::secrets::public_key(&key_path)?,
    };
    let store = open_existing(&data).await?;
    let orgs = match org {
        Some(org) => vec![find_org(store.as_ref(), &org).await?],
        None => store.list_orgs().await?,
    };
    match &public_key {
        Some(key) => eprintln!(
            "checkpoint public key {} (key id {})",
            key.to_hex(),
            key.key_id()
        ),
        None => eprintln!(
            "no signing key at {}: checkpoint signatures are not checked",
            key_path.display()
        ),
    }
    let mut all_ok = true;
    for org in orgs {
        let started = std::time::Instant::now();
        let report = store.verify(org.key, public_key.as_ref()).await?;
        all_ok &= report.ok;
        if json {
            println!("{}", serde_json::to_string(&report)?);
            continue;
        }
        let range = match (report.first_seq, report.last_seq) {
            (Some(a), Some(b)) => format!("seq {a}..={b}"),
            _ => "no entries".to_string(),
        };
        let mut pruned = String::new();
        if report.pruned_entries > 0 {
            pruned += &format!("; {} entries pruned by retention", report.pruned_entries);
            if let Some(up_to) = report.pruned_up_to_seq {
                pruned += &format!(" (every entry up to seq {up_to})");
            }
            match report.anchor_checkpoint_seq {
                Some(seq) => pruned += &format!(", anchored by the checkpoint at seq {seq}"),
                None => pruned += ", with no checkpoint after them yet",
            }
        }
        match &report.problem {
            None => println!(
                "{} ({}): OK, {} entries ({range}), {} checkpoints{}{pruned}, in {:.2?}",
                org.name,
                org.id,
                report.entries,
                report.checkpoints,
                if public_key.is_some() {
                    ""
                } else {
                    " (signatures NOT checked: no public key)"
                },
                started.elapsed()
            ),
            Some(p) => println!(
                "{} ({}): FAILED at seq {}: {:?}: {} ({} entries verified)",
                org.name, org.id, p.seq, p.kind, p.message, report.entries
            ),
        }
    }
    if !all_ok {
        std::process::exit(1);
    }
    Ok(())
}

async fn erase(
    org: String,
    actor: String,
    reason: Option<String>,
    archive_dir: Option<PathBuf>,
    key_file: KeyFile,
    data: DataDir,
) -> anyhow::Result<()> {
    use stele_service::erasure::{self, ErasureError, ErasureRequest, Org, Requester};
    let key_path = key_file.path(&data);
    let key = stele_service::secrets::load_signing_key(&key_path)?.ok_or_else(|| {
        anyhow::anyhow!(
            "no signing key at {}: start `stele serve` on this data directory once, or give the \
             servers' key with --signing-key-file",
            key_path.display()
        )
    })?;
    let secret = stele_service::secrets::pseudonym_secret(&key);
    let store = open_existing(&data).await?;
    let org = find_org(store.as_ref(), &org).await?;
    let archive = stele_service::retention::archive_sink::sink(archive_dir.as_deref());
    let erased = erasure::erase(
        store.as_ref(),
        archive,
        &secret,
        Org {
            key: org.key,
            id: &org.id,
        },
        ErasureRequest {
            actor: &actor,
            reason: reason.as_deref(),
        },
        Requester::CommandLine,
        now_millis(),
    )
    .await;
    let erased = match erased {
        Ok(erased) => erased,
        Err(ErasureError::Invalid { field, message }) => anyhow::bail!("--{field}: {message}"),
        Err(ErasureError::Store(e)) => return Err(e.into()),
        Err(ErasureError::Archive {
            erased_entries,
            message,
        }) => anyhow::bail!(
            "erased {erased_entries} entries in {}, but the archive was not rewritten (the \
             database erasure is made; run this again): {message}",
            org.name
        ),
    };
    let outcome = erased.outcome;
    println!(
        "erased {} entries in {}; they now show {}; the erasure is entry {} (seq {})",
        outcome.erased_entries, org.name, outcome.pseudonym, outcome.record.id, outcome.record.seq
    );
    if let Some(a) = erased.archive {
        println!(
            "erased {} archived entries, rewriting {} segments",
            a.entries, a.segments
        );
    }
    Ok(())
}

async fn prune(
    org: Option<String>,
    archive_dir: Option<PathBuf>,
    json: bool,
    key_file: KeyFile,
    data: DataDir,
) -> anyhow::Result<()> {
    use stele_service::retention::{self, Trigger};
    // With the servers' signing key, the run first signs a checkpoint at each chain's head,
    // which vouches for what the pruned entries leave behind.
    let key = stele_service::secrets::load_signing_key(&key_file.path(&data))?;
    if key.is_none() {
        eprintln!("no signing key: no checkpoint is signed before pruning");
    }
    let store = open_existing_with_key(&data, key).await?;
    let archive = stele_service::retention::archive_sink::sink(archive_dir.as_deref());
    let now = stele_core::time::now_millis();
    let reports = match org {
        Some(org) => {
            let org = find_org(store.as_ref(), &org).await?;
            store.checkpoint_now().await?;
            vec![retention::prune_org(store.as_ref(), archive, &org, now, Trigger::Command).await?]
        }
        None => retention::prune_all(store.as_ref(), archive, now, Trigger::Command, None).await?,
    };
    let mut failed = false;
    for report in &reports {
        let s = &report.summary;
        failed |= s.error.is_some();
        if json {
            println!("{}", serde_json::to_string(report)?);
            continue;
        }
        let per_channel = s
            .removed
            .iter()
            .map(|(channel, n)| format!("{channel} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        println!(
            "{}: removed {} entries{}{}; cutoff {}; recorded as entry seq {}{}",
            s.org_id,
            s.removed_total,
            if per_channel.is_empty() {
                String::new()
            } else {
                format!(" ({per_channel})")
            },
            if s.archived > 0 {
                format!(", {} archived", s.archived)
            } else {
                String::new()
            },
            s.cutoff.as_deref().unwrap_or("none (kept forever)"),
            report.record.seq,
            s.error
                .as_ref()
                .map(|e| format!("; STOPPED: {e}"))
                .unwrap_or_default(),
        );
    }
    store.shutdown().await?;
    if failed {
        std::process::exit(1);
    }
    Ok(())
}

/// Writes export chunks to standard output; a closed pipe (`| head`) ends the export early.
struct StdoutSink(std::io::Stdout);

impl stele_service::export::Sink for StdoutSink {
    async fn send(&mut self, chunk: Vec<u8>) -> bool {
        use std::io::Write;
        // Blocking writes are fine here: this process does nothing else meanwhile.
        self.0
            .write_all(&chunk)
            .and_then(|()| self.0.flush())
            .is_ok()
    }
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    use stele_core::event::{Actor, ActorType, Context};
    use stele_service::clock::SystemClock;
    use stele_service::export::{Export, ExportRequest, Exporter};
    let request = ExportRequest::from_params(args.params())
        .map_err(|e| anyhow::anyhow!("--{}: {}", e.field.replace('_', "-"), e.message))?;
    let store = open_existing(&args.data).await?;
    let org = find_org(store.as_ref(), &args.org).await?;
    let format = request.format;
    let export = Export::start(store.as_ref(), org.key, request, now_millis()).await?;
    // The operator is not identified to Stele (no API key), so the export is Stele's own
    // action, like an erasure from the command line: a System actor with source `cli`.
    let by = Exporter {
        actor: Actor {
            kind: ActorType::System,
            id: None,
            name: Some("stele export".into()),
            email: None,
        },
        context: Context {
            source: Some("cli".into()),
            ..Context::default()
        },
    };
    let mut sink = StdoutSink(std::io::stdout());
    let done = export
        .run(store.as_ref(), &mut sink, by, &SystemClock)
        .await;
    let (summary, receipt) = (done.summary, done.recorded?);
    if let Some(e) = summary.error {
        return Err(anyhow::Error::from(e).context(format!(
            "the export stopped after {} entries (recorded as entry seq {})",
            summary.entries, receipt.seq
        )));
    }
    anyhow::ensure!(
        summary.complete,
        "standard output was closed after {} entries; recorded as an incomplete export (seq {})",
        summary.entries,
        receipt.seq
    );
    eprintln!(
        "exported {} entries of {} as {}; recorded as entry seq {}",
        summary.entries,
        org.name,
        format.as_str(),
        receipt.seq
    );
    Ok(())
}

async fn create_user(
    org: String,
    email: String,
    role: String,
    name: Option<String>,
    data: DataDir,
) -> anyhow::Result<()> {
    use stele_service::access::members::{self, AddMember};
    use stele_service::access::roles::Role;
    let role = Role::parse(&role).ok_or_else(|| {
        anyhow::anyhow!(
            "--role: unknown role `{role}`; use one of {}",
            Role::names()
        )
    })?;
    members::check_email(&email).map_err(|e| anyhow::anyhow!("--email: {e}"))?;
    let store = open_existing(&data).await?;
    let org = find_org(store.as_ref(), &org).await?;
    let password = read_new_password()?;
    members::check_password(&password).map_err(|e| anyhow::anyhow!("{e}"))?;
    let member = members::add(
        store.as_ref(),
        org.key,
        AddMember {
            email: &email,
            name: name.as_deref(),
            role,
            password: &password,
        },
        activity::system_actor("stele user create"),
        activity::cli_context(),
        now_millis(),
    )
    .await?;
    eprintln!(
        "added {} to {} as {}; they can sign in at /console",
        member.email, org.name, member.role
    );
    println!("{}", member.id);
    Ok(())
}

/// A new password: prompted twice without echo on a terminal, else the first line of standard
/// input (for scripts: `printf '%s\n' "$PASSWORD" | stele user create …`).
fn read_new_password() -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password (at least 12 characters): ")
            .context("reading the password")?;
        stele_service::access::members::check_password(&first)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let second =
            rpassword::prompt_password("Repeat the password: ").context("reading the password")?;
        anyhow::ensure!(
            first == second,
            "the two passwords differ; nothing was changed"
        );
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    anyhow::ensure!(
        !password.is_empty(),
        "no password on standard input (give it as the first line, or run on a terminal to be \
         prompted)"
    );
    Ok(password.to_string())
}

fn verify_proof(file: &std::path::Path, public_key: &str) -> anyhow::Result<()> {
    use stele_core::checkpoint::PublicKey;
    use stele_core::proof::{ConsistencyProof, InclusionProof};
    let key = PublicKey::from_hex(public_key)
        .ok_or_else(|| anyhow::anyhow!("--public-key: not a 64-hex-digit Ed25519 public key"))?;
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let document: serde_json::Value =
        serde_json::from_str(&text).context("the proof is not JSON")?;
    let mut note = "";
    let (what, result) = if document.get("entry").is_some() {
        let proof: InclusionProof =
            serde_json::from_value(document).context("not an inclusion proof")?;
        if proof.personal_salt.is_none() {
            note = " (the actor and context shown are NOT proven: the proof has no personal salt, \
                    as for an erased entry)";
        }
        let seq = proof.entry["seq"].clone();
        (
            format!(
                "entry seq {seq} is included in the checkpoint at seq {} of {}",
                proof.checkpoint.checkpoint.seq, proof.checkpoint.checkpoint.org_id
            ),
            proof.verify(&key),
        )
    } else {
        let proof: ConsistencyProof =
            serde_json::from_value(document).context("not a consistency proof")?;
        (
            format!(
                "the checkpoint at seq {} extends the one at seq {} of {}",
                proof.to.checkpoint.seq, proof.from.checkpoint.seq, proof.from.checkpoint.org_id
            ),
            proof.verify(&key),
        )
    };
    match result {
        Ok(()) => {
            println!("OK: {what}{note}");
            Ok(())
        }
        Err(e) => {
            println!("INVALID: {e}");
            std::process::exit(1);
        }
    }
}

/// Installs the SIGINT/SIGTERM handlers now (not when first polled), so a signal that arrives
/// right after the banner is printed still stops the server gracefully rather than killing it.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut terminate =
        signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {},
            _ = terminate.recv() => {},
        }
        tracing::info!("shutting down: finishing requests in flight");
    })
}

/// Opens the configured database for an operator command (no signing key: the running server
/// signs checkpoints).
async fn open(data: &DataDir) -> anyhow::Result<Arc<dyn Store>> {
    open_with_key(data, None).await
}

/// Opens the store with the checkpoint signing key, for a command that signs checkpoints.
async fn open_with_key(
    data: &DataDir,
    key: Option<stele_core::checkpoint::SigningKey>,
) -> anyhow::Result<Arc<dyn Store>> {
    stele_server::app::backend::open(
        data.database_url.as_ref(),
        &data.data_dir,
        key,
        Config::default().checkpoint_every,
    )
    .await
}

/// Like [`open`], but refuses to create an embedded database: an operator command pointed at a
/// mistyped directory must fail, not report on an empty new database.
async fn open_existing(data: &DataDir) -> anyhow::Result<Arc<dyn Store>> {
    open_existing_with_key(data, None).await
}

async fn open_existing_with_key(
    data: &DataDir,
    key: Option<stele_core::checkpoint::SigningKey>,
) -> anyhow::Result<Arc<dyn Store>> {
    if data.database_url.is_none() {
        let path = Config {
            data_dir: data.data_dir.clone(),
            ..Config::default()
        }
        .database_path();
        anyhow::ensure!(
            path.exists(),
            "no Stele database at {} (check --data-dir / STELE_DATA_DIR)",
            path.display()
        );
    }
    open_with_key(data, key).await
}

async fn find_org(
    store: &dyn Store,
    id_or_name: &str,
) -> anyhow::Result<stele_store::Organization> {
    store.find_org(id_or_name).await.map_err(|e| match e {
        stele_store::StoreError::NotFound => anyhow::anyhow!("no organization `{id_or_name}`"),
        other => other.into(),
    })
}
