//! What a process can learn from `/proc` and pidfds, about itself and about host processes. No
//! Docker here: the shim and the sibling init both use it, and the relay's state machine reaches
//! it through [`crate::relay::HostProcesses`] so that its unit tests need no real processes.

use std::ffi::OsStr;
use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::Signal;

/// Reads a file of `/proc/self`, saying which one and why when it cannot be read: the shim
/// decides things from these files and never falls back to a silent default.
pub fn read_self(name: &str) -> io::Result<String> {
    let path = format!("/proc/self/{name}");
    read(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read {path}: {e}; the shim needs the proc filesystem mounted"),
        )
    })
}

/// Reads a `/proc` file whole. A proc file reports no size: the standard readers ask for one
/// (a stat and a seek) and then start small; here one page-sized buffer takes most in one call,
/// doubled while the file goes on (the shim reads several per launch).
pub fn read(path: &str) -> io::Result<String> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut bytes = vec![0; 4096];
    let mut len = 0;
    loop {
        if len == bytes.len() {
            bytes.resize(len * 2, 0);
        }
        match file.read(&mut bytes[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(len);
    String::from_utf8(bytes).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The fields of `/proc/<pid>/stat` the shim uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// `R`, `S`, `Z`...
    pub state: char,
    pub ppid: u32,
    /// Start time in clock ticks after boot: with the pid, it names a process for good.
    pub start: u64,
}

impl ProcStat {
    pub fn of(pid: u32) -> Option<ProcStat> {
        ProcStat::parse(&read(&format!("/proc/{pid}/stat")).ok()?)
    }

    /// Parses a `stat` line. The command name in parentheses may hold spaces and parentheses
    /// itself, so the fields are counted from the last `)`.
    pub fn parse(stat: &str) -> Option<ProcStat> {
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
    pub fn of(pid: u32) -> Option<ProcessIdentity> {
        let stat = ProcStat::of(pid)?;
        (stat.state != 'Z').then_some(ProcessIdentity {
            pid,
            start: stat.start,
        })
    }

    pub fn current() -> Option<ProcessIdentity> {
        ProcessIdentity::of(std::process::id())
    }

    /// Whether the process still runs: `None` where host pids are not visible and nothing can
    /// be said (another PID namespace).
    pub fn liveness(&self, host_pids_visible: bool) -> Option<bool> {
        liveness(self.pid, host_pids_visible, |now| now == *self)
    }
}

/// Whether some process runs as `pid` (never a zombie): `None` where host pids are not visible
/// and nothing can be said.
pub fn pid_liveness(pid: u32, host_pids_visible: bool) -> Option<bool> {
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

/// Whether host pid `pid` is known to be gone. Only where host pids are visible (on the host, or
/// in a container with `--pid=host`) can a missing pid mean a dead process; elsewhere every pid
/// of another namespace looks missing, and nothing is judged gone.
pub fn process_gone(pid: u32, host_pids_visible: bool) -> bool {
    host_pids_visible
        && i32::try_from(pid).is_ok_and(|p| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None) == Err(Errno::ESRCH)
        })
}

/// The inode of the kernel's initial PID namespace, fixed by the kernel (`PROC_PID_INIT_INO`).
const INITIAL_PID_NAMESPACE: &str = "pid:[4026531836]";

/// Whether this process runs in the kernel's initial PID namespace, the one a Docker daemon on
/// the host runs in: never in a pod, a container without `--pid=host` or under `unshare --pid`.
pub fn in_initial_pid_namespace() -> bool {
    std::fs::read_link("/proc/self/ns/pid").is_ok_and(|ns| ns.as_os_str() == INITIAL_PID_NAMESPACE)
}

/// Whether host pid `pid` is visible here and belongs to container `container_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidCheck {
    Confirmed,
    /// No such live pid in this PID namespace: it has exited, or this is not the host's namespace.
    NotVisible,
    /// The pid exists but runs in another cgroup: it is not the container's.
    Foreign(String),
}

pub fn check_pid_belongs_to(pid: u32, container_id: &str) -> PidCheck {
    // A zombie still shows its cgroup, but it is a process that has exited: never confirmed.
    if ProcessIdentity::of(pid).is_none() {
        return PidCheck::NotVisible;
    }
    match read(&format!("/proc/{pid}/cgroup")) {
        Err(_) => PidCheck::NotVisible,
        Ok(cgroup) if cgroup.contains(container_id) => PidCheck::Confirmed,
        Ok(cgroup) => PidCheck::Foreign(cgroup.lines().next().unwrap_or_default().to_string()),
    }
}

/// Whether process `pid` shares this process's mount namespace: `None` when that cannot be read.
pub fn shares_mount_namespace(pid: u32) -> Option<bool> {
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok()?;
    let ours = std::fs::read_link("/proc/self/ns/mnt").ok()?;
    Some(theirs == ours)
}

/// The path this program was started as: what the kernel was given (`AT_EXECFN`), which is the
/// path the agent ran whatever `argv[0]` says; else `/proc/self/exe` (symlinks resolved).
pub fn exec_path() -> Option<PathBuf> {
    // SAFETY: getauxval reads the auxiliary vector the kernel set up; AT_EXECFN, when present, is
    // the address of a NUL-terminated string in the initial stack that lives as long as the process.
    let execfn = unsafe { nix::libc::getauxval(nix::libc::AT_EXECFN) };
    if execfn != 0 {
        // SAFETY: see above: a valid, NUL-terminated, never freed string.
        let bytes = unsafe { std::ffi::CStr::from_ptr(execfn as *const nix::libc::c_char) };
        let path = PathBuf::from(OsStr::from_bytes(bytes.to_bytes()));
        if path.is_absolute() {
            return Some(path);
        }
    }
    std::fs::read_link("/proc/self/exe").ok()
}

/// The file this process runs, as this process sees it (`/proc/self/exe`). A bind-mounted file
/// whose host file was since replaced reads as `<path> (deleted)`: the path is still where it
/// is mounted.
pub fn own_binary() -> io::Result<PathBuf> {
    let path = std::fs::read_link("/proc/self/exe")?;
    let text = path.as_os_str().as_bytes();
    Ok(match text.strip_suffix(b" (deleted)") {
        Some(live) => PathBuf::from(OsStr::from_bytes(live)),
        None => path,
    })
}

/// Whether `path` is the file this process runs (a baked shim, seen under an executor's name).
pub fn is_own_binary(path: &Path) -> bool {
    own_binary().is_ok_and(|own| same_file(path, &own))
}

/// How a file is like the binary this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Likeness {
    /// The same file (device and inode): a bind mount of it, or a link to it.
    SameFile,
    /// Another file with the same bytes: a copy, as a baked image holds under its second name.
    SameContent,
    Other,
}

