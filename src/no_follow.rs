//! Paths and files a task may have had a hand in, opened the one safe way: no symbolic link is
//! followed, no FIFO or device is opened blocking, nothing is read without a bound.
//!
//! The shim, the sibling's init and the operator's commands run with more power than the task
//! (root, the Docker socket, often a `--privileged` agent container), and the task writes its
//! sandbox. So every directory the shim takes from a run (the sandbox, the meta run directory,
//! `pids/`, a persistent volume) is reached from `/` without following a link, and every file a
//! task or tenant can touch goes through [`open_file`]: taken first with `O_PATH` (which opens
//! nothing), its type read from that descriptor, and opened for I/O only when it is a regular
//! file, through that same descriptor. Opening a device node or a FIFO is itself an action (a
//! watchdog reboots its host when its device is closed), so none is ever opened for I/O.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};

/// Why a directory could not be opened without following links.
#[derive(Debug)]
pub(crate) enum PathError {
    /// Relative, or with `.`, `..` or an empty component.
    NotNormal(PathBuf),
    /// This component (the path up to it) is a symbolic link.
    Symlink(PathBuf),
    /// This component is not a directory.
    NotADirectory(PathBuf),
    /// This component does not exist.
    Missing(PathBuf),
    Io(PathBuf, io::Error),
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::NotNormal(p) => {
                write!(f, "{} is not a normalised absolute path", p.display())
            }
            PathError::Symlink(p) => write!(f, "{} is a symbolic link", p.display()),
            PathError::NotADirectory(p) => write!(f, "{} is not a directory", p.display()),
            PathError::Missing(p) => write!(f, "{} does not exist", p.display()),
            PathError::Io(p, e) => write!(f, "cannot open {}: {e}", p.display()),
        }
    }
}

impl std::error::Error for PathError {}

/// Opens the directory `path` (absolute and normalised), refusing any component that is a
/// symbolic link. The descriptor is readable (it can list the directory, be synced, and anchor
/// `*at` calls).
///
/// The kernel resolves the whole path in one `openat2` with `RESOLVE_NO_SYMLINKS` (a launch opens
/// a few run directories ten components deep, and a call per component was a measurable part of
/// its CPU). Where that fails for any reason (a link or a missing component, or a kernel or
/// seccomp profile without `openat2`), the component walk of [`walk_from_root`] runs instead: it
/// gives the same answer and names the component at fault.
pub(crate) fn open_dir(path: &Path) -> Result<OwnedFd, PathError> {
    let names = normal_components(path)?;
    let how = nix::fcntl::OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(nix::fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS);
    match nix::fcntl::openat2(nix::fcntl::AT_FDCWD, path, how) {
        Ok(dir) => Ok(dir),
        Err(_) => walk_from_root(&names),
    }
}

/// Opens the directory `below` (relative, normalised: no `.`, `..` or empty component) under the
/// directory `base`, refusing any component that is a symbolic link: the layout a task could
/// plant a link in, under a directory the operator chose (which may itself be reached through a
/// link of the operator's). `PathError`s name the path from `base`'s own name, `shown`.
pub(crate) fn open_dir_beneath(
    base: &OwnedFd,
    below: &Path,
    shown: &Path,
) -> Result<OwnedFd, PathError> {
    let names = relative_components(below, shown)?;
    let how = nix::fcntl::OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(
            nix::fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS | nix::fcntl::ResolveFlag::RESOLVE_BENEATH,
        );
    match nix::fcntl::openat2(base, below, how) {
        Ok(dir) => Ok(dir),
        Err(_) => walk_from(base, shown, &names),
    }
}

/// The names of a relative path with no `.`, `..` or empty component.
fn relative_components<'a>(path: &'a Path, shown: &Path) -> Result<Vec<&'a OsStr>, PathError> {
    path.components()
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(PathError::NotNormal(shown.join(path))),
        })
        .collect()
}

/// The names under `/` of an absolute path with no `.`, `..` or empty component.
fn normal_components(path: &Path) -> Result<Vec<&OsStr>, PathError> {
    let not_normal = || PathError::NotNormal(path.to_path_buf());
    let mut components = path.components();
    if components.next() != Some(Component::RootDir) {
        return Err(not_normal());
    }
    components
        .map(|c| match c {
            Component::Normal(name) => Ok(name),
            _ => Err(not_normal()),
        })
        .collect()
}

