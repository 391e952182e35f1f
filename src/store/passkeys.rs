//! Passkeys (`passkeys`) and the WebAuthn ceremonies in flight (`webauthn_challenges`). A
//! ceremony's state is taken (deleted and returned) in one statement: single use, even when
//! two instances receive the same response at once.

use sqlx::FromRow;

use super::{Store, StoreResult, encode_amr, is_unique_violation};

/// A passkey as listed to its owner.
#[derive(Debug, FromRow)]
pub struct PasskeyEntry {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// A passkey with what verifying it needs.
#[derive(Debug, FromRow)]
pub struct PasskeyRecord {
    pub id: String,
    pub user_id: String,
    pub credential: String,
}

pub struct NewPasskey<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub credential_id: &'a [u8],
    pub name: &'a str,
    pub credential: &'a str,
    pub now: i64,
}

/// What registering a passkey does to a guest's session: it becomes a permanent one.
pub struct GuestToPasskey<'a> {
    pub session_id: &'a str,
    pub amr: &'a [String],
    pub expires_at: i64,
}

pub struct NewCeremony<'a> {
    pub id: &'a str,
    pub purpose: &'a str,
    pub user_id: Option<&'a str>,
    pub name: Option<&'a str>,
    pub state: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// A ceremony taken for its second half.
#[derive(Debug, FromRow)]
pub struct Ceremony {
    pub purpose: String,
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub state: String,
}

#[derive(FromRow)]
struct TakenCeremony {
    #[sqlx(flatten)]
    ceremony: Ceremony,
    expires_at: i64,
}

/// What adding a passkey came to.
#[derive(Debug, PartialEq, Eq)]
pub enum PasskeyAdded {
    Added,
    /// The credential id is already registered (to this user or another).
    Duplicate,
}

impl Store {
    pub async fn put_ceremony(&self, ceremony: &NewCeremony<'_>) -> StoreResult<()> {
        sqlx::query(
            "insert into webauthn_challenges (id, purpose, user_id, name, state, created_at, \
             expires_at) values ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(ceremony.id)
        .bind(ceremony.purpose)
        .bind(ceremony.user_id)
        .bind(ceremony.name)
        .bind(ceremony.state)
        .bind(ceremony.now)
        .bind(ceremony.expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Takes a live ceremony (it is gone after this, used or not).
    pub async fn take_ceremony(&self, id: &str, now: i64) -> StoreResult<Option<Ceremony>> {
        let taken: Option<TakenCeremony> = sqlx::query_as(
            "delete from webauthn_challenges where id = $1 \
             returning purpose, user_id, name, state, expires_at",
        )
        .bind(id)
        .fetch_optional(&self.writer)
        .await?;
        Ok(taken
            .filter(|taken| taken.expires_at > now)
            .map(|taken| taken.ceremony))
    }

    /// The credential ids of a user's passkeys (a new registration excludes them).
    pub async fn passkey_credential_ids(&self, user_id: &str) -> StoreResult<Vec<Vec<u8>>> {
        let rows: Vec<(Vec<u8>,)> =
            sqlx::query_as("select credential_id from passkeys where user_id = $1")
                .bind(user_id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    /// Adds a passkey; a guest becomes a permanent user in the same transaction, and their
    /// session a permanent passkey session.
    pub async fn add_passkey(
        &self,
        passkey: &NewPasskey<'_>,
        guest: Option<GuestToPasskey<'_>>,
    ) -> StoreResult<PasskeyAdded> {
        let mut tx = self.writer.begin().await?;
        let inserted = sqlx::query(
            "insert into passkeys (id, user_id, credential_id, name, credential, created_at) \
             values ($1, $2, $3, $4, $5, $6)",
        )
        .bind(passkey.id)
        .bind(passkey.user_id)
        .bind(passkey.credential_id)
        .bind(passkey.name)
        .bind(passkey.credential)
        .bind(passkey.now)
        .execute(&mut *tx)
        .await;
        match inserted {
            Ok(_) => {}
            Err(err) if is_unique_violation(&err) => return Ok(PasskeyAdded::Duplicate),
            Err(err) => return Err(err.into()),
        }
        if let Some(guest) = guest {
            sqlx::query("update users set is_guest = 0, updated_at = $2 where id = $1")
                .bind(passkey.user_id)
                .bind(passkey.now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "update user_sessions set kind = 'passkey', amr = $1, expires_at = $2, \
                 auth_time = $3 where id = $4 and user_id = $5",
            )
            .bind(encode_amr(guest.amr))
            .bind(guest.expires_at)
            .bind(passkey.now)
            .bind(guest.session_id)
            .bind(passkey.user_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(PasskeyAdded::Added)
    }

    pub async fn list_passkeys(&self, user_id: &str) -> StoreResult<Vec<PasskeyEntry>> {
        Ok(sqlx::query_as(
            "select id, name, created_at, last_used_at from passkeys where user_id = $1 \
             order by created_at, id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn find_passkey(&self, credential_id: &[u8]) -> StoreResult<Option<PasskeyRecord>> {
        Ok(
            sqlx::query_as("select id, user_id, credential from passkeys where credential_id = $1")
                .bind(credential_id)
                .fetch_optional(&self.writer)
                .await?,
        )
    }

    /// Records a use: when, and the record with its counter moved on (if it changed).
    pub async fn passkey_used(&self, id: &str, updated: Option<&str>, now: i64) -> StoreResult<()> {
        sqlx::query(
            "update passkeys set last_used_at = $2, credential = coalesce($3, credential) \
             where id = $1",
        )
        .bind(id)
        .bind(now)
        .bind(updated)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// Deletes one of the user's passkeys unless it is their last way to sign in (no password,
    /// no address for a mailed sign-in, no other passkey): `None` if it is not theirs,
    /// `Some(false)` if it is their last.
    pub async fn delete_passkey(&self, user_id: &str, id: &str) -> StoreResult<Option<bool>> {
        let mut tx = self.writer.begin().await?;
        // Locks the user's row (PostgreSQL), so two deletions cannot each leave the other.
        let user: Option<(Option<String>, Option<String>)> = sqlx::query_as(
            "update users set updated_at = updated_at where id = $1 \
             returning password_hash, email",
        )
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((password_hash, email)) = user else {
            return Ok(None);
        };
        let (others,): (i64,) =
            sqlx::query_as("select count(*) from passkeys where user_id = $1 and id <> $2")
                .bind(user_id)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        let exists: Option<(String,)> =
            sqlx::query_as("select id from passkeys where id = $1 and user_id = $2")
                .bind(id)
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Ok(None);
        }
        if password_hash.is_none() && email.is_none() && others == 0 {
            return Ok(Some(false));
        }
        sqlx::query("delete from passkeys where id = $1 and user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Some(true))
    }
}
