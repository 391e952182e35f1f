//! Prometheus metrics, served as text at `/metrics`: requests and latency per route and status,
//! login outcomes, refreshes, reuse detections, live sessions and the argon2 queue depth.
//! Each instance exports its own counters; sum them across instances in Prometheus.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::credentials::passwords::PasswordHasher;
use crate::liveness::gate::SessionGate;
use crate::store::StoreResult;

/// The live-session count is a database query; scrapes reuse it for this long.
const LIVE_SESSIONS_MAX_AGE: Duration = Duration::from_secs(15);

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pub logins: IntCounterVec,
    pub refreshes: IntCounter,
    pub reuse_detections: IntCounter,
    pub event_consumers: IntGauge,
    live_sessions: IntGauge,
    argon2_queue: IntGauge,
    argon2_abandoned: IntCounter,
    pub login_throttled: IntCounter,
    pub readiness_checks: IntCounter,
    /// Mail through the outbox by outcome: queued, sent, retried, dead, limited.
    pub mail: IntCounterVec,
    recently_ended: IntGauge,
    event_feed_head: IntGauge,
    validation_fallbacks: IntCounter,
    session_reads: IntCounter,
    live_sessions_read: Mutex<Option<Instant>>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("sessiond".into()), None).expect("registry");
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route, method and status",
            ),
            &["route", "method", "status"],
        )
        .expect("metric");
        let latency = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            &["route", "method"],
        )
        .expect("metric");
        let logins = IntCounterVec::new(
            Opts::new("logins_total", "Login attempts by outcome (ok, failed)"),
            &["outcome"],
        )
        .expect("metric");
        let refreshes = IntCounter::new("refreshes_total", "Successful refreshes").expect("metric");
        let reuse_detections = IntCounter::new(
            "refresh_reuse_detections_total",
            "Spent refresh tokens presented again (the session was revoked)",
        )
        .expect("metric");
        let event_consumers = IntGauge::new(
            "event_consumers",
            "Connected session event stream consumers",
        )
        .expect("metric");
        let live_sessions =
            IntGauge::new("live_sessions", "Sessions neither revoked nor expired").expect("metric");
        let argon2_queue = IntGauge::new("argon2_queue_depth", "Password hashes queued or running")
            .expect("metric");
        let argon2_abandoned = IntCounter::new(
            "argon2_abandoned_total",
            "Queued password hashes skipped because their client had gone",
        )
        .expect("metric");
        let login_throttled = IntCounter::new(
            "login_throttled_total",
            "Login attempts refused by the per-account throttle",
        )
        .expect("metric");
        let readiness_checks = IntCounter::new(
            "readiness_checks_total",
            "Database checks behind /readyz (four a second, whatever the probe rate)",
        )
        .expect("metric");
        let recently_ended = IntGauge::new(
            "recently_ended_sessions",
            "Sessions ended within the last access-token lifetime, held in memory for validation",
        )
        .expect("metric");
        let event_feed_head = IntGauge::new(
            "event_feed_head",
            "The newest session event this instance has read from the event log (compare \
             instances, or with the log, to see how far one is behind)",
        )
        .expect("metric");
        let validation_fallbacks = IntCounter::new(
            "validation_database_fallbacks_total",
            "Token validations that read the database because this instance could not prove \
             its knowledge of ended sessions current (the event log unread for over a second)",
        )
        .expect("metric");
        let session_reads = IntCounter::new(
            "session_reads_total",
            "Sessions read from the database by this instance's gate: /v1/me, the upgrade and \
             ticket redemption on a cache miss, and validations that fell back (none otherwise)",
        )
        .expect("metric");
        let mail = IntCounterVec::new(
            Opts::new(
                "mail_total",
                "Mail through the outbox: queued, sent, retried (a try failed), dead (gave up), \
                 limited (a send refused by the per-recipient or per-client limit)",
            ),
            &["outcome"],
        )
        .expect("metric");
        for outcome in ["queued", "sent", "retried", "dead", "limited"] {
            mail.with_label_values(&[outcome]);
        }
        for metric in [
            Box::new(mail.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(argon2_abandoned.clone()),
            Box::new(session_reads.clone()),
            Box::new(recently_ended.clone()),
            Box::new(event_feed_head.clone()),
            Box::new(validation_fallbacks.clone()),
            Box::new(readiness_checks.clone()),
            Box::new(login_throttled.clone()),
            Box::new(requests.clone()),
            Box::new(latency.clone()),
            Box::new(logins.clone()),
            Box::new(refreshes.clone()),
            Box::new(reuse_detections.clone()),
            Box::new(event_consumers.clone()),
            Box::new(live_sessions.clone()),
            Box::new(argon2_queue.clone()),
        ] {
            registry.register(metric).expect("unique metric names");
        }
        Metrics {
            registry,
            requests,
            latency,
            logins,
            refreshes,
            reuse_detections,
            event_consumers,
            live_sessions,
            argon2_queue,
            argon2_abandoned,
            login_throttled,
            readiness_checks,
            mail,
            recently_ended,
            event_feed_head,
            validation_fallbacks,
            session_reads,
            live_sessions_read: Mutex::new(None),
        }
    }

    /// Counts one answered request.
    pub fn observe(&self, route: &str, method: &str, status: &str, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, method, status])
            .inc();
        self.latency
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
    }

    fn live_sessions_stale(&self) -> bool {
        let mut read = self.live_sessions_read.lock().expect("metrics lock");
        let stale = read.is_none_or(|at| at.elapsed() > LIVE_SESSIONS_MAX_AGE);
        if stale {
            *read = Some(Instant::now());
        }
        stale
    }
}

impl Metrics {
    /// The text exposition format, with the gauges read now. The live-session count is a
    /// database query (`count_live_sessions`), re-run at most every `LIVE_SESSIONS_MAX_AGE`.
    pub async fn render<F, Fut>(
        &self,
        hasher: &PasswordHasher,
        gate: &SessionGate,
        event_feed_head: i64,
        count_live_sessions: F,
    ) -> Vec<u8>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = StoreResult<i64>>,
    {
        self.argon2_queue.set(hasher.queue_depth());
        self.event_feed_head.set(event_feed_head);
        let ended = gate.recently_ended();
        self.recently_ended
            .set(i64::try_from(ended.len()).unwrap_or(i64::MAX));
        catch_up(&self.validation_fallbacks, ended.unsure_answers());
        catch_up(&self.session_reads, gate.session_reads());
        let abandoned = u64::try_from(hasher.abandoned()).unwrap_or(0);
        catch_up(&self.argon2_abandoned, abandoned);
        if self.live_sessions_stale() {
            match count_live_sessions().await {
                Ok(n) => self.live_sessions.set(n),
                Err(error) => tracing::warn!(error = ?error, "could not count live sessions"),
            }
        }
        let mut body = Vec::new();
        let families = self.registry.gather();
        if let Err(error) = TextEncoder::new().encode(&families, &mut body) {
            tracing::error!(error = ?error, "could not encode metrics");
        }
        body
    }
}

/// Moves a counter up to a total counted elsewhere (counters only go up).
fn catch_up(counter: &IntCounter, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