/// Opens the directory whose `names` under `/` are given, one component at a time from `/` with
/// `O_NOFOLLOW`: the way that works on every kernel and names the component that is a link, is
/// missing or is not a directory.
fn walk_from_root(names: &[&OsStr]) -> Result<OwnedFd, PathError> {
    let root = Path::new("/");
    let dir = nix::fcntl::open(
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| PathError::Io(root.to_path_buf(), e.into()))?;
    walk_from(&dir, root, names)
}

/// Opens `names` one component at a time under `start` (shown as `shown` in errors) with
/// `O_NOFOLLOW`.
fn walk_from(start: &OwnedFd, shown: &Path, names: &[&OsStr]) -> Result<OwnedFd, PathError> {
    let mut dir: Option<OwnedFd> = None;
    let mut walked = shown.to_path_buf();
    for (i, name) in names.iter().enumerate() {
        walked.push(name);
        // Intermediate directories need only be searched; the last one is opened readable.
        let access = if i + 1 == names.len() {
            OFlag::O_RDONLY
        } else {
            OFlag::O_PATH
        };
        let flags = access | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let parent = dir.as_ref().unwrap_or(start);
        match openat(parent, *name, flags, Mode::empty()) {
            Ok(next) => dir = Some(next),
            Err(Errno::ENOENT) => return Err(PathError::Missing(walked)),
            Err(Errno::ENOTDIR | Errno::ELOOP) => {
                return Err(match is_symlink(parent, name) {
                    true => PathError::Symlink(walked),
                    false => PathError::NotADirectory(walked),
                })
            }
            Err(e) => return Err(PathError::Io(walked, e.into())),
        }
    }
    match dir {
        Some(dir) => Ok(dir),
        None => start.try_clone().map_err(|e| PathError::Io(walked, e)),
    }
}

fn is_symlink(dir: &impl AsFd, name: &OsStr) -> bool {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK)
}

/// The device and inode of an open file: what names it whatever path led there.
pub(crate) fn file_id(fd: &impl AsFd) -> io::Result<(u64, u64)> {
    let st = fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// Whether `path` exists as a directory reached without links (`Ok(false)`: some component is
/// missing); a link or a file on the way is an error.
pub(crate) fn dir_exists(path: &Path) -> Result<bool, PathError> {
    match open_dir(path) {
        Ok(_) => Ok(true),
        Err(PathError::Missing(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// How a file a task can touch is opened, once it is known to be a regular file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OpenFor {
    /// For reading; a missing file is `Ok(None)`.
    Read,
    /// For appending, made with `mode` where missing.
    Append { mode: u32 },
}

impl OpenFor {
    fn creates(self) -> Option<u32> {
        match self {
            OpenFor::Read => None,
            OpenFor::Append { mode } => Some(mode),
        }
    }

    fn access(self) -> OFlag {
        match self {
            OpenFor::Read => OFlag::O_RDONLY,
            OpenFor::Append { .. } => OFlag::O_WRONLY | OFlag::O_APPEND,
        }
    }
}

/// How often a file that is missing, then there, then missing again is looked for before the
/// open gives up: a name that keeps changing under the open is a task playing with it.
const OPEN_TRIES: usize = 8;

/// The one way to open a file a task or tenant can touch: in its directory, reached from `/`
/// without a link ([`open_dir`]), the name is first taken with `O_PATH | O_NOFOLLOW`, which
/// opens nothing (a device's or FIFO's open is never run: opening one can itself be the action,
/// a watchdog's or a tape's), its type is read from that descriptor, and only a regular file is
/// then opened for I/O, through that very descriptor (`/proc/self/fd/N`: the same inode, checked
/// again). A missing file is made new with `O_CREAT | O_EXCL`, which opens no existing entry.
///
/// `Ok(None)`: the file is missing and `how` makes none.
pub(crate) fn open_file(path: &Path, how: OpenFor) -> io::Result<Option<File>> {
    let (dir, name) = parent_and_name(path)?;
    open_file_in(&dir, name, path, how)
}

/// [`open_file`] for the file `name` in the directory `dir` already opened without following a
/// link (`path` names the file in errors).
pub(crate) fn open_file_in(
    dir: &impl AsFd,
    name: &OsStr,
    path: &Path,
    how: OpenFor,
) -> io::Result<Option<File>> {
    for _ in 0..OPEN_TRIES {
        match openat(
            dir,
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(handle) => {
                // Without blocking: the task owns its sandbox's files and may hold a lease on
                // one, which would hold this open for the host's lease-break-time (45 s by
                // default) each time. A leased file is refused at once (EWOULDBLOCK).
                let flags = how.access() | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK;
                let file = reopen_as(handle, path, SFlag::S_IFREG, flags)?;
                // Reads and writes of a regular file do not block anyway: the flag is cleared so
                // that the caller gets the file it asked for.
                let open = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL)?;
                let open = OFlag::from_bits_truncate(open) - OFlag::O_NONBLOCK;
                nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(open))?;
                return Ok(Some(file));
            }
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(named(path, e.into())),
        }
        let Some(mode) = how.creates() else {
            return Ok(None);
        };
        let flags =
            how.access() | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(dir, name, flags, Mode::from_bits_truncate(mode)) {
            Ok(made) => return Ok(Some(File::from(made))),
            // Made by someone else since the look: look again.
            Err(Errno::EEXIST) => {}
            Err(e) => return Err(named(path, e.into())),
        }
    }
    Err(io::Error::other(format!(
        "{} kept appearing and disappearing as it was opened",
        path.display()
    )))
}

/// `path`'s directory, opened without following a link, and its last component.
fn parent_and_name(path: &Path) -> io::Result<(OwnedFd, &OsStr)> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} names no file in a directory", path.display()),
        ));
    };
    let dir = open_dir(parent).map_err(|e| {
        let kind = match e {
            PathError::Missing(_) => io::ErrorKind::NotFound,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, format!("{}: {e}", path.display()))
    })?;
    Ok((dir, name))
}

