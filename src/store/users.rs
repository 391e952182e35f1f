use sqlx::{Any, FromRow, Transaction};

use super::{Store, StoreResult, is_unique_violation};

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: String,
    pub email: Option<String>,
    pub is_guest: i64,
    pub created_at: i64,
}

/// The stored password hash, read only by login and password change.
#[derive(FromRow)]
struct Credentials {
    id: String,
    password_hash: Option<String>,
}

pub struct NewUser<'a> {
    pub id: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub is_guest: bool,
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
            "insert into users (id, email, password_hash, is_guest, created_at, updated_at) \
             values ($1, $2, $3, $4, $5, $5)",
        )
        .bind(user.id)
        .bind(user.email)
        .bind(user.password_hash)
        .bind(i64::from(user.is_guest))
        .bind(user.now)
        .execute(&mut **tx)
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }

    pub async fn find_user(&self, id: &str) -> StoreResult<Option<UserRow>> {
        let sql = "select id, email, is_guest, created_at from users where id = $1";
        Ok(sqlx::query_as(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    /// The user id and password hash for an email, for login.
    pub async fn find_credentials(
        &self,
        email: &str,
    ) -> StoreResult<Option<(String, Option<String>)>> {
        let row: Option<Credentials> =
            sqlx::query_as("select id, password_hash from users where email = $1")
                .bind(email)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|c| (c.id, c.password_hash)))
    }

    pub async fn password_hash(&self, user_id: &str) -> StoreResult<Option<String>> {
        let row: Option<Credentials> =
            sqlx::query_as("select id, password_hash from users where id = $1")
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.and_then(|c| c.password_hash))
    }

    /// Sets a new password hash and revokes every other session of the user, in one
    /// transaction: a new password never coexists with sessions the old one opened.
    /// Returns the revoked session ids.
    pub async fn change_password(
        &self,
        user_id: &str,
        hash: &str,
        keep_session: &str,
        now: i64,
    ) -> StoreResult<Vec<String>> {
        let mut tx = self.writer.begin().await?;
        sqlx::query("update users set password_hash = $1, updated_at = $2 where id = $3")
            .bind(hash)
            .bind(now)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        let ended: Vec<(String,)> = sqlx::query_as(
            "update user_sessions set revoked_at = $1, revoked_reason = 'password_changed' \
             where user_id = $2 and revoked_at is null and id <> $3 returning id",
        )
        .bind(now)
        .bind(user_id)
        .bind(keep_session)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ended.into_iter().map(|(id,)| id).collect())
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
}

pub struct GuestUpgrade<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub session_expires_at: i64,
    pub refresh_token_id: &'a str,
    pub refresh_token_hash: &'a [u8],
    pub now: i64,
}

impl Store {
    /// Turns a guest into a permanent user in place (same user id), makes the calling session
    /// a permanent password session, and gives it a new refresh token, in one transaction.
    /// The session's earlier refresh token keeps working, so a tab racing the upgrade is not
    /// mistaken for a replay.
    pub async fn upgrade_guest(&self, up: &GuestUpgrade<'_>) -> StoreResult<UpgradeOutcome> {
        let mut tx = self.writer.begin().await?;
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
            "update user_sessions set kind = 'password', amr = '[\"pwd\"]', expires_at = $1 \
             where id = $2 and user_id = $3",
        )
        .bind(up.session_expires_at)
        .bind(up.session_id)
        .bind(up.user_id)
        .execute(&mut *tx)
        .await?;
        Store::insert_refresh_token(
            &mut tx,
            up.refresh_token_id,
            up.session_id,
            up.refresh_token_hash,
            None,
            up.now,
        )
        .await?;
        tx.commit().await?;
        Ok(UpgradeOutcome::Upgraded)
    }
}
