//! The signing key ring. Keys live in the `signing_keys` table, so a restart or a second
//! instance on the same database signs and verifies with the same keys. The first start creates
//! one ES256 key; the unique `active` column makes two instances starting at once agree on it.
//! Rotation (`sessiond keys rotate`) retires the active key but keeps publishing it until every
//! token it signed has expired. Revocation (`sessiond keys retire`, an emergency) removes a key
//! from verification and from the JWKS at once. Each instance re-reads the table periodically,
//! when told of a change (PostgreSQL announces every change to the table; elsewhere a cheap
//! fingerprint is polled, see `services::maintenance`), and at once (at most every few seconds)
//! when it meets a token with a `kid` it does not know.
//!
//! A reload that drops a key bumps the ring's `epoch`: the verified-token cache
//! (`super::access`) is emptied when it sees the epoch move, so a token signed by a revoked key
//! is not accepted from memory either.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde_json::{Value, json};

use crate::clock::Clock;
use crate::credentials::tokens::sealing::{KeyBinding, KeyEncryption, is_sealed};
use crate::store::{Store, StoreResult, StoredSigningKey};

/// How often an unknown `kid` may trigger a re-read of the key table.
const UNKNOWN_KID_RELOAD_SECS: i64 = 5;

pub struct Signer {
    pub kid: String,
    pub algorithm: Algorithm,
    pub key: EncodingKey,
}

struct KeySet {
    signer: Arc<Signer>,
    verifiers: HashMap<String, (Algorithm, DecodingKey)>,
    jwks: Arc<Value>,
}

pub struct KeyRing {
    store: Store,
    clock: Clock,
    sealing: Arc<KeyEncryption>,
    /// Keys retired longer ago than this can no longer verify any live token.
    retention_secs: i64,
    current: RwLock<Arc<KeySet>>,
    /// When an unknown `kid` last triggered a re-read (Unix seconds, the injected clock).
    last_reload: Mutex<i64>,
    /// Bumped after every reload that dropped a key that verified before.
    epoch: AtomicU64,
    /// The last fingerprint of the key table seen (see `Store::signing_keys_version`).
    version: Mutex<Option<(i64, i64)>>,
    /// Notified when the key table is known to have changed (PostgreSQL announcements).
    changed: Arc<tokio::sync::Notify>,
}

impl KeyRing {
    /// Loads the keys, creating the first one if the table is empty.
    pub async fn load(
        store: Store,
        clock: Clock,
        access_ttl_secs: i64,
        sealing: Arc<KeyEncryption>,
    ) -> anyhow::Result<KeyRing> {
        let retention_secs = access_ttl_secs + 60;
        // Read before the keys: a change in between makes the first poll reload.
        let version = store.signing_keys_version().await.ok();
        let loaded_at = clock.now();
        let set = read_or_create(&store, loaded_at, retention_secs, &sealing).await?;
        Ok(KeyRing {
            store,
            clock,
            sealing,
            retention_secs,
            current: RwLock::new(Arc::new(set)),
            last_reload: Mutex::new(loaded_at),
            epoch: AtomicU64::new(0),
            version: Mutex::new(version),
            changed: Arc::new(tokio::sync::Notify::new()),
        })
    }

    pub fn signer(&self) -> Arc<Signer> {
        self.snapshot().signer.clone()
    }

    pub fn jwks(&self) -> Arc<Value> {
        self.snapshot().jwks.clone()
    }

    /// The verification key for `kid`, re-reading the table once if the kid is new to us.
    pub async fn verifier(&self, kid: &str) -> Option<(Algorithm, DecodingKey)> {
        if let Some(found) = self.snapshot().verifiers.get(kid) {
            return Some(found.clone());
        }
        if self.may_reload_for_unknown_kid()
            && let Err(error) = self.reload().await
        {
            tracing::warn!(error = ?error, "could not re-read signing keys");
        }
        self.snapshot().verifiers.get(kid).cloned()
    }

