//! Audit events: who did what to which session, when and from where. Recorded after the action
//! it describes; a failure to record is logged but does not undo or fail the action. Details
//! never hold a password, token or key.

use serde_json::Value;

use crate::clock::Clock;
use crate::domain::ClientInfo;
use crate::store::{AuditEntry, Store};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Signup,
    LoginSucceeded,
    LoginFailed,
    Guest,
    Bridge,
    /// A verified bridge token for a disabled user.
    BridgeRefused,
    Upgrade,
    RefreshReuseDetected,
    Logout,
    SessionRevoked,
    TokenRevoked,
    PasswordChanged,
    AdminRevokedSessions,
    AdminDeletedUser,
    /// Failed logins blocked an account from an address, or took it past its ceiling.
    LoginThrottled,
    AdminClearedThrottle,
    AdminDisabledUser,
    AdminEnabledUser,
    /// A user created by an operator (`sessiond users create`).
    AdminCreatedUser,
    /// A credential presented outside a login was wrong (the current password of a password
    /// change; `detail` says which credential and what for).
    CredentialCheckFailed,
    /// Opening a session took the user past `sessions.max_per_user`: these sessions ended.
    SessionsEvicted,
    EmailVerificationSent,
    EmailVerified,
    PasswordResetRequested,
    PasswordReset,
    EmailSignInRequested,
    EmailSignIn,
    EmailChangeRequested,
    EmailChanged,
    /// The user deleted their own account (`DELETE /v1/me`).
    UserDeleted,
    /// The session authenticated again (`POST /v1/reauth`).
    Reauthenticated,
    /// A mail request over its per-recipient or per-client limit: nothing was queued.
    MailLimited,
    /// A mail that kept failing: kept in the outbox, no longer retried.
    MailDeadLettered,
    /// A right first factor for an account with a second factor: an `mfa_token` was issued.
    MfaChallenged,
    /// A TOTP authenticator was enrolled (pending until its first code).
    TotpEnrolled,
    /// The pending authenticator was confirmed; recovery codes were issued.
    TotpEnabled,
    TotpDisabled,
    /// A recovery code stood in for the authenticator (`detail` says how many are left).
    RecoveryCodeUsed,
    PasskeyRegistered,
    PasskeyDeleted,
    /// A passkey's signature counter went backwards: a cloned authenticator is likely; refused.
    PasskeyCounterRegressed,
}

impl Event {
    /// Every event type, as `openapi.yaml` must list them.
    pub const ALL: [Event; 41] = [
        Event::Signup,
        Event::LoginSucceeded,
        Event::LoginFailed,
        Event::Guest,
        Event::Bridge,
        Event::BridgeRefused,
        Event::Upgrade,
        Event::RefreshReuseDetected,
        Event::Logout,
        Event::SessionRevoked,
        Event::TokenRevoked,
        Event::PasswordChanged,
        Event::AdminRevokedSessions,
        Event::AdminDeletedUser,
        Event::LoginThrottled,
        Event::AdminClearedThrottle,
        Event::AdminDisabledUser,
        Event::AdminEnabledUser,
        Event::AdminCreatedUser,
        Event::CredentialCheckFailed,
        Event::SessionsEvicted,
        Event::EmailVerificationSent,
        Event::EmailVerified,
        Event::PasswordResetRequested,
        Event::PasswordReset,
        Event::EmailSignInRequested,
        Event::EmailSignIn,
        Event::EmailChangeRequested,
        Event::EmailChanged,
        Event::UserDeleted,
        Event::Reauthenticated,
        Event::MailLimited,
        Event::MailDeadLettered,
        Event::MfaChallenged,
        Event::TotpEnrolled,
        Event::TotpEnabled,
        Event::TotpDisabled,
        Event::RecoveryCodeUsed,
        Event::PasskeyRegistered,
        Event::PasskeyDeleted,
        Event::PasskeyCounterRegressed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::Signup => "signup",
            Event::LoginSucceeded => "login_succeeded",
            Event::LoginFailed => "login_failed",
            Event::Guest => "guest",
            Event::Bridge => "bridge",
            Event::BridgeRefused => "bridge_refused",
            Event::Upgrade => "upgrade",
            Event::RefreshReuseDetected => "refresh_reuse_detected",
            Event::Logout => "logout",
            Event::SessionRevoked => "session_revoked",
            Event::TokenRevoked => "token_revoked",
            Event::PasswordChanged => "password_changed",
            Event::AdminRevokedSessions => "admin_revoked_sessions",
            Event::AdminDeletedUser => "admin_deleted_user",
            Event::LoginThrottled => "login_throttled",
            Event::AdminClearedThrottle => "admin_cleared_throttle",
            Event::AdminDisabledUser => "admin_disabled_user",
            Event::AdminEnabledUser => "admin_enabled_user",
            Event::AdminCreatedUser => "admin_created_user",
            Event::CredentialCheckFailed => "credential_check_failed",
            Event::SessionsEvicted => "sessions_evicted",
            Event::EmailVerificationSent => "email_verification_sent",
            Event::EmailVerified => "email_verified",
            Event::PasswordResetRequested => "password_reset_requested",
            Event::PasswordReset => "password_reset",
            Event::EmailSignInRequested => "email_sign_in_requested",
            Event::EmailSignIn => "email_sign_in",
            Event::EmailChangeRequested => "email_change_requested",
            Event::EmailChanged => "email_changed",
            Event::UserDeleted => "user_deleted",
            Event::Reauthenticated => "reauthenticated",
            Event::MailLimited => "mail_limited",
            Event::MailDeadLettered => "mail_dead_lettered",
            Event::MfaChallenged => "mfa_challenged",
            Event::TotpEnrolled => "totp_enrolled",
            Event::TotpEnabled => "totp_enabled",
            Event::TotpDisabled => "totp_disabled",
            Event::RecoveryCodeUsed => "recovery_code_used",
            Event::PasskeyRegistered => "passkey_registered",
            Event::PasskeyDeleted => "passkey_deleted",
            Event::PasskeyCounterRegressed => "passkey_counter_regressed",
        }
    }
}

/// What one event is about.
pub struct AuditSubject<'a> {
    pub user_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    pub client: &'a ClientInfo,
}

/// The audit trail as the services write it: each event at the injected clock's time.
#[derive(Clone)]
pub struct AuditLog {
    store: Store,
    clock: Clock,
}

impl AuditLog {
    pub fn new(store: Store, clock: Clock) -> AuditLog {
        AuditLog { store, clock }
    }

    /// Records an event (never fails the operation it describes).
    pub async fn record(&self, event: Event, subject: AuditSubject<'_>, detail: Value) {
        record(&self.store, self.clock.now(), event, subject, detail).await;
    }
}

pub async fn record(
    store: &Store,
    at: i64,
    event: Event,
    subject: AuditSubject<'_>,
    detail: Value,
) {
    let row = AuditEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at,
        kind: event.as_str().to_string(),
        user_id: subject.user_id.map(str::to_string),
        session_id: subject.session_id.map(str::to_string),
        ip_address: subject.client.ip_address.clone(),
        user_agent: subject.client.user_agent.clone(),
        detail,
    };
    if let Err(error) = store.insert_audit_event(&row).await {
        tracing::error!(error = ?error, event = event.as_str(), "could not record an audit event");
    }
}
