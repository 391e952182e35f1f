use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;

const MIN_CHARS: usize = 8;
const MAX_CHARS: usize = 1024;
/// zxcvbn's cost grows quickly with length; a prefix this long already decides the score.
const STRENGTH_PREFIX: usize = 64;

/// Why a new password was refused (too short, too long or too easy to guess).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WeakPassword(pub String);

/// A new password that passed the policy, NFKC-normalized and never truncated.
pub struct Password(SecretString);

#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    /// Minimum zxcvbn score, 0 to 4.
    pub min_strength: u8,
}

impl Password {
    /// Checks a new password. `context` holds words the password must not lean on (the email).
    pub fn parse(
        raw: SecretString,
        policy: PasswordPolicy,
        context: &[&str],
    ) -> Result<Password, WeakPassword> {
        let normalized = normalize(&raw);
        let chars = normalized.expose_secret().chars().count();
        if chars < MIN_CHARS {
            return Err(WeakPassword(format!(
                "the password must have at least {MIN_CHARS} characters"
            )));
        }
        if chars > MAX_CHARS {
            return Err(WeakPassword(format!(
                "the password must have at most {MAX_CHARS} characters"
            )));
        }
        let prefix: String = normalized
            .expose_secret()
            .chars()
            .take(STRENGTH_PREFIX)
            .collect();
        let score = u8::from(zxcvbn::zxcvbn(&prefix, context).score());
        if score < policy.min_strength {
            return Err(WeakPassword(
                "the password is too easy to guess".to_string(),
            ));
        }
        Ok(Password(normalized))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// NFKC normalization, applied to new and presented passwords alike so that the same visible
/// password always hashes the same way.
pub fn normalize(raw: &SecretString) -> SecretString {
    SecretString::from(raw.expose_secret().nfkc().collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: PasswordPolicy = PasswordPolicy { min_strength: 2 };

    fn parse(raw: &str) -> Result<Password, WeakPassword> {
        Password::parse(SecretString::from(raw), POLICY, &["ann@example.com"])
    }

    #[test]
    fn accepts_a_long_unusual_password() {
        assert!(parse("correct horse battery staple 42").is_ok());
    }

    #[test]
    fn rejects_short_long_and_guessable_passwords() {
        assert!(matches!(parse("Ab1!"), Err(WeakPassword(_))));
        assert!(matches!(parse(&"x".repeat(1025)), Err(WeakPassword(_))));
        assert!(matches!(parse("password"), Err(WeakPassword(_))));
        assert!(matches!(parse("12345678"), Err(WeakPassword(_))));
    }

    #[test]
    fn length_counts_characters_after_nfkc() {
        // U+FB01 (the "fi" ligature) becomes two characters under NFKC.
        let pw = normalize(&SecretString::from("\u{FB01}"));
        assert_eq!(pw.expose_secret(), "fi");
    }

    #[test]
    fn a_1024_character_password_is_accepted_untruncated() {
        let raw: String = (0..1024)
            .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
            .collect();
        let pw = parse(&raw).unwrap();
        assert_eq!(pw.secret().expose_secret().chars().count(), 1024);
    }
}
