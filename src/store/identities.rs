//! External identities (`external_identities`): which local user a bridged provider's subject
//! is, created on first exchange.

use super::users::RawUser;
use super::{Store, StoreResult, is_unique_violation};
use crate::domain::User;

impl Store {
    /// The local user for an issuer's subject, if they came through the bridge before.
    pub async fn find_bridged_user(
        &self,
        issuer: &str,
        subject: &str,
    ) -> StoreResult<Option<User>> {
        let found: Option<RawUser> = sqlx::query_as(
            "select u.id, u.email, u.is_guest, u.email_verified, u.created_at from external_identities i \
             join users u on u.id = i.user_id where i.issuer = $1 and i.subject = $2",
        )
        .bind(issuer)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.map(User::from))
    }

    /// Creates `user` and links it to (issuer, subject). The email is kept only if no account
    /// has it: an existing account is never linked by email. `Ok(false)` when another request
    /// created the identity (or took the email) first; the caller looks it up again.
    pub async fn create_bridged_user(
        &self,
        user: &User,
        issuer: &str,
        subject: &str,
        provider: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await?;
        let email = match &user.email {
            Some(email) => {
                let taken: Option<(String,)> =
                    sqlx::query_as("select id from users where email = $1")
                        .bind(email)
                        .fetch_optional(&mut *tx)
                        .await?;
                taken.is_none().then_some(email.as_str())
            }
            None => None,
        };
        let new_user = super::NewUser {
            id: &user.id,
            email,
            password_hash: None,
            is_guest: false,
            email_verified: user.email_verified && email.is_some(),
            now,
        };
        if !Store::insert_user(&mut tx, &new_user).await? {
            return Ok(false);
        }
        let linked = sqlx::query(
            "insert into external_identities (issuer, subject, user_id, provider, created_at) \
             values ($1, $2, $3, $4, $5)",
        )
        .bind(issuer)
        .bind(subject)
        .bind(user.id.as_str())
        .bind(provider)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match linked {
            Ok(_) => {
                tx.commit().await?;
                Ok(true)
            }
            Err(err) if is_unique_violation(&err) => Ok(false),
            Err(err) => Err(err.into()),
        }
    }
}