    /// Re-reads the keys. A key that is gone (revoked, or retired past every token it signed)
    /// stops verifying here and now, and moves the epoch.
    pub async fn reload(&self) -> anyhow::Result<()> {
        let retired_after = self.clock.now() - self.retention_secs;
        let set = read_keys(&self.store, retired_after, &self.sealing).await?;
        let dropped = {
            let mut current = self.current.write().expect("key ring lock poisoned");
            let dropped = current
                .verifiers
                .keys()
                .any(|kid| !set.verifiers.contains_key(kid));
            *current = Arc::new(set);
            dropped
        };
        if dropped {
            // After the swap: whoever sees the new epoch verifies with the new set.
            self.epoch.fetch_add(1, Ordering::SeqCst);
            tracing::info!("a signing key stopped verifying");
        }
        Ok(())
    }

    /// Re-reads the keys if the key table changed since the last look (one cheap query): how
    /// an instance that is not told of changes sees a revocation within a poll interval.
    pub async fn reload_if_changed(&self) -> anyhow::Result<()> {
        let version = self
            .store
            .signing_keys_version()
            .await
            .context("Failed to read the signing keys' version")?;
        let previous = self
            .version
            .lock()
            .expect("key ring lock poisoned")
            .replace(version);
        if previous.is_some_and(|previous| previous != version) {
            self.reload().await?;
        }
        Ok(())
    }

    /// Notified when the key table changed; whoever follows it calls [`KeyRing::reload`].
    pub fn changes(&self) -> Arc<tokio::sync::Notify> {
        self.changed.clone()
    }

    /// Moves whenever a key stops verifying; caches of verified tokens compare it.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.current.read().expect("key ring lock poisoned").clone()
    }

    fn may_reload_for_unknown_kid(&self) -> bool {
        let mut last = self.last_reload.lock().expect("key ring lock poisoned");
        let now = self.clock.now();
        if now - *last < UNKNOWN_KID_RELOAD_SECS {
            return false;
        }
        *last = now;
        true
    }
}

/// A new ES256 key as a row ready to insert, its private part sealed when a KEK is configured.
/// A new signing key, sealed when a KEK is configured, to be added to `store`'s keys. Refused
/// when this process has no KEK but the stored keys are sealed: it would add a plaintext key
/// that a sealed service then signs with.
pub async fn new_signing_key(
    store: &Store,
    sealing: &KeyEncryption,
    now: i64,
) -> anyhow::Result<StoredSigningKey> {
    let existing = store
        .all_signing_keys()
        .await
        .context("Failed to read signing keys")?;
    sealing.may_add_to(existing.iter().map(|k| k.private_der.as_slice()))?;
    generate_sealed_key(now, sealing)
}

pub fn generate_sealed_key(now: i64, sealing: &KeyEncryption) -> anyhow::Result<StoredSigningKey> {
    let mut key = generate_key(now)?;
    key.private_der = sealing.seal(binding(&key), &key.private_der)?;
    Ok(key)
}

/// What a stored private key is sealed to: its row.
pub fn binding(row: &StoredSigningKey) -> KeyBinding<'_> {
    KeyBinding {
        kid: &row.kid,
        alg: &row.alg,
        public_jwk: &row.public_jwk,
    }
}

/// A new ES256 key as a row ready to insert (private part as plain PKCS#8).
pub fn generate_key(now: i64) -> anyhow::Result<StoredSigningKey> {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
        .map_err(|_| anyhow::anyhow!("could not generate a P-256 key"))?;
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
        .map_err(|_| anyhow::anyhow!("generated key does not parse"))?;
    // Uncompressed SEC1 point: 0x04 || x (32 bytes) || y (32 bytes).
    let point = pair.public_key().as_ref();
    anyhow::ensure!(
        point.len() == 65 && point[0] == 4,
        "unexpected public key encoding"
    );
    let kid = uuid::Uuid::now_v7().simple().to_string();
    let jwk = json!({
        "kty": "EC",
        "crv": "P-256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        "kid": kid,
        "use": "sig",
        "alg": "ES256",
    });
    Ok(StoredSigningKey {
        kid,
        alg: "ES256".into(),
        private_der: pkcs8.as_ref().to_vec(),
        public_jwk: jwk.to_string(),
        active: Some(1),
        created_at: now,
        retired_at: None,
        revoked_at: None,
    })
}

