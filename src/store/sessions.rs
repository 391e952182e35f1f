//! Sessions (`user_sessions`): reading them, listing a user's live ones, and ending them — the
//! one statement every ending runs (`end_sessions_in`).

use sqlx::{Any, FromRow, Transaction};

use super::{Store, StoreResult, decode_amr, encode_amr};
use crate::domain::{RevokeReason, SessionId, UserId};
use crate::domain::{Session, User};

/// A session row joined with its user's columns (see [`session_and_user_columns`]).
#[derive(FromRow)]
struct SessionAndUser {
    #[sqlx(flatten)]
    session: RawSession,
    email: Option<String>,
    is_guest: i64,
    email_verified: i64,
    user_created_at: i64,
}

impl SessionAndUser {
    fn split(self) -> (Session, User) {
        let user = User {
            id: UserId::trusted(self.session.user_id.clone()),
            email: self.email,
            is_guest: self.is_guest != 0,
            email_verified: self.email_verified != 0,
            created_at: self.user_created_at,
        };
        (self.session.into(), user)
    }
}

/// A `user_sessions` row as both engines return it (`amr` is JSON text).
#[derive(FromRow)]
struct RawSession {
    id: String,
    user_id: String,
    kind: String,
    provider: Option<String>,
    amr: String,
    user_agent: Option<String>,
    ip_address: Option<String>,
    created_at: i64,
    last_seen_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    auth_time: Option<i64>,
}

impl From<RawSession> for Session {
    fn from(row: RawSession) -> Session {
        Session {
            amr: decode_amr(&row.amr),
            id: SessionId::trusted(row.id),
            user_id: UserId::trusted(row.user_id),
            kind: row.kind,
            provider: row.provider,
            user_agent: row.user_agent,
            ip_address: row.ip_address,
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            auth_time: row.auth_time.unwrap_or(row.created_at),
        }
    }
}

/// Which sessions an ending covers. Never "every session": one, or one user's.
#[derive(Debug, Clone, Copy)]
pub enum SessionsToEnd<'a> {
    /// One session; with `owner`, only if it belongs to that user.
    One { id: &'a str, owner: Option<&'a str> },
    /// Every live session of a user, except `keep`.
    OfUser {
        user_id: &'a str,
        keep: Option<&'a str>,
    },
}

pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub kind: &'a str,
    pub provider: Option<&'a str>,
    pub amr: &'a [String],
    pub user_agent: Option<&'a str>,
    pub ip_address: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

/// The columns of [`Session`], as a macro so that queries stay `&'static str` (sqlx 0.9
/// refuses dynamic SQL strings).
macro_rules! session_columns {
    () => {
        "id, user_id, kind, provider, amr, user_agent, ip_address, created_at, last_seen_at, \
         expires_at, revoked_at, auth_time"
    };
}
/// The columns of [`SessionAndUser`], from `user_sessions s join users u`.
macro_rules! session_and_user_columns {
    () => {
        "s.id, s.user_id, s.kind, s.provider, s.amr, s.user_agent, s.ip_address, \
         s.created_at, s.last_seen_at, s.expires_at, s.revoked_at, s.auth_time, \
         u.email, u.is_guest, u.email_verified, u.created_at as user_created_at"
    };
}

/// Session `id` with its user, in one statement, through the pool or inside a transaction.
pub(super) async fn select_session_with_user<'e, E>(
    executor: E,
    id: &str,
) -> StoreResult<Option<(Session, User)>>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let sql = concat!(
        "select ",
        session_and_user_columns!(),
        " from user_sessions s join users u on u.id = s.user_id where s.id = $1"
    );
    let row: Option<SessionAndUser> = sqlx::query_as(sql)
        .bind(id)
        .fetch_optional(executor)
        .await?;
    Ok(row.map(SessionAndUser::split))
}

impl Store {
    pub(crate) async fn insert_session(
        tx: &mut Transaction<'static, Any>,
        session: &NewSession<'_>,
    ) -> StoreResult<()> {
        sqlx::query(
            "insert into user_sessions (id, user_id, kind, provider, amr, user_agent, ip_address, \
             created_at, last_seen_at, expires_at, auth_time) \
             values ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $8)",
        )
        .bind(session.id)
        .bind(session.user_id)
        .bind(session.kind)
        .bind(session.provider)
        .bind(encode_amr(session.amr))
        .bind(session.user_agent)
        .bind(session.ip_address)
        .bind(session.now)
        .bind(session.expires_at)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn find_session(&self, id: &str) -> StoreResult<Option<Session>> {
        let sql = concat!(
            "select ",
            session_columns!(),
            " from user_sessions where id = $1"
        );
        let row: Option<RawSession> = sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(Session::from))
    }

    /// Sessions that are neither revoked nor past their absolute or idle expiry, newest first.
    pub async fn list_live_sessions(
        &self,
        user_id: &str,
        now: i64,
        idle_timeout: i64,
    ) -> StoreResult<Vec<Session>> {
        let sql = concat!(
            "select ",
            session_columns!(),
            " from user_sessions where user_id = $1 and revoked_at is null \
             and expires_at > $2 and last_seen_at > $3 order by created_at desc, id desc"
        );
        let rows: Vec<RawSession> = sqlx::query_as(sql)
            .bind(user_id)
            .bind(now)
            .bind(now - idle_timeout)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(Session::from).collect())
    }

    /// Ends the live sessions `which` names, for `reason`, in a transaction of its own;
    /// returns the ids it ended (a session already ended, or not the owner's, is not among
    /// them).
    pub async fn end_sessions(
        &self,
        which: SessionsToEnd<'_>,
        reason: RevokeReason,
        now: i64,
    ) -> StoreResult<Vec<String>> {
        let mut tx = self.writer.begin().await?;
        let ended = Store::end_sessions_in(&mut tx, which, reason, now).await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// The one statement that ends sessions, inside the caller's transaction: logout,
    /// revocation, reuse detection, password change, disable and eviction all run it, so every
    /// ending stamps `revoked_at` and `revoked_reason` alike (and fires the same trigger that
    /// writes its `session.ended` event).
    pub(crate) async fn end_sessions_in(
        tx: &mut Transaction<'static, Any>,
        which: SessionsToEnd<'_>,
        reason: RevokeReason,
        now: i64,
    ) -> StoreResult<Vec<String>> {
        let (id, user_id, keep) = match which {
            SessionsToEnd::One { id, owner } => (Some(id), owner, None),
            SessionsToEnd::OfUser { user_id, keep } => (None, Some(user_id), keep),
        };
        let rows: Vec<(String,)> = sqlx::query_as(
            "update user_sessions set revoked_at = $1, revoked_reason = $2 \
             where revoked_at is null and ($3 is null or id = $3) \
             and ($4 is null or user_id = $4) and ($5 is null or id <> $5) returning id",
        )
        .bind(now)
        .bind(reason.as_str())
        .bind(id)
        .bind(user_id)
        .bind(keep)
        .fetch_all(&mut **tx)
        .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// A session together with its user, as the session gate caches it.
    pub async fn session_with_user(&self, id: &str) -> StoreResult<Option<(Session, User)>> {
        select_session_with_user(&self.pool, id).await
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
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected())
    }
}

impl Store {
    pub async fn count_live_sessions(&self, now: i64, idle_timeout: i64) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "select count(*) from user_sessions \
             where revoked_at is null and expires_at > $1 and last_seen_at > $2",
        )
        .bind(now)
        .bind(now - idle_timeout)
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }
}
