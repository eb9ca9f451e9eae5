//! `stele serve`: the server, with the flags and environment mapped onto `Config`.

use anyhow::Context as _;
use stele_server::{Application, Config};

use crate::ServeArgs;

pub(crate) async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let args_config = args.config.clone();
    let config = Config {
        listen: args.listen,
        metrics_listen: args.metrics_listen,
        signing_key_file: args.key.signing_key_file,
        data_dir: args.data.data_dir,
        database_url: args.data.database_url,
        max_body_bytes: args.max_body_bytes,
        max_event_bytes: args.max_event_bytes,
        header_timeout: std::time::Duration::from_secs(args.header_timeout_secs.max(1)),
        idle_timeout: std::time::Duration::from_secs(args.idle_timeout_secs.max(1)),
        request_timeout: std::time::Duration::from_secs(args.request_timeout_secs.max(1)),
        max_connections: args.max_connections.max(1),
        checkpoint_every: std::time::Duration::from_secs(args.checkpoint_every.max(1)),
        verify_every: stele_service::integrity::WatchEvery {
            new_entries: std::time::Duration::from_secs(args.verify_every),
            whole_trail: std::time::Duration::from_secs(args.verify_all_every_hours.max(1) * 3600),
        },
        sqlite_mmap_bytes: args.sqlite_mmap_mib.saturating_mul(1024 * 1024),
        prune_at: (!args.no_prune).then_some(args.prune_at),
        archive_dir: args.archive_dir,
        export_link_ttl: std::time::Duration::from_secs(args.export_link_ttl.max(1)),
        secure_cookies: args.secure_cookies,
        trusted_proxies: stele_server::app::client_ip::TrustedProxies {
            networks: args.trusted_proxies,
            header: args.forwarded_header,
        },
        auto_create_organizations: !args.no_auto_create_organizations,
        public_url: args.public_url,
        embed_origins: args.embed_origins,
        streams_allow_private_targets: args.streams_allow_private_targets,
        streams_ca_file: args.streams_ca_file,
        streams_max_backoff: std::time::Duration::from_secs(args.streams_max_backoff.max(1)),
        nats: args
            .nats_url
            .map(|url| stele_service::streams::nats::NatsSettings {
                url,
                subject_prefix: args.nats_subject_prefix,
            }),
        ..Config::default()
    };
    #[cfg(not(target_env = "msvc"))]
    crate::allocator::purge_in_background();
    let app = Application::build(config.clone()).await?;
    #[cfg(not(target_env = "msvc"))]
    crate::allocator::report_periodically();
    let shutdown = shutdown_signal()?;
    println!("Stele is listening on {}", app.url());
    if let Some(addr) = app.metrics_addr() {
        println!("Metrics: http://{addr}/metrics");
    }
    if let Some(file) = crate::config_file::file(args_config.as_deref()) {
        println!("Settings file: {}", file.display());
    }
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
    let first = app.bootstrap();
    // Not a secret: what Retraced's clients put in `projectId` (`stele org list` shows it too).
    let platform = app.store().platform_org().await?;
    println!("Platform id (Retraced clients' projectId): {}", platform.id);
    if let Some(first) = first {
        println!();
        println!(
            "First start: created organization `{}` ({}).",
            first.org_name, first.org_id
        );
        show_first_key(&first.admin_key, &config.data_dir)?;
        println!(
            "Try: curl -H 'Authorization: Bearer <the key>' {}/v1/events",
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

/// The file the first start's admin key is written to when standard output is not a terminal.
pub(crate) const FIRST_KEY_FILE: &str = "first-admin-key";

/// Shows the first start's admin key once: on the terminal when standard output is one; otherwise
/// (a service manager's journal, a container's log, a pipe) only in a file of the data directory
/// that only the server's user can read, so the key does not land in logs that others read and
/// keep.
fn show_first_key(key: &str, data_dir: &std::path::Path) -> anyhow::Result<()> {
    use std::io::{IsTerminal as _, Write as _};
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};

    if std::io::stdout().is_terminal() {
        println!("Its admin API key is shown this once; keep it somewhere safe:");
        println!();
        println!("    {key}");
        println!();
        return Ok(());
    }
    let path = data_dir.join(FIRST_KEY_FILE);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing the first admin key to {}", path.display()))?;
    // `mode` applies only to a file it creates; one left from an earlier start is narrowed too.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    writeln!(file, "{key}")?;
    file.sync_all()?;
    println!(
        "Its admin API key is in {} (readable only by this user; not printed, as this output is \
         not a terminal): keep it somewhere safe, then delete the file.",
        path.display()
    );
    Ok(())
}

/// Installs the SIGINT/SIGTERM handlers now (not when first polled), so a signal that arrives
/// right after the banner is printed still stops the server gracefully rather than killing it.
pub(crate) fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
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
