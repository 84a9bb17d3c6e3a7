//! `run` (and the binary invoked as `mesos-executor` or `mesos-docker-executor`): relay one
//! executor launch.

use std::ffi::OsString;

use crate::config;
use crate::error::{fail, Failure, ShimError};
use crate::launch_env::LaunchEnv;
use crate::mesos::executor::{executor_to_run, ExecutorKind};
use crate::relay::{self, executor_container, launch};

/// What a failure of the relay is called in its log.
const LAUNCH: &str = "launch";

/// Relays a launch of the executor `kind`; `args` are the executor's arguments. Returns how to
/// leave: with the executor's status, or of the signal that killed it.
/// `env` is the launch environment, taken as data (see [`crate::launch_env`]): this process's
/// own is empty.
pub fn relay_main(kind: ExecutorKind, args: Vec<OsString>, env: LaunchEnv) -> super::Leave {
    match relay(kind, args, env) {
        Ok(relay::Outcome::Exited(exit)) => super::Leave::exit(exit),
        Ok(relay::Outcome::HandedOver(handover)) => super::Leave::Wait(handover),
        Err(status) => super::Leave::Status(status),
    }
}

/// The relay; `Err` carries the status of a failure already reported.
fn relay(kind: ExecutorKind, args: Vec<OsString>, env: LaunchEnv) -> Result<relay::Outcome, u8> {
    relay_launch(kind, args, env).map_err(|e| super::report(LAUNCH, Err(e)))
}

/// The relay, step by step; any failure is reported once by [`relay`].
fn relay_launch(
    kind: ExecutorKind,
    args: Vec<OsString>,
    env: LaunchEnv,
) -> Result<relay::Outcome, ShimError> {
    // Before any thread exists, so that every thread inherits the mask (see relay::signals).
    relay::signals::block_forwarded().map_err(|e| {
        fail(
            Failure::Software,
            format!("cannot block the forwarded signals: {e}"),
        )
    })?;
    // First of all, while the agent that ran this binary is certainly its parent.
    let origin = launch::Origin::read();
    if super::in_sibling()? {
        // This binary is the executor image's executor (a baked image), run inside a sibling:
        // a relay never starts a relay, so hand over to the stock executor.
        return Err(hand_over_to_stock_executor(args, &env));
    }
    if let Some(failure) = stock_in_executor_container(kind, &origin, &env, &args) {
        return Err(failure);
    }
    append_to_sandbox_files();
    let exec_path = crate::proc::exec_path();
    let launch = relay::Launch::read(kind, exec_path, args, env, origin)?;
    let settings = settings_for(&launch)?;
    say_what_the_launch_is(&launch, &settings);
    let obstacles = relay::handback::obstacles(&launch);
    if !obstacles.is_empty() {
        return Err(relay::handback::hand_back_or_refuse(
            &launch, &settings, &obstacles,
        ));
    }
    crate::runtime::current_thread()?.block_on(async {
        let signals = relay::signals::forwarded_stream().map_err(|e| {
            fail(
                Failure::Software,
                format!("cannot read the forwarded signals: {e}"),
            )
        })?;
        relay::run(launch, &settings, signals).await
    })
}

/// The operator's settings for this launch, from the fixed file only, with the log they set up;
/// a run outside the work_dir the file names is refused.
fn settings_for(launch: &relay::Launch) -> Result<config::Settings, ShimError> {
    let loaded = config::load_for_relay(&launch.run.work_dir).map_err(|e| ShimError {
        failure: Failure::Config,
        error: e.into(),
    })?;
    let settings = loaded.settings;
    crate::logging::init(settings.log);
    // What this process's own environment holds: nothing (see `crate::launch_env`).
    tracing::debug!(
        start_ns = crate::proc::monotonic_ns(),
        own_variables = std::env::vars_os().count(),
        "shim started"
    );
    if let Some(file) = loaded.file {
        tracing::debug!(path = %file.real.display(), "configuration file read");
    }
    if let Some(work_dir) = &settings.work_dir {
        // The operator's path may lead through a link of the operator's, as the agent's may: the
        // run goes by its real path.
        let real = std::fs::canonicalize(work_dir).unwrap_or_else(|_| work_dir.clone());
        if real != launch.run.work_dir {
            return Err(fail(
                Failure::Usage,
                format!(
                    "the run's sandbox {} is not under the work_dir {} the configuration file names; \
                     the shim acts only for runs of its agent",
                    launch.run.sandbox.display(),
                    work_dir.display()
                ),
            ));
        }
    }
    Ok(settings)
}

