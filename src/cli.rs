//! The command line under any name but `mesos-executor`.

use std::ffi::OsString;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mesos-executor-shim",
    version,
    about = "Runs Mesos executors in sibling Docker containers so they survive the agent container",
    long_about = "Installed as /usr/libexec/mesos/mesos-executor, the shim relays every executor launch of a \
                  dockerized Mesos agent to a sibling container `executor-mesos-<container-id>` and points the \
                  agent's forked.pid at it, so executors outlive the agent container. Under that name it parses \
                  no flags of its own: its arguments belong to the executor."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Relay one executor launch explicitly: what the binary does when invoked as mesos-executor.
    Run {
        /// The executor's arguments, passed on verbatim.
        #[arg(last = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}
