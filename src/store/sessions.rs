use sqlx::{Any, FromRow, Transaction};

use super::{Store, StoreResult};

#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub provider: Option<String>,
    /// JSON array, e.g. `["pwd"]`.
    pub amr: String,
    pub user_agent: Option<String>,
    pub ip_address: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub kind: &'a str,
    pub provider: Option<&'a str>,
    pub amr: &'a str,
    pub user_agent: Option<&'a str>,
    pub ip_address: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

/// The columns of [`SessionRow`], as a macro so that queries stay `&'static str` (sqlx 0.9
/// refuses dynamic SQL strings).
macro_rules! session_columns {
    () => {
        "id, user_id, kind, provider, amr, user_agent, ip_address, created_at, last_seen_at, \
         expires_at, revoked_at"
    };
}
pub(super) use session_columns;

impl Store {
    pub(crate) async fn insert_session(
        tx: &mut Transaction<'static, Any>,
        session: &NewSession<'_>,
    ) -> StoreResult<()> {
        sqlx::query(
            "insert into user_sessions (id, user_id, kind, provider, amr, user_agent, ip_address, \
             created_at, last_seen_at, expires_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9)",
        )
        .bind(session.id)
        .bind(session.user_id)
        .bind(session.kind)
        .bind(session.provider)
        .bind(session.amr)
        .bind(session.user_agent)
        .bind(session.ip_address)
        .bind(session.now)
        .bind(session.expires_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn find_session(&self, id: &str) -> StoreResult<Option<SessionRow>> {
        let sql = concat!(
            "select ",
            session_columns!(),
            " from user_sessions where id = $1"
        );
        Ok(sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Sessions that are neither revoked nor past their absolute or idle expiry, newest first.
    pub async fn list_live_sessions(
        &self,
        user_id: &str,
        now: i64,
        idle_timeout: i64,
    ) -> StoreResult<Vec<SessionRow>> {
        let sql = concat!(
            "select ",
            session_columns!(),
            " from user_sessions where user_id = $1 and revoked_at is null \
             and expires_at > $2 and last_seen_at > $3 order by created_at desc, id desc"
        );
        Ok(sqlx::query_as(sql)
            .bind(user_id)
            .bind(now)
            .bind(now - idle_timeout)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Revokes one session if it is still live; `Ok(false)` when it was already revoked or
    /// does not exist (or, with `owner`, belongs to someone else).
    pub async fn revoke_session(
        &self,
        id: &str,
        owner: Option<&str>,
        reason: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "update user_sessions set revoked_at = $1, revoked_reason = $2 \
             where id = $3 and revoked_at is null and ($4 is null or user_id = $4)",
        )
        .bind(now)
        .bind(reason)
        .bind(id)
        .bind(owner)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Revokes every live session of a user, except `keep` when given. Returns how many.
    pub async fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
        reason: &str,
        now: i64,
    ) -> StoreResult<u64> {
        let result = sqlx::query(
            "update user_sessions set revoked_at = $1, revoked_reason = $2 \
             where user_id = $3 and revoked_at is null and ($4 is null or id <> $4)",
        )
        .bind(now)
        .bind(reason)
        .bind(user_id)
        .bind(keep)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }

    /// Deletes up to `batch` sessions that ended before `cutoff` (expired or revoked), with
    /// their refresh tokens (cascade). Small batches keep each write lock short.
    pub async fn purge_ended_sessions(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        let result = sqlx::query(
            "delete from user_sessions where id in (select id from user_sessions \
             where expires_at < $1 or revoked_at < $1 limit $2)",
        )
        .bind(cutoff)
        .bind(batch)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }
}
