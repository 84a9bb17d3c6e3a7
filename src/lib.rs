//! `mesos-executor-shim`: a drop-in `mesos-executor` that moves each executor of a dockerized
//! Mesos agent into a sibling container, so the executor survives the agent container.
//!
//! Read top-down:
//! - [`mesos`]: what the shim shares with the agent: the layout of a run under the work_dir
//!   ([`mesos::layout`]) and the `forked.pid` checkpoint ([`mesos::checkpoint`]).
//! - [`config`]: settings from the JSON file and `EXECUTOR_SHIM_*` variables.
//! - [`sibling`]: the sibling container: its spec (pure), what the shim discovers about its own
//!   container, and the Docker API calls.
//! - [`relay`]: one launch, tying the above together: start the sibling, checkpoint its pid,
//!   forward signals, exit with the executor's status.
//! - [`commands`]: one file per subcommand; [`cli`] parses the command line, `main.rs` picks relay
//!   or CLI by the name the binary was invoked under.
//! - [`error`]: the shim's failure classes and their exit statuses.

pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod logging;
pub mod mesos;
pub mod relay;
pub mod sibling;
#[cfg(test)]
mod test_support;
