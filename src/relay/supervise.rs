//! The state machine of one launch, written against [`SiblingEngine`] (the daemon) and
//! [`HostProcesses`] (`/proc` and pidfds), so that unit tests drive it with fakes. Its phases,
//! and how a signal from the agent is acted on in each, at once:
//!
//! 1. **Create or adopt the sibling**: create `executor-mesos-<CID>` (or adopt a running one of this
//!    run), register the wait for its exit with the daemon *before* starting it, start it. A
//!    signal calls the launch off: a sibling this shim made is removed, and the shim leaves with
//!    the status the signal would have given the executor.
//! 2. **Hold its process**: the host pid Docker reports, confirmed as the sibling's and held by a
//!    pidfd. Signals go through the daemon; an exit comes through the registered wait.
//! 3. **Run**: forked.pid points at the sibling's process and is guarded for a window; siblings
//!    left behind by gone shims are swept; then the daemon is let go. Signals go straight to the
//!    process (the sibling's init, which passes them to the executor), its exit is seen through
//!    the pidfd, and its status is read from the init's exit record: a daemon restart, a stale
//!    socket or a daemon away for an hour changes nothing here.
//! 4. **Finish**: the sibling is removed when the daemon answers (else by the next launch on the
//!    host, or `gc`), and the shim leaves with the executor's status.

use std::io;
use std::time::Duration;

use bollard::models::ContainerInspectResponse;
use futures_util::{FutureExt, Stream, StreamExt};
use nix::sys::signal::Signal;

use crate::engine::{CreateError, ExitWait, WaitError, WaitFor};
use crate::error::{exit_status_from_docker, fail, status_of_signal, Classify, Failure, ShimError};
use crate::failpoint;
use crate::mesos::checkpoint::{ForkedPidGuard, HostPid};
use crate::output::PumpThread;
use crate::proc::PidCheck;
use crate::relay::effects::{HostProcesses, SiblingEngine, SiblingProcess};
use crate::relay::forked_pid;
use crate::relay::handover::Handover;
use crate::relay::plan::LaunchPlan;
use crate::relay::prepare::PID_HOST_NEEDED;
use crate::sibling::labels;
use crate::sibling::protocol::ExitRecord;
use crate::sibling::spec::{plan_for_existing, ExistingPlan, SiblingSpec, SiblingState};
use crate::signal_forwarding::Route;

/// How long a sibling that Docker reports running but whose pid cannot be confirmed is given to
/// report its exit. Under load the daemon learns of an exit late: an executor that exited at once
/// still shows as running while its pid is gone. Only if no exit comes is it a misconfiguration.
const UNCONFIRMED_PID_PATIENCE: Duration = Duration::from_secs(30);
/// How long the launch's sweep of left-behind siblings may take before it is dropped.
const SWEEP_PATIENCE: Duration = Duration::from_secs(30);
/// How long the shim, its executor gone, waits for the daemon to remove the sibling (or to
/// tell an exit status the init could not record): the status is known, so no longer.
pub(crate) const FINISH_PATIENCE: Duration = Duration::from_secs(5);

/// The sibling this shim looks after.
#[derive(Debug, Clone)]
struct Sibling {
    id: String,
    name: String,
    created_here: bool,
    /// Its first process is an init that records the exit (not so in a sibling an older release
    /// made, which a relaunch may adopt: its exit is learnt from the daemon).
    records_exit: bool,
    /// The daemon removes it once it exits (AutoRemove): nothing left for the shim to do.
    auto_removed: bool,
}

/// How the executor ended, as the shim passes it on to the agent: its exit status, and the
/// signal that killed it when its init saw one (the shim then dies of that signal, so the agent
/// sees what the stock executor would have given it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExecutorExit {
    pub status: u8,
    pub signal: Option<Signal>,
}

impl ExecutorExit {
    /// An exit known only by its status (Docker's word, or the shim's own).
    pub(crate) fn status(status: u8) -> ExecutorExit {
        ExecutorExit {
            status,
            signal: None,
        }
    }

    /// The exit of a process killed by `signal`, known only by its status.
    pub(crate) fn status_of(signal: Signal) -> ExecutorExit {
        ExecutorExit::status(status_of_signal(signal as i32))
    }

    /// An exit nothing recorded and no daemon can tell any more: reported as a kill (SIGKILL's
    /// status), which it most likely was.
    pub(crate) fn unknown() -> ExecutorExit {
        ExecutorExit::status_of(Signal::SIGKILL)
    }

    fn from_record(record: &ExitRecord) -> ExecutorExit {
        ExecutorExit {
            status: record.status,
            signal: record.signal.and_then(|n| Signal::try_from(n).ok()),
        }
    }
}

