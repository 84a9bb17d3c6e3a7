use std::process::ExitCode;

use clap::Parser;
use mesos_executor_shim::cli::{Cli, Command};
use mesos_executor_shim::commands;
use mesos_executor_shim::mesos::executor::ExecutorKind;
use mesos_executor_shim::sibling::protocol::INIT_ARG;

fn main() -> ExitCode {
    let mut argv: Vec<_> = std::env::args_os().collect();
    let argv0 = if argv.is_empty() {
        Default::default()
    } else {
        argv.remove(0)
    };
    // A sibling's first process, under whatever name its image or mount gives the binary.
    if argv.first().is_some_and(|a| a == INIT_ARG) && commands::in_sibling().unwrap_or(false) {
        return ExitCode::from(commands::init::main(&argv[1..]));
    }
    // Under the name of an executor the agent forks, the binary is the relay and parses nothing.
    if let Some(kind) = ExecutorKind::from_argv0(&argv0) {
        return ExitCode::from(commands::run::relay_main(kind, argv));
    }
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    let status = match cli.command {
        Command::Run { args } => commands::run::relay_main(ExecutorKind::Command, args),
        Command::Doctor {
            work_dir,
            launcher_dir,
            json,
        } => commands::report(commands::doctor::main(
            config,
            &work_dir,
            &launcher_dir,
            json,
        )),
        Command::Ps { label, json } => commands::report(commands::ps::main(config, &label, json)),
        Command::Gc {
            dry_run,
            every,
            label,
            json,
        } => commands::report(commands::gc::main(config, dry_run, every, &label, json)),
    };
    ExitCode::from(status)
}
