//! Private signing keys sealed at rest. With a key-encryption key (KEK) configured
//! (`keys.encryption_key`, 32 bytes, base64), every private key is stored as
//! `"SKS2" || KEK id (8 bytes) || nonce (12) || AES-256-GCM(PKCS#8, aad)`, where the associated
//! data binds the row's `kid`, `alg` and public key: a database dump or backup holds no usable
//! signing key, and a sealed key cannot be moved to another row, nor paired with another
//! public key or algorithm. The KEK id (the first 8 bytes of its SHA-256) says which key sealed
//! a row, so KEKs can be rotated: the old ones stay in `keys.old_encryption_keys` until
//! `sessiond keys seal` has re-sealed every row under the current one. `"SKS1"` rows (sealed
//! by earlier versions, bound to the `kid` only) still open and are re-sealed the same way.
//!
//! Rows without a prefix are plain PKCS#8, written before sealing was configured. Without a
//! KEK they are what there is; with one they are never opened silently: the key ring seals
//! them as it reads them (with a log line), and [`KeyEncryption::open`] refuses them. The
//! other way round, a process without the KEK refuses to add a plain key to a database whose
//! keys are sealed ([`KeyEncryption::may_add_to`]), so a `keys rotate` from a shell that lacks
//! the KEK cannot slip a plaintext signing key under a sealed service.

use anyhow::{Context, anyhow, bail};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::config::KeySettings;

const MAGIC: &[u8; 4] = b"SKS2";
/// Sealed by earlier versions: the associated data is the `kid` alone.
const MAGIC_V1: &[u8; 4] = b"SKS1";
const KEK_ID_LEN: usize = 8;

/// What a sealed private key is bound to: the row it belongs to.
#[derive(Debug, Clone, Copy)]
pub struct KeyBinding<'a> {
    pub kid: &'a str,
    pub alg: &'a str,
    /// The public key, as the row stores it (its JWK text).
    pub public_jwk: &'a str,
}

impl KeyBinding<'_> {
    /// The associated data: each part length-prefixed, so no two bindings encode alike.
    fn aad(&self) -> Vec<u8> {
        let mut aad = b"sessiond signing key v2".to_vec();
        for part in [self.kid, self.alg, self.public_jwk] {
            aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
            aad.extend_from_slice(part.as_bytes());
        }
        aad
    }
}

/// Whether a stored private key is sealed (under any KEK, any version).
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(MAGIC) || stored.starts_with(MAGIC_V1)
}

struct Kek {
    id: [u8; KEK_ID_LEN],
    key: LessSafeKey,
}

/// The configured key-encryption keys: the current one seals, any of them opens.
pub struct KeyEncryption {
    current: Option<Kek>,
    old: Vec<Kek>,
}

impl KeyEncryption {
    /// The key-encryption keys a configuration names (`keys.encryption_key` and
    /// `keys.old_encryption_keys`).
    pub fn from_settings(keys: &KeySettings) -> anyhow::Result<Self> {
        KeyEncryption::new(keys.encryption_key.as_ref(), &keys.old_encryption_keys)
    }

    pub fn new(current: Option<&SecretString>, old: &[SecretString]) -> anyhow::Result<Self> {
        let current = current
            .filter(|k| !k.expose_secret().is_empty())
            .map(|k| kek(k).context("keys.encryption_key"))
            .transpose()?;
        let old = old
            .iter()
            .map(|k| kek(k).context("keys.old_encryption_keys"))
            .collect::<anyhow::Result<_>>()?;
        Ok(KeyEncryption { current, old })
    }

    /// No KEK: keys are stored as plain PKCS#8.
    pub fn none() -> Self {
        KeyEncryption {
            current: None,
            old: Vec::new(),
        }
    }

    pub fn configured(&self) -> bool {
        self.current.is_some()
    }

    /// The stored form of a new private key: sealed under the current KEK when there is one.
    pub fn seal(&self, binding: KeyBinding<'_>, pkcs8: &[u8]) -> anyhow::Result<Vec<u8>> {
        let what = format!("signing key {}", binding.kid);
        self.seal_bound(&binding.aad(), pkcs8, &what)
    }

    /// The PKCS#8 of a stored key. A plain row opens only while no KEK is configured.
    pub fn open(&self, binding: KeyBinding<'_>, stored: &[u8]) -> anyhow::Result<Vec<u8>> {
        let what = format!("signing key {}", binding.kid);
        if let Some(rest) = stored.strip_prefix(MAGIC_V1) {
            return self.open_bound(rest, binding.kid.as_bytes(), &what);
        }
        self.open_sealed(&binding.aad(), stored, &what)
    }

    /// Another secret kept at rest (a TOTP secret), sealed like a signing key and bound to
    /// what it belongs to (`context`, `owner`): a sealed secret cannot be moved to another row.
    pub fn seal_secret(&self, context: &str, owner: &str, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        self.seal_bound(&secret_aad(context, owner), plain, context)
    }

