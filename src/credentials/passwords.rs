//! Argon2id hashing on a few dedicated threads, never on the async workers.
//!
//! Each hash takes tens of milliseconds of one core and 19 MiB of memory. Running them on
//! `spawn_blocking` let glibc keep a 19 MiB arena on every blocking thread that ever hashed
//! (RSS passed 700 MB under a login load). Instead, `max_concurrent_hashes` threads each own
//! one reusable block buffer (argon2's `hash_password_into_with_memory`), so memory is bounded
//! by threads × m_cost, and the rest of the requests queue (the queue depth is a metric) without
//! occupying the workers that serve token validation. PHC strings are parsed and written by
//! the `password-hash` types, and compared in constant time by them.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use anyhow::{Context, anyhow};
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OnceCell, oneshot};

use crate::config::PasswordSettings;
use crate::domain::normalize_password as normalize;

const OUTPUT_LEN: usize = 32;

enum Job {
    Hash(SecretString, oneshot::Sender<anyhow::Result<String>>),
    Verify(SecretString, String, oneshot::Sender<anyhow::Result<bool>>),
}

impl Job {
    /// The requester stopped waiting (its client went away): the hash would be wasted.
    fn abandoned(&self) -> bool {
        match self {
            Job::Hash(_, reply) => reply.is_closed(),
            Job::Verify(_, _, reply) => reply.is_closed(),
        }
    }
}

/// Why a hash was not computed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The queue is full: answer 503 at once rather than make every caller wait longer.
    #[error("too many password hashes are waiting")]
    Busy,
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<HashError> for crate::error::Error {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy => crate::error::Error::Unavailable(err.into()),
            HashError::Failed(e) => crate::error::Error::Internal(e),
        }
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    jobs: mpsc::Sender<Job>,
    /// Verified against when the email is unknown, so that case costs what a wrong password
    /// does. Made on first use, so an idle instance never spent the memory.
    dummy_hash: Arc<OnceCell<String>>,
    waiting: Arc<AtomicI64>,
    max_waiting: i64,
    abandoned: Arc<AtomicI64>,
}

impl PasswordHasher {
    pub fn new(settings: &PasswordSettings) -> anyhow::Result<PasswordHasher> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            Some(OUTPUT_LEN),
        )
        .map_err(|e| anyhow!("invalid argon2 parameters: {e}"))?;
        let threads = match settings.max_concurrent_hashes {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        };
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        let waiting = Arc::new(AtomicI64::new(0));
        let abandoned = Arc::new(AtomicI64::new(0));
        for i in 0..threads {
            let worker = Worker {
                params: params.clone(),
                blocks: Vec::new(),
            };
            let (queue, waiting, abandoned) = (queue.clone(), waiting.clone(), abandoned.clone());
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    lower_priority();
                    worker.run(&queue, &waiting, &abandoned)
                })
                .context("Failed to start a password hashing thread")?;
        }
        Ok(PasswordHasher {
            jobs,
            dummy_hash: Arc::new(OnceCell::new()),
            waiting,
            max_waiting: i64::try_from(settings.max_queued_hashes.max(1)).unwrap_or(i64::MAX),
            abandoned,
        })
    }

    /// Queued hashes skipped because their requester had gone.
    pub fn abandoned(&self) -> i64 {
        self.abandoned.load(Ordering::Relaxed)
    }

    /// Hashes queued or running: the argon2 queue depth.
    pub fn queue_depth(&self) -> i64 {
        self.waiting.load(Ordering::Relaxed)
    }

    /// A PHC string for an (already normalized) new password.
    pub async fn hash(&self, password: &SecretString) -> Result<String, HashError> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Hash(password.clone(), reply))?;
        Ok(answer.await.context("password hashing thread stopped")??)
    }

    /// A place in the queue for one hash, taken before the request does any other work: when
    /// the queue is full the request is turned away at once (`503`), without touching the
    /// database. Dropping an unused place frees it.
    pub fn reserve(&self) -> Result<HashSlot, HashError> {
        let (ahead, slot) = self.take_place();
        if ahead >= self.max_waiting {
            return Err(HashError::Busy); // dropping `slot` gives the place back
        }
        Ok(slot)
    }

    /// A place in the queue whether or not it is full, with the number of places taken before.
    fn take_place(&self) -> (i64, HashSlot) {
        let ahead = self.waiting.fetch_add(1, Ordering::Relaxed);
        let slot = HashSlot {
            waiting: Some(self.waiting.clone()),
        };
        (ahead, slot)
    }

    /// Checks a presented password against a stored PHC string, or against the dummy hash when
    /// there is none (unknown user), so both cases cost the same. NFKC-normalizes first.
    pub async fn verify(
        &self,
        password: &SecretString,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let slot = self.reserve()?;
        self.verify_in(slot, password, stored).await
    }

    /// [`PasswordHasher::verify`] in a place reserved earlier ([`PasswordHasher::reserve`]).
    pub async fn verify_in(
        &self,
        slot: HashSlot,
        password: &SecretString,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let is_real = stored.is_some();
        let phc = match stored {
            Some(phc) => phc,
            None => self.dummy().await?,
        };
        let (reply, answer) = oneshot::channel();
        self.send(slot, Job::Verify(normalize(password), phc, reply))?;
        let matched = answer.await.context("password hashing thread stopped")??;
        Ok(matched && is_real)
    }

    async fn dummy(&self) -> Result<String, HashError> {
        let phc = self
            .dummy_hash
            .get_or_try_init(|| async move {
                let unguessable = crate::credentials::tokens::opaque::generate();
                // Made once, by a request that holds a place already: it may go past the bound.
                let (_, slot) = self.take_place();
                let (reply, answer) = oneshot::channel();
                self.send(slot, Job::Hash(unguessable, reply))?;
                Ok::<_, HashError>(answer.await.context("password hashing thread stopped")??)
            })
            .await?;
        Ok(phc.clone())
    }

    fn submit(&self, job: Job) -> Result<(), HashError> {
        let slot = self.reserve()?;
        self.send(slot, job)
    }

    /// Queues `job` in its reserved place; the worker frees the place when the job is done.
    fn send(&self, mut slot: HashSlot, job: Job) -> Result<(), HashError> {
        self.jobs
            .send(job)
            .map_err(|_| anyhow!("password hashing threads stopped"))?;
        slot.waiting = None;
        Ok(())
    }
}

