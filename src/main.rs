use std::process::ExitCode;

use clap::Parser;
use mesos_executor_shim::cli::{Cli, Command};
use mesos_executor_shim::commands;
use mesos_executor_shim::mesos::executor::ExecutorKind;

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let argv0 = argv.next().unwrap_or_default();
    // Under the name of an executor the agent forks, the binary is the relay and parses nothing.
    if let Some(kind) = ExecutorKind::from_argv0(&argv0) {
        return ExitCode::from(commands::run::relay_main(kind, &argv0, argv.collect()));
    }
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    let status = match cli.command {
        Command::Run { args } => commands::run::relay_main(ExecutorKind::Command, &argv0, args),
        Command::Doctor {
            work_dir,
            launcher_dir,
            json,
        } => commands::run::report(commands::doctor::main(
            config,
            &work_dir,
            &launcher_dir,
            json,
        )),
        Command::Ps { label, json } => {
            commands::run::report(commands::ps::main(config, &label, json))
        }
        Command::Gc {
            dry_run,
            every,
            label,
            json,
        } => commands::run::report(commands::gc::main(config, dry_run, every, &label, json)),
    };
    ExitCode::from(status)
}
