//! What the agent handed the shim: the executor it ran, its arguments and environment, the run
//! they describe, and the agent process itself. Read and validated before anything is made.
//!
//! The environment is the task's as much as the agent's (Mesos gives a task's own variables
//! priority over its `MESOS_*`), so nothing in it is believed on its own: `MESOS_DIRECTORY` must
//! name the very directory the agent started the shim in ([`Origin`]), reached without a link,
//! and whether the run checkpoints is whether the agent made its meta run directory.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use crate::error::{fail, Classify, Failure, ShimError};
use crate::launch_env::LaunchEnv;
use crate::mesos::container::LaunchContext;
use crate::mesos::executor::ExecutorKind;
use crate::mesos::layout::{IdVariables, RunLayout};
use crate::no_follow::{self, PathError};
use crate::output::Route;
use crate::proc::{ProcStat, ProcessIdentity};

/// What the agent set up for the shim that no task can: the working directory (the sandbox, in
/// both containerizers: the launch helper chdirs there, the docker containerizer forks with it as
/// the cwd) and the process that forked the shim. Read first thing, while that process is
/// certainly still the parent.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// The working directory's (device, inode), and its path as the kernel names it.
    pub working_dir: Option<((u64, u64), PathBuf)>,
    /// This process and its parent: the pids the agent may have checkpointed in forked.pid (the
    /// shim itself, or the launch helper that forked it).
    pub own_pid: u32,
    pub parent_pid: Option<u32>,
    /// The agent process that started the launch, if it can be told (see [`forking_agent`]).
    pub agent: Option<AgentProcess>,
    /// Where the agent's container logger takes the executor's output (see [`crate::output`]).
    pub output: Route,
}

impl Origin {
    pub(crate) fn read() -> Origin {
        let working_dir = std::fs::File::open(".")
            .and_then(|dir| no_follow::file_id(&dir))
            .ok()
            .map(|id| {
                let path = std::fs::read_link("/proc/self/cwd").unwrap_or_else(|_| ".".into());
                (id, path)
            });
        let own_pid = std::process::id();
        let parent_pid = ProcStat::of(own_pid).map(|s| s.ppid).filter(|p| *p > 1);
        Origin {
            working_dir,
            own_pid,
            parent_pid,
            agent: parent_pid.and_then(forking_agent_from),
            // The working directory is the sandbox once verified; until then, a sandbox file
            // there is only compared, never opened.
            output: Route::of_this_process(Path::new(".")),
        }
    }

    /// The pids forked.pid may name before the shim points it at the sibling.
    pub(crate) fn checkpointable_pids(&self) -> Vec<u32> {
        std::iter::once(self.own_pid)
            .chain(self.parent_pid)
            .collect()
    }
}

/// What the agent handed the shim, validated.
pub(crate) struct Launch {
    /// Which executor the agent ran.
    pub kind: ExecutorKind,
    /// The path the agent ran (`AT_EXECFN`, see [`crate::proc::exec_path`]): where the real
    /// executor is in an image laid out like the agent's.
    pub exec_path: Option<PathBuf>,
    /// The run, by the real path of the working directory the agent set.
    pub run: RunLayout,
    /// `MESOS_DIRECTORY`, where a link at or above the work_dir (the operator's) makes it differ
    /// from the sandbox's real path: the executor in the sibling finds its sandbox there too.
    pub sandbox_as_named: Option<PathBuf>,
    pub executor_args: Vec<String>,
    /// The launch environment, as data: the executor's, never this process's own (see
    /// [`crate::launch_env`]).
    pub env: LaunchEnv,
    /// The agent made the run's meta directory: it checkpoints forked.pid and will look for the
    /// executor there (`MESOS_CHECKPOINT` is the task's to set and only logged).
    pub checkpointing: bool,
    /// What the agent set up for the shim.
    pub origin: Origin,
    /// The Mesos container the agent's isolators made for this process.
    pub container: LaunchContext,
}

