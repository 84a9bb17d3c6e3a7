//! The executors the agent forks, known by the name it runs them under: `mesos-executor` (the
//! command executor, Mesos containerizer) and `mesos-docker-executor` (the docker containerizer's).
//! The shim answers to both and forwards argv verbatim; it only reads a flag where it needs one
//! to place the sibling.
//!
//! Where the real executor is, is decided here once, for the relay, the sibling init and
//! `doctor`: the path the agent ran, and in a baked image the stock executor kept beside it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Where the agent finds its executors unless `--launcher_dir` says otherwise.
pub(crate) const DEFAULT_LAUNCHER_DIR: &str = "/usr/libexec/mesos";

/// What a baked image keeps the stock executor as, beside the shim installed in its place.
pub(crate) const STOCK_SUFFIX: &str = ".real";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorKind {
    /// `mesos-executor`.
    Command,
    /// `mesos-docker-executor`: runs the task container `mesos-<CID>` itself through the socket.
    Docker,
}

impl ExecutorKind {
    pub(crate) const ALL: [ExecutorKind; 2] = [ExecutorKind::Command, ExecutorKind::Docker];

    pub(crate) fn name(self) -> &'static str {
        match self {
            ExecutorKind::Command => "mesos-executor",
            ExecutorKind::Docker => "mesos-docker-executor",
        }
    }

    /// The executor the binary was invoked as, by the last component of `argv[0]`.
    pub fn from_argv0(argv0: &OsStr) -> Option<Self> {
        let name = Path::new(argv0).file_name()?;
        ExecutorKind::ALL.into_iter().find(|k| name == k.name())
    }

    /// The path the agent ran: what the kernel was given (`exec_path`, see
    /// [`crate::proc::exec_path`]) when it is this executor's name, under any launcher_dir. Never
    /// `argv[0]`: the agent passes the bare name there. Else (the `run` subcommand) the default
    /// launcher_dir's.
    pub(crate) fn path_the_agent_ran(self, exec_path: Option<&Path>) -> PathBuf {
        match exec_path {
            Some(path)
                if path.is_absolute() && path.file_name() == Some(OsStr::new(self.name())) =>
            {
                path.to_path_buf()
            }
            _ => self.in_launcher_dir(Path::new(DEFAULT_LAUNCHER_DIR)),
        }
    }

    pub(crate) fn in_launcher_dir(self, launcher_dir: &Path) -> PathBuf {
        launcher_dir.join(self.name())
    }
}

/// The stock executor that a shim installed at `path` (a baked image) hands over to.
pub(crate) fn stock_beside(path: &Path) -> PathBuf {
    let mut stock = path.as_os_str().to_os_string();
    stock.push(STOCK_SUFFIX);
    PathBuf::from(stock)
}

/// What to run for the executor at `path` in a sibling: `path` itself, or, where `path` is this
/// very binary (the shim baked into the image), the stock executor kept beside it. `is_this_binary`
/// tells whether a path is the running binary; an error when the stock executor would be the
/// shim again.
pub(crate) fn executor_to_run(
    path: &Path,
    is_this_binary: impl Fn(&Path) -> bool,
) -> Result<PathBuf, String> {
    if !is_this_binary(path) {
        return Ok(path.to_path_buf());
    }
    let stock = stock_beside(path);
    if path.to_string_lossy().ends_with(STOCK_SUFFIX) || is_this_binary(&stock) {
        return Err(format!(
            "{} is the shim too; put the stock executor there",
            stock.display()
        ));
    }
    Ok(stock)
}

/// The value of `--name=value` among the executor's arguments: the last occurrence, as Mesos's
/// flag parser takes it.
pub(crate) fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    args.iter().rev().find_map(|a| a.strip_prefix(&prefix))
}

