//! Delivering the outbox. Requests only queue what is to be mailed (in their own transaction,
//! then answer 202); every instance runs [`MailSender::run`], which claims due messages one
//! instance at a time, makes each message's token as it sends it (so no mailed secret is ever
//! stored in clear, and a message for an address with no account is simply not sent), hands
//! it to the transport, and on failure retries with exponential backoff until
//! `mail.max_attempts`, then dead-letters and audits it. Sent messages are purged by upkeep.

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::{AccountSettings, MailSettings};
use crate::credentials::tokens::opaque;
use crate::domain::ClientInfo;
use crate::mail::templates::{Mail, MailKind, MailValues, Templates};
use crate::mail::transport::Mailer;
use crate::observability::audit::{AuditLog, AuditSubject, Event};
use crate::observability::metrics::Metrics;
use crate::store::{ClaimedMail, NewMailToken, Store, StoreResult};

/// Messages claimed per round.
const BATCH: i64 = 16;
/// A claim lasts this long past the transport's timeout: an instance that dies mid-send gives
/// its messages back to the others after it.
const LEASE_MARGIN_SECS: i64 = 30;
/// Retries wait at most this long.
const MAX_BACKOFF_SECS: i64 = 3600;

pub struct MailSender {
    store: Store,
    clock: Clock,
    mailer: Mailer,
    templates: Templates,
    metrics: Arc<Metrics>,
    audit: AuditLog,
    mail: MailSettings,
    accounts: AccountSettings,
    /// Woken when a request queued a message.
    wake: Arc<Notify>,
}

/// What [`MailSender`] is built from.
pub struct MailSenderParts {
    pub store: Store,
    pub clock: Clock,
    pub mailer: Mailer,
    pub templates: Templates,
    pub metrics: Arc<Metrics>,
    pub audit: AuditLog,
    pub mail: MailSettings,
    pub accounts: AccountSettings,
    pub wake: Arc<Notify>,
}

/// The hash a sign-in code is stored as: salted by its token's id, so equal codes of two
/// tokens hash apart.
pub fn code_hash(token_id: &str, code: &str) -> Vec<u8> {
    Sha256::digest(format!("{token_id}:{code}")).to_vec()
}

impl MailSender {
    pub fn new(parts: MailSenderParts) -> MailSender {
        let MailSenderParts {
            store,
            clock,
            mailer,
            templates,
            metrics,
            audit,
            mail,
            accounts,
            wake,
        } = parts;
        MailSender {
            store,
            clock,
            mailer,
            templates,
            metrics,
            audit,
            mail,
            accounts,
            wake,
        }
    }

