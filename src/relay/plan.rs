//! What a launch does besides running the sibling, decided before it starts.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Sweep the siblings of this work_dir (host path) that their gone shims left behind.
    pub sweep: Option<PathBuf>,
    /// Test builds only: the step at which the launch holds (see [`crate::failpoint`]).
    #[cfg(feature = "failpoints")]
    pub pause_at: Option<crate::failpoint::PausePoint>,
}
