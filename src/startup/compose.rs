//! The composition root: the one place that builds the core (the key ring, the password
//! hasher, the event feed and the gate it feeds, the limits) and wires every service from the
//! parts it needs. `Application::build` serves what it builds; the CLI's commands that change
//! state run on the same services, as the caller "cli".

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::Clock;
use crate::config::Settings;
use crate::credentials::bridge::Bridge;
use crate::credentials::passkeys::RelyingParty;
use crate::credentials::passwords::PasswordHasher;
use crate::credentials::service_keys::ServiceKeys;
use crate::credentials::tokens::AccessTokens;
use crate::credentials::tokens::sealing::KeyEncryption;
use crate::domain::PasswordPolicy;
use crate::limits::rate_limit::RateLimits;
use crate::limits::throttle::LoginThrottle;
use crate::liveness::bus::AnnouncementBus;
use crate::liveness::events::EventFeed;
use crate::liveness::gate::{RecentlyEnded, SessionGate};
use crate::mail::templates::Templates;
use crate::mail::transport::Mailer;
use crate::observability::audit::AuditLog;
use crate::observability::metrics::Metrics;
use crate::services::Services;
use crate::services::accounts::{Accounts, AccountsParts};
use crate::services::admin::{Admin, AdminParts};
use crate::services::bridge::BridgeSignIn;
use crate::services::credentials::CredentialChecks;
use crate::services::ending::Ending;
use crate::services::factors::{Factors, FactorsParts};
use crate::services::freshness::Freshness;
use crate::services::health::Health;
use crate::services::mail::{MailSender, MailSenderParts};
use crate::services::maintenance::{Retention, Upkeep, UpkeepParts};
use crate::services::passkeys::{Passkeys, PasskeysParts};
use crate::services::recovery::{Recovery, RecoveryParts};
use crate::services::sessions::{Sessions, SessionsParts};
use crate::services::tickets::Tickets;
use crate::services::validation::Validation;
use crate::store::Store;

/// The core parts of one instance, each built once. The services hold what they use of it;
/// the application keeps it for the background tasks (and tests read it).
pub struct Core {
    pub settings: Settings,
    pub store: Store,
    pub clock: Clock,
    pub tokens: Arc<AccessTokens>,
    pub hasher: PasswordHasher,
    pub gate: Arc<SessionGate>,
    pub events: Arc<EventFeed>,
    pub service_keys: Arc<ServiceKeys>,
    pub metrics: Arc<Metrics>,
    pub bridge: Arc<Bridge>,
    pub rate_limits: Arc<RateLimits>,
    pub throttle: Arc<LoginThrottle>,
    /// Seals secrets kept at rest besides the signing keys (TOTP secrets).
    pub sealing: Arc<KeyEncryption>,
    /// The WebAuthn relying party passkeys are registered with and verified by.
    pub relying_party: Arc<RelyingParty>,
    /// Delivers the outbox (started by the application, not by the CLI).
    pub mail_sender: Arc<MailSender>,
    /// Wakes this instance's mail sender when a request queued a message.
    pub mail_waker: Arc<Notify>,
}

impl Core {
    /// Loads the key ring and the service keys, and starts the event feed (its first read of
    /// the event log is what the gate trusts, see `gate::RecentlyEnded`).
    pub async fn build(settings: Settings, store: Store, clock: Clock) -> anyhow::Result<Core> {
        let cache_entries = settings.tokens.verified_cache_entries;
        let tokens =
            AccessTokens::load(store.clone(), clock.clone(), &settings, cache_entries).await?;
        let hasher = PasswordHasher::new(&settings.passwords)?;
        let recently_ended = Arc::new(RecentlyEnded::new(
            clock.clone(),
            settings.tokens.access_ttl_secs,
        ));
        let events = Arc::new(EventFeed::new(
            store.clone(),
            clock.clone(),
            recently_ended.clone(),
            settings.events.consumer_ring,
            Duration::from_millis(settings.events.poll_interval_ms.max(10)),
        ));
        events.start().await?;
        let gate = Arc::new(SessionGate::new(
            store.clone(),
            settings.sessions.idle_timeout_secs,
            settings.database.acquire_timeout(),
            settings.sessions.cache_entries,
            recently_ended,
            events.waker(),
        ));
        let bridge = Bridge::new(&settings.bridge, &clock)?;
        let rate_limits = RateLimits::new(&settings.rate_limits, store.clone());
        let throttle = LoginThrottle::new(store.clone(), settings.throttle.clone());
        let service_keys =
            ServiceKeys::load(store.clone(), clock.clone(), &settings.service_keys).await?;
        let metrics = Arc::new(Metrics::new());
        let mail_waker = Arc::new(Notify::new());
        let mail_sender = Arc::new(MailSender::new(MailSenderParts {
            store: store.clone(),
            clock: clock.clone(),
            mailer: Mailer::from_settings(&settings.mail)?,
            templates: Templates::load(&settings.mail.templates_dir)?,
            metrics: metrics.clone(),
            audit: AuditLog::new(store.clone(), clock.clone()),
            mail: settings.mail.clone(),
            accounts: settings.accounts.clone(),
            wake: mail_waker.clone(),
        }));
        let sealing = Arc::new(KeyEncryption::from_settings(&settings.keys)?);
        let relying_party = Arc::new(RelyingParty::from_settings(&settings.webauthn)?);
        Ok(Core {
            relying_party,
            sealing,
            mail_sender,
            mail_waker,
            settings,
            store,
            clock,
            tokens: Arc::new(tokens),
            hasher,
            gate,
            events,
            service_keys: Arc::new(service_keys),
            metrics,
            bridge: Arc::new(bridge),
            rate_limits: Arc::new(rate_limits),
            throttle: Arc::new(throttle),
        })
    }

