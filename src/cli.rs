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
    #[command(subcommand)]
    pub command: Command,
}

/// The settings of an operator command: `run` (the relay) reads only its fixed file, so only
/// these take a file and the shell's `DOCKER_HOST`.
#[derive(Debug, clap::Args)]
pub struct OperatorSettings {
    /// The configuration file (default /etc/mesos-executor-shim/config.json, if present).
    /// DOCKER_HOST in this shell, if set, names the Docker endpoint instead of the file's.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Relay one executor launch explicitly: what the binary does when invoked as mesos-executor
    /// (its settings come from /etc/mesos-executor-shim/config.json only, never the environment).
    #[command(after_help = crate::error::exit_statuses_help("run"))]
    Run {
        /// The executor's arguments, passed on verbatim.
        #[arg(last = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Check, from the agent container or the host, everything executor recovery depends on.
    #[command(after_help = crate::error::exit_statuses_help("doctor"))]
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
        #[command(flatten)]
        settings: OperatorSettings,
    },
    /// List the sibling executor containers and whether a restarted agent would find them.
    #[command(after_help = crate::error::exit_statuses_help("ps"))]
    Ps {
        /// Only siblings with this label (key or key=value; repeat for all of several).
        #[arg(long, value_name = "LABEL", value_parser = parse_label)]
        label: Vec<String>,
        /// One JSON array of siblings instead of a table.
        #[arg(long)]
        json: bool,
        /// Print Docker's container IDs whole (Mesos's IDs are always whole; Docker's are
        /// otherwise shortened to 12 characters, as `docker ps` shows them).
        #[arg(long)]
        wide: bool,
        #[command(flatten)]
        settings: OperatorSettings,
    },
    /// Remove siblings that exited, whose run completed, or whose run is gone; never a live one,
    /// nor one it cannot judge (it says why).
    #[command(after_help = crate::error::exit_statuses_help("gc"))]
    Gc {
        /// Say what would be removed; remove nothing.
        #[arg(long)]
        dry_run: bool,
        /// Keep running, one pass per period (a duration such as 5mins or 5m), until SIGTERM or
        /// SIGINT.
        #[arg(long, value_parser = parse_period)]
        every: Option<Duration>,
        /// Only siblings with this label (key or key=value; repeat for all of several).
        #[arg(long, value_name = "LABEL", value_parser = parse_label)]
        label: Vec<String>,
        /// One JSON array of what was (or would be) removed instead of lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        settings: OperatorSettings,
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Each command's help offers only what it reads: `run` (the relay) reads its fixed file
    /// alone, never `--config` nor the environment.
    #[test]
    fn run_offers_nothing_it_ignores() {
        let mut cli = Cli::command();
        let run = cli.find_subcommand_mut("run").unwrap();
        let help = run.render_long_help().to_string();
        assert!(
            !help.contains("--config") && !help.contains("DOCKER_HOST"),
            "{help}"
        );
        for name in ["doctor", "ps", "gc"] {
            let help = cli
                .find_subcommand_mut(name)
                .unwrap()
                .render_long_help()
                .to_string();
            assert!(help.contains("--config"), "{name}: {help}");
        }
        assert!(Cli::try_parse_from(["shim", "run", "--config", "x"]).is_err());
    }

    /// Each command's help ends with its exit statuses, from the one table of constants.
    #[test]
    fn each_help_lists_the_statuses_of_its_command() {
        use crate::error::EXIT_STATUSES;
        let mut cli = Cli::command();
        for name in ["run", "doctor", "ps", "gc"] {
            let help = cli
                .find_subcommand_mut(name)
                .unwrap()
                .render_long_help()
                .to_string();
            let (_, statuses) = help.split_once("Exit status:").expect(name);
            let listed: Vec<u8> = statuses
                .lines()
                .filter_map(|l| l.split_whitespace().next()?.parse().ok())
                .collect();
            let expected: Vec<u8> = EXIT_STATUSES
                .iter()
                .filter(|s| s.commands.contains(&name))
                .map(|s| s.code)
                .collect();
            assert_eq!(listed, expected, "{name}: {help}");
        }
        // A bad command line is a usage failure, as `main` reports it.
        let e = Cli::try_parse_from(["shim", "ps", "--no-such-flag"]).unwrap_err();
        assert!(e.use_stderr());
    }

    /// Durations in Mesos's spelling and the short one.
    #[test]
    fn gc_every_takes_both_spellings() {
        for every in ["10secs", "10s"] {
            let cli = Cli::try_parse_from(["shim", "gc", "--every", every]).unwrap();
            assert!(
                matches!(cli.command, Command::Gc { every: Some(d), .. } if d == Duration::from_secs(10))
            );
        }
    }
}
