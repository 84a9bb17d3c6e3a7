//! The relay: one executor launch, from the agent's fork to the executor's exit.
//!
//! 1. Read the run from `MESOS_DIRECTORY` and refuse anything malformed before touching anything.
//! 2. Reach Docker, find the agent container (its image and mounts), make sure the image is there.
//! 3. Create and start `executor-mesos-<CID>` (or adopt a running one), and confirm its host pid.
//! 4. With checkpointing, point the agent's `forked.pid` at that pid, and keep it there.
//! 5. Forward signals to the executor and exit with its status once it has exited.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use futures_util::{Stream, StreamExt};
use nix::sys::signal::Signal;

use crate::config::{PausePoint, Settings};
use crate::error::{exit_status_from_docker, fail, Classify, Failure, ShimError};
use crate::mesos::checkpoint::{self, HostPid, PidFile, PidFileWatch};
use crate::mesos::layout::{IdVariables, RunLayout};
use crate::sibling::discover::{check_pid_belongs_to, process_identity, AgentContainer, PidCheck};
use crate::sibling::engine::{is_not_found, Engine};
use crate::sibling::spec::{self, ExistingPlan, SiblingSpec};

/// How long a launch waits for an unreachable daemon before failing (the task fails fast and
/// says why, rather than hanging until the agent's executor registration timeout).
pub const DOCKER_PATIENCE: Duration = Duration::from_secs(8);
/// How often the launch looks for the agent's own forked.pid while it waits for it.
const FORKED_PID_POLL: Duration = Duration::from_millis(20);

/// What the agent handed the shim.
pub struct Launch {
    pub executor_args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub settings: Settings,
}

impl Launch {
    fn var(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.to_str().map(str::to_string))
    }
}

/// The UTF-8 part of an environment, for settings lookups.
pub fn env_map(env: &[(OsString, OsString)]) -> BTreeMap<String, String> {
    env.iter()
        .filter_map(|(k, v)| Some((k.to_str()?.to_string(), v.to_str()?.to_string())))
        .collect()
}

/// The sibling this shim looks after.
struct Sibling {
    id: String,
    name: String,
    /// This host's clock when the shim started it (the daemon runs here): the lower bound of the
    /// window searched for its exit event, which starts a second earlier.
    started_unix: i64,
    created_here: bool,
}