/// How `path` is like the binary this process runs, compared with `/proc/self/exe` itself, which
/// holds the running file even where its path was since given another.
pub fn likeness_to_own_binary(path: &Path) -> io::Result<Likeness> {
    use std::os::unix::fs::MetadataExt;
    const OWN: &str = "/proc/self/exe";
    let (theirs, ours) = (std::fs::metadata(path)?, std::fs::metadata(OWN)?);
    if (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()) {
        return Ok(Likeness::SameFile);
    }
    if theirs.len() != ours.len() || !theirs.is_file() {
        return Ok(Likeness::Other);
    }
    Ok(if same_bytes(path, Path::new(OWN))? {
        Likeness::SameContent
    } else {
        Likeness::Other
    })
}

/// Whether two files hold the same bytes, read side by side (a hash would read both whole too).
fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut a, mut b) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut x, mut y) = (vec![0; 1 << 16], vec![0; 1 << 16]);
    loop {
        let n = read_full(&mut a, &mut x)?;
        if n != read_full(&mut b, &mut y)? || x[..n] != y[..n] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Fills `buf` unless the file ends first: how much it holds.
fn read_full(file: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
}

/// Whether two paths are the same file: (device, inode).
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The mount points listed in a `/proc/<pid>/mountinfo`, with the root of each mount within its
/// filesystem: `(root, mount point)`.
pub fn mounts(mountinfo: &str) -> impl Iterator<Item = (&str, &str)> {
    mountinfo.lines().filter_map(|line| {
        // Field 4 is the root of the mount within its filesystem, field 5 the mount point.
        let mut fields = line.split_whitespace();
        let root = fields.nth(3)?;
        Some((root, fields.next()?))
    })
}

/// Whether `path` is a mount point in `mountinfo`.
pub fn is_mount_point(mountinfo: &str, path: &Path) -> bool {
    let path = path.to_string_lossy();
    mounts(mountinfo).any(|(_, target)| unescape_octal(target) == path)
}

/// mountinfo writes space, tab, newline and backslash in paths as `\040`-style octal escapes.
fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let (b'\\', Some(digits)) = (bytes[i], octal) {
            let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
            if let Ok(v) = u8::try_from(value) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where Docker bind-mounts a file of every container's own `containers/<id>/` directory, and
/// those files' names: there even with host networking, where `HOSTNAME` is the host's name.
const DOCKER_FILES_DIR: &str = "/etc";
const DOCKER_CONTAINER_FILES: [&str; 3] = ["hostname", "hosts", "resolv.conf"];

/// Finds `/containers/<64 hex>/{hostname,hosts,resolv.conf}` as the root of a mount at one of
/// [`DOCKER_CONTAINER_FILES`] in [`DOCKER_FILES_DIR`].
pub fn container_id_in_mountinfo(mountinfo: &str) -> Option<String> {
    mounts(mountinfo).find_map(|(root, target)| {
        let name = target.strip_prefix(DOCKER_FILES_DIR)?.strip_prefix('/')?;
        if !DOCKER_CONTAINER_FILES.contains(&name) {
            return None;
        }
        let mut parts = root.rsplit('/');
        let _file = parts.next()?;
        let id = parts.next()?;
        (parts.next()? == "containers" && is_container_id(id)).then(|| id.to_string())
    })
}

/// Whether something is mounted right at one of `names` in `dir` (not through a link there),
/// told by each one's mount ID against `dir`'s: `Some(false)` where none is (or none exists),
/// `None` where the kernel cannot tell (before Linux 5.8, or a path unreadable).
pub fn mount_point_among(dir: &Path, names: &[&str]) -> Option<bool> {
    let dir_id = mount_id(dir).ok()?;
    for name in names {
        match mount_id(&dir.join(name)) {
            Ok(id) if id != dir_id => return Some(true),
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(_) => return None,
        }
    }
    Some(false)
}

/// The ID of the mount `path` is on, the path's last component not followed.
fn mount_id(path: &Path) -> Result<u64, Errno> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| Errno::EINVAL)?;
    // SAFETY: an all-zero statx is a valid value for the kernel to fill.
    let mut stx: nix::libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: the path is NUL-terminated and outlives the call; stx is ours to write.
    let r = unsafe {
        nix::libc::statx(
            nix::libc::AT_FDCWD,
            c_path.as_ptr(),
            nix::libc::AT_SYMLINK_NOFOLLOW | nix::libc::AT_NO_AUTOMOUNT,
            nix::libc::STATX_MNT_ID,
            &mut stx,
        )
    };
    Errno::result(r)?;
    match stx.stx_mask & nix::libc::STATX_MNT_ID {
        0 => Err(Errno::ENOSYS),
        _ => Ok(stx.stx_mnt_id),
    }
}

