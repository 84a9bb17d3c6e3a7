//! The subcommands, one file each: `run` (the relay), and the operator's `doctor`, `ps`, `gc`.

pub mod doctor;
pub mod gc;
pub mod ps;
pub mod run;

use crate::config::Settings;
use crate::error::{fail, Failure, ShimError};
use crate::relay;
use crate::sibling::engine::Engine;

/// How long an operator command waits for the daemon.
const OPERATOR_DOCKER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Settings from the agent container's file and environment, as the relay reads them.
pub fn operator_settings() -> Result<Settings, ShimError> {
    let env: Vec<_> = std::env::vars_os().collect();
    let (settings, _) = Settings::load(&relay::env_map(&env)).map_err(|e| ShimError {
        failure: Failure::Config,
        error: e.into(),
    })?;
    crate::logging::init(&Settings {
        log_level: "warn".into(),
        ..settings.clone()
    });
    Ok(settings)
}

pub fn runtime() -> Result<tokio::runtime::Runtime, ShimError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            fail(
                Failure::Software,
                format!("cannot start the async runtime: {e}"),
            )
        })
}

pub async fn connect(settings: &Settings) -> Result<Engine, ShimError> {
    Engine::connect(&settings.docker_host, OPERATOR_DOCKER_PATIENCE).await
}

/// Prints a value as one line of JSON.
pub fn print_json<T: serde::Serialize>(value: &T) {
    println!("{}", serde_json::to_string(value).expect("serialisable"));
}
