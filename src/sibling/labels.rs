//! The labels the shim puts on its siblings: how `ps` and `gc` find them, how a relaunch tells
//! its own leftover from a stranger's container, and which keys operators may not set.

use std::collections::HashMap;

use crate::mesos::layout::RunLayout;

pub(crate) const LABEL_MANAGED: &str = "io.mesos-executor-shim.managed";
pub(crate) const LABEL_AGENT_ID: &str = "io.mesos-executor-shim.agent-id";
pub(crate) const LABEL_FRAMEWORK_ID: &str = "io.mesos-executor-shim.framework-id";
pub(crate) const LABEL_EXECUTOR_ID: &str = "io.mesos-executor-shim.executor-id";
pub(crate) const LABEL_CONTAINER_ID: &str = "io.mesos-executor-shim.container-id";
pub(crate) const LABEL_SANDBOX: &str = "io.mesos-executor-shim.sandbox";
pub(crate) const LABEL_FORKED_PID: &str = "io.mesos-executor-shim.forked-pid";
pub(crate) const LABEL_WORK_DIR: &str = "io.mesos-executor-shim.work-dir";
/// `<pid>:<start time>` of the shim that started the sibling: `gc` tells an orphan by it.
pub(crate) const LABEL_SHIM: &str = "io.mesos-executor-shim.shim";
/// Which executor runs there: `mesos-executor` or `mesos-docker-executor`.
pub(crate) const LABEL_EXECUTOR: &str = "io.mesos-executor-shim.executor";
/// The version of the shim/init protocol its init speaks (see [`crate::sibling::protocol`]);
/// absent on siblings of releases without an init.
pub(crate) const LABEL_INIT_PROTOCOL: &str = "io.mesos-executor-shim.init-protocol";
/// The host paths of the work_dir and of forked.pid: where `gc` and `ps` find the run when they
/// run somewhere the agent container's paths mean another place (on the host, say).
pub(crate) const LABEL_WORK_DIR_HOST: &str = "io.mesos-executor-shim.work-dir-host";
pub(crate) const LABEL_FORKED_PID_HOST: &str = "io.mesos-executor-shim.forked-pid-host";
/// `true` when the agent checkpoints the run (it made the meta run directory), else `false`: a
/// run that does not checkpoint has no meta directory, so its absence says nothing of the run.
/// Absent on siblings of earlier releases.
pub(crate) const LABEL_CHECKPOINT: &str = "io.mesos-executor-shim.checkpoint";
/// Which label set the sibling carries, by version (see [`crate::sibling::label_sets`], which
/// tells the earlier sets, without it, by their keys).
pub(crate) const LABEL_LABEL_SET: &str = "io.mesos-executor-shim.label-set";

/// The labels that describe `run`: every sibling carries them (`forked-pid` only where the run
/// checkpoints: see [`crate::sibling::label_sets`]).
pub(crate) fn run_labels(run: &RunLayout) -> [(&'static str, String); 7] {
    [
        (LABEL_MANAGED, "true".to_string()),
        (LABEL_AGENT_ID, run.agent_id.clone()),
        (LABEL_FRAMEWORK_ID, run.framework_id.clone()),
        (LABEL_EXECUTOR_ID, run.executor_id.clone()),
        (LABEL_CONTAINER_ID, run.container_id.clone()),
        (LABEL_SANDBOX, run.sandbox.display().to_string()),
        (LABEL_WORK_DIR, run.work_dir.display().to_string()),
    ]
}

/// The labels that say which run a sibling is of: two containers that agree on all of them are
/// siblings of the same run.
const RUN_IDENTITY: [&str; 5] = [
    LABEL_MANAGED,
    LABEL_AGENT_ID,
    LABEL_FRAMEWORK_ID,
    LABEL_EXECUTOR_ID,
    LABEL_CONTAINER_ID,
];

/// Whether a container's `labels` say it is the sibling of the run that `ours` (a sibling's own
/// labels) describe, and not some other container that happens to carry the name.
pub(crate) fn same_run(labels: &HashMap<String, String>, ours: &HashMap<String, String>) -> bool {
    RUN_IDENTITY
        .iter()
        .all(|k| labels.get(*k).is_some() && labels.get(*k) == ours.get(*k))
}

/// A label filter `key` or `key=value` as `ps --label` and `gc --label` take it (Docker's syntax).
pub(crate) fn parse_label_filter(text: &str) -> Result<String, String> {
    let key = text.split_once('=').map_or(text, |(k, _)| k);
    if key.is_empty() || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{text:?} is not a label filter such as team=infra"));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::sample_run as run;

    #[test]
    fn only_a_container_labelled_for_this_run_is_ours() {
        let labels: HashMap<String, String> = run_labels(&run())
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        assert!(same_run(&labels, &labels));
        let mut other = labels.clone();
        other.insert(LABEL_EXECUTOR_ID.into(), "someone-else".into());
        assert!(!same_run(&other, &labels));
        assert!(!same_run(&HashMap::new(), &labels));
        assert!(
            !same_run(&HashMap::new(), &HashMap::new()),
            "no labels are no run"
        );
    }

    #[test]
    fn label_filters_take_docker_syntax() {
        assert_eq!(parse_label_filter("team=infra").unwrap(), "team=infra");
        assert_eq!(parse_label_filter("team").unwrap(), "team");
        assert!(parse_label_filter("=x").is_err());
        assert!(parse_label_filter("a b=c").is_err());
    }
}
