//! The `count` scenario: the cost of the count alone (`Store::count`, the query scenario's filters
//! and values), timed on the store opened in this process next to the running server.

use std::path::Path;
use std::time::{Duration, Instant};

use stele_core::params::PageRequest;

use super::query::QuerySpec;
use crate::Backend;

pub(crate) struct CountRow {
    pub(crate) name: &'static str,
    pub(crate) latencies: Vec<Duration>,
    pub(crate) counts: Vec<u64>,
    pub(crate) exact: usize,
}

pub(crate) async fn count(
    backend: &Backend,
    dir: &Path,
    org: &str,
    specs: &[QuerySpec],
) -> anyhow::Result<Vec<CountRow>> {
    eprintln!("bench: count: timing Store::count on the store opened in this process");
    let store = backend.open(dir).await?;
    let org = store.find_org(org).await?.key;
    let mut rows = Vec::new();
    for spec in specs {
        let mut row = CountRow {
            name: spec.name,
            latencies: Vec::with_capacity(spec.runs.len()),
            counts: Vec::new(),
            exact: 0,
        };
        for p in &spec.runs {
            let filter = PageRequest::from_params(p.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .filter;
            let started = Instant::now();
            let (n, exact) = store.count(org, &filter).await?;
            row.latencies.push(started.elapsed());
            row.counts.push(n);
            row.exact += usize::from(exact);
        }
        row.latencies.sort();
        row.counts.sort();
        rows.push(row);
    }
    drop(store);
    if matches!(backend, Backend::Sqlite) {
        // The store's writer and checkpoint threads close their connections shortly after the
        // drop; let them, so the server is the last connection when it stops.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    Ok(rows)
}
