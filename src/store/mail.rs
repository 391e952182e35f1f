//! Mail (`mail_outbox`, `mail_tokens`): the outbox every instance sends from, claimed one
//! message at a time by compare-and-set, and the tokens mailed for one purpose, stored only as
//! hashes, spent once.

use sqlx::{Any, FromRow, Transaction};

use super::{Store, StoreResult, is_unique_violation};
use crate::domain::{RevokeReason, UserId};

/// A message to send: what for, to whom, about which user. No secret: the sender makes the
/// token when it sends.
pub struct NewMail<'a> {
    pub kind: &'a str,
    pub recipient: &'a str,
    pub user_id: Option<&'a str>,
    pub now: i64,
}

/// A message this instance claimed and must now send (or give back).
#[derive(Debug, FromRow)]
pub struct ClaimedMail {
    pub id: String,
    pub kind: String,
    pub recipient: String,
    pub user_id: Option<String>,
    /// Tries so far, this one included.
    pub attempts: i64,
}

pub struct NewMailToken<'a> {
    pub id: &'a str,
    pub token_hash: &'a [u8],
    pub code_hash: Option<&'a [u8]>,
    pub purpose: &'a str,
    pub user_id: &'a str,
    pub email: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// What a spent mailed token was for.
#[derive(Debug)]
pub struct MailGrant {
    pub user_id: UserId,
    pub email: String,
}

/// The newest live sign-in code for an address.
#[derive(Debug, FromRow)]
pub struct CodeCandidate {
    pub id: String,
    pub user_id: String,
    pub code_hash: Vec<u8>,
}

