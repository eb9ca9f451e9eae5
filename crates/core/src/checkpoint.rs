//! Signed checkpoints: the server's Ed25519-signed statement of an organization's log at one
//! `seq`.
//!
//! A [`Checkpoint`] says: the entries of `org_id` with `seq` 1 up to `seq` hash-chain to
//! `chain_head`, and the RFC 6962 Merkle tree over them (see [`crate::merkle`]) has the root
//! `merkle_root`; the server made this statement at `created_at`. `seq` is therefore also the
//! size of the tree; a checkpoint of an organization without entries has `seq` 0 and the
//! Merkle root [`crate::merkle::empty_root`].
//!
//! # The signed message (`stele-checkpoint-v1`)
//!
//! The Ed25519 signature (RFC 8032, pure Ed25519, no prehash) covers exactly the bytes that
//! [`Checkpoint::signing_bytes`] returns: six lines of UTF-8 text, each ended by a single line
//! feed (`\n`, 0x0A), including the last, with no carriage returns, no other whitespace and no
//! byte order mark:
//!
//! ```text
//! stele-checkpoint-v1
//! {org_id}
//! {seq}
//! {chain_head}
//! {merkle_root}
//! {created_at}
//! ```
//!
//! 1. the literal `stele-checkpoint-v1`, the format and its version;
//! 2. `org_id`, the organization's public id, byte for byte as in the checkpoint's JSON;
//! 3. `seq` in decimal ASCII, no sign for non-negative values, no leading zeros, no separators;
//! 4. `chain_head` as 64 lowercase hex digits;
//! 5. `merkle_root` as 64 lowercase hex digits;
//! 6. `created_at` as RFC 3339 in UTC with exactly three fractional digits and a `Z`:
//!    `2026-01-02T03:04:05.678Z`.
//!
//! For example:
//!
//! ```text
//! stele-checkpoint-v1
//! org_01
//! 42
//! 0000000000000000000000000000000000000000000000000000000000000000
//! e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
//! 2026-01-02T02:50:45.678Z
//! ```
//!
//! An auditor can rebuild it from the JSON with, say,
//! `printf 'stele-checkpoint-v1\n%s\n%s\n%s\n%s\n%s\n' "$org" "$seq" "$head" "$root" "$time"`,
//! taking care to lowercase the hex and to normalize `created_at` to the form above (the JSON
//! the server writes is already in that form).
//!
//! # JSON
//!
//! A [`SignedCheckpoint`] is one flat object:
//!
//! ```json
//! {"org_id":"org_01","seq":42,"chain_head":"00…00","merkle_root":"e3b0…b855",
//!  "created_at":"2026-01-02T02:50:45.678Z","key_id":"1a2b3c4d5e6f7081","signature":"<128 hex digits>"}
//! ```
//!
//! `key_id` is the first 8 bytes of SHA-256 over the 32-byte Ed25519 public key, in hex
//! ([`PublicKey::key_id`]); it names the key, the signature does not depend on it.

use std::fmt;

use ed25519_dalek::Signer;
use hex::FromHex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::merkle::Hash;
use crate::seq::Seq;
use crate::time::{Millis, format_rfc3339};

/// The first line of the signed message: the format and its version.
pub const SIGNING_FORMAT: &str = "stele-checkpoint-v1";

/// What the server vouches for at one point of an organization's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The organization's public id.
    pub org_id: String,
    /// The last `seq` covered, which is also the size of the Merkle tree.
    pub seq: Seq,
    /// The hash-chain value at `seq`.
    #[serde(with = "hex_hash")]
    pub chain_head: Hash,
    /// The Merkle tree root over the entries `1..=seq`.
    #[serde(with = "hex_hash")]
    pub merkle_root: Hash,
    /// When the checkpoint was made. Must lie in the years 0000 to 9999, or the checkpoint does not
    /// serialize.
    #[serde(with = "rfc3339")]
    pub created_at: Millis,
}

impl Checkpoint {
    /// The exact bytes the signature covers; see the [module documentation](self) for the format.
    pub fn signing_bytes(&self) -> Vec<u8> {
        format!(
            "{SIGNING_FORMAT}\n{}\n{}\n{}\n{}\n{}\n",
            self.org_id,
            self.seq,
            hex::encode(self.chain_head),
            hex::encode(self.merkle_root),
            format_rfc3339(self.created_at),
        )
        .into_bytes()
    }
}

