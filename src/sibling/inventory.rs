//! The siblings on a Docker host, found by label, with what the agent's checkpoint directory says
//! about their runs: what `ps` shows, what `gc` and a launch's sweep decide on, and the re-check
//! made right before anything is removed.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::agent_container::{judge_host_pids, local_path_for, AgentContainer, HostPids};
use crate::engine::host_facts;
use crate::engine::Engine;
use crate::mesos::checkpoint::{read_pid_file, PidFile};
use crate::mesos::layout::{RunLayout, SENTINEL_FILE};
use crate::no_follow::{self, PathError};
use crate::proc::{check_pid_belongs_to, in_initial_pid_namespace, pid_liveness, ProcessIdentity};
use crate::sibling::identity::{self, Command, NotSibling, Observed};
use crate::sibling::label_sets::{self, Unreadable};
use crate::sibling::labels::{
    LABEL_CONTAINER_ID, LABEL_EXECUTOR, LABEL_EXECUTOR_ID, LABEL_FRAMEWORK_ID, LABEL_MANAGED,
    LABEL_SHIM, LABEL_WORK_DIR_HOST,
};
use crate::sibling::spec::SiblingState;

/// How forked.pid relates to a sibling's pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ForkedPid {
    /// It names the sibling's running pid: a restarted agent finds the executor.
    Matches,
    /// It names another pid; `alive`: whether that process runs (`None`: cannot tell from here).
    Differs {
        pid: u32,
        alive: Option<bool>,
    },
    Absent,
    Unparsable {
        content: String,
    },
    /// Not readable from here (the work_dir is not visible where this runs).
    Unknown,
    /// The sibling does not run, so no pid can match.
    NotRunning,
}

/// One sibling container and the state of its run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SiblingEntry {
    pub name: String,
    pub docker_id: String,
    pub container_id: String,
    pub executor_id: String,
    pub framework_id: String,
    pub agent_id: String,
    /// `mesos-executor` or `mesos-docker-executor` (empty for siblings of older releases).
    pub executor: String,
    pub state: String,
    /// The executor's exit status, for a sibling that exited (as the daemon's listing says it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    pub host_pid: Option<i64>,
    pub forked_pid: ForkedPid,
    /// The agent marked the run completed (`executor.sentinel`); `None`: cannot tell from here.
    pub completed: Option<bool>,
    /// The run's meta directory is gone although the work_dir's `meta/` is visible; `None`: cannot tell.
    pub run_gone: Option<bool>,
    /// The shim that started the sibling still runs; `None`: cannot tell from here.
    pub shim_alive: Option<bool>,
    /// The agent checkpoints the run, as its labels say or, where its label set does not say,
    /// as its meta run directory shows (only a run that checkpoints has one); `None`: unknown.
    pub checkpointing: Option<bool>,
    /// Its label set ([`label_sets`]); `None` with `unreadable`.
    pub label_set: Option<u32>,
    /// Why its labels are not read, and it is never judged: they are newer than this release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<Unreadable>,
    /// forked.pid, where this process sees it.
    #[serde(skip)]
    pub forked_pid_path: Option<PathBuf>,
    #[serde(skip)]
    work_dir: Option<PathBuf>,
}

impl SiblingEntry {
    pub(crate) fn sibling_state(&self) -> SiblingState {
        SiblingState::from_docker(&self.state)
    }
}

/// What the agent's directory says about a run, read from `forked.pid`'s path and the work_dir
/// (both as seen from here, both in the agent's layout: see [`identity::run_paths`]). Every
/// directory is opened without following a link, `forked.pid` is read the one safe way
/// ([`crate::no_follow`]), and the sentinel is only looked at, never opened.
pub(crate) fn run_state(
    forked_pid_path: &Path,
    work_dir: Option<&Path>,
    host_pid: Option<i64>,
    running: bool,
    host_pids_visible: bool,
) -> (ForkedPid, Option<bool>, Option<bool>) {
    let not_running_or = |forked| {
        if running {
            forked
        } else {
            ForkedPid::NotRunning
        }
    };
    let meta_visible =
        work_dir.is_some_and(|w| matches!(no_follow::dir_exists(&w.join("meta")), Ok(true)));
    let run_dir = match forked_pid_path.parent().and_then(Path::parent) {
        Some(dir) => no_follow::open_dir(dir),
        None => return (not_running_or(ForkedPid::Unknown), None, None),
    };
    let run_dir = match run_dir {
        Ok(fd) => Some(fd),
        Err(PathError::Missing(_)) => None,
        // A link or a file where the agent makes directories: nothing here can be judged.
        Err(_) => return (not_running_or(ForkedPid::Unknown), None, None),
    };
    let forked = if !running {
        ForkedPid::NotRunning
    } else if run_dir.is_none() && !meta_visible {
        ForkedPid::Unknown
    } else {
        read_forked_pid(forked_pid_path, host_pid, host_pids_visible)
    };
    let completed = run_dir.as_ref().map(has_sentinel);
    let run_gone = meta_visible.then_some(run_dir.is_none());
    (forked, completed, run_gone)
}

