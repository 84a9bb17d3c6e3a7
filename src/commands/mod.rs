//! The subcommands, one file each: `run` (the relay), and the operator's `doctor`, `ps`, `gc`.

pub mod doctor;
pub mod gc;
pub mod ps;
pub mod run;

use std::path::Path;

use crate::config::{self, Loaded, Settings};
use crate::error::{fail, Classify, Failure, ShimError};
use crate::sibling::engine::Engine;

/// How long an operator command waits for the daemon.
const OPERATOR_DOCKER_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// The operator's settings: `--config FILE` or the default file, and `DOCKER_HOST` of the
/// operator's shell. Logging at `warn`: the commands' output is their report.
pub fn operator_settings(config: Option<&Path>) -> Result<Loaded, ShimError> {
    let docker_host = std::env::var("DOCKER_HOST").ok();
    let loaded =
        config::load_for_operator(config, docker_host.as_deref()).classify(Failure::Config)?;
    crate::logging::init(&Settings {
        log_level: "warn".into(),
        ..loaded.settings.clone()
    });
    Ok(loaded)
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
