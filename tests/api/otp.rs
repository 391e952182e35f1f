//! RFC 6238 codes computed on the tests' side, independently of the server's TOTP code (an
//! HMAC-SHA-1 from aws-lc-rs, the RFC's dynamic truncation written out here), checked against
//! the RFC's own test vectors before any test relies on it.

use aws_lc_rs::hmac;

/// The 6-digit code of `secret` (raw bytes) at Unix time `at`.
pub fn code_at(secret: &[u8], at: i64) -> String {
    format!("{:06}", truncated(secret, at / 30) % 1_000_000)
}

/// The code for the step after the one at `at` (what an authenticator shows 30 s later).
pub fn next_code(secret: &[u8], at: i64) -> String {
    code_at(secret, at + 30)
}

fn truncated(secret: &[u8], counter: i64) -> u32 {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = hmac::sign(&key, &counter.to_be_bytes());
    let mac = mac.as_ref();
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ])
}

/// Decodes the base32 secret the server shows (RFC 4648, no padding).
pub fn base32_decode(text: &str) -> Vec<u8> {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0);
    for c in text.trim_end_matches('=').bytes() {
        let value = alphabet
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .expect("a base32 character") as u32;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

#[test]
fn the_tests_codes_match_rfc_6238_appendix_b() {
    let secret = b"12345678901234567890";
    for (at, eight) in [
        (59, 94_287_082),
        (1_111_111_109, 7_081_804),
        (1_111_111_111, 14_050_471),
        (1_234_567_890, 89_005_924),
        (2_000_000_000, 69_279_037),
        (20_000_000_000, 65_353_130),
    ] {
        assert_eq!(truncated(secret, at / 30) % 100_000_000, eight, "t={at}");
    }
    assert_eq!(base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"), secret);
}