    /// The plain form of a secret [`KeyEncryption::seal_secret`] stored.
    pub fn open_secret(
        &self,
        context: &str,
        owner: &str,
        stored: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        self.open_sealed(&secret_aad(context, owner), stored, context)
    }

    fn seal_bound(&self, aad: &[u8], plain: &[u8], what: &str) -> anyhow::Result<Vec<u8>> {
        let Some(kek) = &self.current else {
            return Ok(plain.to_vec());
        };
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| anyhow!("no randomness for a nonce"))?;
        let mut sealed = plain.to_vec();
        kek.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut sealed,
            )
            .map_err(|_| anyhow!("could not seal {what}"))?;
        let mut stored = Vec::with_capacity(MAGIC.len() + KEK_ID_LEN + NONCE_LEN + sealed.len());
        stored.extend_from_slice(MAGIC);
        stored.extend_from_slice(&kek.id);
        stored.extend_from_slice(&nonce);
        stored.extend_from_slice(&sealed);
        Ok(stored)
    }

    /// Opens a current-format row; a plain one only while no KEK is configured.
    fn open_sealed(&self, aad: &[u8], stored: &[u8], what: &str) -> anyhow::Result<Vec<u8>> {
        if let Some(rest) = stored.strip_prefix(MAGIC) {
            self.open_bound(rest, aad, what)
        } else if self.configured() {
            bail!(
                "{what} is stored in plaintext while keys.encryption_key is set: \
                 refusing it (run `sessiond keys seal`, or restart the service, which seals it)"
            );
        } else {
            Ok(stored.to_vec())
        }
    }

    fn open_bound(&self, rest: &[u8], aad: &[u8], what: &str) -> anyhow::Result<Vec<u8>> {
        if rest.len() < KEK_ID_LEN + NONCE_LEN {
            bail!("{what} is truncated");
        }
        let (id, rest) = rest.split_at(KEK_ID_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let kek = self
            .current
            .iter()
            .chain(&self.old)
            .find(|k| k.id == id)
            .ok_or_else(|| {
                anyhow!(
                    "{what} is sealed with a key-encryption key this instance does \
                     not have (set keys.encryption_key, or list the old one in \
                     keys.old_encryption_keys)"
                )
            })?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow!("bad nonce"))?;
        let mut buffer = sealed.to_vec();
        let plain = kek
            .key
            .open_in_place(nonce, Aad::from(aad), &mut buffer)
            .map_err(|_| anyhow!("{what} does not open: damaged or moved"))?;
        Ok(plain.to_vec())
    }

    /// True when `stored` is already sealed under the current KEK in the current format
    /// (nothing for `keys seal`).
    pub fn is_current(&self, stored: &[u8]) -> bool {
        match (&self.current, stored.strip_prefix(MAGIC)) {
            (Some(kek), Some(rest)) => rest.starts_with(&kek.id),
            _ => false,
        }
    }

    /// Whether this process may add a key next to `existing` stored keys: not a plain one
    /// (no KEK here) beside sealed ones.
    pub fn may_add_to<'a>(
        &self,
        mut existing: impl Iterator<Item = &'a [u8]>,
    ) -> anyhow::Result<()> {
        if !self.configured() && existing.any(is_sealed) {
            bail!(
                "the signing keys in this database are sealed, and keys.encryption_key \
                 (SESSIOND__KEYS__ENCRYPTION_KEY) is not set here: refusing to store a new key \
                 in plaintext"
            );
        }
        Ok(())
    }
}

