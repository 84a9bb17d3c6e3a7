//! The siblings on a Docker host, found by label, with what the agent's checkpoint directory says
//! about their runs: what `ps` shows and `gc` decides on.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::mesos::checkpoint::{read_pid_file, PidFile};
use crate::mesos::layout::SENTINEL_FILE;
use crate::sibling::discover::{host_pids_visible, identity_alive, AgentContainer};
use crate::sibling::engine::Engine;
use crate::sibling::labels::{
    LABEL_AGENT_ID, LABEL_CONTAINER_ID, LABEL_EXECUTOR_ID, LABEL_FORKED_PID, LABEL_FRAMEWORK_ID,
    LABEL_MANAGED, LABEL_SHIM, LABEL_WORK_DIR,
};

/// How forked.pid relates to a sibling's pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForkedPid {
    /// It names the sibling's running pid: a restarted agent finds the executor.
    Matches,
    /// It names another pid.
    Differs {
        pid: u32,
    },
    Absent,
    Unparsable {
        content: String,
    },
    /// Not readable from here (the work_dir is not mounted at the path the shim saw).
    Unknown,
    /// The sibling does not run, so no pid can match.
    NotRunning,
}

/// One sibling container and the state of its run.
#[derive(Debug, Clone, Serialize)]
pub struct SiblingEntry {
    pub name: String,
    pub docker_id: String,
    pub container_id: String,
    pub executor_id: String,
    pub framework_id: String,
    pub agent_id: String,
    pub state: String,
    pub host_pid: Option<i64>,
    pub forked_pid: ForkedPid,
    /// The agent marked the run completed (`executor.sentinel`); `None`: cannot tell from here.
    pub completed: Option<bool>,
    /// The run's meta directory is gone although the work_dir's `meta/` is visible; `None`: cannot tell.
    pub run_gone: Option<bool>,
    /// The shim that started the sibling still runs; `None`: cannot tell from here.
    pub shim_alive: Option<bool>,
    #[serde(skip)]
    pub forked_pid_path: Option<PathBuf>,
}

/// What the agent's directory says about a run, read from `forked.pid`'s path and the work_dir.
pub fn run_state(
    forked_pid_path: &Path,
    work_dir: Option<&Path>,
    host_pid: Option<i64>,
    running: bool,
) -> (ForkedPid, Option<bool>, Option<bool>) {
    let run_dir = forked_pid_path.parent().and_then(Path::parent);
    let meta_visible = work_dir.map(|w| w.join("meta").is_dir()).unwrap_or(false);
    let run_exists = run_dir.map(Path::is_dir).unwrap_or(false);
    let forked = if !running {
        ForkedPid::NotRunning
    } else if !run_exists && !meta_visible {
        ForkedPid::Unknown
    } else {
        match read_pid_file(forked_pid_path) {
            Ok(PidFile::Pid(p)) if Some(i64::from(p)) == host_pid => ForkedPid::Matches,
            Ok(PidFile::Pid(p)) => ForkedPid::Differs { pid: p },
            Ok(PidFile::Absent) => ForkedPid::Absent,
            Ok(PidFile::Unparsable(content)) => ForkedPid::Unparsable { content },
            Err(_) => ForkedPid::Unknown,
        }
    };
    let completed = if run_exists {
        run_dir.map(|d| d.join(SENTINEL_FILE).exists())
    } else {
        None
    };
    let run_gone = if meta_visible {
        Some(!run_exists)
    } else {
        None
    };
    (forked, completed, run_gone)
}

/// The siblings on a Docker host, and whether this place can judge a process dead.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub entries: Vec<SiblingEntry>,
    /// Host pids are visible from here (on the host, or in a container with `--pid=host`): only
    /// then can a missing pid mean a dead process ([`crate::sibling::discover::process_gone`]).
    pub host_pids_visible: bool,
}

