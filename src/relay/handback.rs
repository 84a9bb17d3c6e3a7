//! What a sibling cannot carry of the Mesos container the launch runs in (see
//! [`crate::mesos::container`]): such a launch is not relayed. Where the operator has left the
//! stock executor reachable (the baked image's `<path>.real`, or the `executor` keys), the shim
//! becomes it in place, saying once why this run will not survive the agent container; else it
//! fails at once, naming what it cannot carry and what to do. Either way before anything is
//! made, and never after a retry.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::error::{fail, Failure, ShimError};
use crate::launch_env::LaunchEnv;
use crate::mesos::container::{self, Obstacle};
use crate::mesos::executor::executor_to_run;
use crate::proc::{shares_namespace, Namespace};
use crate::relay::launch::Launch;

/// What of the launch's container a sibling cannot carry: nothing, when the launch may go on.
pub(crate) fn obstacles(launch: &Launch) -> Vec<Obstacle> {
    let agent = launch.origin.agent.as_ref().map(|a| a.identity.pid);
    let differs = |ns| Some(!shares_namespace(agent?, ns)?);
    container::obstacles(
        &launch.container,
        &launch.executor_args,
        differs(Namespace::Net),
        differs(Namespace::Pid),
    )
}

/// Becomes the stock executor, or fails naming `obstacles`. Returns only with the failure.
pub(crate) fn hand_back_or_refuse(
    launch: &Launch,
    settings: &Settings,
    obstacles: &[Obstacle],
) -> ShimError {
    let why: Vec<String> = obstacles.iter().map(Obstacle::to_string).collect();
    let why = why.join("; and ");
    let candidate = crate::relay::prepare::real_executor(launch, settings);
    match stock_executor_here(&candidate) {
        Some(stock) => {
            tracing::warn!(
                stock_executor = %stock.display(),
                reason = why,
                "not relaying this launch, which a sibling cannot carry: the stock executor runs it in the agent \
                 container, and this run will not survive that container"
            );
            exec(&stock, &launch.executor_args, &launch.env)
        }
        None => fail(
            Failure::Config,
            format!(
                "cannot relay this launch: {why}. No stock executor to hand it back to is reachable here \
                 ({} is the shim, and no {}.real is beside it): bake the shim into the agent image \
                 (Dockerfile.mesos-slave keeps the stock executor as <path>.real), or set \"executor\" \
                 (\"docker_executor\") in the configuration file to the stock executor's path",
                candidate.display(),
                candidate.display()
            ),
        ),
    }
}

/// The stock executor for `candidate` as it is here, if it can be run: never this shim.
pub(crate) fn stock_executor_here(candidate: &Path) -> Option<PathBuf> {
    let stock = executor_to_run(candidate, crate::proc::is_own_binary).ok()?;
    (stock.is_file() && !crate::proc::is_own_binary(&stock)).then_some(stock)
}

/// Replaces this process with `stock`, with the executor's arguments, the launch environment
/// `env` and this working directory, as the agent would have run it. Returns only with the
/// failure.
///
/// The environment is passed explicitly: this process's own was cleared as it started (see
/// [`crate::launch_env`]), and the stock executor gets exactly the agent's.
pub(crate) fn exec(stock: &Path, args: &[String], env: &LaunchEnv) -> ShimError {
    crate::relay::signals::unblock_forwarded();
    let error = std::process::Command::new(stock)
        .arg0(stock)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(name, value)| (name, value)))
        .exec();
    fail(
        Failure::Config,
        format!(
            "the stock executor {} cannot be run ({error}); keep it at <path>.real when baking the shim into \
             an image, or set \"executor\" in the configuration file to its path",
            stock.display()
        ),
    )
}