/// The associated data of a secret: its context and owner, each length-prefixed.
fn secret_aad(context: &str, owner: &str) -> Vec<u8> {
    let mut aad = b"sessiond secret v1".to_vec();
    for part in [context, owner] {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

fn kek(encoded: &SecretString) -> anyhow::Result<Kek> {
    let bytes = STANDARD
        .decode(encoded.expose_secret().trim())
        .map_err(|_| {
            anyhow!("must be 32 bytes in standard base64 (e.g. `openssl rand -base64 32`)")
        })?;
    if bytes.len() != 32 {
        bail!("must be 32 bytes in standard base64 (e.g. `openssl rand -base64 32`)");
    }
    let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| anyhow!("not an AES-256 key"))?;
    let digest = Sha256::digest(&bytes);
    let mut id = [0u8; KEK_ID_LEN];
    id.copy_from_slice(&digest[..KEK_ID_LEN]);
    Ok(Kek {
        id,
        key: LessSafeKey::new(key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretString {
        SecretString::from(STANDARD.encode([byte; 32]))
    }

    const A: KeyBinding<'static> = KeyBinding {
        kid: "kid-a",
        alg: "ES256",
        public_jwk: "{\"x\":\"1\"}",
    };

    #[test]
    fn a_sealed_secret_opens_only_for_its_owner_and_context() {
        let secret = b"twenty bytes of totp".to_vec();
        let sealing = KeyEncryption::new(Some(&key(1)), &[]).unwrap();
        let stored = sealing.seal_secret("totp", "user-1", &secret).unwrap();
        assert!(!stored.windows(secret.len()).any(|w| w == secret.as_slice()));
        assert_eq!(
            sealing.open_secret("totp", "user-1", &stored).unwrap(),
            secret
        );
        assert!(
            sealing.open_secret("totp", "user-2", &stored).is_err(),
            "bound to its owner"
        );
        assert!(sealing.open_secret("other", "user-1", &stored).is_err());
        let none = KeyEncryption::none();
        let plain = none.seal_secret("totp", "user-1", &secret).unwrap();
        assert_eq!(none.open_secret("totp", "user-1", &plain).unwrap(), secret);
        assert!(
            sealing.open_secret("totp", "user-1", &plain).is_err(),
            "no silent plaintext"
        );
    }

    #[test]
    fn a_sealed_key_opens_only_under_its_kek_and_its_row() {
        let pkcs8 = b"0\x81\x87 pretend this is PKCS#8".to_vec();
        let sealing = KeyEncryption::new(Some(&key(1)), &[]).unwrap();
        let stored = sealing.seal(A, &pkcs8).unwrap();
        assert!(stored.starts_with(MAGIC));
        assert!(!stored.windows(pkcs8.len()).any(|w| w == pkcs8.as_slice()));
        assert_eq!(sealing.open(A, &stored).unwrap(), pkcs8);
        let moved = KeyBinding { kid: "kid-b", ..A };
        assert!(sealing.open(moved, &stored).is_err(), "bound to its kid");
        let other_alg = KeyBinding { alg: "EdDSA", ..A };
        assert!(
            sealing.open(other_alg, &stored).is_err(),
            "bound to its alg"
        );
        let other_public = KeyBinding {
            public_jwk: "{\"x\":\"2\"}",
            ..A
        };
        assert!(
            sealing.open(other_public, &stored).is_err(),
            "bound to its public key"
        );
        let other = KeyEncryption::new(Some(&key(2)), &[]).unwrap();
        assert!(other.open(A, &stored).is_err(), "needs its KEK");
        let rotated = KeyEncryption::new(Some(&key(2)), &[key(1)]).unwrap();
        assert_eq!(rotated.open(A, &stored).unwrap(), pkcs8);
        assert!(!rotated.is_current(&stored) && sealing.is_current(&stored));
    }

    #[test]
    fn rows_sealed_by_earlier_versions_open_and_are_not_current() {
        // "SKS1": the associated data was the kid alone.
        let pkcs8 = b"0\x81\x87 older".to_vec();
        let sealing = KeyEncryption::new(Some(&key(1)), &[]).unwrap();
        let kek = sealing.current.as_ref().unwrap();
        let nonce = [7u8; NONCE_LEN];
        let mut sealed = pkcs8.clone();
        kek.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(A.kid.as_bytes()),
                &mut sealed,
            )
            .unwrap();
        let stored = [MAGIC_V1.as_slice(), &kek.id, &nonce, &sealed].concat();
        assert_eq!(sealing.open(A, &stored).unwrap(), pkcs8);
        assert!(
            !sealing.is_current(&stored),
            "keys seal re-seals it as SKS2"
        );
    }

    #[test]
    fn plain_rows_open_only_without_a_kek_and_bad_keks_are_refused() {
        let plain = b"0\x81\x87 plain".to_vec();
        assert_eq!(KeyEncryption::none().open(A, &plain).unwrap(), plain);
        assert_eq!(KeyEncryption::none().seal(A, &plain).unwrap(), plain);
        let sealing = KeyEncryption::new(Some(&key(1)), &[]).unwrap();
        let refused = sealing.open(A, &plain).unwrap_err().to_string();
        assert!(refused.contains("plaintext"), "{refused}");
        assert!(KeyEncryption::new(Some(&SecretString::from("short".to_string())), &[]).is_err());
    }

    #[test]
    fn without_the_kek_no_plain_key_joins_sealed_ones() {
        let sealing = KeyEncryption::new(Some(&key(1)), &[]).unwrap();
        let sealed = sealing.seal(A, b"pkcs8").unwrap();
        let plain = b"pkcs8".to_vec();
        let keyless = KeyEncryption::none();
        let refused = keyless
            .may_add_to([sealed.as_slice()].into_iter())
            .unwrap_err()
            .to_string();
        assert!(refused.contains("keys.encryption_key"), "{refused}");
        assert!(keyless.may_add_to([plain.as_slice()].into_iter()).is_ok());
        assert!(keyless.may_add_to(std::iter::empty()).is_ok());
        assert!(sealing.may_add_to([sealed.as_slice()].into_iter()).is_ok());
    }
}
