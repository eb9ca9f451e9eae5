//! The `tenants` scenario (opt-in): one organization's first page when the trail holds many
//! organizations, as a platform's does (issue 15: one organization among 10,000 holding 1M
//! entries in all, p95 ≤ 10 ms), and what naming the organization costs a request.
//!
//! A platform key sends `--tenants-events` events in batches whose every event names its
//! organization (external id `bench-t00000` …): a fifth go to one large tenant and the rest evenly
//! to the other `--tenants - 1`, so the trail holds both the tenant whose pages walk long
//! posting lists among everyone else's entries and the typical small one. A warm-up, off the
//! clock, creates the organizations first (ingest's auto-create, 1,000 per request).
//!
//! Then, through the platform key naming the organization by external id (`Stele-Organization`),
//! every filter of the `query` scenario for the large tenant and for one small tenant, values
//! sampled from each one's own entries. Last, the small tenant's unfiltered first page three ways:
//! the platform key naming it by external id, by organization id, and the organization's own key
//! with no header: the first two resolve the name through the server's directory of
//! organizations, the third names nothing, so equal latencies say the name costs no database read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stele_store::{Scope, Store};

use crate::BenchArgs;
use crate::generator::{Pool, mix};
use crate::http::{Http, params};
use crate::report::{ms, pct, thousands};
use crate::scenarios::orgs::{Kind, Pass, pass};
use crate::scenarios::query::{QueryRow, Samples, query, query_specs};

/// The external id of the `n`th tenant; tenant 0 is the large one.
fn tenant(n: u64) -> String {
    format!("bench-t{n:05}")
}

/// Requests of each way of naming the small tenant.
const NAMING_RUNS: usize = 300;

