//! Refresh tokens (`refresh_tokens`): looking one up, and the rotation transaction that spends
//! it (compare-and-set), with the grace-window answer for a spent one (`domain::SpentToken`).

use sqlx::{Any, FromRow, Transaction};

use super::sessions::select_session_with_user;
use super::{SessionsToEnd, Store, StoreResult};
use crate::domain::{self, RevokeReason, SpentTokenVerdict};
use crate::domain::{Session, User};
use crate::domain::{SessionId, SessionStatus, UserId};

/// What the caller prepared for a rotation: the presented token's hash and its would-be
/// successor (id, hash, and the successor sealed under a key only the presented token yields).
pub struct RotationRequest<'a> {
    pub presented_hash: &'a [u8],
    pub successor_id: &'a str,
    pub successor_hash: &'a [u8],
    pub successor_sealed: &'a [u8],
    pub now: i64,
    pub grace_secs: i64,
    pub idle_timeout_secs: i64,
}

#[derive(Debug)]
pub enum RefreshOutcome {
    /// The presented token was live and is now spent; the prepared successor is stored.
    Rotated {
        session: Session,
        user: User,
    },
    /// The presented token was spent within the grace window and its successor is unused:
    /// the caller unseals and returns that same successor.
    Replayed {
        session: Session,
        user: User,
        sealed: Vec<u8>,
    },
    /// A spent token outside the grace window: the session has just been revoked.
    Reused {
        session_id: SessionId,
        user_id: UserId,
    },
    Unknown,
    /// A token spent within the grace window whose successor cannot be handed back (a guest
    /// upgrade that did not present it): refused, but not treated as reuse.
    Superseded,
    SessionRevoked,
    SessionExpired,
}

#[derive(FromRow)]
struct SpentToken {
    session_id: String,
    rotated_at: Option<i64>,
    successor_sealed: Option<Vec<u8>>,
    successor_rotated_at: Option<i64>,
}