impl Launch {
    /// Reads the launch; anything malformed, or any run but the one the agent started the shim
    /// in, is refused (exit 64) before anything is made.
    pub(crate) fn read(
        kind: ExecutorKind,
        exec_path: Option<PathBuf>,
        args: Vec<OsString>,
        env: LaunchEnv,
        origin: Origin,
    ) -> Result<Launch, ShimError> {
        let sandbox = env_var(&env, "MESOS_DIRECTORY").ok_or_else(|| {
            fail(
                Failure::Usage,
                "MESOS_DIRECTORY is not set: the shim relays a Mesos executor launch and must be started by a \
                 Mesos agent (or with the sandbox path in MESOS_DIRECTORY)",
            )
        })?;
        let ids = id_variables(&env);
        let named = RunLayout::from_sandbox(sandbox, &ids).classify(Failure::Usage)?;
        let (run, sandbox_as_named) = the_run(named, &ids, &origin)?;
        let checkpointing = no_follow::dir_exists(&run.meta_run_dir()).map_err(|e| {
            fail(
                Failure::Usage,
                format!(
                    "the run's meta directory {} cannot be trusted: {e}; the agent makes it without links",
                    run.meta_run_dir().display()
                ),
            )
        })?;
        let executor_args = args
            .into_iter()
            .map(|a| a.into_string().ok())
            .collect::<Option<_>>()
            .ok_or_else(|| {
                fail(
                    Failure::Usage,
                    "an executor argument is not valid UTF-8, which the Docker API cannot carry",
                )
            })?;
        let container = LaunchContext::read().map_err(|e| {
            fail(
                Failure::Software,
                format!("cannot read the launch's own container: {e}"),
            )
        })?;
        Ok(Launch {
            kind,
            exec_path,
            run,
            sandbox_as_named,
            executor_args,
            env,
            checkpointing,
            origin,
            container,
        })
    }

    pub(crate) fn var(&self, name: &str) -> Option<&OsStr> {
        env_var(&self.env, name)
    }
}

/// The run the agent started the shim in, and the sandbox's path as `MESOS_DIRECTORY` names it
/// where that differs from its real path.
///
/// `MESOS_DIRECTORY` (which a task can set) must name the working directory the agent set (which
/// it cannot): reached from `/` without a link, as the agent's layout makes it, or through a link
/// at or above the agent's work_dir. That link is the operator's (`--work_dir=/var/lib/mesos`
/// linked to a data disk), and the agent does not resolve it: it names the sandbox through the
/// link and sets the working directory to the real path. Then the run is taken from the real path
/// (`meta/`, `forked.pid` and the sibling's mounts all go by it), and the named path is kept: the
/// executor in the sibling finds its sandbox there too. A link below the work_dir, in the run's
/// layout, is only ever a task's: refused.
fn the_run(
    named: RunLayout,
    ids: &IdVariables,
    origin: &Origin,
) -> Result<(RunLayout, Option<PathBuf>), ShimError> {
    let (cwd_id, cwd) = origin.working_dir.as_ref().ok_or_else(|| {
        fail(
            Failure::Usage,
            "the shim cannot read its working directory, which the agent sets to the run's sandbox; \
             refusing to take the run from MESOS_DIRECTORY alone",
        )
    })?;
    let shown = named.sandbox.display().to_string();
    match no_follow::open_dir(&named.sandbox) {
        Ok(dir) => {
            require_working_dir(&dir, *cwd_id, cwd, &shown)?;
            Ok((named, None))
        }
        Err(PathError::Symlink(at)) if named.work_dir.starts_with(&at) => {
            let real = through_operators_link(&named, ids, (*cwd_id, cwd))?;
            if at.starts_with(&real.work_dir) {
                // Under the work_dir, where tasks write: not the operator's link.
                return Err(sandbox_refused(&shown, PathError::Symlink(at)));
            }
            tracing::debug!(named = shown, real = %real.sandbox.display(), link = %at.display(), "the work_dir is reached through a link: the run goes by its real path");
            Ok((real, Some(named.sandbox)))
        }
        Err(e) => Err(sandbox_refused(&shown, e)),
    }
}