impl PartialEq<u8> for ExecutorExit {
    fn eq(&self, status: &u8) -> bool {
        self.status == *status
    }
}

/// How a launch's relay ends: with the executor's exit, or handed over to the waiting mode.
#[derive(Debug)]
pub(crate) enum Outcome {
    Exited(ExecutorExit),
    HandedOver(Box<Handover>),
}

impl PartialEq<u8> for Outcome {
    fn eq(&self, status: &u8) -> bool {
        matches!(self, Outcome::Exited(exit) if exit == status)
    }
}

/// Runs the launch to the executor's exit and returns its status. `engine` is the launch's
/// connection, let go once the sibling runs; `connect` makes a new one afterwards.
pub(crate) async fn run_sibling_to_exit<E, H>(
    connect: impl AsyncFn() -> Result<E, ShimError>,
    engine: E,
    host: &H,
    spec: &SiblingSpec,
    plan: &LaunchPlan,
    mut signals: impl Stream<Item = Signal> + Unpin,
) -> Result<Outcome, ShimError>
where
    E: SiblingEngine,
    H: HostProcesses,
{
    // 1. Create or adopt the sibling; a signal calls the launch off.
    let (sibling, mut exit) = match take_sibling(&engine, spec, plan, &mut signals).await? {
        Taken::Sibling(sibling, exit) => (sibling, exit),
        Taken::CalledOff(exit) => return Ok(Outcome::Exited(exit)),
    };
    // 2. Hold its running process; signals go through the daemon meanwhile.
    let (pid, process) =
        match hold_running_process(&engine, host, &sibling, &mut exit, plan, &mut signals).await {
            Ok(Started::Running(pid, process)) => (pid, process),
            Ok(Started::Exited(status)) => {
                drop(engine);
                return Ok(Outcome::Exited(
                    finish(&connect, &sibling, Some(status)).await,
                ));
            }
            Err(e) => {
                remove_failed_launch(&engine, &sibling).await;
                return Err(e);
            }
        };
    tracing::info!(
        container = sibling.name,
        host_pid = pid.get(),
        "sibling running"
    );
    // The pidfd and the exit record tell the rest: the daemon's wait, and its connection, go;
    // a sibling whose first process records no exit keeps the wait for its status.
    let kept_wait = (!sibling.records_exit).then_some(exit);
    // 3. Run: no daemon needed from here on, once the sweep is done.
    let running = Running {
        host,
        plan,
        sibling: &sibling,
        pid,
        // The executor's output, through the shim while it lives (see crate::output).
        output: plan
            .relays_output
            .then(|| output_pump(pid, &process, &sibling))
            .flatten(),
        may_hand_over: plan.waiting_mode.is_some() && kept_wait.is_none(),
    };
    let output = match running
        .until_exit(&connect, engine, process, &mut signals)
        .await?
    {
        Ran::HandedOver(handover) => return Ok(Outcome::HandedOver(handover)),
        Ran::Exited(output) => output,
    };
    // What the executor wrote last reaches the logger before the shim leaves.
    if let Some(output) = output {
        output.finish();
    }
    // 4. Finish, with the status the init recorded.
    let recorded = recorded_exit(plan, kept_wait).await;
    Ok(Outcome::Exited(finish(&connect, &sibling, recorded).await))
}

/// How the first phase ended.
enum Taken {
    Sibling(Sibling, ExitWait),
    /// A signal called the launch off: leave with this.
    CalledOff(ExecutorExit),
}

/// Creates or adopts the sibling; a signal meanwhile calls the launch off, and what this shim
/// made is removed.
async fn take_sibling<E: SiblingEngine>(
    engine: &E,
    spec: &SiblingSpec,
    plan: &LaunchPlan,
    signals: &mut (impl Stream<Item = Signal> + Unpin),
) -> Result<Taken, ShimError> {
    tokio::select! {
        biased;
        Some(signal) = signals.next() => {
            tracing::info!(signal = signal.as_str(), "signal before the executor started: the launch is called off");
            remove_called_off_sibling(engine, spec).await;
            Ok(Taken::CalledOff(ExecutorExit::status_of(signal)))
        }
        taken = create_or_adopt(engine, spec, plan) => {
            let (sibling, exit) = taken?;
            Ok(Taken::Sibling(sibling, exit))
        }
    }
}

/// How the third phase ended: the executor exited (with the output thread, if any, to finish),
/// or the relay handed over to the waiting mode.
enum Ran {
    Exited(Option<PumpThread>),
    HandedOver(Box<Handover>),
}

