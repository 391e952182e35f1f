//! The floors `scripts/bench` measures sessiond against, and the bulk seeding it needs. Run
//! with sessiond's own settings (config files and `SESSIOND__*`, `DATABASE_URL`):
//!
//!   bench-floors bare PORT                  a bare actix-web responder: no middleware, one
//!                                           route, the same workers as sessiond (GET /)
//!   bench-floors seed COUNT TOKENS_FILE     COUNT guest sessions written in bulk through the
//!                                           store; their access tokens appended to TOKENS_FILE
//!   bench-floors rotation SECONDS TASKS     refresh-token rotations through the store, no HTTP
//!   bench-floors argon2 SECONDS             password hashes with sessiond's argon2 parameters,
//!                                           one thread per core
//!
//! Each measuring command prints one line: `<per second>`.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use secrecy::ExposeSecret;
use sessiond::clock::Clock;
use sessiond::config::Settings;
use sessiond::credentials::tokens::access::Subject;
use sessiond::credentials::tokens::{AccessTokens, opaque};
use sessiond::store::{RefreshOutcome, RotationRequest, SeededSession, Store};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| -> anyhow::Result<&str> {
        args.get(i)
            .map(String::as_str)
            .with_context(|| format!("missing argument {i}; see the comment atop bench/floors.rs"))
    };
    match arg(0)? {
        "bare" => bare(arg(1)?.parse()?).await,
        "seed" => seed(arg(1)?.parse()?, arg(2)?).await,
        "rotation" => rotation(arg(1)?.parse()?, arg(2)?.parse()?).await,
        "argon2" => argon2_ceiling(arg(1)?.parse()?),
        other => bail!("unknown command {other}; see the comment atop bench/floors.rs"),
    }
}

/// The fastest an HTTP answer can be with this stack on this machine: what `/healthz` and
/// validation are compared with.
async fn bare(port: u16) -> anyhow::Result<()> {
    let settings = Settings::load_unchecked()?;
    let mut server = actix_web::HttpServer::new(|| {
        actix_web::App::new().route(
            "/",
            actix_web::web::get().to(|| async { actix_web::HttpResponse::Ok().body("ok") }),
        )
    });
    if settings.server.workers > 0 {
        server = server.workers(settings.server.workers);
    }
    server.bind(("127.0.0.1", port))?.run().await?;
    Ok(())
}

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database).await?;
    store.migrate().await?;
    Ok(store)
}

/// Guest sessions written in bulk, with an access token each, signed by the service's own key.
async fn seed(count: usize, tokens_file: &str) -> anyhow::Result<()> {
    let settings = Settings::load_unchecked()?;
    let store = open_store(&settings).await?;
    let clock = Clock::system();
    // Issuing only: no verified tokens to remember.
    let tokens = AccessTokens::load(store.clone(), clock.clone(), &settings, 16).await?;
    let now = clock.now();
    let expires_at = now + settings.sessions.guest_ttl_secs;
    let mut out = std::io::BufWriter::new(
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(tokens_file)?,
    );
    let started = Instant::now();
    for chunk_start in (0..count).step_by(10_000) {
        let sessions: Vec<SeededSession> = (chunk_start..count.min(chunk_start + 10_000))
            .map(|_| SeededSession {
                user_id: uuid::Uuid::now_v7().to_string(),
                session_id: uuid::Uuid::now_v7().to_string(),
                refresh_token_id: uuid::Uuid::now_v7().to_string(),
                refresh_token_hash: opaque::hash(opaque::generate().expose_secret()),
            })
            .collect();
        store
            .insert_guest_sessions(&sessions, now, expires_at)
            .await?;
        for s in &sessions {
            let (token, _) = tokens.issue(
                Subject {
                    user_id: &s.user_id,
                    session_id: &s.session_id,
                    is_guest: true,
                    amr: vec!["guest".into()],
                    email: None,
                    email_verified: false,
                    auth_time: now,
                    session_ends_at: expires_at,
                },
                now,
            )?;
            writeln!(out, "{token}")?;
        }
    }
    out.flush()?;
    eprintln!(
        "  seeded {count} sessions in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    // The newest event id: the bench waits for the server's feed to read up to it.
    println!("{}", store.last_event_id().await?);
    Ok(())
}

/// Refresh-token rotations straight through the store: the transaction a refresh runs, without
/// HTTP, hashing of the presented token aside. `tasks` chains rotate concurrently.
async fn rotation(seconds: u64, tasks: usize) -> anyhow::Result<()> {
    let settings = Settings::load_unchecked()?;
    let store = open_store(&settings).await?;
    let clock = Clock::system();
    let now = clock.now();
    let presented: Vec<_> = (0..tasks).map(|_| opaque::generate()).collect();
    let sessions: Vec<SeededSession> = presented
        .iter()
        .map(|token| SeededSession {
            user_id: uuid::Uuid::now_v7().to_string(),
            session_id: uuid::Uuid::now_v7().to_string(),
            refresh_token_id: uuid::Uuid::now_v7().to_string(),
            refresh_token_hash: opaque::hash(token.expose_secret()),
        })
        .collect();
    store
        .insert_guest_sessions(&sessions, now, now + settings.sessions.guest_ttl_secs)
        .await?;
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut running = Vec::new();
    for first in presented {
        let (store, done, stop, clock) = (store.clone(), done.clone(), stop.clone(), clock.clone());
        let sessions = settings.sessions.clone();
        running.push(tokio::spawn(async move {
            let mut current = first;
            while !stop.load(Ordering::Relaxed) {
                let successor = opaque::generate();
                let request = RotationRequest {
                    presented_hash: &opaque::hash(current.expose_secret()),
                    successor_id: &uuid::Uuid::now_v7().to_string(),
                    successor_hash: &opaque::hash(successor.expose_secret()),
                    successor_sealed: &opaque::seal_successor(&current, &successor),
                    now: clock.now(),
                    grace_secs: sessions.refresh_grace_secs,
                    idle_timeout_secs: sessions.idle_timeout_secs,
                };
                match store.rotate_refresh_token(&request).await? {
                    RefreshOutcome::Rotated { .. } => {}
                    other => bail!("a rotation was refused: {other:?}"),
                }
                current = successor;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let rotated = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for task in running {
        task.await??;
    }
    println!("{:.0}", rotated as f64 / elapsed);
    Ok(())
}

/// Password hashes per second with sessiond's argon2 parameters on every core at once: the
/// most logins this machine can check.
fn argon2_ceiling(seconds: u64) -> anyhow::Result<()> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let settings = Settings::load_unchecked()?.passwords;
    let params = argon2::Params::new(
        settings.argon2_memory_kib,
        settings.argon2_iterations,
        settings.argon2_parallelism,
        Some(32),
    )
    .map_err(|e| anyhow::anyhow!("argon2 parameters: {e}"))?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let threads: Vec<_> = (0..cores)
        .map(|_| {
            let params = params.clone();
            std::thread::spawn(move || {
                let argon2 = argon2::Argon2::new(
                    argon2::Algorithm::Argon2id,
                    argon2::Version::V0x13,
                    params,
                );
                let mut hashed = 0u64;
                while Instant::now() < deadline {
                    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
                    argon2
                        .hash_password(b"correct horse battery staple", &salt)
                        .expect("argon2 hashes");
                    hashed += 1;
                }
                hashed
            })
        })
        .collect();
    let hashed: u64 = threads
        .into_iter()
        .map(|t| t.join().expect("a hashing thread"))
        .sum();
    println!("{:.1}", hashed as f64 / started.elapsed().as_secs_f64());
    Ok(())
}
