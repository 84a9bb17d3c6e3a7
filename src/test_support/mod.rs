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

/// A directory the configuration file's trust rule accepts: root's, mode 0755, under root's
/// 0755 `/run` (not under `/tmp`, which anyone may write to). The unit tests run as root.
pub fn trusted_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let base = std::path::Path::new("/run/mesos-executor-shim-unit");
    std::fs::create_dir_all(base).unwrap();
    let dir = tempfile::tempdir_in(base).unwrap();
    for d in [base, dir.path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}
