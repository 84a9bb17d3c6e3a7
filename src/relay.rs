//! The relay: one executor launch, from the agent's fork to the executor's exit.
//!
//! 1. [`Launch::read`]: read the run from `MESOS_DIRECTORY` and refuse anything malformed before
//!    touching anything.
//! 2. [`run`]: reach Docker, find the agent container, decide the sibling's placement (image,
//!    host paths, and the Mesos container's cgroup to join), make sure the image is there.
//! 3. [`supervise`], the state machine, written against [`SiblingEngine`] so that unit tests
//!    drive it without a daemon: create `executor-mesos-<CID>` (or adopt a running one), register
//!    the wait for its exit *before* starting it, start it, confirm its host pid, point the
//!    agent's `forked.pid` at that pid and guard it for a bounded window, forward signals, and
//!    return the executor's exit status.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use nix::sys::signal::Signal;

use crate::config::Settings;
use crate::error::{exit_status_from_docker, fail, Classify, Failure, ShimError};
use crate::failpoint;
use crate::mesos::cgroups::{self, CgroupPlacement, DefaultWhy};
use crate::mesos::checkpoint::{self, ForkedPidGuard, HostPid, PidFile};
use crate::mesos::executor::{flag, ExecutorKind};
use crate::mesos::layout::{IdVariables, RunLayout};
use crate::sibling::discover::{
    host_pids_visible, process_gone, process_identity, AgentContainer, PidCheck,
};
use crate::sibling::engine::{Engine, ExitWait, SiblingEngine, WaitError, WaitFor};
use crate::sibling::labels;
use crate::sibling::placement::Placement;
use crate::sibling::spec::{self, ExistingPlan, SiblingSpec};

/// How long a launch waits for an unreachable daemon before failing (the task fails fast and
/// says why, rather than hanging until the agent's executor registration timeout).
pub const DOCKER_PATIENCE: Duration = Duration::from_secs(8);
/// How long a sibling that Docker reports running but whose pid cannot be confirmed is given to
/// report its exit. Under load the daemon learns of an exit late: an executor that exited at once
/// still shows as running while its pid is gone. Only if no exit comes is it a misconfiguration.
const UNCONFIRMED_PID_PATIENCE: Duration = Duration::from_secs(30);

/// How long the shim waits, once its sibling has exited, for the runtime to remove the sibling's
/// cgroups before it removes the parents the runtime made.
const CGROUP_CLEANUP_PATIENCE: Duration = Duration::from_secs(10);

const PID_HOST_NEEDED: &str =
    "the agent container does not share the host's PID namespace, so the agent could not \
     follow the executor's host pid: run the agent container with --pid=host";

/// How often the launch looks for the agent's own forked.pid while it waits for it (bounded by
/// `forked_pid_timeout`; a 1.x agent writes it before the shim even starts).
const FORKED_PID_POLL: Duration = Duration::from_millis(20);

/// What the agent handed the shim, validated.
pub struct Launch {
    /// Which executor the agent ran, and where (`argv[0]`).
    pub kind: ExecutorKind,
    pub argv0: OsString,
    pub run: RunLayout,
    pub executor_args: Vec<String>,
    pub env: Vec<(OsString, OsString)>,
    /// `MESOS_CHECKPOINT=1`: the agent checkpoints forked.pid and will look for the executor there.
    pub checkpointing: bool,
}

