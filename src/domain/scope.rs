//! What a service key may do.

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Introspect,
    Admin,
    /// Follows the session event feed (`GET /v1/events`).
    Events,
}

impl Scope {
    pub fn parse(name: &str) -> Option<Scope> {
        match name {
            "introspect" => Some(Scope::Introspect),
            "admin" => Some(Scope::Admin),
            "events" => Some(Scope::Events),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Introspect => "introspect",
            Scope::Admin => "admin",
            Scope::Events => "events",
        }
    }
}
