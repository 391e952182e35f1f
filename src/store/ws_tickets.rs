//! WebSocket tickets (`ws_tickets`): single-use, short-lived, stored hashed; issued for a live
//! session and redeemed once.

use super::{Store, StoreResult};

impl Store {
    pub async fn insert_ws_ticket(
        &self,
        id: &str,
        hash: &[u8],
        session_id: &str,
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "insert into ws_tickets (id, ticket_hash, session_id, created_at, expires_at) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(hash)
        .bind(session_id)
        .bind(now)
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Marks an unexpired, unredeemed ticket redeemed and returns its session id. One atomic
    /// statement: of two concurrent redeems exactly one gets the row.
    pub async fn redeem_ws_ticket(&self, hash: &[u8], now: i64) -> StoreResult<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "update ws_tickets set redeemed_at = $1 \
             where ticket_hash = $2 and redeemed_at is null and expires_at > $1 \
             returning session_id",
        )
        .bind(now)
        .bind(hash)
        .fetch_optional(&self.writer)
        .await?;
        Ok(row.map(|(id,)| id))
    }

    /// Deletes up to `batch` tickets that expired before `cutoff`.
    pub async fn purge_ws_tickets(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        let result = sqlx::query(
            "delete from ws_tickets where id in \
             (select id from ws_tickets where expires_at < $1 limit $2)",
        )
        .bind(cutoff)
        .bind(batch)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected())
    }
}
