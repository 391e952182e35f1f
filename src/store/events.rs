//! The session event log (`session_events`). Rows are written by database triggers in the
//! transaction of the change they record (see `migrations/*/0005_session_events.sql` and
//! `0009_key_retired_event.sql`); this
//! module only reads them and purges old ones.

use sqlx::FromRow;

use super::{Store, StoreResult};
use crate::domain::{RevokeReason, SessionEvent, SessionEventKind, SessionId, UserId};

/// A `session_events` row as both engines return it.
#[derive(FromRow)]
struct RawEvent {
    id: i64,
    at: i64,
    #[sqlx(rename = "type")]
    kind: String,
    user_id: String,
    session_id: Option<String>,
    reason: Option<String>,
    kid: Option<String>,
}

impl From<RawEvent> for SessionEvent {
    fn from(row: RawEvent) -> SessionEvent {
        let reason = row.reason.as_deref().and_then(|text| {
            let parsed = RevokeReason::parse(text);
            if parsed.is_none() {
                tracing::warn!(
                    event = row.id,
                    reason = text,
                    "an ended session's reason this version does not know"
                );
            }
            parsed
        });
        SessionEvent {
            id: row.id,
            at: row.at,
            kind: SessionEventKind::parse(&row.kind),
            user_id: (!row.user_id.is_empty()).then(|| UserId::trusted(row.user_id)),
            session_id: row.session_id.map(SessionId::trusted),
            reason,
            kid: row.kid,
        }
    }
}

impl Store {
    /// Up to `limit` events with an id above `after`, in id order.
    pub async fn events_after(&self, after: i64, limit: i64) -> StoreResult<Vec<SessionEvent>> {
        let rows: Vec<RawEvent> = sqlx::query_as(
            "select id, at, type, user_id, session_id, reason, kid from session_events \
             where id > $1 order by id limit $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(SessionEvent::from).collect())
    }

    /// (session id, when it ended) of every session ended at or after `since` by an event up to
    /// id `through`: what an instance must know at start to validate tokens from memory.
    pub async fn sessions_ended_since(
        &self,
        since: i64,
        through: i64,
    ) -> StoreResult<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "select session_id, at from session_events \
             where type = 'session.ended' and at >= $1 and id <= $2 and session_id is not null",
        )
        .bind(since)
        .bind(through)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The id of the newest event (0 when there is none).
    pub async fn last_event_id(&self) -> StoreResult<i64> {
        Ok(self.event_bounds().await?.1)
    }

    /// (the largest id the purge has deleted, the id of the newest event), in one read. When
    /// the purge has emptied the table, the newest event is the last one it deleted.
    pub async fn event_bounds(&self) -> StoreResult<(i64, i64)> {
        let (purged, newest): (i64, Option<i64>) = sqlx::query_as(
            "select (select through from session_events_purged where singleton = 1), \
             (select max(id) from session_events)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((purged, newest.unwrap_or(0).max(purged)))
    }

    /// The largest id the retention purge has deleted: events up to it are gone.
    pub async fn events_purged_through(&self) -> StoreResult<i64> {
        let (through,): (i64,) =
            sqlx::query_as("select through from session_events_purged where singleton = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok(through)
    }

    /// Deletes up to `batch` of the oldest events older than `cutoff` and records how far the
    /// purge has gone, in one transaction. Returns how many were deleted.
    pub async fn purge_events(&self, cutoff: i64, batch: i64) -> StoreResult<u64> {
        let mut tx = self.writer.begin().await?;
        let (through,): (Option<i64>,) = sqlx::query_as(
            "select max(id) from (select id from session_events where at < $1 \
             order by id limit $2) oldest",
        )
        .bind(cutoff)
        .bind(batch)
        .fetch_one(&mut *tx)
        .await?;
        let Some(through) = through else {
            return Ok(0);
        };
        let deleted = sqlx::query("delete from session_events where id <= $1")
            .bind(through)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "update session_events_purged set through = $1 \
             where singleton = 1 and through < $1",
        )
        .bind(through)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(deleted.rows_affected())
    }
}