    /// The announcement bus, wired to this instance's gate, event feed and key ring: run it
    /// once per process (the application does).
    pub fn announcement_bus(&self) -> AnnouncementBus {
        AnnouncementBus::new(
            self.store.clone(),
            self.gate.clone(),
            self.events.waker(),
            self.tokens.keys().changes(),
        )
    }

    /// Every service, each given the parts it uses.
    pub fn services(&self) -> Services {
        let audit = AuditLog::new(self.store.clone(), self.clock.clone());
        let policy = PasswordPolicy {
            min_strength: self.settings.passwords.min_strength,
        };
        let ending = Arc::new(Ending::new(
            self.store.clone(),
            self.clock.clone(),
            self.gate.clone(),
            self.tokens.clone(),
            audit.clone(),
        ));
        let sessions = Arc::new(Sessions::new(SessionsParts {
            store: self.store.clone(),
            clock: self.clock.clone(),
            tokens: self.tokens.clone(),
            gate: self.gate.clone(),
            feed_waker: self.events.waker(),
            ending: ending.clone(),
            metrics: self.metrics.clone(),
            lifetimes: self.settings.sessions.clone(),
            require_verified_email: self.settings.accounts.require_verified_email,
        }));
        let checks = Arc::new(CredentialChecks::new(
            self.hasher.clone(),
            self.throttle.clone(),
            self.rate_limits.clone(),
            self.clock.clone(),
            self.metrics.clone(),
            audit.clone(),
        ));
        let health = Arc::new(Health::new(
            self.store.clone(),
            self.clock.clone(),
            self.metrics.clone(),
            self.hasher.clone(),
            self.gate.clone(),
            self.events.clone(),
            self.settings.sessions.idle_timeout_secs,
        ));
        let factors = Arc::new(Factors::new(FactorsParts {
            store: self.store.clone(),
            clock: self.clock.clone(),
            checks: checks.clone(),
            sessions: sessions.clone(),
            sealing: self.sealing.clone(),
            audit: audit.clone(),
            freshness: Freshness::new(self.clock.clone(), self.settings.accounts.fresh_auth_secs),
            issuer: self.settings.mail.product_name.clone(),
        }));
        let passkeys = Arc::new(Passkeys::new(PasskeysParts {
            store: self.store.clone(),
            clock: self.clock.clone(),
            checks: checks.clone(),
            sessions: sessions.clone(),
            gate: self.gate.clone(),
            audit: audit.clone(),
            freshness: Freshness::new(self.clock.clone(), self.settings.accounts.fresh_auth_secs),
            relying_party: self.relying_party.clone(),
        }));
        Services {
            accounts: Arc::new(Accounts::new(AccountsParts {
                store: self.store.clone(),
                clock: self.clock.clone(),
                checks: checks.clone(),
                sessions: sessions.clone(),
                factors: factors.clone(),
                ending: ending.clone(),
                gate: self.gate.clone(),
                rate_limits: self.rate_limits.clone(),
                metrics: self.metrics.clone(),
                audit: audit.clone(),
                policy,
                require_verified_email: self.settings.accounts.require_verified_email,
            })),
            recovery: Arc::new(Recovery::new(RecoveryParts {
                store: self.store.clone(),
                clock: self.clock.clone(),
                checks: checks.clone(),
                sessions: sessions.clone(),
                factors: factors.clone(),
                passkeys: passkeys.clone(),
                ending: ending.clone(),
                gate: self.gate.clone(),
                rate_limits: self.rate_limits.clone(),
                metrics: self.metrics.clone(),
                audit: audit.clone(),
                policy,
                settings: self.settings.accounts.clone(),
                mail_waker: self.mail_waker.clone(),
            })),
            validation: Arc::new(Validation::new(
                self.tokens.clone(),
                self.gate.clone(),
                self.clock.clone(),
                self.store.clone(),
                self.service_keys.clone(),
            )),
            admin: Arc::new(Admin::new(AdminParts {
                store: self.store.clone(),
                clock: self.clock.clone(),
                throttle: self.throttle.clone(),
                sessions: sessions.clone(),
                ending: ending.clone(),
                hasher: self.hasher.clone(),
                policy,
                audit: audit.clone(),
            })),
            tickets: Arc::new(Tickets::new(
                self.store.clone(),
                self.clock.clone(),
                self.gate.clone(),
            )),
            bridge: Arc::new(BridgeSignIn::new(
                self.bridge.clone(),
                checks,
                sessions.clone(),
                self.store.clone(),
                self.clock.clone(),
                audit,
            )),
            upkeep: Arc::new(Upkeep::new(UpkeepParts {
                store: self.store.clone(),
                clock: self.clock.clone(),
                retention: Retention::from_settings(&self.settings),
                keys: self.tokens.keys().clone(),
                service_keys: self.service_keys.clone(),
                rate_limits: self.rate_limits.clone(),
                gate: self.gate.clone(),
                health: health.clone(),
            })),
            health,
            sessions,
            factors,
            passkeys,
            ending,
        }
    }
}
