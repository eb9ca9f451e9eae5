//! The process's log: `STELE_LOG` (an `EnvFilter` directive such as `debug` or
//! `stele_server=debug`; default `info`) to standard error, so standard output stays for what a
//! command prints.

/// Installs the log for this process. Call once, first thing in `main`.
pub fn init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STELE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}
