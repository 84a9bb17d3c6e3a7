//! `doctor`'s checks of the Mesos agent itself: which `mesos-agent` process it judges and why
//! ([`crate::mesos::agent`] chooses), whether the executors that agent will run are this shim,
//! and what its isolators and `--switch_user` mean for a launch.

use std::io;
use std::path::{Path, PathBuf};

use super::{failed, pass, warn, Check};
use crate::mesos::agent::{self, AgentFlags, Choice, Found, Seen};
use crate::mesos::container::{self, Verdict};
use crate::mesos::executor::ExecutorKind;
use crate::proc::Likeness;

/// What the agent checks settle for the others: the judged agent's flags, and the launcher_dir
/// its executors are in.
pub(super) struct Judged {
    pub flags: Option<AgentFlags>,
    pub launcher_dir: PathBuf,
}

/// The `mesos-agent` and `executor-path` checks.
pub(super) fn checks(work_dir: &Path, given_launcher_dir: &Path) -> (Vec<Check>, Judged) {
    let found = agent::find(work_dir);
    let seen = match &found {
        Ok(Found {
            choice: Choice::One { agent, .. },
            ..
        }) => Some(agent),
        _ => None,
    };
    let (launcher_dir, origin) = launcher_dir(seen.map(|s| &s.flags), given_launcher_dir);
    let checks = vec![
        agent_check(&found, work_dir),
        executor_path_check(seen, &launcher_dir, &origin),
    ];
    let flags = seen.map(|s| s.flags.clone());
    (
        checks,
        Judged {
            flags,
            launcher_dir,
        },
    )
}

/// The judged agent's own `--launcher_dir` (what it will run), else doctor's `--launcher-dir`;
/// with where it was read, for the report.
fn launcher_dir(flags: Option<&AgentFlags>, given: &Path) -> (PathBuf, String) {
    match flags.and_then(|f| Some((f.get("launcher_dir")?, f.origin("launcher_dir")?))) {
        Some((dir, origin)) => (dir.into(), format!("the agent's {origin}")),
        None => (given.to_path_buf(), "doctor's --launcher-dir".into()),
    }
}

/// The check that names the agent judged.
const AGENT_CHECK: &str = "mesos-agent";

fn agent_check(found: &io::Result<Found>, work_dir: &Path) -> Check {
    let found = match found {
        Ok(found) => found,
        Err(e) => {
            return failed(
                AGENT_CHECK,
                format!("cannot list /proc: {e}"),
                "mount the proc filesystem",
            )
        }
    };
    let passed_over: String = found
        .unreadable
        .iter()
        .map(|(pid, why)| format!("; passed over pid {pid}: {why}"))
        .collect();
    match &found.choice {
        Choice::One { agent, how } => judged(agent, &format!("{how}{passed_over}"), work_dir),
        Choice::Several { pids, how } => warn(
            AGENT_CHECK,
            format!("mesos-agent pids {pids:?} are each {how}, and none started another{passed_over}"),
            "doctor cannot tell which is the agent and judges no agent's flags; find the process that is not \
             the agent and end it",
        ),
        Choice::NoneHere => warn(
            AGENT_CHECK,
            format!("no mesos-agent process here shares doctor's mount namespace or has --work_dir {}{passed_over}", work_dir.display()),
            "the agent's flags are not judged: run doctor in the agent container (docker exec), or on the host \
             with the agent's work_dir as --work-dir",
        ),
    }
}

/// The chosen agent, and whether its work_dir is the one the other checks are about.
fn judged(agent: &Seen, how: &str, work_dir: &Path) -> Check {
    let detail = format!("judging pid {}, {how}", agent.pid);
    match agent.flags.get("work_dir") {
        Some(theirs) if !agent.asked_work_dir => warn(
            AGENT_CHECK,
            detail,
            format!(
                "its work_dir is {theirs}, not {}: pass --work-dir {theirs} so the other checks are about its runs",
                work_dir.display()
            ),
        ),
        _ => pass(AGENT_CHECK, detail),
    }
}

