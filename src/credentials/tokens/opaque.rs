//! Opaque secrets (refresh tokens): 256 bits from the OS RNG, base64url, stored only as their
//! SHA-256. A fast hash is right here: the input is uniformly random, not a password.
//!
//! `seal_successor`/`unseal_successor` let a refresh retried within the grace window get the
//! same successor back although only hashes are stored: the successor is encrypted (AES-256-GCM)
//! under a key derived (HKDF-SHA256) from the spent token, which the database never holds.
//! Each derived key seals exactly one message, so a fixed nonce is safe.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, Salt};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

const TOKEN_BYTES: usize = 32;
const SEAL_INFO: &[u8] = b"sessiond refresh successor v1";

/// A fresh random token, 256 bits, base64url without padding (43 characters).
pub fn generate() -> SecretString {
    let mut bytes = [0u8; TOKEN_BYTES];
    OsRng
        .try_fill_bytes(&mut bytes)
        .expect("the OS random number generator failed");
    SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// A cheap shape check before any database work: our tokens are 43 base64url characters.
pub fn looks_valid(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn successor_key(spent: &SecretString) -> LessSafeKey {
    let prk = Salt::new(HKDF_SHA256, &[]).extract(spent.expose_secret().as_bytes());
    let okm = prk
        .expand(&[SEAL_INFO], &AES_256_GCM)
        .expect("HKDF output length matches AES-256");
    LessSafeKey::new(UnboundKey::from(okm))
}

pub fn seal_successor(spent: &SecretString, successor: &SecretString) -> Vec<u8> {
    let key = successor_key(spent);
    let mut buffer = successor.expose_secret().as_bytes().to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key([0; 12]),
        Aad::empty(),
        &mut buffer,
    )
    .expect("AES-GCM sealing cannot fail for short inputs");
    buffer
}

pub fn unseal_successor(spent: &SecretString, sealed: &[u8]) -> Option<SecretString> {
    let key = successor_key(spent);
    let mut buffer = sealed.to_vec();
    let plain = key
        .open_in_place(
            Nonce::assume_unique_for_key([0; 12]),
            Aad::empty(),
            &mut buffer,
        )
        .ok()?;
    String::from_utf8(plain.to_vec())
        .ok()
        .map(SecretString::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_well_formed_and_hash_to_32_bytes() {
        let a = generate();
        let b = generate();
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(looks_valid(a.expose_secret()));
        assert_eq!(hash(a.expose_secret()).len(), 32);
        assert!(!looks_valid("short"));
    }

    #[test]
    fn only_the_spent_token_unseals_its_successor() {
        let spent = generate();
        let successor = generate();
        let sealed = seal_successor(&spent, &successor);
        assert!(
            !sealed
                .windows(8)
                .any(|w| successor.expose_secret().as_bytes().starts_with(w))
        );
        let opened = unseal_successor(&spent, &sealed).unwrap();
        assert_eq!(opened.expose_secret(), successor.expose_secret());
        assert!(unseal_successor(&generate(), &sealed).is_none());
    }
}
