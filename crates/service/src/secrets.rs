//! The checkpoint signing key: created on first start (in the data directory unless
//! `--signing-key-file` names another file), never shown.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::random;
use anyhow::Context as _;
use hex::FromHex;
use stele_core::checkpoint::{PublicKey, SigningKey};

/// The file in the data directory holding the signing key's 32-byte seed, as hex.
pub const SIGNING_KEY_FILE: &str = "checkpoint-signing-key";

/// The key file a command uses: `explicit` (`--signing-key-file`) if given, else the data
/// directory's.
pub fn key_path(data_dir: &Path, explicit: Option<&Path>) -> PathBuf {
    match explicit {
        Some(path) => path.to_path_buf(),
        None => data_dir.join(SIGNING_KEY_FILE),
    }
}

/// A signing key and whether this call created its file.
pub struct LoadedKey {
    pub key: SigningKey,
    pub created: bool,
}

/// Loads the signing key at `path`, creating it (readable by the owner only) if there is none.
///
/// Several servers may start at once with one shared, not yet existing key file: the key is
/// written to a temporary file and then linked into place, which fails if the name exists, so
/// exactly one of them creates it, the others load that one, and nobody reads a half-written
/// file.
pub fn load_or_create_signing_key(path: &Path) -> anyhow::Result<LoadedKey> {
    if let Some(key) = load_signing_key(path)? {
        return Ok(LoadedKey {
            key,
            created: false,
        });
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let seed = random::bytes::<32>();
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    // Unique per call (threads share the process id); random, but not derived from the seed.
    let unique = random::bytes::<8>();
    let temporary = dir.join(format!(
        ".{}.{}-{:016x}.new",
        name.to_string_lossy(),
        std::process::id(),
        u64::from_le_bytes(unique)
    ));
    let written = write_new(&temporary, &seed)
        .and_then(|()| std::fs::hard_link(&temporary, path).map_err(anyhow::Error::from));
    let _ = std::fs::remove_file(&temporary);
    match written {
        Ok(()) => {
            sync_dir(dir);
            Ok(LoadedKey {
                key: SigningKey::from_seed(seed),
                created: true,
            })
        }
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::AlreadyExists) =>
        {
            // Another process created it between our look and our link: use theirs.
            let key = load_signing_key(path)?
                .with_context(|| format!("{} vanished while being created", path.display()))?;
            Ok(LoadedKey {
                key,
                created: false,
            })
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

/// Writes the seed as hex into a new file readable by the owner only, synced to disk.
fn write_new(path: &Path, seed: &[u8; 32]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(hex::encode(seed).as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Makes the new directory entry durable, so a crash right after the first start cannot lose the
/// key while checkpoints signed with it survive. Best effort: not every platform can sync a
/// directory.
fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The key in `path`, or `None` if there is no such file.
pub fn load_signing_key(path: &Path) -> anyhow::Result<Option<SigningKey>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let seed = <[u8; 32]>::from_hex(text.trim())
        .ok()
        .with_context(|| format!("{} does not hold a 32-byte hex seed", path.display()))?;
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

/// The key of the console's CSRF tokens (HMAC-SHA256), derived from the signing key like the
/// pseudonym secret: servers sharing a database share the signing key, so a sign-in form served
/// by one is accepted by another.
pub fn console_secret(key: &SigningKey) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"stele-console-secret-v1");
    h.update(key.to_seed());
    h.finalize().into()
}

/// The key of viewer tokens (HMAC-SHA256, `crate::access::viewer`), derived from the signing key
/// like the others: every server sharing the key accepts the tokens any of them minted.
pub fn viewer_secret(key: &SigningKey) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"stele-viewer-secret-v1");
    h.update(key.to_seed());
    h.finalize().into()
}

/// The secret log streams' webhook secrets are derived from (`crate::streams::StreamSecrets`):
/// every server sharing the signing key derives the same ones, and none is stored.
pub fn streams_secret(key: &SigningKey) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"stele-streams-secret-v1");
    h.update(key.to_seed());
    h.finalize().into()
}

