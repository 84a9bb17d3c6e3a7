//! `mesos-executor-shim`: a drop-in `mesos-executor` that moves each executor of a dockerized
//! Mesos agent into a sibling container, so the executor survives the agent container.
//!
//! Read top-down:
//! - [`mesos`]: what the shim shares with the agent: the agent process `doctor` judges and its
//!   flags ([`mesos::agent`]), the executors it forks and answers to
//!   ([`mesos::executor`]), the layout of a run under the work_dir ([`mesos::layout`]), the
//!   `forked.pid` checkpoint ([`mesos::checkpoint`]), and the linux launcher's container cgroups,
//!   which the sibling joins ([`mesos::cgroups`]).
//! - [`config`]: settings, from the operator's JSON file only (the launch environment is the task's).
//! - [`launch_env`]: the launch environment, taken as data by the relay and its waiting mode, whose
//!   own process environment is then empty.
//! - [`no_follow`]: paths and files a task may have had a hand in: the one way they are opened,
//!   never through a link, and for I/O only once known to be a regular file (or a FIFO where a
//!   pipe is meant), never read without bound.
//! - [`output`]: the executor's output when the agent's container logger holds the shim's
//!   stdout and stderr: through the shim while it lives, rotated sandbox files after.
//! - [`proc`]: what `/proc` and pidfds tell about this process and host processes (no Docker).
//! - [`engine`]: the Docker Engine API: the connections to the daemon, the calls the shim makes,
//!   and the host facts only the daemon's costly `GET /info` tells.
//! - [`sibling`]: the sibling container: its spec and labels (pure), the protocol between the
//!   shim and the sibling's init, its placement, and the inventory of siblings on a host.
//! - [`relay`]: one launch, tying the above together: start the sibling, checkpoint its pid,
//!   forward signals (blocked from the first instant, read from a signalfd), exit with the
//!   executor's status, or hand over to the small waiting mode; its state machine runs against
//!   traits, so it is unit-tested with fakes.
//! - [`agent_container`]: the container the agent (and so the shim) runs in, as Docker describes
//!   it: its image, mounts and PID namespace, which the sibling's placement follows.
//! - [`sibling_init`]: the sibling's first process: runs the executor, ends what it leaves
//!   running, records its exit, and ends it when the agent kills the shim.
//! - [`docker_cli`]: the `docker` CLI the docker executor runs in its sibling: the real one, except
//!   that the attached `run` of the task container outlives a restart of the daemon.
//! - [`failpoint`](mod@failpoint): pause points for the fault suite, compiled into test builds only.
//! - [`commands`]: one file per subcommand; [`cli`] parses the command line, `main.rs` picks the
//!   sibling init (its first argument), the relay (under an executor's name) or the CLI.
//! - `signal_forwarding`: passing a signal on to the executor, one way for the relay, its
//!   waiting mode and the sibling's init.
//! - `key_value`: the `key=value` arguments the shim passes its init and its waiting mode.
//! - [`error`]: the shim's failure classes and their exit statuses; [`logging`]: its log;
//!   [`runtime`]: the one-thread async runtime its async parts run on.
//!
//! The layers, lowest first; a module imports only from its own layer or below, and no two
//! modules import each other:
//! 1. `error`, `logging`, `runtime`, `launch_env`, `no_follow`, `proc`, `failpoint`, `key_value`,
//!    `signal_forwarding`;
//! 2. `mesos`, `config`;
//! 3. `output`, `engine`;
//! 4. `agent_container`;
//! 5. `sibling`;
//! 6. `relay`, `sibling_init`, `docker_cli`;
//! 7. `commands`, `cli`; `main.rs` on top.

pub(crate) mod agent_container;
pub mod cli;
pub mod commands;
pub mod config;
pub mod docker_cli;
pub mod engine;
pub mod error;
pub(crate) mod failpoint;
pub(crate) mod key_value;
pub mod launch_env;
pub mod logging;
pub mod mesos;
pub mod no_follow;
pub mod output;
pub mod proc;
pub mod relay;
pub(crate) mod runtime;
pub mod sibling;
pub mod sibling_init;
pub(crate) mod signal_forwarding;
#[cfg(test)]
mod test_support;
