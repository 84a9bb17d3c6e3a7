//! The shim's settings: the operator's JSON file, and nothing else.
//!
//! The launch environment cannot carry settings. Mesos merges a task's own environment into its
//! executor's (`src/slave/slave.cpp` copies the task's `CommandInfo.environment` into the command
//! executor's), so whoever submits a task would otherwise choose the Docker endpoint, the image,
//! the mounts and the privileges of the launch. The file lives in the agent container
//! (`/etc/mesos-executor-shim/config.json`, baked or mounted), at that path and no other: no
//! variable names another (`EXECUTOR_SHIM_CONFIG` is the task's variable like any other). It is
//! read only if root owns it, every directory on the way to it and every link that leads there,
//! and nobody else can write there ([`ConfigFile::untrusted`]), the rule sudo and sshd apply to
//! their own configuration; it is found and read in [`file`], the one way for the relay and the
//! operator's commands alike. The operator's commands take `--config FILE`.
//!
//! Every key is one row of [`KEYS`]: its name, the default shown to operators, and its parser.
//! An unknown key is an error naming it: a misspelt setting is never silently ignored.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::logging::{LogFormat, LogLevel, LogSettings};

mod file;
mod repeated_keys;

pub(crate) use file::ConfigFile;

pub(crate) const DEFAULT_CONFIG_PATH: &str = "/etc/mesos-executor-shim/config.json";
/// Where Docker's clients and daemon put the socket unless told otherwise: the path is written
/// here once, for the default endpoint and for where a sibling finds the socket.
macro_rules! docker_default_socket {
    () => {
        "/var/run/docker.sock"
    };
}
pub(crate) const DOCKER_DEFAULT_SOCKET: &str = docker_default_socket!();
pub(crate) const DEFAULT_DOCKER_HOST: &str = concat!("unix://", docker_default_socket!());
pub(crate) const DEFAULT_FORKED_PID_TIMEOUT: Duration = Duration::from_secs(30);
pub(crate) const DEFAULT_FORKED_PID_GUARD: Duration = Duration::from_secs(10);
/// The settle time; the sibling's init uses it too when a shim passes none.
pub(crate) const DEFAULT_SHIM_DEATH_SETTLE: Duration = Duration::from_secs(2);
/// The bound on each sandbox output file; the sibling's init uses it too when a shim passes none.
pub(crate) const DEFAULT_SANDBOX_OUTPUT_MAX_BYTES: u64 = 10 * 1024 * 1024;
/// Reverse-DNS prefix of the shim's own labels; the operator's `labels` may not use it. Here,
/// below the sibling's labels that use it, so that the settings need nothing above them.
pub const LABEL_PREFIX: &str = "io.mesos-executor-shim.";

/// Where the Docker daemon listens: parsed once, here, for the engine, the placement and `doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerEndpoint {
    /// `unix:///path`: a socket, which siblings that need Docker are given.
    Unix(PathBuf),
    /// `tcp://host:port` (or `http://`): nothing to give a sibling but the address.
    Tcp(String),
}

impl DockerEndpoint {
    pub(crate) fn parse(text: &str) -> Result<DockerEndpoint, String> {
        if let Some(path) = text.strip_prefix("unix://") {
            return absolute_path(path)
                .map(DockerEndpoint::Unix)
                .map_err(|e| format!("{text:?}: {e}"));
        }
        let address = text
            .strip_prefix("tcp://")
            .or_else(|| text.strip_prefix("http://"))
            .map(|a| a.trim_end_matches('/'))
            .filter(|a| !a.is_empty() && !a.contains('/'));
        match address {
            // Docker's own default for a plain TCP endpoint without a port.
            Some(address) if !has_port(address) => {
                Ok(DockerEndpoint::Tcp(format!("{address}:2375")))
            }
            Some(address) => Ok(DockerEndpoint::Tcp(address.to_string())),
            None => Err(format!(
                "{text:?} is not unix:///path or tcp://host:port (TLS endpoints are not supported)"
            )),
        }
    }

