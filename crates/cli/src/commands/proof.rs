//! `stele proof verify`: check an inclusion or consistency proof offline with the public key;
//! `stele proof inclusion` and `stele proof consistency`: print one from the database, the same
//! documents the API answers.

use anyhow::Context as _;
use stele_core::Seq;
use stele_service::integrity;

use super::open::{find_org, open_existing};
use crate::DataDir;
pub(crate) fn verify_proof(file: &std::path::Path, public_key: &str) -> anyhow::Result<()> {
    use stele_core::checkpoint::PublicKey;
    use stele_core::proof::{ConsistencyProof, InclusionProof};
    let key = PublicKey::from_hex(public_key)
        .ok_or_else(|| anyhow::anyhow!("--public-key: not a 64-hex-digit Ed25519 public key"))?;
    let text = if file.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin())?
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    let document: serde_json::Value =
        serde_json::from_str(&text).context("the proof is not JSON")?;
    let mut note = "";
    let (what, result) = if document.get("entry").is_some() {
        let proof: InclusionProof =
            serde_json::from_value(document).context("not an inclusion proof")?;
        if proof.personal_salt.is_none() {
            note = " (the actor and context shown are NOT proven: the proof has no personal salt, \
                    as for an erased entry)";
        }
        let seq = proof.entry["seq"].clone();
        (
            format!(
                "entry seq {seq} is included in the checkpoint at seq {} of {}",
                proof.checkpoint.checkpoint.seq, proof.checkpoint.checkpoint.org_id
            ),
            proof.verify(&key),
        )
    } else {
        let proof: ConsistencyProof =
            serde_json::from_value(document).context("not a consistency proof")?;
        (
            format!(
                "the checkpoint at seq {} extends the one at seq {} of {}",
                proof.to.checkpoint.seq, proof.from.checkpoint.seq, proof.from.checkpoint.org_id
            ),
            proof.verify(&key),
        )
    };
    match result {
        Ok(()) => {
            println!("OK: {what}{note}");
            Ok(())
        }
        Err(e) => {
            println!("INVALID: {e}");
            std::process::exit(1);
        }
    }
}

/// `stele proof inclusion --org ORG ID`: the entry's inclusion proof, as JSON on standard output.
pub(crate) async fn inclusion(org: &str, id: &str, data: DataDir) -> anyhow::Result<()> {
    let store = open_existing(&data).await?;
    let org = find_org(store.as_ref(), org).await?;
    let proof = integrity::inclusion_proof(store.as_ref(), org.key, id).await?;
    println!("{}", serde_json::to_string_pretty(&proof)?);
    Ok(())
}

/// `stele proof consistency --org ORG --from SEQ --to SEQ`: the consistency proof, as JSON on
/// standard output.
pub(crate) async fn consistency(
    org: &str,
    from: i64,
    to: i64,
    data: DataDir,
) -> anyhow::Result<()> {
    let store = open_existing(&data).await?;
    let org = find_org(store.as_ref(), org).await?;
    let proof =
        integrity::consistency_proof(store.as_ref(), org.key, Seq::new(from), Seq::new(to)).await?;
    println!("{}", serde_json::to_string_pretty(&proof)?);
    Ok(())
}
