//! What keeps abuse cheap: the per-account throttle of credential checks and the per-address
//! rate limits, both shared by every instance through the database.

pub mod rate_limit;
pub mod throttle;