/// Runs the launch and returns the exit status to leave with: the executor's own.
/// `signals` carries the signals the shim received, to be passed on to the executor.
pub async fn run(
    launch: Launch,
    signals: impl Stream<Item = Signal> + Unpin,
) -> Result<u8, ShimError> {
    let run = read_run(&launch)?;
    let checkpointing = launch.var("MESOS_CHECKPOINT").as_deref() == Some("1");
    let args: Vec<String> = launch
        .executor_args
        .iter()
        .map(|a| a.to_str().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| {
            fail(
                Failure::Usage,
                "an executor argument is not valid UTF-8, which the Docker API cannot carry",
            )
        })?;
    tracing::info!(
        container_id = run.container_id,
        executor_id = run.executor_id,
        framework_id = run.framework_id,
        checkpointing,
        "relaying executor launch to a sibling container"
    );

    let settings = &launch.settings;
    let engine = Arc::new(Engine::connect(&settings.docker_host, DOCKER_PATIENCE).await?);
    let agent = AgentContainer::discover(&engine)
        .await
        .classify(Failure::Unavailable)?;
    let spec = build_spec(&launch, &run, args, agent.as_ref())?;
    engine.ensure_image(&spec.image).await?;

    let sibling = create_or_adopt(&engine, &run, &spec).await?;
    let mut wait = spawn_wait(&engine, &sibling.id);
    let pid = match confirm_pid(&engine, &sibling).await {
        Ok(pid) => pid,
        Err(e) => {
            discard(&engine, &sibling).await;
            return Err(e);
        }
    };
    tracing::info!(
        container = sibling.name,
        host_pid = pid.map(HostPid::get),
        "sibling running"
    );

    // The checkpoint is written while the wait is already in flight, so a quick exit is not missed.
    let forked_pid = run.forked_pid_path();
    let mut pending_checkpoint = match (checkpointing, pid) {
        (true, Some(pid)) => Some(Box::pin(checkpoint_sibling(
            forked_pid.clone(),
            pid,
            sibling.id.clone(),
            settings.forked_pid_timeout,
            settings.pause_at,
        ))),
        _ => None,
    };
    let mut watch: Option<PidFileWatch> = None;
    let mut signals = signals;
    let mut wait_failures = 0u32;

    loop {
        tokio::select! {
            exit = &mut wait => {
                match exit.expect("wait task never panics") {
                    Ok(code) => {
                        tracing::info!(container = sibling.name, code, "executor exited");
                        return Ok(exit_status_from_docker(code));
                    }
                    Err(e) if is_not_found(&e) => return Ok(exit_after_removal(&engine, &sibling).await),
                    Err(e) => {
                        // The daemon went away under the wait (restart, socket hiccup): the executor
                        // may well still be running, so keep waiting instead of leaving it unwatched.
                        wait_failures += 1;
                        let delay = Duration::from_millis(250 * u64::from(wait_failures.min(20)));
                        tracing::warn!(container = sibling.name, error = %e, retry_in = ?delay, "lost the wait on the sibling; waiting again");
                        tokio::time::sleep(delay).await;
                        wait = spawn_wait(&engine, &sibling.id);
                    }
                }
            }
            Some(signal) = signals.next() => {
                tracing::info!(container = sibling.name, signal = signal.as_str(), "forwarding signal to the executor");
                if let Err(e) = engine.kill(&sibling.id, signal.as_str()).await {
                    // A sibling that is gone or stopped answers 404/409; its exit reaches the wait.
                    tracing::warn!(container = sibling.name, error = %e, "could not forward signal");
                }
            }
            written = async { pending_checkpoint.as_mut().expect("guarded").await }, if pending_checkpoint.is_some() => {
                pending_checkpoint = None;
                match written {
                    Ok(w) => watch = Some(w),
                    Err(e) => {
                        discard(&engine, &sibling).await;
                        return Err(e);
                    }
                }
            }
            changed = async { watch.as_mut().expect("guarded").changed().await }, if watch.is_some() => {
                if let Err(e) = changed.and_then(|()| keep_checkpoint(&forked_pid, pid, &sibling.id, None)) {
                    tracing::warn!(path = %forked_pid.display(), error = %e, "no longer guarding forked.pid");
                    watch = None;
                }
            }
        }
    }
}

fn read_run(launch: &Launch) -> Result<RunLayout, ShimError> {
    let sandbox = launch.env.iter().find(|(k, _)| k == "MESOS_DIRECTORY").map(|(_, v)| v.clone()).ok_or_else(|| {
        fail(
            Failure::Usage,
            "MESOS_DIRECTORY is not set: the shim relays a Mesos executor launch and must be started by a \
             Mesos agent (or with the sandbox path in MESOS_DIRECTORY)",
        )
    })?;
    let ids = IdVariables {
        agent_id: launch.var("MESOS_SLAVE_ID"),
        agent_id_new: launch.var("MESOS_AGENT_ID"),
        framework_id: launch.var("MESOS_FRAMEWORK_ID"),
        executor_id: launch.var("MESOS_EXECUTOR_ID"),
    };
    RunLayout::from_sandbox(&sandbox, &ids).classify(Failure::Usage)
}

