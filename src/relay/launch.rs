//! What the agent handed the shim: the executor it ran, its arguments and environment, the run
//! they describe, and the agent process itself. Read and validated before anything is made.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use crate::error::{fail, Classify, Failure, ShimError};
use crate::mesos::executor::ExecutorKind;
use crate::mesos::layout::{IdVariables, RunLayout};
use crate::proc::{ProcStat, ProcessIdentity};

/// What the agent handed the shim, validated.
pub struct Launch {
    /// Which executor the agent ran.
    pub kind: ExecutorKind,
    /// The path the agent ran (`AT_EXECFN`, see [`crate::proc::exec_path`]): where the real
    /// executor is in an image laid out like the agent's.
    pub exec_path: Option<PathBuf>,
    pub run: RunLayout,
    pub executor_args: Vec<String>,
    pub env: Vec<(OsString, OsString)>,
    /// `MESOS_CHECKPOINT=1`: the agent checkpoints forked.pid and will look for the executor there.
    pub checkpointing: bool,
    /// The agent process that forked the shim, if it can be told (see [`forking_agent`]).
    pub agent: Option<ProcessIdentity>,
}

impl Launch {
    /// Reads the launch; anything malformed is refused (exit 64) before anything is made.
    pub fn read(
        kind: ExecutorKind,
        exec_path: Option<PathBuf>,
        args: Vec<OsString>,
        env: Vec<(OsString, OsString)>,
        agent: Option<ProcessIdentity>,
    ) -> Result<Launch, ShimError> {
        let var = |name: &str| {
            env_var(&env, name)
                .and_then(OsStr::to_str)
                .map(str::to_string)
        };
        let sandbox = env_var(&env, "MESOS_DIRECTORY").ok_or_else(|| {
            fail(
                Failure::Usage,
                "MESOS_DIRECTORY is not set: the shim relays a Mesos executor launch and must be started by a \
                 Mesos agent (or with the sandbox path in MESOS_DIRECTORY)",
            )
        })?;
        let ids = IdVariables {
            agent_id: var("MESOS_SLAVE_ID"),
            agent_id_new: var("MESOS_AGENT_ID"),
            framework_id: var("MESOS_FRAMEWORK_ID"),
            executor_id: var("MESOS_EXECUTOR_ID"),
        };
        let run = RunLayout::from_sandbox(sandbox, &ids).classify(Failure::Usage)?;
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
        let checkpointing = var("MESOS_CHECKPOINT").as_deref() == Some("1");
        Ok(Launch {
            kind,
            exec_path,
            run,
            executor_args,
            env,
            checkpointing,
            agent,
        })
    }

    pub fn var(&self, name: &str) -> Option<&OsStr> {
        env_var(&self.env, name)
    }
}

/// A variable of the launch environment, as the agent set it.
fn env_var<'a>(env: &'a [(OsString, OsString)], name: &str) -> Option<&'a OsStr> {
    env.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_os_str())
}

/// The agent process that forked this shim: its parent, read first thing, while the agent that
/// ran it is certainly still its parent. Only a parent in the shim's own mount namespace counts
/// (the agent forks its executors inside its container); a shim already orphaned, adopted by a
/// reaper outside the agent container or by the host's init, names none, and then its death
/// never ends the executor.
pub fn forking_agent() -> Option<ProcessIdentity> {
    let me = ProcStat::of(std::process::id())?;
    if me.ppid <= 1 || crate::proc::shares_mount_namespace(me.ppid) != Some(true) {
        return None;
    }
    ProcessIdentity::of(me.ppid)
}
