//! The Mesos agent process whose executors the shim stands in for, as `doctor` judges it: found
//! among the processes `/proc` shows by facts no task can fake, and its flags read as the agent
//! itself read them (environment, then command line).
//!
//! Why not the first process named `mesos-agent`: a task that sees host pids (`--pid=host`) can
//! start one, earlier than the agent and so with a lower pid, and after an agent-container
//! restart the surviving tasks have the lower pids. The name is only where the search starts;
//! the choice is made by where the process lives ([`How`]).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The names the agent runs under (`mesos-slave` before 1.0).
const AGENT_NAMES: [&str; 2] = ["mesos-agent", "mesos-slave"];

/// The prefix of the environment variables the agent reads its flags from.
const ENV_PREFIX: &str = "MESOS_";

/// Where a flag's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    CommandLine,
    Environment,
}

/// The agent's flags, each with where it was set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AgentFlags(BTreeMap<String, (String, Source)>);

impl AgentFlags {
    /// As stout's `FlagsBase::load("MESOS_", argc, argv)`: every `MESOS_<FLAG>` variable first,
    /// then the command line, whose value wins. `--name` alone is `true`, `--no-name` is `false`.
    /// (A flag given twice on the command line stops the agent; the last is kept here.)
    pub(crate) fn read(args: &[String], environ: &[(String, String)]) -> AgentFlags {
        let mut flags = BTreeMap::new();
        for (key, value) in environ {
            if let Some(name) = key.strip_prefix(ENV_PREFIX) {
                flags.insert(name.to_lowercase(), (value.clone(), Source::Environment));
            }
        }
        for arg in args.iter().skip(1) {
            let Some(flag) = arg.strip_prefix("--") else {
                continue;
            };
            let (name, value) = match flag.split_once('=') {
                Some((name, value)) => (name, value),
                None => match flag.strip_prefix("no-") {
                    Some(name) => (name, "false"),
                    None => (flag, "true"),
                },
            };
            flags.insert(name.to_string(), (value.to_string(), Source::CommandLine));
        }
        AgentFlags(flags)
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|(value, _)| value.as_str())
    }

    /// A boolean flag as stout parses it (`true`/`1`, `false`/`0`); `default` when unset. An
    /// agent that runs had a value it could parse.
    pub(crate) fn enabled(&self, name: &str, default: bool) -> bool {
        match self.get(name) {
            Some("false" | "0") => false,
            Some("true" | "1") => true,
            _ => default,
        }
    }

    /// How an operator finds where `name` was set: `--name` or `MESOS_NAME`.
    pub(crate) fn origin(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|(_, source)| match source {
            Source::CommandLine => format!("--{name}"),
            Source::Environment => format!("{ENV_PREFIX}{}", name.to_uppercase()),
        })
    }
}

/// What `/proc` shows of one process named like the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub pid: u32,
    /// `R`, `S`, `Z`...
    pub state: char,
    pub args: Vec<String>,
    pub flags: AgentFlags,
    /// Its parent, grandparent... up to the first process.
    pub ancestors: Vec<u32>,
    pub same_mount_namespace: bool,
    /// Its `--work_dir`, seen through its own root, is the directory `doctor` is asked about.
    pub asked_work_dir: bool,
}

/// Why a process was taken for the agent: the first of these that any candidate meets decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    /// It shares `doctor`'s mount namespace: it runs in the same container (or both on the
    /// host), and sees the executor paths `doctor` sees. A task never shares it: its own
    /// container, or its Mesos container's namespace, is another.
    MountNamespace,
    /// Its `--work_dir` is the very directory (device and inode) `doctor` is asked about, as
    /// from the host, where the agent runs in a container. A task cannot reach that directory.
    WorkDir,
}

impl fmt::Display for How {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            How::MountNamespace => "the one in doctor's own mount namespace (its container)",
            How::WorkDir => "the one whose --work_dir is the work_dir asked about",
        })
    }
}

/// The agent `doctor` judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Choice {
    One {
        agent: Seen,
        how: How,
    },
    /// More than one process meets the same rule and none descends from another: no guess.
    Several {
        pids: Vec<u32>,
        how: How,
    },
    NoneHere,
}

