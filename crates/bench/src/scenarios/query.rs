//! The `query` scenario: first-page latency (limit 50) for each filter on its own, no filter, and
//! one three-filter combination, `--queries` times each with values sampled from the stored data
//! (the samples and filters serve the `count` and `proof` scenarios too).

use std::time::{Duration, Instant};

use serde_json::Value;
use stele_core::Seq;
use stele_core::time::format_rfc3339;

use crate::PAGE_LIMIT;
use crate::generator::{COMMON_WORDS, RARE_TOKENS, Rng, VOCAB};
use crate::http::{Http, params, query_string};
use crate::report::{ms, pct};

/// Values seen in the stored data, with repetitions (so common values are picked more often).
#[derive(Default)]
pub(crate) struct Samples {
    oldest_ms: i64,
    newest_ms: i64,
    actions: Vec<String>,
    detailed: Vec<String>,
    emails: Vec<String>,
    entity_types: Vec<String>,
    entity_ids: Vec<String>,
    correlation_ids: Vec<String>,
    ips: Vec<String>,
    /// (action, channel, entity type) of entries that have all three.
    triples: Vec<(String, String, String)>,
    /// (id, seq) of the sampled entries, for the inclusion proofs.
    pub(crate) entries: Vec<(String, Seq)>,
}

impl Samples {
    /// Finds the stored time range, then reads short pages at random points in it.
    pub(crate) async fn collect(http: &Http, queries: usize, seed: u64) -> anyhow::Result<Samples> {
        eprintln!("bench: query: sampling values from the stored data");
        let mut s = Samples::default();
        let newest = http
            .get_json(&params(&[("actor_type", "all"), ("limit", "1")]))
            .await?;
        let Some(newest) = newest["entries"][0]["occurred_at"]
            .as_str()
            .and_then(stele_core::time::parse_rfc3339)
        else {
            eprintln!("bench: query: the organization holds no entry");
            return Ok(s);
        };
        // The oldest entry: the smallest `to` (exclusive) with an entry before it, to 1 s.
        let (mut lo, mut hi) = (0i64, newest + 1);
        while hi - lo > 1000 {
            let mid = lo + (hi - lo) / 2;
            let page = http
                .get_json(&params(&[
                    ("actor_type", "all"),
                    ("limit", "1"),
                    ("to", &format_rfc3339(mid)),
                ]))
                .await?;
            if page["entries"].as_array().is_some_and(|e| !e.is_empty()) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        s.oldest_ms = lo;
        s.newest_ms = newest;

        let mut rng = Rng::new(seed ^ 0x5a3b1e);
        let pages = queries.clamp(50, 400);
        for _ in 0..pages {
            let t = s.oldest_ms + (rng.unit() * (s.newest_ms - s.oldest_ms + 1) as f64) as i64;
            let page = http
                .get_json(&params(&[
                    ("limit", "20"),
                    ("to", &format_rfc3339(t.max(s.oldest_ms + 1))),
                ]))
                .await?;
            for e in page["entries"].as_array().into_iter().flatten() {
                s.add(e);
            }
        }
        Ok(s)
    }

    fn add(&mut self, e: &Value) {
        let text = |v: &Value| v.as_str().map(str::to_string);
        if let (Some(id), Some(seq)) = (text(&e["id"]), e["seq"].as_i64()) {
            self.entries.push((id, Seq::new(seq)));
        }
        if let Some(a) = text(&e["action"]) {
            self.actions.push(a);
        }
        if let Some(d) = text(&e["detailed_action"]) {
            self.detailed.push(d);
        }
        if let Some(m) = text(&e["actor"]["email"]) {
            self.emails.push(m);
        }
        if let Some(t) = text(&e["entity"]["type"]) {
            self.entity_types.push(t);
        }
        match &e["entity"]["id"] {
            Value::String(id) => self.entity_ids.push(id.clone()),
            Value::Number(n) => self.entity_ids.push(n.to_string()),
            _ => {}
        }
        // Bulk ids are found by the same filter; take one per bulk entry.
        if let Some(id) = e["entity_ids"].as_array().and_then(|a| a.first()) {
            self.entity_ids
                .push(id.as_str().map_or_else(|| id.to_string(), str::to_string));
        }
        if let Some(c) = text(&e["context"]["correlation_id"]) {
            self.correlation_ids.push(c);
        }
        if let Some(ip) = text(&e["context"]["ip"]) {
            self.ips.push(ip);
        }
        if let (Some(a), Some(c), Some(t)) = (
            text(&e["action"]),
            text(&e["channel"]),
            text(&e["entity"]["type"]),
        ) {
            self.triples.push((a, c, t));
        }
    }
}

/// Query parameters as sent.
type Params = Vec<(String, String)>;

/// One row of the query and count tables: a filter and the parameter sets it is run with.
pub(crate) struct QuerySpec {
    pub(crate) name: &'static str,
    pub(crate) runs: Vec<Vec<(String, String)>>,
}

pub(crate) fn query_specs(s: &Samples, n: usize, seed: u64) -> Vec<QuerySpec> {
    let mut rng = Rng::new(seed ^ 0x09e3_70e7);
    let mut specs = Vec::new();
    let mut add = |name: &'static str, rng: &mut Rng, make: &dyn Fn(&mut Rng) -> Option<Params>| {
        let mut runs = Vec::with_capacity(n);
        for _ in 0..n {
            match make(rng) {
                Some(mut p) => {
                    p.push(("limit".into(), PAGE_LIMIT.into()));
                    runs.push(p);
                }
                None => break,
            }
        }
        if runs.is_empty() {
            eprintln!("bench: query: no value found for `{name}`; skipped");
        } else {
            specs.push(QuerySpec { name, runs });
        }
    };
    let one = |k: &str, v: &str| Some(vec![(k.to_string(), v.to_string())]);
    let pick = |rng: &mut Rng, from: &[String]| -> Option<String> {
        (!from.is_empty()).then(|| from[rng.below(from.len() as u64) as usize].clone())
    };

