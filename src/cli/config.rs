//! `sessiond config check`: the effective configuration, and whether it may run.

use clap::Subcommand;

use crate::config::Settings;

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration (secrets masked); exit 1 with the reasons if it must
    /// not run (judged as production when SESSIOND_ENV=production).
    #[command(after_long_help = "Example:\n  SESSIOND_ENV=production sessiond config check")]
    Check,
}

/// 0 when the configuration may run, 1 with the reasons if not, 2 if it cannot even be read.
/// Runs before (and instead of) the usual refusal to load a configuration that must not run.
pub fn check_config() -> i32 {
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