/// A checkpoint with the Ed25519 signature over its [`Checkpoint::signing_bytes`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
    /// [`PublicKey::key_id`] of the signing key.
    pub key_id: String,
    /// The 64-byte Ed25519 signature in lowercase hex.
    pub signature: String,
}

impl SignedCheckpoint {
    /// Checks that `key` made this signature over this checkpoint.
    pub fn verify(&self, key: &PublicKey) -> Result<(), CheckpointError> {
        let expected = key.key_id();
        if !self.key_id.eq_ignore_ascii_case(&expected) {
            return Err(CheckpointError::WrongKey {
                expected,
                found: self.key_id.clone(),
            });
        }
        let bytes = <[u8; 64]>::from_hex(&self.signature)
            .map_err(|_| CheckpointError::MalformedSignature)?;
        let signature = ed25519_dalek::Signature::from_bytes(&bytes);
        key.0
            .verify_strict(&self.checkpoint.signing_bytes(), &signature)
            .map_err(|_| CheckpointError::BadSignature)
    }
}

/// Why a [`SignedCheckpoint`] did not verify.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CheckpointError {
    #[error("the checkpoint is signed by key {found}, not by key {expected}")]
    WrongKey { expected: String, found: String },
    #[error("the checkpoint signature is not 128 hex digits")]
    MalformedSignature,
    #[error("the checkpoint signature does not match its contents")]
    BadSignature,
}

/// The server's checkpoint signing key (Ed25519). Its `Debug` shows the key id, never the secret.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// The key for a 32-byte secret seed (RFC 8032 private key).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(ed25519_dalek::SigningKey::from_bytes(&seed))
    }

    /// The 32-byte secret seed, what the server stores.
    pub fn to_seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `checkpoint`'s [`Checkpoint::signing_bytes`].
    pub fn sign(&self, checkpoint: &Checkpoint) -> SignedCheckpoint {
        let signature = self.0.sign(&checkpoint.signing_bytes());
        SignedCheckpoint {
            checkpoint: checkpoint.clone(),
            key_id: self.public_key().key_id(),
            signature: hex::encode(signature.to_bytes()),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.public_key().key_id())
            .finish_non_exhaustive()
    }
}

/// A checkpoint verification key (Ed25519 public key).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(ed25519_dalek::VerifyingKey);

impl PublicKey {
    /// The 32-byte public key as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// Parses 64 hex digits (either case); `None` unless they encode a valid Ed25519 point.
    pub fn from_hex(s: &str) -> Option<Self> {
        let bytes = <[u8; 32]>::from_hex(s).ok()?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .ok()
            .map(Self)
    }

    /// The first 8 bytes of SHA-256 over the 32 public key bytes, as 16 lowercase hex digits.
    pub fn key_id(&self) -> String {
        let digest = Sha256::digest(self.0.as_bytes());
        hex::encode(&digest[..8])
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey").field(&self.to_hex()).finish()
    }
}

/// A [`Hash`] as a lowercase hex string.
mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::merkle::{Hash, from_hex, to_hex};

    pub fn serialize<S: Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&to_hex(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
        let s = String::deserialize(deserializer)?;
        from_hex(&s).ok_or_else(|| D::Error::custom(format!("not a SHA-256 hash in hex: {s:?}")))
    }
}

/// [`Millis`] as an RFC 3339 string.
mod rfc3339 {
    use serde::{Deserialize, Deserializer, Serializer, de, ser};

    use crate::time::{Millis, format_rfc3339, parse_rfc3339};

