//! The session gate answers "is this session live right now?" for every bearer-authenticated
//! request. A JWT's signature only proves the token was issued; logout and revocation end the
//! session before the token expires, and the gate is what makes that take effect at once.

use crate::error::ApiError;
use crate::store::{SessionRow, Store};

pub struct SessionGate {
    store: Store,
    idle_timeout_secs: i64,
}

impl SessionGate {
    pub fn new(store: Store, idle_timeout_secs: i64) -> SessionGate {
        SessionGate {
            store,
            idle_timeout_secs,
        }
    }

    /// The live session `sid` of user `sub`, or `invalid_token`.
    pub async fn live_session(
        &self,
        sid: &str,
        sub: &str,
        now: i64,
    ) -> Result<SessionRow, ApiError> {
        let session = self.store.find_session(sid).await?;
        match session {
            Some(s) if s.user_id == sub && self.is_live(&s, now) => Ok(s),
            _ => Err(ApiError::InvalidToken("the session has ended")),
        }
    }

    pub fn is_live(&self, session: &SessionRow, now: i64) -> bool {
        session.revoked_at.is_none()
            && session.expires_at > now
            && session.last_seen_at + self.idle_timeout_secs > now
    }
}
