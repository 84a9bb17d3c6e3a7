//! The shim's settings: a JSON file in the agent container, overridden by `EXECUTOR_SHIM_*` variables.
//!
//! Both routes exist because agents differ: 0.2x agents pass their whole environment to executors,
//! 1.x agents pass only `MESOS_*`/`LIBPROCESS_*` and what the operator lists in
//! `--executor_environment_variables`, so on 1.x the file is the zero-effort route.
//! Anything unknown is an error naming the key: a misspelt setting must not be silently ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/mesos-executor-shim/config.json";
pub const DEFAULT_EXECUTOR: &str = "/usr/libexec/mesos/mesos-executor";
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";
pub const DEFAULT_FORKED_PID_TIMEOUT: Duration = Duration::from_secs(30);

/// Prefix of every variable the shim reads for itself (and never forwards to the executor).
pub const ENV_PREFIX: &str = "EXECUTOR_SHIM_";
pub const ENV_CONFIG: &str = "EXECUTOR_SHIM_CONFIG";
/// Set by the shim in the sibling's environment: a shim that finds it is the executor image's
/// `mesos-executor` and must hand over to the stock one instead of relaying again.
pub const ENV_SIBLING_MARKER: &str = "EXECUTOR_SHIM_SIBLING";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// A step of a launch at which `EXECUTOR_SHIM_PAUSE_AT` freezes the shim, so that fault tests can
/// kill the agent container exactly there. Set by the environment only, never by the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PausePoint {
    BeforeCreate,
    BeforeStart,
    BeforeCheckpoint,
    DuringCheckpoint,
    AfterCheckpoint,
}

impl PausePoint {
    pub const ALL: [(PausePoint, &'static str); 5] = [
        (PausePoint::BeforeCreate, "before-create"),
        (PausePoint::BeforeStart, "before-start"),
        (PausePoint::BeforeCheckpoint, "before-checkpoint"),
        (PausePoint::DuringCheckpoint, "during-checkpoint"),
        (PausePoint::AfterCheckpoint, "after-checkpoint"),
    ];

    pub fn name(self) -> &'static str {
        PausePoint::ALL
            .iter()
            .find(|(p, _)| *p == self)
            .map(|(_, n)| *n)
            .expect("every point is named")
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
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let (host, container, read_only) = match parts.as_slice() {
            [h, c] => (*h, *c, false),
            [h, c, "ro"] => (*h, *c, true),
            [h, c, "rw"] => (*h, *c, false),
            _ => return Err(format!("{text:?} is not host:container[:ro]")),
        };
        for p in [host, container] {
            if !p.starts_with('/') || p.split('/').any(|c| c == "..") {
                return Err(format!(
                    "{text:?}: {p:?} must be an absolute path without '..'"
                ));
            }
        }
        Ok(BindMount {
            host: host.into(),
            container: container.into(),
            read_only,
        })
    }

    /// The `Binds` entry Docker takes.
    pub fn to_bind(&self) -> String {
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
    /// Path of the real executor inside the sibling.
    pub executor: PathBuf,
    pub mounts: Vec<BindMount>,
    /// How long to wait for the agent's own forked.pid before writing it anyway.
    pub forked_pid_timeout: Duration,
    pub docker_host: String,
    /// Host path of the agent's work_dir; `None`: found from the agent container's mounts.
    pub work_dir_host: Option<PathBuf>,
    pub cap_add: Vec<String>,
    /// Memory limit of the sibling, in bytes.
    pub memory: Option<i64>,
    /// CPU limit of the sibling, in CPUs.
    pub cpus: Option<f64>,
    pub labels: BTreeMap<String, String>,
    pub privileged: bool,
    pub log_level: String,
    pub log_format: LogFormat,
    pub pause_at: Option<PausePoint>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            image: None,
            executor: DEFAULT_EXECUTOR.into(),
            mounts: Vec::new(),
            forked_pid_timeout: DEFAULT_FORKED_PID_TIMEOUT,
            docker_host: DEFAULT_DOCKER_HOST.into(),
            work_dir_host: None,
            cap_add: Vec::new(),
            memory: None,
            cpus: None,
            labels: BTreeMap::new(),
            privileged: false,
            log_level: "info".into(),
            log_format: LogFormat::Text,
            pause_at: None,
        }
    }
}

