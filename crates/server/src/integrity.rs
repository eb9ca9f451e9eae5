//! The checkpoint signing key: created on first start in the data directory, never shown.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use stele_core::checkpoint::{PublicKey, SigningKey};

/// The file in the data directory holding the signing key's 32-byte seed, as hex.
pub const SIGNING_KEY_FILE: &str = "checkpoint-signing-key";

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SIGNING_KEY_FILE)
}

/// Loads the signing key, creating it (readable by the owner only) if the directory has none.
pub fn load_or_create_signing_key(data_dir: &Path) -> anyhow::Result<SigningKey> {
    if let Some(key) = load_signing_key(data_dir)? {
        return Ok(key);
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("reading OS randomness: {e}"))?;
    let path = key_path(data_dir);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let hex: String = seed.iter().map(|b| format!("{b:02x}")).collect();
    file.write_all(hex.as_bytes())?;
    file.sync_all()?;
    Ok(SigningKey::from_seed(seed))
}

pub fn load_signing_key(data_dir: &Path) -> anyhow::Result<Option<SigningKey>> {
    let path = key_path(data_dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let text = text.trim();
    let seed: Option<[u8; 32]> = (text.len() == 64)
        .then(|| {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
                .collect::<Option<Vec<u8>>>()
        })
        .flatten()
        .and_then(|v| v.try_into().ok());
    let seed =
        seed.with_context(|| format!("{} does not hold a 32-byte hex seed", path.display()))?;
    Ok(Some(SigningKey::from_seed(seed)))
}

/// The secret behind erasure pseudonyms, derived from the signing key (one secret to keep, two
/// separate uses).
pub fn pseudonym_secret(key: &SigningKey) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"stele-pseudonym-secret-v1");
    h.update(key.to_seed());
    h.finalize().into()
}

/// The public key of the data directory's signing key, if it has one.
pub fn public_key(data_dir: &Path) -> anyhow::Result<Option<PublicKey>> {
    Ok(load_signing_key(data_dir)?.map(|k| k.public_key()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_signing_key(dir.path()).unwrap();
        let again = load_or_create_signing_key(dir.path()).unwrap();
        assert_eq!(first.public_key(), again.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