/// Says in the log what the launch is, where it is not what its environment claims: whether the
/// run checkpoints, the variables that are not settings, whom the sibling's init will watch.
fn say_what_the_launch_is(launch: &relay::Launch, settings: &config::Settings) {
    let said = launch.var("MESOS_CHECKPOINT").is_some_and(|v| v == "1");
    if said != launch.checkpointing {
        tracing::info!(
            meta_run_dir_exists = launch.checkpointing,
            mesos_checkpoint = said,
            "MESOS_CHECKPOINT disagrees with what the agent made; going by the meta run directory"
        );
    }
    let ignored = config::ignored_launch_variables(launch.env.iter().map(|(k, _)| k.as_os_str()));
    if !ignored.is_empty() {
        tracing::info!(
            variables = ?ignored,
            "the launch environment is the task's: these variables are passed to the executor and are not settings \
             (the shim's settings come from its configuration file)"
        );
    }
    match (&launch.origin.agent, settings.end_with_shim) {
        (None, true) => tracing::info!(
            "the agent process that started the launch cannot be told: the executor will not end with the shim"
        ),
        (Some(agent), true) => tracing::info!(
            agent_pid = agent.identity.pid,
            agent = agent.name,
            launch_helpers = ?agent.past_helpers,
            "the sibling's init watches this agent process beside the shim (the nearest ancestor that is not a \
             launch helper): if it outlives the shim, the agent killed the shim and the executor goes too"
        ),
        (_, false) => {}
    }
}

/// In Mesos's own container for the docker executor (`--docker_mesos_image`), becomes the stock
/// executor in place (see [`executor_container`]): returns only with a failure. `None` where
/// this is not that container: the relay goes on.
fn stock_in_executor_container(
    kind: ExecutorKind,
    origin: &launch::Origin,
    env: &LaunchEnv,
    args: &[OsString],
) -> Option<ShimError> {
    let (container, settings) = match in_executor_container(kind, origin, env) {
        Ok(found) => found?,
        Err(e) => return Some(e),
    };
    let exec_path = crate::proc::exec_path();
    Some(executor_container::become_stock(
        &container,
        &settings,
        exec_path.as_deref(),
        args,
        env,
    ))
}

/// Mesos's own container for the docker executor (`--docker_mesos_image`), confirmed by the
/// daemon, and the settings read to ask it; `None` for every launch the agent forked, which is
/// told without Docker (see [`executor_container`]).
fn in_executor_container(
    kind: ExecutorKind,
    origin: &launch::Origin,
    env: &LaunchEnv,
) -> Result<Option<(executor_container::ExecutorContainer, config::Settings)>, ShimError> {
    let Some(candidate) = executor_container::Candidate::of(kind, origin, env) else {
        return Ok(None);
    };
    let settings = config::load_for_relay(&candidate.run.work_dir)
        .map_err(|e| ShimError {
            failure: Failure::Config,
            error: e.into(),
        })?
        .settings;
    let confirmed = crate::runtime::current_thread()?.block_on(candidate.confirm(&settings))?;
    if confirmed.is_some() {
        crate::logging::init(settings.log);
    }
    Ok(confirmed.map(|container| (container, settings)))
}

/// The agent opens the sandbox's stdout and stderr without O_APPEND; the sibling appends to the
/// same files. Appending from here as well keeps the shim's few lines from overwriting executor
/// output written meanwhile.
fn append_to_sandbox_files() {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsFd;
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    for fd in [stdout.as_fd(), stderr.as_fd()] {
        if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
            let _ = fcntl(
                fd,
                FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_APPEND),
            );
        }
    }
}

/// In a sibling, the executor path the agent ran is this binary (a baked image): exec the stock
/// executor kept beside it, by the rule the sibling's init applies too, with the launch
/// environment `env`. Returns only with the failure.
fn hand_over_to_stock_executor(args: Vec<OsString>, env: &LaunchEnv) -> ShimError {
    let Some(own) = crate::proc::exec_path() else {
        return fail(Failure::Software, "cannot tell which file this program is");
    };
    let stock = match executor_to_run(&own, crate::proc::is_own_binary) {
        Ok(stock) => stock,
        Err(e) => return fail(Failure::Config, e),
    };
    let args: Vec<String> = args
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    relay::handback::exec(&stock, &args, env)
}
