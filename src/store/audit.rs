//! The audit log (`audit_events`): appending an event, reading events back for the admin API,
//! and purging those past retention.

use serde_json::Value;
use sqlx::FromRow;

use super::{Store, StoreResult};

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    pub kind: String,
    pub user_id: Option<String>,
    pub session_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// A JSON object.
    pub detail: Value,
}

/// An `audit_events` row as both engines return it (`detail` is JSON text).
#[derive(FromRow)]
struct RawAudit {
    id: String,
    at: i64,
    #[sqlx(rename = "type")]
    kind: String,
    user_id: Option<String>,
    session_id: Option<String>,
    ip_address: Option<String>,
    user_agent: Option<String>,
    detail: String,
}

impl From<RawAudit> for AuditEntry {
    fn from(row: RawAudit) -> AuditEntry {
        AuditEntry {
            detail: serde_json::from_str(&row.detail).unwrap_or(Value::Null),
            id: row.id,
            at: row.at,
            kind: row.kind,
            user_id: row.user_id,
            session_id: row.session_id,
            ip_address: row.ip_address,
            user_agent: row.user_agent,
        }
    }
}

impl Store {
    pub async fn insert_audit_event(&self, event: &AuditEntry) -> StoreResult<()> {
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
        .bind(event.detail.to_string())
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Newest first; ids are UUIDv7, so they sort by time.
    pub async fn audit_events(
        &self,
        user_id: Option<&str>,
        limit: i64,
    ) -> StoreResult<Vec<AuditEntry>> {
        let rows: Vec<RawAudit> = sqlx::query_as(
            "select id, at, type, user_id, session_id, ip_address, user_agent, detail \
             from audit_events where ($1 is null or user_id = $1) order by id desc limit $2",
        )
        .bind(user_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(AuditEntry::from).collect())
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
