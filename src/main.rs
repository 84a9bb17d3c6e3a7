use std::process::ExitCode;

use clap::Parser;
use mesos_executor_shim::cli::{Cli, Command};
use mesos_executor_shim::commands;
use mesos_executor_shim::docker_cli;
use mesos_executor_shim::error::status_of_signal;
use mesos_executor_shim::launch_env;
use mesos_executor_shim::mesos::executor::ExecutorKind;
use mesos_executor_shim::sibling::protocol::INIT_ARG;

fn main() -> ExitCode {
    let mut argv: Vec<_> = std::env::args_os().collect();
    let argv0 = if argv.is_empty() {
        Default::default()
    } else {
        argv.remove(0)
    };
    // A sibling's first process, under whatever name its image or mount gives the binary. Its
    // environment is the sibling's, the task's: the executor's, passed on as data.
    if argv.first().is_some_and(|a| a == INIT_ARG) && commands::in_sibling().unwrap_or(false) {
        let env = launch_env::take();
        return ExitCode::from(commands::init::main(&argv[1..], env));
    }
    // The docker executor calling its CLI in its sibling, where the relay pointed its `--docker`.
    if docker_cli::is_cli_call(&argv) && commands::in_sibling().unwrap_or(false) {
        let env = launch_env::take();
        return match docker_cli::main(&argv, env) {
            docker_cli::Ending::Status(code) => ExitCode::from(code.clamp(0, 255) as u8),
            docker_cli::Ending::Signal(signal) => {
                ExitCode::from(commands::die_of(signal, status_of_signal(signal as i32)))
            }
        };
    }
    // The relay once only waiting is left, re-executed under this name. It was started with an
    // empty environment (its arguments carry all it needs); cleared all the same, before anything
    // could read it.
    if argv0 == mesos_executor_shim::relay::handover::WAIT_ARG {
        launch_env::take();
        return leave(commands::wait::main(&argv));
    }
    // Under the name of an executor the agent forks, the binary is the relay and parses nothing.
    // Its environment is the task's: taken as data, before any thread or library could obey it.
    if let Some(kind) = ExecutorKind::from_argv0(&argv0) {
        let env = launch_env::take();
        return leave(commands::run::relay_main(kind, argv, env));
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return ExitCode::from(commands::usage(&e)),
    };
    // The operator's commands keep their environment: it is the operator's shell's, and they read
    // `DOCKER_HOST` (and `doctor` its defaults) from it on purpose.
    let status = match cli.command {
        // The relay, run by name: parsing `run` read no variable (it has none) and started no
        // thread, so the environment is taken as early as it can be told to be a launch's.
        Command::Run { args } => {
            let env = launch_env::take();
            return leave(commands::run::relay_main(ExecutorKind::Command, args, env));
        }
        Command::Doctor {
            work_dir,
            launcher_dir,
            json,
            settings,
        } => commands::report(
            "doctor",
            commands::doctor::main(settings.config.as_deref(), &work_dir, &launcher_dir, json),
        ),
        Command::Ps {
            label,
            json,
            wide,
            settings,
        } => commands::report(
            "ps",
            commands::ps::main(settings.config.as_deref(), &label, json, wide),
        ),
        Command::Gc {
            dry_run,
            every,
            label,
            json,
            settings,
        } => commands::report(
            "gc",
            commands::gc::main(settings.config.as_deref(), dry_run, every, &label, json),
        ),
    };
    ExitCode::from(status)
}

/// Leaves as the command decided: with a status, or by dying of the signal that killed the
/// executor, so that the agent sees the stock executor's end (its handler reset first: the relay
/// caught the forwarded signals).
fn leave(how: commands::Leave) -> ExitCode {
    match how {
        commands::Leave::Status(status) => ExitCode::from(status),
        commands::Leave::Wait(handover) => leave(commands::wait::become_waiting(*handover)),
        commands::Leave::Signal(signal, status) => ExitCode::from(commands::die_of(signal, status)),
    }
}
