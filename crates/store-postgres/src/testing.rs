//! Test support, for this crate's tests and the server's HTTP tests on PostgreSQL: a fresh
//! database per test on the local PostgreSQL server, dropped with the test.
//!
//! The server is `postgres://postgres@127.0.0.1:5432/postgres`, or the one
//! `STELE_TEST_POSTGRES_URL` names. If it cannot be reached, the test fails and says so: these
//! tests never skip, so a CI without PostgreSQL cannot pass by testing nothing.

use std::time::Duration;

use crate::redact_url;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub fn admin_url() -> String {
    std::env::var("STELE_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_string())
}

/// The URL of database `name` on the same server as `url`.
pub fn with_database(url: &str, name: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest_start = scheme_end + 3;
        let rest = &url[rest_start..];
        let authority_end = rest.find(['/', '?']).map_or(url.len(), |i| rest_start + i);
        let query = url[authority_end..]
            .find('?')
            .map_or("", |q| &url[authority_end + q..]);
        format!("{}/{name}{query}", &url[..authority_end])
    } else {
        format!("{url} dbname={name}")
    }
}

/// A database created for one test and dropped with it.
pub struct TestDatabase {
    admin: String,
    name: String,
}

impl TestDatabase {
    pub async fn create() -> (TestDatabase, String) {
        let admin = admin_url();
        let (client, connection) = tokio::time::timeout(
            Duration::from_secs(10),
            tokio_postgres::connect(&admin, tokio_postgres::NoTls),
        )
        .await
        .unwrap_or_else(|_| panic!("{}", unreachable(&admin, "timed out after 10 s")))
        .unwrap_or_else(|e| panic!("{}", unreachable(&admin, &with_causes(&e))));
        tokio::spawn(connection);
        let name = format!("stele_test_{}", uuid::Uuid::now_v7().simple());
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("creating the test database {name}: {e:?}"));
        let url = with_database(&admin, &name);
        (TestDatabase { admin, name }, url)
    }
}

/// Brings the database at `url` to schema version `version` only, as an older Stele left it (for
/// tests of an upgrade; [`crate::PgStore::connect`] then applies the rest).
pub async fn migrate_to_version(url: &str, version: usize) -> stele_store::Result<()> {
    let config = crate::pool::base_config(url)?;
    let mut conn = crate::pool::connect(&config, "").await?;
    crate::schema::migrate_up_to(&mut conn.client, version).await?;
    Ok(())
}

pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text = format!("{text}: {c}");
        cause = c.source();
    }
    text
}

pub fn unreachable(url: &str, why: &str) -> String {
    format!(
        "PostgreSQL is not reachable at {} ({why}). These tests need a running server: start \
         the local one (CI's .ci/run does), or set STELE_TEST_POSTGRES_URL to a server where the \
         user may create databases.",
        redact_url(url)
    )
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // On a thread of its own with its own runtime: this may run inside the test's runtime
        // (which cannot block on a future) or while it unwinds from a panic.
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
                    .await
                    .map_err(|e| e.to_string())?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| format!("{e:?}"))
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop the test database {}: {e}", self.name),
            Err(_) => eprintln!("dropping the test database {} panicked", self.name),
        }
    }
}