    /// The socket, when the daemon is reached through one.
    pub(crate) fn socket(&self) -> Option<&Path> {
        match self {
            DockerEndpoint::Unix(path) => Some(path),
            DockerEndpoint::Tcp(_) => None,
        }
    }
}

/// Whether `address` (`host`, `host:port`, `[v6]`, `[v6]:port`) names a port.
fn has_port(address: &str) -> bool {
    match address.rsplit_once(']') {
        Some((_, rest)) => rest.starts_with(':'),
        None => address.contains(':'),
    }
}

impl fmt::Display for DockerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerEndpoint::Unix(path) => write!(f, "unix://{}", path.display()),
            DockerEndpoint::Tcp(address) => write!(f, "tcp://{address}"),
        }
    }
}

/// A bind mount `host:container[:ro]` added to every sibling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    pub host: PathBuf,
    pub container: PathBuf,
    pub read_only: bool,
}

impl BindMount {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (host, container, read_only) = match parts.as_slice() {
            [h, c] => (*h, *c, false),
            [h, c, "ro"] => (*h, *c, true),
            [h, c, "rw"] => (*h, *c, false),
            _ => return Err(format!("{text:?} is not host:container[:ro]")),
        };
        for p in [host, container] {
            absolute_path(p).map_err(|e| format!("{text:?}: {e}"))?;
        }
        Ok(BindMount {
            host: host.into(),
            container: container.into(),
            read_only,
        })
    }

    /// The `Binds` entry Docker takes.
    #[cfg(test)]
    pub(crate) fn to_bind(&self) -> String {
        format!(
            "{}:{}:{}",
            self.host.display(),
            self.container.display(),
            if self.read_only { "ro" } else { "rw" }
        )
    }
}

/// The resolved settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Image of the sibling; `None`: the image of the container the shim runs in.
    pub image: Option<String>,
    /// Path of the real `mesos-executor` in the sibling; `None`: the path the agent ran.
    pub executor: Option<PathBuf>,
    /// Path of the real `mesos-docker-executor` in the sibling; `None`: the path the agent ran.
    pub docker_executor: Option<PathBuf>,
    pub mounts: Vec<BindMount>,
    /// How long to wait for the agent's own forked.pid before writing it anyway.
    pub forked_pid_timeout: Duration,
    /// How long forked.pid is guarded after the agent's write has been replaced.
    pub forked_pid_guard: Duration,
    pub docker_host: DockerEndpoint,
    /// The agent's `--work_dir` as the shim sees it; when set, every run must lie under it.
    /// `None`: the work_dir is derived from the run's verified sandbox.
    pub work_dir: Option<PathBuf>,
    /// Host path of the agent's work_dir; `None`: found from the agent container's mounts.
    pub work_dir_host: Option<PathBuf>,
    pub cap_add: Vec<String>,
    /// Memory limit of the sibling, in bytes.
    pub memory: Option<i64>,
    /// CPU limit of the sibling, in CPUs.
    pub cpus: Option<f64>,
    pub labels: BTreeMap<String, String>,
    pub privileged: bool,
    /// Put the sibling under the Mesos container's cgroup when the shim runs in one.
    pub mesos_cgroups: bool,
    /// End the executor when its shim dies while the agent that forked the shim lives.
    pub end_with_shim: bool,
    /// How long the agent must outlive a dead shim for [`Settings::end_with_shim`] to apply.
    pub shim_death_settle: Duration,
    /// Give command executors' siblings the Docker socket too (docker executors always get it).
    pub command_executor_docker: bool,
    /// With a container logger other than the sandbox's: the bound on each sandbox output file
    /// the sibling's init writes once the shim is gone (see [`crate::output`]).
    pub sandbox_output_max_bytes: u64,
    /// `log_level` and `log_format`.
    pub log: LogSettings,
    /// Test builds only: the launch step at which the shim holds (see [`crate::failpoint`]).
    #[cfg(feature = "failpoints")]
    pub pause_at: Option<crate::failpoint::PausePoint>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            image: None,
            executor: None,
            docker_executor: None,
            mounts: Vec::new(),
            forked_pid_timeout: DEFAULT_FORKED_PID_TIMEOUT,
            forked_pid_guard: DEFAULT_FORKED_PID_GUARD,
            docker_host: DockerEndpoint::Unix(PathBuf::from(DOCKER_DEFAULT_SOCKET)),
            work_dir: None,
            work_dir_host: None,
            cap_add: Vec::new(),
            memory: None,
            cpus: None,
            labels: BTreeMap::new(),
            privileged: false,
            mesos_cgroups: true,
            end_with_shim: true,
            shim_death_settle: DEFAULT_SHIM_DEATH_SETTLE,
            command_executor_docker: false,
            sandbox_output_max_bytes: DEFAULT_SANDBOX_OUTPUT_MAX_BYTES,
            log: LogSettings::default(),
            #[cfg(feature = "failpoints")]
            pause_at: None,
        }
    }
}