/// Finds the container ID in a `/proc/<pid>/cgroup` (`/docker/<id>`, `docker-<id>.scope`, ...).
pub fn container_id_in_cgroup(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        let path = line.splitn(3, ':').nth(2)?;
        path.split('/').rev().find_map(|part| {
            let part = part.strip_prefix("docker-").unwrap_or(part);
            let part = part.strip_suffix(".scope").unwrap_or(part);
            is_container_id(part).then(|| part.to_string())
        })
    })
}

/// The ID of the Docker container this process runs in (`None`: on the host), from its
/// mountinfo, else its cgroup path.
///
/// The mount table is read only where one of Docker's files is a mount point: everywhere else it
/// cannot name a container, and on a host (or in a namespace copied from one, as a Mesos
/// container's is) it holds a mount or two per running container, which the kernel writes out
/// one by one on every read: milliseconds per launch on a host of hundreds of executors.
pub fn own_container_id() -> io::Result<Option<String>> {
    if mount_point_among(Path::new(DOCKER_FILES_DIR), &DOCKER_CONTAINER_FILES) != Some(false) {
        let mountinfo = read_self("mountinfo")?;
        if let Some(id) = container_id_in_mountinfo(&mountinfo) {
            return Ok(Some(id));
        }
    }
    Ok(container_id_in_cgroup(&read_self("cgroup")?))
}

