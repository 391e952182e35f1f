use unicode_normalization::UnicodeNormalization;

/// Why a text is not an email address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EmailError(pub &'static str);

/// An email address in the normalized form uniqueness is checked on: trimmed, NFC, lowercased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

const MAX_LEN: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Result<Email, EmailError> {
        let normalized: String = raw.trim().nfc().collect::<String>().to_lowercase();
        if normalized.is_empty() {
            return Err(EmailError("an email address is required"));
        }
        if normalized.chars().count() > MAX_LEN {
            return Err(EmailError(
                "the email address is longer than 254 characters",
            ));
        }
        if !email_address::EmailAddress::is_valid(&normalized) {
            return Err(EmailError("the email address is not valid"));
        }
        Ok(Email(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_case_space_and_unicode_form() {
        let composed = Email::parse("  Ann.\u{00C9}@Example.COM ").unwrap();
        let decomposed = Email::parse("ann.E\u{0301}@example.com").unwrap();
        assert_eq!(composed, decomposed);
        assert_eq!(composed.as_str(), "ann.\u{00E9}@example.com");
    }

    #[test]
    fn rejects_malformed_addresses() {
        for bad in [
            "",
            "   ",
            "ann",
            "ann@",
            "@example.com",
            "ann@@example.com",
            "a b@c.d",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn rejects_addresses_over_254_characters() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(matches!(Email::parse(&long), Err(EmailError(_))));
    }
}
