//! Wall-clock time as Unix seconds, the unit of every stored time and JWT claim.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// RFC 3339 UTC text for a Unix-seconds time, as the API shows times inside objects.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(super::rfc3339(1_790_000_900), "2026-09-21T14:28:20Z");
    }
}