/// The third phase: the sibling runs, its process held.
struct Running<'a, H> {
    host: &'a H,
    plan: &'a LaunchPlan,
    sibling: &'a Sibling,
    pid: HostPid,
    output: Option<PumpThread>,
    /// Whether the waiting mode may take over once only waiting is left.
    may_hand_over: bool,
}

impl<H: HostProcesses> Running<'_, H> {
    /// Checkpoints the pid, guards forked.pid a while and sweeps, passing signals on, until the
    /// executor exits or only waiting is left (then hands over to the waiting mode).
    async fn until_exit<E: SiblingEngine>(
        mut self,
        connect: &impl AsyncFn() -> Result<E, ShimError>,
        engine: E,
        process: H::Process,
        signals: &mut (impl Stream<Item = Signal> + Unpin),
    ) -> Result<Ran, ShimError> {
        let (host, plan, sibling, pid) = (self.host, self.plan, self.sibling, self.pid);
        let mut checkpoint = plan
            .checkpointing
            .then(|| Box::pin(forked_pid::take_over(host, plan, pid, &sibling.id)));
        let mut guard: Option<ForkedPidGuard> = None;
        let mut sweep = Some(Box::pin(sweep_then_let_go(engine, plan)));
        let mut process = Some(process);
        loop {
            let only_waiting = checkpoint.is_none() && guard.is_none() && sweep.is_none();
            if only_waiting && std::mem::take(&mut self.may_hand_over) {
                let held = process.take().expect("held until handed over");
                match self.hand_over(held, signals) {
                    Ok(handover) => return Ok(Ran::HandedOver(handover)),
                    // Nothing to hand over: the relay waits itself, with signals as before.
                    Err(kept) => process = Some(kept),
                }
            }
            let process = process.as_mut().expect("held");
            tokio::select! {
                // Biased: an exit is taken before anything else, so that a sibling that has
                // exited never gets its pid written into forked.pid.
                biased;
                () = process.exited() => break,
                Some(signal) = signals.next() => forward(process, signal, sibling),
                written = async { checkpoint.as_mut().expect("guarded").await }, if checkpoint.is_some() => {
                    checkpoint = None;
                    guard = Some(self.checkpointed(written, process, connect).await?);
                }
                changed = async { guard.as_mut().expect("guarded").changed().await }, if guard.is_some() => {
                    guard = self.guard_after(changed, guard.take().expect("guarded"));
                }
                () = async { sweep.as_mut().expect("guarded").await }, if sweep.is_some() => sweep = None,
            }
        }
        drop(sweep);
        Ok(Ran::Exited(self.output))
    }

    /// Hands over to the waiting mode, which holds nothing of the launch; `Err` gives the process
    /// back where there is no handle to hand over.
    fn hand_over(
        &mut self,
        held: H::Process,
        signals: &mut (impl Stream<Item = Signal> + Unpin),
    ) -> Result<Box<Handover>, H::Process> {
        let mode = self.plan.waiting_mode.as_ref().expect("may hand over");
        // The forwarded signals are blocked (see crate::relay::signals): those the relay has not
        // read wait, across the exec, in the waiting mode's signalfd; those read are passed on
        // now.
        while let Some(Some(signal)) = signals.next().now_or_never() {
            forward(&held, signal, self.sibling);
        }
        let handle = held.hand_over()?;
        Ok(Box::new(Handover {
            output: self.output.take().and_then(PumpThread::hand_over),
            process: handle,
            sibling_id: self.sibling.id.clone(),
            sibling_name: self.sibling.name.clone(),
            auto_removed: self.sibling.auto_removed,
            exit_record: self.plan.exit_record.clone(),
            endpoint: mode.endpoint.clone(),
            log: mode.log,
        }))
    }

    /// forked.pid names the sibling: its guard, from here. A launch the agent cannot recover
    /// must not leave its executor running: where the write failed, the executor this shim
    /// started is ended.
    async fn checkpointed<E: SiblingEngine>(
        &self,
        written: Result<ForkedPidGuard, ShimError>,
        process: &mut H::Process,
        connect: &impl AsyncFn() -> Result<E, ShimError>,
    ) -> Result<ForkedPidGuard, ShimError> {
        let e = match written {
            Ok(guard) => return Ok(guard),
            Err(e) => e,
        };
        if self.sibling.created_here {
            let _ = process.signal(Signal::SIGKILL);
            process.exited().await;
            finish(connect, self.sibling, None).await;
        }
        Err(e)
    }

    /// forked.pid changed under the guard: put right (and watched a while longer), or the
    /// guard's window closed. The guard to keep, if any.
    fn guard_after(
        &self,
        changed: io::Result<bool>,
        mut guard: ForkedPidGuard,
    ) -> Option<ForkedPidGuard> {
        let plan = self.plan;
        let outcome = changed.and_then(|changed| match changed {
            true => forked_pid::repoint_at_sibling(
                self.host,
                &plan.forked_pid,
                self.pid,
                &self.sibling.id,
            )
            .map(Some),
            false => Ok(None),
        });
        match outcome {
            // Something else wrote forked.pid and it was put right: keep watching a while.
            Ok(Some(true)) => {
                guard.extend(plan.forked_pid_guard);
                Some(guard)
            }
            Ok(Some(false)) => Some(guard),
            Ok(None) => {
                tracing::debug!(path = %plan.forked_pid.display(), "forked.pid guard window closed");
                None
            }
            Err(e) => {
                tracing::warn!(path = %plan.forked_pid.display(), error = %e, "no longer guarding forked.pid");
                None
            }
        }
    }
}