/// The file as written by the operator; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    image: Option<String>,
    executor: Option<String>,
    mounts: Option<Vec<String>>,
    forked_pid_timeout: Option<String>,
    docker_host: Option<String>,
    work_dir_host: Option<String>,
    cap_add: Option<Vec<String>>,
    memory: Option<String>,
    cpus: Option<f64>,
    labels: Option<BTreeMap<String, String>>,
    privileged: Option<bool>,
    log_level: Option<String>,
    log_format: Option<LogFormat>,
}

/// A setting that cannot be used, named by the key or variable it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
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

/// The variables the shim reads, with the file key each overrides (`None`: no file key).
const ENV_KEYS: &[(&str, Option<&str>)] = &[
    ("EXECUTOR_SHIM_CONFIG", None),
    ("EXECUTOR_SHIM_SIBLING", None),
    ("EXECUTOR_SHIM_IMAGE", Some("image")),
    ("EXECUTOR_SHIM_EXECUTOR", Some("executor")),
    ("EXECUTOR_SHIM_MOUNTS", Some("mounts")),
    (
        "EXECUTOR_SHIM_FORKED_PID_TIMEOUT",
        Some("forked_pid_timeout"),
    ),
    ("DOCKER_HOST", Some("docker_host")),
    ("EXECUTOR_SHIM_WORK_DIR_HOST", Some("work_dir_host")),
    ("EXECUTOR_SHIM_CAP_ADD", Some("cap_add")),
    ("EXECUTOR_SHIM_MEMORY", Some("memory")),
    ("EXECUTOR_SHIM_CPUS", Some("cpus")),
    ("EXECUTOR_SHIM_LABELS", Some("labels")),
    ("EXECUTOR_SHIM_PRIVILEGED", Some("privileged")),
    ("EXECUTOR_SHIM_LOG_LEVEL", Some("log_level")),
    ("EXECUTOR_SHIM_LOG_FORMAT", Some("log_format")),
    ("EXECUTOR_SHIM_PAUSE_AT", None),
];

/// The variables the shim recognises: the environment forwarded to the executor drops these.
pub fn is_shim_variable(name: &str) -> bool {
    name.starts_with(ENV_PREFIX)
}

impl Settings {
    /// Loads the file (`EXECUTOR_SHIM_CONFIG` or the default path; a missing default file means
    /// defaults, a missing named file is an error) and applies the environment over it.
    pub fn load(
        env: &BTreeMap<String, String>,
    ) -> Result<(Settings, Option<PathBuf>), ConfigError> {
        let (path, required) = match env.get(ENV_CONFIG) {
            Some(p) if !p.is_empty() => (PathBuf::from(p), true),
            _ => (PathBuf::from(DEFAULT_CONFIG_PATH), false),
        };
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => Some(parse_file(&path, &text)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => None,
            Err(e) => {
                return Err(err(
                    ENV_CONFIG,
                    format!("cannot read {}: {e}; point EXECUTOR_SHIM_CONFIG at a readable JSON file or unset it", path.display()),
                ))
            }
        };
        let used = file.as_ref().map(|_| path);
        let settings = Settings::resolve(file.unwrap_or_default(), env)?;
        Ok((settings, used))
    }