/// `args` with every `--name=...` giving `value` instead (Mesos's parser takes the last), or with
/// `--name=value` added where none does.
pub(crate) fn with_flag(args: &[String], name: &str, value: &str) -> Vec<String> {
    let prefix = format!("--{name}=");
    let given = format!("{prefix}{value}");
    let mut out: Vec<String> = args
        .iter()
        .map(|a| match a.starts_with(&prefix) {
            true => given.clone(),
            false => a.clone(),
        })
        .collect();
    if !args.iter().any(|a| a.starts_with(&prefix)) {
        out.push(given);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_answers_to_both_executor_names_and_no_other() {
        let kind = |s: &str| ExecutorKind::from_argv0(OsStr::new(s));
        assert_eq!(
            kind("/usr/libexec/mesos/mesos-executor"),
            Some(ExecutorKind::Command)
        );
        assert_eq!(
            kind("/usr/local/libexec/mesos/mesos-docker-executor"),
            Some(ExecutorKind::Docker)
        );
        assert_eq!(kind("mesos-docker-executor"), Some(ExecutorKind::Docker));
        assert_eq!(kind("/usr/local/bin/mesos-executor-shim"), None);
        assert_eq!(kind("mesos-executor.real"), None);
    }

    #[test]
    fn the_real_executor_is_where_the_kernel_says_the_agent_ran_it() {
        let docker = ExecutorKind::Docker;
        let ran = Path::new("/usr/local/libexec/mesos/mesos-docker-executor");
        assert_eq!(docker.path_the_agent_ran(Some(ran)), ran);
        assert_eq!(
            docker.path_the_agent_ran(Some(Path::new("/usr/local/bin/mesos-executor-shim"))),
            PathBuf::from("/usr/libexec/mesos/mesos-docker-executor"),
            "the `run` subcommand: the default launcher_dir"
        );
        assert_eq!(
            ExecutorKind::Command.path_the_agent_ran(None),
            PathBuf::from("/usr/libexec/mesos/mesos-executor")
        );
    }

    #[test]
    fn a_baked_shim_hands_over_to_the_stock_executor_beside_it() {
        let shim = Path::new("/usr/libexec/mesos/mesos-executor");
        let is_shim = |p: &Path| p == shim;
        assert_eq!(
            executor_to_run(Path::new("/opt/stock/mesos-executor"), is_shim),
            Ok(PathBuf::from("/opt/stock/mesos-executor")),
            "a stock executor runs as it is"
        );
        assert_eq!(
            executor_to_run(shim, is_shim),
            Ok(PathBuf::from("/usr/libexec/mesos/mesos-executor.real"))
        );
        let everything_is_the_shim = |_: &Path| true;
        let e = executor_to_run(shim, everything_is_the_shim).unwrap_err();
        assert!(e.contains("mesos-executor.real is the shim too"), "{e}");
    }

    #[test]
    fn a_flag_is_read_where_mesos_reads_it_never_changed() {
        let args: Vec<String> = [
            "--container=mesos-C",
            "--docker_socket=/run/first.sock",
            "--docker=docker",
            "--docker_socket=/run/docker.sock",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            flag(&args, "docker_socket"),
            Some("/run/docker.sock"),
            "the last occurrence wins, as in Mesos's flag parser"
        );
        assert_eq!(flag(&args, "docker"), Some("docker"));
        assert_eq!(flag(&args, "sandbox_directory"), None);
    }

    #[test]
    fn a_flag_is_given_anew_wherever_the_agent_gave_it() {
        let args: Vec<String> = [
            "--container=mesos-1",
            "--docker=docker",
            "--docker=/usr/bin/docker",
        ]
        .map(String::from)
        .to_vec();
        let changed = with_flag(&args, "docker", "/run/x/init");
        assert_eq!(
            changed,
            [
                "--container=mesos-1",
                "--docker=/run/x/init",
                "--docker=/run/x/init"
            ]
        );
        assert_eq!(flag(&changed, "docker"), Some("/run/x/init"));
        let added = with_flag(&args[..1], "docker_socket", "/run/d.sock");
        assert_eq!(
            added,
            ["--container=mesos-1", "--docker_socket=/run/d.sock"]
        );
        assert_eq!(
            with_flag(&args, "docker_s", "x").len(),
            4,
            "a flag is its whole name"
        );
    }
}