/// Fills in what depends on where the shim runs: image, host paths, user.
fn build_spec(
    launch: &Launch,
    run: &RunLayout,
    args: Vec<String>,
    agent: Option<&AgentContainer>,
) -> Result<SiblingSpec, ShimError> {
    let settings = &launch.settings;
    let mut spec = SiblingSpec::new(run, settings);
    spec.executor_args = args;
    spec.image = match (&settings.image, agent) {
        (Some(image), _) => image.clone(),
        (None, Some(agent)) => agent.image.clone(),
        (None, None) => {
            return Err(fail(
                Failure::Config,
                "no executor image is configured and the shim is not running in a Docker container whose image \
                 it could use: set EXECUTOR_SHIM_IMAGE or \"image\" in the configuration file",
            ))
        }
    };
    spec.work_dir_host = match (&settings.work_dir_host, agent) {
        (Some(path), _) => path.clone(),
        (None, None) => run.work_dir.clone(),
        (None, Some(agent)) => agent.host_path_for(&run.work_dir).ok_or_else(|| {
            fail(
                Failure::Config,
                format!(
                    "the agent's work_dir {} is not mounted from the host into the agent container, so a sibling \
                     container cannot share it: start the agent with -v {0}:{0}, or set EXECUTOR_SHIM_WORK_DIR_HOST \
                     to its host path",
                    run.work_dir.display()
                ),
            )
        })?,
    };
    spec.docker_socket_host = settings
        .docker_host
        .strip_prefix("unix://")
        .map(PathBuf::from)
        .map(|socket| {
            agent
                .and_then(|a| a.host_path_for(&socket))
                .unwrap_or(socket)
        });
    let (env, not_utf8) = spec::executor_environment(&launch.env, &spec.name);
    if !not_utf8.is_empty() {
        tracing::warn!(variables = ?not_utf8, "not forwarding variables that are not UTF-8");
    }
    spec.env = env;
    if let Some(identity) = process_identity(std::process::id()) {
        spec.labels.insert(spec::LABEL_SHIM.to_string(), identity);
    }
    spec.user = format!("{}:{}", nix::unistd::getuid(), nix::unistd::getgid());
    Ok(spec)
}

