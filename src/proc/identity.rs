//! Process identity: a pid and its start time, which name one process for good, read from
//! `/proc/<pid>/stat`; and whether a pid is alive, judged only where host pids are visible.

use std::fmt;
use std::str::FromStr;

use nix::errno::Errno;

use super::file::read;

/// The fields of `/proc/<pid>/stat` the shim uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// `R`, `S`, `Z`...
    pub state: char,
    pub ppid: u32,
    /// Start time in clock ticks after boot: with the pid, it names a process for good.
    pub start: u64,
}

impl ProcStat {
    pub(crate) fn of(pid: u32) -> Option<ProcStat> {
        ProcStat::parse(&read(&format!("/proc/{pid}/stat")).ok()?)
    }

    /// Parses a `stat` line. The command name in parentheses may hold spaces and parentheses
    /// itself, so the fields are counted from the last `)`.
    pub(crate) fn parse(stat: &str) -> Option<ProcStat> {
        let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
        let state = fields.next()?.chars().next()?;
        let ppid = fields.next()?.parse().ok()?;
        // Field 22 (start time) is the 20th after the state.
        let start = fields.nth(17)?.parse().ok()?;
        Some(ProcStat { state, ppid, start })
    }
}

/// A process named by its pid and its start time, so that a reused pid is never taken for it.
/// Written `<pid>:<start>` in labels and in the sibling init's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProcessIdentity {
    pub pid: u32,
    pub start: u64,
}

impl ProcessIdentity {
    /// The identity of the live process `pid`; `None` when it is gone or not visible here.
    pub(crate) fn of(pid: u32) -> Option<ProcessIdentity> {
        let stat = ProcStat::of(pid)?;
        (stat.state != 'Z').then_some(ProcessIdentity {
            pid,
            start: stat.start,
        })
    }

    pub(crate) fn current() -> Option<ProcessIdentity> {
        ProcessIdentity::of(std::process::id())
    }

    /// Whether the process still runs: `None` where host pids are not visible and nothing can
    /// be said (another PID namespace).
    pub(crate) fn liveness(&self, host_pids_visible: bool) -> Option<bool> {
        liveness(self.pid, host_pids_visible, |now| now == *self)
    }
}

impl fmt::Display for ProcessIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.pid, self.start)
    }
}

impl FromStr for ProcessIdentity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parsed = s
            .split_once(':')
            .and_then(|(p, t)| Some((p.parse().ok()?, t.parse().ok()?)));
        match parsed {
            Some((pid, start)) if pid > 0 => Ok(ProcessIdentity { pid, start }),
            _ => Err(format!("{s:?} is not <pid>:<start time>")),
        }
    }
}

/// Whether some process runs as `pid` (never a zombie): `None` where host pids are not visible
/// and nothing can be said.
pub(crate) fn pid_liveness(pid: u32, host_pids_visible: bool) -> Option<bool> {
    liveness(pid, host_pids_visible, |_| true)
}

/// The one rule: a pid is judged only where host pids are visible. Elsewhere a missing pid is
/// no dead process, and a pid that is there is some other process of this namespace, which
/// says nothing of the host's: nothing is said either way.
fn liveness(
    pid: u32,
    host_pids_visible: bool,
    same: impl Fn(ProcessIdentity) -> bool,
) -> Option<bool> {
    if !host_pids_visible {
        return None;
    }
    Some(ProcessIdentity::of(pid).is_some_and(same))
}

/// Whether host pid `pid` is known to be gone. Only where host pids are visible (on the host, or
/// in a container with `--pid=host`) can a missing pid mean a dead process; elsewhere every pid
/// of another namespace looks missing, and nothing is judged gone.
pub(crate) fn process_gone(pid: u32, host_pids_visible: bool) -> bool {
    host_pids_visible
        && i32::try_from(pid).is_ok_and(|p| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None) == Err(Errno::ESRCH)
        })
}
