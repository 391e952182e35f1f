//! What a session is: how it was opened, what is stored of it, and the one rule that says
//! whether it is live.

use super::{SessionId, UserId};

/// How a session was opened; decides its lifetime, its `amr` and its provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind<'a> {
    Password,
    Guest,
    /// Through the session bridge, from the named provider.
    Bridge(&'a str),
    /// A mailed sign-in link or code (or a password reset: the mail proved the address).
    Email,
    /// A passkey (WebAuthn); its user verification adds `"user"` to the `amr`.
    Passkey,
}

impl SessionKind<'_> {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionKind::Password => "password",
            SessionKind::Guest => "guest",
            SessionKind::Bridge(_) => "bridge",
            SessionKind::Email => "email",
            SessionKind::Passkey => "passkey",
        }
    }

    /// The `amr` claim (authentication methods) of its access tokens.
    pub fn amr(self) -> Vec<String> {
        vec![match self {
            SessionKind::Password => "pwd".to_string(),
            SessionKind::Guest => "guest".to_string(),
            SessionKind::Bridge(provider) => format!("bridge:{provider}"),
            SessionKind::Email => "email".to_string(),
            SessionKind::Passkey => "hwk".to_string(),
        }]
    }
}

/// Where a session stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Live,
    Revoked,
    /// Past its absolute expiry: final, like a revocation.
    Expired,
    /// Unused for longer than the idle timeout; a refresh elsewhere may still have moved
    /// `last_seen_at`, so this is worth re-reading.
    Idle,
}

/// The times that decide a session's status (Unix seconds).
#[derive(Debug, Clone, Copy)]
pub struct SessionTimes {
    pub revoked_at: Option<i64>,
    pub expires_at: i64,
    pub last_seen_at: i64,
}

impl SessionTimes {
    /// The liveness rule: not revoked, not past its expiry, and used within `idle_timeout_secs`.
    pub fn status(&self, now: i64, idle_timeout_secs: i64) -> SessionStatus {
        if self.revoked_at.is_some() {
            SessionStatus::Revoked
        } else if self.expires_at <= now {
            SessionStatus::Expired
        } else if self.last_seen_at + idle_timeout_secs <= now {
            SessionStatus::Idle
        } else {
            SessionStatus::Live
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    pub kind: String,
    pub provider: Option<String>,
    /// The `amr` claim of its access tokens, e.g. `["pwd"]`.
    pub amr: Vec<String>,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// The last authentication in this session (sign-in or re-authentication): `auth_time`.
    pub auth_time: i64,
}

impl Session {
    /// When the session ends unless it is refreshed first: the earlier of its absolute expiry
    /// and its idle expiry.
    pub fn ends_at(&self, idle_timeout_secs: i64) -> i64 {
        self.expires_at
            .min(self.last_seen_at.saturating_add(idle_timeout_secs))
    }

    /// Where the session stands at `now` (the one liveness rule, `SessionTimes::status`).
    pub fn status(&self, now: i64, idle_timeout_secs: i64) -> SessionStatus {
        SessionTimes {
            revoked_at: self.revoked_at,
            expires_at: self.expires_at,
            last_seen_at: self.last_seen_at,
        }
        .status(now, idle_timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_live_until_revoked_expired_or_idle() {
        let times = SessionTimes {
            revoked_at: None,
            expires_at: 100,
            last_seen_at: 50,
        };
        assert_eq!(times.status(59, 10), SessionStatus::Live);
        assert_eq!(times.status(60, 10), SessionStatus::Idle);
        assert_eq!(times.status(100, 1000), SessionStatus::Expired);
        let revoked = SessionTimes {
            revoked_at: Some(55),
            ..times
        };
        assert_eq!(revoked.status(56, 10), SessionStatus::Revoked);
    }

    #[test]
    fn amr_names_the_method() {
        assert_eq!(SessionKind::Password.amr(), ["pwd"]);
        assert_eq!(SessionKind::Guest.amr(), ["guest"]);
        assert_eq!(SessionKind::Bridge("auth0").amr(), ["bridge:auth0"]);
    }
}
