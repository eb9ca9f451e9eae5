//! Driver errors in the store's vocabulary, and a database URL that is safe to log.
//!
//! Inside the crate, functions return [`Error`], which keeps the driver's error intact: the writer
//! has to tell a conflict it may simply run again (a deadlock the server broke) from a lost
//! connection, after which running a commit again could store the events twice. At the trait
//! boundary it becomes a [`StoreError`].

use stele_store::StoreError;
use tokio_postgres::error::SqlState;

#[derive(Debug)]
pub enum Error {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

pub type R<T> = std::result::Result<T, Error>;

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Db(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Db(e) => map_err(e),
            Error::Store(e) => e,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Db(e) => f.write_str(&describe(e)),
            Error::Store(e) => e.fmt(f),
        }
    }
}

/// A failure that is not the database's: corrupt stored data, an encoding error.
pub fn other(message: impl Into<String>) -> Error {
    Error::Store(StoreError::Other(message.into()))
}

/// Maps a driver error onto [`StoreError`]. The text stays in the error for the log; the HTTP
/// layer never shows it to a client.
///
/// - A lost or refused connection, a server shutting down, too many connections, or a
///   transaction the server aborted to break a deadlock or a serialization conflict is
///   `Unavailable`: the same request may succeed when retried.
/// - An integrity constraint (class 23: unique, foreign key, not null, check) is `Conflict`,
///   as SQLite's constraint violations are.
/// - Everything else is `Other`.
pub fn map_err(e: tokio_postgres::Error) -> StoreError {
    let text = describe(&e);
    let Some(code) = e.code() else {
        // No SQLSTATE: the connection broke, or the driver could not talk to the server.
        return StoreError::Unavailable(text);
    };
    let class = &code.code()[..2];
    if class == "23" {
        StoreError::Conflict(text)
    } else if matches!(class, "08" | "53" | "57" | "40") {
        StoreError::Unavailable(text)
    } else {
        StoreError::Other(text)
    }
}

/// The error with the server's message, detail and SQLSTATE when there is one (the driver's own
/// `Display` for a database error says only "db error").
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                s.push_str(": ");
                s.push_str(detail);
            }
            s
        }
        None => with_causes(e),
    }
}

/// The error and its causes, `: `-separated ("error connecting to server: Connection refused").
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// Whether a group transaction that failed with this error should simply run again: the server
/// broke a deadlock or a serialization conflict, or two writers picked the same `pk` (see
/// `writer.rs`), which the global allocation lock makes impossible among Stele processes of this
/// version but which an older or foreign writer could still cause.
pub fn is_retryable(e: &Error) -> bool {
    let Error::Db(e) = e else {
        return false;
    };
    let Some(code) = e.code() else {
        return false;
    };
    *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::T_R_SERIALIZATION_FAILURE
        || (*code == SqlState::UNIQUE_VIOLATION
            && e.as_db_error()
                .and_then(|d| d.constraint())
                .is_some_and(is_entries_primary_key))
}

fn code_of(e: &Error) -> Option<&SqlState> {
    match e {
        Error::Db(e) => e.code(),
        Error::Store(_) => None,
    }
}

/// A lock that did not come within `lock_timeout`.
pub fn is_lock_timeout(e: &Error) -> bool {
    code_of(e) == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

/// A table that does not exist (a partition another process dropped a moment ago).
pub fn is_undefined_table(e: &Error) -> bool {
    code_of(e) == Some(&SqlState::UNDEFINED_TABLE)
}

/// A row for which the partitioned table has no partition: its month was dropped (by retention,
/// possibly in another process) after this process last saw it (`partitions.rs`).
pub fn is_missing_partition(e: &Error) -> bool {
    let Error::Db(db) = e else {
        return false;
    };
    db.as_db_error().is_some_and(|d| {
        *d.code() == SqlState::CHECK_VIOLATION
            && d.message().starts_with("no partition of relation")
    })
}

/// `entries_pkey`, or a partition's copy of it (`entries_p202611_pkey`).
fn is_entries_primary_key(constraint: &str) -> bool {
    constraint == "entries_pkey"
        || constraint
            .strip_prefix("entries_p")
            .is_some_and(|rest| rest.ends_with("_pkey"))
}

/// The URL with its password replaced by `***`, for logs and error messages. Handles both URL
/// (`postgres://user:secret@host/db`) and key-value (`host=... password=secret`) forms.
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        let mut out = url[..scheme_end + 3].to_string();
        match authority.rfind('@') {
            Some(at) => {
                let userinfo = &authority[..at];
                match userinfo.find(':') {
                    Some(colon) => {
                        out.push_str(&userinfo[..colon]);
                        out.push_str(":***");
                    }
                    None => out.push_str(userinfo),
                }
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        out.push_str(&redact_query_password(&rest[authority_end..]));
        return out;
    }
    // Key-value form: blank out the value after `password=`.
    let mut out = Vec::new();
    for part in url.split_whitespace() {
        match part.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                out.push(format!("{key}=***"))
            }
            _ => out.push(part.to_string()),
        }
    }
    out.join(" ")
}

/// `?password=...` in the query string of a URL.
fn redact_query_password(tail: &str) -> String {
    let Some(q) = tail.find('?') else {
        return tail.to_string();
    };
    let (path, query) = tail.split_at(q + 1);
    let parts: Vec<String> = query
        .split('&')
        .map(|p| match p.split_once('=') {
            Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => p.to_string(),
        })
        .collect();
    format!("{path}{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(
            redact_url("postgres://stele:s3cr@t@db.internal:5432/stele?sslmode=disable"),
            "postgres://stele:***@db.internal:5432/stele?sslmode=disable"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/postgres"),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        assert_eq!(
            redact_url("postgresql://h/db?user=a&password=b"),
            "postgresql://h/db?user=a&password=***"
        );
        assert_eq!(
            redact_url("host=localhost password=hunter2 dbname=x"),
            "host=localhost password=*** dbname=x"
        );
    }
}