/// Whether the executors the agent will run are this binary: where they are not, the agent runs
/// what is there, and nothing doctor says of the shim applies. Read through the agent's own root
/// (its mount namespace) when one is judged, else as seen here.
fn executor_path_check(agent: Option<&Seen>, launcher_dir: &Path, origin: &str) -> Check {
    const CHECK: &str = "executor-path";
    let (mut fine, mut wrong, mut unreadable) = (Vec::new(), Vec::new(), Vec::new());
    for kind in ExecutorKind::ALL {
        let path = kind.in_launcher_dir(launcher_dir);
        let there = agent.map_or_else(|| path.clone(), |a| agent::seen_by(a.pid, &path));
        let likeness = crate::proc::likeness_to_own_binary(&there);
        match judge_path(&path, likeness, runs(kind, agent.map(|a| &a.flags))) {
            PathIs::Fine(what) => fine.push(what),
            PathIs::Wrong(what) => wrong.push(what),
            PathIs::Unreadable(what) => unreadable.push(what),
        }
    }
    let detail = format!("launcher_dir {} (from {origin}): ", launcher_dir.display());
    if !wrong.is_empty() {
        let paths =
            ExecutorKind::ALL.map(|k| k.in_launcher_dir(launcher_dir).display().to_string());
        return failed(
            CHECK,
            format!("{detail}{}", [wrong, fine].concat().join("; ")),
            format!(
                "bind-mount the shim over {} (-v /usr/local/bin/mesos-executor-shim:<path>:ro), or use the baked \
                 image; after replacing the shim's host file, restart the agent container",
                paths.join(" and ")
            ),
        );
    }
    if !unreadable.is_empty() {
        return failed(
            CHECK,
            format!("{detail}{}", [unreadable, fine].concat().join("; ")),
            "run doctor as root, in the agent container or on the host",
        );
    }
    pass(CHECK, format!("{detail}{}", fine.join("; ")))
}

enum PathIs {
    Fine(String),
    Wrong(String),
    Unreadable(String),
}

/// One executor path, by how it is like this binary and whether the agent runs it (`None`: not
/// known, judged only where something is there).
fn judge_path(path: &Path, likeness: io::Result<Likeness>, runs: Option<bool>) -> PathIs {
    let path = path.display();
    match (likeness, runs) {
        (Ok(Likeness::SameFile), _) => PathIs::Fine(format!("{path} is this binary")),
        (Ok(Likeness::SameContent), _) => PathIs::Fine(format!("{path} is a copy of this binary")),
        (_, Some(false)) => PathIs::Fine(format!(
            "{path} is not run (not in the agent's --containerizers)"
        )),
        (Ok(Likeness::Other), _) => PathIs::Wrong(format!(
            "{path} is not this binary: the agent will run it (the stock executor, or another build), not this shim"
        )),
        (Err(e), None) if e.kind() == io::ErrorKind::NotFound => PathIs::Fine(format!(
            "nothing is at {path}: no task of its containerizer can run"
        )),
        (Err(e), _) if e.kind() == io::ErrorKind::NotFound => {
            PathIs::Wrong(format!("nothing is at {path}: the agent cannot launch it"))
        }
        (Err(e), _) => PathIs::Unreadable(format!("cannot read {path}: {e}")),
    }
}

/// Whether the agent runs executors of `kind`, by its `--containerizers` (default `mesos`). With
/// no agent judged, the command executor is taken as run, and the docker executor is not known.
fn runs(kind: ExecutorKind, flags: Option<&AgentFlags>) -> Option<bool> {
    let containerizer = match kind {
        ExecutorKind::Command => "mesos",
        ExecutorKind::Docker => "docker",
    };
    match (flags, kind) {
        (Some(flags), _) => {
            let list = flags.get("containerizers").unwrap_or("mesos");
            Some(list.split(',').any(|c| c.trim() == containerizer))
        }
        (None, ExecutorKind::Command) => Some(true),
        (None, ExecutorKind::Docker) => None,
    }
}