/// Sweeps the siblings gone shims left behind (where the plan says to), then lets the launch's
/// connection to the daemon go: a waiting shim holds none.
async fn sweep_then_let_go<E: SiblingEngine>(engine: E, plan: &LaunchPlan) {
    if let Some(sweep) = &plan.sweep {
        match tokio::time::timeout(SWEEP_PATIENCE, engine.sweep(sweep)).await {
            Ok(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "could not sweep the siblings left behind")
            }
            Err(_) => tracing::warn!("the sweep of siblings left behind took too long; dropped"),
            Ok(Ok(_)) => {}
        }
    }
    drop(engine);
}

/// Passes `signal` on to the sibling's process, held.
fn forward(process: &impl SiblingProcess, signal: Signal, sibling: &Sibling) {
    let route = Route::Held {
        container: &sibling.name,
    };
    route.forward(signal, |signal| process.signal(signal));
}

/// The executor's exit as its init recorded it; for a sibling whose first process records none,
/// as the daemon's kept wait reports it.
async fn recorded_exit(plan: &LaunchPlan, kept_wait: Option<ExitWait>) -> Option<ExecutorExit> {
    let recorded = match read_exit_record(plan) {
        Ok(record) => record.as_ref().map(ExecutorExit::from_record),
        Err(e) => {
            tracing::warn!(path = %plan.exit_record.display(), error = %e, "the exit record cannot be read");
            None
        }
    };
    match (recorded, kept_wait) {
        (None, Some(exit)) => tokio::time::timeout(FINISH_PATIENCE, exit)
            .await
            .ok()
            .and_then(Result::ok)
            .map(|code| ExecutorExit::status(exit_status_from_docker(code))),
        (recorded, _) => recorded,
    }
}

/// The exit the sibling's init recorded at `path` (as the sibling's user: the shim's own), for
/// the waiting mode; `None` when there is none to trust.
pub(crate) fn read_record(path: &std::path::Path) -> Option<ExecutorExit> {
    match read_exit_record_at(path) {
        Ok(record) => record.as_ref().map(ExecutorExit::from_record),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "the exit record cannot be read");
            None
        }
    }
}

/// [`finish`], for the waiting mode, which knows its sibling by what was handed over.
pub(crate) async fn finish_handed_over(
    endpoint: &crate::config::DockerEndpoint,
    id: &str,
    name: &str,
    auto_removed: bool,
    recorded: Option<ExecutorExit>,
) -> ExecutorExit {
    let sibling = Sibling {
        id: id.to_string(),
        name: name.to_string(),
        created_here: true,
        records_exit: true,
        auto_removed,
    };
    let connect = async || {
        crate::engine::Engine::connect(endpoint, crate::relay::effects::AFTER_EXIT_PATIENCE).await
    };
    finish(&connect, &sibling, recorded).await
}

/// Creates the sibling (pulling a missing image once) or adopts a running one of this run, and
/// for a new one registers the wait before the start, so even an executor that exits the
/// instant it starts is caught.
async fn create_or_adopt<E: SiblingEngine>(
    engine: &E,
    spec: &SiblingSpec,
    plan: &LaunchPlan,
) -> Result<(Sibling, ExitWait), ShimError> {
    failpoint!(plan.pause_at, BeforeCreate);
    let id = match create(engine, spec, plan).await? {
        Created::New(id) => id,
        Created::Adopted(sibling, exit) => return Ok((sibling, exit)),
    };
    let sibling = Sibling {
        id,
        name: spec.name.clone(),
        created_here: true,
        records_exit: true,
        auto_removed: spec.auto_remove,
    };
    let exit = match engine.wait(&sibling.id, WaitFor::NextExit).await {
        Ok(exit) => exit,
        Err(e) => {
            remove_failed_launch(engine, &sibling).await;
            return Err(fail(
                Failure::Software,
                format!("cannot wait on container {}: {e}", sibling.name),
            ));
        }
    };
    failpoint!(plan.pause_at, BeforeStart);
    if let Err(e) = engine.start(&sibling.id).await {
        remove_failed_launch(engine, &sibling).await;
        return Err(start_failed(spec, e));
    }
    Ok((sibling, exit))
}

