//! How strongly a session's user was authenticated: the methods (`amr`, RFC 8176 names where
//! one exists) and the level they add up to (`acr`: `"1"` one factor, `"2"` two factors or a
//! passkey with user verification, which is itself something owned and something known or
//! been).

/// A password.
pub const PASSWORD: &str = "pwd";
/// A second factor's `amr` names: a TOTP code, a recovery code.
pub const OTP: &str = "otp";
pub const RECOVERY_CODE: &str = "rc";
/// A passkey (hardware-bound key), and the user verification (PIN, biometric) it did.
pub const PASSKEY: &str = "hwk";
pub const USER_VERIFIED: &str = "user";

/// The `acr` of a session authenticated by `amr`.
pub fn acr(amr: &[String]) -> &'static str {
    let has = |method: &str| amr.iter().any(|m| m == method);
    let second_factor = has(OTP) || has(RECOVERY_CODE);
    let verified_passkey = has(PASSKEY) && has(USER_VERIFIED);
    if second_factor || verified_passkey {
        "2"
    } else {
        "1"
    }
}

/// `amr` with `methods` added (each once, in order): a step-up adds to what the session proved.
pub fn amr_with(amr: &[String], methods: &[&str]) -> Vec<String> {
    let mut all = amr.to_vec();
    for method in methods {
        if !all.iter().any(|m| m == method) {
            all.push(method.to_string());
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amr(methods: &[&str]) -> Vec<String> {
        methods.iter().map(|m| m.to_string()).collect()
    }

    #[test]
    fn two_factors_or_a_verified_passkey_are_level_two() {
        assert_eq!(acr(&amr(&["pwd"])), "1");
        assert_eq!(acr(&amr(&["email"])), "1");
        assert_eq!(
            acr(&amr(&["hwk"])),
            "1",
            "a passkey without user verification"
        );
        assert_eq!(acr(&amr(&["pwd", "otp"])), "2");
        assert_eq!(acr(&amr(&["email", "rc"])), "2");
        assert_eq!(acr(&amr(&["hwk", "user"])), "2");
    }

    #[test]
    fn a_step_up_adds_methods_once() {
        assert_eq!(amr_with(&amr(&["pwd"]), &["otp"]), amr(&["pwd", "otp"]));
        assert_eq!(
            amr_with(&amr(&["pwd", "otp"]), &["otp"]),
            amr(&["pwd", "otp"])
        );
    }
}
