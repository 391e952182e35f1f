//! Guest sessions written in bulk, many rows per statement: how the bench (and an operator's
//! load test) creates a million live sessions in a minute or two instead of through HTTP.
//! Each session is a guest user with one session and one refresh token, exactly the rows a
//! `POST /v1/guest` writes (the triggers record their `session.created` events as usual).

use sqlx::AssertSqlSafe;

use super::{Store, StoreResult, encode_amr};

/// One guest session to write: its ids and the hash of its refresh token.
pub struct SeededSession {
    pub user_id: String,
    pub session_id: String,
    pub refresh_token_id: String,
    pub refresh_token_hash: Vec<u8>,
}

/// Rows per statement: far below SQLite's and PostgreSQL's limits on bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

impl Store {
    /// Writes `sessions` (guest users, their sessions and refresh tokens) created at `now` and
    /// expiring at `expires_at`, in one transaction per batch of statements.
    pub async fn insert_guest_sessions(
        &self,
        sessions: &[SeededSession],
        now: i64,
        expires_at: i64,
    ) -> StoreResult<()> {
        let amr = encode_amr(&["guest".to_string()]);
        // The statements are built from numbered placeholders only; every value is bound.
        for batch in sessions.chunks(ROWS_PER_STATEMENT) {
            let mut tx = self.writer.begin().await?;
            let users = format!(
                "insert into users (id, is_guest, created_at, updated_at) values {}",
                rows(batch.len(), 1, 1, |n| format!("(${n}, 1, $1, $1)"))
            );
            let mut query = sqlx::query(AssertSqlSafe(users.as_str())).bind(now);
            for s in batch {
                query = query.bind(s.user_id.as_str());
            }
            query.execute(&mut *tx).await?;

            let sessions_sql = format!(
                "insert into user_sessions (id, user_id, kind, amr, created_at, last_seen_at, \
                 expires_at) values {}",
                rows(batch.len(), 3, 2, |n| {
                    format!("(${n}, ${}, 'guest', $1, $2, $2, $3)", n + 1)
                })
            );
            let mut query = sqlx::query(AssertSqlSafe(sessions_sql.as_str()))
                .bind(amr.as_str())
                .bind(now)
                .bind(expires_at);
            for s in batch {
                query = query.bind(s.session_id.as_str()).bind(s.user_id.as_str());
            }
            query.execute(&mut *tx).await?;

            let tokens = format!(
                "insert into refresh_tokens (id, session_id, token_hash, created_at) values {}",
                rows(batch.len(), 1, 3, |n| format!(
                    "(${n}, ${}, ${}, $1)",
                    n + 1,
                    n + 2
                ))
            );
            let mut query = sqlx::query(AssertSqlSafe(tokens.as_str())).bind(now);
            for s in batch {
                query = query
                    .bind(s.refresh_token_id.as_str())
                    .bind(s.session_id.as_str())
                    .bind(s.refresh_token_hash.as_slice());
            }
            query.execute(&mut *tx).await?;
            tx.commit().await?;
        }
        Ok(())
    }
}

/// `count` comma-separated row tuples, each rendered by `row` from the number of its first
/// parameter: the statement binds `shared` parameters first, then `width` for each row.
fn rows(count: usize, shared: usize, width: usize, row: impl Fn(usize) -> String) -> String {
    (0..count)
        .map(|i| row(shared + 1 + i * width))
        .collect::<Vec<_>>()
        .join(", ")
}
