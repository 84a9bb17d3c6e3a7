//! The relay once only waiting is left (see [`crate::relay::waiting`]): entered by re-executing
//! this binary under the name [`WAIT_ARG`], or, should that `exec` fail, in place.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use crate::relay::handover::{Handover, WAIT_ARG};
use crate::relay::waiting;

/// Re-executes this binary into the waiting mode; returns only if that fails, having waited in
/// place instead. The waiting mode starts with an empty environment: its arguments carry all it
/// needs, and the launch environment is the task's (see [`crate::launch_env`]).
pub fn become_waiting(handover: Handover) -> super::Leave {
    let exec = handover.keep_across_exec().map(|()| {
        std::process::Command::new("/proc/self/exe")
            .arg0(WAIT_ARG)
            .args(handover.to_args())
            .env_clear()
            .exec()
    });
    let error = match exec {
        Ok(e) | Err(e) => e,
    };
    tracing::warn!(error = %error, "cannot re-execute into the waiting mode; waiting in place");
    wait(handover)
}

/// The waiting mode's entry: `args` follow [`WAIT_ARG`].
pub fn main(args: &[OsString]) -> super::Leave {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match Handover::parse(&args) {
        Ok(handover) => {
            crate::logging::init(handover.log);
            tracing::debug!(
                container = handover.sibling_name,
                "waiting for the executor"
            );
            wait(handover)
        }
        Err(e) => {
            eprintln!("mesos-executor-shim: cannot wait for the executor ({e}): {args:?}");
            super::Leave::Status(crate::error::Failure::Software.exit_code())
        }
    }
}

fn wait(mut handover: Handover) -> super::Leave {
    if let Err(e) = waiting::wait_for_exit(&mut handover) {
        tracing::error!(container = handover.sibling_name, error = %e, "cannot wait for the executor");
        return super::Leave::Status(crate::error::Failure::Software.exit_code());
    }
    super::Leave::exit(waiting::finish(&handover))
}
