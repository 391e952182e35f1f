//! Signing keys (`signing_keys`): the active key, retired and revoked keys, their sealed private
//! parts, rotation, and the fingerprint instances poll to notice a change.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, FromRow};

use super::{Store, StoreResult, is_unique_violation};

/// Holds a private key: deliberately not `Debug`.
#[derive(Clone, FromRow)]
pub struct StoredSigningKey {
    pub kid: String,
    pub alg: String,
    pub private_der: Vec<u8>,
    pub public_jwk: String,
    pub active: Option<i64>,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    /// Set by an emergency revocation (`sessiond keys retire`): the key verifies nothing since.
    pub revoked_at: Option<i64>,
}

/// What `revoke_signing_key` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRevocation {
    /// The active key was revoked and the replacement is now the active key.
    ActiveReplaced,
    /// A retired key was revoked; the active key is unchanged.
    Revoked,
    AlreadyRevoked,
    Unknown,
}

impl Store {
    /// Keys that may still verify a live token: the active one and those retired after
    /// `retired_after` (the caller passes now minus the longest access-token lifetime), never a
    /// revoked one.
    pub async fn verification_keys(
        &self,
        retired_after: i64,
    ) -> StoreResult<Vec<StoredSigningKey>> {
        Ok(sqlx::query_as(
            "select kid, alg, private_der, public_jwk, active, created_at, retired_at, revoked_at \
             from signing_keys where revoked_at is null \
             and (retired_at is null or retired_at > $1) order by created_at desc",
        )
        .bind(retired_after)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every key ever made, revoked ones included (`sessiond keys list`).
    pub async fn all_signing_keys(&self) -> StoreResult<Vec<StoredSigningKey>> {
        Ok(sqlx::query_as(
            "select kid, alg, private_der, public_jwk, active, created_at, retired_at, revoked_at \
             from signing_keys order by created_at desc",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// A cheap fingerprint of the key table: (keys, revoked keys). Keys are never deleted, so
    /// a rotation or a revocation always changes it; instances that cannot be told of changes
    /// poll it.
    pub async fn signing_keys_version(&self) -> StoreResult<(i64, i64)> {
        Ok(
            sqlx::query_as("select count(*), count(revoked_at) from signing_keys")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Revokes key `kid` at once: it stops verifying and is no longer published. If it was the
    /// active key, `replacement` becomes the active key in the same transaction, so there is
    /// never a moment without one. Sessions are untouched: their refresh tokens get access
    /// tokens signed by the active key.
    pub async fn revoke_signing_key(
        &self,
        kid: &str,
        replacement: &StoredSigningKey,
        now: i64,
    ) -> StoreResult<KeyRevocation> {
        let mut tx = self.writer.begin().await?;
        let was_active: Option<(String,)> = sqlx::query_as(
            "update signing_keys set active = null, retired_at = $1, revoked_at = $1 \
             where kid = $2 and active = 1 returning kid",
        )
        .bind(now)
        .bind(kid)
        .fetch_optional(&mut *tx)
        .await?;
        if was_active.is_some() {
            insert_active(replacement, now).execute(&mut *tx).await?;
            tx.commit().await?;
            return Ok(KeyRevocation::ActiveReplaced);
        }
        let revoked: Option<(String,)> = sqlx::query_as(
            "update signing_keys set revoked_at = $1 where kid = $2 and revoked_at is null \
             returning kid",
        )
        .bind(now)
        .bind(kid)
        .fetch_optional(&mut *tx)
        .await?;
        if revoked.is_some() {
            tx.commit().await?;
            return Ok(KeyRevocation::Revoked);
        }
        let known: Option<(String,)> =
            sqlx::query_as("select kid from signing_keys where kid = $1")
                .bind(kid)
                .fetch_optional(&mut *tx)
                .await?;
        Ok(match known {
            Some(_) => KeyRevocation::AlreadyRevoked,
            None => KeyRevocation::Unknown,
        })
    }

    /// Inserts a key as the active one unless another instance already has one active.
    /// Returns `Ok(false)` when that race was lost (the unique `active` column decided).
    pub async fn insert_first_active_key(&self, key: &StoredSigningKey) -> StoreResult<bool> {
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
    pub async fn rotate_signing_key(&self, key: &StoredSigningKey, now: i64) -> StoreResult<()> {
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
fn insert_active(key: &StoredSigningKey, created_at: i64) -> Query<'_, Any, AnyArguments> {
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
