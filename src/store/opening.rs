//! Opening a session: the session row and its first refresh token, written in one transaction
//! with the check that allows it, so nothing can slip between the check and the write.

use sqlx::{Any, Transaction};

use super::{NewSession, NewUser, SessionsToEnd, Store, StoreResult};
use crate::domain::RevokeReason;

/// The session to open, with its first refresh token.
pub struct OpenSession<'a> {
    pub session: NewSession<'a>,
    pub refresh_token_id: &'a str,
    pub refresh_token_hash: &'a [u8],
    /// The user's live sessions may not exceed this (`sessions.max_per_user`; 0 = no limit).
    pub cap: SessionCap,
}

/// How many live sessions a user may hold, and what "live" means (the idle timeout).
#[derive(Debug, Clone, Copy)]
pub struct SessionCap {
    pub max_per_user: i64,
    pub idle_timeout_secs: i64,
}

/// What must hold for the session to open, checked in the session's own transaction.
pub enum Precondition<'a> {
    /// A new user, inserted first; fails when the email is taken.
    NewUser(&'a NewUser<'a>),
    /// A login: the hash the password was verified against is still the user's and the user is
    /// not disabled (see [`Store::lock_current_credentials`]).
    CurrentCredentials { verified_hash: &'a str },
    /// The bridge: the user is not disabled (see [`Store::lock_enabled_user`]).
    EnabledUser,
}

impl Store {
    /// Opens the session if `precondition` holds; `Ok(None)` (and nothing written) if not.
    /// Past the user's cap, the least recently used of their other live sessions end (reason
    /// `evicted`) in the same transaction; their ids are returned. Every precondition holds the
    /// user's row lock until commit, so two sessions opened at once for one user are counted
    /// one after the other and leave exactly the cap.
    pub async fn open_session(
        &self,
        precondition: Precondition<'_>,
        open: &OpenSession<'_>,
    ) -> StoreResult<Option<Vec<String>>> {
        let mut tx = self.writer.begin().await?;
        let user_id = open.session.user_id;
        let allowed = match precondition {
            Precondition::NewUser(user) => Store::insert_user(&mut tx, user).await?,
            Precondition::CurrentCredentials { verified_hash } => {
                Store::lock_current_credentials(&mut tx, user_id, verified_hash).await?
            }
            Precondition::EnabledUser => Store::lock_enabled_user(&mut tx, user_id).await?,
        };
        if !allowed {
            return Ok(None); // dropping `tx` rolls back
        }
        Store::insert_session(&mut tx, &open.session).await?;
        let session_id = open.session.id;
        let (id, hash, now) = (
            open.refresh_token_id,
            open.refresh_token_hash,
            open.session.now,
        );
        Store::insert_refresh_token(&mut tx, id, session_id, hash, None, now).await?;
        let evicted = Store::evict_beyond_cap(&mut tx, user_id, session_id, open.cap, now).await?;
        tx.commit().await?;
        Ok(Some(evicted))
    }

    /// Ends the least recently used live sessions of `user_id` other than `keep` until the
    /// user holds `cap.max_per_user` live sessions (`keep` included).
    async fn evict_beyond_cap(
        tx: &mut Transaction<'static, Any>,
        user_id: &str,
        keep: &str,
        cap: SessionCap,
        now: i64,
    ) -> StoreResult<Vec<String>> {
        if cap.max_per_user <= 0 {
            return Ok(Vec::new());
        }
        let others: Vec<(String,)> = sqlx::query_as(
            "select id from user_sessions where user_id = $1 and id <> $2 \
             and revoked_at is null and expires_at > $3 and last_seen_at > $4 \
             order by last_seen_at desc, created_at desc, id desc",
        )
        .bind(user_id)
        .bind(keep)
        .bind(now)
        .bind(now - cap.idle_timeout_secs)
        .fetch_all(&mut **tx)
        .await?;
        let room = usize::try_from(cap.max_per_user - 1).unwrap_or(0);
        let beyond: Vec<String> = others.into_iter().skip(room).map(|(id,)| id).collect();
        let mut ended = Vec::with_capacity(beyond.len());
        for id in &beyond {
            let this = SessionsToEnd::One { id, owner: None };
            ended.extend(Store::end_sessions_in(tx, this, RevokeReason::Evicted, now).await?);
        }
        Ok(ended)
    }
}
