//! The executors the agent forks, known by the name it runs them under: `mesos-executor` (the
//! command executor, Mesos containerizer) and `mesos-docker-executor` (the docker containerizer's).
//! The shim answers to both and forwards argv verbatim; it only reads a flag where it needs one
//! to place the sibling.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Where the agent finds its executors unless `--launcher_dir` says otherwise.
pub const DEFAULT_LAUNCHER_DIR: &str = "/usr/libexec/mesos";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorKind {
    /// `mesos-executor`.
    Command,
    /// `mesos-docker-executor`: runs the task container `mesos-<CID>` itself through the socket.
    Docker,
}

impl ExecutorKind {
    pub const ALL: [ExecutorKind; 2] = [ExecutorKind::Command, ExecutorKind::Docker];

    pub fn name(self) -> &'static str {
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

    /// Where the real executor is, in an image laid out like the agent's: the path the agent ran
    /// (`<launcher_dir>/<name>`, any launcher_dir), or the default launcher_dir's.
    pub fn invoked_path(self, argv0: &OsStr) -> PathBuf {
        let invoked = Path::new(argv0);
        if invoked.is_absolute() && invoked.file_name() == Some(OsStr::new(self.name())) {
            invoked.to_path_buf()
        } else {
            Path::new(DEFAULT_LAUNCHER_DIR).join(self.name())
        }
    }
}

/// The value of `--name=value` among the executor's arguments (the first, as gflags-style
/// parsers in Mesos take the last; the agent passes each once).
pub fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    args.iter().find_map(|a| a.strip_prefix(&prefix))
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
    fn the_real_executor_is_where_the_agent_ran_it() {
        let docker = ExecutorKind::Docker;
        assert_eq!(
            docker.invoked_path(OsStr::new("/usr/local/libexec/mesos/mesos-docker-executor")),
            PathBuf::from("/usr/local/libexec/mesos/mesos-docker-executor")
        );
        assert_eq!(
            docker.invoked_path(OsStr::new("mesos-docker-executor")),
            PathBuf::from("/usr/libexec/mesos/mesos-docker-executor"),
            "a relative invocation: the default launcher_dir"
        );
        assert_eq!(
            ExecutorKind::Command.invoked_path(OsStr::new("/usr/local/bin/mesos-executor-shim")),
            PathBuf::from("/usr/libexec/mesos/mesos-executor"),
            "the `run` subcommand: the default launcher_dir"
        );
    }

    #[test]
    fn flags_are_read_never_changed() {
        let args: Vec<String> = [
            "--container=mesos-C",
            "--docker_socket=/run/docker.sock",
            "--docker=docker",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(flag(&args, "docker_socket"), Some("/run/docker.sock"));
        assert_eq!(flag(&args, "docker"), Some("docker"));
        assert_eq!(flag(&args, "sandbox_directory"), None);
    }
}
