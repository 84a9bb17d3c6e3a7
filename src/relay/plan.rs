//! What a launch does besides running the sibling, decided before it starts.

use std::path::PathBuf;
use std::time::Duration;

use crate::agent_container::AgentContainer;

/// Which siblings the launch sweeps: those of this work_dir (host path) that their gone shims
/// left behind, judged from the agent container the launch already described (`None`: the host).
#[derive(Debug, Clone)]
pub(crate) struct Sweep {
    pub work_dir_host: PathBuf,
    pub seen_from: Option<AgentContainer>,
}

/// What the waiting mode needs besides the sibling: the daemon to ask at the end, and the log.
#[derive(Debug, Clone)]
pub(crate) struct WaitingMode {
    pub endpoint: crate::config::DockerEndpoint,
    pub log: crate::logging::LogSettings,
}

/// What the launch does besides running the sibling: checkpointing, the sweep, pause points.
#[derive(Debug, Clone)]
pub(crate) struct LaunchPlan {
    /// The agent made the run's meta directory: point its forked.pid at the sibling.
    pub checkpointing: bool,
    pub forked_pid: PathBuf,
    /// The pids forked.pid may name when the shim takes it over: the process the agent forked
    /// (the shim, or the launch helper that forked it). Any other is not this launch's.
    pub agent_forked: Vec<u32>,
    /// The run's directories the sibling mounts, as the shim sees them: each is checked right
    /// before the create to be reached without a link, since Docker resolves them on the host.
    pub mount_sources: Vec<PathBuf>,
    pub forked_pid_timeout: Duration,
    pub forked_pid_guard: Duration,
    /// Where the sibling's init records the executor's exit.
    pub exit_record: PathBuf,
    pub sweep: Option<Sweep>,
    /// Once only waiting is left, hand over to the small waiting mode (see
    /// [`crate::relay::waiting`]); `None`: the relay waits itself (it has more to do at the end,
    /// such as removing cgroups it noted).
    pub waiting_mode: Option<WaitingMode>,
    /// The executor's output comes through the shim (see [`crate::output`]).
    pub relays_output: bool,
    /// Test builds only: the step at which the launch holds (see [`crate::failpoint`]).
    #[cfg(feature = "failpoints")]
    pub pause_at: Option<crate::failpoint::PausePoint>,
}