/// What the create came to.
enum Created {
    New(String),
    /// A running sibling of this run was there already.
    Adopted(Sibling, ExitWait),
}

/// Creates the sibling: pulls a missing image once; a stopped leftover of this run is replaced
/// once, a running one adopted.
async fn create<E: SiblingEngine>(
    engine: &E,
    spec: &SiblingSpec,
    plan: &LaunchPlan,
) -> Result<Created, ShimError> {
    let body = spec.create_body();
    let (mut replaced, mut pulled) = (false, false);
    loop {
        check_mount_sources(plan)?;
        forget_earlier_record(plan)?;
        match engine.create(&spec.name, &body).await {
            Ok(id) => return Ok(Created::New(id)),
            Err(CreateError::NoSuchImage) if !pulled => {
                engine.pull(&spec.image).await?;
                pulled = true;
            }
            Err(CreateError::NameInUse) if !replaced => match existing(engine, spec).await? {
                ExistingPlan::Adopt => {
                    let (sibling, exit) = adopt(engine, spec).await?;
                    return Ok(Created::Adopted(sibling, exit));
                }
                ExistingPlan::Replace => {
                    tracing::info!(
                        container = spec.name,
                        "removing the stopped leftover sibling of this run"
                    );
                    engine
                        .remove(&spec.name)
                        .await
                        .classify(Failure::Software)?;
                    replaced = true;
                }
            },
            Err(e) => return Err(create_failed(spec, e)),
        }
    }
}

/// Every mount source is a directory reached without a link, right before the create (the
/// sandbox is the task's to write).
fn check_mount_sources(plan: &LaunchPlan) -> Result<(), ShimError> {
    for source in &plan.mount_sources {
        crate::no_follow::open_dir(source).map_err(|e| {
            fail(
                Failure::Usage,
                format!("refusing to mount {} in the sibling: {e}", source.display()),
            )
        })?;
    }
    Ok(())
}

/// A record left by an earlier sibling of this run must not stand for this one's exit.
fn forget_earlier_record(plan: &LaunchPlan) -> Result<(), ShimError> {
    match std::fs::remove_file(&plan.exit_record) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(fail(
            Failure::Software,
            format!("cannot remove {}: {e}", plan.exit_record.display()),
        )),
        _ => Ok(()),
    }
}

/// A create that failed for good, after a pull or a replacement where those help.
fn create_failed(spec: &SiblingSpec, e: CreateError) -> ShimError {
    match e {
        CreateError::NoSuchImage => fail(
            Failure::Unavailable,
            format!("the image {} is still missing after a pull", spec.image),
        ),
        CreateError::NameInUse => fail(
            Failure::Software,
            format!("container {} came back after it was removed", spec.name),
        ),
        CreateError::Other(e) => ShimError {
            failure: Failure::Software,
            error: e,
        },
    }
}

/// A start that failed, saying so where the sibling's init is not in its image.
fn start_failed(spec: &SiblingSpec, e: anyhow::Error) -> ShimError {
    let e = if format!("{e:#}").contains(&spec.entrypoint[0]) {
        e.context(format!(
            "the sibling's init {} is not in image {}",
            spec.entrypoint[0], spec.image
        ))
    } else {
        e
    };
    ShimError {
        failure: Failure::Software,
        error: e,
    }
}

/// What to do about the container that holds the sibling's name: only one of this very run is
/// ever touched.
async fn existing<E: SiblingEngine>(
    engine: &E,
    spec: &SiblingSpec,
) -> Result<ExistingPlan, ShimError> {
    let container = engine
        .inspect(&spec.name)
        .await
        .classify(Failure::Unavailable)?;
    let Some(container) = container else {
        // Removed meanwhile: make it anew.
        return Ok(ExistingPlan::Replace);
    };
    let container_labels = container
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    if !labels::same_run(&container_labels, &spec.labels) {
        return Err(fail(
            Failure::Software,
            format!(
                "a container named {} exists but was not started by the shim for this run; \
                 remove it (docker rm -f {0}) if it is stale",
                spec.name
            ),
        ));
    }
    Ok(plan_for_existing(state_of(&container)))
}

