//! Why a session ended. Stored with the session (`revoked_reason`) and published, unchanged, as
//! the `reason` of its `session.ended` event (`../shared/API.md`, "Session events"), so the
//! spelling here is part of the contract.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevokeReason {
    /// `POST /v1/logout` (any scope).
    Logout,
    /// Its owner ended it from another session: `DELETE /v1/sessions/{id}`.
    Revoked,
    /// RFC 7009 `POST /v1/revoke`.
    TokenRevoked,
    /// A spent refresh token was presented outside the grace window.
    RefreshTokenReused,
    /// The user changed their password (their other sessions end).
    PasswordChanged,
    /// The password was reset through a mailed link (every session ends).
    PasswordReset,
    /// The admin API or the CLI.
    Admin,
    /// The user was deleted (written by the database itself, see the migrations).
    UserDeleted,
    /// An operator disabled the user (admin API or CLI).
    UserDisabled,
    /// A new session took the user past `sessions.max_per_user`; this was the least recently
    /// used one.
    Evicted,
}

impl RevokeReason {
    /// Every reason, in the order the contract lists them.
    pub const ALL: [RevokeReason; 10] = [
        RevokeReason::Logout,
        RevokeReason::Revoked,
        RevokeReason::TokenRevoked,
        RevokeReason::RefreshTokenReused,
        RevokeReason::PasswordChanged,
        RevokeReason::PasswordReset,
        RevokeReason::Admin,
        RevokeReason::UserDeleted,
        RevokeReason::UserDisabled,
        RevokeReason::Evicted,
    ];

    /// The reason a stored or published spelling names; `None` for one this version does not
    /// know.
    pub fn parse(text: &str) -> Option<RevokeReason> {
        RevokeReason::ALL.into_iter().find(|r| r.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RevokeReason::Logout => "logout",
            RevokeReason::Revoked => "revoked",
            RevokeReason::TokenRevoked => "token_revoked",
            RevokeReason::RefreshTokenReused => "refresh_token_reused",
            RevokeReason::PasswordChanged => "password_changed",
            RevokeReason::PasswordReset => "password_reset",
            RevokeReason::Admin => "admin",
            RevokeReason::UserDeleted => "user_deleted",
            RevokeReason::UserDisabled => "user_disabled",
            RevokeReason::Evicted => "evicted",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RevokeReason::*;

    #[test]
    fn reasons_are_spelled_as_the_contract_says() {
        let all = [
            Logout,
            Revoked,
            TokenRevoked,
            RefreshTokenReused,
            PasswordChanged,
            Admin,
            UserDeleted,
            UserDisabled,
            Evicted,
        ];
        let names: Vec<&str> = all.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            names,
            [
                "logout",
                "revoked",
                "token_revoked",
                "refresh_token_reused",
                "password_changed",
                "admin",
                "user_deleted",
                "user_disabled",
                "evicted"
            ]
        );
    }

    #[test]
    fn every_reason_reads_back_from_its_spelling() {
        for reason in super::RevokeReason::ALL {
            assert_eq!(super::RevokeReason::parse(reason.as_str()), Some(reason));
        }
        assert_eq!(
            super::RevokeReason::parse("password_reset_by_a_newer_version"),
            None
        );
    }
}
