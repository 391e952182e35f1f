//! Users (`users`): accounts, guests, password hashes and their change, disable, enable and
//! delete.

use sqlx::{Any, FromRow, Transaction};

use super::{SessionsToEnd, Store, StoreResult, encode_amr, is_unique_violation};
use crate::domain::User;
use crate::domain::UserId;

/// A `users` row as both engines return it (`is_guest` is 0/1).
#[derive(FromRow)]
pub(super) struct RawUser {
    id: String,
    email: Option<String>,
    is_guest: i64,
    email_verified: i64,
    created_at: i64,
}

impl From<RawUser> for User {
    fn from(row: RawUser) -> User {
        User {
            id: UserId::trusted(row.id),
            email: row.email,
            is_guest: row.is_guest != 0,
            email_verified: row.email_verified != 0,
            created_at: row.created_at,
        }
    }
}

/// The stored password hash, read only by password change.
#[derive(FromRow)]
struct Credentials {
    password_hash: Option<String>,
}

/// A user as an operator sees it (`sessiond users show`): never the password hash.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: String,
    pub email: Option<String>,
    pub is_guest: bool,
    pub created_at: i64,
    /// When an operator disabled the account; `None` while it is enabled.
    pub disabled_at: Option<i64>,
}

#[derive(FromRow)]
struct AccountRow {
    id: String,
    email: Option<String>,
    is_guest: i64,
    created_at: i64,
    disabled_at: Option<i64>,
}

impl From<AccountRow> for Account {
    fn from(row: AccountRow) -> Account {
        Account {
            id: row.id,
            email: row.email,
            is_guest: row.is_guest != 0,
            created_at: row.created_at,
            disabled_at: row.disabled_at,
        }
    }
}

/// The login lookup: who has this email, their hash, and whether they may log in at all.
pub struct LoginCandidate {
    pub user_id: UserId,
    pub password_hash: Option<String>,
    pub disabled: bool,
}

#[derive(FromRow)]
struct CandidateRow {
    id: String,
    password_hash: Option<String>,
    disabled_at: Option<i64>,
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub is_guest: bool,
    pub email_verified: bool,
    pub now: i64,
}

impl Store {
    /// Inserts a user inside the caller's transaction. `Ok(false)` means the email is taken:
    /// the unique index decides, so concurrent signups of one email cannot both win.
    pub(crate) async fn insert_user(
        tx: &mut Transaction<'static, Any>,
        user: &NewUser<'_>,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "insert into users (id, email, password_hash, is_guest, email_verified, created_at, \
             updated_at) values ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(user.id)
        .bind(user.email)
        .bind(user.password_hash)
        .bind(i64::from(user.is_guest))
        .bind(i64::from(user.email_verified))
        .bind(user.now)
        .execute(&mut **tx)
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn find_user(&self, id: &str) -> StoreResult<Option<User>> {
        let sql = "select id, email, is_guest, email_verified, created_at from users where id = $1";
        let row: Option<RawUser> = sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(User::from))
    }