fn state_of(container: &ContainerInspectResponse) -> SiblingState {
    let status = container
        .state
        .as_ref()
        .and_then(|s| s.status)
        .map(|s| s.to_string())
        .unwrap_or_default();
    SiblingState::from_docker(&status)
}

/// Takes on the running sibling of this run (a relaunch of the same container), rather than
/// starting a second executor.
async fn adopt<E: SiblingEngine>(
    engine: &E,
    spec: &SiblingSpec,
) -> Result<(Sibling, ExitWait), ShimError> {
    tracing::info!(
        container = spec.name,
        "adopting the running sibling of this run instead of starting a second executor"
    );
    let container = engine
        .inspect(&spec.name)
        .await
        .classify(Failure::Unavailable)?;
    let records_exit = container
        .as_ref()
        .and_then(|c| c.config.as_ref())
        .and_then(|c| c.labels.as_ref())
        .is_some_and(|l| l.contains_key(labels::LABEL_INIT_PROTOCOL));
    let id = container
        .and_then(|c| c.id)
        .unwrap_or_else(|| spec.name.clone());
    let exit = engine.wait(&id, WaitFor::NotRunning).await.map_err(|e| {
        fail(
            Failure::Software,
            format!("cannot wait on {}: {e}", spec.name),
        )
    })?;
    Ok((
        Sibling {
            id,
            name: spec.name.clone(),
            created_here: false,
            records_exit,
            auto_removed: false,
        },
        exit,
    ))
}

/// What the shim sees of its sibling once started.
enum Started<P> {
    /// Running as this host pid, confirmed through `/proc` and held.
    Running(HostPid, P),
    /// It has exited, so.
    Exited(ExecutorExit),
}

/// Reads the sibling's host pid, confirms and holds it. An exit that comes first (the executor
/// exited the instant it started) decides; a pid that cannot be confirmed gets a bounded wait for
/// that exit. Signals meanwhile go through the daemon.
async fn hold_running_process<E: SiblingEngine, H: HostProcesses>(
    engine: &E,
    host: &H,
    sibling: &Sibling,
    exit: &mut ExitWait,
    plan: &LaunchPlan,
    signals: &mut (impl Stream<Item = Signal> + Unpin),
) -> Result<Started<H::Process>, ShimError> {
    let pid = running_pid(engine, sibling, signals).await?;
    if let Some(pid) = pid {
        let held = host.watch(pid, &sibling.id).map_err(|e| {
            fail(
                Failure::Software,
                format!("cannot hold the sibling's process {pid}: {e}"),
            )
        })?;
        if let Some(process) = held {
            return Ok(Started::Running(pid, process));
        }
    }
    let check = pid.map(|pid| (pid, host.confirm(pid, &sibling.id)));
    if let Some(exit) = recorded_already(plan) {
        return Ok(Started::Exited(exit));
    }
    if let Some((pid, check)) = &check {
        // Its exit decides: an executor that exited shows up here too until the daemon has
        // caught up.
        tracing::info!(
            container = sibling.name,
            host_pid = pid.get(),
            ?check,
            "the sibling's pid cannot be confirmed yet; waiting for its exit"
        );
    }
    exit_of_unconfirmed(engine, sibling, exit, plan, signals, check).await
}

/// The sibling's host pid as the daemon reports it; `None` where it is not running (it ran and
/// exited before its pid could be read). Signals meanwhile go through the daemon.
async fn running_pid<E: SiblingEngine>(
    engine: &E,
    sibling: &Sibling,
    signals: &mut (impl Stream<Item = Signal> + Unpin),
) -> Result<Option<HostPid>, ShimError> {
    let state = loop {
        tokio::select! {
            biased;
            Some(signal) = signals.next() => through_the_daemon(engine, sibling, signal).await,
            state = engine.inspect_state(&sibling.id) => break state.classify(Failure::Software)?,
        }
    };
    Ok(match &state {
        Some(s) if s.running == Some(true) => {
            Some(s.pid.and_then(HostPid::new).ok_or_else(|| {
                fail(
                    Failure::Software,
                    format!(
                        "Docker reports container {} running without a pid",
                        sibling.name
                    ),
                )
            })?)
        }
        // Not running: it ran and exited before its pid could be read; its status is on its
        // way through the wait, and no pid of it is ever checkpointed.
        _ => None,
    })
}

