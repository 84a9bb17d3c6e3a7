//! The command line, under any name but an executor's (`mesos-executor`, `mesos-docker-executor`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mesos-executor-shim",
    version,
    about = "Runs Mesos executors in sibling Docker containers so they survive the agent container",
    long_about = "Installed as /usr/libexec/mesos/mesos-executor and mesos-docker-executor, the shim relays every \
                  executor launch of a dockerized Mesos agent to a sibling container `executor-mesos-<container-id>` \
                  and points the agent's forked.pid at it, so executors outlive the agent container. Under those \
                  names it parses no flags of its own: its arguments belong to the executor."
)]
pub struct Cli {
    /// The configuration file (default /etc/mesos-executor-shim/config.json, if present).
    /// DOCKER_HOST in this shell, if set, names the Docker endpoint instead of the file's.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
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
    /// Check, from the agent container or the host, everything executor recovery depends on.
    Doctor {
        /// The agent's --work_dir.
        #[arg(long, env = "MESOS_WORK_DIR", default_value = "/var/lib/mesos")]
        work_dir: PathBuf,
        /// The agent's --launcher_dir, where the executors are in its image; where doctor finds
        /// the agent process, that agent's own --launcher_dir (or MESOS_LAUNCHER_DIR) wins.
        #[arg(long, env = "MESOS_LAUNCHER_DIR", default_value = crate::mesos::executor::DEFAULT_LAUNCHER_DIR)]
        launcher_dir: PathBuf,
        /// One JSON array of checks instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// List the sibling executor containers and whether a restarted agent would find them.
    Ps {
        /// Only siblings with this label (key or key=value; repeat for all of several).
        #[arg(long, value_name = "LABEL", value_parser = parse_label)]
        label: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Remove siblings that exited, whose run completed, or whose run is gone; never a live one,
    /// nor one it cannot judge (it says why).
    Gc {
        /// Say what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Keep running, one pass per period (a Mesos duration such as 5mins), until SIGTERM or
        /// SIGINT.
        #[arg(long, value_parser = parse_period)]
        every: Option<Duration>,
        /// Only siblings with this label (key or key=value; repeat for all of several).
        #[arg(long, value_name = "LABEL", value_parser = parse_label)]
        label: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

fn parse_label(text: &str) -> Result<String, String> {
    crate::sibling::labels::parse_label_filter(text)
}

fn parse_period(text: &str) -> Result<Duration, String> {
    let period = crate::config::parse_duration(text)?;
    if period < Duration::from_secs(1) {
        return Err(format!("{text:?} is shorter than 1secs"));
    }
    Ok(period)
}
