//! The relay: one executor launch, from the agent's fork to the executor's exit.
//!
//! - [`launch`]: what the agent handed the shim, read and validated before anything is made.
//! - [`prepare`]: reach Docker, find the agent container, decide the sibling: image, host paths,
//!   the Mesos container's cgroup to join, the init, whether the daemon may auto-remove it.
//! - [`supervise`]: the state machine, from creating the sibling to the executor's exit, written
//!   against the traits of [`effects`] ([`SiblingEngine`], [`HostProcesses`]) so that unit tests
//!   drive it with fakes; [`plan`]: what the launch does besides running the sibling.
//! - [`handback`]: what a sibling cannot carry of the launch's Mesos container: handed back to
//!   the stock executor, or refused, before anything is made.
//! - [`executor_container`]: the shim started by the agent inside Mesos's own container for
//!   the docker executor (`--docker_mesos_image`): already out of the agent container, it becomes
//!   the stock executor in place.
//! - [`waiting`]: the small mode the shim re-executes into once only waiting is left, and
//!   [`handover`]: what the relay hands it across the `exec`.
//! - [`forked_pid`]: pointing the agent's `forked.pid` at the sibling, and guarding it a while.
//! - [`signals`]: the signals passed on to the executor, blocked from the first instant and read
//!   from a signalfd.
//!
//! A signal from the agent is acted on at once in every phase: before the sibling exists the
//! launch is called off and nothing is left behind.

pub mod effects;
pub mod executor_container;
pub mod forked_pid;
pub mod handback;
pub mod handover;
pub mod launch;
pub mod plan;
pub mod prepare;
pub mod signals;
pub mod supervise;
pub mod waiting;

use std::time::Duration;

use bollard::models::{ContainerCreateBody, ContainerInspectResponse, ContainerState};
use futures_util::{Stream, StreamExt};
use nix::sys::signal::Signal;

use crate::config::Settings;
use crate::error::ShimError;
use crate::mesos::cgroups;
use crate::sibling::engine::{CreateError, Engine, ExitWait, Patience, WaitError, WaitFor};
use crate::sibling::inventory;

pub use effects::{HostProcesses, RealHost, SiblingEngine, SiblingProcess};
pub use launch::Launch;
pub use plan::{LaunchPlan, Sweep, WaitingMode};
pub use supervise::{status_of_signal, ExecutorExit, Outcome};

/// How long a launch waits for the daemon: 8 s for one that accepts no connection (the task fails
/// fast and says why, rather than hanging until the agent's executor registration timeout), and
/// 45 s for one that is there but loaded (a burst of launches), within the agent's default
/// `--executor_registration_timeout` of 1 min.
pub const DOCKER_PATIENCE: Patience = Patience {
    absent: Duration::from_secs(8),
    busy: Duration::from_secs(45),
    say_retrying: true,
};

/// How long the shim, its executor gone, tries to reach the daemon again to remove the sibling:
/// the status is known, and a daemon that is away leaves the removal to the next launch or gc.
pub const AFTER_EXIT_PATIENCE: Patience = Patience {
    absent: Duration::from_secs(2),
    busy: Duration::from_secs(2),
    say_retrying: true,
};

/// How long the shim waits, once its sibling has exited, for the runtime to remove the sibling's
/// cgroups before it removes the parents the runtime made.
const CGROUP_CLEANUP_PATIENCE: Duration = Duration::from_secs(10);

/// Runs the launch and returns the exit status to leave with: the executor's own.
/// `signals` carries the signals the shim received, to be passed on to the executor.
pub async fn run(
    launch: Launch,
    settings: &Settings,
    mut signals: impl Stream<Item = Signal> + Unpin,
) -> Result<Outcome, ShimError> {
    let run = &launch.run;
    tracing::info!(
        container_id = run.container_id,
        executor_id = run.executor_id,
        framework_id = run.framework_id,
        checkpointing = launch.checkpointing,
        "relaying executor launch to a sibling container"
    );
    // Nothing exists yet: a signal here calls the launch off with nothing to undo.
    let prepared = tokio::select! {
        biased;
        Some(signal) = signals.next() => {
            tracing::info!(signal = signal.as_str(), "signal before the sibling was created: the launch is called off");
            return Ok(Outcome::Exited(ExecutorExit::status(status_of_signal(signal))));
        }
        prepared = async {
            let engine = Engine::connect(&settings.docker_host, DOCKER_PATIENCE).await?;
            let prepared = prepare::prepare(&launch, settings, &engine).await?;
            Ok::<_, ShimError>((engine, prepared))
        } => prepared?,
    };
    let (engine, prepared) = prepared;
    let plan = LaunchPlan {
        checkpointing: launch.checkpointing,
        forked_pid: run.forked_pid_path(),
        agent_forked: launch.origin.checkpointable_pids(),
        mount_sources: prepared.mount_sources.clone(),
        forked_pid_timeout: settings.forked_pid_timeout,
        forked_pid_guard: settings.forked_pid_guard,
        exit_record: run.exit_record_path(),
        sweep: inventory::sweep_is_due(&prepared.work_dir_host).then(|| Sweep {
            work_dir_host: prepared.work_dir_host.clone(),
            seen_from: prepared.agent.clone(),
        }),
        waiting_mode: prepared
            .cgroups_made_for_sibling
            .is_empty()
            .then(|| WaitingMode {
                endpoint: settings.docker_host.clone(),
                log: settings.log,
            }),
        relays_output: prepared.relays_output,
        #[cfg(feature = "failpoints")]
        pause_at: settings.pause_at,
    };
    let endpoint = settings.docker_host.clone();
    let connect = async || Engine::connect(&endpoint, AFTER_EXIT_PATIENCE).await;
    let outcome =
        supervise::supervise(connect, engine, &RealHost, &prepared.spec, &plan, signals).await;
    cgroups::remove_when_empty(&prepared.cgroups_made_for_sibling, CGROUP_CLEANUP_PATIENCE).await;
    outcome
}

impl SiblingEngine for Engine {
    async fn inspect(&self, name: &str) -> anyhow::Result<Option<ContainerInspectResponse>> {
        self.inspect_container(name).await
    }

    async fn inspect_state(&self, name: &str) -> anyhow::Result<Option<ContainerState>> {
        Engine::inspect_state(self, name).await
    }

    async fn create(&self, name: &str, body: &ContainerCreateBody) -> Result<String, CreateError> {
        Engine::create(self, name, body).await
    }

    async fn pull(&self, image: &str) -> Result<(), ShimError> {
        Engine::pull(self, image).await
    }

    async fn wait(&self, id: &str, condition: WaitFor) -> Result<ExitWait, WaitError> {
        Engine::wait(self, id, condition).await
    }

    async fn start(&self, id: &str) -> anyhow::Result<()> {
        Engine::start(self, id).await
    }

    async fn kill(&self, id: &str, signal: Signal) -> anyhow::Result<()> {
        Engine::kill(self, id, signal).await
    }

    async fn remove(&self, id: &str) -> anyhow::Result<()> {
        Engine::remove(self, id).await
    }

    async fn sweep(&self, sweep: &Sweep) -> anyhow::Result<usize> {
        inventory::sweep(self, &sweep.work_dir_host, sweep.seen_from.clone()).await
    }
}