/// Waits, a bounded time, for the exit of a sibling whose pid (`check`: as judged here) could
/// not be held; then fails saying why the pid was not confirmed.
async fn exit_of_unconfirmed<E: SiblingEngine, P>(
    engine: &E,
    sibling: &Sibling,
    exit: &mut ExitWait,
    plan: &LaunchPlan,
    signals: &mut (impl Stream<Item = Signal> + Unpin),
    check: Option<(HostPid, PidCheck)>,
) -> Result<Started<P>, ShimError> {
    let deadline = tokio::time::sleep(UNCONFIRMED_PID_PATIENCE);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            biased;
            waited = &mut *exit => return exit_status(sibling, waited, plan).map(Started::Exited),
            Some(signal) = signals.next() => through_the_daemon(engine, sibling, signal).await,
            () = &mut deadline => {
                // A daemon slow to report exits (hundreds at once) is no misconfiguration.
                if let Some(exit) = recorded_already(plan) {
                    return Ok(Started::Exited(exit));
                }
                return Err(match check {
                    Some((pid, PidCheck::Foreign(cgroup))) => fail(
                        Failure::Software,
                        format!("pid {pid} reported for {} runs in cgroup {cgroup}, not in that container", sibling.name),
                    ),
                    Some((pid, _)) => fail(
                        Failure::Config,
                        format!("the executor's host pid {pid} is not visible here: {PID_HOST_NEEDED}"),
                    ),
                    None => fail(Failure::Software, format!("container {} stopped, but its exit never came", sibling.name)),
                })
            }
        }
    }
}

/// Starts copying the executor's output from the sibling's init (host pid `pid`) to the shim's
/// stdout and stderr; `None` where it cannot (the init then writes the sandbox files itself,
/// once it sees the shim gone).
fn output_pump(
    pid: HostPid,
    process: &impl SiblingProcess,
    sibling: &Sibling,
) -> Option<PumpThread> {
    if !sibling.created_here {
        // An adopted sibling's init reads for the shim that made it, which is gone.
        return None;
    }
    let held = process
        .duplicate_handle()
        .inspect_err(|e| tracing::warn!(error = %e, "cannot hold the sibling's init twice"))
        .ok()?;
    PumpThread::start(pid.get(), held)
        .inspect_err(|e| tracing::warn!(error = %e, "cannot start copying the executor's output"))
        .ok()
}

/// A signal for a sibling whose process is not held yet: through the daemon, which delivers it
/// to the sibling's init.
async fn through_the_daemon<E: SiblingEngine>(engine: &E, sibling: &Sibling, signal: Signal) {
    let route = Route::Daemon {
        container: &sibling.name,
    };
    route.announce(signal);
    if let Err(e) = engine.kill(&sibling.id, signal).await {
        // A sibling that is gone or stopped refuses; its exit reaches the wait.
        route.refused(format!("{e:#}"));
    }
}

/// The status of an exit seen through the daemon's wait: the init's record if it made one,
/// else the code Docker reports (the init's, which is the executor's).
fn exit_status(
    sibling: &Sibling,
    waited: Result<i64, WaitError>,
    plan: &LaunchPlan,
) -> Result<ExecutorExit, ShimError> {
    if let Ok(Some(record)) = read_exit_record(plan) {
        tracing::info!(
            container = sibling.name,
            status = record.status,
            "executor exited"
        );
        return Ok(ExecutorExit::from_record(&record));
    }
    let code = waited.map_err(|e| {
        fail(
            Failure::Software,
            format!(
                "lost the daemon while launching {}: {e}; gc removes what is left",
                sibling.name
            ),
        )
    })?;
    tracing::info!(container = sibling.name, code, "executor exited");
    Ok(ExecutorExit::status(exit_status_from_docker(code)))
}