async fn read_or_create(
    store: &Store,
    now: i64,
    retention_secs: i64,
    sealing: &KeyEncryption,
) -> anyhow::Result<KeySet> {
    match read_keys(store, now - retention_secs, sealing).await {
        Err(err) if err.is::<NoActiveKey>() => {
            let key = new_signing_key(store, sealing, now).await?;
            if store.insert_first_active_key(&key).await? {
                tracing::info!(kid = %key.kid, "created the first signing key");
            }
            read_keys(store, now - retention_secs, sealing).await
        }
        other => other,
    }
}

/// The active key and every key retired after `retired_after` (and not revoked).
async fn read_keys(
    store: &Store,
    retired_after: i64,
    sealing: &KeyEncryption,
) -> anyhow::Result<KeySet> {
    let rows: StoreResult<Vec<StoredSigningKey>> = store.verification_keys(retired_after).await;
    let mut rows = rows.context("Failed to read signing keys")?;
    for row in rows.iter_mut() {
        seal_if_plain(store, sealing, row).await?;
    }
    let active = rows
        .iter()
        .find(|row| row.active.is_some())
        .ok_or(NoActiveKey)?;
    let pkcs8 = sealing.open(binding(active), &active.private_der)?;
    // Parse it now: a key that cannot sign must stop start-up, not fail every login later.
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8)
        .map_err(|_| anyhow::anyhow!("signing key {} is not a P-256 key", active.kid))?;
    let signer = Arc::new(Signer {
        kid: active.kid.clone(),
        algorithm: parse_algorithm(&active.alg)?,
        key: EncodingKey::from_ec_der(&pkcs8),
    });
    let mut verifiers = HashMap::new();
    let mut published = Vec::new();
    for row in &rows {
        let jwk: Value = serde_json::from_str(&row.public_jwk).context("stored JWK is not JSON")?;
        let (x, y) = (jwk["x"].as_str(), jwk["y"].as_str());
        let (Some(x), Some(y)) = (x, y) else {
            anyhow::bail!("stored JWK {} lacks x/y", row.kid);
        };
        let key = DecodingKey::from_ec_components(x, y).context("stored JWK is not a P-256 key")?;
        verifiers.insert(row.kid.clone(), (parse_algorithm(&row.alg)?, key));
        published.push(jwk);
    }
    Ok(KeySet {
        signer,
        verifiers,
        jwks: Arc::new(json!({ "keys": published })),
    })
}

/// With a KEK configured, a key stored in plaintext (before sealing was configured, or by a
/// process without the KEK) is sealed in place as it is read, never used silently.
async fn seal_if_plain(
    store: &Store,
    sealing: &KeyEncryption,
    row: &mut StoredSigningKey,
) -> anyhow::Result<()> {
    if !sealing.configured() || is_sealed(&row.private_der) {
        return Ok(());
    }
    let sealed = sealing.seal(binding(row), &row.private_der)?;
    // Compare-and-swap: another instance may be sealing the same row right now; its seal and
    // this one open to the same key under the same KEK, so either serves this read.
    store
        .replace_private_key(&row.kid, &row.private_der, &sealed)
        .await
        .context("Failed to seal a plaintext signing key")?;
    tracing::warn!(
        kid = %row.kid,
        "signing key was stored in plaintext although keys.encryption_key is set: sealed it"
    );
    row.private_der = sealed;
    Ok(())
}

fn parse_algorithm(name: &str) -> anyhow::Result<Algorithm> {
    match name {
        "ES256" => Ok(Algorithm::ES256),
        other => anyhow::bail!("unsupported signing algorithm {other}"),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no active signing key")]
struct NoActiveKey;