impl Launch {
    /// Reads the launch; anything malformed is refused (exit 64) before anything is made.
    pub fn read(
        kind: ExecutorKind,
        argv0: OsString,
        args: Vec<OsString>,
        env: Vec<(OsString, OsString)>,
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
            argv0,
            run,
            executor_args,
            env,
            checkpointing,
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

/// Runs the launch and returns the exit status to leave with: the executor's own.
/// `signals` carries the signals the shim received, to be passed on to the executor.
pub async fn run(
    launch: Launch,
    settings: &Settings,
    signals: impl Stream<Item = Signal> + Unpin,
) -> Result<u8, ShimError> {
    let run = &launch.run;
    tracing::info!(
        container_id = run.container_id,
        executor_id = run.executor_id,
        framework_id = run.framework_id,
        checkpointing = launch.checkpointing,
        "relaying executor launch to a sibling container"
    );
    let engine = Engine::connect(&settings.docker_host, DOCKER_PATIENCE).await?;
    let agent = AgentContainer::discover(&engine)
        .await
        .classify(Failure::Unavailable)?;
    if host_pids_visible(agent.as_ref()) == Some(false) {
        return Err(fail(Failure::Config, PID_HOST_NEEDED));
    }
    let mut spec = build_spec(&launch, settings, agent.as_ref())?;
    spec.cgroup_parent = cgroup_parent(&engine, &launch.run, settings).await?;
    engine.ensure_image(&spec.image).await?;
    // Noted before the sibling exists: where its runtime will make the parent cgroup itself.
    let made_for_the_sibling = spec
        .cgroup_parent
        .as_deref()
        .map(|parent| cgroups::hierarchies_without(Path::new(cgroups::V1_MOUNT), parent))
        .unwrap_or_default();
    let outcome = supervise(&engine, run, &spec, launch.checkpointing, signals).await;
    cgroups::remove_when_empty(&made_for_the_sibling, CGROUP_CLEANUP_PATIENCE).await;
    outcome
}

/// Fills in what depends on where the shim runs: image, host paths, user, environment.
fn build_spec(
    launch: &Launch,
    settings: &Settings,
    agent: Option<&AgentContainer>,
) -> Result<SiblingSpec, ShimError> {
    let placement = Placement::resolve(settings, agent, &launch.run.work_dir)
        .complete()
        .classify(Failure::Config)?;
    let mut spec = SiblingSpec::new(&launch.run, settings);
    spec.executor = real_executor(launch, settings);
    spec.executor_args = launch.executor_args.clone();
    if launch.kind == ExecutorKind::Docker {
        // The docker executor runs the task container through the socket its flag names.
        if let Some(socket) = flag(&launch.executor_args, "docker_socket") {
            spec.docker_socket_target = absolute_flag("docker_socket", socket)?;
        }
    }
    spec.image = placement.image;
    spec.work_dir_host = placement.work_dir_host;
    spec.docker_socket_host = placement.docker_socket_host;
    let (env, not_utf8) = spec::executor_environment(&launch.env);
    if !not_utf8.is_empty() {
        tracing::warn!(variables = ?not_utf8, "not forwarding variables that are not UTF-8");
    }
    spec.env = env;
    if let Some(identity) = process_identity(std::process::id()) {
        spec.labels.insert(labels::LABEL_SHIM.to_string(), identity);
    }
    spec.user = format!("{}:{}", nix::unistd::getuid(), nix::unistd::getgid());
    Ok(spec)
}

/// Where the sibling's cgroups go: under the Mesos container's, when the linux launcher put the
/// shim in one and Docker can follow (see [`cgroups`]); otherwise Docker's, said once in the log.
async fn cgroup_parent(
    engine: &Engine,
    run: &RunLayout,
    settings: &Settings,
) -> Result<Option<String>, ShimError> {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    // Docker is asked only when there is a Mesos cgroup to join.
    let driver = if cgroups::mesos_container_cgroup(&own, &run.container_id).is_some() {
        engine
            .cgroup_setup()
            .await
            .classify(Failure::Unavailable)?
            .0
    } else {
        String::new()
    };
    match cgroups::decide(&own, &run.container_id, &driver, settings.mesos_cgroups) {
        CgroupPlacement::UnderMesosContainer { parent } => {
            tracing::info!(
                cgroup_parent = parent,
                "placing the sibling under the Mesos container's cgroup"
            );
            Ok(Some(parent))
        }
        CgroupPlacement::DockerDefault(
            why @ (DefaultWhy::NoMesosCgroup | DefaultWhy::CgroupsV2),
        ) => {
            tracing::info!(reason = %why, "keeping Docker's cgroup placement");
            Ok(None)
        }
        CgroupPlacement::DockerDefault(why) => {
            tracing::warn!(reason = %why, "keeping Docker's cgroup placement: {}", cgroups::DEFAULT_PLACEMENT_MEANS);
            Ok(None)
        }
    }
}

/// The real executor in the sibling's image: the configured path for this executor, else the
/// path the agent ran, which holds the stock executor in an agent image (a bind-mounted shim is
/// not part of the image; a baked one hands over to `<path>.real` in the sibling).
fn real_executor(launch: &Launch, settings: &Settings) -> PathBuf {
    let configured = match launch.kind {
        ExecutorKind::Command => &settings.executor,
        ExecutorKind::Docker => &settings.docker_executor,
    };
    configured
        .clone()
        .unwrap_or_else(|| launch.kind.invoked_path(&launch.argv0))
}

/// A path flag of the executor's, which must be absolute to mean the same in the sibling.
fn absolute_flag(name: &str, value: &str) -> Result<PathBuf, ShimError> {
    let path = PathBuf::from(value);
    if !path.is_absolute() {
        return Err(fail(
            Failure::Usage,
            format!("--{name}={value:?} is not an absolute path; the agent passes absolute paths"),
        ));
    }
    Ok(path)
}

/// The sibling this shim looks after.
struct Sibling {
    id: String,
    name: String,
    /// This host's clock when the shim took it on: where a search of the event log starts.
    since_unix: i64,
    created_here: bool,
}

/// The state machine of one launch, against any [`SiblingEngine`].
pub async fn supervise<E: SiblingEngine>(
    engine: &E,
    run: &RunLayout,
    spec: &SiblingSpec,
    checkpointing: bool,
    mut signals: impl Stream<Item = Signal> + Unpin,
) -> Result<u8, ShimError> {
    let settings = &spec.settings;
    let (sibling, mut exit) = create_or_adopt(engine, run, spec).await?;
    let pid = match sight_pid(engine, &sibling).await {
        Ok(Sighting::Running(pid)) => Some(pid),
        Ok(Sighting::Exited) => None,
        Ok(Sighting::Unconfirmed(pid, check)) => {
            // Its exit decides: an executor that exited shows up here too until the daemon
            // has caught up.
            tracing::info!(
                container = sibling.name,
                host_pid = pid.get(),
                ?check,
                "the sibling's pid cannot be confirmed yet; waiting for its exit"
            );
            if let Ok(waited) = tokio::time::timeout(UNCONFIRMED_PID_PATIENCE, &mut exit).await {
                if let Ok(status) = exit_status(engine, &sibling, waited).await {
                    return Ok(status);
                }
            }
            discard(engine, &sibling).await;
            return Err(unconfirmed(pid, check, &sibling));
        }
        Err(e) => {
            discard(engine, &sibling).await;
            return Err(e);
        }
    };
    match pid {
        Some(pid) => tracing::info!(
            container = sibling.name,
            host_pid = pid.get(),
            "sibling running"
        ),
        // It ran and exited before its pid could be read: its status is on its way through the
        // wait, and no pid of it is ever checkpointed.
        None => tracing::info!(container = sibling.name, "the executor exited at once"),
    }

    let forked_pid = run.forked_pid_path();
    let mut pending_checkpoint = match (checkpointing, pid) {
        (true, Some(pid)) => Some(Box::pin(checkpoint_sibling(
            engine,
            &forked_pid,
            pid,
            &sibling.id,
            settings,
        ))),
        _ => None,
    };
    let mut guard: Option<ForkedPidGuard> = None;
    let mut wait_failures = 0u32;

    loop {
        // Biased: an exit that is already known is taken before anything else, so a sibling
        // that has exited never gets its pid written into forked.pid.
        tokio::select! {
            biased;
            waited = &mut exit => match exit_status(engine, &sibling, waited).await {
                Ok(status) => return Ok(status),
                Err(e) => {
                    // The daemon went away under the wait (restart, socket hiccup): the executor
                    // may well still run, so wait again instead of leaving it unwatched.
                    wait_failures += 1;
                    let delay = Duration::from_millis(250 * u64::from(wait_failures.min(20)));
                    tracing::warn!(container = sibling.name, error = %e, retry_in = ?delay, "lost the wait on the sibling; waiting again");
                    tokio::time::sleep(delay).await;
                    exit = wait_or_failure(engine.wait(&sibling.id, WaitFor::NotRunning).await);
                }
            },
            Some(signal) = signals.next() => {
                tracing::info!(container = sibling.name, signal = signal.as_str(), "forwarding signal to the executor");
                if let Err(e) = engine.kill(&sibling.id, signal).await {
                    // A sibling that is gone or stopped refuses; its exit reaches the wait.
                    tracing::warn!(container = sibling.name, error = %format!("{e:#}"), "could not forward signal");
                }
            }
            written = async { pending_checkpoint.as_mut().expect("guarded").await }, if pending_checkpoint.is_some() => {
                pending_checkpoint = None;
                match written {
                    Ok(g) => guard = Some(g),
                    Err(e) => {
                        discard(engine, &sibling).await;
                        return Err(e);
                    }
                }
            }
            changed = async { guard.as_mut().expect("guarded").changed().await }, if guard.is_some() => {
                let pid = pid.expect("only a checkpointed pid is guarded");
                let outcome = changed.and_then(|changed| match changed {
                    true => keep_checkpoint(engine, &forked_pid, pid, &sibling.id, settings).map(Some),
                    false => Ok(None),
                });
                match outcome {
                    // Something else wrote forked.pid and it was put right: keep watching a while.
                    Ok(Some(true)) => guard.as_mut().expect("guarded").extend(settings.forked_pid_guard),
                    Ok(Some(false)) => {}
                    Ok(None) => {
                        tracing::debug!(path = %forked_pid.display(), "forked.pid guard window closed");
                        guard = None;
                    }
                    Err(e) => {
                        tracing::warn!(path = %forked_pid.display(), error = %e, "no longer guarding forked.pid");
                        guard = None;
                    }
                }
            }
        }
    }
}

/// A registered wait, or its registration's failure as a wait that fails at once.
fn wait_or_failure(registered: Result<ExitWait, WaitError>) -> ExitWait {
    registered.unwrap_or_else(|e| Box::pin(async move { Err(e) }))
}

/// Takes on the sibling of this run: adopts a running one (a relaunch after an agent restart),
/// replaces a stopped one, or creates one; for a new one, the wait is registered before the
/// start, so even an executor that exits the instant it starts is caught.
async fn create_or_adopt<E: SiblingEngine>(
    engine: &E,
    run: &RunLayout,
    spec: &SiblingSpec,
) -> Result<(Sibling, ExitWait), ShimError> {
    let existing = engine
        .inspect(&spec.name)
        .await
        .classify(Failure::Unavailable)?;
    let status = existing
        .as_ref()
        .and_then(|c| c.state.as_ref())
        .and_then(|s| s.status);
    let plan = spec::plan_for_existing(
        existing
            .as_ref()
            .map(|_| status.unwrap_or(bollard::models::ContainerStateStatusEnum::EMPTY)),
    );
    if let Some(container) = &existing {
        let labels = container
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        if !labels::labels_match_run(&labels, run) {
            return Err(fail(
                Failure::Software,
                format!(
                    "a container named {} exists but was not started by the shim for this run; \
                     remove it (docker rm -f {0}) if it is stale",
                    spec.name
                ),
            ));
        }
    }
    let since_unix = unix_now();
    match plan {
        ExistingPlan::Adopt => {
            let id = existing
                .and_then(|c| c.id)
                .unwrap_or_else(|| spec.name.clone());
            tracing::info!(
                container = spec.name,
                "adopting the running sibling of this run instead of starting a second executor"
            );
            let exit = wait_or_failure(engine.wait(&id, WaitFor::NotRunning).await);
            let sibling = Sibling {
                id,
                name: spec.name.clone(),
                since_unix,
                created_here: false,
            };
            return Ok((sibling, exit));
        }
        ExistingPlan::Replace => {
            tracing::info!(
                container = spec.name,
                ?status,
                "removing the stopped leftover sibling of this run"
            );
            engine
                .remove(&spec.name)
                .await
                .classify(Failure::Software)?;
        }
        ExistingPlan::Create => {}
    }
    failpoint!(&spec.settings, BeforeCreate);
    let id = engine
        .create(&spec.name, spec.create_body())
        .await
        .classify(Failure::Software)?;
    let sibling = Sibling {
        id,
        name: spec.name.clone(),
        since_unix,
        created_here: true,
    };
    let exit = match engine.wait(&sibling.id, WaitFor::NextExit).await {
        Ok(exit) => exit,
        Err(e) => {
            discard(engine, &sibling).await;
            return Err(fail(
                Failure::Software,
                format!("cannot wait on container {}: {e}", sibling.name),
            ));
        }
    };
    failpoint!(&spec.settings, BeforeStart);
    if let Err(e) = engine.start(&sibling.id).await {
        discard(engine, &sibling).await;
        return Err(ShimError {
            failure: Failure::Software,
            error: e,
        });
    }
    Ok((sibling, exit))
}

/// What the shim sees of its sibling once started.
#[derive(Debug)]
enum Sighting {
    /// Running as this host pid, confirmed through `/proc`.
    Running(HostPid),
    /// Not running: the executor has already exited.
    Exited,
    /// Docker reports this pid, but `/proc` does not show it as the sibling's.
    Unconfirmed(HostPid, PidCheck),
}

/// Reads the sibling's host pid and confirms it is the sibling's.
async fn sight_pid<E: SiblingEngine>(engine: &E, sibling: &Sibling) -> Result<Sighting, ShimError> {
    let info = engine
        .inspect(&sibling.id)
        .await
        .classify(Failure::Software)?;
    let Some(state) = info.and_then(|c| c.state) else {
        return Ok(Sighting::Exited);
    };
    if state.running != Some(true) {
        return Ok(Sighting::Exited);
    }
    let pid = state.pid.and_then(HostPid::new).ok_or_else(|| {
        fail(
            Failure::Software,
            format!(
                "Docker reports container {} running without a pid",
                sibling.name
            ),
        )
    })?;
    Ok(match engine.pid_check(pid.get(), &sibling.id) {
        PidCheck::Confirmed => Sighting::Running(pid),
        check => Sighting::Unconfirmed(pid, check),
    })
}

/// The failure of a sibling that runs on, but whose pid is not its own as seen from here.
fn unconfirmed(pid: HostPid, check: PidCheck, sibling: &Sibling) -> ShimError {
    match check {
        PidCheck::Foreign(cgroup) => fail(
            Failure::Software,
            format!(
                "pid {pid} reported for {} runs in cgroup {cgroup}, not in that container",
                sibling.name
            ),
        ),
        _ => fail(
            Failure::Config,
            format!("the executor's host pid {pid} is not visible here: {PID_HOST_NEEDED}"),
        ),
    }
}

/// Waits (bounded) for the agent's own forked.pid, replaces it with the sibling's pid, verifies
/// it, and returns the guard that undoes other writes for a bounded window. Without the agent's
/// file after the wait, it is written anyway if the agent made its directory, and guarded long
/// enough for an old agent's late write to be undone.
async fn checkpoint_sibling<E: SiblingEngine>(
    engine: &E,
    path: &Path,
    pid: HostPid,
    sibling_id: &str,
    settings: &Settings,
) -> Result<ForkedPidGuard, ShimError> {
    let timeout = settings.forked_pid_timeout;
    let found = checkpoint::wait_for_pid_file(path, timeout, FORKED_PID_POLL)
        .await
        .classify(Failure::Software)?;
    if !found {
        tracing::warn!(path = %path.display(), ?timeout, "the agent has not checkpointed forked.pid; writing it for the sibling");
    }
    let dir = path.parent().expect("forked.pid has a directory");
    if !dir.is_dir() {
        return Err(fail(
            Failure::Software,
            format!(
                "checkpointing is on (MESOS_CHECKPOINT=1) but the agent's directory {} does not exist after {:?}; \
                 check that the shim sees the agent's work_dir at the same path, or raise forked_pid_timeout",
                dir.display(),
                timeout
            ),
        ));
    }
    let window = if found {
        settings.forked_pid_guard
    } else {
        timeout.max(settings.forked_pid_guard)
    };
    let guard = ForkedPidGuard::new(path, window);
    failpoint!(settings, BeforeCheckpoint);
    keep_checkpoint(engine, path, pid, sibling_id, settings).classify(Failure::Software)?;
    tracing::info!(path = %path.display(), host_pid = pid.get(), "forked.pid now names the sibling");
    failpoint!(settings, AfterCheckpoint);
    Ok(guard)
}

/// Makes forked.pid hold the sibling's pid, as long as that pid is still the sibling's, and
/// verifies it by reading it back. Returns whether it had to write.
fn keep_checkpoint<E: SiblingEngine>(
    engine: &E,
    path: &Path,
    pid: HostPid,
    sibling_id: &str,
    settings: &Settings,
) -> std::io::Result<bool> {
    // The relay sees host pids (it has just confirmed the sibling's), so a writer that is
    // missing here is gone.
    checkpoint::remove_stale_temp_files(path, |writer| process_gone(writer, true));
    let mut wrote = false;
    for _ in 0..3 {
        match checkpoint::read_pid_file(path)? {
            PidFile::Pid(p) if p == pid.get() => return Ok(wrote),
            other => {
                if engine.pid_check(pid.get(), sibling_id) != PidCheck::Confirmed {
                    // The executor has exited; its exit is on its way through the wait.
                    return Ok(wrote);
                }
                if other != PidFile::Absent {
                    tracing::info!(path = %path.display(), found = ?other, host_pid = pid.get(), "pointing forked.pid at the sibling");
                }
                checkpoint::write_pid_file_pausing(path, pid, || {
                    failpoint!(settings, DuringCheckpoint);
                })
                .map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!(
                            "writing {}: {e}; the previous content is intact",
                            path.display()
                        ),
                    )
                })?;
                wrote = true;
            }
        }
    }
    match checkpoint::read_pid_file(path)? {
        PidFile::Pid(p) if p == pid.get() => Ok(wrote),
        other => Err(std::io::Error::other(format!(
            "{} keeps changing (now {other:?})",
            path.display()
        ))),
    }
}