    fn resolve(file: ConfigFile, env: &BTreeMap<String, String>) -> Result<Settings, ConfigError> {
        for name in env.keys().filter(|k| is_shim_variable(k)) {
            if !ENV_KEYS.iter().any(|(known, _)| known == name) {
                let known: Vec<&str> = ENV_KEYS
                    .iter()
                    .map(|(k, _)| *k)
                    .filter(|k| is_shim_variable(k))
                    .collect();
                return Err(err(
                    name,
                    format!("unknown variable; the shim knows {}", known.join(", ")),
                ));
            }
        }
        let mut s = Settings::default();

        // Each setting: the file's value, then the variable's, each parsed and checked.
        if let Some(v) = file.image {
            s.image = Some(image_name("image", &v)?);
        }
        if let Some(v) = env.get("EXECUTOR_SHIM_IMAGE") {
            s.image = Some(image_name("EXECUTOR_SHIM_IMAGE", v)?);
        }
        if let Some(v) = file.executor {
            s.executor = absolute_path("executor", &v)?;
        }
        if let Some(v) = env.get("EXECUTOR_SHIM_EXECUTOR") {
            s.executor = absolute_path("EXECUTOR_SHIM_EXECUTOR", v)?;
        }
        if let Some(v) = file.mounts {
            s.mounts = v
                .iter()
                .map(|m| BindMount::parse(m).map_err(|e| err("mounts", e)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = env.get("EXECUTOR_SHIM_MOUNTS") {
            s.mounts = split_list(v)
                .map(|m| BindMount::parse(m).map_err(|e| err("EXECUTOR_SHIM_MOUNTS", e)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = file.forked_pid_timeout {
            s.forked_pid_timeout = parse_duration(&v).map_err(|e| err("forked_pid_timeout", e))?;
        }
        if let Some(v) = env.get("EXECUTOR_SHIM_FORKED_PID_TIMEOUT") {
            s.forked_pid_timeout =
                parse_duration(v).map_err(|e| err("EXECUTOR_SHIM_FORKED_PID_TIMEOUT", e))?;
        }
        if let Some(v) = file.docker_host {
            s.docker_host = docker_host("docker_host", &v)?;
        }
        if let Some(v) = env.get("DOCKER_HOST").filter(|v| !v.is_empty()) {
            s.docker_host = docker_host("DOCKER_HOST", v)?;
        }
        if let Some(v) = file.work_dir_host {
            s.work_dir_host = Some(absolute_path("work_dir_host", &v)?);
        }
        if let Some(v) = env.get("EXECUTOR_SHIM_WORK_DIR_HOST") {
            s.work_dir_host = Some(absolute_path("EXECUTOR_SHIM_WORK_DIR_HOST", v)?);
        }
        if let Some(v) = file.cap_add {
            s.cap_add = v
                .iter()
                .map(|c| capability("cap_add", c))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = env.get("EXECUTOR_SHIM_CAP_ADD") {
            s.cap_add = split_list(v)
                .map(|c| capability("EXECUTOR_SHIM_CAP_ADD", c))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = file.memory {
            s.memory = Some(parse_bytes(&v).map_err(|e| err("memory", e))?);
        }
        if let Some(v) = env.get("EXECUTOR_SHIM_MEMORY") {
            s.memory = Some(parse_bytes(v).map_err(|e| err("EXECUTOR_SHIM_MEMORY", e))?);
        }
        if let Some(v) = file.cpus {
            s.cpus = Some(cpus("cpus", v)?);
        }
        if let Some(v) = env.get("EXECUTOR_SHIM_CPUS") {
            let n = v.parse::<f64>().map_err(|_| {
                err(
                    "EXECUTOR_SHIM_CPUS",
                    format!("{v:?} is not a number of CPUs such as 0.5"),
                )
            })?;
            s.cpus = Some(cpus("EXECUTOR_SHIM_CPUS", n)?);
        }
        if let Some(v) = file.labels {
            s.labels = v
                .into_iter()
                .map(|(k, v)| label_key("labels", &k).map(|k| (k, v)))
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = env.get("EXECUTOR_SHIM_LABELS") {
            s.labels = split_list(v)
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) => {
                        label_key("EXECUTOR_SHIM_LABELS", k).map(|k| (k, v.to_string()))
                    }
                    None => Err(err(
                        "EXECUTOR_SHIM_LABELS",
                        format!("{pair:?} is not key=value"),
                    )),
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = file.privileged {
            s.privileged = v;
        }
        if let Some(v) = env.get("EXECUTOR_SHIM_PRIVILEGED") {
            s.privileged = match v.as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => {
                    return Err(err(
                        "EXECUTOR_SHIM_PRIVILEGED",
                        format!("{v:?} is not true or false"),
                    ))
                }
            };
        }
        if let Some(v) = file.log_level {
            s.log_level = log_level("log_level", &v)?;
        }
        if let Some(v) = env.get("EXECUTOR_SHIM_LOG_LEVEL") {
            s.log_level = log_level("EXECUTOR_SHIM_LOG_LEVEL", v)?;
        }
        if let Some(v) = file.log_format {
            s.log_format = v;
        }
        if let Some(v) = env.get("EXECUTOR_SHIM_LOG_FORMAT") {
            s.log_format = match v.as_str() {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => {
                    return Err(err(
                        "EXECUTOR_SHIM_LOG_FORMAT",
                        format!("{v:?} is neither text nor json"),
                    ))
                }
            };
        }
        if let Some(v) = env.get("EXECUTOR_SHIM_PAUSE_AT") {
            let names: Vec<&str> = PausePoint::ALL.iter().map(|(_, n)| *n).collect();
            s.pause_at = Some(
                PausePoint::ALL
                    .iter()
                    .find(|(_, n)| n == v)
                    .map(|(p, _)| *p)
                    .ok_or_else(|| {
                        err(
                            "EXECUTOR_SHIM_PAUSE_AT",
                            format!("{v:?} is not one of {}", names.join(", ")),
                        )
                    })?,
            );
        }
        Ok(s)
    }
}

fn parse_file(path: &Path, text: &str) -> Result<ConfigFile, ConfigError> {
    serde_json::from_str(text).map_err(|e| {
        // serde names the offending field itself ("unknown field `imag`, expected one of ...").
        err(
            &path.display().to_string(),
            format!("{e}; fix the file or point EXECUTOR_SHIM_CONFIG elsewhere"),
        )
    })
}

fn split_list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn image_name(key: &str, v: &str) -> Result<String, ConfigError> {
    if v.is_empty() || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(err(
            key,
            format!("{v:?} is not an image reference such as mesos/agent:1.11"),
        ));
    }
    Ok(v.to_string())
}

fn absolute_path(key: &str, v: &str) -> Result<PathBuf, ConfigError> {
    if !v.starts_with('/') || v.split('/').any(|c| c == "..") {
        return Err(err(
            key,
            format!("{v:?} must be an absolute path without '..'"),
        ));
    }
    Ok(PathBuf::from(v))
}

fn docker_host(key: &str, v: &str) -> Result<String, ConfigError> {
    let ok = ["unix:///", "tcp://", "http://"]
        .iter()
        .any(|p| v.starts_with(p));
    if !ok {
        return Err(err(
            key,
            format!(
                "{v:?} is not unix:///path or tcp://host:port (TLS endpoints are not supported)"
            ),
        ));
    }
    Ok(v.to_string())
}

fn capability(key: &str, v: &str) -> Result<String, ConfigError> {
    let name = v.trim().to_ascii_uppercase();
    let name = name.strip_prefix("CAP_").unwrap_or(&name).to_string();
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
        return Err(err(
            key,
            format!("{v:?} is not a capability name such as SYS_PTRACE"),
        ));
    }
    Ok(name)
}

fn cpus(key: &str, v: f64) -> Result<f64, ConfigError> {
    if !(v.is_finite() && v > 0.0 && v <= 4096.0) {
        return Err(err(key, format!("{v} is not a positive number of CPUs")));
    }
    Ok(v)
}

fn label_key(key: &str, k: &str) -> Result<String, ConfigError> {
    if k.is_empty()
        || k.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '=')
    {
        return Err(err(key, format!("{k:?} is not a label key")));
    }
    if k.starts_with(crate::sibling::spec::LABEL_PREFIX) {
        return Err(err(
            key,
            format!(
                "{k:?}: keys under {} are the shim's own",
                crate::sibling::spec::LABEL_PREFIX
            ),
        ));
    }
    Ok(k.to_string())
}

fn log_level(key: &str, v: &str) -> Result<String, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        l @ ("error" | "warn" | "info" | "debug" | "trace") => Ok(l.to_string()),
        _ => Err(err(
            key,
            format!("{v:?} is not one of error, warn, info, debug, trace"),
        )),
    }
}

/// A stout duration as Mesos flags take it: `10secs`, `2.5mins`, `500ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
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
        "secs" => 1.0,
        "mins" => 60.0,
        "hrs" => 3600.0,
        "days" => 86400.0,
        "weeks" => 604800.0,
        _ => {
            return Err(format!(
                "{text:?} has no unit of ns, us, ms, secs, mins, hrs, days or weeks"
            ))
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("{text:?} is out of range"))
}

/// A size in Mesos's form (`512MB`, `2GB`) or Docker's (`512m`, `2g`); a bare number is bytes.
pub fn parse_bytes(text: &str) -> Result<i64, String> {
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
    // Docker refuses memory limits under 6 MiB; say so here, naming the key, instead.
    if bytes < 6 << 20 {
        return Err(format!("{text:?} is below Docker's minimum of 6MB"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn file(json: &str) -> ConfigFile {
        parse_file(Path::new("config.json"), json).unwrap()
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let s = Settings::resolve(ConfigFile::default(), &env(&[])).unwrap();
        assert_eq!(s, Settings::default());
        assert_eq!(
            s.executor,
            PathBuf::from("/usr/libexec/mesos/mesos-executor")
        );
    }

    #[test]
    fn the_environment_wins_over_the_file() {
        let f = file(
            r#"{"image": "from-file:1", "forked_pid_timeout": "5secs", "mounts": ["/a:/b:ro"]}"#,
        );
        let s = Settings::resolve(f, &env(&[("EXECUTOR_SHIM_IMAGE", "from-env:2")])).unwrap();
        assert_eq!(s.image.as_deref(), Some("from-env:2"));
        assert_eq!(s.forked_pid_timeout, Duration::from_secs(5));
        assert_eq!(
            s.mounts,
            vec![BindMount {
                host: "/a".into(),
                container: "/b".into(),
                read_only: true
            }]
        );
        let s = Settings::resolve(
            file(r#"{"mounts": ["/a:/b"]}"#),
            &env(&[
                ("EXECUTOR_SHIM_MOUNTS", "/c:/d, /e:/f:ro"),
                ("DOCKER_HOST", "tcp://127.0.0.1:2375"),
            ]),
        )
        .unwrap();
        assert_eq!(s.mounts.len(), 2);
        assert_eq!(s.mounts[1].to_bind(), "/e:/f:ro");
        assert_eq!(s.docker_host, "tcp://127.0.0.1:2375");
    }

    #[test]
    fn unknown_keys_and_variables_are_named() {
        let e = parse_file(Path::new("/etc/x.json"), r#"{"imag": "x"}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `imag`"), "{e}");
        let e = Settings::resolve(ConfigFile::default(), &env(&[("EXECUTOR_SHIM_IMGE", "x")]))
            .unwrap_err();
        assert_eq!(e.key, "EXECUTOR_SHIM_IMGE");
    }

    #[test]
    fn bad_values_are_named_by_their_key() {
        for (k, v) in [
            ("EXECUTOR_SHIM_FORKED_PID_TIMEOUT", "10"),
            ("EXECUTOR_SHIM_EXECUTOR", "bin/mesos-executor"),
            ("EXECUTOR_SHIM_MOUNTS", "/a"),
            ("EXECUTOR_SHIM_MOUNTS", "/a:rel"),
            ("EXECUTOR_SHIM_IMAGE", "two words"),
            ("DOCKER_HOST", "/var/run/docker.sock"),
            ("EXECUTOR_SHIM_MEMORY", "lots"),
            ("EXECUTOR_SHIM_MEMORY", "1MB"),
            ("EXECUTOR_SHIM_CPUS", "-1"),
            ("EXECUTOR_SHIM_CAP_ADD", "SYS ADMIN"),
            ("EXECUTOR_SHIM_LABELS", "novalue"),
            ("EXECUTOR_SHIM_LABELS", "io.mesos-executor-shim.agent-id=x"),
            ("EXECUTOR_SHIM_LOG_LEVEL", "loud"),
            ("EXECUTOR_SHIM_LOG_FORMAT", "xml"),
            ("EXECUTOR_SHIM_PRIVILEGED", "yes"),
            ("EXECUTOR_SHIM_PAUSE_AT", "somewhere"),
        ] {
            let e = Settings::resolve(ConfigFile::default(), &env(&[(k, v)])).unwrap_err();
            assert_eq!(e.key, k, "{v}");
        }
        let e =
            Settings::resolve(file(r#"{"forked_pid_timeout": "soon"}"#), &env(&[])).unwrap_err();
        assert_eq!(e.key, "forked_pid_timeout");
    }

    #[test]
    fn the_tunables_parse() {
        let s = Settings::resolve(
            file(
                r#"{"cap_add": ["cap_sys_admin", "SYS_PTRACE"], "memory": "512MB", "cpus": 0.5,
                     "labels": {"team": "infra"}, "log_format": "json", "log_level": "DEBUG"}"#,
            ),
            &env(&[]),
        )
        .unwrap();
        assert_eq!(s.cap_add, vec!["SYS_ADMIN", "SYS_PTRACE"]);
        assert_eq!(s.memory, Some(512 << 20));
        assert_eq!(s.cpus, Some(0.5));
        assert_eq!(s.labels.get("team").map(String::as_str), Some("infra"));
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.log_level, "debug");
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
        assert!(parse_duration("10s").is_err());
        assert!(parse_duration("secs").is_err());
        assert!(parse_duration("").is_err());
        assert_eq!(parse_bytes("512m").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("1GB").unwrap(), 1 << 30);
        assert!(parse_bytes("99999999999999999999TB").is_err());
    }
}