/// Opens the FIFO at `path` for reading, without blocking, only if it is one: `path` is a
/// magic link such as `/proc/<pid>/fd/<n>`, whose owner (a process of the task's) may have put
/// anything there. It is taken with `O_PATH`, which opens nothing, and opened only once its type
/// is known.
pub(crate) fn open_fifo_for_reading(path: &Path) -> io::Result<File> {
    let handle = nix::fcntl::open(path, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| named(path, e.into()))?;
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    reopen_as(handle, path, SFlag::S_IFIFO, flags)
}

/// Opens the file `handle` (an `O_PATH` descriptor) holds with `flags`, if it is of type `want`.
fn reopen_as(handle: OwnedFd, path: &Path, want: SFlag, flags: OFlag) -> io::Result<File> {
    let held = fstat(&handle)?;
    require_type(held.st_mode, want, path)?;
    // Through the descriptor, not the name: whatever took the name meanwhile is not opened.
    let file = nix::fcntl::open(
        format!("/proc/self/fd/{}", handle.as_raw_fd()).as_str(),
        flags,
        Mode::empty(),
    )
    .map_err(|e| {
        // The kind is kept: a caller tells a permission refused (this user may not read the
        // file) from the rest.
        let hint = if e == Errno::ENOENT {
            " (is /proc mounted?)"
        } else {
            ""
        };
        io::Error::new(
            io::Error::from(e).kind(),
            format!(
                "cannot open {} through its descriptor{hint}: {e}",
                path.display()
            ),
        )
    })?;
    let opened = fstat(&file)?;
    if (opened.st_dev, opened.st_ino) != (held.st_dev, held.st_ino) {
        return Err(io::Error::other(format!(
            "{} is not the file that was checked",
            path.display()
        )));
    }
    Ok(File::from(file))
}

/// Refuses anything but a file of type `want`, naming what it is.
fn require_type(mode: u32, want: SFlag, path: &Path) -> io::Result<()> {
    let kind = |t: SFlag| match t {
        SFlag::S_IFREG => "a regular file",
        SFlag::S_IFLNK => "a symbolic link, which is never followed",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFIFO => "a FIFO",
        SFlag::S_IFCHR | SFlag::S_IFBLK => "a device node",
        SFlag::S_IFSOCK => "a socket",
        _ => "of an unknown type",
    };
    let found = SFlag::from_bits_truncate(mode) & SFlag::S_IFMT;
    if found == want {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} is {}, not {}: it is never opened",
            path.display(),
            kind(found),
            kind(want)
        ),
    ))
}

