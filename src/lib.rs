//! `mesos-executor-shim`: a drop-in `mesos-executor` that moves each executor of a dockerized
//! Mesos agent into a sibling container, so the executor survives the agent container.
//!
//! Read top-down:
//! - [`mesos`]: what the shim shares with the agent: the executors it forks and answers to
//!   ([`mesos::executor`]), the layout of a run under the work_dir ([`mesos::layout`]), the `forked.pid` checkpoint ([`mesos::checkpoint`]), and the linux
//!   launcher's container cgroups, which the sibling joins ([`mesos::cgroups`]).
//! - [`config`]: settings, from the operator's JSON file only (the launch environment is the task's).
//! - [`sibling`]: the sibling container: its spec and labels (pure), its placement, what the shim
//!   discovers about its own container, and the Docker API calls.
//! - [`relay`]: one launch, tying the above together: start the sibling, checkpoint its pid,
//!   forward signals, exit with the executor's status; its state machine runs against a trait,
//!   so it is unit-tested with a fake engine.
//! - [`failpoint`](mod@failpoint): pause points for the fault suite, compiled into test builds only.
//! - [`commands`]: one file per subcommand; [`cli`] parses the command line, `main.rs` picks relay
//!   (under an executor's name) or CLI by the name the binary was invoked under.
//! - [`error`]: the shim's failure classes and their exit statuses.

pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod failpoint;
pub mod logging;
pub mod mesos;
pub mod relay;
pub mod sibling;
#[cfg(test)]
mod test_support;
