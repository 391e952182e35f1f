//! A user as the service knows it: never the password hash (the store reads that only where
//! a password is checked or changed).

use super::UserId;

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub email: Option<String>,
    pub is_guest: bool,
    pub created_at: i64,
}
