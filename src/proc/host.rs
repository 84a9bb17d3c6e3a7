//! What this process knows of its place on the host: its PID and mount namespaces, the
//! container it runs in (and whether a host pid belongs to one), the binary it was started
//! as, the clock its timings use, and the pages of its image it can let go.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::file::{read, read_self};
use super::identity::ProcessIdentity;
use super::mounts::{mount_point_among, mounts};

/// The inode of the kernel's initial PID namespace, fixed by the kernel (`PROC_PID_INIT_INO`).
pub(super) const INITIAL_PID_NAMESPACE: &str = "pid:[4026531836]";

/// Whether this process runs in the kernel's initial PID namespace, the one a Docker daemon on
/// the host runs in: never in a pod, a container without `--pid=host` or under `unshare --pid`.
pub(crate) fn in_initial_pid_namespace() -> bool {
    std::fs::read_link("/proc/self/ns/pid").is_ok_and(|ns| ns.as_os_str() == INITIAL_PID_NAMESPACE)
}

/// Whether host pid `pid` is visible here and belongs to container `container_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PidCheck {
    Confirmed,
    /// No such live pid in this PID namespace: it has exited, or this is not the host's namespace.
    NotVisible,
    /// The pid exists but runs in another cgroup: it is not the container's.
    Foreign(String),
}

pub(crate) fn check_pid_belongs_to(pid: u32, container_id: &str) -> PidCheck {
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

/// A kind of Linux namespace, as `/proc/<pid>/ns/` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Namespace {
    Mount,
    Net,
    Pid,
}

impl Namespace {
    fn name(self) -> &'static str {
        match self {
            Namespace::Mount => "mnt",
            Namespace::Net => "net",
            Namespace::Pid => "pid",
        }
    }
}

/// Whether process `pid` shares this process's namespace of kind `ns`: `None` when that cannot
/// be read.
pub(crate) fn shares_namespace(pid: u32, ns: Namespace) -> Option<bool> {
    let ours = std::fs::read_link(format!("/proc/self/ns/{}", ns.name())).ok()?;
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{}", ns.name())).ok()?;
    Some(theirs == ours)
}

/// The path this program was started as: what the kernel was given (`AT_EXECFN`), which is the
/// path the agent ran whatever `argv[0]` says; else `/proc/self/exe` (symlinks resolved).
pub(crate) fn exec_path() -> Option<PathBuf> {
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
pub(crate) fn own_binary() -> io::Result<PathBuf> {
    let path = std::fs::read_link("/proc/self/exe")?;
    let text = path.as_os_str().as_bytes();
    Ok(match text.strip_suffix(b" (deleted)") {
        Some(live) => PathBuf::from(OsStr::from_bytes(live)),
        None => path,
    })
}

/// Whether `path` is the file this process runs (a baked shim, seen under an executor's name).
pub(crate) fn is_own_binary(path: &Path) -> bool {
    own_binary().is_ok_and(|own| same_file(path, &own))
}

/// How a file is like the binary this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Likeness {
    /// The same file (device and inode): a bind mount of it, or a link to it.
    SameFile,
    /// Another file with the same bytes: a copy, as a baked image holds under its second name.
    SameContent,
    Other,
}

/// How `path` is like the binary this process runs, compared with `/proc/self/exe` itself, which
/// holds the running file even where its path was since given another.
pub(crate) fn likeness_to_own_binary(path: &Path) -> io::Result<Likeness> {
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
pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Finds the container ID in a `/proc/<pid>/cgroup` (`/docker/<id>`, `docker-<id>.scope`, ...).
pub(crate) fn container_id_in_cgroup(cgroup: &str) -> Option<String> {
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
pub(crate) fn own_container_id() -> io::Result<Option<String>> {
    if mount_point_among(Path::new(DOCKER_FILES_DIR), &DOCKER_CONTAINER_FILES) != Some(false) {
        let mountinfo = read_self("mountinfo")?;
        if let Some(id) = container_id_in_mountinfo(&mountinfo) {
            return Ok(Some(id));
        }
    }
    Ok(container_id_in_cgroup(&read_self("cgroup")?))
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
pub(crate) fn release_read_only_image_pages() {
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

/// Where Docker bind-mounts a file of every container's own `containers/<id>/` directory, and
/// those files' names: there even with host networking, where `HOSTNAME` is the host's name.
const DOCKER_FILES_DIR: &str = "/etc";
const DOCKER_CONTAINER_FILES: [&str; 3] = ["hostname", "hosts", "resolv.conf"];

/// Finds `/containers/<64 hex>/{hostname,hosts,resolv.conf}` as the root of a mount at one of
/// [`DOCKER_CONTAINER_FILES`] in [`DOCKER_FILES_DIR`].
pub(crate) fn container_id_in_mountinfo(mountinfo: &str) -> Option<String> {
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
