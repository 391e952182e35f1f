//! Second factors (`totp_factors`, `recovery_codes`) and the challenges a login answers with
//! when one is due (`mfa_challenges`). Every "accept once" is a compare-and-set in one
//! statement, so two instances (or two requests) cannot both accept the same code or token.

use sqlx::FromRow;

use super::{Store, StoreResult};

/// A user's TOTP authenticator as stored.
#[derive(Debug, FromRow)]
pub struct StoredTotp {
    pub secret_sealed: Vec<u8>,
    pub confirmed_at: Option<i64>,
    pub last_step: i64,
}

/// A live login challenge: whose it is and what the session will start with.
#[derive(Debug, FromRow)]
pub struct MfaChallenge {
    pub id: String,
    pub user_id: String,
    pub first_factor: String,
}

pub struct NewMfaChallenge<'a> {
    pub id: &'a str,
    pub token_hash: &'a [u8],
    pub user_id: &'a str,
    pub first_factor: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

impl Store {
    /// Writes a pending authenticator, replacing a pending one; `false` (nothing written) when
    /// the user already has a confirmed one.
    pub async fn put_pending_totp(
        &self,
        user_id: &str,
        sealed: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("delete from totp_factors where user_id = $1 and confirmed_at is null")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let inserted = sqlx::query(
            "insert into totp_factors (user_id, secret_sealed, created_at) values ($1, $2, $3) \
             on conflict (user_id) do nothing",
        )
        .bind(user_id)
        .bind(sealed)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(inserted.rows_affected() == 1)
    }

    pub async fn totp_of(&self, user_id: &str) -> StoreResult<Option<StoredTotp>> {
        Ok(sqlx::query_as(
            "select secret_sealed, confirmed_at, last_step from totp_factors where user_id = $1",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Whether the user has a confirmed authenticator (a login then needs a second factor).
    pub async fn has_totp(&self, user_id: &str) -> StoreResult<bool> {
        let found: Option<(i64,)> = sqlx::query_as(
            "select 1 from totp_factors where user_id = $1 and confirmed_at is not null",
        )
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Confirms the pending authenticator with the step its first code was right for, and
    /// replaces the user's recovery codes: `false` if nothing was pending (or the step was
    /// taken meanwhile).
    pub async fn confirm_totp(
        &self,
        user_id: &str,
        step: i64,
        recovery_code_hashes: &[Vec<u8>],
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let confirmed = sqlx::query(
            "update totp_factors set confirmed_at = $2, last_step = $3 \
             where user_id = $1 and confirmed_at is null and last_step < $3",
        )
        .bind(user_id)
        .bind(now)
        .bind(step)
        .execute(&mut *tx)
        .await?;
        if confirmed.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query("delete from recovery_codes where user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        for hash in recovery_code_hashes {
            sqlx::query(
                "insert into recovery_codes (id, user_id, code_hash, created_at) \
                 values ($1, $2, $3, $4)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(user_id)
            .bind(hash.as_slice())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Accepts `step` for a confirmed authenticator if it is newer than the last accepted one.
    pub async fn spend_totp_step(&self, user_id: &str, step: i64) -> StoreResult<bool> {
        let spent = sqlx::query(
            "update totp_factors set last_step = $2 \
             where user_id = $1 and confirmed_at is not null and last_step < $2",
        )
        .bind(user_id)
        .bind(step)
        .execute(&self.writer)
        .await?;
        Ok(spent.rows_affected() == 1)
    }

    /// Removes the authenticator and its recovery codes; `false` if there was none.
    pub async fn delete_totp(&self, user_id: &str) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let deleted = sqlx::query("delete from totp_factors where user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("delete from recovery_codes where user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("delete from mfa_challenges where user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected() == 1)
    }

    /// Spends one of the user's unused recovery codes; `false` if it is not one.
    pub async fn spend_recovery_code(
        &self,
        user_id: &str,
        hash: &[u8],
        now: i64,
    ) -> StoreResult<bool> {
        let spent = sqlx::query(
            "update recovery_codes set used_at = $3 \
             where user_id = $1 and code_hash = $2 and used_at is null",
        )
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(spent.rows_affected() == 1)
    }

    pub async fn unused_recovery_codes(&self, user_id: &str) -> StoreResult<i64> {
        let (count,): (i64,) = sqlx::query_as(
            "select count(*) from recovery_codes where user_id = $1 and used_at is null",
        )
        .bind(user_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(count)
    }

    pub async fn create_mfa_challenge(&self, challenge: &NewMfaChallenge<'_>) -> StoreResult<()> {
        sqlx::query(
            "insert into mfa_challenges (id, token_hash, user_id, first_factor, created_at, \
             expires_at) values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(challenge.id)
        .bind(challenge.token_hash)
        .bind(challenge.user_id)
        .bind(challenge.first_factor)
        .bind(challenge.now)
        .bind(challenge.expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The live challenge an `mfa_token` stands for: unspent, unexpired, with wrong codes to
    /// spare (fewer than `max_attempts`).
    pub async fn find_mfa_challenge(
        &self,
        token_hash: &[u8],
        now: i64,
        max_attempts: i64,
    ) -> StoreResult<Option<MfaChallenge>> {
        Ok(sqlx::query_as(
            "select id, user_id, first_factor from mfa_challenges where token_hash = $1 \
             and spent_at is null and expires_at > $2 and attempts < $3",
        )
        .bind(token_hash)
        .bind(now)
        .bind(max_attempts)
        .fetch_optional(&self.writer)
        .await?)
    }

    /// Counts a wrong code against the challenge.
    pub async fn mfa_challenge_failed(&self, id: &str) -> StoreResult<()> {
        sqlx::query("update mfa_challenges set attempts = attempts + 1 where id = $1")
            .bind(id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Spends the challenge; `false` if another request spent it first.
    pub async fn spend_mfa_challenge(&self, id: &str, now: i64) -> StoreResult<bool> {
        let spent = sqlx::query(
            "update mfa_challenges set spent_at = $2 where id = $1 and spent_at is null",
        )
        .bind(id)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(spent.rows_affected() == 1)
    }

    /// Deletes login challenges and WebAuthn ceremonies that expired before `cutoff`.
    pub async fn purge_challenges(&self, cutoff: i64) -> StoreResult<u64> {
        let mfa = sqlx::query("delete from mfa_challenges where expires_at < $1")
            .bind(cutoff)
            .execute(&self.writer)
            .await?;
        let webauthn = sqlx::query("delete from webauthn_challenges where expires_at < $1")
            .bind(cutoff)
            .execute(&self.writer)
            .await?;
        Ok(mfa.rows_affected() + webauthn.rows_affected())
    }
}
