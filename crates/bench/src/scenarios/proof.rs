//! The `proof` scenario: `GET /v1/events/{id}/proof` for `--proofs` stored entries once a signed
//! checkpoint covers them, and `GET /v1/integrity/consistency` from up to `--proofs` earlier
//! checkpoints to the newest; each proof then checked with the server's public key, off the
//! clock.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use reqwest::StatusCode;
use serde_json::Value;
use stele_core::Seq;

use super::query::Samples;
use crate::BenchArgs;
use crate::generator::Rng;
use crate::http::Http;
use crate::report::{ms, pct};

pub(crate) struct ProofResult {
    pub(crate) latencies: Vec<Duration>,
    /// The tree size (checkpoint `seq`) the proofs lead to.
    pub(crate) tree_sizes: Vec<u64>,
    /// Response bodies, bytes.
    pub(crate) bytes: Vec<usize>,
    /// Proofs that verified with the server's public key (checked after timing).
    pub(crate) valid: usize,
    /// How long the harness waited for a checkpoint covering the chosen entries.
    pub(crate) waited: Duration,
    pub(crate) checkpoint_every: u64,
    /// Consistency proofs from earlier checkpoints to the newest.
    pub(crate) consistency: ConsistencyResult,
}

#[derive(Default)]
pub(crate) struct ConsistencyResult {
    pub(crate) latencies: Vec<Duration>,
    /// The newest checkpoint's `seq` (the later tree), and the earlier ones' range.
    pub(crate) to: u64,
    pub(crate) from_min: u64,
    pub(crate) from_max: u64,
    pub(crate) valid: usize,
}

/// The newest signed checkpoint's `seq`, if there is one.
async fn newest_checkpoint(http: &Http) -> anyhow::Result<Option<Seq>> {
    let response = http
        .client
        .get(format!("{}/v1/integrity/checkpoints?limit=1", http.url))
        .bearer_auth(&http.key)
        .send()
        .await
        .context("GET /v1/integrity/checkpoints")?;
    let status = response.status();
    let body: Value = response.json().await.context("reading the checkpoints")?;
    if status != StatusCode::OK {
        bail!("GET /v1/integrity/checkpoints answered {status}: {body}");
    }
    Ok(body["checkpoints"]
        .as_array()
        .and_then(|c| c.iter().filter_map(|c| c["seq"].as_i64()).max())
        .map(Seq::new))
}