/// A reserved place in the hashing queue ([`PasswordHasher::reserve`]).
pub struct HashSlot {
    /// Set until a job takes the place over (the worker then frees it).
    waiting: Option<Arc<AtomicI64>>,
}

impl Drop for HashSlot {
    fn drop(&mut self) {
        if let Some(waiting) = self.waiting.take() {
            waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Hashing yields the CPU to request handling: under a login burst, token validation keeps
/// its latency and logins take what is left (nice 19). Measured with scripts/bench: /v1/me p99
/// went from 7.6 ms to 4.1 ms under a concurrent login load.
fn lower_priority() {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    let value = ThreadPriorityValue::try_from(0u8).expect("0..100");
    if let Err(error) = set_current_thread_priority(ThreadPriority::Crossplatform(value)) {
        tracing::warn!(?error, "could not lower the priority of a hashing thread");
    }
}

struct Worker {
    params: Params,
    /// Reused by every hash on this thread; grown when a stored hash asks for more memory.
    blocks: Vec<Block>,
}

impl Worker {
    fn run(
        mut self,
        queue: &Mutex<mpsc::Receiver<Job>>,
        waiting: &AtomicI64,
        abandoned: &AtomicI64,
    ) {
        loop {
            let job = match queue.lock().map(|q| q.recv()) {
                Ok(Ok(job)) => job,
                _ => return, // the hasher was dropped
            };
            if job.abandoned() {
                waiting.fetch_sub(1, Ordering::Relaxed);
                abandoned.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            // Leave the queue before answering, so the caller never sees itself still counted.
            match job {
                Job::Hash(password, reply) => {
                    let result = self.hash(&password);
                    waiting.fetch_sub(1, Ordering::Relaxed);
                    let _ = reply.send(result);
                }
                Job::Verify(password, phc, reply) => {
                    let result = self.verify(&password, &phc);
                    waiting.fetch_sub(1, Ordering::Relaxed);
                    let _ = reply.send(result);
                }
            }
        }
    }

    fn compute(&mut self, params: Params, password: &[u8], salt: &[u8]) -> anyhow::Result<Output> {
        let needed = params.block_count();
        if self.blocks.len() < needed {
            self.blocks.resize(needed, Block::new());
        }
        let mut out = [0u8; OUTPUT_LEN];
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into_with_memory(password, salt, &mut out, &mut self.blocks[..needed])
            .map_err(|e| anyhow!("argon2 failed: {e}"))?;
        Output::new(&out).map_err(|e| anyhow!("argon2 output: {e}"))
    }

    fn hash(&mut self, password: &SecretString) -> anyhow::Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let raw_salt = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|e| anyhow!("salt: {e}"))?;
        let output = self.compute(
            self.params.clone(),
            password.expose_secret().as_bytes(),
            raw_salt,
        )?;
        let phc = PasswordHash {
            algorithm: ARGON2ID_IDENT,
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(self.params.clone())
                .map_err(|e| anyhow!("params: {e}"))?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(phc.to_string())
    }

    fn verify(&mut self, password: &SecretString, phc: &str) -> anyhow::Result<bool> {
        let parsed = PasswordHash::new(phc).map_err(|e| anyhow!("stored hash: {e}"))?;
        anyhow::ensure!(
            parsed.algorithm == ARGON2ID_IDENT,
            "stored hash is not argon2id"
        );
        let params = Params::try_from(&parsed).map_err(|e| anyhow!("stored params: {e}"))?;
        let expected = parsed.hash.context("stored hash has no output")?;
        anyhow::ensure!(
            expected.len() == OUTPUT_LEN,
            "unexpected stored hash length"
        );
        let mut salt_bytes = [0u8; 64];
        let salt = parsed
            .salt
            .context("stored hash has no salt")?
            .decode_b64(&mut salt_bytes)
            .map_err(|e| anyhow!("stored salt: {e}"))?;
        let params = Params::new(
            params.m_cost(),
            params.t_cost(),
            params.p_cost(),
            Some(OUTPUT_LEN),
        )
        .map_err(|e| anyhow!("stored params: {e}"))?;
        let actual = self.compute(params, password.expose_secret().as_bytes(), salt)?;
        // `Output`'s equality is constant-time.
        Ok(actual == expected)
    }
}

#[cfg(test)]
mod tests {
    use argon2::PasswordVerifier;

    use super::*;

    fn hasher() -> PasswordHasher {
        let mut settings = crate::config::Settings::defaults().passwords;
        settings.argon2_memory_kib = 1024;
        settings.argon2_iterations = 1;
        PasswordHasher::new(&settings).unwrap()
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let mut settings = crate::config::Settings::defaults().passwords;
        settings.max_concurrent_hashes = 1;
        settings.max_queued_hashes = 2;
        let hasher = PasswordHasher::new(&settings).unwrap();
        let pw = SecretString::from("correct horse battery staple");
        let results = futures_util::future::join_all((0..6).map(|_| hasher.hash(&pw))).await;
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(HashError::Busy)))
            .count();
        assert_eq!(
            busy, 4,
            "two fit (one running, one waiting), four are refused"
        );
        assert_eq!(hasher.queue_depth(), 0);
    }

    #[tokio::test]
    async fn hashes_are_standard_argon2id_phc_strings_that_verify() {
        let hasher = hasher();
        let pw = SecretString::from("correct horse battery staple");
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{phc}");
        // The reference implementation agrees: our strings are interchangeable.
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery staple", &parsed)
                .is_ok()
        );
        assert!(hasher.verify(&pw, Some(phc.clone())).await.unwrap());
        let wrong = SecretString::from("correct horse battery stapler");
        assert!(!hasher.verify(&wrong, Some(phc)).await.unwrap());
    }

    #[tokio::test]
    async fn verifies_hashes_made_with_other_parameters() {
        use argon2::PasswordHasher as _;
        let salt = SaltString::generate(&mut OsRng);
        let params = Params::new(2048, 2, 1, None).unwrap();
        let phc = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(b"an older passphrase 77", &salt)
            .unwrap()
            .to_string();
        let hasher = hasher();
        let pw = SecretString::from("an older passphrase 77");
        assert!(hasher.verify(&pw, Some(phc)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_users_never_verify_and_the_queue_drains() {
        let hasher = hasher();
        let pw = SecretString::from("correct horse battery staple");
        assert!(!hasher.verify(&pw, None).await.unwrap());
        assert_eq!(hasher.queue_depth(), 0);
    }
}