/// The executor has exited (or its launch failed): the status to leave with, once the sibling is
/// removed if the daemon answers within [`FINISH_PATIENCE`]. `recorded`: the status the init
/// recorded; without one (the init itself was killed) the daemon's, else 137.
async fn finish<E: SiblingEngine>(
    connect: &impl AsyncFn() -> Result<E, ShimError>,
    sibling: &Sibling,
    recorded: Option<ExecutorExit>,
) -> ExecutorExit {
    if let (Some(status), true) = (recorded, sibling.auto_removed) {
        // The daemon removes it by itself: a waiting shim never needs the daemon again.
        return status;
    }
    let finished = tokio::time::timeout(FINISH_PATIENCE, async {
        let engine = connect().await?;
        // The daemon's word once the container has stopped (an inspect made while a removal is
        // under way still reads 0).
        let said = match engine.wait(&sibling.id, WaitFor::NotRunning).await {
            Ok(exit) => exit.await.map(exit_status_from_docker).ok(),
            Err(_) => None,
        };
        let status = match (recorded, said) {
            (Some(recorded), said) => checked_against_daemon(sibling, recorded, said),
            (None, Some(said)) => ExecutorExit::status(said),
            // Gone already: a kill, as for SIGKILL.
            (None, None) => {
                tracing::warn!(container = sibling.name, "the executor's status is unknown (its init left no record and the container is gone): reported as a kill");
                ExecutorExit::unknown()
            }
        };
        if let Err(e) = engine.remove(&sibling.id).await {
            tracing::warn!(container = sibling.name, error = %format!("{e:#}"), "could not remove the sibling; the next launch on this host or gc will");
        }
        Ok::<ExecutorExit, ShimError>(status)
    })
    .await;
    match finished {
        Ok(Ok(status)) => status,
        outcome => {
            let why = match outcome {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer within {}s", FINISH_PATIENCE.as_secs()),
            };
            tracing::warn!(
                container = sibling.name,
                reason = why,
                "the daemon is away: the next launch on this host, or gc, removes the sibling"
            );
            recorded.unwrap_or_else(|| {
                tracing::error!(container = sibling.name, "the executor's status is unknown (its init left no record, and the daemon is away): reported as a kill");
                ExecutorExit::unknown()
            })
        }
    }
}

/// The record in the sandbox, which the task writes, against the daemon's word: the init leaves
/// with the status it records, so the two agree unless the record is not the init's (a task that
/// killed its init and left a record of its own). Then the daemon's is taken.
fn checked_against_daemon(
    sibling: &Sibling,
    recorded: ExecutorExit,
    said: Option<u8>,
) -> ExecutorExit {
    match said {
        Some(said) if said != recorded.status => {
            tracing::warn!(
                container = sibling.name,
                recorded = recorded.status,
                daemon = said,
                "the exit record disagrees with the status the daemon saw the sibling's init leave with: \
                 not the init's record; going by the daemon"
            );
            ExecutorExit::status(said)
        }
        _ => recorded,
    }
}

/// The exit this sibling's init has recorded already, if any: any record of an earlier sibling
/// of the run was removed before the create, so one there now is this one's (see
/// [`forget_earlier_record`]). An executor that exits at once is gone before its pid can be
/// confirmed, and its init's record tells so without waiting for the daemon.
fn recorded_already(plan: &LaunchPlan) -> Option<ExecutorExit> {
    let record = read_exit_record(plan).ok()??;
    tracing::info!(status = record.status, "executor exited");
    Some(ExecutorExit::from_record(&record))
}

fn read_exit_record(plan: &LaunchPlan) -> io::Result<Option<ExitRecord>> {
    read_exit_record_at(&plan.exit_record)
}

/// The sibling's init records the exit as the user the sibling runs as: the shim's own (see
/// [`crate::relay::prepare`]).
fn read_exit_record_at(path: &std::path::Path) -> io::Result<Option<ExitRecord>> {
    ExitRecord::read(path, nix::unistd::getuid().as_raw())
}

/// Removes a sibling this shim made for a launch that failed: it must not outlive the failure.
async fn remove_failed_launch<E: SiblingEngine>(engine: &E, sibling: &Sibling) {
    if !sibling.created_here {
        return;
    }
    if let Err(e) = engine.remove(&sibling.id).await {
        tracing::error!(container = sibling.name, error = %format!("{e:#}"), "could not remove the sibling of a failed launch; gc will");
    }
}

/// A launch called off by a signal: whatever this shim made goes. A create may have reached the
/// daemon before the signal, so the name is looked up; only a container this very shim made
/// (its identity label) is removed, never one of this run that another shim started.
async fn remove_called_off_sibling<E: SiblingEngine>(engine: &E, spec: &SiblingSpec) {
    let mine = spec.labels.get(labels::LABEL_SHIM);
    let removed = tokio::time::timeout(FINISH_PATIENCE, async {
        let Some(container) = engine.inspect(&spec.name).await? else {
            return Ok(());
        };
        let theirs = container
            .config
            .and_then(|c| c.labels)
            .and_then(|l| l.get(labels::LABEL_SHIM).cloned());
        if mine.is_some() && theirs.as_ref() == mine {
            engine.remove(&spec.name).await?;
        }
        Ok::<(), anyhow::Error>(())
    })
    .await;
    match removed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(container = spec.name, error = %format!("{e:#}"), "could not check for a sibling of the called-off launch; gc will")
        }
        Err(_) => tracing::warn!(
            container = spec.name,
            "the daemon did not answer; gc removes a sibling of the called-off launch"
        ),
    }
}

#[cfg(test)]
mod tests;
