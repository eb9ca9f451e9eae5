//! `stele verify`: recompute every organization's chain and check it against the signed
//! checkpoints: from the last checkpoint an earlier verification passed, or all of it (`--full`).

use stele_service::integrity::{self, Extent};

use super::open::{find_org, open_existing};
use crate::{DataDir, KeyFile};

pub(crate) async fn verify(
    org: Option<String>,
    full: bool,
    json: bool,
    public_key: Option<String>,
    key_file: KeyFile,
    data: DataDir,
) -> anyhow::Result<()> {
    let key_path = key_file.path(&data);
    let public_key = match public_key {
        Some(hex) => Some(
            stele_core::checkpoint::PublicKey::from_hex(&hex).ok_or_else(|| {
                anyhow::anyhow!("--public-key: not 64 hex digits of an Ed25519 key")
            })?,
        ),
        None => stele_service::secrets::public_key(&key_path)?,
    };
    let store = open_existing(&data).await?;
    let orgs = match org {
        Some(org) => vec![find_org(store.as_ref(), &org).await?],
        None => store.list_orgs().await?,
    };
    match &public_key {
        Some(key) => eprintln!(
            "checkpoint public key {} (key id {})",
            key.to_hex(),
            key.key_id()
        ),
        None => eprintln!(
            "no signing key at {}: checkpoint signatures are not checked",
            key_path.display()
        ),
    }
    let mut all_ok = true;
    for org in orgs {
        let started = std::time::Instant::now();
        let extent = if full {
            Extent::Full
        } else {
            Extent::SinceLastVerified
        };
        let report =
            integrity::verify(store.as_ref(), org.key, public_key.as_ref(), extent).await?;
        all_ok &= report.ok;
        if json {
            println!("{}", serde_json::to_string(&report)?);
            continue;
        }
        let range = match (report.first_seq, report.last_seq) {
            (Some(a), Some(b)) => format!("seq {a}..={b}"),
            _ if report.since_checkpoint_seq.is_some() => "none new".to_string(),
            _ => "no entries".to_string(),
        };
        let since = match report.since_checkpoint_seq {
            Some(seq) => {
                format!(" after the checkpoint at seq {seq}, verified before (--full for all)")
            }
            None => String::new(),
        };
        let mut pruned = String::new();
        if report.pruned_entries > 0 {
            pruned += &format!("; {} entries pruned by retention", report.pruned_entries);
            if let Some(up_to) = report.pruned_up_to_seq {
                pruned += &format!(" (every entry up to seq {up_to})");
            }
            match report.anchor_checkpoint_seq {
                Some(seq) => pruned += &format!(", anchored by the checkpoint at seq {seq}"),
                None => pruned += ", with no checkpoint after them yet",
            }
        }
        match &report.problem {
            None => println!(
                "{} ({}): OK, {} entries ({range}){since}, {} checkpoints{}{pruned}, in {:.2?}",
                org.name,
                org.id,
                report.entries,
                report.checkpoints,
                if public_key.is_some() {
                    ""
                } else {
                    " (signatures NOT checked: no public key)"
                },
                started.elapsed()
            ),
            Some(p) => println!(
                "{} ({}): FAILED at seq {}: {:?}: {} ({} entries verified)",
                org.name, org.id, p.seq, p.kind, p.message, report.entries
            ),
        }
    }
    if !all_ok {
        std::process::exit(1);
    }
    Ok(())
}
