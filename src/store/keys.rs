use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, FromRow};

use super::{Store, StoreResult, is_unique_violation};

/// Holds a private key: deliberately not `Debug`.
#[derive(Clone, FromRow)]
pub struct SigningKeyRow {
    pub kid: String,
    pub alg: String,
    pub private_der: Vec<u8>,
    pub public_jwk: String,
    pub active: Option<i64>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
}

impl Store {
    /// Keys that may still verify a live token: the active one and those retired after
    /// `retired_after` (the caller passes now minus the longest access-token lifetime).
    pub async fn verification_keys(&self, retired_after: i64) -> StoreResult<Vec<SigningKeyRow>> {
        Ok(sqlx::query_as(
            "select kid, alg, private_der, public_jwk, active, created_at, retired_at \
             from signing_keys where retired_at is null or retired_at > $1 \
             order by created_at desc",
        )
        .bind(retired_after)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn all_signing_keys(&self) -> StoreResult<Vec<SigningKeyRow>> {
        self.verification_keys(i64::MIN).await
    }

    /// Inserts a key as the active one unless another instance already has one active.
    /// Returns `Ok(false)` when that race was lost (the unique `active` column decided).
    pub async fn insert_first_active_key(&self, key: &SigningKeyRow) -> StoreResult<bool> {
        match insert_active(key, key.created_at)
            .execute(&self.writer)
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    /// Retires the active key and makes `key` the active one, atomically. The retired key stays
    /// published in the JWKS until every token it signed has expired.
    pub async fn rotate_signing_key(&self, key: &SigningKeyRow, now: i64) -> StoreResult<()> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("update signing_keys set active = null, retired_at = $1 where active = 1")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        insert_active(key, now).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The insert that makes `key` the active key (the unique `active` column allows one).
fn insert_active(key: &SigningKeyRow, created_at: i64) -> Query<'_, Any, AnyArguments> {
    sqlx::query(
        "insert into signing_keys (kid, alg, private_der, public_jwk, active, created_at) \
         values ($1, $2, $3, $4, 1, $5)",
    )
    .bind(&key.kid)
    .bind(&key.alg)
    .bind(&key.private_der)
    .bind(&key.public_jwk)
    .bind(created_at)
}

impl Store {
    /// Replaces the stored private part of `kid` (sealing, or re-sealing under a new KEK), if
    /// it is still `expected`: a concurrent change wins and this one reports `false`.
    pub async fn replace_private_key(
        &self,
        kid: &str,
        expected: &[u8],
        stored: &[u8],
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "update signing_keys set private_der = $1 where kid = $2 and private_der = $3",
        )
        .bind(stored)
        .bind(kid)
        .bind(expected)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