/// The run at the working directory's real path, once `named` (whose work_dir is reached
/// through a link) is shown to lead to it with no link in the run's layout.
fn through_operators_link(
    named: &RunLayout,
    ids: &IdVariables,
    (cwd_id, cwd): ((u64, u64), &PathBuf),
) -> Result<RunLayout, ShimError> {
    let shown = named.sandbox.display().to_string();
    // The operator's path, links and all: a directory, so no device or FIFO is ever opened.
    let work_dir = nix::fcntl::open(
        &named.work_dir,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| {
        fail(
            Failure::Usage,
            format!(
                "MESOS_DIRECTORY={shown}: its work_dir {} cannot be opened: {e}",
                named.work_dir.display()
            ),
        )
    })?;
    let layout = named
        .sandbox
        .strip_prefix(&named.work_dir)
        .classify(Failure::Software)?;
    let dir = no_follow::open_dir_beneath(&work_dir, layout, &named.work_dir)
        .map_err(|e| sandbox_refused(&shown, e))?;
    require_working_dir(&dir, cwd_id, cwd, &shown)?;
    let real = RunLayout::from_sandbox(cwd.as_os_str(), ids).classify(Failure::Usage)?;
    let same_run = (
        &real.agent_id,
        &real.framework_id,
        &real.executor_id,
        &real.container_id,
    ) == (
        &named.agent_id,
        &named.framework_id,
        &named.executor_id,
        &named.container_id,
    );
    if !same_run {
        return Err(fail(
            Failure::Usage,
            format!(
                "MESOS_DIRECTORY={shown} and the working directory {} name different runs",
                cwd.display()
            ),
        ));
    }
    // The kernel's name for the working directory holds no link; checked all the same.
    let dir = no_follow::open_dir(&real.sandbox).map_err(|e| sandbox_refused(&shown, e))?;
    require_working_dir(&dir, cwd_id, cwd, &shown)?;
    Ok(real)
}

/// The directory opened as the sandbox must be the working directory the agent set.
fn require_working_dir(
    dir: &std::os::fd::OwnedFd,
    cwd_id: (u64, u64),
    cwd: &Path,
    shown: &str,
) -> Result<(), ShimError> {
    if no_follow::file_id(dir).classify(Failure::Software)? == cwd_id {
        return Ok(());
    }
    Err(fail(
        Failure::Usage,
        format!(
            "MESOS_DIRECTORY={shown} is not the directory the agent started the shim in ({}): the agent \
             sets both to the run's sandbox, and a task's environment can change only the variable; \
             refusing to act for another run",
            cwd.display()
        ),
    ))
}

/// Why `MESOS_DIRECTORY` cannot be opened as the sandbox, in the operator's words.
fn sandbox_refused(shown: &str, e: PathError) -> ShimError {
    fail(
        Failure::Usage,
        match e {
            PathError::Missing(_) => format!(
                "the sandbox {shown} does not exist: the agent makes it before it launches an executor; \
                 check that the shim sees the agent's work_dir at the same path"
            ),
            PathError::Symlink(at) => format!(
                "MESOS_DIRECTORY={shown} leads through a symbolic link at {}, below the agent's work_dir, in \
                 the run's layout, which the agent makes without links: only a task could have put it there, \
                 and the shim never follows one",
                at.display()
            ),
            e => format!("MESOS_DIRECTORY={shown} cannot be opened as the sandbox: {e}"),
        },
    )
}

/// The ID variables of the launch environment, which the run's layout is checked against.
pub(crate) fn id_variables(env: &[(OsString, OsString)]) -> IdVariables {
    let var = |name: &str| {
        env_var(env, name)
            .and_then(OsStr::to_str)
            .map(str::to_string)
    };
    IdVariables {
        agent_id: var("MESOS_SLAVE_ID"),
        agent_id_new: var("MESOS_AGENT_ID"),
        framework_id: var("MESOS_FRAMEWORK_ID"),
        executor_id: var("MESOS_EXECUTOR_ID"),
    }
}

/// A variable of the launch environment, as the agent set it.
pub(crate) fn env_var<'a>(env: &'a [(OsString, OsString)], name: &str) -> Option<&'a OsStr> {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_os_str())
}

