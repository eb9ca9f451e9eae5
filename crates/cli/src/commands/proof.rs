//! `stele proof verify`: check an inclusion or consistency proof offline with the public key.

use anyhow::Context as _;
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