/// What a wait's result means: the status to exit with, or (the wait was lost, the executor may
/// still run) why it must be waited for again.
async fn exit_status<E: SiblingEngine>(
    engine: &E,
    sibling: &Sibling,
    waited: Result<i64, WaitError>,
) -> Result<u8, String> {
    let code = match waited {
        Ok(code) => code,
        Err(WaitError::Lost(e)) => return Err(e),
        // It vanished before its exit could be read (a lost wait while the daemon restarted):
        // the event log may still hold its exit.
        Err(WaitError::NotFound) => {
            match engine
                .exit_code_from_events(&sibling.id, sibling.since_unix)
                .await
            {
                Some(code) => code,
                None => {
                    tracing::error!(
                        container = sibling.name,
                        "the sibling is gone and its exit status is unknown"
                    );
                    return Ok(255);
                }
            }
        }
    };
    tracing::info!(container = sibling.name, code, "executor exited");
    Ok(exit_status_from_docker(code))
}

/// Undoes a launch that failed: a sibling the shim created must not outlive the failure.
async fn discard<E: SiblingEngine>(engine: &E, sibling: &Sibling) {
    if !sibling.created_here {
        return;
    }
    if let Err(e) = engine.remove(&sibling.id).await {
        tracing::error!(container = sibling.name, error = %format!("{e:#}"), "could not remove the sibling of a failed launch; remove it by hand");
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use bollard::models::{
        ContainerConfig, ContainerCreateBody, ContainerInspectResponse, ContainerState,
        ContainerStateStatusEnum as Status,
    };
    use futures_util::stream;
    use tokio::sync::oneshot;

    use super::*;

    /// What the fake executor does once started.
    #[derive(Clone, Copy)]
    enum Executor {
        /// Runs as host `pid` until SIGTERM, which ends it with 143.
        Runs { pid: u32 },
        /// Exits with `code` the instant it starts, before its pid can be read.
        ExitsAtOnce { code: i64 },
        /// Runs as host `pid` and exits with `code` right after it is first inspected: the pid
        /// the shim just read is then gone.
        ExitsAfterInspect { pid: u32, code: i64 },
    }

    struct Container {
        id: String,
        name: String,
        labels: HashMap<String, String>,
        status: Status,
        pid: Option<u32>,
        code: Option<i64>,
    }

    type ExitSender = oneshot::Sender<Result<i64, WaitError>>;

    /// An engine in memory: containers, registered waits, and every call in order.
    struct FakeEngine {
        executor: Executor,
        host_pids_visible: bool,
        start_fails: bool,
        containers: RefCell<Vec<Container>>,
        waits: RefCell<Vec<(String, ExitSender)>>,
        calls: RefCell<Vec<String>>,
    }

    impl FakeEngine {
        fn new(executor: Executor) -> Self {
            FakeEngine {
                executor,
                host_pids_visible: true,
                start_fails: false,
                containers: RefCell::new(Vec::new()),
                waits: RefCell::new(Vec::new()),
                calls: RefCell::new(Vec::new()),
            }
        }

        fn call(&self, call: String) {
            self.calls.borrow_mut().push(call);
        }

        fn calls(&self) -> Vec<String> {
            self.calls.borrow().clone()
        }

        fn exit(&self, id: &str, code: i64) {
            if let Some(c) = self.containers.borrow_mut().iter_mut().find(|c| c.id == id) {
                c.status = Status::EXITED;
                c.code = Some(code);
            }
            let waits = std::mem::take(&mut *self.waits.borrow_mut());
            for (waited, tx) in waits {
                if waited == id {
                    let _ = tx.send(Ok(code));
                } else {
                    self.waits.borrow_mut().push((waited, tx));
                }
            }
        }
    }

    impl SiblingEngine for FakeEngine {
        async fn inspect(&self, name: &str) -> anyhow::Result<Option<ContainerInspectResponse>> {
            let found = self
                .containers
                .borrow()
                .iter()
                .find(|c| c.id == name || c.name == name)
                .map(|c| ContainerInspectResponse {
                    id: Some(c.id.clone()),
                    config: Some(ContainerConfig {
                        labels: Some(c.labels.clone()),
                        ..Default::default()
                    }),
                    state: Some(ContainerState {
                        status: Some(c.status),
                        running: Some(c.status == Status::RUNNING),
                        pid: c.pid.map(i64::from),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
            if let (Some(c), Executor::ExitsAfterInspect { code, .. }) = (&found, self.executor) {
                if c.state.as_ref().and_then(|s| s.running) == Some(true) {
                    self.exit(c.id.as_deref().unwrap(), code);
                }
            }
            Ok(found)
        }

        async fn create(&self, name: &str, body: ContainerCreateBody) -> anyhow::Result<String> {
            self.call(format!("create {name}"));
            let id = format!("id-{}", self.containers.borrow().len());
            self.containers.borrow_mut().push(Container {
                id: id.clone(),
                name: name.to_string(),
                labels: body.labels.unwrap_or_default(),
                status: Status::CREATED,
                pid: None,
                code: None,
            });
            Ok(id)
        }

        async fn wait(&self, id: &str, condition: WaitFor) -> Result<ExitWait, WaitError> {
            self.call(format!("wait {id} {}", condition.condition()));
            let state = self
                .containers
                .borrow()
                .iter()
                .find(|c| c.id == id)
                .map(|c| (c.status, c.code));
            match state {
                None => Err(WaitError::NotFound),
                Some((Status::EXITED, Some(code))) if condition == WaitFor::NotRunning => {
                    Ok(Box::pin(async move { Ok(code) }))
                }
                Some(_) => {
                    let (tx, rx) = oneshot::channel();
                    self.waits.borrow_mut().push((id.to_string(), tx));
                    Ok(Box::pin(async move {
                        rx.await
                            .unwrap_or_else(|_| Err(WaitError::Lost("dropped".into())))
                    }))
                }
            }
        }

        async fn start(&self, id: &str) -> anyhow::Result<()> {
            self.call(format!("start {id}"));
            if self.start_fails {
                anyhow::bail!("starting container {id}: no such image layer");
            }
            let pid = match self.executor {
                Executor::Runs { pid } | Executor::ExitsAfterInspect { pid, .. } => Some(pid),
                Executor::ExitsAtOnce { .. } => None,
            };
            if let Some(c) = self.containers.borrow_mut().iter_mut().find(|c| c.id == id) {
                c.status = Status::RUNNING;
                c.pid = pid;
            }
            if let Executor::ExitsAtOnce { code } = self.executor {
                self.exit(id, code);
            }
            Ok(())
        }

        async fn kill(&self, id: &str, signal: Signal) -> anyhow::Result<()> {
            self.call(format!("kill {id} {}", signal.as_str()));
            if signal == Signal::SIGTERM {
                self.exit(id, 143);
            }
            Ok(())
        }

        async fn remove(&self, id: &str) -> anyhow::Result<()> {
            self.call(format!("remove {id}"));
            self.containers.borrow_mut().retain(|c| c.id != id);
            Ok(())
        }

        async fn exit_code_from_events(&self, _id: &str, _since_unix: i64) -> Option<i64> {
            None
        }

        fn pid_check(&self, pid: u32, id: &str) -> PidCheck {
            let running = self
                .containers
                .borrow()
                .iter()
                .any(|c| c.id == id && c.status == Status::RUNNING && c.pid == Some(pid));
            if self.host_pids_visible && running {
                PidCheck::Confirmed
            } else {
                PidCheck::NotVisible
            }
        }
    }

    /// A run under a temp work_dir whose agent checkpointed its own forked pid, 4242.
    struct Setup {
        _dir: tempfile::TempDir,
        run: RunLayout,
        spec: SiblingSpec,
    }

    const AGENTS_PID: &str = "4242";

    fn setup(with_pids_dir: bool) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = dir
            .path()
            .join("slaves/S0/frameworks/F1/executors/app.1/runs/C-1");
        let run = RunLayout::from_sandbox(sandbox.as_os_str(), &IdVariables::default()).unwrap();
        if with_pids_dir {
            std::fs::create_dir_all(run.forked_pid_path().parent().unwrap()).unwrap();
            std::fs::write(run.forked_pid_path(), AGENTS_PID).unwrap();
        }
        let settings = Settings {
            forked_pid_timeout: Duration::from_millis(100),
            ..Settings::default()
        };
        let mut spec = SiblingSpec::new(&run, &settings);
        spec.image = "img".into();
        Setup {
            _dir: dir,
            run,
            spec,
        }
    }

    fn forked_pid(s: &Setup) -> String {
        std::fs::read_to_string(s.run.forked_pid_path()).unwrap()
    }

    /// SIGTERM for the shim, sent once forked.pid names `pid`.
    fn sigterm_once_checkpointed(path: PathBuf, pid: u32) -> impl Stream<Item = Signal> + Unpin {
        Box::pin(stream::once(async move {
            while std::fs::read_to_string(&path).ok() != Some(pid.to_string()) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Signal::SIGTERM
        }))
    }

    fn no_signals() -> impl Stream<Item = Signal> + Unpin {
        stream::pending()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_launch_waits_before_it_starts_checkpoints_forwards_and_exits_with_the_executors_status(
    ) {
        let s = setup(true);
        let engine = FakeEngine::new(Executor::Runs { pid: 777 });
        let signals = sigterm_once_checkpointed(s.run.forked_pid_path(), 777);
        let status = supervise(&engine, &s.run, &s.spec, true, signals)
            .await
            .unwrap();
        assert_eq!(status, 143);
        assert_eq!(forked_pid(&s), "777");
        assert_eq!(
            engine.calls(),
            [
                "create executor-mesos-C-1",
                "wait id-0 next-exit",
                "start id-0",
                "kill id-0 SIGTERM"
            ],
            "the wait is registered before the start"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_executor_that_exits_at_once_reports_its_code_and_is_never_checkpointed() {
        let s = setup(true);
        let engine = FakeEngine::new(Executor::ExitsAtOnce { code: 42 });
        let status = supervise(&engine, &s.run, &s.spec, true, no_signals())
            .await
            .unwrap();
        assert_eq!(status, 42);
        assert_eq!(forked_pid(&s), AGENTS_PID);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_exit_before_the_pid_is_confirmed_is_an_exit_not_a_configuration_error() {
        let s = setup(true);
        let engine = FakeEngine::new(Executor::ExitsAfterInspect { pid: 777, code: 3 });
        let status = supervise(&engine, &s.run, &s.spec, true, no_signals())
            .await
            .unwrap();
        assert_eq!(status, 3);
        assert_eq!(
            forked_pid(&s),
            AGENTS_PID,
            "a gone pid is never checkpointed"
        );
    }

    /// Paused time: the bounded wait for an exit that never comes passes at once.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_running_pid_that_stays_invisible_needs_pid_host_and_the_sibling_is_removed() {
        let s = setup(true);
        let mut engine = FakeEngine::new(Executor::Runs { pid: 777 });
        engine.host_pids_visible = false;
        let e = supervise(&engine, &s.run, &s.spec, true, no_signals())
            .await
            .unwrap_err();
        assert_eq!(e.failure, Failure::Config);
        assert!(e.to_string().contains("--pid=host"), "{e}");
        assert_eq!(engine.calls().last().unwrap(), "remove id-0");
        assert_eq!(forked_pid(&s), AGENTS_PID);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failed_start_removes_the_sibling() {
        let s = setup(true);
        let mut engine = FakeEngine::new(Executor::Runs { pid: 777 });
        engine.start_fails = true;
        let e = supervise(&engine, &s.run, &s.spec, true, no_signals())
            .await
            .unwrap_err();
        assert_eq!(e.failure, Failure::Software);
        assert_eq!(engine.calls().last().unwrap(), "remove id-0");
        assert!(engine.containers.borrow().is_empty());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn without_the_agents_directory_the_launch_fails_and_removes_its_sibling() {
        let s = setup(false);
        let engine = FakeEngine::new(Executor::Runs { pid: 777 });
        let e = supervise(&engine, &s.run, &s.spec, true, no_signals())
            .await
            .unwrap_err();
        assert_eq!(e.failure, Failure::Software);
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert_eq!(engine.calls().last().unwrap(), "remove id-0");
        assert!(!s.run.forked_pid_path().parent().unwrap().exists());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn without_checkpointing_nothing_is_written() {
        let s = setup(true);
        let engine = FakeEngine::new(Executor::Runs { pid: 777 });
        let engine_ref = &engine;
        let exit_later = async {
            // The launch is under way once the sibling started; then the executor finishes.
            while !engine_ref.calls().iter().any(|c| c.starts_with("start")) {
                tokio::task::yield_now().await;
            }
            engine_ref.exit("id-0", 0);
        };
        let (status, ()) = tokio::join!(
            supervise(&engine, &s.run, &s.spec, false, no_signals()),
            exit_later
        );
        assert_eq!(status.unwrap(), 0);
        assert_eq!(forked_pid(&s), AGENTS_PID);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_running_leftover_of_the_run_is_adopted_and_one_of_another_run_refused() {
        let s = setup(true);
        let engine = FakeEngine::new(Executor::Runs { pid: 777 });
        engine.containers.borrow_mut().push(Container {
            id: "old".into(),
            name: s.spec.name.clone(),
            labels: s.spec.labels.clone(),
            status: Status::RUNNING,
            pid: Some(555),
            code: None,
        });
        let signals = sigterm_once_checkpointed(s.run.forked_pid_path(), 555);
        let status = supervise(&engine, &s.run, &s.spec, true, signals)
            .await
            .unwrap();
        assert_eq!(status, 143);
        assert_eq!(
            engine.calls(),
            ["wait old not-running", "kill old SIGTERM"],
            "no second executor"
        );

        let stranger = FakeEngine::new(Executor::Runs { pid: 777 });
        stranger.containers.borrow_mut().push(Container {
            id: "other".into(),
            name: s.spec.name.clone(),
            labels: HashMap::new(),
            status: Status::RUNNING,
            pid: Some(555),
            code: None,
        });
        let e = supervise(&stranger, &s.run, &s.spec, true, no_signals())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("was not started by the shim"), "{e}");
        assert!(stranger.calls().is_empty(), "nothing done to a stranger");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_lost_wait_is_registered_again() {
        let s = setup(true);
        let engine = FakeEngine::new(Executor::Runs { pid: 777 });
        let engine_ref = &engine;
        let path = s.run.forked_pid_path();
        let drive = async {
            while std::fs::read_to_string(&path).ok().as_deref() != Some("777") {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // The daemon restarts: the registered wait is dropped.
            engine_ref.waits.borrow_mut().clear();
            while engine_ref
                .calls()
                .iter()
                .filter(|c| c.starts_with("wait"))
                .count()
                < 2
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            engine_ref.exit("id-0", 9);
        };
        let (status, ()) = tokio::join!(
            supervise(&engine, &s.run, &s.spec, true, no_signals()),
            drive
        );
        assert_eq!(status.unwrap(), 9);
        assert_eq!(
            engine.calls()[1..],
            ["wait id-0 next-exit", "start id-0", "wait id-0 not-running"]
        );
    }
}