/// Times `GET /v1/events/{id}/proof` for `--proofs` sampled entries, sequentially, once the
/// newest checkpoint covers all of them; then checks every proof with the public key.
pub(crate) async fn proofs(
    http: &Http,
    public_key: &str,
    samples: &Samples,
    args: &BenchArgs,
) -> anyhow::Result<ProofResult> {
    let key = stele_core::checkpoint::PublicKey::from_hex(public_key)
        .with_context(|| format!("the banner's public key `{public_key}`"))?;
    let mut rng = Rng::new(args.seed ^ 0x9400f);
    let mut pool: Vec<&(String, Seq)> = samples.entries.iter().collect();
    pool.sort_by_key(|e| e.1);
    pool.dedup_by_key(|e| e.1);
    if pool.is_empty() {
        bail!("proof: no stored entry was sampled");
    }
    let mut chosen = Vec::new();
    while chosen.len() < args.proofs.min(pool.len()) {
        let e = pool.swap_remove(rng.below(pool.len() as u64) as usize);
        chosen.push(e.clone());
    }
    let highest = chosen
        .iter()
        .map(|e| e.1)
        .max()
        .unwrap_or(Seq::BEFORE_FIRST);
    eprintln!(
        "bench: proof: waiting for a signed checkpoint at or past seq {highest} (--checkpoint-every {})",
        args.checkpoint_every
    );
    let waiting = Instant::now();
    let limit = Duration::from_secs(args.checkpoint_every.max(60) * 2 + 30);
    loop {
        if newest_checkpoint(http)
            .await?
            .is_some_and(|seq| seq >= highest)
        {
            break;
        }
        if waiting.elapsed() > limit {
            bail!(
                "proof: no checkpoint covered seq {highest} after {:.0} s",
                limit.as_secs_f64()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let waited = waiting.elapsed();
    eprintln!(
        "bench: proof: timing {} inclusion proofs (waited {:.1} s for the checkpoint)",
        chosen.len(),
        waited.as_secs_f64()
    );
    let mut result = ProofResult {
        latencies: Vec::new(),
        tree_sizes: Vec::new(),
        bytes: Vec::new(),
        valid: 0,
        waited,
        checkpoint_every: args.checkpoint_every,
        consistency: ConsistencyResult::default(),
    };
    let mut bodies = Vec::new();
    for (id, seq) in &chosen {
        let started = Instant::now();
        let response = http
            .client
            .get(format!("{}/v1/events/{id}/proof", http.url))
            .bearer_auth(&http.key)
            .send()
            .await
            .with_context(|| format!("GET /v1/events/{id}/proof"))?;
        let status = response.status();
        let body = response.bytes().await.context("reading the proof")?;
        result.latencies.push(started.elapsed());
        if status != StatusCode::OK {
            bail!(
                "GET /v1/events/{id}/proof (seq {seq}) answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        result.bytes.push(body.len());
        bodies.push(body);
    }
    for body in bodies {
        let proof: stele_core::proof::InclusionProof =
            serde_json::from_slice(&body).context("parsing an inclusion proof")?;
        result.tree_sizes.push(proof.tree_size);
        match proof.verify(&key) {
            Ok(()) => result.valid += 1,
            Err(e) => eprintln!(
                "bench: proof: the proof of seq {} does not verify: {e}",
                proof.entry["seq"]
            ),
        }
    }
    result.latencies.sort();
    result.tree_sizes.sort();
    result.bytes.sort();
    eprintln!(
        "bench: proof: p50 {} p95 {}, {} of {} verified",
        ms(pct(&result.latencies, 0.50)),
        ms(pct(&result.latencies, 0.95)),
        result.valid,
        result.latencies.len()
    );
    result.consistency = consistency_proofs(http, &key, args.proofs).await?;
    Ok(result)
}

/// Times `GET /v1/integrity/consistency?from=&to=` from up to `count` earlier checkpoints (the
/// newest of them first) to the newest one, sequentially; then checks each proof.
async fn consistency_proofs(
    http: &Http,
    key: &stele_core::checkpoint::PublicKey,
    count: usize,
) -> anyhow::Result<ConsistencyResult> {
    let response = http
        .client
        .get(format!("{}/v1/integrity/checkpoints?limit=1000", http.url))
        .bearer_auth(&http.key)
        .send()
        .await
        .context("GET /v1/integrity/checkpoints")?;
    let body: Value = response.json().await.context("reading the checkpoints")?;
    let mut seqs: Vec<u64> = body["checkpoints"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["seq"].as_u64()).collect())
        .unwrap_or_default();
    seqs.sort_unstable_by(|a, b| b.cmp(a));
    let Some((&to, earlier)) = seqs.split_first() else {
        bail!("proof: no checkpoint to prove consistency with");
    };
    let froms: Vec<u64> = earlier.iter().copied().take(count).collect();
    let mut result = ConsistencyResult {
        to,
        from_min: froms.iter().copied().min().unwrap_or(to),
        from_max: froms.iter().copied().max().unwrap_or(to),
        ..ConsistencyResult::default()
    };
    let mut bodies = Vec::new();
    for from in &froms {
        let path = format!("/v1/integrity/consistency?from={from}&to={to}");
        let started = Instant::now();
        let response = http
            .client
            .get(format!("{}{path}", http.url))
            .bearer_auth(&http.key)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let body = response.bytes().await.context("reading the proof")?;
        result.latencies.push(started.elapsed());
        if status != StatusCode::OK {
            bail!(
                "GET {path} answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        bodies.push(body);
    }
    for body in bodies {
        let proof: stele_core::proof::ConsistencyProof =
            serde_json::from_slice(&body).context("parsing a consistency proof")?;
        match proof.verify(key) {
            Ok(()) => result.valid += 1,
            Err(e) => eprintln!(
                "bench: proof: the consistency proof from {} does not verify: {e}",
                proof.from.checkpoint.seq
            ),
        }
    }
    result.latencies.sort();
    eprintln!(
        "bench: proof: {} consistency proofs to seq {to}: p50 {} p95 {}, {} verified",
        result.latencies.len(),
        ms(pct(&result.latencies, 0.50)),
        ms(pct(&result.latencies, 0.95)),
        result.valid
    );
    Ok(result)
}