fn read_forked_pid(path: &Path, host_pid: Option<i64>, host_pids_visible: bool) -> ForkedPid {
    match read_pid_file(path) {
        Ok(PidFile::Pid(p)) if Some(i64::from(p)) == host_pid => ForkedPid::Matches,
        Ok(PidFile::Pid(p)) => ForkedPid::Differs {
            pid: p,
            alive: pid_liveness(p, host_pids_visible),
        },
        Ok(PidFile::Absent) => ForkedPid::Absent,
        Ok(PidFile::Unparsable(content)) => ForkedPid::Unparsable { content },
        Err(_) => ForkedPid::Unknown,
    }
}

/// The agent's `executor.sentinel` is in the run directory `dir` (whatever it is: it is not opened).
fn has_sentinel(dir: &OwnedFd) -> bool {
    nix::sys::stat::fstatat(dir, SENTINEL_FILE, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
}

/// The siblings on a Docker host, and whether this place can judge a process dead.
#[derive(Debug, Clone)]
pub(crate) struct Inventory {
    pub entries: Vec<SiblingEntry>,
    /// Containers labelled as siblings that are not (see [`identity::judge`]): never judged,
    /// read from or removed; `ps` shows them for what they are.
    pub foreign: Vec<ForeignContainer>,
    /// Whether host pids are seen from here ([`judge_host_pids`]): only then is any pid judged
    /// ([`crate::proc::process_gone`]); elsewhere every pid is taken as alive.
    pub host_pids: HostPids,
    agent: Option<AgentContainer>,
}

/// A container that carries the shim's `managed` label but is not a sibling: what its labels
/// claim (raw, as anyone may have set them) and why it is not one.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ForeignContainer {
    pub name: String,
    pub docker_id: String,
    pub state: String,
    pub container_id: String,
    pub executor_id: String,
    pub framework_id: String,
    pub why: NotSibling,
}

/// Every sibling the shim made on this Docker host that carries all of `label_filters` (Docker's
/// `key` or `key=value`), in any of `states` (all when empty), seen from the container this
/// process runs in (found here).
pub(crate) async fn list(
    engine: &Engine,
    label_filters: &[String],
    states: &[&str],
) -> anyhow::Result<Inventory> {
    let agent = AgentContainer::discover(engine).await?;
    list_seen_from(engine, agent, label_filters, states, None).await
}

/// [`list`], seen from `agent` (`None`: the host), which the caller has already described. Each
/// container labelled `managed` is judged by [`identity::judge`] on what the listing says of it;
/// the runs are judged once it is known whether host pids are seen from here (`known`: the
/// caller has shown it already).
async fn list_seen_from(
    engine: &Engine,
    agent: Option<AgentContainer>,
    label_filters: &[String],
    states: &[&str],
    known: Option<HostPids>,
) -> anyhow::Result<Inventory> {
    let mut filters = vec![format!("{LABEL_MANAGED}=true")];
    filters.extend(label_filters.iter().cloned());
    let mut inventory = Inventory {
        entries: Vec::new(),
        foreign: Vec::new(),
        host_pids: HostPids::Unproven(String::new()),
        agent,
    };
    let mut labels_of = Vec::new();
    for summary in engine.list_labelled(&filters, states).await? {
        let labels = summary.labels.clone().unwrap_or_default();
        let names = summary.names.clone().unwrap_or_default();
        let state = summary.state.map(|s| s.to_string()).unwrap_or_default();
        let docker_id = summary.id.clone().unwrap_or_default();
        let observed = Observed {
            names: &names,
            command: Command::Joined(summary.command.as_deref().unwrap_or_default()),
            mounts: summary.mounts.as_deref(),
            labels: &labels,
        };
        let run = match identity::judge(&observed) {
            Ok(run) => run,
            Err(why) => {
                inventory
                    .foreign
                    .push(foreign(&labels, &names, docker_id, state, why));
                continue;
            }
        };
        let mut entry = describe(&labels, &run, docker_id, state, inventory.agent.as_ref());
        entry.exit_code = summary.status.as_deref().and_then(exit_code_in_status);
        if entry.sibling_state() == SiblingState::Running {
            entry.host_pid = engine
                .inspect_container(&entry.docker_id)
                .await?
                .and_then(|c| c.state)
                .and_then(|s| s.pid)
                .filter(|p| *p > 0);
        }
        inventory.entries.push(entry);
        labels_of.push(labels);
    }
    inventory.host_pids = match known {
        Some(known) => known,
        // No sibling to judge, so no pid is read: nothing to ask the daemon or /proc.
        None if inventory.entries.is_empty() => HostPids::Seen,
        None => host_pids_here(engine, inventory.agent.as_ref(), &inventory.entries).await,
    };
    let visible = inventory.host_pids.seen();
    for (entry, labels) in inventory.entries.iter_mut().zip(&labels_of) {
        judge_run(entry, labels, visible);
    }
    inventory.entries.sort_by(|a, b| a.name.cmp(&b.name));
    inventory.foreign.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(inventory)
}

