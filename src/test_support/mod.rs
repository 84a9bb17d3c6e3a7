//! Shared fixtures of the unit tests, and the fakes the relay's state machine runs against.

pub(crate) mod fake;

use crate::mesos::layout::{IdVariables, RunLayout};

/// A run under the default work_dir, with an executor ID in Marathon's dotted style.
pub(crate) fn sample_run() -> RunLayout {
    RunLayout::from_sandbox(
        "/var/lib/mesos/slaves/S0/frameworks/F1/executors/app.1/runs/C-1".as_ref(),
        &IdVariables::default(),
    )
    .unwrap()
}

/// The labels 7bd4361 (label set 1, the last release before the `checkpoint` label) wrote on the
/// sibling of a run with [`sample_run`]'s IDs under `work_dir`, key for key, as its
/// `SiblingSpec::build` made them: its eight run labels, then the executor, the init protocol,
/// the host paths (the same as the agent's here) and the shim.
pub(crate) fn set_1_labels(
    work_dir: &str,
    shim: &str,
) -> std::collections::HashMap<String, String> {
    let run = "slaves/S0/frameworks/F1/executors/app.1/runs/C-1";
    let forked = format!("{work_dir}/meta/{run}/pids/forked.pid");
    [
        ("io.mesos-executor-shim.managed", "true".to_string()),
        ("io.mesos-executor-shim.agent-id", "S0".into()),
        ("io.mesos-executor-shim.framework-id", "F1".into()),
        ("io.mesos-executor-shim.executor-id", "app.1".into()),
        ("io.mesos-executor-shim.container-id", "C-1".into()),
        (
            "io.mesos-executor-shim.sandbox",
            format!("{work_dir}/{run}"),
        ),
        ("io.mesos-executor-shim.forked-pid", forked.clone()),
        ("io.mesos-executor-shim.work-dir", work_dir.into()),
        ("io.mesos-executor-shim.executor", "mesos-executor".into()),
        ("io.mesos-executor-shim.init-protocol", "1".into()),
        ("io.mesos-executor-shim.work-dir-host", work_dir.into()),
        ("io.mesos-executor-shim.forked-pid-host", forked),
        ("io.mesos-executor-shim.shim", shim.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// A directory the configuration file's trust rule accepts: root's, mode 0755, under root's
/// 0755 `/run` (not under `/tmp`, which anyone may write to). The unit tests run as root.
pub(crate) fn trusted_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let base = std::path::Path::new("/run/mesos-executor-shim-unit");
    std::fs::create_dir_all(base).unwrap();
    let dir = tempfile::tempdir_in(base).unwrap();
    for d in [base, dir.path()] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}