pub(crate) struct TenantsResult {
    pub(crate) tenants: u64,
    pub(crate) warm_up: Duration,
    pub(crate) ingest: Pass,
    /// Entries each measured tenant holds.
    pub(crate) large_entries: u64,
    pub(crate) small_entries: u64,
    pub(crate) large: Vec<QueryRow>,
    pub(crate) small: Vec<QueryRow>,
    /// (how the organization is named, latencies sorted).
    pub(crate) naming: Vec<(&'static str, Vec<Duration>)>,
}

pub(crate) async fn run(
    http: &Http,
    store: &dyn Store,
    platform_key: &str,
    args: &BenchArgs,
    pool: Arc<Pool>,
    base_ms: i64,
    after_ingest: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<TenantsResult> {
    let tenants = args.tenants;
    eprintln!(
        "bench: tenants: creating {tenants} organizations, then {} events spread over them",
        args.tenants_events
    );
    let started = Instant::now();
    for chunk in (0..tenants).collect::<Vec<_>>().chunks(1000) {
        let events: Vec<Value> = chunk
            .iter()
            .map(|n| json!({"organization": tenant(*n), "action": "create", "actor": {"type": "system"}}))
            .collect();
        http.post_as(platform_key, None, json!({ "events": events }).to_string())
            .await?;
    }
    let warm_up = started.elapsed();

    let seed = args.seed;
    let tenant_of = move |i: u64| {
        let h = mix(seed ^ i ^ 0x7e4a_4175);
        if h.is_multiple_of(5) {
            0
        } else {
            1 + (h / 5) % (tenants - 1)
        }
    };
    let spread = Kind::Mixed(Arc::new(move |i| tenant(tenant_of(i))));
    let events = args.tenants_events;
    let ingest = pass(
        http,
        platform_key,
        args,
        &pool,
        base_ms,
        spread,
        0,
        events,
        events,
    )
    .await?;
    eprintln!(
        "bench: tenants: {} events in {:.1} s",
        events,
        ingest.elapsed.as_secs_f64()
    );

    after_ingest()?;

    let (large_name, small_name) = (tenant(0), tenant(1));
    let large_http = http.acting_as(platform_key, Some(&large_name));
    let small_http = http.acting_as(platform_key, Some(&small_name));
    // What each holds, counted here (a page's count stops at a budget): the warm-up's entry and
    // the events sent to it.
    let held = |n: u64| 1 + (0..events).filter(|i| tenant_of(*i) == n).count() as u64;
    let (large_entries, small_entries) = (held(0), held(1));

    let mut rows = Vec::new();
    for (name, http) in [(&large_name, &large_http), (&small_name, &small_http)] {
        eprintln!("bench: tenants: first pages of {name}");
        let samples = Samples::collect(http, args.queries, args.seed).await?;
        let specs = query_specs(&samples, args.queries, args.seed);
        rows.push(query(http, &specs).await?);
    }
    let small = rows.pop().unwrap_or_default();
    let large = rows.pop().unwrap_or_default();

    // The small tenant's own key, and its organization id, through the store as the harness
    // makes its other keys.
    let org = store
        .resolve_org(&small_name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("{small_name} was not created"))?;
    let own = stele_service::access::api_keys::generate("stele bench tenant", vec![Scope::Read]);
    store.create_api_key(org.key, own.record).await?;
    let ways = [
        (
            "platform key, `Stele-Organization: <external id>`",
            http.acting_as(platform_key, Some(&small_name)),
        ),
        (
            "platform key, `Stele-Organization: <organization id>`",
            http.acting_as(platform_key, Some(&org.id)),
        ),
        (
            "the organization's own key, no header",
            http.acting_as(&own.secret, None),
        ),
    ];
    let page = params(&[("limit", crate::PAGE_LIMIT)]);
    let mut naming: Vec<(&'static str, Vec<Duration>)> =
        ways.iter().map(|(label, _)| (*label, Vec::new())).collect();
    // Interleaved, so that none of the three gains from coming later.
    for _ in 0..NAMING_RUNS {
        for (i, (_, http)) in ways.iter().enumerate() {
            let started = Instant::now();
            http.get(&page).await?;
            naming[i].1.push(started.elapsed());
        }
    }
    for (_, latencies) in &mut naming {
        latencies.sort();
    }
    Ok(TenantsResult {
        tenants,
        warm_up,
        ingest,
        large_entries,
        small_entries,
        large,
        small,
        naming,
    })
}

impl TenantsResult {
    pub(crate) fn render(&self, o: &mut String, args: &BenchArgs) {
        use std::fmt::Write as _;
        let _ = writeln!(o, "\n## One organization among many\n");
        let _ = writeln!(
            o,
            "{} events sent by a platform key in batches of {} from {} clients, each event naming \
             one of {} organizations (a fifth to `{}`, the rest evenly): {} events/s, request p50 \
             / p99 {} / {}. Creating the organizations beforehand took {} (off the clock).\n",
            thousands(self.ingest.events),
            args.batch,
            args.ingest_clients,
            thousands(self.tenants),
            tenant(0),
            thousands(self.ingest.rate() as u64),
            ms(pct(&self.ingest.latencies, 0.50)),
            ms(pct(&self.ingest.latencies, 0.99)),
            ms(self.warm_up)
        );
        for (label, entries, rows) in [
            ("the large tenant", self.large_entries, &self.large),
            ("a small tenant", self.small_entries, &self.small),
        ] {
            let _ = writeln!(
                o,
                "First page of {label} ({} entries), the platform key naming it by external id:\n",
                thousands(entries)
            );
            crate::report::render_query_rows(o, rows);
            let _ = writeln!(o);
        }
        let _ = writeln!(
            o,
            "The small tenant's unfiltered first page, {NAMING_RUNS} requests each way, \
             interleaved:\n"
        );
        let _ = writeln!(o, "| named by | p50 | p95 | max |");
        let _ = writeln!(o, "|---|---|---|---|");
        for (label, latencies) in &self.naming {
            let _ = writeln!(
                o,
                "| {label} | {} | {} | {} |",
                ms(pct(latencies, 0.50)),
                ms(pct(latencies, 0.95)),
                ms(latencies.last().copied().unwrap_or_default())
            );
        }
    }
}