fn named(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Opens a file in a directory a task can write, for appending, creating it if missing (see
/// [`open_file`]).
pub(crate) fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    open_file(path, OpenFor::Append { mode })?
        .ok_or_else(|| io::Error::other(format!("{} was not made", path.display())))
}

/// Reads a file a task can write, if it exists (see [`open_file`]): only a regular file of at
/// most `cap` bytes. With its metadata (owner, size), read from the descriptor that was read.
pub(crate) fn read_capped(
    path: &Path,
    cap: u64,
) -> io::Result<Option<(Vec<u8>, std::fs::Metadata)>> {
    match open_file(path, OpenFor::Read) {
        Ok(Some(file)) => read_to_cap(file, path, cap).map(Some),
        Ok(None) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// [`read_capped`] for the file `name` in the directory `dir` already opened without following
/// a link (`path` names the file in errors).
pub(crate) fn read_capped_in(
    dir: &impl AsFd,
    name: &OsStr,
    path: &Path,
    cap: u64,
) -> io::Result<Option<(Vec<u8>, std::fs::Metadata)>> {
    match open_file_in(dir, name, path, OpenFor::Read)? {
        Some(file) => read_to_cap(file, path, cap).map(Some),
        None => Ok(None),
    }
}

/// The content of the regular file `file` (`path`), if it is at most `cap` bytes, with its
/// metadata.
fn read_to_cap(file: File, path: &Path, cap: u64) -> io::Result<(Vec<u8>, std::fs::Metadata)> {
    let meta = file.metadata()?;
    if meta.size() > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} holds {} bytes, more than the {cap} it may",
                path.display(),
                meta.size()
            ),
        ));
    }
    let mut content = Vec::new();
    file.take(cap + 1).read_to_end(&mut content)?;
    if content.len() as u64 > cap {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} grew past {cap} bytes as it was read", path.display()),
        ));
    }
    Ok((content, meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// The component walk alone: what `open_dir` does where the kernel has no `openat2`.
    fn walk(path: &Path) -> Result<OwnedFd, PathError> {
        walk_from_root(&normal_components(path)?)
    }

    #[test]
    fn opens_a_real_directory_and_refuses_a_link_anywhere_on_the_way() {
        refuses_links_anywhere(open_dir);
        refuses_links_anywhere(walk);
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("a/b/c");
        std::fs::create_dir_all(&real).unwrap();
        assert!(!dir_exists(&dir.path().join("none")).unwrap());
        assert!(dir_exists(&real).unwrap());
    }

    fn refuses_links_anywhere(open_dir: fn(&Path) -> Result<OwnedFd, PathError>) {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("a/b/c");
        std::fs::create_dir_all(&real).unwrap();
        let fd = open_dir(&real).unwrap();
        assert_eq!(
            file_id(&fd).unwrap(),
            file_id(&File::open(&real).unwrap()).unwrap()
        );
        symlink(dir.path().join("a"), dir.path().join("link")).unwrap();
        match open_dir(&dir.path().join("link/b/c")) {
            Err(PathError::Symlink(p)) => assert_eq!(p, dir.path().join("link")),
            other => panic!("{other:?}"),
        }
        symlink(&real, dir.path().join("a/b/last")).unwrap();
        assert!(matches!(
            open_dir(&dir.path().join("a/b/last")),
            Err(PathError::Symlink(_))
        ));
        std::fs::write(dir.path().join("file"), "x").unwrap();
        assert!(matches!(
            open_dir(&dir.path().join("file")),
            Err(PathError::NotADirectory(_))
        ));
        assert!(matches!(
            open_dir(&dir.path().join("none/x")),
            Err(PathError::Missing(_))
        ));
        assert!(matches!(
            open_dir(Path::new("relative")),
            Err(PathError::NotNormal(_))
        ));
        assert!(matches!(
            open_dir(&dir.path().join("a/../a")),
            Err(PathError::NotNormal(_))
        ));
    }

    #[test]
    fn a_planted_link_fifo_or_huge_file_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "secret").unwrap();
        let link = dir.path().join("link");
        symlink(&target, &link).unwrap();
        let e = read_capped(&link, 100).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let e = open_append(&link, 0o644).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "secret");

        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o644)).unwrap();
        let e = read_capped(&fifo, 100).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        // Opening a FIFO for writing without a reader fails at once (ENXIO) instead of blocking.
        assert!(open_append(&fifo, 0o644).is_err());

        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 101]).unwrap();
        let e = read_capped(&big, 100).unwrap_err();
        assert!(e.to_string().contains("more than the 100"), "{e}");
        assert!(read_capped(&dir.path().join("none"), 100)
            .unwrap()
            .is_none());
        let (content, _) = read_capped(&target, 100).unwrap().unwrap();
        assert_eq!(content, b"secret");

        let out = dir.path().join("out");
        let mut file = open_append(&out, 0o644).unwrap();
        std::io::Write::write_all(&mut file, b"line\n").unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "line\n");
    }

    /// What an inotify watch on `dir` saw opened since the last call: the names.
    fn opened(watch: &nix::sys::inotify::Inotify) -> Vec<String> {
        let events = match watch.read_events() {
            Ok(events) => events,
            Err(Errno::EAGAIN) => return Vec::new(),
            Err(e) => panic!("inotify: {e}"),
        };
        events
            .into_iter()
            .filter_map(|e| e.name.map(|n| n.to_string_lossy().into_owned()))
            .collect()
    }

    #[test]
    fn a_planted_device_or_fifo_is_refused_without_being_opened() {
        use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
        use nix::sys::stat::{makedev, mknod};
        let dir = tempfile::tempdir().unwrap();
        let device = dir.path().join("device");
        // The null device: harmless, yet an open of it is an open the watch would see.
        mknod(
            &device,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(1, 3),
        )
        .expect("mknod needs root (CAP_MKNOD): run the unit tests as root");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o666)).unwrap();
        let regular = dir.path().join("regular");
        std::fs::write(&regular, "x").unwrap();
        let watch = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
        watch.add_watch(dir.path(), AddWatchFlags::IN_OPEN).unwrap();

        // The control: a real open is seen, an O_PATH one is not (Linux 6.5 and later).
        drop(File::open(&regular).unwrap());
        drop(openat(nix::fcntl::AT_FDCWD, &regular, OFlag::O_PATH, Mode::empty()).unwrap());
        assert_eq!(
            opened(&watch),
            ["regular"],
            "the watch must tell an open from an O_PATH look"
        );

        for planted in [&device, &fifo] {
            let e = read_capped(planted, 100).unwrap_err();
            assert!(e.to_string().contains("never opened"), "{e}");
            let e = open_append(planted, 0o644).unwrap_err();
            assert!(e.to_string().contains("not a regular file"), "{e}");
        }
        assert_eq!(
            opened(&watch),
            Vec::<String>::new(),
            "a planted node was opened"
        );
        // A regular file is still read, through the descriptor that was checked.
        assert_eq!(read_capped(&regular, 100).unwrap().unwrap().0, b"x");
        assert_eq!(opened(&watch), ["regular"]);
    }

    /// A task owns the files of its sandbox, so it may hold a lease on one (`F_SETLEASE`): an
    /// open that conflicts with it waits for the holder to give it up, up to the host's
    /// `lease-break-time` (45 s by default), and the task can take the lease again at once. The
    /// open is made without blocking, so a leased file is refused at once instead.
    #[test]
    fn a_leased_file_does_not_hold_the_open() {
        use std::sync::mpsc;
        let dir = tempfile::tempdir().unwrap();
        let leased = dir.path().join("leased");
        std::fs::write(&leased, "x").unwrap();
        // A write lease: any other open of the file (even for reading) breaks it.
        let holder = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&leased)
            .unwrap();
        // SAFETY: fcntl on a descriptor this test owns; F_SETOWN with 0 only clears the owner of
        // this open file, so that no SIGIO is sent to the test process when the lease is broken.
        unsafe {
            let fd = holder.as_raw_fd();
            assert_eq!(
                nix::libc::fcntl(fd, nix::libc::F_SETLEASE, nix::libc::F_WRLCK),
                0
            );
            nix::libc::fcntl(fd, nix::libc::F_SETOWN, 0);
        }
        for how in [OpenFor::Read, OpenFor::Append { mode: 0o644 }] {
            let (tx, rx) = mpsc::channel();
            let path = leased.clone();
            std::thread::spawn(move || {
                let _ = tx.send(open_file(&path, how).map(drop));
            });
            let got = rx.recv_timeout(std::time::Duration::from_secs(3));
            let e = got
                .unwrap_or_else(|_| panic!("{how:?}: the open waited on the task's lease"))
                .unwrap_err();
            assert!(e.to_string().contains("EAGAIN"), "{how:?}: {e}");
        }
        drop(holder);
    }

    #[test]
    fn a_missing_file_is_made_new_and_never_through_a_link_on_the_way() {
        let dir = tempfile::tempdir().unwrap();
        let made = open_file(&dir.path().join("new"), OpenFor::Append { mode: 0o600 })
            .unwrap()
            .expect("made");
        assert_eq!(made.metadata().unwrap().permissions().mode() & 0o777, 0o600);
        assert!(open_file(&dir.path().join("none"), OpenFor::Read)
            .unwrap()
            .is_none());
        std::fs::create_dir(dir.path().join("real")).unwrap();
        symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
        let e = open_append(&dir.path().join("link/out"), 0o644).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(!dir.path().join("real/out").exists());
    }
}