impl Store {
    pub(crate) async fn insert_refresh_token(
        tx: &mut Transaction<'static, Any>,
        id: &str,
        session_id: &str,
        hash: &[u8],
        parent_id: Option<&str>,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "insert into refresh_tokens (id, session_id, token_hash, parent_id, created_at) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(session_id)
        .bind(hash)
        .bind(parent_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// The session (and its user) of a refresh token that is still the session's current one
    /// (neither rotated nor revoked).
    pub async fn session_of_unspent_refresh_token(
        &self,
        hash: &[u8],
    ) -> StoreResult<Option<(SessionId, UserId)>> {
        let found: Option<(String, String)> = sqlx::query_as(
            "select t.session_id, s.user_id from refresh_tokens t \
             join user_sessions s on s.id = t.session_id \
             where t.token_hash = $1 and t.rotated_at is null and t.revoked_at is null",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.map(owner_ids))
    }

    /// The session (and its user) a refresh token, spent or not, belongs to.
    pub async fn session_of_refresh_token(
        &self,
        hash: &[u8],
    ) -> StoreResult<Option<(SessionId, UserId)>> {
        let found: Option<(String, String)> = sqlx::query_as(
            "select t.session_id, s.user_id from refresh_tokens t \
             join user_sessions s on s.id = t.session_id where t.token_hash = $1",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.map(owner_ids))
    }

    /// Spends a refresh token in one transaction. The `UPDATE … WHERE rotated_at IS NULL
    /// RETURNING` is the compare-and-set: of any number of concurrent callers exactly one gets a
    /// row back; the others find the token spent and take the grace-window or reuse path.
    pub async fn rotate_refresh_token(
        &self,
        req: &RotationRequest<'_>,
    ) -> StoreResult<RefreshOutcome> {
        let mut tx = self.writer.begin().await?;
        let won: Option<(String, String)> = sqlx::query_as(
            "update refresh_tokens set rotated_at = $1, successor_id = $2, successor_sealed = $3 \
             where token_hash = $4 and rotated_at is null and revoked_at is null \
             returning id, session_id",
        )
        .bind(req.now)
        .bind(req.successor_id)
        .bind(req.successor_sealed)
        .bind(req.presented_hash)
        .fetch_optional(&mut *tx)
        .await?;

        let outcome = match won {
            Some((token_id, session_id)) => {
                let (session, user) = match live_session(&mut tx, &session_id, req).await? {
                    Ok(found) => found,
                    Err(ended) => return Ok(ended), // dropping `tx` rolls back
                };
                Self::insert_refresh_token(
                    &mut tx,
                    req.successor_id,
                    &session_id,
                    req.successor_hash,
                    Some(&token_id),
                    req.now,
                )
                .await?;
                sqlx::query("update user_sessions set last_seen_at = $1 where id = $2")
                    .bind(req.now)
                    .bind(&session_id)
                    .execute(&mut *tx)
                    .await?;
                RefreshOutcome::Rotated {
                    session: Session {
                        last_seen_at: req.now,
                        ..session
                    },
                    user,
                }
            }
            None => self.spent_token_outcome(&mut tx, req).await?,
        };
        tx.commit().await?;
        Ok(outcome)
    }

    async fn spent_token_outcome(
        &self,
        tx: &mut Transaction<'static, Any>,
        req: &RotationRequest<'_>,
    ) -> StoreResult<RefreshOutcome> {
        let spent: Option<SpentToken> = sqlx::query_as(
            "select t.session_id, t.rotated_at, t.successor_sealed, \
             s.rotated_at as successor_rotated_at \
             from refresh_tokens t left join refresh_tokens s on s.id = t.successor_id \
             where t.token_hash = $1",
        )
        .bind(req.presented_hash)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(spent) = spent else {
            return Ok(RefreshOutcome::Unknown);
        };
        let (session, user) = match live_session(tx, &spent.session_id, req).await? {
            Ok(found) => found,
            Err(ended) => return Ok(ended),
        };
        let verdict = domain::SpentToken {
            rotated_at: spent.rotated_at,
            successor_used: spent.successor_rotated_at.is_some(),
            successor_kept: spent.successor_sealed.is_some(),
        }
        .verdict(req.now, req.grace_secs);
        match (verdict, spent.successor_sealed) {
            (SpentTokenVerdict::Replayed, Some(sealed)) => Ok(RefreshOutcome::Replayed {
                session,
                user,
                sealed,
            }),
            (SpentTokenVerdict::Superseded, _) => Ok(RefreshOutcome::Superseded),
            _ => {
                let this = SessionsToEnd::One {
                    id: session.id.as_str(),
                    owner: None,
                };
                Store::end_sessions_in(tx, this, RevokeReason::RefreshTokenReused, req.now).await?;
                Ok(RefreshOutcome::Reused {
                    session_id: session.id,
                    user_id: session.user_id,
                })
            }
        }
    }
}

/// The session behind a token with its user (read in the same statement: the token response
/// needs both, and one round trip less is measurable on the hottest write), or the outcome
/// that refuses it.
async fn live_session(
    tx: &mut Transaction<'static, Any>,
    session_id: &str,
    req: &RotationRequest<'_>,
) -> StoreResult<Result<(Session, User), RefreshOutcome>> {
    Ok(
        match select_session_with_user(&mut **tx, session_id).await? {
            None => Err(RefreshOutcome::Unknown),
            Some((session, user)) => match session.status(req.now, req.idle_timeout_secs) {
                SessionStatus::Live => Ok((session, user)),
                SessionStatus::Revoked => Err(RefreshOutcome::SessionRevoked),
                SessionStatus::Expired | SessionStatus::Idle => Err(RefreshOutcome::SessionExpired),
            },
        },
    )
}

/// A (session id, user id) pair as the store read it.
fn owner_ids((session_id, user_id): (String, String)) -> (SessionId, UserId) {
    (SessionId::trusted(session_id), UserId::trusted(user_id))
}
