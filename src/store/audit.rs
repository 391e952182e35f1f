use sqlx::FromRow;

use super::{Store, StoreResult};

#[derive(Debug, Clone, FromRow)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// A JSON object.
    pub detail: String,
}

impl Store {
    pub async fn insert_audit_event(&self, event: &AuditRow) -> StoreResult<()> {
        sqlx::query(
            "insert into audit_events \
             (id, at, type, user_id, session_id, ip_address, user_agent, detail) \
             values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&event.id)
        .bind(event.at)
        .bind(&event.kind)
        .bind(&event.user_id)
        .bind(&event.session_id)
        .bind(&event.ip_address)
        .bind(&event.user_agent)
        .bind(&event.detail)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Newest first; ids are UUIDv7, so they sort by time.
    pub async fn audit_events(
        &self,
        user_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<AuditRow>> {
        Ok(sqlx::query_as(
            "select id, at, type, user_id, session_id, ip_address, user_agent, detail \
             from audit_events where ($1 is null or user_id = $1) order by id desc limit $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}

impl Store {
    /// Deletes up to `batch` audit events recorded before `cutoff`.
    pub async fn purge_audit_events(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        let result = sqlx::query(
            "delete from audit_events where id in \
             (select id from audit_events where at < $1 limit $2)",
        )
        .bind(cutoff)
        .bind(batch)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected())
    }
}
