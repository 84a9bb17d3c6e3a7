//! The shim's own log: tracing to stderr, which the agent points at the sandbox's stderr.

use std::str::FromStr;

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How the log's lines are written: the one mapping between the format and its name, which the
/// settings file and the hand-over to the waiting mode both spell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub(crate) fn name(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<LogFormat> {
        [LogFormat::Text, LogFormat::Json]
            .into_iter()
            .find(|f| f.name() == name)
    }
}

/// Only the shim's own events, at `level`: the libraries' debug output is not the operator's
/// concern. Sandbox files are no terminal: no colour codes.
pub(crate) fn init(level: &str, format: LogFormat) {
    let level = LevelFilter::from_str(level).unwrap_or(LevelFilter::INFO);
    let filter = Targets::new().with_target("mesos_executor_shim", level);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let _ = match format {
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
