//! Health as operators and load balancers read it: readiness (`/readyz`, from the periodic
//! database check, see `readiness`) and the metrics in Prometheus' text format.

use std::sync::Arc;

use crate::clock::Clock;
use crate::credentials::passwords::PasswordHasher;
use crate::liveness::events::EventFeed;
use crate::liveness::gate::SessionGate;
use crate::observability::metrics::Metrics;
use crate::store::Store;

use super::readiness::{self, Readiness};

pub struct Health {
    store: Store,
    clock: Clock,
    readiness: Readiness,
    metrics: Arc<Metrics>,
    /// The gauges read at each scrape: the hashing queue, the gate's caches, the feed's head.
    hasher: PasswordHasher,
    gate: Arc<SessionGate>,
    events: Arc<EventFeed>,
    idle_timeout_secs: i64,
}

impl Health {
    pub fn new(
        store: Store,
        clock: Clock,
        metrics: Arc<Metrics>,
        hasher: PasswordHasher,
        gate: Arc<SessionGate>,
        events: Arc<EventFeed>,
        idle_timeout_secs: i64,
    ) -> Health {
        Health {
            store,
            clock,
            readiness: Readiness::default(),
            metrics,
            hasher,
            gate,
            events,
            idle_timeout_secs,
        }
    }

    /// True when the database took a write within the last second (`/readyz`), as the
    /// periodic check found.
    pub fn ready(&self) -> bool {
        self.readiness.is_ready()
    }

    /// Checks that the database takes writes (the periodic readiness check).
    pub async fn check_readiness(&self) {
        let check = tokio::time::timeout(readiness::CHECK_TIMEOUT, self.store.ping()).await;
        self.metrics.readiness_checks.inc();
        let ok = matches!(check, Ok(Ok(())));
        if !ok && self.readiness.is_ready() {
            tracing::warn!(timed_out = check.is_err(), "readiness check failed");
        }
        self.readiness.record(ok);
    }

    /// The metrics in Prometheus' text format, with the gauges read now.
    pub async fn render_metrics(&self) -> Vec<u8> {
        let now = self.clock.now();
        let idle = self.idle_timeout_secs;
        self.metrics
            .render(&self.hasher, &self.gate, self.events.head(), || {
                self.store.count_live_sessions(now, idle)
            })
            .await
    }
}