/// A pidfd: a handle on one process that no pid reuse can redirect (Linux 5.3 and later).
#[derive(Debug)]
pub struct Pidfd(OwnedFd);

impl Pidfd {
    /// Opens a pidfd on `pid`. `ESRCH`: no such process here; `ENOSYS`: a kernel before 5.3.
    pub fn open(pid: u32) -> io::Result<Pidfd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; nothing
        // is borrowed.
        let fd =
            unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as nix::libc::pid_t, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a new descriptor that nothing else owns.
        Ok(Pidfd(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    /// Opens a pidfd on the process `identity` names, and only on it: `None` when that process
    /// is gone (its pid free or reused). The start time is checked after the open, so the pidfd
    /// cannot hold a process that took the pid over.
    pub fn open_identity(identity: &ProcessIdentity) -> io::Result<Option<Pidfd>> {
        let pidfd = match Pidfd::open(identity.pid) {
            Ok(p) => p,
            Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok((ProcessIdentity::of(identity.pid) == Some(*identity)).then_some(pidfd))
    }

    pub fn send_signal(&self, signal: Signal) -> io::Result<()> {
        // SAFETY: the descriptor is ours and open; a null siginfo asks for a plain kill().
        let r = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                signal as nix::libc::c_int,
                std::ptr::null::<nix::libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Whether the process has exited (its pidfd is readable), without waiting.
    pub fn has_exited(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
    }
}

impl From<OwnedFd> for Pidfd {
    /// A descriptor known to be a pidfd (one handed over across an `exec`).
    fn from(fd: OwnedFd) -> Pidfd {
        Pidfd(fd)
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for Pidfd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// How often a watch without pidfds (kernels before 5.3) looks at the process.
pub const WATCH_POLL: Duration = Duration::from_millis(500);

/// One process, held by its identity until it exits: by a pidfd where the kernel has them, else
/// (a kernel before 5.3, or a seccomp profile that predates pidfds) by its pid and start time,
/// looked at in `/proc` every [`WATCH_POLL`]. The one place that choice is made, for the shim
/// and the sibling's init alike.
#[derive(Debug)]
pub enum ProcessHandle {
    Pidfd(Pidfd),
    Poll(ProcessIdentity),
}

impl ProcessHandle {
    /// Holds the process `identity` names; `Ok(None)` when it is already gone.
    pub fn open(identity: &ProcessIdentity) -> io::Result<Option<ProcessHandle>> {
        match Pidfd::open_identity(identity) {
            Ok(pidfd) => Ok(pidfd.map(ProcessHandle::Pidfd)),
            Err(e) if matches!(e.raw_os_error(), Some(nix::libc::ENOSYS | nix::libc::EPERM)) => {
                Ok((ProcessIdentity::of(identity.pid) == Some(*identity))
                    .then_some(ProcessHandle::Poll(*identity)))
            }
            Err(e) => Err(e),
        }
    }

    /// A second handle on the same process: the pidfd duplicated (the same process by
    /// construction), or the same identity.
    pub fn try_clone(&self) -> io::Result<ProcessHandle> {
        Ok(match self {
            ProcessHandle::Pidfd(pidfd) => ProcessHandle::Pidfd(Pidfd(pidfd.0.try_clone()?)),
            ProcessHandle::Poll(identity) => ProcessHandle::Poll(*identity),
        })
    }

    /// Whether the process has exited, without waiting.
    pub fn has_exited(&self) -> bool {
        match self {
            ProcessHandle::Pidfd(pidfd) => pidfd.has_exited(),
            ProcessHandle::Poll(identity) => ProcessIdentity::of(identity.pid) != Some(*identity),
        }
    }

    /// The pidfd, which becomes readable once the process has exited; `None`: look now and then.
    pub fn pidfd(&self) -> Option<&Pidfd> {
        match self {
            ProcessHandle::Pidfd(pidfd) => Some(pidfd),
            ProcessHandle::Poll(_) => None,
        }
    }

    /// Sends `signal` to the process, never to another that took its pid over.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        match self {
            ProcessHandle::Pidfd(pidfd) => pidfd.send_signal(signal),
            ProcessHandle::Poll(identity) => {
                if ProcessIdentity::of(identity.pid) != Some(*identity) {
                    return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
                }
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(identity.pid as i32), signal)
                    .map_err(io::Error::from)
            }
        }
    }
}

/// A [`ProcessHandle`] waited on by the async runtime: its pidfd registered with the reactor,
/// which costs nothing while it waits.
pub struct ExitWatch {
    // Declared before the handle: the registration goes before the descriptor closes.
    readiness: Option<tokio::io::unix::AsyncFd<RawFd>>,
    handle: ProcessHandle,
}

impl ExitWatch {
    /// Starts watching the process `identity` names; `Ok(None)` when it is already gone.
    pub fn open(identity: &ProcessIdentity) -> io::Result<Option<ExitWatch>> {
        let Some(handle) = ProcessHandle::open(identity)? else {
            return Ok(None);
        };
        let readiness = match handle.pidfd() {
            // SAFETY: the descriptor is the handle's, which the `ExitWatch` owns beside the
            // registration and drops after it: it stays open and the same while registered.
            Some(pidfd) => Some(unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(
                    pidfd.as_raw_fd(),
                    tokio::io::Interest::READABLE,
                )
            }?),
            None => None,
        };
        Ok(Some(ExitWatch { readiness, handle }))
    }

    /// Resolves once the process has exited.
    pub async fn exited(&mut self) {
        match &self.readiness {
            // A pidfd becomes readable, for good, once its process has exited; the readiness is
            // kept, so a second wait returns at once.
            Some(fd) => {
                let _ = fd.readable().await;
            }
            None => {
                while !self.handle.has_exited() {
                    tokio::time::sleep(WATCH_POLL).await;
                }
            }
        }
    }

    /// Sends `signal` to the process, never to another that took its pid over.
    pub fn signal(&self, signal: Signal) -> io::Result<()> {
        self.handle.signal(signal)
    }

    /// The handle this watch holds.
    pub fn handle(&self) -> &ProcessHandle {
        &self.handle
    }

    /// The handle, out of the async runtime (for a process that waits without one).
    pub fn into_handle(self) -> ProcessHandle {
        let ExitWatch { readiness, handle } = self;
        drop(readiness);
        handle
    }
}

/// Monotonic nanoseconds since boot (`CLOCK_MONOTONIC`): comparable between processes, which is
/// what the benchmark harness needs of the timings the shim logs.
pub fn monotonic_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|t| t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// Lets go of this process's mapping of the pages of its own binary that are never written (code
/// and read-only data), which starting up and launching touched: they stay in the page cache,
/// shared by every shim, and the few that waiting runs are mapped again as it runs them. For a
/// process that will wait for hours, this is most of its resident size. Pages a segment shares
/// with a writable one are kept (its edges are rounded inwards), so nothing written is lost.
pub fn release_read_only_image_pages() {
    unsafe extern "C" fn each(
        info: *mut nix::libc::dl_phdr_info,
        _size: usize,
        _data: *mut nix::libc::c_void,
    ) -> nix::libc::c_int {
        // SAFETY: the loader passes a valid description of a loaded object, whose program
        // headers it keeps for the object's life.
        let info = unsafe { &*info };
        let page = page_size();
        let headers = (0..info.dlpi_phnum as usize)
            // SAFETY: `dlpi_phnum` headers follow `dlpi_phdr`.
            .map(|i| unsafe { &*info.dlpi_phdr.add(i) });
        for header in headers {
            if header.p_type != nix::libc::PT_LOAD || header.p_flags & nix::libc::PF_W != 0 {
                continue;
            }
            let start = info.dlpi_addr as usize + header.p_vaddr as usize;
            let end = start + header.p_memsz as usize;
            let (start, end) = (start.div_ceil(page) * page, end / page * page);
            if end > start {
                // SAFETY: a range of this process's own read-only image, page-aligned; dropping
                // it loses nothing, as it is reread from the file when touched.
                unsafe {
                    nix::libc::madvise(
                        start as *mut nix::libc::c_void,
                        end - start,
                        nix::libc::MADV_DONTNEED,
                    )
                };
            }
        }
        // The first object is the binary itself: stop there.
        1
    }
    // SAFETY: the callback only reads what the loader gives it.
    unsafe { nix::libc::dl_iterate_phdr(Some(each), std::ptr::null_mut()) };
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |p| p as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "a6941e8119eb320b59faf759022b09c29a1ed00773c8ffd89aac98b8cd01b236";

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        let stat = "4242 (my (odd) cmd) S 17 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";
        assert_eq!(
            ProcStat::parse(stat),
            Some(ProcStat {
                state: 'S',
                ppid: 17,
                start: 987654
            })
        );
        assert_eq!(ProcStat::parse("garbage"), None);
    }

    #[test]
    fn an_identity_survives_only_as_long_as_the_process() {
        let me = ProcessIdentity::current().unwrap();
        assert_eq!(me.to_string().parse::<ProcessIdentity>(), Ok(me));
        assert_eq!(me.liveness(true), Some(true));
        let reused = ProcessIdentity {
            start: me.start + 1,
            ..me
        };
        assert_eq!(reused.liveness(true), Some(false), "same pid, other start");
        let gone = ProcessIdentity {
            pid: 4194305,
            start: 1,
        };
        assert_eq!(gone.liveness(true), Some(false));
        assert_eq!(gone.liveness(false), None, "invisible is not dead");
        assert_eq!(
            reused.liveness(false),
            None,
            "a pid of another namespace is not the host's"
        );
        assert_eq!(me.liveness(false), None);
        assert!("garbage".parse::<ProcessIdentity>().is_err());
        assert!(
            "0:5".parse::<ProcessIdentity>().is_err(),
            "pid 0 is no process"
        );
    }

    #[test]
    fn the_initial_pid_namespace_is_told_by_its_fixed_inode() {
        // The suite runs on the host, as root: the kernel's first PID namespace.
        let ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
        assert_eq!(
            in_initial_pid_namespace(),
            ns.as_os_str() == INITIAL_PID_NAMESPACE
        );
    }

    #[test]
    fn a_pid_is_judged_gone_only_where_host_pids_are_visible() {
        assert!(process_gone(4194305, true));
        assert!(!process_gone(4194305, false));
        assert!(!process_gone(std::process::id(), true));
        assert!(!process_gone(u32::MAX, true), "not a pid at all");
    }

    #[test]
    fn tells_a_mount_point_from_what_is_under_one() {
        let root = Path::new("/");
        assert_eq!(
            mount_point_among(root, &["no-such-path", "proc"]),
            Some(true)
        );
        // The link itself, on /proc's mount, not the directory it names.
        let proc = Path::new("/proc");
        assert_eq!(mount_point_among(proc, &["1", "self"]), Some(false));
        assert_eq!(mount_point_among(proc, &["no-such-path"]), Some(false));
        assert_eq!(mount_point_among(Path::new("/no/such/path"), &["x"]), None);
    }

    #[test]
    fn finds_the_container_in_mountinfo() {
        let mountinfo = format!(
            "69 50 0:60 / / rw,relatime - overlay overlay rw\n\
             86 69 254:0 /var/lib/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda rw\n"
        );
        assert_eq!(container_id_in_mountinfo(&mountinfo).as_deref(), Some(ID));
        assert_eq!(
            container_id_in_mountinfo("22 1 0:21 / /proc rw - proc proc rw\n"),
            None
        );
        // A container's ID-shaped directory mounted elsewhere is not evidence.
        let elsewhere = format!(
            "86 69 254:0 /var/lib/docker/containers/{ID}/hostname /data/hostname rw - ext4 x rw\n"
        );
        assert_eq!(container_id_in_mountinfo(&elsewhere), None);
    }

    #[test]
    fn finds_the_container_in_cgroup_paths() {
        assert_eq!(
            container_id_in_cgroup(&format!("9:pids:/docker/{ID}\n")).as_deref(),
            Some(ID)
        );
        assert_eq!(
            container_id_in_cgroup(&format!("0::/system.slice/docker-{ID}.scope\n")).as_deref(),
            Some(ID)
        );
        assert_eq!(container_id_in_cgroup("0::/\n"), None);
        assert_eq!(
            container_id_in_cgroup("0::/user.slice/user-0.slice/session-1.scope\n"),
            None
        );
    }

    #[test]
    fn a_mount_point_is_matched_exactly_and_escapes_are_read() {
        let mountinfo = "87 67 0:46 / /run/mesos-executor-shim/sibling ro - tmpfs tmpfs rw\n\
                         88 67 254:0 /srv/a\\040b /opt/a\\040b ro - ext4 /dev/vda rw\n";
        assert!(is_mount_point(
            mountinfo,
            Path::new("/run/mesos-executor-shim/sibling")
        ));
        assert!(!is_mount_point(
            mountinfo,
            Path::new("/run/mesos-executor-shim")
        ));
        assert!(is_mount_point(mountinfo, Path::new("/opt/a b")));
    }

    #[test]
    fn a_pid_outside_this_namespace_or_container_is_not_confirmed() {
        assert!(matches!(
            check_pid_belongs_to(std::process::id(), ID),
            PidCheck::Foreign(_)
        ));
        assert_eq!(
            check_pid_belongs_to(i32::MAX as u32, ID),
            PidCheck::NotVisible
        );
    }

    #[test]
    fn a_pidfd_holds_its_process_and_sees_it_exit() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let identity = ProcessIdentity::of(child.id()).unwrap();
        let pidfd = Pidfd::open_identity(&identity).unwrap().expect("alive");
        assert!(!pidfd.has_exited());
        let stale = ProcessIdentity {
            start: identity.start + 1,
            ..identity
        };
        assert!(
            Pidfd::open_identity(&stale).unwrap().is_none(),
            "a reused pid is not the process"
        );
        pidfd.send_signal(Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        assert!(pidfd.has_exited());
        assert!(Pidfd::open_identity(&identity).unwrap().is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_exit_watch_resolves_when_its_process_exits() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let identity = ProcessIdentity::of(child.id()).unwrap();
        let mut watch = ExitWatch::open(&identity).unwrap().expect("alive");
        watch.signal(Signal::SIGTERM).unwrap();
        // The child is ours: reap it so that it exits for good rather than lingering a zombie.
        let reaper = std::thread::spawn(move || child.wait());
        tokio::time::timeout(Duration::from_secs(10), watch.exited())
            .await
            .expect("the watch saw the exit");
        reaper.join().unwrap().unwrap();
    }

    /// Where no pidfd can be had, the same watch by a look at /proc now and then.
    #[tokio::test(flavor = "current_thread")]
    async fn a_watch_without_pidfds_sees_the_exit_too() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let identity = ProcessIdentity::of(child.id()).unwrap();
        let mut watch = ExitWatch {
            readiness: None,
            handle: ProcessHandle::Poll(identity),
        };
        watch.signal(Signal::SIGKILL).unwrap();
        let reaper = std::thread::spawn(move || child.wait());
        tokio::time::timeout(Duration::from_secs(10), watch.exited())
            .await
            .expect("the watch saw the exit");
        reaper.join().unwrap().unwrap();
        assert!(
            watch.signal(Signal::SIGTERM).is_err(),
            "a gone process is never signalled"
        );
    }

    #[test]
    fn this_program_knows_the_path_it_was_started_as() {
        let path = exec_path().unwrap();
        assert!(path.is_absolute());
        assert!(same_file(&path, Path::new("/proc/self/exe")));
    }

    #[test]
    fn this_binary_is_known_by_its_file_or_its_bytes() {
        let own = exec_path().unwrap();
        assert_eq!(likeness_to_own_binary(&own).unwrap(), Likeness::SameFile);
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("mesos-docker-executor");
        std::fs::copy(&own, &copy).unwrap();
        assert_eq!(
            likeness_to_own_binary(&copy).unwrap(),
            Likeness::SameContent
        );
        let mut bytes = std::fs::read(&copy).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&copy, bytes).unwrap();
        assert_eq!(likeness_to_own_binary(&copy).unwrap(), Likeness::Other);
        std::fs::write(&copy, "#!/bin/sh\n").unwrap();
        assert_eq!(likeness_to_own_binary(&copy).unwrap(), Likeness::Other);
        assert!(likeness_to_own_binary(&dir.path().join("absent")).is_err());
    }
}