    pub fn serialize<S: Serializer>(ms: &Millis, serializer: S) -> Result<S::Ok, S::Error> {
        let s = format_rfc3339(*ms);
        // Out of range values would format as something else (or as an unparsable year).
        if parse_rfc3339(&s) != Some(*ms) {
            return Err(<S::Error as ser::Error>::custom(format!(
                "timestamp {ms} ms is outside RFC 3339"
            )));
        }
        serializer.serialize_str(&s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Millis, D::Error> {
        let s = String::deserialize(deserializer)?;
        parse_rfc3339(&s).ok_or_else(|| {
            <D::Error as de::Error>::custom(format!("not an RFC 3339 timestamp: {s:?}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{empty_root, leaf_hash, to_hex};
    use crate::time::parse_rfc3339;

    fn key(n: u8) -> SigningKey {
        SigningKey::from_seed([n; 32])
    }

    fn checkpoint() -> Checkpoint {
        Checkpoint {
            org_id: "org_01".into(),
            seq: Seq::new(42),
            chain_head: [0; 32],
            merkle_root: empty_root(),
            created_at: 1_767_322_245_678,
        }
    }

    #[test]
    fn signing_bytes_golden() {
        let bytes = checkpoint().signing_bytes();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "stele-checkpoint-v1\n\
             org_01\n\
             42\n\
             0000000000000000000000000000000000000000000000000000000000000000\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             2026-01-02T02:50:45.678Z\n"
        );

        let other = Checkpoint {
            org_id: "org_x".into(),
            seq: Seq::BEFORE_FIRST,
            chain_head: [0xab; 32],
            merkle_root: [0x0f; 32],
            created_at: 0,
        };
        assert_eq!(
            String::from_utf8(other.signing_bytes()).unwrap(),
            format!(
                "stele-checkpoint-v1\norg_x\n0\n{}\n{}\n1970-01-01T00:00:00.000Z\n",
                "ab".repeat(32),
                "0f".repeat(32)
            )
        );
    }

    #[test]
    fn round_trip() {
        let k = key(7);
        let signed = k.sign(&checkpoint());
        assert_eq!(signed.checkpoint, checkpoint());
        assert_eq!(signed.key_id, k.public_key().key_id());
        assert_eq!(signed.signature.len(), 128);
        assert_eq!(signed.verify(&k.public_key()), Ok(()));
        // Ed25519 is deterministic.
        assert_eq!(k.sign(&checkpoint()), signed);
    }

    #[test]
    fn signature_is_plain_ed25519_over_the_signing_bytes() {
        let k = key(7);
        let signed = k.sign(&checkpoint());
        let vk = ed25519_dalek::VerifyingKey::from_bytes(
            &FromHex::from_hex(k.public_key().to_hex()).unwrap(),
        )
        .unwrap();
        let sig =
            ed25519_dalek::Signature::from_bytes(&FromHex::from_hex(&signed.signature).unwrap());
        vk.verify_strict(&checkpoint().signing_bytes(), &sig)
            .unwrap();
    }

    #[test]
    fn any_changed_field_fails() {
        let k = key(7);
        let good = k.sign(&checkpoint());
        let changes: [fn(&mut Checkpoint); 6] = [
            |c| c.seq = c.seq.next(),
            |c| c.chain_head[31] ^= 1,
            |c| c.merkle_root[0] ^= 0x80,
            |c| c.org_id = "org_02".into(),
            |c| c.org_id.push('\n'),
            |c| c.created_at += 1,
        ];
        for change in changes {
            let mut bad = good.clone();
            change(&mut bad.checkpoint);
            assert_eq!(
                bad.verify(&k.public_key()),
                Err(CheckpointError::BadSignature),
                "{:?}",
                bad.checkpoint
            );
        }
    }

    #[test]
    fn another_key_fails() {
        let (a, b) = (key(1), key(2));
        let signed = a.sign(&checkpoint());
        assert!(matches!(
            signed.verify(&b.public_key()),
            Err(CheckpointError::WrongKey { .. })
        ));

        // Claiming the other key's id does not help.
        let mut forged = signed.clone();
        forged.key_id = b.public_key().key_id();
        assert_eq!(
            forged.verify(&b.public_key()),
            Err(CheckpointError::BadSignature)
        );

        // Nor does the other key's signature under this key's id.
        let mut swapped = signed.clone();
        swapped.signature = b.sign(&checkpoint()).signature;
        assert_eq!(
            swapped.verify(&a.public_key()),
            Err(CheckpointError::BadSignature)
        );
    }

    #[test]
    fn malformed_signatures_fail() {
        let k = key(3);
        let good = k.sign(&checkpoint());
        for sig in [
            String::new(),
            "00".into(),
            good.signature[..126].to_string(),
            format!("{}00", good.signature),
            format!("{}zz", &good.signature[..126]),
        ] {
            let mut bad = good.clone();
            bad.signature = sig;
            assert_eq!(
                bad.verify(&k.public_key()),
                Err(CheckpointError::MalformedSignature)
            );
        }
        let mut zeros = good.clone();
        zeros.signature = "0".repeat(128);
        assert_eq!(
            zeros.verify(&k.public_key()),
            Err(CheckpointError::BadSignature)
        );
        let mut flipped = good.clone();
        flipped.signature.replace_range(
            0..2,
            if good.signature.starts_with("00") {
                "01"
            } else {
                "00"
            },
        );
        assert_eq!(
            flipped.verify(&k.public_key()),
            Err(CheckpointError::BadSignature)
        );
    }

    #[test]
    fn json_round_trip_keeps_it_verifiable() {
        let k = key(9);
        let mut c = checkpoint();
        c.merkle_root = leaf_hash(b"root");
        let signed = k.sign(&c);
        let json = serde_json::to_string(&signed).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "org_id": "org_01",
                "seq": 42,
                "chain_head": "0".repeat(64),
                "merkle_root": to_hex(&c.merkle_root),
                "created_at": "2026-01-02T02:50:45.678Z",
                "key_id": k.public_key().key_id(),
                "signature": signed.signature,
            })
        );
        let back: SignedCheckpoint = serde_json::from_str(&json).unwrap();
        assert_eq!(back, signed);
        assert_eq!(back.verify(&k.public_key()), Ok(()));

        // What the signature covers is the values, not their spelling in JSON.
        let mut respelled = value.clone();
        respelled["merkle_root"] = to_hex(&c.merkle_root).to_uppercase().into();
        respelled["created_at"] = "2026-01-02T04:50:45.678+02:00".into();
        let back: SignedCheckpoint = serde_json::from_value(respelled).unwrap();
        assert_eq!(back.verify(&k.public_key()), Ok(()));
    }

    #[test]
    fn json_rejects_bad_fields() {
        let k = key(9);
        let value = serde_json::to_value(k.sign(&checkpoint())).unwrap();
        for (field, bad) in [
            ("chain_head", serde_json::json!("00")),
            ("merkle_root", serde_json::json!(42)),
            ("created_at", serde_json::json!("yesterday")),
            ("seq", serde_json::json!("42")),
        ] {
            let mut v = value.clone();
            v[field] = bad;
            assert!(
                serde_json::from_value::<SignedCheckpoint>(v).is_err(),
                "{field}"
            );
        }
        let mut missing = value.clone();
        missing.as_object_mut().unwrap().remove("signature");
        assert!(serde_json::from_value::<SignedCheckpoint>(missing).is_err());
    }

    #[test]
    fn out_of_range_time_does_not_serialize() {
        let mut c = checkpoint();
        c.created_at = i64::MAX;
        assert!(serde_json::to_string(&c).is_err());
        c.created_at = parse_rfc3339("9999-12-31T23:59:59.999Z").unwrap();
        assert!(serde_json::to_string(&c).is_ok());
    }

    #[test]
    fn keys() {
        let k = key(5);
        assert_eq!(
            SigningKey::from_seed(k.to_seed()).public_key(),
            k.public_key()
        );
        assert_eq!(k.to_seed(), [5; 32]);

        let pk = k.public_key();
        let hex = pk.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(PublicKey::from_hex(&hex), Some(pk));
        assert_eq!(PublicKey::from_hex(&hex.to_uppercase()), Some(pk));
        assert_eq!(PublicKey::from_hex(&hex[..62]), None);
        assert_eq!(PublicKey::from_hex("zz"), None);

        let id = pk.key_id();
        assert_eq!(id.len(), 16);
        assert_eq!(
            id,
            hex::encode(&Sha256::digest(<[u8; 32]>::from_hex(&hex).unwrap())[..8])
        );
        assert_ne!(id, key(6).public_key().key_id());
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 §7.1, TEST 1: this is plain Ed25519.
        let seed =
            FromHex::from_hex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
                .unwrap();
        let k = SigningKey::from_seed(seed);
        assert_eq!(
            k.public_key().to_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let k = key(0x42);
        let shown = format!("{k:?} {k:#?}");
        assert!(shown.contains(&k.public_key().key_id()), "{shown}");
        assert!(!shown.contains("66, 66"), "{shown}");
        assert!(!shown.contains(&hex::encode(k.to_seed())), "{shown}");
    }
}