/// The isolators of the judged agent, each with what the shim does with it (the relay's own
/// table, [`container::isolator_verdict`]); and `--switch_user`, which runs executors as the
/// framework's user.
pub(super) fn isolators_check(flags: Option<&AgentFlags>) -> Check {
    const CHECK: &str = "isolators";
    let Some(flags) = flags else {
        return pass(
            CHECK,
            "no agent judged (see mesos-agent): run doctor where the agent runs to judge its isolators",
        );
    };
    let isolation = flags.get("isolation").unwrap_or("posix/cpu,posix/mem");
    let (mut carried, mut handed_back, mut unknown) = (Vec::new(), Vec::new(), Vec::new());
    for isolator in isolation.split(',').filter(|i| !i.is_empty()) {
        match container::isolator_verdict(isolator) {
            (Verdict::Carried, _) => carried.push(isolator.to_string()),
            (Verdict::HandedBack, why) => handed_back.push(format!("{isolator} ({why})")),
            (Verdict::NotCarried, why) => unknown.push(format!("{isolator} ({why})")),
        }
    }
    if flags.enabled("switch_user", true) {
        handed_back.push(
            "--switch_user (the default: a framework's executor runs as its user; one that is not root is handed \
             back or refused)"
                .into(),
        );
    }
    if let Some(logger) = flags.get("container_logger").filter(|l| !l.is_empty()) {
        carried.push(format!(
            "--container_logger={logger} (through the shim while it lives; after, sandbox files rotated at sandbox_output_max_bytes)"
        ));
    }
    let read_from = flags
        .origin("isolation")
        .unwrap_or_else(|| "the default".into());
    let carried = if carried.is_empty() {
        "none".into()
    } else {
        carried.join(", ")
    };
    let detail = format!("isolation {isolation} (from {read_from}); carried: {carried}");
    let mut warning = Vec::new();
    if !handed_back.is_empty() {
        warning.push(format!(
            "handed back or refused: {}",
            handed_back.join("; ")
        ));
    }
    if !unknown.is_empty() {
        warning.push(format!("not carried: {}", unknown.join("; ")));
    }
    if warning.is_empty() {
        pass(CHECK, detail)
    } else {
        warn(CHECK, detail, warning.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str], env: &[(&str, &str)]) -> AgentFlags {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: Vec<_> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AgentFlags::read(&args, &env)
    }

    fn verdict(likeness: io::Result<Likeness>, runs: Option<bool>) -> &'static str {
        match judge_path(Path::new("/x/mesos-executor"), likeness, runs) {
            PathIs::Fine(_) => "fine",
            PathIs::Wrong(_) => "wrong",
            PathIs::Unreadable(_) => "unreadable",
        }
    }

    #[test]
    fn an_executor_path_that_the_agent_runs_must_be_this_binary() {
        let missing = || Err(io::Error::from(io::ErrorKind::NotFound));
        let denied = || Err(io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(verdict(Ok(Likeness::SameFile), Some(true)), "fine");
        assert_eq!(verdict(Ok(Likeness::SameContent), None), "fine");
        assert_eq!(verdict(Ok(Likeness::Other), Some(true)), "wrong");
        assert_eq!(verdict(Ok(Likeness::Other), None), "wrong", "there, so run");
        assert_eq!(verdict(Ok(Likeness::Other), Some(false)), "fine");
        assert_eq!(verdict(missing(), Some(true)), "wrong");
        assert_eq!(verdict(missing(), None), "fine");
        assert_eq!(verdict(denied(), Some(true)), "unreadable");
    }

    #[test]
    fn the_agents_containerizers_say_which_executors_it_runs() {
        let docker_too = flags(
            &["mesos-agent"],
            &[("MESOS_CONTAINERIZERS", "docker,mesos")],
        );
        assert_eq!(runs(ExecutorKind::Docker, Some(&docker_too)), Some(true));
        assert_eq!(runs(ExecutorKind::Command, Some(&docker_too)), Some(true));
        let default = flags(&["mesos-agent"], &[]);
        assert_eq!(runs(ExecutorKind::Docker, Some(&default)), Some(false));
        assert_eq!(runs(ExecutorKind::Command, Some(&default)), Some(true));
        assert_eq!(runs(ExecutorKind::Command, None), Some(true));
        assert_eq!(runs(ExecutorKind::Docker, None), None);
    }

    #[test]
    fn the_agents_own_launcher_dir_wins_over_doctors() {
        let given = Path::new("/usr/libexec/mesos");
        let from_env = flags(
            &["mesos-agent"],
            &[("MESOS_LAUNCHER_DIR", "/usr/local/libexec/mesos")],
        );
        assert_eq!(
            launcher_dir(Some(&from_env), given),
            (
                "/usr/local/libexec/mesos".into(),
                "the agent's MESOS_LAUNCHER_DIR".into()
            )
        );
        assert_eq!(
            launcher_dir(Some(&flags(&["mesos-agent"], &[])), given),
            (given.to_path_buf(), "doctor's --launcher-dir".into())
        );
        assert_eq!(launcher_dir(None, given).0, given);
    }

    #[test]
    fn isolation_is_read_from_the_agents_environment_too() {
        let agent = flags(
            &["mesos-agent", "--no-switch_user"],
            &[("MESOS_ISOLATION", "filesystem/linux,docker/runtime")],
        );
        let check = isolators_check(Some(&agent));
        assert!(check.detail.contains("from MESOS_ISOLATION"), "{check:?}");
        let warning = check.warning.unwrap();
        assert!(warning.contains("filesystem/linux"), "{warning}");
        assert!(!warning.contains("--switch_user"), "{warning}");
        let default = isolators_check(Some(&flags(&["mesos-agent"], &[])));
        assert!(
            default
                .detail
                .contains("posix/cpu,posix/mem (from the default)"),
            "{default:?}"
        );
        assert!(default.warning.unwrap().contains("--switch_user"));
    }
}
