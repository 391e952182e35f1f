//! Shared counters for abuse limits: failed logins per (account, client) and fixed-window
//! budgets per key. Every statement is an atomic upsert, so concurrent instances count
//! together without losing increments.

use super::{Store, StoreResult};

/// The account-wide row's `client`.
pub const EVERY_CLIENT: &str = "*";

/// What reserving a credential check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The pair is blocked until then: no check.
    Blocked { until: i64 },
    /// The check may run; `blocks` when it set the pair's block (it stays if the check fails).
    Reserved { blocks: bool },
}

/// The throttle rows that concern one attempt.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThrottleState {
    pub client_failures: i64,
    pub client_blocked_until: i64,
    pub account_blocked_until: i64,
}

impl Store {
    /// The current counters of `account` from `client` (failures older than `window_start`
    /// do not count).
    pub async fn login_throttle(
        &self,
        account: &str,
        client: &str,
        window_start: i64,
    ) -> StoreResult<ThrottleState> {
        let rows: Vec<(String, i64, i64, i64)> = sqlx::query_as(
            "select client, failures, window_start, blocked_until from login_throttle \
             where account = $1 and client in ($2, $3)",
        )
        .bind(account)
        .bind(client)
        .bind(EVERY_CLIENT)
        .fetch_all(&self.pool)
        .await?;
        let mut state = ThrottleState::default();
        for (row_client, failures, started, blocked_until) in rows {
            if row_client == EVERY_CLIENT {
                state.account_blocked_until = blocked_until;
            } else {
                state.client_blocked_until = blocked_until;
                state.client_failures = if started > window_start { failures } else { 0 };
            }
        }
        Ok(state)
    }

    /// Reserves one credential check of `account` from `client`, atomically: unless the pair
    /// is blocked, counts the attempt as a failure in advance (a window that ended restarts
    /// at one) and, when `block_after(failures)` says so, blocks the pair before the check runs.
    /// So concurrent attempts can never check more than the budget allows: each one sees the
    /// count and block of every attempt before it. A check that passes clears the pair
    /// ([`Store::clear_login_failures`]).
    pub async fn reserve_login_attempt(
        &self,
        account: &str,
        client: &str,
        now: i64,
        window_start: i64,
        block_after: impl Fn(i64) -> Option<i64>,
    ) -> StoreResult<Reservation> {
        let mut tx = self.writer.begin().await?;
        // The upsert holds the row's lock (PostgreSQL) or the only writer (SQLite) until commit.
        let (failures, blocked_until): (i64, i64) = sqlx::query_as(
            "insert into login_throttle (account, client, failures, window_start, blocked_until) \
             values ($1, $2, 1, $3, 0) \
             on conflict (account, client) do update set \
             failures = case when login_throttle.blocked_until > $3 then login_throttle.failures \
                        when login_throttle.window_start <= $4 then 1 \
                        else login_throttle.failures + 1 end, \
             window_start = case when login_throttle.blocked_until > $3 \
                            then login_throttle.window_start \
                            when login_throttle.window_start <= $4 then $3 \
                            else login_throttle.window_start end \
             returning failures, blocked_until",
        )
        .bind(account)
        .bind(client)
        .bind(now)
        .bind(window_start)
        .fetch_one(&mut *tx)
        .await?;
        if blocked_until > now {
            tx.commit().await?;
            return Ok(Reservation::Blocked {
                until: blocked_until,
            });
        }
        let blocks = match block_after(failures) {
            Some(delay) => {
                sqlx::query(
                    "update login_throttle set blocked_until = $1 \
                     where account = $2 and client = $3 and blocked_until < $1",
                )
                .bind(now + delay)
                .bind(account)
                .bind(client)
                .execute(&mut *tx)
                .await?;
                true
            }
            None => false,
        };
        tx.commit().await?;
        Ok(Reservation::Reserved { blocks })
    }

    /// Counts one failure of `account` from `client` (a window that ended restarts at 1) and
    /// returns the failures in the current window.
    pub async fn count_login_failure(
        &self,
        account: &str,
        client: &str,
        now: i64,
        window_start: i64,
    ) -> StoreResult<i64> {
        let (failures,): (i64,) = sqlx::query_as(
            "insert into login_throttle (account, client, failures, window_start, blocked_until) \
             values ($1, $2, 1, $3, 0) \
             on conflict (account, client) do update set \
             failures = case when login_throttle.window_start <= $4 then 1 \
                        else login_throttle.failures + 1 end, \
             window_start = case when login_throttle.window_start <= $4 then $3 \
                            else login_throttle.window_start end \
             returning failures",
        )
        .bind(account)
        .bind(client)
        .bind(now)
        .bind(window_start)
        .fetch_one(&self.writer)
        .await?;
        Ok(failures)
    }

    /// Blocks `account` from `client` until `until` (never shortens a longer block).
    pub async fn block_login(&self, account: &str, client: &str, until: i64) -> StoreResult<()> {
        sqlx::query(
            "update login_throttle set blocked_until = $1 \
             where account = $2 and client = $3 and blocked_until < $1",
        )
        .bind(until)
        .bind(account)
        .bind(client)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Forgets the failures of `account` from `client` (after a success), or from everywhere.
    pub async fn clear_login_failures(
        &self,
        account: &str,
        client: Option<&str>,
    ) -> StoreResult<u64> {
        let result = sqlx::query(
            "delete from login_throttle where account = $1 and ($2 is null or client = $2)",
        )
        .bind(account)
        .bind(client)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected())
    }

    /// Counts one hit on `key` in the window starting at `window_start`; returns the hits so far.
    pub async fn hit_rate_window(&self, key: &str, window_start: i64) -> StoreResult<i64> {
        let (hits,): (i64,) = sqlx::query_as(
            "insert into rate_windows (key, window_start, hits) values ($1, $2, 1) \
             on conflict (key, window_start) do update set hits = rate_windows.hits + 1 \
             returning hits",
        )
        .bind(key)
        .bind(window_start)
        .fetch_one(&self.writer)
        .await?;
        Ok(hits)
    }

    /// Deletes counters that no longer limit anything, up to `batch` of each kind.
    pub async fn purge_limits(&self, now: i64, window_start: i64, batch: i64) -> StoreResult<u64> {
        let throttles = sqlx::query(
            "delete from login_throttle where (account, client) in (select account, client \
             from login_throttle where window_start <= $1 and blocked_until < $2 limit $3)",
        )
        .bind(window_start)
        .bind(now)
        .bind(batch)
        .execute(&self.writer)
        .await?;
        let windows = sqlx::query(
            "delete from rate_windows where (key, window_start) in (select key, window_start \
             from rate_windows where window_start < $1 limit $2)",
        )
        .bind(now - 3600)
        .bind(batch)
        .execute(&self.writer)
        .await?;
        Ok(throttles.rows_affected() + windows.rows_affected())
    }
}