    /// The user id, password hash and disabled flag for an email, for login.
    pub async fn find_credentials(&self, email: &str) -> StoreResult<Option<LoginCandidate>> {
        let row: Option<CandidateRow> =
            sqlx::query_as("select id, password_hash, disabled_at from users where email = $1")
                .bind(email)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|c| LoginCandidate {
            user_id: UserId::trusted(c.id),
            password_hash: c.password_hash,
            disabled: c.disabled_at.is_some(),
        }))
    }

    pub async fn password_hash(&self, user_id: &str) -> StoreResult<Option<String>> {
        let row: Option<Credentials> =
            sqlx::query_as("select password_hash from users where id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|c| c.password_hash))
    }

    /// Inside a session-opening transaction: `true` if `verified_hash` (the hash a login just
    /// checked the password against) is still the user's and the user is not disabled, and then
    /// holds the user's row lock until commit. A password change or a disable either commits
    /// first (then this is `false`: the login verified credentials that no longer open
    /// sessions) or waits for this transaction, and then revokes the session it opened. Either
    /// way no session outlives the password it proved, nor starts for a disabled user.
    pub(crate) async fn lock_current_credentials(
        tx: &mut Transaction<'static, Any>,
        user_id: &str,
        verified_hash: &str,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "update users set password_hash = password_hash \
             where id = $1 and password_hash = $2 and disabled_at is null",
        )
        .bind(user_id)
        .bind(verified_hash)
        .execute(&mut **tx)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Replaces the password hash the caller verified (`None` if it is no longer the current
    /// one) and revokes every other session of the user, in one transaction: a new password
    /// never coexists with sessions the old one opened. Returns the revoked session ids.
    pub async fn change_password(
        &self,
        user_id: &str,
        verified_hash: &str,
        hash: &str,
        keep_session: &str,
        now: i64,
    ) -> StoreResult<Option<Vec<String>>> {
        let mut tx = self.writer.begin().await?;
        let changed = sqlx::query(
            "update users set password_hash = $1, updated_at = $2 \
             where id = $3 and password_hash = $4",
        )
        .bind(hash)
        .bind(now)
        .bind(user_id)
        .bind(verified_hash)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() != 1 {
            return Ok(None);
        }
        let others = SessionsToEnd::OfUser {
            user_id,
            keep: Some(keep_session),
        };
        let reason = crate::domain::RevokeReason::PasswordChanged;
        let ended = Store::end_sessions_in(&mut tx, others, reason, now).await?;
        tx.commit().await?;
        Ok(Some(ended))
    }

    /// Inside a session-opening transaction (the bridge): `true` if the user is not disabled,
    /// and then holds the user's row lock until commit, so a disable that runs concurrently
    /// either comes first (and this is `false`) or waits and revokes the session opened here.
    pub(crate) async fn lock_enabled_user(
        tx: &mut Transaction<'static, Any>,
        user_id: &str,
    ) -> StoreResult<bool> {
        let result = sqlx::query(
            "update users set disabled_at = null where id = $1 and disabled_at is null",
        )
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Sets whether the user's address is verified.
    pub async fn set_email_verified(
        &self,
        user_id: &str,
        verified: bool,
        now: i64,
    ) -> StoreResult<()> {
        sqlx::query("update users set email_verified = $1, updated_at = $2 where id = $3")
            .bind(i64::from(verified))
            .bind(now)
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Creates a user with a password and no session (`sessiond users create`). `Ok(false)`
    /// means the email is taken.
    pub async fn create_user(&self, user: &NewUser<'_>) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        if !Store::insert_user(&mut tx, user).await? {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn find_account(&self, id: &str) -> StoreResult<Option<Account>> {
        let row: Option<AccountRow> = sqlx::query_as(
            "select id, email, is_guest, created_at, disabled_at from users where id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Account::from))
    }

    /// The account with this (normalized) email.
    pub async fn find_account_by_email(&self, email: &str) -> StoreResult<Option<Account>> {
        let row: Option<AccountRow> = sqlx::query_as(
            "select id, email, is_guest, created_at, disabled_at from users where email = $1",
        )
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(Account::from))
    }

    /// Disables a user and revokes every live session of theirs (reason `user_disabled`), in one
    /// transaction: a disabled user never keeps a session. Returns the revoked session ids, or
    /// `None` for an unknown user. Disabling a disabled user keeps the first `disabled_at`.
    pub async fn disable_user(&self, user_id: &str, now: i64) -> StoreResult<Option<Vec<String>>> {
        let mut tx = self.writer.begin().await?;
        let found: Option<(String,)> = sqlx::query_as(
            "update users set disabled_at = coalesce(disabled_at, $1), updated_at = $1 \
             where id = $2 returning id",
        )
        .bind(now)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        if found.is_none() {
            return Ok(None);
        }
        let all = SessionsToEnd::OfUser {
            user_id,
            keep: None,
        };
        let reason = crate::domain::RevokeReason::UserDisabled;
        let ended = Store::end_sessions_in(&mut tx, all, reason, now).await?;
        tx.commit().await?;
        Ok(Some(ended))
    }

    /// Lets a disabled user log in again (their ended sessions stay ended). `Ok(false)` for an
    /// unknown user.
    pub async fn enable_user(&self, user_id: &str, now: i64) -> StoreResult<bool> {
        let result =
            sqlx::query("update users set disabled_at = null, updated_at = $1 where id = $2")
                .bind(now)
                .bind(user_id)
                .execute(&self.writer)
                .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Counts users; used by the CLI and tests.
    pub async fn count_users(&self) -> StoreResult<i64> {
        let (n,): (i64,) = sqlx::query_as("select count(*) from users")
            .fetch_one(&self.pool)
            .await?;
        Ok(n)
    }
}

impl Store {
    /// Deletes a user and, by cascade, their sessions, refresh tokens and tickets. Returns the
    /// ids of the sessions that went with them (to announce), or `None` for an unknown user.
    pub async fn delete_user(&self, user_id: &str) -> StoreResult<Option<Vec<String>>> {
        let mut tx = self.writer.begin().await?;
        let sessions: Vec<(String,)> =
            sqlx::query_as("select id from user_sessions where user_id = $1")
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?;
        let deleted = sqlx::query("delete from users where id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((deleted.rows_affected() == 1).then(|| sessions.into_iter().map(|(id,)| id).collect()))
    }
}

/// What became of a guest upgrade.
#[derive(Debug, PartialEq, Eq)]
pub enum UpgradeOutcome {
    Upgraded,
    EmailTaken,
    NotAGuest,
    /// The refresh token presented with the upgrade is not one of this session's.
    ForeignRefreshToken,
}

pub struct GuestUpgrade<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    /// What the session becomes: its kind and `amr`, as a password session has them.
    pub session_kind: &'a str,
    pub session_amr: &'a [String],
    pub session_expires_at: i64,
    pub refresh_token_id: &'a str,
    pub refresh_token_hash: &'a [u8],
    /// The session's refresh token as the client presented it (body or cookie), with the new
    /// token sealed under it, so a tab that races the upgrade with it converges on the new one.
    pub presented: Option<PresentedToken<'a>>,
    pub now: i64,
}

pub struct PresentedToken<'a> {
    pub hash: &'a [u8],
    pub successor_sealed: &'a [u8],
}

impl Store {
    /// Turns a guest into a permanent user in place (same user id), makes the calling session
    /// a permanent password session, and gives it a new refresh token, in one transaction.
    ///
    /// The session keeps one refresh chain: the guest's current token is spent by the upgrade,
    /// with the new token as its successor. When the client presented it, the successor is
    /// sealed under it as a rotation does, so within the grace window it converges on the new
    /// token; later (or once the new token is used) presenting it is reuse.
    pub async fn upgrade_guest(&self, up: &GuestUpgrade<'_>) -> StoreResult<UpgradeOutcome> {
        let mut tx = self.writer.begin().await?;
        if let Some(presented) = &up.presented {
            let owner: Option<(String,)> =
                sqlx::query_as("select session_id from refresh_tokens where token_hash = $1")
                    .bind(presented.hash)
                    .fetch_optional(&mut *tx)
                    .await?;
            if owner.is_none_or(|(session_id,)| session_id != up.session_id) {
                return Ok(UpgradeOutcome::ForeignRefreshToken);
            }
        }
        let updated = sqlx::query(
            "update users set email = $1, password_hash = $2, is_guest = 0, updated_at = $3 \
             where id = $4 and is_guest = 1",
        )
        .bind(up.email)
        .bind(up.password_hash)
        .bind(up.now)
        .bind(up.user_id)
        .execute(&mut *tx)
        .await;
        match updated {
            Ok(result) if result.rows_affected() == 0 => return Ok(UpgradeOutcome::NotAGuest),
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => return Ok(UpgradeOutcome::EmailTaken),
            Err(err) => return Err(err.into()),
        }
        sqlx::query(
            "update user_sessions set kind = $1, amr = $2, expires_at = $3, auth_time = $4 \
             where id = $5 and user_id = $6",
        )
        .bind(up.session_kind)
        .bind(super::encode_amr(up.session_amr))
        .bind(up.session_expires_at)
        .bind(up.now)
        .bind(up.session_id)
        .bind(up.user_id)
        .execute(&mut *tx)
        .await?;
        let successor = Successor {
            id: up.refresh_token_id,
            hash: up.refresh_token_hash,
        };
        Store::replace_refresh_token_in(
            &mut tx,
            up.session_id,
            up.presented.as_ref(),
            successor,
            up.now,
        )
        .await?;
        tx.commit().await?;
        Ok(UpgradeOutcome::Upgraded)
    }
}

/// The refresh token that replaces a session's current one.
pub struct Successor<'a> {
    pub id: &'a str,
    pub hash: &'a [u8],
}

impl Store {
    /// Gives a session a new refresh token in the caller's transaction: the current one is
    /// spent with the new one as its successor, sealed under the presented token when the
    /// client presented it (so a tab racing with it converges within the grace window).
    async fn replace_refresh_token_in(
        tx: &mut Transaction<'static, Any>,
        session_id: &str,
        presented: Option<&PresentedToken<'_>>,
        successor: Successor<'_>,
        now: i64,
    ) -> StoreResult<()> {
        if let Some(presented) = presented {
            sqlx::query(
                "update refresh_tokens set rotated_at = $1, successor_id = $2, \
                 successor_sealed = $3 where token_hash = $4 and session_id = $5 \
                 and rotated_at is null and revoked_at is null",
            )
            .bind(now)
            .bind(successor.id)
            .bind(presented.successor_sealed)
            .bind(presented.hash)
            .bind(session_id)
            .execute(&mut **tx)
            .await?;
        }
        sqlx::query(
            "update refresh_tokens set rotated_at = $1, successor_id = $2 \
             where session_id = $3 and rotated_at is null and revoked_at is null",
        )
        .bind(now)
        .bind(successor.id)
        .bind(session_id)
        .execute(&mut **tx)
        .await?;
        Store::insert_refresh_token(tx, successor.id, session_id, successor.hash, None, now).await
    }

    /// A re-authentication of live session `session_id`: its `auth_time` becomes `now` and it
    /// gets a new refresh token. `Ok(false)` (nothing written) when the presented token is not
    /// the session's or the session is no longer live.
    pub async fn reauthenticate(
        &self,
        session_id: &str,
        presented: Option<&PresentedToken<'_>>,
        successor: Successor<'_>,
        amr: &[String],
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        if let Some(presented) = presented {
            let owner: Option<(String,)> =
                sqlx::query_as("select session_id from refresh_tokens where token_hash = $1")
                    .bind(presented.hash)
                    .fetch_optional(&mut *tx)
                    .await?;
            if owner.is_none_or(|(owner,)| owner != session_id) {
                return Ok(false);
            }
        }
        let updated = sqlx::query(
            "update user_sessions set auth_time = $1, amr = $3 where id = $2 \
             and revoked_at is null and expires_at > $1",
        )
        .bind(now)
        .bind(session_id)
        .bind(encode_amr(amr))
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Ok(false);
        }
        Store::replace_refresh_token_in(&mut tx, session_id, presented, successor, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}

impl Store {
    /// Deletes up to `batch` guest users created before `created_before` that have no live
    /// session (revoked, expired or idle past `idle_timeout` ended them all), with their rows
    /// by cascade. Each deletion is a `user.deleted` event (see the migrations).
    pub async fn purge_abandoned_guests(
        &self,
        now: i64,
        created_before: i64,
        idle_timeout: i64,
        batch: i64,
    ) -> StoreResult<u64> {
        let result = sqlx::query(
            "delete from users where id in (select u.id from users u \
             where u.is_guest = 1 and u.created_at < $1 and not exists ( \
               select 1 from user_sessions s where s.user_id = u.id and s.revoked_at is null \
               and s.expires_at > $2 and s.last_seen_at > $3) \
             limit $4)",
        )
        .bind(created_before)
        .bind(now)
        .bind(now - idle_timeout)
        .bind(batch)
        .execute(&self.writer)
        .await?;
        Ok(result.rows_affected())
    }
}
