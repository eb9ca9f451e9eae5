//! `stele prune`: a retention run by hand, the same as the daily schedule's.

use std::path::PathBuf;

use super::open::{find_org, open_existing_with_key};
use crate::{DataDir, KeyFile};

pub(crate) async fn prune(
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