/// One key of the file: its name, its default as docs/configuration.md shows it, and how its JSON value
/// becomes part of [`Settings`].
pub(crate) struct Key {
    pub name: &'static str,
    // Read by the test that ties these to `Settings::default()` and docs/configuration.md.
    #[cfg_attr(not(test), allow(dead_code))]
    pub default: &'static str,
    pub apply: fn(&mut Settings, &Value) -> Result<(), String>,
}

/// Every key the file takes.
pub(crate) const KEYS: &[Key] = &[
    Key {
        name: "image",
        default: "the agent container's own image",
        apply: |s, v| {
            s.image = Some(image_name(string(v)?)?);
            Ok(())
        },
    },
    Key {
        name: "executor",
        default: "the path the agent ran",
        apply: |s, v| {
            s.executor = Some(absolute_path(string(v)?)?);
            Ok(())
        },
    },
    Key {
        name: "docker_executor",
        default: "the path the agent ran",
        apply: |s, v| {
            s.docker_executor = Some(absolute_path(string(v)?)?);
            Ok(())
        },
    },
    Key {
        name: "mounts",
        default: "none",
        apply: |s, v| {
            s.mounts = strings(v)?
                .into_iter()
                .map(BindMount::parse)
                .collect::<Result<_, _>>()?;
            Ok(())
        },
    },
    Key {
        name: "forked_pid_timeout",
        default: "30secs",
        apply: |s, v| {
            s.forked_pid_timeout = parse_duration(string(v)?)?;
            Ok(())
        },
    },
    Key {
        name: "forked_pid_guard",
        default: "10secs",
        apply: |s, v| {
            s.forked_pid_guard = parse_duration(string(v)?)?;
            Ok(())
        },
    },
    Key {
        name: "docker_host",
        default: DEFAULT_DOCKER_HOST,
        apply: |s, v| {
            s.docker_host = DockerEndpoint::parse(string(v)?)?;
            Ok(())
        },
    },
    Key {
        name: "work_dir",
        default: "derived from the run's sandbox",
        apply: |s, v| {
            s.work_dir = Some(absolute_path(string(v)?)?);
            Ok(())
        },
    },
    Key {
        name: "work_dir_host",
        default: "found from the agent container's mounts",
        apply: |s, v| {
            s.work_dir_host = Some(absolute_path(string(v)?)?);
            Ok(())
        },
    },
    Key {
        name: "cap_add",
        default: "none",
        apply: |s, v| {
            s.cap_add = strings(v)?
                .into_iter()
                .map(capability)
                .collect::<Result<_, _>>()?;
            Ok(())
        },
    },
    Key {
        name: "memory",
        default: "no limit",
        apply: |s, v| {
            s.memory = Some(parse_bytes(&size(v)?)?);
            Ok(())
        },
    },
    Key {
        name: "cpus",
        default: "no limit",
        apply: |s, v| {
            s.cpus = Some(cpus(v)?);
            Ok(())
        },
    },
    Key {
        name: "labels",
        default: "none",
        apply: |s, v| {
            let Value::Object(map) = v else {
                return Err(format!("{v} is not an object of labels"));
            };
            s.labels = map
                .iter()
                .map(|(k, v)| Ok((label_key(k)?, string(v)?.to_string())))
                .collect::<Result<_, String>>()?;
            Ok(())
        },
    },
    Key {
        name: "privileged",
        default: "false",
        apply: |s, v| {
            s.privileged = boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "mesos_cgroups",
        default: "true",
        apply: |s, v| {
            s.mesos_cgroups = boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "end_with_shim",
        default: "true",
        apply: |s, v| {
            s.end_with_shim = boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "shim_death_settle",
        default: "2secs",
        apply: |s, v| {
            s.shim_death_settle = parse_duration(string(v)?)?;
            Ok(())
        },
    },
    Key {
        name: "command_executor_docker",
        default: "false",
        apply: |s, v| {
            s.command_executor_docker = boolean(v)?;
            Ok(())
        },
    },
    Key {
        name: "sandbox_output_max_bytes",
        default: "10MB",
        apply: |s, v| {
            s.sandbox_output_max_bytes = parse_size(&size(v)?)? as u64;
            Ok(())
        },
    },
    Key {
        name: "log_level",
        default: "info",
        apply: |s, v| {
            s.log.level = log_level(string(v)?)?;
            Ok(())
        },
    },
    Key {
        name: "log_format",
        default: "text",
        apply: |s, v| {
            let name = string(v)?;
            s.log.format = LogFormat::from_name(name)
                .ok_or_else(|| format!("{name:?} is neither text nor json"))?;
            Ok(())
        },
    },
];

/// Test builds only: the launch step at which the shim holds (see [`crate::failpoint`]).
#[cfg(feature = "failpoints")]
const FAILPOINT_KEYS: &[Key] = &[Key {
    name: "pause_at",
    default: "unset",
    apply: |s, v| {
        s.pause_at = Some(crate::failpoint::PausePoint::parse(string(v)?)?);
        Ok(())
    },
}];
/// A release build knows no failpoint key.
#[cfg(not(feature = "failpoints"))]
const FAILPOINT_KEYS: &[Key] = &[];

/// The keys of this build: [`KEYS`], plus the failpoint key in test builds.
fn keys() -> impl Iterator<Item = &'static Key> {
    KEYS.iter().chain(FAILPOINT_KEYS.iter())
}

/// A setting that cannot be used, named by the file and key it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "configuration {}: {}", self.key, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message: message.into(),
    }
}

