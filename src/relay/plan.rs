//! What a launch does besides running the sibling, decided before it starts.

use std::path::PathBuf;
use std::time::Duration;

use crate::agent_container::AgentContainer;

/// Which siblings the launch sweeps: those of this work_dir (host path) that their gone shims
/// left behind, judged from the agent container the launch already described (`None`: the host).
#[derive(Debug, Clone)]
pub struct Sweep {
    pub work_dir_host: PathBuf,
    pub seen_from: Option<AgentContainer>,
}

/// What the launch does besides running the sibling: checkpointing, the sweep, pause points.
#[derive(Debug, Clone)]
pub struct LaunchPlan {
    /// `MESOS_CHECKPOINT=1`: point the agent's forked.pid at the sibling.
    pub checkpointing: bool,
    pub forked_pid: PathBuf,
    pub forked_pid_timeout: Duration,
    pub forked_pid_guard: Duration,
    /// Where the sibling's init records the executor's exit.
    pub exit_record: PathBuf,
    pub sweep: Option<Sweep>,
    /// Test builds only: the step at which the launch holds (see [`crate::failpoint`]).
    #[cfg(feature = "failpoints")]
    pub pause_at: Option<crate::failpoint::PausePoint>,
}
