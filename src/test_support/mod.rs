//! Shared fixtures of the unit tests, and the fakes the relay's state machine runs against.

pub mod fake;

use crate::mesos::layout::{IdVariables, RunLayout};

/// A run under the default work_dir, with an executor ID in Marathon's dotted style.
pub fn sample_run() -> RunLayout {
    RunLayout::from_sandbox(
        "/var/lib/mesos/slaves/S0/frameworks/F1/executors/app.1/runs/C-1".as_ref(),
        &IdVariables::default(),
    )
    .unwrap()
}