/// Settings and the file they came from (`None`: no file, defaults).
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub settings: Settings,
    pub file: Option<ConfigFile>,
}

impl Loaded {
    fn defaults() -> Loaded {
        Loaded {
            settings: Settings::default(),
            file: None,
        }
    }
}

/// The relay's settings: the file at [`DEFAULT_CONFIG_PATH`] and no other (no variable of the
/// launch environment, which is the task's, names another), if the trust rule accepts it
/// ([`ConfigFile::untrusted`]). Nothing there means defaults.
pub(crate) fn load_for_relay(work_dir: &Path) -> Result<Loaded, ConfigError> {
    load_trusted(Path::new(DEFAULT_CONFIG_PATH), work_dir)
}

fn load_trusted(path: &Path, work_dir: &Path) -> Result<Loaded, ConfigError> {
    let Some(file) = file::find(path)? else {
        return Ok(Loaded::defaults());
    };
    if let Some(why) = file.untrusted(work_dir) {
        return Err(err(
            &path.display().to_string(),
            format!(
                "{why}; the shim reads only a configuration file that root owns and nobody else can \
                 change: fix its owner and mode"
            ),
        ));
    }
    Ok(Loaded {
        settings: file.read()?,
        file: Some(file),
    })
}

/// The operator commands' settings: `--config FILE` (which must exist) or the default file (if
/// any), with `DOCKER_HOST` of the operator's shell (`docker_host_env`) over the file's endpoint.
/// The file is found and read as the relay does; whether the relay would trust it is `doctor`'s
/// to say.
pub(crate) fn load_for_operator(
    config: Option<&Path>,
    docker_host_env: Option<&str>,
) -> Result<Loaded, ConfigError> {
    let path = config.unwrap_or(Path::new(DEFAULT_CONFIG_PATH));
    let mut loaded = match file::find(path)? {
        Some(file) => Loaded {
            settings: file.read()?,
            file: Some(file),
        },
        None if config.is_none() => Loaded::defaults(),
        None => {
            return Err(err(
                &path.display().to_string(),
                "no such file; point --config at the JSON file",
            ))
        }
    };
    if let Some(v) = docker_host_env.filter(|v| !v.is_empty()) {
        loaded.settings.docker_host =
            DockerEndpoint::parse(v).map_err(|e| err("DOCKER_HOST", e))?;
    }
    Ok(loaded)
}

