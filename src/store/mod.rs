//! All SQL lives under `store/`. One binary serves `sqlite://` and `postgres://` URLs.
//!
//! We use `sqlx::Any` rather than two native pools: every statement is written once, with `$n`
//! placeholders that both SQLite and PostgreSQL accept, on a portable schema (TEXT ids, BIGINT
//! Unix-second times, BLOB/BYTEA hashes, 0/1 integers instead of booleans). `Any` only carries
//! bool, integers, floats, text and bytes, which is exactly what that schema needs, and it keeps
//! every method free of backend generics. Each backend has its own migrations folder with the
//! same numbering. The atomic compare-and-set that refresh rotation needs is plain
//! `UPDATE … WHERE … IS NULL RETURNING …`, which both engines run.

mod announcements;
mod audit;
mod events;
mod factors;
mod identities;
mod keys;
mod mail;
mod opening;
mod passkeys;
mod refresh_tokens;
mod seeding;
mod service_keys;
mod sessions;
mod throttle;
mod users;
mod ws_tickets;

use std::path::Path;
use std::sync::Once;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};

use crate::config::DatabaseSettings;

pub use announcements::{
    Announcement, Announcements, ENDED_SESSIONS_CHANNEL, EVENTS_CHANNEL, SIGNING_KEYS_CHANNEL,
};
pub use audit::AuditEntry;
pub use factors::{MfaChallenge, NewMfaChallenge, StoredTotp};
pub use keys::{KeyRevocation, StoredSigningKey};
pub use mail::{ClaimedMail, CodeCandidate, MailGrant, NewMail, NewMailToken};
pub use opening::{OpenSession, Precondition, SessionCap};
pub use passkeys::{
    Ceremony, GuestToPasskey, NewCeremony, NewPasskey, PasskeyAdded, PasskeyEntry, PasskeyRecord,
};
pub use refresh_tokens::{RefreshOutcome, RotationRequest};
pub use seeding::SeededSession;
pub use service_keys::StoredServiceKey;
pub use sessions::{NewSession, SessionsToEnd};
pub use throttle::{EVERY_CLIENT, Reservation, ThrottleState};
pub use users::{
    Account, GuestUpgrade, LoginCandidate, NewUser, PresentedToken, Successor, UpgradeOutcome,
};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Pragmas every SQLite connection needs: concurrent readers with one writer (WAL), waiting
/// rather than failing on a locked database, and enforced foreign keys for cascades.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
     PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database behind every request. Cheap to clone (pool handles).
///
/// Writes go through `writer`. On PostgreSQL that is the same pool. On SQLite, which has one
/// writer at a time anyway, it is a single connection: writers then queue in order inside the
/// process instead of polling the file lock, whose back-off stretched p99 to hundreds of ms.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    writer: AnyPool,
    backend: Backend,
    /// PostgreSQL: what announcement listeners connect to.
    listen_url: announcements::ListenUrl,
}

/// A database failure, split by what the client should be told.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded: the client gets 503 and may retry.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Other(#[source] sqlx::Error),
}

impl StoreError {
    /// A database read or connection that took longer than its caller could wait.
    pub fn timed_out() -> StoreError {
        StoreError::Unavailable(sqlx::Error::PoolTimedOut)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if is_unavailable(&err) {
            StoreError::Unavailable(err)
        } else {
            StoreError::Other(err)
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            is_unavailable_code(&code)
        }
        _ => false,
    }
}

/// Database error codes that mean "cannot serve right now, try again": the condition is the
/// server's or the operator's to clear, not a bug in the request or in us.
fn is_unavailable_code(code: &str) -> bool {
    // PostgreSQL classes: 08 connection exceptions; 53 insufficient resources (disk full, out
    // of memory, too many connections); 57P operator intervention (shutdown, crash recovery,
    // "the database system is starting up"). Single codes: 55000 "database is not currently
    // accepting connections" (ALLOW_CONNECTIONS false) and 55P03 lock not available; 57014 a
    // statement timeout; 25006 a read-only transaction (a failover left us on a standby);
    // 40001/40P01 serialization failure and deadlock; 3D000 the database is gone; 28xxx our
    // credentials were refused.
    let postgres = ["08", "53", "57P", "28"]
        .iter()
        .any(|c| code.starts_with(c))
        || matches!(
            code,
            "55000" | "55P03" | "57014" | "25006" | "40001" | "40P01" | "3D000"
        );
    // SQLite: SQLITE_BUSY / SQLITE_LOCKED and their extended codes, SQLITE_CANTOPEN (14) and
    // SQLITE_FULL (13).
    let sqlite = matches!(code, "5" | "6" | "13" | "14" | "261" | "262" | "517");
    postgres || sqlite
}

pub(crate) fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

impl Store {
    /// Connects and checks the database answers. Never falls back to anything in memory: a
    /// store that cannot be reached is an error for the caller to exit on.
    pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<Store> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(install_default_drivers);