/// The exit status in the status text of Docker's listing: `Exited (137) 2 minutes ago` → 137.
fn exit_code_in_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest[..rest.find(')')?].parse().ok()
}

/// [`judge_host_pids`] on the host pids of the running siblings in `entries`, else (none runs)
/// on one running container of the daemon's, else on this process's PID namespace.
async fn host_pids_here(
    engine: &Engine,
    agent: Option<&AgentContainer>,
    entries: &[SiblingEntry],
) -> HostPids {
    let mut witnesses: Vec<(String, u32)> = entries
        .iter()
        .filter_map(|e| Some((e.docker_id.clone(), u32::try_from(e.host_pid?).ok()?)))
        .collect();
    if witnesses.is_empty() {
        // A failed request proves nothing: the pids are then not judged.
        witnesses.extend(engine.one_running_pid().await.ok().flatten());
    }
    let checks: Vec<_> = witnesses
        .into_iter()
        .map(|(id, pid)| {
            let check = check_pid_belongs_to(pid, &id);
            (id.chars().take(12).collect(), check)
        })
        .collect();
    judge_host_pids(agent, &checks, in_initial_pid_namespace())
}

fn foreign(
    labels: &HashMap<String, String>,
    names: &[String],
    docker_id: String,
    state: String,
    why: NotSibling,
) -> ForeignContainer {
    let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
    ForeignContainer {
        name: names
            .first()
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        docker_id,
        state,
        container_id: label(LABEL_CONTAINER_ID),
        executor_id: label(LABEL_EXECUTOR_ID),
        framework_id: label(LABEL_FRAMEWORK_ID),
        why,
    }
}

/// An entry for the sibling of `run` (what [`identity::judge`] accepted), its paths as seen from
/// here: the host paths its labels record, only in the agent's layout for `run`
/// ([`identity::run_paths`]), mapped through this process's own mounts.
fn describe(
    labels: &HashMap<String, String>,
    run: &RunLayout,
    docker_id: String,
    state: String,
    agent: Option<&AgentContainer>,
) -> SiblingEntry {
    let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
    let paths = identity::run_paths(labels, run);
    let here = |host: &Path| local_path_for(agent, host);
    let reading = label_sets::read(labels);
    SiblingEntry {
        name: run.sibling_name(),
        docker_id,
        container_id: run.container_id.clone(),
        executor_id: run.executor_id.clone(),
        framework_id: run.framework_id.clone(),
        agent_id: run.agent_id.clone(),
        executor: label(LABEL_EXECUTOR),
        state,
        exit_code: None,
        host_pid: None,
        forked_pid: ForkedPid::Unknown,
        completed: None,
        run_gone: None,
        shim_alive: None,
        checkpointing: reading.as_ref().ok().and_then(|r| r.checkpointing),
        label_set: reading.as_ref().ok().map(|r| r.set),
        unreadable: reading.err(),
        forked_pid_path: paths.as_ref().and_then(|p| here(&p.forked_pid)),
        work_dir: paths.as_ref().and_then(|p| here(&p.work_dir)),
    }
}

/// Reads the run's state and the shim's liveness into `entry`.
fn judge_run(entry: &mut SiblingEntry, labels: &HashMap<String, String>, visible: bool) {
    let running = entry.sibling_state() == SiblingState::Running;
    (entry.forked_pid, entry.completed, entry.run_gone) = match &entry.forked_pid_path {
        Some(path) => run_state(
            path,
            entry.work_dir.as_deref(),
            entry.host_pid,
            running,
            visible,
        ),
        None => (ForkedPid::Unknown, None, None),
    };
    if entry.checkpointing.is_none() && entry.completed.is_some() {
        // Its labels do not say, but the agent made its meta run directory: only a run that
        // checkpoints has one.
        entry.checkpointing = Some(true);
    }
    entry.shim_alive = labels
        .get(LABEL_SHIM)
        .and_then(|id| id.parse::<ProcessIdentity>().ok())
        .and_then(|id| id.liveness(visible));
}

