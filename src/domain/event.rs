//! What the session event log records (`GET /v1/events`, the feed): a session opened or ended,
//! a user deleted, a signing key retired. Rows are written by database triggers in the
//! transaction of the change; the store reads them into this type.

use super::{RevokeReason, SessionId, UserId};

/// The `type` of an event, as the contract spells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEventKind {
    SessionCreated,
    SessionEnded,
    UserDeleted,
    KeyRetired,
    /// A type this version does not know (written by a newer one during a rolling deploy):
    /// published as it is rather than dropped.
    Other(String),
}

impl SessionEventKind {
    pub fn parse(text: &str) -> SessionEventKind {
        match text {
            "session.created" => SessionEventKind::SessionCreated,
            "session.ended" => SessionEventKind::SessionEnded,
            "user.deleted" => SessionEventKind::UserDeleted,
            "key.retired" => SessionEventKind::KeyRetired,
            other => SessionEventKind::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            SessionEventKind::SessionCreated => "session.created",
            SessionEventKind::SessionEnded => "session.ended",
            SessionEventKind::UserDeleted => "user.deleted",
            SessionEventKind::KeyRetired => "key.retired",
            SessionEventKind::Other(text) => text,
        }
    }
}

/// One event of the log.
#[derive(Debug, Clone)]
pub struct SessionEvent {
    /// Monotonic: a consumer resumes after the last id it saw.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    pub kind: SessionEventKind,
    /// The user concerned; `None` for an event about no user (a key's retirement).
    pub user_id: Option<UserId>,
    pub session_id: Option<SessionId>,
    /// Why a session ended.
    pub reason: Option<RevokeReason>,
    /// The signing key a `key.retired` event names.
    pub kid: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_read_back_as_written_and_unknown_ones_pass_through() {
        for text in [
            "session.created",
            "session.ended",
            "user.deleted",
            "key.retired",
        ] {
            let kind = SessionEventKind::parse(text);
            assert!(!matches!(kind, SessionEventKind::Other(_)), "{text}");
            assert_eq!(kind.as_str(), text);
        }
        let newer = SessionEventKind::parse("user.renamed");
        assert_eq!(newer, SessionEventKind::Other("user.renamed".into()));
        assert_eq!(newer.as_str(), "user.renamed");
    }
}