/// The Mesos containerizer's launch helper (`mesos-containerizer launch`, `launch.cpp`): the agent
/// forks it, and it forks the executor and stays its parent. It is never the agent.
pub(crate) const LAUNCH_HELPER: &str = "mesos-containerizer";

/// How far up the shim looks for the agent: past a launch helper or two, never further.
const MAX_ANCESTORS: usize = 4;

/// The agent process that started this launch, which the sibling's init watches beside the shim.
#[derive(Debug, Clone)]
pub(crate) struct AgentProcess {
    pub identity: ProcessIdentity,
    /// Its command name, for the log.
    pub name: String,
    /// The launch helpers between it and the shim (their pids): under the Mesos containerizer,
    /// the one `mesos-containerizer launch` that forked the shim.
    pub past_helpers: Vec<u32>,
}

/// The agent process that started this launch: the nearest ancestor that is not a launch helper,
/// read first thing, while the agent that ran the shim certainly still runs it. Only an ancestor
/// in the shim's own mount namespace counts (the agent forks its executors inside its
/// container); a shim already orphaned, adopted by a reaper outside the agent container or by
/// the host's init, names none, and then its death never ends the executor.
#[cfg(test)]
pub(crate) fn forking_agent() -> Option<AgentProcess> {
    forking_agent_from(ProcStat::of(std::process::id())?.ppid)
}

/// [`forking_agent`], looking from the shim's parent `pid` up.
fn forking_agent_from(mut pid: u32) -> Option<AgentProcess> {
    let mut past_helpers = Vec::new();
    for _ in 0..MAX_ANCESTORS {
        if pid <= 1
            || crate::proc::shares_namespace(pid, crate::proc::Namespace::Mount) != Some(true)
        {
            return None;
        }
        let comm = crate::proc::read(&format!("/proc/{pid}/comm"))
            .map(|c| c.trim().to_string())
            .unwrap_or_default();
        if is_launch_helper(pid, &comm) {
            past_helpers.push(pid);
            pid = ProcStat::of(pid)?.ppid;
            continue;
        }
        let identity = ProcessIdentity::of(pid)?;
        return Some(AgentProcess {
            identity,
            name: comm,
            past_helpers,
        });
    }
    None
}

/// Whether process `pid`, whose command name is `comm`, is a launch helper: that name (the kernel
/// keeps 15 bytes of it) or the name it was run under says so.
fn is_launch_helper(pid: u32, comm: &str) -> bool {
    if names_launch_helper(comm, b"") {
        return true;
    }
    let argv0 = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let argv0 = argv0.split(|b| *b == 0).next().unwrap_or_default();
    let argv0 = argv0.rsplit(|b| *b == b'/').next().unwrap_or_default();
    names_launch_helper(comm, argv0)
}

/// The rule of [`is_launch_helper`], on what `/proc` says.
fn names_launch_helper(comm: &str, argv0_basename: &[u8]) -> bool {
    const COMM_LEN: usize = 15;
    argv0_basename == LAUNCH_HELPER.as_bytes()
        || (comm.len() == COMM_LEN && LAUNCH_HELPER.starts_with(comm))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launch_helper_is_told_by_its_truncated_name_or_its_argv0() {
        assert!(names_launch_helper(
            "mesos-container",
            b"mesos-containerizer"
        ));
        assert!(names_launch_helper("mesos-container", b"sh"));
        assert!(names_launch_helper("sh", b"mesos-containerizer"));
        assert!(!names_launch_helper("mesos-agent", b"mesos-agent"));
        assert!(!names_launch_helper("mesos-", b"sh"));
        assert!(!names_launch_helper("sh", b"mesos-containerizer-x"));
    }

    /// This test process's parent is cargo's test runner or a shell, neither a helper: it is
    /// the agent, unless it is in another mount namespace.
    #[test]
    fn the_agent_is_the_nearest_ancestor_that_is_not_a_helper() {
        if let Some(agent) = forking_agent() {
            assert!(agent.past_helpers.is_empty());
            assert_eq!(
                Some(agent.identity.pid),
                ProcStat::of(std::process::id()).map(|s| s.ppid)
            );
        }
    }
}
