use std::ffi::OsString;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use mesos_executor_shim::cli::{Cli, Command};
use mesos_executor_shim::commands;

/// The name the agent runs executors by. Under it the binary is the relay and parses nothing.
const RELAY_NAME: &str = "mesos-executor";

fn main() -> ExitCode {
    let mut argv = std::env::args_os();
    let argv0 = argv.next().unwrap_or_else(|| OsString::from(RELAY_NAME));
    if Path::new(&argv0)
        .file_name()
        .is_some_and(|n| n == RELAY_NAME)
    {
        return ExitCode::from(commands::run::relay_main(&argv0, argv.collect()));
    }
    let cli = Cli::parse();
    let config = cli.config.as_deref();
    let status = match cli.command {
        Command::Run { args } => commands::run::relay_main(&argv0, args),
        Command::Doctor { work_dir, json } => {
            commands::run::report(commands::doctor::main(config, &work_dir, json))
        }
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