async fn create_or_adopt(
    engine: &Engine,
    run: &RunLayout,
    spec: &SiblingSpec,
) -> Result<Sibling, ShimError> {
    let existing = engine
        .inspect_container(&spec.name)
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
        if !spec::labels_match_run(&labels, run) {
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
    let now = unix_now();
    match plan {
        ExistingPlan::Adopt => {
            let id = existing
                .and_then(|c| c.id)
                .unwrap_or_else(|| spec.name.clone());
            tracing::info!(
                container = spec.name,
                "adopting the running sibling of this run instead of starting a second executor"
            );
            return Ok(Sibling {
                id,
                name: spec.name.clone(),
                started_unix: now,
                created_here: false,
            });
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
    pause_if(spec.settings.pause_at, PausePoint::BeforeCreate);
    let id = engine
        .create(&spec.name, spec.create_body())
        .await
        .classify(Failure::Software)?;
    let sibling = Sibling {
        id,
        name: spec.name.clone(),
        started_unix: now,
        created_here: true,
    };
    pause_if(spec.settings.pause_at, PausePoint::BeforeStart);
    if let Err(e) = engine.start(&sibling.id).await {
        discard(engine, &sibling).await;
        return Err(ShimError {
            failure: Failure::Software,
            error: e,
        });
    }
    Ok(sibling)
}

/// Reads the sibling's host pid and confirms it is the sibling's. `None`: it has exited already.
async fn confirm_pid(engine: &Engine, sibling: &Sibling) -> Result<Option<HostPid>, ShimError> {
    let info = engine
        .inspect_container(&sibling.id)
        .await
        .classify(Failure::Software)?;
    let Some(state) = info.and_then(|c| c.state) else {
        return Ok(None);
    };
    if state.running != Some(true) {
        return Ok(None);
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
    match check_pid_belongs_to(pid.get(), &sibling.id) {
        PidCheck::Confirmed => Ok(Some(pid)),
        PidCheck::NotVisible => Err(fail(
            Failure::Config,
            format!(
                "the executor's host pid {pid} is not visible from the agent container, so the agent could not \
                 follow it: run the agent container with --pid=host"
            ),
        )),
        PidCheck::Foreign(cgroup) => Err(fail(
            Failure::Software,
            format!("pid {pid} reported for {} runs in cgroup {cgroup}, not in that container", sibling.name),
        )),
    }
}

/// Waits (bounded) for the agent's own forked.pid, replaces it with the sibling's pid, verifies
/// it, and returns a watch on it. Without the agent's file after the wait, it is written anyway
/// if the agent made its directory: a later write by an old agent is then undone by the guard.
async fn checkpoint_sibling(
    path: PathBuf,
    pid: HostPid,
    container_id: String,
    timeout: Duration,
    pause_at: Option<PausePoint>,
) -> Result<PidFileWatch, ShimError> {
    let found = checkpoint::wait_for_pid_file(&path, timeout, FORKED_PID_POLL)
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
    let watch = PidFileWatch::new(&path)
        .map_err(|e| anyhow!("watching {}: {e}", dir.display()))
        .classify(Failure::Software)?;
    pause_if(pause_at, PausePoint::BeforeCheckpoint);
    keep_checkpoint(&path, Some(pid), &container_id, pause_at).classify(Failure::Software)?;
    tracing::info!(path = %path.display(), host_pid = pid.get(), "forked.pid now names the sibling");
    pause_if(pause_at, PausePoint::AfterCheckpoint);
    Ok(watch)
}

/// Makes forked.pid hold the sibling's pid, if that pid is still the sibling's; verifies by
/// reading it back.
fn keep_checkpoint(
    path: &std::path::Path,
    pid: Option<HostPid>,
    container_id: &str,
    pause_at: Option<PausePoint>,
) -> std::io::Result<()> {
    let Some(pid) = pid else { return Ok(()) };
    for _ in 0..3 {
        match checkpoint::read_pid_file(path)? {
            PidFile::Pid(p) if p == pid.get() => return Ok(()),
            other => {
                if check_pid_belongs_to(pid.get(), container_id) != PidCheck::Confirmed {
                    // The executor has exited; its exit is on its way through the wait.
                    return Ok(());
                }
                if other != PidFile::Absent {
                    tracing::info!(path = %path.display(), found = ?other, host_pid = pid.get(), "pointing forked.pid at the sibling");
                }
                let pause = || pause_if(pause_at, PausePoint::DuringCheckpoint);
                checkpoint::write_pid_file_pausing(path, pid, pause).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!(
                            "writing {}: {e}; the previous content is intact",
                            path.display()
                        ),
                    )
                })?;
            }
        }
    }
    match checkpoint::read_pid_file(path)? {
        PidFile::Pid(p) if p == pid.get() => Ok(()),
        other => Err(std::io::Error::other(format!(
            "{} keeps changing (now {other:?})",
            path.display()
        ))),
    }
}

fn spawn_wait(
    engine: &Arc<Engine>,
    id: &str,
) -> tokio::task::JoinHandle<Result<i64, bollard::errors::Error>> {
    let engine = Arc::clone(engine);
    let id = id.to_string();
    tokio::spawn(async move { engine.wait_exit(&id).await })
}

/// The sibling was auto-removed before the wait reached the daemon: its exit is in the event log.
async fn exit_after_removal(engine: &Engine, sibling: &Sibling) -> u8 {
    match engine
        .exit_code_from_events(&sibling.id, sibling.started_unix)
        .await
    {
        Some(code) => exit_status_from_docker(code),
        None => {
            tracing::error!(
                container = sibling.name,
                "the sibling is gone and its exit status is unknown"
            );
            255
        }
    }
}

/// Undoes a launch that failed: a sibling the shim created must not outlive the failure.
async fn discard(engine: &Engine, sibling: &Sibling) {
    if !sibling.created_here {
        return;
    }
    if let Err(e) = engine.remove(&sibling.id).await {
        tracing::error!(container = sibling.name, error = %format!("{e:#}"), "could not remove the sibling of a failed launch; remove it by hand");
    }
}

/// Freezes the shim at `point` when `EXECUTOR_SHIM_PAUSE_AT` names it: fault tests then kill
/// the agent container at exactly that step of the launch. Blocks the whole shim on purpose.
fn pause_if(pause_at: Option<PausePoint>, point: PausePoint) {
    if pause_at == Some(point) {
        tracing::warn!(point = point.name(), "paused by EXECUTOR_SHIM_PAUSE_AT");
        loop {
            std::thread::park();
        }
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
