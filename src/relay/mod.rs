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

pub(crate) mod effects;
pub(crate) mod executor_container;
pub(crate) mod forked_pid;
pub(crate) mod handback;
pub mod handover;
pub(crate) mod launch;
pub(crate) mod plan;
pub(crate) mod prepare;
pub(crate) mod signals;
pub(crate) mod supervise;
pub(crate) mod waiting;

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use nix::sys::signal::Signal;

use crate::config::Settings;
use crate::engine::Engine;
use crate::error::ShimError;
use crate::mesos::cgroups;
use crate::sibling::inventory;

pub(crate) use effects::{RealHost, AFTER_EXIT_PATIENCE, DOCKER_PATIENCE};
pub(crate) use launch::Launch;
pub(crate) use plan::{LaunchPlan, Sweep, WaitingMode};
pub(crate) use supervise::{ExecutorExit, Outcome};

/// How long the shim waits, once its sibling has exited, for the runtime to remove the sibling's
/// cgroups before it removes the parents the runtime made.
const CGROUP_CLEANUP_PATIENCE: Duration = Duration::from_secs(10);

/// Runs the launch and returns the exit status to leave with: the executor's own.
/// `signals` carries the signals the shim received, to be passed on to the executor.
pub(crate) async fn run(
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
            return Ok(Outcome::Exited(ExecutorExit::status_of(signal)));
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
        supervise::run_sibling_to_exit(connect, engine, &RealHost, &prepared.spec, &plan, signals)
            .await;
    cgroups::remove_when_empty(&prepared.cgroups_made_for_sibling, CGROUP_CLEANUP_PATIENCE).await;
    outcome
}
