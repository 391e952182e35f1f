//! Service keys (`service_keys`): the hashed keys other backends authenticate with, created and
//! revoked by the operator.

use sqlx::FromRow;

use super::{Store, StoreResult, is_unique_violation};

#[derive(Clone, FromRow)]
pub struct StoredServiceKey {
    pub id: String,
    pub name: String,
    pub key_hash: Vec<u8>,
    pub scopes: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

impl Store {
    /// `Ok(false)` when the name is taken.
    pub async fn insert_service_key(&self, key: &StoredServiceKey) -> StoreResult<bool> {
        let result = sqlx::query(
            "insert into service_keys (id, name, key_hash, scopes, created_at) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(&key.key_hash)
        .bind(&key.scopes)
        .bind(key.created_at)
        .execute(&self.writer)
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn service_keys(&self) -> StoreResult<Vec<StoredServiceKey>> {
        Ok(sqlx::query_as(
            "select id, name, key_hash, scopes, created_at, revoked_at from service_keys \
             order by name",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn revoke_service_key(&self, name: &str, now: i64) -> StoreResult<bool> {
        let result = sqlx::query(
            "update service_keys set revoked_at = $1 where name = $2 and revoked_at is null",
        )
        .bind(now)
        .bind(name)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
