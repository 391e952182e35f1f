//! Service keys: how trusted backends authenticate to `/v1/introspect`, ticket redemption and
//! the admin API. Keys come from configuration (a secret or its SHA-256) and from the
//! `service_keys` table (`sessiond service-keys create`, which prints the key once and stores
//! only its SHA-256). A presented key is hashed and compared with every known hash in constant
//! time, so neither timing nor the key's position reveals anything.
//!
//! Every instance re-reads the table twice a second (see `services::maintenance`), so a key
//! revoked anywhere stops authenticating everywhere within that, and whatever it holds open
//! (event streams) is told through [`ServiceKeys::changes`] and ends.

use std::sync::{Arc, Mutex, RwLock};

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::clock::Clock;
use crate::config::ConfiguredKey;
use crate::credentials::tokens::opaque;
pub use crate::domain::Scope;
use crate::store::{Store, StoredServiceKey};

/// How often a key the instance does not know may trigger a re-read of the table.
const MISS_RELOAD_SECS: i64 = 1;
pub const KEY_PREFIX: &str = "sk_";

#[derive(Clone)]
struct Known {
    name: Arc<str>,
    hash: Arc<[u8]>,
    scopes: Vec<Scope>,
}

/// Who called: a service key's name and scopes.
#[derive(Clone)]
pub struct Caller {
    pub name: Arc<str>,
    scopes: Vec<Scope>,
    /// The key's SHA-256: which key this is, so that a key revoked and re-created under the
    /// same name is still a different key.
    hash: Arc<[u8]>,
}

impl Caller {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }
}

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

pub struct ServiceKeys {
    store: Store,
    configured: Vec<Known>,
    stored: RwLock<Arc<Vec<Known>>>,
    clock: Clock,
    /// When a miss last triggered a re-read (Unix seconds, the injected clock).
    last_reload: Mutex<i64>,
    /// Bumped whenever a re-read changes the set of stored keys.
    changes: tokio::sync::watch::Sender<u64>,
}

impl ServiceKeys {
    pub async fn load(
        store: Store,
        clock: Clock,
        configured: &[ConfiguredKey],
    ) -> anyhow::Result<ServiceKeys> {
        let configured = configured
            .iter()
            .map(known_from_config)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let keys = ServiceKeys {
            store,
            configured,
            stored: RwLock::new(Arc::new(Vec::new())),
            // The first miss may re-read at once: a key made just now (by the CLI, or another
            // instance) is accepted on its first use, not after the next periodic re-read.
            last_reload: Mutex::new(i64::MIN / 2),
            clock,
            changes: tokio::sync::watch::Sender::new(0),
        };
        keys.reload().await?;
        Ok(keys)
    }

    pub async fn reload(&self) -> anyhow::Result<()> {
        let rows = self.store.service_keys().await?;
        let known: Vec<Known> = rows
            .into_iter()
            .filter(|row| row.revoked_at.is_none())
            .map(known_from_row)
            .collect();
        let changed = {
            let mut stored = self.stored.write().expect("service key lock");
            let changed = !same_keys(&stored, &known);
            *stored = Arc::new(known);
            changed
        };
        if changed {
            self.changes.send_modify(|generation| *generation += 1);
        }
        Ok(())
    }

    /// Changes whenever a key is created or revoked: holders of long-lived requests (event
    /// streams) check [`ServiceKeys::is_current`] then.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Whether the key `caller` authenticated with is still valid (not revoked).
    pub fn is_current(&self, caller: &Caller) -> bool {
        self.find(&caller.hash).is_some()
    }

    /// Resolves once the key `caller` authenticated with has been revoked.
    pub async fn revoked(&self, caller: &Caller) {
        let mut changes = self.changes();
        while self.is_current(caller) {
            if changes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// The caller a presented key belongs to, re-reading the table once (at most every
    /// second) for a key created since the last read.
    pub async fn authenticate(&self, presented: &str) -> Option<Caller> {
        let hash = opaque::hash(presented);
        if let Some(caller) = self.find(&hash) {
            return Some(caller);
        }
        if self.may_reload() {
            if let Err(error) = self.reload().await {
                tracing::warn!(error = ?error, "could not re-read service keys");
            }
            return self.find(&hash);
        }
        None
    }

    fn find(&self, hash: &[u8]) -> Option<Caller> {
        let stored = self.stored.read().expect("service key lock").clone();
        let mut found = None;
        // Every entry is compared, match or not, so timing does not depend on which matched.
        for known in self.configured.iter().chain(stored.iter()) {
            if bool::from(known.hash.ct_eq(hash)) {
                found = Some(Caller {
                    name: known.name.clone(),
                    scopes: known.scopes.clone(),
                    hash: known.hash.clone(),
                });
            }
        }
        found
    }

    fn may_reload(&self) -> bool {
        let mut last = self.last_reload.lock().expect("service key lock");
        let now = self.clock.now();
        if now - *last < MISS_RELOAD_SECS {
            return false;
        }
        *last = now;
        true
    }
}

fn same_keys(a: &[Known], b: &[Known]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.hash == y.hash)
}

fn known_from_config(key: &ConfiguredKey) -> anyhow::Result<Known> {
    let hash = match (&key.secret, &key.sha256) {
        (Some(secret), None) => opaque::hash(secret.expose_secret()),
        (None, Some(hex)) => decode_hex(hex).filter(|h| h.len() == 32).ok_or_else(|| {
            anyhow::anyhow!("service key {}: sha256 must be 64 hex digits", key.name)
        })?,
        _ => anyhow::bail!(
            "service key {}: set exactly one of secret or sha256",
            key.name
        ),
    };
    anyhow::ensure!(
        !key.scopes.is_empty(),
        "service key {} has no scopes",
        key.name
    );
    Ok(Known {
        name: key.name.as_str().into(),
        hash: hash.into(),
        scopes: key.scopes.clone(),
    })
}

fn known_from_row(row: StoredServiceKey) -> Known {
    Known {
        name: row.name.into(),
        hash: row.key_hash.into(),
        scopes: row
            .scopes
            .split_whitespace()
            .filter_map(Scope::parse)
            .collect(),
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    let hex = hex.trim();
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A new key for `sessiond service-keys create`: the key to print once and the row to store.
pub fn generate(name: &str, scopes: &[Scope], now: i64) -> (SecretString, StoredServiceKey) {
    let key = SecretString::from(format!(
        "{KEY_PREFIX}{}",
        opaque::generate().expose_secret()
    ));
    let row = StoredServiceKey {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_string(),
        key_hash: opaque::hash(key.expose_secret()),
        scopes: scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        created_at: now,
        revoked_at: None,
    };
    (key, row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_hashes_must_be_sha256_hex() {
        let key = |sha256: &str| ConfiguredKey {
            name: "api".into(),
            secret: None,
            sha256: Some(sha256.into()),
            scopes: vec![Scope::Introspect],
        };
        assert!(known_from_config(&key(&"ab".repeat(32))).is_ok());
        assert!(known_from_config(&key("abc")).is_err());
        assert!(known_from_config(&key(&"zz".repeat(32))).is_err());
    }

    #[test]
    fn generated_keys_hash_to_their_row() {
        let (key, row) = generate("api", &[Scope::Introspect, Scope::Admin], 0);
        assert!(key.expose_secret().starts_with(KEY_PREFIX));
        assert_eq!(row.key_hash, opaque::hash(key.expose_secret()));
        assert_eq!(row.scopes, "introspect admin");
        assert!(!format!("{key:?}").contains(&key.expose_secret()[3..]));
    }
}
