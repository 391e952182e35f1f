//! The `sessiond` command: `serve` (the default), `migrate`, `keys`, `users`.

use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;
use sessiond::config::Settings;
use sessiond::domain::RevokeReason;
use sessiond::service_keys::Scope;
use sessiond::startup::Application;
use sessiond::store::Store;
use sessiond::{clock, install_crypto_provider, telemetry, tokens};

#[derive(Parser)]
#[command(version, about = "Session and authentication service")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (migrations are applied first).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// User administration.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Keys for trusted backends (introspection, ticket redemption, admin API).
    #[command(subcommand, name = "service-keys")]
    ServiceKeys(ServiceKeysCommand),
    /// The per-account login throttle.
    #[command(subcommand)]
    Throttle(ThrottleCommand),
    /// The configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (secrets masked) and exit non-zero, with the reasons,
    /// if it must not run (judged as production when SESSIOND_ENV=production).
    ///
    /// Example: SESSIOND_ENV=production sessiond config check
    Check,
}

#[derive(Subcommand)]
enum ThrottleCommand {
    /// Forget an account's failed logins from every address, so its owner can sign in now.
    ///
    /// Example: sessiond throttle clear ann@example.com
    Clear {
        /// The email the attempts were made with.
        email: String,
    },
}

#[derive(Subcommand)]
enum ServiceKeysCommand {
    /// Create a key and print it once; only its SHA-256 is stored.
    Create {
        name: String,
        /// introspect, admin and/or events (repeat the flag for several)
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List keys (names and scopes, never the keys).
    List,
    /// Revoke a key by name.
    Revoke { name: String },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// List signing keys (never their private parts).
    List,
    /// Make a new active key; the old one keeps verifying until its tokens expire.
    Rotate,
    /// Seal every private key under keys.encryption_key (plain rows, and rows sealed under an
    /// old encryption key listed in keys.old_encryption_keys). Safe to run while serving.
    ///
    /// Example: SESSIOND__KEYS__ENCRYPTION_KEY=$(openssl rand -base64 32) sessiond keys seal
    Seal,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Revoke every session of a user.
    RevokeSessions { user_id: String },
}

#[actix_web::main]
async fn main() {
    let cli = Cli::parse();
    if let Some(Command::Config(ConfigCommand::Check)) = cli.command {
        std::process::exit(check_config());
    }
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("sessiond: {error:#}");
            std::process::exit(2);
        }
    };
    telemetry::init(&settings.log);
    install_crypto_provider();
    if let Err(error) = run(cli.command.unwrap_or(Command::Serve), settings).await {
        // One clear line, naming the cause (database URLs are shown without passwords).
        tracing::error!("sessiond cannot continue: {error:#}");
        std::process::exit(1);
    }
}