/// Parses the file's text: a JSON object of known keys.
pub(crate) fn parse(text: &str) -> Result<Settings, ConfigError> {
    let (value, repeated) =
        repeated_keys::parse(text).map_err(|e| err("(file)", format!("not valid JSON: {e}")))?;
    if let Some(key) = repeated.first() {
        return Err(err(
            key,
            "appears more than once; JSON readers disagree on which one counts (serde_json takes \
             the last, others the first), so the shim takes neither: keep one",
        ));
    }
    let Value::Object(map) = value else {
        return Err(err("(file)", "not a JSON object of settings"));
    };
    let mut settings = Settings::default();
    for (name, value) in &map {
        let key = keys().find(|k| k.name == name).ok_or_else(|| {
            let known: Vec<&str> = keys().map(|k| k.name).collect();
            err(
                name,
                format!("unknown key; the shim knows {}", known.join(", ")),
            )
        })?;
        (key.apply)(&mut settings, value).map_err(|e| err(name, e))?;
    }
    Ok(settings)
}

/// Names in a launch environment that look like settings but are not: the task's own variables,
/// which reach the executor untouched. The relay says once which names it ignored (never their values).
pub(crate) fn ignored_launch_variables<'a>(names: impl Iterator<Item = &'a OsStr>) -> Vec<String> {
    let mut ignored: Vec<String> = names
        .filter_map(OsStr::to_str)
        .filter(|n| *n == "DOCKER_HOST" || n.starts_with("EXECUTOR_SHIM_"))
        .map(str::to_string)
        .collect();
    ignored.sort();
    ignored.dedup();
    ignored
}

fn string(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| format!("{v} is not a string"))
}

/// A size as a JSON number of bytes or a string with a unit (`"10MB"`).
fn size(v: &Value) -> Result<String, String> {
    match v {
        Value::Number(n) if n.is_u64() => Ok(n.to_string()),
        Value::String(s) => Ok(s.clone()),
        _ => Err(format!(
            "{v} is not a size: a number of bytes, or a string such as \"10MB\""
        )),
    }
}

fn boolean(v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("{v} is not true or false"))
}

fn strings(v: &Value) -> Result<Vec<&str>, String> {
    v.as_array()
        .ok_or_else(|| format!("{v} is not a list of strings"))?
        .iter()
        .map(string)
        .collect()
}

fn image_name(v: &str) -> Result<String, String> {
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{v:?} is not an image reference such as mesos/agent:1.11"
        ));
    }
    Ok(v.to_string())
}

fn absolute_path(v: &str) -> Result<PathBuf, String> {
    if !v.starts_with('/') || v.split('/').any(|c| c == "..") {
        return Err(format!("{v:?} must be an absolute path without '..'"));
    }
    Ok(PathBuf::from(v))
}