/// Picks the agent among `seen`. A zombie or a process without a command line (a kernel thread,
/// one exiting) is no agent. A candidate that descends from another is a task of it (the agent
/// forks every executor), never the agent.
pub(crate) fn choose(seen: Vec<Seen>) -> Choice {
    let live: Vec<Seen> = seen
        .into_iter()
        .filter(|s| s.state != 'Z' && !s.args.is_empty())
        .collect();
    for how in [How::MountNamespace, How::WorkDir] {
        let ours: Vec<&Seen> = live.iter().filter(|s| meets(s, how)).collect();
        let mut roots: Vec<&Seen> = ours
            .iter()
            .copied()
            .filter(|s| !ours.iter().any(|o| s.ancestors.contains(&o.pid)))
            .collect();
        match roots.len() {
            0 => continue,
            1 => {
                let agent = roots.remove(0).clone();
                return Choice::One { agent, how };
            }
            _ => {
                let pids = roots.iter().map(|s| s.pid).collect();
                return Choice::Several { pids, how };
            }
        }
    }
    Choice::NoneHere
}

fn meets(seen: &Seen, how: How) -> bool {
    match how {
        How::MountNamespace => seen.same_mount_namespace,
        How::WorkDir => seen.asked_work_dir,
    }
}

/// What the search found, and the processes named like the agent it could not read.
#[derive(Debug)]
pub(crate) struct Found {
    pub choice: Choice,
    /// `(pid, why)`.
    pub unreadable: Vec<(u32, String)>,
}

/// Looks at every process `/proc` shows here. A process that goes away or cannot be read is
/// passed over (and named, when it has the agent's name); the search goes on.
pub(crate) fn find(asked_work_dir: &Path) -> std::io::Result<Found> {
    let mut seen = Vec::new();
    let mut unreadable = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let named = crate::proc::read(&format!("/proc/{pid}/comm"))
            .is_ok_and(|comm| AGENT_NAMES.contains(&comm.trim_end()));
        if !named {
            continue;
        }
        match look_at(pid, asked_work_dir) {
            Ok(s) => seen.push(s),
            Err(why) => unreadable.push((pid, why)),
        }
    }
    Ok(Found {
        choice: choose(seen),
        unreadable,
    })
}

fn look_at(pid: u32, asked_work_dir: &Path) -> Result<Seen, String> {
    let stat =
        crate::proc::ProcStat::of(pid).ok_or_else(|| "gone, or its stat unreadable".to_string())?;
    let args = nul_separated(&format!("/proc/{pid}/cmdline"))?;
    let environ: Vec<(String, String)> = nul_separated(&format!("/proc/{pid}/environ"))?
        .into_iter()
        .filter_map(|v| v.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect();
    let flags = AgentFlags::read(&args, &environ);
    let asked_work_dir = flags
        .get("work_dir")
        .is_some_and(|wd| crate::proc::same_file(&seen_by(pid, Path::new(wd)), asked_work_dir));
    Ok(Seen {
        pid,
        state: stat.state,
        args,
        flags,
        ancestors: ancestors(stat.ppid),
        same_mount_namespace: crate::proc::shares_namespace(pid, crate::proc::Namespace::Mount)
            == Some(true),
        asked_work_dir,
    })
}

/// `path` as process `pid` sees it: through its root, in its mount namespace.
pub(crate) fn seen_by(pid: u32, path: &Path) -> PathBuf {
    let relative = path.strip_prefix("/").unwrap_or(path);
    Path::new(&format!("/proc/{pid}/root")).join(relative)
}

/// A `/proc` file of NUL-separated strings (`cmdline`, `environ`), its empty strings dropped.
fn nul_separated(path: &str) -> Result<Vec<String>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    Ok(raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect())
}

