//! The host's processes as `/proc` lists them, for cleaning up what a daemon of a test's own (or
//! the benchmark's) left running. Shared by the tests and the benchmark harness.

/// Every process: (pid, parent pid, command line).
pub fn processes() -> impl Iterator<Item = (i32, i32, String)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            Some((
                pid,
                ppid,
                String::from_utf8_lossy(&cmdline).replace('\0', " "),
            ))
        })
}

/// SIGKILLs `pid` and every process below it.
pub fn kill_tree(pid: i32) {
    let children: Vec<i32> = processes()
        .filter(|(_, ppid, _)| *ppid == pid)
        .map(|(child, _, _)| child)
        .collect();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    for child in children {
        kill_tree(child);
    }
}
