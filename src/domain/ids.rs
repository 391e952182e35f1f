//! Ids of users and sessions: UUIDv7 text, typed so that one can never be passed where the
//! other is meant. Ids the store or a verified token hands back are trusted as they are; an id
//! a client typed (a path segment) is parsed first.

use serde::{Deserialize, Serialize};

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new id (UUIDv7: ids sort by creation time).
            pub fn generate() -> $name {
                $name(uuid::Uuid::now_v7().to_string())
            }

            /// An id a client sent: `None` unless it is a UUID (then it names nothing).
            pub fn parse(text: &str) -> Option<$name> {
                uuid::Uuid::parse_str(text).ok().map(|_| $name(text.to_string()))
            }

            /// An id as the store or a token we signed carries it.
            pub fn trusted(text: String) -> $name {
                $name(text)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

uuid_id!(
    /// A user's id.
    UserId
);
uuid_id!(
    /// A session's id.
    SessionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_uuids_parse() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(id.as_str()), Some(id.clone()));
        assert_eq!(SessionId::parse("not-a-uuid"), None);
        assert_eq!(SessionId::parse(""), None);
    }

    #[test]
    fn ids_serialize_as_plain_strings() {
        let id = SessionId::trusted("0190d2c4-0000-7000-8000-000000000000".into());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"0190d2c4-0000-7000-8000-000000000000\"");
        assert_eq!(serde_json::from_str::<SessionId>(&json).unwrap(), id);
    }
}