/// `sessiond config check`: 0 when the configuration may run, 1 with the reasons if not, 2 if
/// it cannot even be read.
fn check_config() -> i32 {
    let settings = match Settings::load_unchecked() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("sessiond: {error:#}");
            return 2;
        }
    };
    let environment = Settings::environment();
    println!("SESSIOND_ENV={environment}");
    println!("{settings:#?}");
    let problems = settings.problems(environment == "production");
    for problem in &problems {
        eprintln!("problem: {problem}");
    }
    if problems.is_empty() {
        println!("configuration ok");
        0
    } else {
        1
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Config(ConfigCommand::Check) => unreachable!("handled before loading settings"),
        Command::Serve => {
            let app = Application::build(settings).await?;
            tracing::info!(port = app.port(), "sessiond listening");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            connect(&settings).await?;
            tracing::info!("migrations applied");
        }
        Command::Keys(KeysCommand::List) => {
            let store = connect(&settings).await?;
            for key in store.all_signing_keys().await? {
                let state = if key.active.is_some() {
                    "active"
                } else {
                    "retired"
                };
                println!(
                    "{}\t{}\t{}\tcreated {}",
                    key.kid,
                    key.alg,
                    state,
                    clock::rfc3339(key.created_at)
                );
            }
        }
        Command::Keys(KeysCommand::Rotate) => {
            let store = connect(&settings).await?;
            let now = clock::now();
            let key = tokens::keys::generate_sealed_key(now, &key_encryption(&settings)?)?;
            store.rotate_signing_key(&key, now).await?;
            println!("new active key {}", key.kid);
        }
        Command::Keys(KeysCommand::Seal) => {
            let store = connect(&settings).await?;
            let sealing = key_encryption(&settings)?;
            anyhow::ensure!(
                sealing.configured(),
                "set keys.encryption_key (SESSIOND__KEYS__ENCRYPTION_KEY) to seal keys"
            );
            let mut sealed = 0;
            for key in store.all_signing_keys().await? {
                if sealing.is_current(&key.private_der) {
                    continue;
                }
                let pkcs8 = sealing.open(&key.kid, &key.private_der)?;
                let stored = sealing.seal(&key.kid, &pkcs8)?;
                if store
                    .replace_private_key(&key.kid, &key.private_der, &stored)
                    .await?
                {
                    sealed += 1;
                }
            }
            println!("sealed {sealed} signing keys under the current encryption key");
        }
        Command::ServiceKeys(command) => service_keys(command, &connect(&settings).await?).await?,
        Command::Throttle(ThrottleCommand::Clear { email }) => {
            let store = connect(&settings).await?;
            let account = sessiond::domain::Email::parse(&email)
                .map(|e| e.as_str().to_string())
                .unwrap_or_else(|_| email.trim().to_lowercase());
            let cleared = sessiond::throttle::LoginThrottle::new(store, settings.throttle.clone())
                .clear(&account)
                .await?;
            println!("cleared {cleared} throttle entries for {account}");
        }
        Command::Users(UsersCommand::RevokeSessions { user_id }) => {
            let store = connect(&settings).await?;
            let ended = store
                .revoke_user_sessions(&user_id, None, RevokeReason::Admin, clock::now())
                .await?;
            // Running instances drop these at once (PostgreSQL: announced by a trigger when
            // this commits) or within a second (SQLite).
            println!("revoked {} sessions", ended.len());
        }
    }
    Ok(())
}

async fn service_keys(command: ServiceKeysCommand, store: &Store) -> anyhow::Result<()> {
    match command {
        ServiceKeysCommand::Create { name, scopes } => {
            let scopes = scopes
                .iter()
                .map(|s| Scope::parse(s).ok_or_else(|| anyhow::anyhow!("unknown scope {s}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let (key, row) = sessiond::service_keys::generate(&name, &scopes, clock::now());
            anyhow::ensure!(
                store.insert_service_key(&row).await?,
                "a service key named {name} exists already"
            );
            println!("{}", key.expose_secret());
            eprintln!(
                "service key {name} created ({}); it is shown only this once",
                row.scopes
            );
        }
        ServiceKeysCommand::List => {
            for key in store.service_keys().await? {
                let state = if key.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\t{}\tcreated {}",
                    key.name,
                    key.scopes,
                    state,
                    clock::rfc3339(key.created_at)
                );
            }
        }
        ServiceKeysCommand::Revoke { name } => {
            anyhow::ensure!(
                store.revoke_service_key(&name, clock::now()).await?,
                "no active service key named {name}"
            );
            println!("revoked {name}");
        }
    }
    Ok(())
}

fn key_encryption(settings: &Settings) -> anyhow::Result<tokens::sealing::KeyEncryption> {
    tokens::sealing::KeyEncryption::new(
        settings.keys.encryption_key.as_ref(),
        &settings.keys.old_encryption_keys,
    )
}

async fn connect(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot reach the database at {}: {e:#}",
            settings.database.redacted_url()
        )
    })?;
    store.migrate().await?;
    Ok(store)
}
