//! Private signing keys sealed at rest. With a key-encryption key (KEK) configured
//! (`keys.encryption_key`, 32 bytes, base64), every private key is stored as
//! `"SKS1" || KEK id (8 bytes) || nonce (12) || AES-256-GCM(PKCS#8, aad = kid)`, so a database
//! dump or backup holds no usable signing key, and a sealed key cannot be moved to another
//! `kid` row. The KEK id (the first 8 bytes of its SHA-256) says which key sealed a row, so
//! KEKs can be rotated: the old ones stay in `keys.old_encryption_keys` until `sessiond keys
//! seal` has re-sealed every row under the current one. Rows without the prefix are plain
//! PKCS#8 (written before sealing was configured); they keep working and are sealed by
//! `sessiond keys seal`.

use anyhow::{Context, anyhow, bail};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

const MAGIC: &[u8; 4] = b"SKS1";
const KEK_ID_LEN: usize = 8;

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
    pub fn seal(&self, kid: &str, pkcs8: &[u8]) -> anyhow::Result<Vec<u8>> {
        let Some(kek) = &self.current else {
            return Ok(pkcs8.to_vec());
        };
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| anyhow!("no randomness for a nonce"))?;
        let mut sealed = pkcs8.to_vec();
        kek.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| anyhow!("could not seal signing key {kid}"))?;
        let mut stored = Vec::with_capacity(MAGIC.len() + KEK_ID_LEN + NONCE_LEN + sealed.len());
        stored.extend_from_slice(MAGIC);
        stored.extend_from_slice(&kek.id);
        stored.extend_from_slice(&nonce);
        stored.extend_from_slice(&sealed);
        Ok(stored)
    }

    /// The PKCS#8 of a stored key, sealed or plain.
    pub fn open(&self, kid: &str, stored: &[u8]) -> anyhow::Result<Vec<u8>> {
        let Some(rest) = stored.strip_prefix(MAGIC) else {
            return Ok(stored.to_vec());
        };
        if rest.len() < KEK_ID_LEN + NONCE_LEN {
            bail!("signing key {kid} is truncated");
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
                    "signing key {kid} is sealed with a key-encryption key this instance does \
                     not have (set keys.encryption_key, or list the old one in \
                     keys.old_encryption_keys)"
                )
            })?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow!("bad nonce"))?;
        let mut buffer = sealed.to_vec();
        let plain = kek
            .key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buffer)
            .map_err(|_| anyhow!("signing key {kid} does not open: damaged or moved"))?;
        Ok(plain.to_vec())
    }

    /// True when `stored` is already sealed under the current KEK (nothing for `keys seal`).
    pub fn is_current(&self, stored: &[u8]) -> bool {
        match (&self.current, stored.strip_prefix(MAGIC)) {
            (Some(kek), Some(rest)) => rest.starts_with(&kek.id),
            _ => false,
        }
    }
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

    #[test]
    fn a_sealed_key_opens_only_under_its_kek_and_its_kid() {
        let pkcs8 = b"0\x81\x87 pretend this is PKCS#8".to_vec();
        let sealing = KeyEncryption::new(Some(&key(1)), &[]).unwrap();
        let stored = sealing.seal("kid-a", &pkcs8).unwrap();
        assert!(stored.starts_with(MAGIC));
        assert!(!stored.windows(pkcs8.len()).any(|w| w == pkcs8.as_slice()));
        assert_eq!(sealing.open("kid-a", &stored).unwrap(), pkcs8);
        assert!(sealing.open("kid-b", &stored).is_err(), "bound to its kid");
        let other = KeyEncryption::new(Some(&key(2)), &[]).unwrap();
        assert!(other.open("kid-a", &stored).is_err(), "needs its KEK");
        let rotated = KeyEncryption::new(Some(&key(2)), &[key(1)]).unwrap();
        assert_eq!(rotated.open("kid-a", &stored).unwrap(), pkcs8);
        assert!(!rotated.is_current(&stored) && sealing.is_current(&stored));
    }

    #[test]
    fn plain_rows_pass_through_and_bad_keks_are_refused() {
        let plain = b"0\x81\x87 plain".to_vec();
        assert_eq!(KeyEncryption::none().open("k", &plain).unwrap(), plain);
        assert_eq!(KeyEncryption::none().seal("k", &plain).unwrap(), plain);
        assert!(KeyEncryption::new(Some(&SecretString::from("short".to_string())), &[]).is_err());
    }
}
