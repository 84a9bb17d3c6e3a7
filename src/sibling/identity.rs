//! Whether a container is a sibling the shim made. A framework can put any label on its docker
//! task's container (`DockerInfo.parameters`), a copy of every sibling label included, so labels
//! alone prove nothing: a container is taken for a sibling only when what the daemon says of it,
//! beyond its labels, agrees with them: its name, its command, its sandbox mount. `ps`, `gc` and
//! a launch's sweep decide with [`judge`] alone, and take a path from a label only through
//! [`run_paths`].

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::models::MountPoint;
use serde::Serialize;

use crate::mesos::layout::{sibling_name, RunLayout};
use crate::sibling::labels::{
    LABEL_AGENT_ID, LABEL_CONTAINER_ID, LABEL_EXECUTOR_ID, LABEL_FORKED_PID, LABEL_FORKED_PID_HOST,
    LABEL_FRAMEWORK_ID, LABEL_MANAGED, LABEL_SANDBOX, LABEL_WORK_DIR, LABEL_WORK_DIR_HOST,
};
use crate::sibling::protocol::INIT_ARG;

/// A container's command, as the daemon reports it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Command<'a> {
    /// A listing's `Command`: the path, then the arguments, joined by spaces.
    Joined(&'a str),
    /// An inspection's `Path` and `Args`.
    Argv { path: &'a str, args: &'a [String] },
}

/// What the daemon says of a container.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed<'a> {
    /// Its names, each with Docker's leading `/`.
    pub names: &'a [String],
    pub command: Command<'a>,
    /// Its mounts; `None`: the daemon did not say.
    pub mounts: Option<&'a [MountPoint]>,
    pub labels: &'a HashMap<String, String>,
}

/// Why a container that carries the shim's labels is not one of its siblings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum NotSibling {
    /// Its labels name no run the agent could have laid out (an ID Mesos would refuse, a
    /// work_dir that is not absolute and normalised, a sandbox label of another run).
    Labels,
    /// Its name is not `executor-mesos-<its container-id label>`.
    Name,
    /// Its command is not the shim's init.
    Command,
    /// It has no bind mount of its run's sandbox at the sandbox's path.
    SandboxMount,
}

impl NotSibling {
    /// What `ps` says of it.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            NotSibling::Labels => "its labels name no run the agent lays out",
            NotSibling::Name => "its name is not executor-mesos-<its container-id label>",
            NotSibling::Command => "its command is not the shim's init",
            NotSibling::SandboxMount => "it does not mount its run's sandbox",
        }
    }
}

/// The run of `container`, when it is a sibling the shim made: the shim names a sibling after
/// the run's container ID, runs the init as its command (`<init> mesos-executor-shim-init ...`)
/// and binds the run's sandbox at the sandbox's path. Anything else is not a sibling, however it
/// is labelled.
pub(crate) fn judge(container: &Observed) -> Result<RunLayout, NotSibling> {
    let run = labelled_run(container.labels).ok_or(NotSibling::Labels)?;
    let name = format!("/{}", sibling_name(&run.container_id));
    if !container.names.contains(&name) {
        return Err(NotSibling::Name);
    }
    if !runs_the_init(container.command) {
        return Err(NotSibling::Command);
    }
    if let Some(mounts) = container.mounts {
        if !mounts.iter().any(|m| mounts_the_sandbox(m, &run)) {
            return Err(NotSibling::SandboxMount);
        }
    }
    Ok(run)
}

/// The run the labels name, its IDs and work_dir valid as the agent's own (see
/// [`RunLayout::from_ids`]), and its sandbox label, where there is one, that run's sandbox.
fn labelled_run(labels: &HashMap<String, String>) -> Option<RunLayout> {
    let label = |key: &str| labels.get(key).map(String::as_str);
    if label(LABEL_MANAGED) != Some("true") {
        return None;
    }
    let run = RunLayout::from_ids(
        label(LABEL_WORK_DIR)?,
        label(LABEL_AGENT_ID)?,
        label(LABEL_FRAMEWORK_ID)?,
        label(LABEL_EXECUTOR_ID)?,
        label(LABEL_CONTAINER_ID)?,
    )
    .ok()?;
    match label(LABEL_SANDBOX) {
        Some(sandbox) if run.sandbox.to_str() != Some(sandbox) => None,
        _ => Some(run),
    }
}

/// The command's second word is the init's marker, after an absolute path (the init's).
fn runs_the_init(command: Command) -> bool {
    let (path, second) = match command {
        Command::Argv { path, args } => (path, args.first().map(String::as_str)),
        // The daemon joins the path and the arguments with spaces: an init path holding a space
        // cannot be told apart, and is not taken for one.
        Command::Joined(text) => match text.split_once(' ') {
            Some((path, rest)) => (path, rest.split(' ').next()),
            None => (text, None),
        },
    };
    path.starts_with('/') && second == Some(INIT_ARG)
}

fn mounts_the_sandbox(mount: &MountPoint, run: &RunLayout) -> bool {
    mount.typ.as_deref() == Some("bind") && mount.destination.as_deref() == run.sandbox.to_str()
}

/// Where a sibling's labels say its run's work_dir and `forked.pid` are on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunPaths {
    pub work_dir: PathBuf,
    pub forked_pid: PathBuf,
}

/// The host paths of `run`'s work_dir and `forked.pid` from a sibling's `labels`, kept only when
/// they have the agent's layout for that very run:
/// `<work_dir>/meta/slaves/<SID>/frameworks/<FID>/executors/<EID>/runs/<CID>/pids/forked.pid`,
/// with `run`'s IDs (whose container ID is the sibling's name) and a work_dir absolute and
/// normalised. `None`: a label is missing or names anything else, and the run is not judged.
pub(crate) fn run_paths(labels: &HashMap<String, String>, run: &RunLayout) -> Option<RunPaths> {
    let label = |key: &str| labels.get(key).map(String::as_str);
    let (work_dir, forked_pid) = match label(LABEL_FORKED_PID_HOST) {
        Some(forked_pid) => (label(LABEL_WORK_DIR_HOST)?, forked_pid),
        // Siblings of releases before the host labels: the paths the shim saw.
        None => (label(LABEL_WORK_DIR)?, label(LABEL_FORKED_PID)?),
    };
    let there = RunLayout::from_ids(
        work_dir,
        &run.agent_id,
        &run.framework_id,
        &run.executor_id,
        &run.container_id,
    )
    .ok()?;
    let expected = there.forked_pid_path();
    (expected.to_str() == Some(forked_pid)).then_some(RunPaths {
        work_dir: there.work_dir,
        forked_pid: expected,
    })
}

#[cfg(test)]
mod tests;
