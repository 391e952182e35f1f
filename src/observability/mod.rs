//! What the service tells its operators: the audit log, the metrics, the logs and traces.

pub mod audit;
pub mod metrics;
pub mod telemetry;
