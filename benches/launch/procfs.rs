//! What the harness reads of a process in `/proc`.

/// CPU time the process's main thread has used so far, in nanoseconds (exact, unlike the
/// clock ticks of `stat`). The shim runs one thread, so this is the process's.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU time of the children the process reaped (cutime + cstime of `/proc/<pid>/stat`), in clock
/// ticks.
pub fn reaped_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<u64> = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .skip(13)
        .take(2)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    Some(fields[0] + fields[1])
}

/// A field of `/proc/<pid>/smaps_rollup`, in KiB.
pub fn rollup_kib(pid: u32, name: &str) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    rollup
        .lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(':'))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Private memory (USS: Private_Clean + Private_Dirty), in KiB: what one more process costs the
/// host, the static binary's shared pages aside.
pub fn uss_kib(pid: u32) -> Option<u64> {
    Some(rollup_kib(pid, "Private_Clean")? + rollup_kib(pid, "Private_Dirty")?)
}

/// Proportional memory (PSS: each shared page divided among the processes that map it), in KiB.
pub fn pss_kib(pid: u32) -> Option<u64> {
    rollup_kib(pid, "Pss")
}

pub fn fd_targets(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .map(|t| t.display().to_string())
                .collect()
        })
        .unwrap_or_default()
}

pub fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// argv[0] of a process.
pub fn arg0(pid: u32) -> Option<String> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let first = cmdline.split(|b| *b == 0).next()?;
    Some(String::from_utf8_lossy(first).into_owned())
}
