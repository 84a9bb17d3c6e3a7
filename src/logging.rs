//! The shim's own log: tracing to stderr, which the agent points at the sandbox's stderr.
//!
//! Its settings are the configuration file's `log_level` and `log_format`, and they reach every
//! process the binary becomes: the relay and the operator commands read them from the file; the
//! waiting mode and the sibling's init, which read no file (the init runs in the sibling, whose
//! environment is the task's), get them as arguments ([`LogSettings::to_args`]). The names of the
//! levels and formats, in the file and in those arguments, are spelled here alone.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::key_value::arg;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// Each level, its name, and what tracing lets through at it.
const LEVELS: [(LogLevel, &str, LevelFilter); 5] = [
    (LogLevel::Error, "error", LevelFilter::ERROR),
    (LogLevel::Warn, "warn", LevelFilter::WARN),
    (LogLevel::Info, "info", LevelFilter::INFO),
    (LogLevel::Debug, "debug", LevelFilter::DEBUG),
    (LogLevel::Trace, "trace", LevelFilter::TRACE),
];

impl LogLevel {
    pub(crate) fn name(self) -> &'static str {
        LEVELS.iter().find(|l| l.0 == self).expect("every level").1
    }

    /// A level by name, in any case (`DEBUG` is `debug`).
    pub(crate) fn from_name(name: &str) -> Option<LogLevel> {
        LEVELS
            .iter()
            .find(|l| l.1.eq_ignore_ascii_case(name))
            .map(|l| l.0)
    }

    fn filter(self) -> LevelFilter {
        LEVELS.iter().find(|l| l.0 == self).expect("every level").2
    }

    /// What the configuration file's error names as the choices.
    pub(crate) fn names() -> String {
        LEVELS.map(|l| l.1).join(", ")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One line of `key=value` text per event.
    Text,
    /// One JSON object per event.
    Json,
}

const FORMATS: [(LogFormat, &str); 2] = [(LogFormat::Text, "text"), (LogFormat::Json, "json")];

impl LogFormat {
    pub(crate) fn name(self) -> &'static str {
        FORMATS
            .iter()
            .find(|f| f.0 == self)
            .expect("every format")
            .1
    }

    pub(crate) fn from_name(name: &str) -> Option<LogFormat> {
        FORMATS.iter().find(|f| f.1 == name).map(|f| f.0)
    }
}

/// How the shim logs: what the configuration file's `log_level` and `log_format` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    pub level: LogLevel,
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> LogSettings {
        LogSettings {
            level: LogLevel::Info,
            format: LogFormat::Text,
        }
    }
}

/// The argument keys that carry the settings to the waiting mode and the sibling's init.
const LEVEL_KEY: &str = "log-level";
const FORMAT_KEY: &str = "log-format";

impl LogSettings {
    /// The settings as `key=value` arguments, read back by [`LogSettings::read_arg`].
    pub(crate) fn to_args(self) -> [String; 2] {
        [
            arg(LEVEL_KEY, self.level.name()),
            arg(FORMAT_KEY, self.format.name()),
        ]
    }

    /// Takes one argument `key=value` of [`LogSettings::to_args`]; false where the key is not
    /// one of them or the value is not understood (the setting is left as it was).
    pub(crate) fn read_arg(&mut self, key: &str, value: &str) -> bool {
        match key {
            LEVEL_KEY => LogLevel::from_name(value).map(|l| self.level = l).is_some(),
            FORMAT_KEY => LogFormat::from_name(value)
                .map(|f| self.format = f)
                .is_some(),
            _ => false,
        }
    }

    /// Whether `key` is one of the keys [`LogSettings::to_args`] writes.
    pub(crate) fn is_key(key: &str) -> bool {
        key == LEVEL_KEY || key == FORMAT_KEY
    }
}

/// Sets up the log: only the shim's own events, at the level set: the libraries' debug output
/// is not the operator's concern. Sandbox files are no terminal: no colour codes.
pub(crate) fn init(settings: LogSettings) {
    let filter = Targets::new().with_target("mesos_executor_shim", settings.level.filter());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let _ = match settings.format {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every level and format goes through the arguments and comes back the same; the file's
    /// spelling of a level in capitals is the same level; nothing else is taken.
    #[test]
    fn settings_survive_the_arguments_that_carry_them() {
        for (level, name, _) in LEVELS {
            for (format, _) in FORMATS {
                let sent = LogSettings { level, format };
                let mut read = LogSettings::default();
                for arg in sent.to_args() {
                    let (key, value) = crate::key_value::split(&arg).unwrap();
                    assert!(
                        LogSettings::is_key(key) && read.read_arg(key, value),
                        "{arg}"
                    );
                }
                assert_eq!(read, sent);
            }
            assert_eq!(LogLevel::from_name(&name.to_uppercase()), Some(level));
        }
        assert_eq!(LogFormat::from_name("json"), Some(LogFormat::Json));
        assert_eq!(LogFormat::from_name("text"), Some(LogFormat::Text));
        let mut settings = LogSettings::default();
        for (key, value) in [
            ("log-level", "loud"),
            ("log-level", "off"),
            ("log-format", "xml"),
            ("log-format", "JSON"),
            ("level", "debug"),
        ] {
            assert!(!settings.read_arg(key, value), "{key}={value}");
        }
        assert_eq!(settings, LogSettings::default());
    }
}