fn capability(v: &str) -> Result<String, String> {
    let name = v.trim().to_ascii_uppercase();
    let name = name.strip_prefix("CAP_").unwrap_or(&name).to_string();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        return Err(format!("{v:?} is not a capability name such as SYS_PTRACE"));
    }
    Ok(name)
}

fn cpus(v: &Value) -> Result<f64, String> {
    match v.as_f64() {
        Some(n) if n.is_finite() && n > 0.0 && n <= 4096.0 => Ok(n),
        _ => Err(format!("{v} is not a positive number of CPUs such as 0.5")),
    }
}

fn label_key(k: &str) -> Result<String, String> {
    if k.is_empty()
        || k.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '=')
    {
        return Err(format!("{k:?} is not a label key"));
    }
    if k.starts_with(LABEL_PREFIX) {
        return Err(format!(
            "{k:?}: keys under {LABEL_PREFIX} are the shim's own"
        ));
    }
    Ok(k.to_string())
}

fn log_level(v: &str) -> Result<LogLevel, String> {
    LogLevel::from_name(v).ok_or_else(|| format!("{v:?} is not one of {}", LogLevel::names()))
}

/// A stout duration as Mesos flags take it: `10secs`, `2.5mins`, `500ms`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 10secs or 500ms"))?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        // Mesos's spelling, and the short one operators type (`10s`, `5m`, `1h`, `1d`, `1w`).
        "secs" | "s" => 1.0,
        "mins" | "m" => 60.0,
        "hrs" | "h" => 3600.0,
        "days" | "d" => 86400.0,
        "weeks" | "w" => 604800.0,
        _ => {
            return Err(format!(
                "{text:?} has no unit of ns, us, ms, secs (s), mins (m), hrs (h), days (d) or weeks (w)"
            ))
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("{text:?} is out of range"))
}

/// A memory limit: a size (see [`parse_size`]) Docker accepts.
pub(crate) fn parse_bytes(text: &str) -> Result<i64, String> {
    let bytes = parse_size(text)?;
    // Docker refuses memory limits under 6 MiB; say so here, naming the key, instead.
    if bytes < 6 << 20 {
        return Err(format!(
            "{:?} is below Docker's minimum of 6MB",
            text.trim()
        ));
    }
    Ok(bytes)
}