impl Inventory {
    /// The entry as it is now, read again from the daemon and the run's files: what `gc` decides
    /// on right before it removes, so that a sibling that changed since the listing (a relaunch
    /// adopted it, its shim checkpointed it) is judged on what holds now. `None`: it is gone, or
    /// what the daemon now says of it makes it no sibling ([`identity::judge`], on its inspection).
    pub(crate) async fn recheck(
        &self,
        engine: &Engine,
        entry: &SiblingEntry,
    ) -> anyhow::Result<Option<SiblingEntry>> {
        let Some(info) = engine.inspect_container(&entry.docker_id).await? else {
            return Ok(None);
        };
        let config = info.config.unwrap_or_default();
        let labels = config.labels.unwrap_or_default();
        let names = [info.name.unwrap_or_default()];
        let args = info.args.unwrap_or_default();
        let observed = Observed {
            names: &names,
            command: Command::Argv {
                path: info.path.as_deref().unwrap_or_default(),
                args: &args,
            },
            mounts: info.mounts.as_deref(),
            labels: &labels,
        };
        let Ok(run) = identity::judge(&observed) else {
            return Ok(None);
        };
        let state = info.state.unwrap_or_default();
        let status = state.status.map(|s| s.to_string()).unwrap_or_default();
        let mut fresh = describe(
            &labels,
            &run,
            entry.docker_id.clone(),
            status,
            self.agent.as_ref(),
        );
        if fresh.sibling_state() == SiblingState::Running {
            fresh.host_pid = state.pid.filter(|p| *p > 0);
        } else {
            fresh.exit_code = state.exit_code;
        }
        judge_run(&mut fresh, &labels, self.host_pids.seen());
        Ok(Some(fresh))
    }
}

/// Why `gc` removes a sibling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Collect {
    /// It is not running: its executor has exited.
    Exited,
    /// It was created but never started, and its shim is gone: a launch that died half-way.
    NeverStarted,
    /// The agent marked its run completed; a still-running executor there has been given up on.
    RunCompleted,
    /// Its run's meta directory is gone: the agent has garbage-collected the run.
    RunGone,
    /// Its shim is gone and forked.pid names a dead pid: no agent will ever find this executor
    /// (the agent died between the sibling's start and the checkpoint).
    Orphaned,
}

impl Collect {
    /// What `gc` says of it.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Collect::Exited => "exited",
            Collect::RunCompleted => "run completed (executor.sentinel)",
            Collect::RunGone => "run's meta directory gone",
            Collect::NeverStarted => "created, never started, its shim gone",
            Collect::Orphaned => "its shim gone and forked.pid names a dead pid",
        }
    }
}

/// What `gc` decides of a sibling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Proven dead, for this reason.
    Collect(Collect),
    /// Alive, or not to be judged from here (the work_dir or the pids not seen): kept silently.
    Keep,
    /// Kept because what it carries cannot be judged: `gc` says why.
    CannotJudge(CannotJudge),
}

/// Why `gc` keeps a sibling it would judge if it could read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CannotJudge {
    /// Its labels are newer than this release, or hold what it does not know.
    Labels(Unreadable),
    /// It runs, has no meta run directory, and its labels (a set before the `checkpoint` label)
    /// do not say whether its run checkpoints: the run may be finished or may never have had one.
    CheckpointingUnknown,
}

impl CannotJudge {
    /// What `gc` says of it.
    pub(crate) fn describe(&self) -> String {
        match self {
            CannotJudge::Labels(why) => why.describe(),
            CannotJudge::CheckpointingUnknown => "its run has no meta directory and its labels \
                (a release before the checkpoint label) do not say whether the run checkpoints: \
                remove it by hand once its executor has exited"
                .to_string(),
        }
    }
}

/// The gc decision: removal only of what is proven dead. A sibling whose run is live, or that
/// cannot be judged from here, is kept; so is one whose shim is still launching it, one whose
/// forked.pid names a live process (a launch, or a relaunch that adopts it, under way), and one
/// whose labels this release cannot read (see [`label_sets`]): a missing fact never allows a
/// removal.
pub(crate) fn verdict(entry: &SiblingEntry) -> Verdict {
    if let Some(why) = &entry.unreadable {
        return Verdict::CannotJudge(CannotJudge::Labels(why.clone()));
    }
    match entry.sibling_state() {
        SiblingState::Stopped => Verdict::Collect(Collect::Exited),
        SiblingState::Created if entry.shim_alive == Some(false) => {
            Verdict::Collect(Collect::NeverStarted)
        }
        SiblingState::Running => match entry.checkpointing {
            Some(true) => running_checkpointed(entry).map_or(Verdict::Keep, Verdict::Collect),
            // A run that does not checkpoint has no meta directory, sentinel or forked.pid to
            // judge it by: its executor exits by itself once its agent is gone (the executor
            // driver does), and only then is it collected.
            Some(false) => Verdict::Keep,
            None if entry.shim_alive == Some(true) => Verdict::Keep,
            None if entry.run_gone == Some(true) => {
                Verdict::CannotJudge(CannotJudge::CheckpointingUnknown)
            }
            None => Verdict::Keep,
        },
        SiblingState::Created | SiblingState::Removing | SiblingState::Unknown => Verdict::Keep,
    }
}

