//! The shim's own log: tracing to stderr, which the agent points at the sandbox's stderr.

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// Sandbox files are no terminal: no colour codes.
pub fn init(settings: &Settings) {
    let filter = EnvFilter::new(format!("mesos_executor_shim={}", settings.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let _ = match settings.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