impl Store {
    /// Queues a message inside the caller's transaction.
    pub(crate) async fn enqueue_mail_in(
        tx: &mut Transaction<'static, Any>,
        mail: &NewMail<'_>,
    ) -> StoreResult<()> {
        sqlx::query(
            "insert into mail_outbox (id, kind, recipient, user_id, created_at, next_attempt_at) \
             values ($1, $2, $3, $4, $5, $5)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(mail.kind)
        .bind(mail.recipient)
        .bind(mail.user_id)
        .bind(mail.now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Queues messages in one transaction: all are sent, or none is queued.
    pub async fn enqueue_mail(&self, mails: &[NewMail<'_>]) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        for mail in mails {
            Store::enqueue_mail_in(&mut tx, mail).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `batch` due messages until `lease_until`. The claim is a compare-and-set on
    /// each row (unsent, not dead, unclaimed or its lease run out), so of two instances claiming
    /// at once each message goes to exactly one.
    pub async fn claim_mail(
        &self,
        now: i64,
        lease_until: i64,
        batch: i64,
    ) -> StoreResult<Vec<ClaimedMail>> {
        let claimed = sqlx::query_as(
            "update mail_outbox set claimed_until = $1, attempts = attempts + 1 \
             where id in (select id from mail_outbox where sent_at is null and dead_at is null \
             and next_attempt_at <= $2 and (claimed_until is null or claimed_until < $2) \
             order by next_attempt_at limit $3) \
             and sent_at is null and dead_at is null \
             and (claimed_until is null or claimed_until < $2) \
             returning id, kind, recipient, user_id, attempts",
        )
        .bind(lease_until)
        .bind(now)
        .bind(batch)
        .fetch_all(&self.writer)
        .await?;
        Ok(claimed)
    }

    pub async fn mail_sent(&self, id: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "update mail_outbox set sent_at = $1, claimed_until = null, last_error = null \
             where id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// A try failed: the message is due again at `retry_at`, or (with `dead`) never again.
    pub async fn mail_failed(
        &self,
        id: &str,
        retry_at: i64,
        dead_at: Option<i64>,
        error: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "update mail_outbox set claimed_until = null, next_attempt_at = $1, dead_at = $2, \
             last_error = $3 where id = $4",
        )
        .bind(retry_at)
        .bind(dead_at)
        .bind(error)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Messages waiting to be sent (not sent, not dead).
    pub async fn count_queued_mail(&self) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "select count(*) from mail_outbox where sent_at is null and dead_at is null",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Deletes up to `batch` messages sent before `cutoff`, and spent or expired tokens.
    pub async fn purge_mail(&self, cutoff: i64, now: i64, batch: i64) -> StoreResult<u64> {
        let sent = sqlx::query(
            "delete from mail_outbox where id in \
             (select id from mail_outbox where sent_at < $1 limit $2)",
        )
        .bind(cutoff)
        .bind(batch)
        .execute(&self.writer)
        .await?;
        let tokens = sqlx::query(
            "delete from mail_tokens where id in (select id from mail_tokens \
             where expires_at < $1 or spent_at < $2 limit $3)",
        )
        .bind(now)
        .bind(cutoff)
        .bind(batch)
        .execute(&self.writer)
        .await?;
        Ok(sent.rows_affected() + tokens.rows_affected())
    }

    /// Stores a new token; the user's older unspent tokens of the same purpose are spent (the
    /// newest mail wins).
    pub async fn issue_mail_token(&self, token: &NewMailToken<'_>) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "update mail_tokens set spent_at = $1 \
             where user_id = $2 and purpose = $3 and spent_at is null",
        )
        .bind(token.now)
        .bind(token.user_id)
        .bind(token.purpose)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "insert into mail_tokens (id, token_hash, code_hash, purpose, user_id, email, \
             created_at, expires_at) values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(token.id)
        .bind(token.token_hash)
        .bind(token.code_hash)
        .bind(token.purpose)
        .bind(token.user_id)
        .bind(token.email)
        .bind(token.now)
        .bind(token.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Spends the unspent, unexpired token of `purpose` with this hash: who and which address
    /// it was for, or `None` (unknown, spent, expired or another purpose: never which).
    pub async fn redeem_mail_token(
        &self,
        token_hash: &[u8],
        purpose: &str,
        now: i64,
    ) -> StoreResult<Option<MailGrant>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "update mail_tokens set spent_at = $1 where token_hash = $2 and purpose = $3 \
             and spent_at is null and expires_at > $1 returning user_id, email",
        )
        .bind(now)
        .bind(token_hash)
        .bind(purpose)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.map(|(user_id, email)| MailGrant {
            user_id: UserId::trusted(user_id),
            email,
        }))
    }

    /// The newest live sign-in code mailed to `email`.
    pub async fn sign_in_code(&self, email: &str, now: i64) -> StoreResult<Option<CodeCandidate>> {
        let row = sqlx::query_as(
            "select id, user_id, code_hash from mail_tokens where email = $1 \
             and purpose = 'sign_in' and spent_at is null and expires_at > $2 \
             and code_hash is not null order by created_at desc limit 1",
        )
        .bind(email)
        .bind(now)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row)
    }

    /// A wrong code: counts it, and spends the token at the `max_attempts`-th.
    pub async fn sign_in_code_failed(
        &self,
        id: &str,
        max_attempts: i64,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "update mail_tokens set attempts = attempts + 1, \
             spent_at = case when attempts + 1 >= $1 then $2 else spent_at end \
             where id = $3 and spent_at is null",
        )
        .bind(max_attempts)
        .bind(now)
        .bind(id)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Spends token `id` if it is still unspent and unexpired.
    pub async fn spend_mail_token(&self, id: &str, now: i64) -> StoreResult<Option<MailGrant>> {
        let row: Option<(String, String)> = sqlx::query_as(
            "update mail_tokens set spent_at = $1 where id = $2 and spent_at is null \
             and expires_at > $1 returning user_id, email",
        )
        .bind(now)
        .bind(id)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.map(|(user_id, email)| MailGrant {
            user_id: UserId::trusted(user_id),
            email,
        }))
    }

    /// Marks the address verified, if it is still the user's.
    pub async fn verify_email(&self, user_id: &str, email: &str, now: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "update users set email_verified = 1, updated_at = $1 where id = $2 and email = $3",
        )
        .bind(now)
        .bind(user_id)
        .bind(email)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Makes `email` the user's verified address. `Ok(false)` when another account has it.
    pub async fn change_email(&self, user_id: &str, email: &str, now: i64) -> StoreResult<bool> {
        let changed = sqlx::query(
            "update users set email = $1, email_verified = 1, updated_at = $2 where id = $3",
        )
        .bind(email)
        .bind(now)
        .bind(user_id)
        .execute(&self.writer)
        .await;
        match changed {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Sets a new password reached through a mailed link: the address is thereby verified, and
    /// every session of the user ends (reason `password_reset`), in one transaction. Returns
    /// the ended ids.
    pub async fn reset_password(
        &self,
        user_id: &str,
        hash: &str,
        now: i64,
    ) -> StoreResult<Vec<String>> {
        let mut tx = self.writer.begin().await?;
        sqlx::query(
            "update users set password_hash = $1, email_verified = 1, updated_at = $2 \
             where id = $3",
        )
        .bind(hash)
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        let all = super::SessionsToEnd::OfUser {
            user_id,
            keep: None,
        };
        let ended = Store::end_sessions_in(&mut tx, all, RevokeReason::PasswordReset, now).await?;
        tx.commit().await?;
        Ok(ended)
    }
}
