//! The process's log, to standard error so standard output stays for what a command prints:
//! `STELE_LOG` (an `EnvFilter` directive such as `debug` or `stele_server=debug`; default
//! `info`) chooses what is logged, `STELE_LOG_FORMAT` how: `text` (the default, for a terminal)
//! or `json` (one object per line, for a log collector).

use tracing_subscriber::EnvFilter;

/// Installs the log for this process. Call once, first thing in `main`. An unknown
/// `STELE_LOG_FORMAT` falls back to text and says so in the log.
pub fn init() {
    let filter = EnvFilter::try_from_env("STELE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let format = std::env::var("STELE_LOG_FORMAT").unwrap_or_default();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format.trim() {
        "json" => builder.json().init(),
        "" | "text" => builder.init(),
        other => {
            builder.init();
            tracing::warn!(
                format = other,
                "STELE_LOG_FORMAT must be `text` or `json`; logging text"
            );
        }
    }
}