/// The key of password-set links (`crate::access::members::password_link`), derived from the
/// signing key like the others.
pub fn password_link_secret(key: &SigningKey) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"stele-password-link-secret-v1");
    h.update(key.to_seed());
    h.finalize().into()
}

/// Signs and checks short bearer tokens with one of the secrets above: claims as JSON, then an
/// HMAC-SHA256 of it, both base64url, behind a prefix that says what the token is (`svt_` viewer
/// tokens, `crate::access::viewer`; `psl_` password-set links, `crate::access::members`). What
/// the claims mean and when they expire is the caller's; this only vouches that they were signed
/// with this secret.
#[derive(Clone)]
pub struct TokenSigner {
    secret: [u8; 32],
}

/// Why a token's signature does not check out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("not a token of this kind")]
    Malformed,
    #[error("the token's signature is not valid")]
    BadSignature,
}

type HmacSha256 = hmac::Hmac<hmac_sha2::Sha256>;

impl TokenSigner {
    pub fn new(secret: [u8; 32]) -> TokenSigner {
        TokenSigner { secret }
    }

    /// The token text of any claims.
    pub fn sign_claims<T: serde::Serialize>(&self, prefix: &str, claims: &T) -> String {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use hmac::Mac as _;
        let payload = serde_json::to_vec(claims).expect("claims serialize");
        let payload = URL_SAFE_NO_PAD.encode(payload);
        let mut mac = self.hmac();
        mac.update(payload.as_bytes());
        let mac = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{prefix}{payload}.{mac}")
    }

    /// The claims of a token this signer signed with this prefix.
    pub fn verify_claims<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &str,
        token: &str,
    ) -> Result<T, SignatureError> {
        use base64::Engine as _;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use hmac::Mac as _;
        let body = token
            .strip_prefix(prefix)
            .ok_or(SignatureError::Malformed)?;
        let (payload, mac) = body.split_once('.').ok_or(SignatureError::Malformed)?;
        let mac = URL_SAFE_NO_PAD
            .decode(mac)
            .map_err(|_| SignatureError::Malformed)?;
        let mut check = self.hmac();
        check.update(payload.as_bytes());
        // Constant-time comparison (the `hmac` crate's own).
        check
            .verify_slice(&mac)
            .map_err(|_| SignatureError::BadSignature)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| SignatureError::Malformed)?;
        serde_json::from_slice(&payload).map_err(|_| SignatureError::Malformed)
    }

    fn hmac(&self) -> HmacSha256 {
        use hmac::digest::KeyInit as _;
        HmacSha256::new_from_slice(&self.secret).expect("any key length")
    }
}

/// The public key of the signing key in `path`, if there is one.
pub fn public_key(path: &Path) -> anyhow::Result<Option<PublicKey>> {
    Ok(load_signing_key(path)?.map(|k| k.public_key()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_created_once_and_kept_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(dir.path(), None);
        let first = load_or_create_signing_key(&path).unwrap();
        let again = load_or_create_signing_key(&path).unwrap();
        assert!(first.created && !again.created);
        assert_eq!(first.key.public_key(), again.key.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind: {left:?}");
    }

    #[test]
    fn processes_starting_together_on_one_new_key_file_all_get_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = key_path(dir.path(), Some(&dir.path().join("shared").join("key")));
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
        let loaded: Vec<LoadedKey> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    let (barrier, path) = (barrier.clone(), path.clone());
                    s.spawn(move || {
                        barrier.wait();
                        load_or_create_signing_key(&path).unwrap()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(loaded.iter().filter(|l| l.created).count(), 1);
        let expected = load_signing_key(&path).unwrap().unwrap().public_key();
        for l in &loaded {
            assert_eq!(l.key.public_key(), expected);
        }
    }
}