/// Every sibling the shim made on this Docker host that carries all of `label_filters` (Docker's
/// `key` or `key=value`).
pub async fn list(engine: &Engine, label_filters: &[String]) -> anyhow::Result<Inventory> {
    let agent = AgentContainer::discover(engine).await?;
    let host_pids_visible = host_pids_visible(agent.as_ref()) == Some(true);
    let mut filters = vec![format!("{LABEL_MANAGED}=true")];
    filters.extend(label_filters.iter().cloned());
    let mut entries = Vec::new();
    for summary in engine.list_labelled(&filters).await? {
        let labels = summary.labels.unwrap_or_default();
        let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let docker_id = summary.id.unwrap_or_default();
        let state = summary.state.map(|s| s.to_string()).unwrap_or_default();
        let running = matches!(state.as_str(), "running" | "paused" | "restarting");
        let host_pid = if running {
            engine
                .inspect_container(&docker_id)
                .await?
                .and_then(|c| c.state)
                .and_then(|s| s.pid)
                .filter(|p| *p > 0)
        } else {
            None
        };
        let forked_pid_path = labels.get(LABEL_FORKED_PID).map(PathBuf::from);
        let work_dir = labels.get(LABEL_WORK_DIR).map(PathBuf::from);
        let (forked_pid, completed, run_gone) = match &forked_pid_path {
            Some(path) => run_state(path, work_dir.as_deref(), host_pid, running),
            None => (ForkedPid::Unknown, None, None),
        };
        let name = summary
            .names
            .and_then(|n| n.into_iter().next())
            .unwrap_or_default();
        entries.push(SiblingEntry {
            name: name.trim_start_matches('/').to_string(),
            docker_id,
            container_id: label(LABEL_CONTAINER_ID),
            executor_id: label(LABEL_EXECUTOR_ID),
            framework_id: label(LABEL_FRAMEWORK_ID),
            agent_id: label(LABEL_AGENT_ID),
            state,
            host_pid,
            forked_pid,
            completed,
            run_gone,
            shim_alive: labels
                .get(LABEL_SHIM)
                .and_then(|id| identity_alive(id, host_pids_visible)),
            forked_pid_path,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Inventory {
        entries,
        host_pids_visible,
    })
}

/// Why `gc` removes a sibling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Collect {
    /// It is not running: its executor has exited.
    Exited,
    /// It was created but never started, and its shim is gone: a launch that died half-way.
    NeverStarted,
    /// The agent marked its run completed; a still-running executor there has been given up on.
    RunCompleted,
    /// Its run's meta directory is gone: the agent has garbage-collected the run.
    RunGone,
    /// Its shim is gone and forked.pid does not name it: no agent will ever find this executor
    /// (the agent died between the sibling's start and the checkpoint).
    Orphaned,
}

/// The gc decision. A sibling whose run is live, or that cannot be judged from here, is kept;
/// so is one whose shim is still launching it.
pub fn collect_reason(entry: &SiblingEntry) -> Option<Collect> {
    match entry.state.as_str() {
        "exited" | "dead" => Some(Collect::Exited),
        "created" if entry.shim_alive == Some(false) => Some(Collect::NeverStarted),
        "running" | "paused" | "restarting" => {
            if entry.completed == Some(true) {
                Some(Collect::RunCompleted)
            } else if entry.run_gone == Some(true) {
                Some(Collect::RunGone)
            } else if entry.shim_alive == Some(false)
                && matches!(
                    entry.forked_pid,
                    ForkedPid::Differs { .. } | ForkedPid::Absent | ForkedPid::Unparsable { .. }
                )
            {
                Some(Collect::Orphaned)
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(state: &str, completed: Option<bool>, run_gone: Option<bool>) -> SiblingEntry {
        SiblingEntry {
            name: "executor-mesos-c".into(),
            docker_id: "d".into(),
            container_id: "c".into(),
            executor_id: "e".into(),
            framework_id: "f".into(),
            agent_id: "a".into(),
            state: state.into(),
            host_pid: Some(42),
            forked_pid: ForkedPid::Matches,
            completed,
            run_gone,
            shim_alive: None,
            forked_pid_path: None,
        }
    }

    #[test]
    fn gc_never_collects_a_running_executor_of_a_live_or_unknown_run() {
        assert_eq!(
            collect_reason(&entry("running", Some(false), Some(false))),
            None
        );
        assert_eq!(collect_reason(&entry("running", None, None)), None);
        assert_eq!(
            collect_reason(&entry("paused", Some(false), Some(false))),
            None
        );
        // The agent and the shim are gone but forked.pid names it: a restarted agent finds it.
        let recoverable = SiblingEntry {
            shim_alive: Some(false),
            ..entry("running", Some(false), Some(false))
        };
        assert_eq!(collect_reason(&recoverable), None);
        // Still being launched: its shim runs, forked.pid is not rewritten yet.
        let launching = SiblingEntry {
            forked_pid: ForkedPid::Differs { pid: 9 },
            shim_alive: Some(true),
            ..entry("running", Some(false), Some(false))
        };
        assert_eq!(collect_reason(&launching), None);
        let unknown = SiblingEntry {
            forked_pid: ForkedPid::Differs { pid: 9 },
            ..entry("running", Some(false), Some(false))
        };
        assert_eq!(
            collect_reason(&unknown),
            None,
            "a shim that cannot be judged is not dead"
        );
        let created_launching = SiblingEntry {
            shim_alive: Some(true),
            ..entry("created", None, None)
        };
        assert_eq!(collect_reason(&created_launching), None);
    }

    #[test]
    fn gc_collects_exited_completed_gone_orphaned_and_abandoned_siblings() {
        assert_eq!(
            collect_reason(&entry("exited", Some(false), Some(false))),
            Some(Collect::Exited)
        );
        assert_eq!(
            collect_reason(&entry("running", Some(true), Some(false))),
            Some(Collect::RunCompleted)
        );
        assert_eq!(
            collect_reason(&entry("running", None, Some(true))),
            Some(Collect::RunGone)
        );
        let orphan = SiblingEntry {
            forked_pid: ForkedPid::Differs { pid: 9 },
            shim_alive: Some(false),
            ..entry("running", Some(false), Some(false))
        };
        assert_eq!(collect_reason(&orphan), Some(Collect::Orphaned));
        let abandoned = SiblingEntry {
            shim_alive: Some(false),
            ..entry("created", None, None)
        };
        assert_eq!(collect_reason(&abandoned), Some(Collect::NeverStarted));
        assert_eq!(collect_reason(&entry("removing", None, None)), None);
    }

    #[test]
    fn the_run_state_is_read_from_the_agents_directory() {
        let work = std::env::temp_dir().join(format!("shim-inventory-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let run = work.join("meta/slaves/S/frameworks/F/executors/E/runs/C");
        std::fs::create_dir_all(run.join("pids")).unwrap();
        let forked = run.join("pids/forked.pid");
        std::fs::write(&forked, "42").unwrap();
        assert_eq!(
            run_state(&forked, Some(&work), Some(42), true),
            (ForkedPid::Matches, Some(false), Some(false))
        );
        assert_eq!(
            run_state(&forked, Some(&work), Some(7), true).0,
            ForkedPid::Differs { pid: 42 }
        );
        std::fs::write(run.join("executor.sentinel"), "").unwrap();
        assert_eq!(
            run_state(&forked, Some(&work), Some(42), true).1,
            Some(true)
        );
        std::fs::remove_dir_all(&run).unwrap();
        assert_eq!(
            run_state(&forked, Some(&work), Some(42), true),
            (ForkedPid::Absent, None, Some(true))
        );
        // Seen from a place where the work_dir is not mounted, nothing can be judged.
        let elsewhere = Path::new("/nonexistent/work");
        assert_eq!(
            run_state(
                &elsewhere.join("meta/x/pids/forked.pid"),
                Some(elsewhere),
                Some(1),
                true
            ),
            (ForkedPid::Unknown, None, None)
        );
        std::fs::remove_dir_all(&work).unwrap();
    }
}
