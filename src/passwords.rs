//! Argon2id hashing off the async workers. Each hash takes tens of milliseconds of one core, so
//! it runs in `spawn_blocking` behind a semaphore: at most `max_concurrent_hashes` at once,
//! the rest wait their turn without occupying the workers that serve token validation.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;
use tracing::Span;

use crate::config::PasswordSettings;
use crate::domain::normalize_password as normalize;

#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// Verified against when the email is unknown, so that case costs what a wrong password does.
    dummy_hash: Arc<str>,
    waiting: Arc<AtomicI64>,
}

impl PasswordHasher {
    pub fn new(settings: &PasswordSettings) -> anyhow::Result<PasswordHasher> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("invalid argon2 parameters: {e}"))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let limit = match settings.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let dummy_hash = hash_with(&argon2, "sessiond dummy password for unknown users")?;
        Ok(PasswordHasher {
            argon2,
            permits: Arc::new(Semaphore::new(limit)),
            dummy_hash: dummy_hash.into(),
            waiting: Arc::new(AtomicI64::new(0)),
        })
    }

    /// Hashes waiting for or holding a permit: the argon2 queue depth.
    pub fn queue_depth(&self) -> i64 {
        self.waiting.load(Ordering::Relaxed)
    }

    pub async fn hash(&self, password: &SecretString) -> anyhow::Result<String> {
        let argon2 = self.argon2.clone();
        let password = password.clone();
        self.run(move || hash_with(&argon2, password.expose_secret()))
            .await
    }

    /// Checks a presented password against a stored PHC string, or against the dummy hash when
    /// there is none (unknown user), so both cases cost the same. NFKC-normalizes first.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<String>,
    ) -> anyhow::Result<bool> {
        let argon2 = self.argon2.clone();
        let password = normalize(password);
        let is_real = stored.is_some();
        let phc = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let matched = self
            .run(move || {
                let parsed = PasswordHash::new(&phc)
                    .map_err(|e| anyhow::anyhow!("stored hash is not a PHC string: {e}"))?;
                Ok(argon2
                    .verify_password(password.expose_secret().as_bytes(), &parsed)
                    .is_ok())
            })
            .await?;
        Ok(matched && is_real)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _leave = scopeguard(self.waiting.clone());
        let _permit = self
            .permits
            .acquire()
            .await
            .context("password hasher closed")?;
        let span = Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work))
            .await
            .context("password hashing task failed")?
    }
}

fn hash_with(argon2: &Argon2<'_>, password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("argon2 hashing failed: {e}"))
}

/// Decrements the queue-depth gauge when the request finishes or is cancelled.
struct QueueSlot(Arc<AtomicI64>);

fn scopeguard(counter: Arc<AtomicI64>) -> QueueSlot {
    QueueSlot(counter)
}

impl Drop for QueueSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> PasswordHasher {
        let mut settings = crate::config::Settings::defaults().passwords;
        settings.argon2_memory_kib = 1024;
        settings.argon2_iterations = 1;
        PasswordHasher::new(&settings).unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_that_verify() {
        let hasher = hasher();
        let pw = SecretString::from("correct horse battery staple");
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(hasher.verify(&pw, Some(phc.clone())).await.unwrap());
        let wrong = SecretString::from("correct horse battery stapler");
        assert!(!hasher.verify(&wrong, Some(phc)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        let hasher = hasher();
        let pw = SecretString::from("sessiond dummy password for unknown users");
        assert!(!hasher.verify(&pw, None).await.unwrap());
    }
}
