//! Opening a session: the session row and its first refresh token, written in one transaction
//! with the check that allows it, so nothing can slip between the check and the write.

use super::{NewSession, NewUser, Store, StoreResult};

/// The session to open, with its first refresh token.
pub struct OpenSession<'a> {
    pub session: NewSession<'a>,
    pub refresh_token_id: &'a str,
    pub refresh_token_hash: &'a [u8],
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
    /// Opens the session if `precondition` holds; `Ok(false)` (and nothing written) if not.
    pub async fn open_session(
        &self,
        precondition: Precondition<'_>,
        open: &OpenSession<'_>,
    ) -> StoreResult<bool> {
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
            return Ok(false); // dropping `tx` rolls back
        }
        Store::insert_session(&mut tx, &open.session).await?;
        let session_id = open.session.id;
        let (id, hash, now) = (
            open.refresh_token_id,
            open.refresh_token_hash,
            open.session.now,
        );
        Store::insert_refresh_token(&mut tx, id, session_id, hash, None, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}