/// The chain of parents from `ppid` up, bounded in case a pid is reused into a loop.
fn ancestors(mut ppid: u32) -> Vec<u32> {
    let mut chain = Vec::new();
    while ppid > 1 && chain.len() < 256 && !chain.contains(&ppid) {
        chain.push(ppid);
        ppid = crate::proc::ProcStat::of(ppid).map_or(0, |s| s.ppid);
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn env(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_command_line_wins_over_the_environment_as_in_stout() {
        let flags = AgentFlags::read(
            &strings(&[
                "mesos-agent",
                "--work_dir=/var/lib/mesos",
                "--no-switch_user",
            ]),
            &env(&[
                ("MESOS_ISOLATION", "filesystem/linux,network/cni"),
                ("MESOS_WORK_DIR", "/elsewhere"),
                ("MESOS_SWITCH_USER", "true"),
                ("PATH", "/usr/bin"),
            ]),
        );
        assert_eq!(flags.get("isolation"), Some("filesystem/linux,network/cni"));
        assert_eq!(
            flags.origin("isolation").as_deref(),
            Some("MESOS_ISOLATION")
        );
        assert_eq!(flags.get("work_dir"), Some("/var/lib/mesos"));
        assert_eq!(flags.origin("work_dir").as_deref(), Some("--work_dir"));
        assert!(!flags.enabled("switch_user", true));
        assert_eq!(flags.get("path"), None, "only MESOS_ variables are flags");
    }

    #[test]
    fn booleans_read_as_stout_reads_them() {
        let flags = AgentFlags::read(
            &strings(&[
                "mesos-agent",
                "--hostname_lookup",
                "--docker_kill_orphans=0",
            ]),
            &env(&[("MESOS_SWITCH_USER", "false")]),
        );
        assert!(flags.enabled("hostname_lookup", false));
        assert!(!flags.enabled("docker_kill_orphans", true));
        assert!(!flags.enabled("switch_user", true));
        assert!(flags.enabled("unset", true));
        assert_eq!(
            AgentFlags::read(&strings(&["mesos-agent", "positional"]), &[]),
            AgentFlags::default(),
            "argv[0] and words without -- are no flags"
        );
    }

    fn seen(pid: u32, ancestors: &[u32], ns: bool, wd: bool) -> Seen {
        Seen {
            pid,
            state: 'S',
            args: strings(&["mesos-agent"]),
            flags: AgentFlags::default(),
            ancestors: ancestors.to_vec(),
            same_mount_namespace: ns,
            asked_work_dir: wd,
        }
    }

    fn chosen(choice: Choice) -> Option<(u32, How)> {
        match choice {
            Choice::One { agent, how } => Some((agent.pid, how)),
            _ => None,
        }
    }

    #[test]
    fn an_earlier_process_of_another_container_is_not_the_agent() {
        let fake = seen(40, &[30], false, false);
        let agent = seen(900, &[800], true, true);
        assert_eq!(
            chosen(choose(vec![fake, agent])),
            Some((900, How::MountNamespace))
        );
    }

    #[test]
    fn zombies_and_empty_command_lines_are_passed_over() {
        let zombie = Seen {
            state: 'Z',
            ..seen(10, &[], true, true)
        };
        let empty = Seen {
            args: Vec::new(),
            ..seen(11, &[], true, true)
        };
        let agent = seen(900, &[], true, true);
        assert_eq!(
            chosen(choose(vec![zombie.clone(), empty, agent])),
            Some((900, How::MountNamespace))
        );
        assert_eq!(choose(vec![zombie]), Choice::NoneHere);
    }

    #[test]
    fn a_process_the_agent_started_is_its_task_not_the_agent() {
        let agent = seen(900, &[800], true, true);
        let task = seen(1200, &[1100, 900, 800], true, true);
        assert_eq!(
            chosen(choose(vec![task, agent])),
            Some((900, How::MountNamespace))
        );
    }

    #[test]
    fn from_the_host_the_agent_is_found_by_its_work_dir() {
        let other_agent = seen(50, &[], false, false);
        let agent = seen(900, &[800], false, true);
        assert_eq!(
            chosen(choose(vec![other_agent, agent])),
            Some((900, How::WorkDir))
        );
        assert_eq!(choose(vec![seen(50, &[], false, false)]), Choice::NoneHere);
    }

    #[test]
    fn two_unrelated_candidates_are_never_guessed_between() {
        let a = seen(900, &[1], true, false);
        let b = seen(950, &[1], true, false);
        assert_eq!(
            choose(vec![a, b]),
            Choice::Several {
                pids: vec![900, 950],
                how: How::MountNamespace
            }
        );
    }

    #[test]
    fn a_path_is_read_through_the_processs_own_root() {
        assert_eq!(
            seen_by(42, Path::new("/usr/libexec/mesos/mesos-executor")),
            PathBuf::from("/proc/42/root/usr/libexec/mesos/mesos-executor")
        );
    }
}
