//! The shim's own log: tracing to stderr, which the agent points at the sandbox's stderr.

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, Settings};

/// Only the shim's own events, at the configured level: the libraries' debug output is not the
/// operator's concern. Sandbox files are no terminal: no colour codes.
pub fn init(settings: &Settings) {
    let level = LevelFilter::from_str(&settings.log_level).unwrap_or(LevelFilter::INFO);
    let filter = Targets::new().with_target("mesos_executor_shim", level);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let _ = match settings.log_format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(layer)
            .with(filter)
            .try_init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.json())
            .with(filter)
            .try_init(),
    };
}
