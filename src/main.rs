//! The `sessiond` command: `serve` (the default) and the operator's commands (`src/cli/`).

use clap::Parser;
use sessiond::cli::{Cli, Command, ConfigCommand};
use sessiond::config::Settings;
use sessiond::install_crypto_provider;
use sessiond::observability::telemetry;
use sessiond::startup::Application;

#[actix_web::main]
async fn main() {
    let cli = Cli::parse();
    if let Some(Command::Config(ConfigCommand::Check)) = cli.command {
        std::process::exit(sessiond::cli::check_config());
    }
    let settings = match Settings::load() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("sessiond: {error:#}");
            std::process::exit(2);
        }
    };
    install_crypto_provider();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            telemetry::init(&settings.log);
            if let Err(error) = serve(settings).await {
                // One clear line, naming the cause (database URLs are shown without passwords).
                tracing::error!("sessiond cannot continue: {error:#}");
                std::process::exit(1);
            }
        }
        command => {
            // Results go to stdout; logs, like every message, to stderr.
            telemetry::init_to_stderr(&settings.log);
            if let Err(error) = sessiond::cli::run(command, settings).await {
                eprintln!("sessiond: {error:#}");
                std::process::exit(error.exit_code());
            }
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    tracing::info!(port = app.port(), "sessiond listening");
    app.run_until_signalled().await
}