/// A size in Mesos's form (`512MB`, `2GB`) or Docker's (`512m`, `2g`); a bare number is bytes.
pub(crate) fn parse_size(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: i64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size such as 512MB"))?;
    let scale: i64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        "t" | "tb" => 1 << 40,
        _ => return Err(format!("{text:?} has no unit of B, KB, MB, GB or TB")),
    };
    let bytes = value
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if bytes == 0 {
        return Err(format!("{text:?} is no size at all"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_the_file_is_empty() {
        let s = parse("{}").unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(s.executor, None, "the path the agent ran");
        assert_eq!(s.forked_pid_guard, Duration::from_secs(10));
    }

    #[test]
    fn every_key_parses() {
        let s = parse(
            r#"{"image": "agent:1", "executor": "/opt/mesos-executor", "docker_executor": "/opt/mesos-docker-executor", "mounts": ["/a:/b:ro", "/c:/d"],
                "forked_pid_timeout": "5secs", "forked_pid_guard": "1mins", "docker_host": "tcp://127.0.0.1:2375",
                "work_dir_host": "/srv/mesos", "cap_add": ["cap_sys_admin", "SYS_PTRACE"], "memory": "512MB",
                "cpus": 0.5, "labels": {"team": "infra"}, "privileged": true, "mesos_cgroups": false, "log_level": "DEBUG",
                "log_format": "json", "end_with_shim": false, "shim_death_settle": "5secs", "command_executor_docker": true}"#,
        )
        .unwrap();
        assert_eq!(s.image.as_deref(), Some("agent:1"));
        assert_eq!(s.executor, Some(PathBuf::from("/opt/mesos-executor")));
        assert_eq!(
            s.docker_executor,
            Some(PathBuf::from("/opt/mesos-docker-executor"))
        );
        assert_eq!(s.mounts[0].to_bind(), "/a:/b:ro");
        assert_eq!(s.mounts[1].to_bind(), "/c:/d:rw");
        assert_eq!(s.forked_pid_timeout, Duration::from_secs(5));
        assert_eq!(s.forked_pid_guard, Duration::from_secs(60));
        assert_eq!(s.docker_host, DockerEndpoint::Tcp("127.0.0.1:2375".into()));
        assert_eq!(s.work_dir_host, Some("/srv/mesos".into()));
        assert_eq!(s.cap_add, vec!["SYS_ADMIN", "SYS_PTRACE"]);
        assert_eq!(s.memory, Some(512 << 20));
        assert_eq!(s.cpus, Some(0.5));
        assert_eq!(s.labels.get("team").map(String::as_str), Some("infra"));
        assert!(s.privileged);
        assert!(!s.mesos_cgroups);
        assert_eq!(s.log.level, LogLevel::Debug);
        assert_eq!(s.log.format, LogFormat::Json);
        assert!(!s.end_with_shim);
        assert_eq!(s.shim_death_settle, Duration::from_secs(5));
        assert!(s.command_executor_docker);
    }

    #[test]
    fn docker_endpoints_are_parsed_once() {
        assert_eq!(
            DockerEndpoint::parse("unix:///run/docker.sock"),
            Ok(DockerEndpoint::Unix("/run/docker.sock".into()))
        );
        let tcp = DockerEndpoint::parse("http://127.0.0.1:2375/").unwrap();
        assert_eq!(tcp, DockerEndpoint::Tcp("127.0.0.1:2375".into()));
        assert_eq!(tcp.to_string(), "tcp://127.0.0.1:2375");
        assert_eq!(tcp.socket(), None);
        for bad in [
            "/var/run/docker.sock",
            "unix://run/x",
            "https://h:1",
            "tcp://",
            "tcp://h/x",
        ] {
            assert!(DockerEndpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = parse(r#"{"imag": "x"}"#).unwrap_err();
        assert_eq!(e.key, "imag");
        assert!(e.message.contains("the shim knows image, executor"), "{e}");
        for (key, value) in [
            ("forked_pid_timeout", r#""10""#),
            ("forked_pid_guard", r#""soon""#),
            ("executor", r#""bin/mesos-executor""#),
            ("mounts", r#"["/a"]"#),
            ("mounts", r#"["/a:rel"]"#),
            ("mounts", r#""/a:/b""#),
            ("image", r#""two words""#),
            ("docker_host", r#""/var/run/docker.sock""#),
            ("memory", r#""lots""#),
            ("memory", r#""1MB""#),
            ("cpus", "-1"),
            ("cpus", r#""1""#),
            ("cap_add", r#"["SYS ADMIN"]"#),
            ("labels", r#"{"io.mesos-executor-shim.agent-id": "x"}"#),
            ("labels", r#"["a=b"]"#),
            ("log_level", r#""loud""#),
            ("log_format", r#""xml""#),
            ("privileged", r#""yes""#),
            ("mesos_cgroups", "1"),
            ("end_with_shim", r#""no""#),
            ("shim_death_settle", "2"),
            ("command_executor_docker", "null"),
        ] {
            let e = parse(&format!("{{\"{key}\": {value}}}")).unwrap_err();
            assert_eq!(e.key, key, "{value}: {e}");
        }
        assert!(parse("[]").is_err());
        assert!(parse("{").unwrap_err().message.contains("not valid JSON"));
    }

    /// A release build knows no failpoint key; a test build knows it only in the file.
    #[test]
    fn the_failpoint_key_exists_only_in_test_builds() {
        let known = keys().any(|k| k.name == "pause_at");
        assert_eq!(known, cfg!(feature = "failpoints"));
    }

    #[test]
    fn launch_variables_that_look_like_settings_are_named_for_the_log() {
        let names = [
            "DOCKER_HOST",
            "EXECUTOR_SHIM_PRIVILEGED",
            "EXECUTOR_SHIM_CONFIG",
            "PATH",
            "EXECUTOR_SHIM_BOGUS",
            "DOCKER_HOST",
        ];
        assert_eq!(
            ignored_launch_variables(names.iter().map(OsStr::new)),
            vec![
                "DOCKER_HOST",
                "EXECUTOR_SHIM_BOGUS",
                "EXECUTOR_SHIM_CONFIG",
                "EXECUTOR_SHIM_PRIVILEGED"
            ]
        );
    }

    /// A key given twice is refused by its name, at the top level and inside an object: which
    /// one counts would depend on the JSON reader.
    #[test]
    fn a_repeated_key_is_refused_by_name() {
        let e = parse(r#"{"image": "a:1", "privileged": false, "image": "b:1"}"#).unwrap_err();
        assert_eq!(e.key, "image");
        assert!(e.message.contains("more than once"), "{e}");
        let e = parse(r#"{"labels": {"team": "a", "team": "b"}}"#).unwrap_err();
        assert_eq!(e.key, "labels.team", "{e}");
    }

    /// The docs' table of keys (docs/configuration.md) is the table here: every key, with its
    /// default, and no other.
    #[test]
    fn the_docs_list_every_key_with_its_default() {
        let page = include_str!("../docs/configuration.md");
        let table: Vec<(&str, &str)> = page
            .lines()
            .skip_while(|l| !l.starts_with("| key | default | meaning |"))
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                (cells[1].trim_matches('`'), cells[2].trim_matches('`'))
            })
            .collect();
        let keys: Vec<(&str, &str)> = KEYS.iter().map(|k| (k.name, k.default)).collect();
        assert_eq!(table, keys);
    }

    /// One source per default: every default the docs' table shows as a value (not prose
    /// such as "none") is, parsed as the file would give it, what `Settings::default()` holds.
    #[test]
    fn the_defaults_shown_are_the_defaults_held() {
        let mut checked = 0;
        for key in KEYS {
            let value = match key.default {
                "true" | "false" => Value::Bool(key.default == "true"),
                text => Value::String(text.into()),
            };
            let mut applied = Settings::default();
            if (key.apply)(&mut applied, &value).is_err() {
                // Prose, such as "the path the agent ran": no value to hold.
                continue;
            }
            assert_eq!(
                applied,
                Settings::default(),
                "{}: {}",
                key.name,
                key.default
            );
            checked += 1;
        }
        assert!(checked >= 9, "only {checked} defaults were values");
    }

    #[test]
    fn durations_and_sizes_in_mesos_form() {
        assert_eq!(parse_duration("10secs").unwrap(), Duration::from_secs(10));
        assert_eq!(
            parse_duration("2.5secs").unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1mins").unwrap(), Duration::from_secs(60));
        // The short spelling operators type, beside Mesos's.
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("secs").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1GB").unwrap(), 1 << 30);
        assert!(parse_bytes("99999999999999999999TB").is_err());
        // Sizes as JSON numbers of bytes, too.
        let numbers =
            parse(r#"{"sandbox_output_max_bytes": 1048576, "memory": 536870912}"#).unwrap();
        assert_eq!(numbers.sandbox_output_max_bytes, 1 << 20);
        assert_eq!(numbers.memory, Some(512 << 20));
        // Docker's default port where a tcp:// endpoint names none.
        for (given, address) in [
            ("tcp://docker", "docker:2375"),
            ("tcp://docker:2376", "docker:2376"),
            ("tcp://[::1]", "[::1]:2375"),
            ("tcp://[::1]:4243", "[::1]:4243"),
        ] {
            assert_eq!(
                DockerEndpoint::parse(given).unwrap(),
                DockerEndpoint::Tcp(address.into())
            );
        }
    }
}
