//! The launch environment: the agent's variables and the task's, which win over the agent's
//! (see *The task's environment reaches the executor* in the Mesos contract).
//!
//! It is the executor's, never the shim's. The relay and its waiting mode run as root with the
//! Docker socket, and libraries they link read their own process environment: glibc's resolver
//! `HOSTALIASES`, `LOCALDOMAIN` and `RES_OPTIONS` (a task could point a `docker_host` given by
//! name at a daemon of its own), std `RUST_MIN_STACK` when it starts a thread and
//! `RUST_BACKTRACE` when it panics, tracing-subscriber `NO_COLOR`. So they take the environment
//! as data first thing and clear their own: what the executor gets is that data, passed on
//! explicitly (the sibling's create request, or an `exec` of the stock executor).

use std::ffi::OsString;

/// A launch environment as data: `(name, value)`, in the order the process had them.
pub(crate) type LaunchEnv = Vec<(OsString, OsString)>;

/// Takes this process's environment as data and clears it.
///
/// Call it first thing, while the process runs one thread: the environment is shared by the
/// whole process, and clearing it under another thread that reads it is undefined behaviour.
pub fn take() -> LaunchEnv {
    let env: LaunchEnv = std::env::vars_os().collect();
    // SAFETY: the caller runs before any other thread exists, so nothing reads the environment
    // while it is cleared. `clearenv(3)` rather than `remove_var` for each name: it also drops
    // entries that std cannot name (no `=`, a name that starts with `=`), on which
    // `remove_var` would panic or which it would miss.
    unsafe { nix::libc::clearenv() };
    env
}
