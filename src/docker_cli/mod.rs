//! The `docker` CLI the docker executor runs in its sibling (its `--docker`, pointed here by the
//! relay): every command goes to the real CLI, which the relay names in [`REAL_CLI_VAR`]; the
//! attached `run` of the task container is kept whole across a restart of the daemon (see
//! [`follow`]). The stock executor takes that `run`'s exit for the task's, and the CLI fails with
//! 125 when the daemon goes away, whatever the container does: under live-restore the container
//! runs on, and so the task does here.
//!
//! It runs with the executor's identity and privileges, in the executor's sibling: nothing it
//! reads gives more power than the executor has, which runs the real CLI itself.

mod args;
mod ending;
mod follow;
mod splice;

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::time::SystemTime;

use crate::config::DockerEndpoint;
use crate::error::{Failure, STATUS_NOT_FOUND};
use crate::sibling::protocol::REAL_CLI_VAR;

use args::{attached_run, AttachedRun};
pub use ending::Ending;

/// The status of a CLI that could not be run, as a shell gives for a command it cannot find.
const CLI_NOT_RUN: i32 = STATUS_NOT_FOUND as i32;

/// Whether a command line in a sibling is the docker executor calling its CLI: Mesos names the
/// daemon first (`docker -H <socket> ...`), which no init or executor argument does.
pub fn is_cli_call(args: &[OsString]) -> bool {
    args.first().is_some_and(|a| a == "-H")
}

/// Runs `args` (without `argv[0]`) as the real CLI would, with `env` (the executor's).
pub fn main(args: &[OsString], env: Vec<(OsString, OsString)>) -> Ending {
    let Some(real) = env
        .iter()
        .find(|(k, _)| k == REAL_CLI_VAR)
        .map(|(_, v)| v.clone())
    else {
        eprintln!(
            "mesos-executor-shim: called as the docker CLI without {REAL_CLI_VAR}: the relay sets it \
             for the docker executor it starts; run the real docker CLI instead"
        );
        return Ending::Status(Failure::Config.exit_code().into());
    };
    let text: Option<Vec<String>> = args
        .iter()
        .map(|a| a.to_str().map(str::to_string))
        .collect();
    let run = text.as_deref().and_then(attached_run);
    let endpoint = run
        .as_ref()
        .and_then(|r| DockerEndpoint::parse(&r.host).ok());
    let (Some(run), Some(endpoint)) = (run, endpoint) else {
        let error = std::process::Command::new(&real)
            .args(args)
            .env_clear()
            .envs(env)
            .exec();
        eprintln!("mesos-executor-shim: cannot run the docker CLI {real:?}: {error}");
        return Ending::Status(CLI_NOT_RUN);
    };
    let runtime = match crate::runtime::current_thread() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mesos-executor-shim: {e}");
            return Ending::Status(Failure::Software.exit_code().into());
        }
    };
    runtime.block_on(attached(&run, &endpoint, &real, args, &env))
}

/// The attached `run`: the real CLI's end, unless it lost the daemon while the container runs on.
async fn attached(
    run: &AttachedRun,
    endpoint: &DockerEndpoint,
    real: &OsString,
    args: &[OsString],
    env: &[(OsString, OsString)],
) -> Ending {
    let started = SystemTime::now();
    let mut output = follow::Output::default();
    // Caught from before the CLI starts until this process ends: none lost between the CLI and
    // the container, none ending this process while the CLI runs.
    let mut signals = match follow::Proxied::new() {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("mesos-executor-shim: cannot catch signals: {e}");
            return Ending::Status(Failure::Software.exit_code().into());
        }
    };
    let status = match follow::run_cli(real, args, env, &mut output, &mut signals).await {
        Ok(status) => status,
        Err(e) => {
            eprintln!("mesos-executor-shim: cannot run the docker CLI {real:?}: {e}");
            return Ending::Status(CLI_NOT_RUN);
        }
    };
    let cli_ended = SystemTime::now();
    let cli_ending = Ending::of(status);
    if cli_ending != Ending::Status(follow::CLI_OWN_FAILURE) {
        return cli_ending;
    }
    follow::follow_container(run, endpoint, started, cli_ended, &mut output, &mut signals)
        .await
        .unwrap_or(cli_ending)
}