/// The run's state in a few words, as `ps` prints it: what Docker says of the sibling, and what
/// [`verdict`] (gc's own decision) makes of it, so that `ps` and `gc` never disagree.
pub(crate) fn state_in_words(entry: &SiblingEntry) -> String {
    let docker = entry.state.as_str();
    let running = |what: &str| match docker {
        "running" => what.to_string(),
        other => format!("{what} ({other})"),
    };
    match verdict(entry) {
        Verdict::Collect(Collect::Exited) => match (docker, entry.exit_code) {
            ("dead", _) => "dead".into(),
            (_, Some(code)) => format!("exited {code}"),
            (_, None) => "exited".into(),
        },
        Verdict::Collect(Collect::NeverStarted) => "never started (its shim is gone)".into(),
        Verdict::Collect(Collect::RunCompleted) => running("running, run completed"),
        Verdict::Collect(Collect::RunGone) => running("running, run gone"),
        Verdict::Collect(Collect::Orphaned) => running("orphaned"),
        Verdict::CannotJudge(_) => running("running, not judged"),
        Verdict::Keep => match entry.sibling_state() {
            SiblingState::Running => running("running"),
            SiblingState::Created => "starting".into(),
            _ => docker.to_string(),
        },
    }
}

/// [`verdict`] of a running sibling whose run checkpoints: its meta run directory tells.
fn running_checkpointed(entry: &SiblingEntry) -> Option<Collect> {
    let forked_pid_dead = matches!(
        entry.forked_pid,
        ForkedPid::Differs {
            alive: Some(false),
            ..
        } | ForkedPid::Absent
            | ForkedPid::Unparsable { .. }
    );
    if entry.completed == Some(true) {
        Some(Collect::RunCompleted)
    } else if entry.run_gone == Some(true) {
        Some(Collect::RunGone)
    } else if entry.shim_alive == Some(false) && forked_pid_dead {
        Some(Collect::Orphaned)
    } else {
        None
    }
}

/// Why `gc` removes `entry`, if it does ([`verdict`]).
pub(crate) fn collect_reason(entry: &SiblingEntry) -> Option<Collect> {
    match verdict(entry) {
        Verdict::Collect(reason) => Some(reason),
        Verdict::Keep | Verdict::CannotJudge(_) => None,
    }
}

/// How often the launches of one agent container sweep a work_dir's leftovers: a burst of
/// launches sweeps once, not once each (each sweep lists the host's stopped siblings, a cost that
/// grows with them), and what a gone shim left is removed within this time of the next launch.
pub(crate) const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether this launch sweeps the siblings left behind under `work_dir_host`: the first launch
/// of the agent container, and then the first one at least [`SWEEP_EVERY`] after the last sweep.
/// Told by a file in the agent container's `/run` (root's alone), touched under a lock by the
/// launch that sweeps. Where the file cannot be used, every launch sweeps, as before.
pub(crate) fn sweep_is_due(work_dir_host: &Path) -> bool {
    sweep_is_due_in(Path::new(host_facts::CACHE_DIR), work_dir_host)
}

fn sweep_is_due_in(dir: &Path, work_dir_host: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let name = format!("sweep-{}", host_facts::digest(&work_dir_host));
    let Some(file) = host_facts::open_cache_file(dir, &name) else {
        return true;
    };
    let Ok(meta) = file.metadata() else {
        return true;
    };
    if !meta.is_file() || meta.uid() != nix::unistd::geteuid().as_raw() {
        return true;
    }
    let Ok(held) = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
    else {
        // Another launch is deciding right now, and sweeps if it is time.
        return false;
    };
    let swept_lately = meta.len() > 0
        && meta
            .modified()
            .ok()
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|age| age < SWEEP_EVERY);
    if swept_lately {
        return false;
    }
    // Touched for the launches after this one; should that fail, they sweep too.
    use std::io::Write;
    let now = format!("{:?}\n", std::time::SystemTime::now());
    let _ = held
        .set_len(0)
        .and_then(|()| (&*held).write_all(now.as_bytes()));
    true
}

