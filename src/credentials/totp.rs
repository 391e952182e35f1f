//! Time-based one-time passwords (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps), computed by
//! `totp-rs`, and the recovery codes that stand in for a lost authenticator.
//!
//! A code is accepted for the current step or one step either side (clock drift between the
//! phone and the server), and only for a step newer than the last one accepted: a code seen
//! once, by an observer or a replayed request, never works again.

use base64::Engine;
use rand::TryRngCore;
use rand::rngs::OsRng;
use secrecy::SecretString;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

pub const STEP_SECS: i64 = 30;
const DIGITS: usize = 6;
/// 160 bits, the length RFC 4226 recommends (and HMAC-SHA-1's block-friendly size).
const SECRET_BYTES: usize = 20;
pub const RECOVERY_CODES: usize = 10;
/// Steps either side of the current one that still count.
const DRIFT_STEPS: i64 = 1;

/// A user's TOTP secret (raw bytes). Never printed: no `Debug`.
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    pub fn generate() -> TotpSecret {
        let mut bytes = vec![0u8; SECRET_BYTES];
        OsRng
            .try_fill_bytes(&mut bytes)
            .expect("the OS random number generator failed");
        TotpSecret(bytes)
    }

    pub fn from_bytes(bytes: Vec<u8>) -> TotpSecret {
        TotpSecret(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn totp(&self, issuer: &str, account: &str) -> TOTP {
        // Unchecked: the checked constructor refuses a ':' in the account name, which an
        // email address may not have but a user id label could; the parameters are fixed here.
        TOTP::new_unchecked(
            Algorithm::SHA1,
            DIGITS,
            0,
            STEP_SECS as u64,
            self.0.clone(),
            Some(issuer.to_string()),
            account.to_string(),
        )
    }

    /// The secret in base32 (what authenticator apps accept typed in).
    pub fn base32(&self, issuer: &str) -> SecretString {
        SecretString::from(self.totp(issuer, "").get_secret_base32())
    }

    /// The `otpauth://totp/...` URI an authenticator app scans.
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> SecretString {
        SecretString::from(self.totp(issuer, account).get_url())
    }

    /// The step `code` is right for, if it is right for a step near `now` newer than
    /// `last_step` (the newest step already accepted).
    pub fn matching_step(&self, code: &str, now: i64, last_step: i64) -> Option<i64> {
        let code = code.trim();
        if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp("", "");
        let current = now.div_euclid(STEP_SECS);
        (current - DRIFT_STEPS..=current + DRIFT_STEPS)
            .filter(|step| *step > last_step && *step >= 0)
            .find(|step| {
                let expected = totp.generate((step * STEP_SECS) as u64);
                bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
            })
    }
}

/// Ten new recovery codes, `xxxx-xxxx-xxxx-xxxx` in lowercase base32 (80 bits each), and the
/// hashes that are stored of them.
pub fn new_recovery_codes() -> Vec<(SecretString, Vec<u8>)> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut bytes = [0u8; 10];
            OsRng
                .try_fill_bytes(&mut bytes)
                .expect("the OS random number generator failed");
            let text = base32_lower(&bytes);
            let code = format!(
                "{}-{}-{}-{}",
                &text[0..4],
                &text[4..8],
                &text[8..12],
                &text[12..16]
            );
            let hash = recovery_code_hash(&code);
            (SecretString::from(code), hash)
        })
        .collect()
}

/// What is stored of a recovery code: the SHA-256 of its normalized form (case, dashes and
/// spaces do not matter). A fast hash is right: the code is 80 random bits, not a password.
pub fn recovery_code_hash(typed: &str) -> Vec<u8> {
    let normalized: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    Sha256::digest(normalized.as_bytes()).to_vec()
}

fn base32_lower(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    out
}

/// Whether a stored secret opens to something of the right shape (a damaged row is refused,
/// not used).
pub fn looks_like_secret(bytes: &[u8]) -> bool {
    bytes.len() == SECRET_BYTES
}

/// For the audit trail: which recovery code was used, without the code (its hash's prefix).
pub fn code_fingerprint(hash: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&hash[..6.min(hash.len())])
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    /// RFC 6238, Appendix B: the SHA-1 secret "12345678901234567890"; the 8-digit values'
    /// last six digits are the 6-digit codes.
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        for (time, eight_digits) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            let code = &eight_digits[2..];
            assert_eq!(
                secret.matching_step(code, time, -1),
                Some(time / STEP_SECS),
                "t={time}"
            );
        }
    }

    #[test]
    fn a_code_counts_once_and_only_near_now() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let (time, code) = (1_111_111_109, "081804");
        let step = time / STEP_SECS;
        assert_eq!(
            secret.matching_step(code, time + 30, 0),
            Some(step),
            "one step late"
        );
        assert_eq!(
            secret.matching_step(code, time + 90, 0),
            None,
            "three steps late"
        );
        assert_eq!(
            secret.matching_step(code, time, step),
            None,
            "already accepted"
        );
        assert_eq!(secret.matching_step("12345", time, 0), None);
        assert_eq!(secret.matching_step("abcdef", time, 0), None);
    }

    #[test]
    fn recovery_codes_are_ten_distinct_and_hash_the_same_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let mut hashes: Vec<_> = codes.iter().map(|(_, h)| h.clone()).collect();
        hashes.sort();
        hashes.dedup();
        assert_eq!(hashes.len(), RECOVERY_CODES);
        let (code, hash) = &codes[0];
        let shouted = code.expose_secret().to_uppercase().replace('-', " ");
        assert_eq!(&recovery_code_hash(&shouted), hash);
        assert_eq!(code.expose_secret().len(), 19);
    }

    #[test]
    fn the_otpauth_uri_names_issuer_account_and_secret() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
        let uri = secret.otpauth_uri("sessiond", "ann@example.com");
        let uri = uri.expose_secret();
        assert!(
            uri.starts_with("otpauth://totp/sessiond:ann%40example.com?"),
            "{uri}"
        );
        assert!(
            uri.contains("secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
            "{uri}"
        );
        assert!(uri.contains("issuer=sessiond"), "{uri}");
    }
}