    /// Sends what is due, then waits for a new message or the next poll; forever.
    pub async fn run(self: Arc<Self>) {
        let poll = Duration::from_millis(self.mail.poll_interval_ms.max(10));
        loop {
            if let Err(error) = self.send_due().await {
                tracing::warn!(error = ?error, "could not read the mail outbox");
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Claims and sends due messages until none is left; returns how many were handled.
    pub async fn send_due(&self) -> StoreResult<usize> {
        let mut handled = 0;
        loop {
            let now = self.clock.now();
            let lease = now + self.mail.timeout_secs as i64 + LEASE_MARGIN_SECS;
            let claimed = self.store.claim_mail(now, lease, BATCH).await?;
            if claimed.is_empty() {
                return Ok(handled);
            }
            handled += claimed.len();
            for message in claimed {
                self.deliver(message).await;
            }
        }
    }

    async fn deliver(&self, message: ClaimedMail) {
        let outcome = match self.compose(&message).await {
            Ok(None) => Ok(()),
            Ok(Some(mail)) => self.mailer.send(&mail).await,
            Err(error) => Err(error),
        };
        let now = self.clock.now();
        let recorded = match outcome {
            Ok(()) => {
                self.metrics.mail.with_label_values(&["sent"]).inc();
                self.store.mail_sent(&message.id, now).await
            }
            Err(error) => self.failed(&message, &format!("{error:#}"), now).await,
        };
        if let Err(error) = recorded {
            tracing::warn!(error = ?error, id = %message.id, "could not record a mail's outcome");
        }
    }

    async fn failed(&self, message: &ClaimedMail, error: &str, now: i64) -> StoreResult<()> {
        let error: String = error.chars().take(500).collect();
        if message.attempts >= self.mail.max_attempts {
            tracing::error!(id = %message.id, kind = %message.kind, %error, "mail dead-lettered");
            self.metrics.mail.with_label_values(&["dead"]).inc();
            let client = ClientInfo::default();
            let subject = AuditSubject {
                user_id: message.user_id.as_deref(),
                session_id: None,
                client: &client,
            };
            let detail =
                json!({ "kind": message.kind, "attempts": message.attempts, "error": error });
            self.audit
                .record(Event::MailDeadLettered, subject, detail)
                .await;
            return self
                .store
                .mail_failed(&message.id, now, Some(now), &error)
                .await;
        }
        let backoff = self
            .mail
            .retry_base_secs
            .max(1)
            .saturating_mul(1 << (message.attempts - 1).clamp(0, 20))
            .min(MAX_BACKOFF_SECS);
        tracing::warn!(id = %message.id, attempts = message.attempts, retry_in_secs = backoff, %error, "mail not sent; will retry");
        self.metrics.mail.with_label_values(&["retried"]).inc();
        self.store
            .mail_failed(&message.id, now + backoff, None, &error)
            .await
    }

    /// The message to send for an outbox row, with a new token where it needs one; `None` when
    /// there is nothing to send (no such account, or it no longer needs the mail).
    async fn compose(&self, message: &ClaimedMail) -> anyhow::Result<Option<Mail>> {
        let kind = MailKind::parse(&message.kind)
            .ok_or_else(|| anyhow::anyhow!("unknown mail kind {}", message.kind))?;
        let to = message.recipient.as_str();
        let (user_id, ttl) = match kind {
            MailKind::EmailChanged => return Ok(Some(self.render(kind, to, None, None, 0))),
            MailKind::VerifyEmail | MailKind::ChangeEmail => {
                let Some(user_id) = &message.user_id else {
                    return Ok(None);
                };
                let Some(user) = self.store.find_user(user_id).await? else {
                    return Ok(None);
                };
                let verify = kind == MailKind::VerifyEmail;
                if verify && (user.email.as_deref() != Some(to) || user.email_verified) {
                    return Ok(None);
                }
                let ttl = if verify {
                    self.accounts.verify_ttl_secs
                } else {
                    self.accounts.change_email_ttl_secs
                };
                (user.id.to_string(), ttl)
            }
            MailKind::ResetPassword | MailKind::SignIn => {
                let account = self.store.find_account_by_email(to).await?;
                let Some(account) = account.filter(|a| a.disabled_at.is_none() && !a.is_guest)
                else {
                    return Ok(None);
                };
                let ttl = if kind == MailKind::SignIn {
                    self.accounts.sign_in_ttl_secs
                } else {
                    self.accounts.reset_ttl_secs
                };
                (account.id, ttl)
            }
        };
        let now = self.clock.now();
        let token = opaque::generate();
        let id = uuid::Uuid::now_v7().to_string();
        let code = (kind == MailKind::SignIn)
            .then(|| format!("{:06}", rand::rng().random_range(0..1_000_000u32)));
        let code_hash = code.as_deref().map(|code| code_hash(&id, code));
        self.store
            .issue_mail_token(&NewMailToken {
                id: &id,
                token_hash: &opaque::hash(token.expose_secret()),
                code_hash: code_hash.as_deref(),
                purpose: kind.as_str(),
                user_id: &user_id,
                email: to,
                now,
                expires_at: now + ttl,
            })
            .await?;
        let link = self.link(kind, token.expose_secret())?;
        Ok(Some(self.render(
            kind,
            to,
            Some(&link),
            code.as_deref(),
            ttl,
        )))
    }

    fn render(
        &self,
        kind: MailKind,
        to: &str,
        link: Option<&str>,
        code: Option<&str>,
        ttl: i64,
    ) -> Mail {
        let values = MailValues {
            product: &self.mail.product_name,
            email: to,
            link,
            code,
            minutes: ttl / 60,
        };
        self.templates.render(kind, to, &values)
    }

    /// `accounts.link_url` with `type` and `token` appended: the host is configuration's,
    /// never a request's.
    fn link(&self, kind: MailKind, token: &str) -> anyhow::Result<String> {
        let mut url = url::Url::parse(&self.accounts.link_url)?;
        url.query_pairs_mut()
            .append_pair("type", kind.as_str())
            .append_pair("token", token);
        Ok(url.into())
    }
}