/// What a launch removes on its way, off its critical path: siblings of the same work_dir that
/// have stopped (or were never started) after their shim was gone, so that nobody else would
/// remove them. One list of the stopped and created siblings, then one removal each. Returns how
/// many it removed. `seen_from`: the agent container the launch already described (`None`: the
/// host), so that the sweep asks the daemon nothing more about it.
pub(crate) async fn sweep(
    engine: &Engine,
    work_dir_host: &Path,
    seen_from: Option<AgentContainer>,
) -> anyhow::Result<usize> {
    let filter = format!("{LABEL_WORK_DIR_HOST}={}", work_dir_host.display());
    let mut states = SiblingState::STOPPED_NAMES.to_vec();
    states.push("created");
    // A relay sweeps once it holds its own sibling's process, the pid the daemon reported seen
    // in /proc as that container's: host pids are seen from here, and the daemon is asked
    // nothing more about it (a burst of launches, each the first of its work_dir, sweeps at
    // once, while its executors may be exiting at once too).
    let inventory =
        list_seen_from(engine, seen_from, &[filter], &states, Some(HostPids::Seen)).await?;
    let mut removed = 0;
    for entry in &inventory.entries {
        let left_behind = entry.shim_alive == Some(false)
            && matches!(
                collect_reason(entry),
                Some(Collect::Exited | Collect::NeverStarted)
            );
        if left_behind {
            match engine.remove(&entry.docker_id).await {
                Ok(()) => {
                    tracing::info!(
                        container = entry.name,
                        "removed a sibling left behind by a shim that is gone"
                    );
                    removed += 1;
                }
                Err(e) => {
                    tracing::warn!(container = entry.name, error = %format!("{e:#}"), "could not remove a sibling left behind")
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_sweeps_once_and_each_work_dir_on_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        assert!(
            sweep_is_due_in(&cache, Path::new("/srv/mesos")),
            "the first launch sweeps"
        );
        assert!(
            !sweep_is_due_in(&cache, Path::new("/srv/mesos")),
            "the next ones do not"
        );
        assert!(sweep_is_due_in(&cache, Path::new("/srv/other")));
        // A planted link is never written through: that launch sweeps, as before.
        let other = dir.path().join("elsewhere");
        std::fs::write(&other, "").unwrap();
        for entry in std::fs::read_dir(&cache).unwrap() {
            let path = entry.unwrap().path();
            std::fs::remove_file(&path).unwrap();
            std::os::unix::fs::symlink(&other, &path).unwrap();
        }
        assert!(sweep_is_due_in(&cache, Path::new("/srv/mesos")));
        assert_eq!(std::fs::read_to_string(&other).unwrap(), "");
    }

    fn entry(state: &str, completed: Option<bool>, run_gone: Option<bool>) -> SiblingEntry {
        SiblingEntry {
            name: "executor-mesos-c".into(),
            docker_id: "d".into(),
            container_id: "c".into(),
            executor_id: "e".into(),
            framework_id: "f".into(),
            agent_id: "a".into(),
            executor: "mesos-executor".into(),
            state: state.into(),
            exit_code: None,
            host_pid: Some(42),
            forked_pid: ForkedPid::Matches,
            completed,
            run_gone,
            shim_alive: None,
            checkpointing: Some(true),
            label_set: Some(3),
            unreadable: None,
            forked_pid_path: None,
            work_dir: None,
        }
    }

    /// `ps` says in words what gc decides, from Docker's state and the run's files.
    #[test]
    fn the_state_in_words_is_gcs_verdict() {
        let words = |e: &SiblingEntry| state_in_words(e);
        assert_eq!(
            words(&entry("running", Some(false), Some(false))),
            "running"
        );
        assert_eq!(
            words(&entry("paused", Some(false), Some(false))),
            "running (paused)"
        );
        let exited = SiblingEntry {
            exit_code: Some(137),
            ..entry("exited", None, None)
        };
        assert_eq!(words(&exited), "exited 137");
        assert_eq!(words(&entry("exited", None, None)), "exited");
        assert_eq!(
            words(&entry("running", Some(true), None)),
            "running, run completed"
        );
        assert_eq!(
            words(&entry("running", Some(false), Some(true))),
            "running, run gone"
        );
        let orphaned = SiblingEntry {
            shim_alive: Some(false),
            forked_pid: ForkedPid::Absent,
            ..entry("running", Some(false), Some(false))
        };
        assert_eq!(words(&orphaned), "orphaned");
        let never = SiblingEntry {
            shim_alive: Some(false),
            ..entry("created", None, None)
        };
        assert_eq!(words(&never), "never started (its shim is gone)");
        assert_eq!(words(&entry("created", None, None)), "starting");
        assert_eq!(exit_code_in_status("Exited (137) 2 minutes ago"), Some(137));
        assert_eq!(exit_code_in_status("Up 3 hours"), None);
    }

    /// A run that does not checkpoint has no meta directory: "gone" says nothing of it, and a
    /// running executor of such a run is never collected, even with its shim gone; once it has
    /// exited it is.
    #[test]
    fn a_running_executor_of_a_run_that_does_not_checkpoint_is_never_collected() {
        for shim_alive in [Some(true), Some(false), None] {
            let running = SiblingEntry {
                checkpointing: Some(false),
                forked_pid: ForkedPid::Absent,
                shim_alive,
                ..entry("running", None, Some(true))
            };
            assert_eq!(collect_reason(&running), None, "{shim_alive:?}");
        }
        let exited = SiblingEntry {
            checkpointing: Some(false),
            shim_alive: Some(false),
            ..entry("exited", None, Some(true))
        };
        assert_eq!(collect_reason(&exited), Some(Collect::Exited));
    }

    /// A sibling as the shim of `labels` made it for a run under `work`, running as host pid
    /// `host_pid` (or exited), judged from the host.
    fn judged(
        work: &Path,
        labels: &HashMap<String, String>,
        state: &str,
        host_pid: i64,
    ) -> SiblingEntry {
        let run = RunLayout::from_ids(work.to_str().unwrap(), "S0", "F1", "app.1", "C-1").unwrap();
        let mut entry = describe(labels, &run, "d".into(), state.into(), None);
        entry.host_pid = (state == "running").then_some(host_pid);
        judge_run(&mut entry, labels, true);
        entry
    }

    /// The exact labels of the release before the `checkpoint` label, on a running sibling of a
    /// framework that does not checkpoint (no meta run directory): kept while its shim lives,
    /// kept and said why once it is gone, judged as ever where the meta run directory shows that
    /// the run checkpoints.
    #[test]
    fn a_sibling_of_the_release_before_the_checkpoint_label_is_never_taken_for_a_finished_run() {
        use crate::test_support::set_1_labels;
        let work = tempfile::tempdir().unwrap();
        let work = work.path();
        std::fs::create_dir_all(work.join("meta/slaves")).unwrap();
        let wd = work.to_str().unwrap();
        let me = ProcessIdentity::current().unwrap().to_string();

        let alive = judged(work, &set_1_labels(wd, &me), "running", 42);
        assert_eq!((alive.label_set, alive.checkpointing), (Some(1), None));
        assert_eq!((alive.run_gone, alive.shim_alive), (Some(true), Some(true)));
        assert_eq!(verdict(&alive), Verdict::Keep, "its shim lives");

        let shim_gone = judged(work, &set_1_labels(wd, "4194305:1"), "running", 42);
        assert_eq!(shim_gone.shim_alive, Some(false));
        assert_eq!(
            verdict(&shim_gone),
            Verdict::CannotJudge(CannotJudge::CheckpointingUnknown)
        );
        assert_eq!(collect_reason(&shim_gone), None);

        let exited = judged(work, &set_1_labels(wd, "4194305:1"), "exited", 42);
        assert_eq!(verdict(&exited), Verdict::Collect(Collect::Exited));

        // The same release's sibling of a run that checkpoints: its meta run directory says so.
        let meta = work.join("meta/slaves/S0/frameworks/F1/executors/app.1/runs/C-1");
        std::fs::create_dir_all(meta.join("pids")).unwrap();
        std::fs::write(meta.join("pids/forked.pid"), "42").unwrap();
        let checkpointed = judged(work, &set_1_labels(wd, "4194305:1"), "running", 42);
        assert_eq!(checkpointed.checkpointing, Some(true));
        assert_eq!(verdict(&checkpointed), Verdict::Keep, "forked.pid names it");
        std::fs::write(meta.join("executor.sentinel"), "").unwrap();
        let completed = judged(work, &set_1_labels(wd, "4194305:1"), "running", 42);
        assert_eq!(verdict(&completed), Verdict::Collect(Collect::RunCompleted));
    }

    /// Labels newer than this release, or a value it does not know: never judged, not even
    /// once exited, and `gc` says why.
    #[test]
    fn a_sibling_whose_labels_are_newer_is_kept_and_said_why() {
        use crate::sibling::labels::{LABEL_CHECKPOINT, LABEL_INIT_PROTOCOL, LABEL_LABEL_SET};
        let work = tempfile::tempdir().unwrap();
        let work = work.path();
        let mut labels = crate::test_support::set_1_labels(work.to_str().unwrap(), "4194305:1");
        labels.insert(LABEL_CHECKPOINT.into(), "true".into());
        labels.insert(LABEL_LABEL_SET.into(), "4".into());
        let newer = judged(work, &labels, "exited", 42);
        let expected = Unreadable::NewerSet { version: 4 };
        assert_eq!(
            verdict(&newer),
            Verdict::CannotJudge(CannotJudge::Labels(expected.clone()))
        );
        assert!(CannotJudge::Labels(expected)
            .describe()
            .contains("set 4, newer than this release's 3"),);
        labels.insert(LABEL_LABEL_SET.into(), "3".into());
        labels.insert(LABEL_INIT_PROTOCOL.into(), "9".into());
        assert!(matches!(
            verdict(&judged(work, &labels, "exited", 42)),
            Verdict::CannotJudge(CannotJudge::Labels(Unreadable::NewerProtocol {
                version: 9
            }))
        ));
        labels.insert(LABEL_INIT_PROTOCOL.into(), "1".into());
        assert_eq!(
            verdict(&judged(work, &labels, "exited", 42)),
            Verdict::Collect(Collect::Exited),
            "the set this release writes"
        );
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
            forked_pid: ForkedPid::Differs {
                pid: 9,
                alive: Some(true),
            },
            shim_alive: Some(true),
            ..entry("running", Some(false), Some(false))
        };
        assert_eq!(collect_reason(&launching), None);
        // Adopted by a relaunch: the first shim is dead, but forked.pid names the live shim
        // that adopts it and is about to point forked.pid at it.
        let adopted = SiblingEntry {
            shim_alive: Some(false),
            ..launching.clone()
        };
        assert_eq!(collect_reason(&adopted), None);
        let unknown = SiblingEntry {
            forked_pid: ForkedPid::Differs {
                pid: 9,
                alive: Some(false),
            },
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
            forked_pid: ForkedPid::Differs {
                pid: 9,
                alive: Some(false),
            },
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
        let work = tempfile::tempdir().unwrap();
        let work = work.path();
        let run = work.join("meta/slaves/S/frameworks/F/executors/E/runs/C");
        std::fs::create_dir_all(run.join("pids")).unwrap();
        let forked = run.join("pids/forked.pid");
        std::fs::write(&forked, "42").unwrap();
        assert_eq!(
            run_state(&forked, Some(work), Some(42), true, true),
            (ForkedPid::Matches, Some(false), Some(false))
        );
        assert_eq!(
            run_state(&forked, Some(work), Some(7), true, true).0,
            ForkedPid::Differs {
                pid: 42,
                alive: Some(ProcessIdentity::of(42).is_some())
            }
        );
        std::fs::write(&forked, std::process::id().to_string()).unwrap();
        assert_eq!(
            run_state(&forked, Some(work), Some(7), true, true).0,
            ForkedPid::Differs {
                pid: std::process::id(),
                alive: Some(true)
            },
            "a live process: a launch under way"
        );
        std::fs::write(run.join("executor.sentinel"), "").unwrap();
        assert_eq!(
            run_state(&forked, Some(work), Some(42), true, true).1,
            Some(true)
        );
        std::fs::remove_dir_all(&run).unwrap();
        assert_eq!(
            run_state(&forked, Some(work), Some(42), true, true),
            (ForkedPid::Absent, None, Some(true))
        );
        // Seen from a place where the work_dir is not mounted, nothing can be judged.
        let elsewhere = Path::new("/nonexistent/work");
        assert_eq!(
            run_state(
                &elsewhere.join("meta/x/pids/forked.pid"),
                Some(elsewhere),
                Some(1),
                true,
                true
            ),
            (ForkedPid::Unknown, None, None)
        );
    }

    #[test]
    fn the_host_paths_a_sibling_records_are_read_where_this_runs() {
        use crate::agent_container::HostMount;
        use crate::sibling::labels::{run_labels, LABEL_FORKED_PID_HOST};
        let run = crate::test_support::sample_run();
        let mut labels: HashMap<String, String> = run_labels(&run)
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let forked_host =
            "/srv/mesos/meta/slaves/S0/frameworks/F1/executors/app.1/runs/C-1/pids/forked.pid";
        labels.insert(LABEL_FORKED_PID_HOST.into(), forked_host.into());
        labels.insert(LABEL_WORK_DIR_HOST.into(), "/srv/mesos".into());
        let on_host = describe(&labels, &run, "d".into(), "running".into(), None);
        assert_eq!(
            on_host.forked_pid_path.as_deref(),
            Some(Path::new(forked_host))
        );
        let agent = AgentContainer {
            id: String::new(),
            image: String::new(),
            image_name: None,
            mounts: vec![HostMount {
                source: "/srv/mesos".into(),
                destination: "/mesos".into(),
            }],
            pid_mode: Some("host".into()),
        };
        let in_container = describe(&labels, &run, "d".into(), "running".into(), Some(&agent));
        assert_eq!(
            in_container.forked_pid_path.as_deref(),
            Some(Path::new(
                "/mesos/meta/slaves/S0/frameworks/F1/executors/app.1/runs/C-1/pids/forked.pid"
            ))
        );
        assert_eq!(in_container.work_dir.as_deref(), Some(Path::new("/mesos")));
        assert_eq!(in_container.name, "executor-mesos-C-1");
        // A forked.pid label that names anything but the run's own is never read.
        labels.insert(LABEL_FORKED_PID_HOST.into(), "/dev/tty1".into());
        let decoy = describe(&labels, &run, "d".into(), "running".into(), None);
        assert_eq!((decoy.forked_pid_path, decoy.work_dir), (None, None));
    }

    /// A link where the agent makes the run directory, or a FIFO as forked.pid: nothing is
    /// judged, and the FIFO is not read.
    #[test]
    fn a_run_directory_that_is_a_link_is_not_judged() {
        let work = tempfile::tempdir().unwrap();
        let work = work.path();
        let runs = work.join("meta/slaves/S/frameworks/F/executors/E/runs");
        std::fs::create_dir_all(runs.join("real/pids")).unwrap();
        std::fs::write(runs.join("real/executor.sentinel"), "").unwrap();
        std::os::unix::fs::symlink(runs.join("real"), runs.join("C")).unwrap();
        let forked = runs.join("C/pids/forked.pid");
        assert_eq!(
            run_state(&forked, Some(work), Some(1), true, true),
            (ForkedPid::Unknown, None, None)
        );
        let fifo = runs.join("real/pids/forked.pid");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(
            run_state(&fifo, Some(work), Some(1), true, true),
            (ForkedPid::Unknown, Some(true), Some(false))
        );
    }
}