    add("no filter", &mut rng, &|_| Some(vec![]));
    add("action", &mut rng, &|r| {
        one("action", &pick(r, &s.actions)?)
    });
    add("detailed_action (exact)", &mut rng, &|r| {
        one("detailed_action", &pick(r, &s.detailed)?)
    });
    add("detailed_action (prefix `x.*`)", &mut rng, &|r| {
        let d = pick(r, &s.detailed)?;
        let prefix = match d.find('.') {
            Some(dot) => &d[..=dot],
            None => &d[..d.len().min(4)],
        };
        one("detailed_action", &format!("{prefix}*"))
    });
    add("actor_type=system", &mut rng, &|_| {
        one("actor_type", "system")
    });
    add("actor (email)", &mut rng, &|r| {
        one("actor", &pick(r, &s.emails)?)
    });
    add("entity_type", &mut rng, &|r| {
        one("entity_type", &pick(r, &s.entity_types)?)
    });
    add("entity_id", &mut rng, &|r| {
        one("entity_id", &pick(r, &s.entity_ids)?)
    });
    add("channel=default (common)", &mut rng, &|_| {
        one("channel", "default")
    });
    add("channel=compliance (rare, ~1%)", &mut rng, &|_| {
        one("channel", "compliance")
    });
    add("outcome=failure", &mut rng, &|_| one("outcome", "failure"));
    add("correlation_id", &mut rng, &|r| {
        one("correlation_id", &pick(r, &s.correlation_ids)?)
    });
    add("ip", &mut rng, &|r| one("ip", &pick(r, &s.ips)?));
    add("from/to (1 day, middle of the range)", &mut rng, &|r| {
        if s.newest_ms <= s.oldest_ms {
            return None;
        }
        let span = (s.newest_ms - s.oldest_ms) as f64;
        let mid = s.oldest_ms + (span * (0.25 + 0.5 * r.unit())) as i64;
        Some(vec![
            ("from".into(), format_rfc3339(mid - 12 * 3600 * 1000)),
            ("to".into(), format_rfc3339(mid + 12 * 3600 * 1000)),
        ])
    });
    add("q, common word", &mut rng, &|r| {
        one("q", VOCAB[r.below(COMMON_WORDS as u64) as usize])
    });
    add("q, rare token (~0.01%)", &mut rng, &|r| {
        one("q", RARE_TOKENS[r.below(RARE_TOKENS.len() as u64) as usize])
    });
    add("action + channel + entity_type", &mut rng, &|r| {
        if s.triples.is_empty() {
            return None;
        }
        let (a, c, t) = &s.triples[r.below(s.triples.len() as u64) as usize];
        Some(vec![
            ("action".into(), a.clone()),
            ("channel".into(), c.clone()),
            ("entity_type".into(), t.clone()),
        ])
    });
    specs
}

pub(crate) struct QueryRow {
    pub(crate) name: &'static str,
    pub(crate) example: String,
    pub(crate) latencies: Vec<Duration>,
    pub(crate) totals: Vec<u64>,
    pub(crate) exact: usize,
    pub(crate) page_sizes: Vec<usize>,
}

pub(crate) async fn query(http: &Http, specs: &[QuerySpec]) -> anyhow::Result<Vec<QueryRow>> {
    let mut rows = Vec::new();
    for spec in specs {
        let mut row = QueryRow {
            name: spec.name,
            example: query_string(&spec.runs[0]),
            latencies: Vec::with_capacity(spec.runs.len()),
            totals: Vec::new(),
            exact: 0,
            page_sizes: Vec::new(),
        };
        for p in &spec.runs {
            let started = Instant::now();
            let body = http.get(p).await?;
            row.latencies.push(started.elapsed());
            let page: Value = serde_json::from_slice(&body)?;
            row.totals.push(page["total"].as_u64().unwrap_or(0));
            row.exact += usize::from(page["total_exact"].as_bool() == Some(true));
            row.page_sizes
                .push(page["entries"].as_array().map_or(0, Vec::len));
        }
        row.latencies.sort();
        row.totals.sort();
        row.page_sizes.sort();
        eprintln!(
            "bench: query: {:<40} p50 {} p95 {}",
            spec.name,
            ms(pct(&row.latencies, 0.50)),
            ms(pct(&row.latencies, 0.95))
        );
        rows.push(row);
    }
    Ok(rows)
}
