//! Mail (`[mail]`: how messages leave) and accounts (`[accounts]`: recovery, verification and
//! sign-in by email, and what "fresh" means).

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct MailSettings {
    /// `smtp://[user:pass@]host[:port]` (STARTTLS, required unless the host is a loopback
    /// address), `smtps://[user:pass@]host[:465]` (implicit TLS), or `log:` (development: each
    /// message is written to the log; refused in production).
    pub url: SecretString,
    /// The sender, e.g. `Example <no-reply@example.com>`.
    pub from: String,
    /// The product's name in subjects and bodies.
    pub product_name: String,
    /// A directory with templates that replace the built-in ones (`<name>.txt`, `<name>.html`);
    /// empty for the built-in ones.
    #[serde(default)]
    pub templates_dir: String,
    /// Connections kept open to the SMTP server by each instance.
    pub pool_size: u32,
    /// One SMTP conversation may take this long before it counts as failed.
    pub timeout_secs: u64,
    /// Tries per message before it is dead-lettered (kept, audited, not retried).
    pub max_attempts: i64,
    /// The first retry waits this long; each next one twice as long (at most an hour).
    pub retry_base_secs: i64,
    /// How often each instance looks for due messages (it is also woken by new ones).
    pub poll_interval_ms: u64,
    /// Sent messages are deleted from the outbox this long after they were sent.
    pub sent_retention_secs: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AccountSettings {
    /// The frontend page mailed links open: `?type=<purpose>&token=<token>` is appended.
    pub link_url: String,
    /// Login and refresh of an account with an unverified email answer 403
    /// `email_not_verified`.
    pub require_verified_email: bool,
    pub verify_ttl_secs: i64,
    pub reset_ttl_secs: i64,
    pub sign_in_ttl_secs: i64,
    pub change_email_ttl_secs: i64,
    /// Wrong codes a sign-in code allows before it is spent.
    pub code_attempts: i64,
    /// Mails to one address per hour (every instance shares the count).
    pub sends_per_recipient_per_hour: i64,
    /// Mail-sending requests from one client address per hour.
    pub sends_per_client_per_hour: i64,
    /// "Fresh": the session authenticated within this many seconds (RFC 9470 `max_age`).
    pub fresh_auth_secs: i64,
}