        let raw_url = settings.url.expose_secret();
        let (backend, url) = if raw_url.starts_with("sqlite:") {
            (Backend::Sqlite, prepare_sqlite_url(raw_url)?)
        } else if raw_url.starts_with("postgres:") || raw_url.starts_with("postgresql:") {
            (Backend::Postgres, raw_url.to_string())
        } else {
            anyhow::bail!("DATABASE_URL must start with sqlite: or postgres:");
        };
        let options = |max_connections: u32| {
            let options = AnyPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(settings.acquire_timeout());
            match backend {
                Backend::Sqlite => options.after_connect(|conn, _meta| {
                    Box::pin(
                        async move { conn.execute(sqlx::raw_sql(SQLITE_PRAGMAS)).await.map(drop) },
                    )
                }),
                Backend::Postgres => options,
            }
        };
        let pool = options(settings.max_connections).connect(&url).await?;
        let writer = match backend {
            Backend::Sqlite => options(1).connect(&url).await?,
            Backend::Postgres => pool.clone(),
        };
        let listen_url =
            (backend == Backend::Postgres).then(|| std::sync::Arc::new(settings.url.clone()));
        Ok(Store {
            pool,
            writer,
            backend,
            listen_url,
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies pending migrations. Safe to run from several instances at once: sqlx takes an
    /// advisory lock on PostgreSQL, and SQLite serialises writers.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        let mut attempt = 0;
        loop {
            match migrator.run(&self.writer).await {
                Ok(()) => return Ok(()),
                // SQLite has no migration lock: an instance starting beside another may find
                // the other half-way through. Once that one has finished, ours is a no-op.
                Err(_) if self.backend == Backend::Sqlite && attempt < 3 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(err) => return Err(err).context("Failed to apply database migrations"),
            }
        }
    }

    /// Readiness: can the database take a write right now? An update that matches nothing still
    /// needs the write lock, so a SQLite file locked by someone else counts as not ready.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("update signing_keys set alg = alg where kid is null")
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// Creates the parent folder of a SQLite file and asks sqlx to create the file itself, so the
/// default `sqlite://data/sessiond.db` works on a fresh checkout.
fn prepare_sqlite_url(raw: &str) -> anyhow::Result<String> {
    let rest = raw
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        anyhow::bail!("an in-memory SQLite database would lose every session on restart");
    }
    if let Some(parent) = Path::new(path)
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("Failed to create the folder {}", parent.display()))?;
    }
    if !query.contains("mode=") {
        create_owner_only(Path::new(path))?;
    }
    let query = if query.contains("mode=") {
        query.to_string()
    } else if query.is_empty() {
        "mode=rwc".to_string()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// Creates a missing SQLite file readable and writable by its owner only (it holds password
/// hashes and, unsealed, signing keys). SQLite gives its `-wal` and `-shm` files the database
/// file's permissions. An existing file keeps the permissions its operator chose.
fn create_owner_only(path: &Path) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e).with_context(|| format!("Failed to create {}", path.display())),
    }
}

/// The `amr` column: a JSON array of method names, e.g. `["pwd"]`.
fn encode_amr(amr: &[String]) -> String {
    serde_json::to_string(amr).expect("a list of strings is JSON")
}

/// Reads the `amr` column; a value we did not write counts as no method at all.
fn decode_amr(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_missing_files() {
        let dir = std::env::temp_dir().join(format!("sessiond-url-{}", std::process::id()));
        let raw = format!("sqlite://{}/x.db", dir.display());
        let url = prepare_sqlite_url(&raw).unwrap();
        assert!(url.ends_with("x.db?mode=rwc"), "{url}");
        assert!(dir.is_dir());
    }

    #[test]
    fn conditions_that_pass_are_unavailable_and_bugs_are_not() {
        for code in [
            "08006", "53300", "53100", "57P01", "57P03", "55000", "3D000", "5", "517",
        ] {
            assert!(is_unavailable_code(code), "{code}");
        }
        for code in ["23505", "42601", "42P01", "22P02", "19", "1"] {
            assert!(!is_unavailable_code(code), "{code}");
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_sqlite_database_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("sessiond-mode-{}", uuid::Uuid::new_v4()));
        let path = dir.join("sessiond.db");
        let settings = DatabaseSettings {
            url: secrecy::SecretString::from(format!("sqlite://{}", path.display())),
            ..crate::config::Settings::defaults().database
        };
        let store = Store::connect(&settings).await.unwrap();
        store.migrate().await.unwrap();
        let mut modes = Vec::new();
        for name in ["sessiond.db", "sessiond.db-wal", "sessiond.db-shm"] {
            let meta = std::fs::metadata(dir.join(name)).unwrap();
            modes.push((name, meta.permissions().mode() & 0o777));
        }
        store.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            modes,
            [
                ("sessiond.db", 0o600),
                ("sessiond.db-wal", 0o600),
                ("sessiond.db-shm", 0o600)
            ]
        );
    }

    #[test]
    fn in_memory_sqlite_is_refused() {
        assert!(prepare_sqlite_url("sqlite::memory:").is_err());
    }
}
