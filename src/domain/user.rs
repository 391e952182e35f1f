//! A user as the service knows it: never the password hash (the store reads that only where
//! a password is checked or changed).

use super::UserId;

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub email: Option<String>,
    pub is_guest: bool,
    /// The address was proved to be the user's (a mailed link or code, or the bridge issuer's
    /// `email_verified` claim).
    pub email_verified: bool,
    pub created_at: i64,
}

impl User {
    /// Whether the user may sign in or refresh when verified addresses are required: guests
    /// and users without an address may; a user with an unverified address may not.
    pub fn may_sign_in(&self, require_verified_email: bool) -> bool {
        !require_verified_email || self.email.is_none() || self.email_verified
    }
}
