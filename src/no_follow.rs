//! Paths and files a task may have had a hand in, opened the one safe way: no symbolic link is
//! followed, no FIFO or device is opened blocking, nothing is read without a bound.
//!
//! The shim and the sibling's init run with more power than the task (root, the Docker socket),
//! and the task writes its sandbox. So every directory the shim takes from a run (the sandbox,
//! the meta run directory, `pids/`, a persistent volume) is opened component by component from
//! `/` with `O_NOFOLLOW`, and every file in the sandbox is opened with `O_NOFOLLOW | O_NONBLOCK`,
//! checked to be a regular file with `fstat`, and read up to a cap.

use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode, SFlag};

/// Why a directory could not be opened without following links.
#[derive(Debug)]
pub enum PathError {
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
pub fn open_dir(path: &Path) -> Result<OwnedFd, PathError> {
    let names = normal_components(path)?;
    let how = nix::fcntl::OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(nix::fcntl::ResolveFlag::RESOLVE_NO_SYMLINKS);
    match nix::fcntl::openat2(nix::fcntl::AT_FDCWD, path, how) {
        Ok(dir) => Ok(dir),
        Err(_) => walk_from_root(&names),
    }
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
    let mut dir = nix::fcntl::open(
        root,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| PathError::Io(root.to_path_buf(), e.into()))?;
    let mut walked = root.to_path_buf();
    for (i, name) in names.iter().enumerate() {
        walked.push(name);
        // Intermediate directories need only be searched; the last one is opened readable.
        let access = if i + 1 == names.len() {
            OFlag::O_RDONLY
        } else {
            OFlag::O_PATH
        };
        let flags = access | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(&dir, *name, flags, Mode::empty()) {
            Ok(next) => dir = next,
            Err(Errno::ENOENT) => return Err(PathError::Missing(walked)),
            Err(Errno::ENOTDIR | Errno::ELOOP) => {
                return Err(match is_symlink(&dir, name) {
                    true => PathError::Symlink(walked),
                    false => PathError::NotADirectory(walked),
                })
            }
            Err(e) => return Err(PathError::Io(walked, e.into())),
        }
    }
    Ok(dir)
}

fn is_symlink(dir: &impl AsFd, name: &OsStr) -> bool {
    fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK)
}

/// The device and inode of an open file: what names it whatever path led there.
pub fn file_id(fd: &impl AsFd) -> io::Result<(u64, u64)> {
    let st = fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// Whether `path` exists as a directory reached without links (`Ok(false)`: some component is
/// missing); a link or a file on the way is an error.
pub fn dir_exists(path: &Path) -> Result<bool, PathError> {
    match open_dir(path) {
        Ok(_) => Ok(true),
        Err(PathError::Missing(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Opens a file in a directory a task can write, for appending, creating it if missing: never
/// through a link, never blocking (a FIFO), and only a regular file. Its descriptor is left
/// blocking, as a program that inherits it expects.
pub fn open_append(path: &Path, mode: u32) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| with_link_named(e, path))?;
    regular(&file, path)?;
    let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL)?;
    nix::fcntl::fcntl(
        &file,
        nix::fcntl::FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK),
    )?;
    Ok(file)
}

/// Reads a file a task can write, if it exists: never through a link, never blocking, only a
/// regular file of at most `cap` bytes. With its metadata (owner, size), read from the
/// descriptor that was read.
pub fn read_capped(path: &Path, cap: u64) -> io::Result<Option<(Vec<u8>, std::fs::Metadata)>> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(with_link_named(e, path)),
    };
    let meta = regular(&file, path)?;
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
    Ok(Some((content, meta)))
}

fn regular(file: &File, path: &Path) -> io::Result<std::fs::Metadata> {
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is not a regular file (a FIFO, a device or a directory put there)",
                path.display()
            ),
        ));
    }
    Ok(meta)
}

/// `O_NOFOLLOW` on a link fails with `ELOOP`: say so in words.
fn with_link_named(e: io::Error, path: &Path) -> io::Error {
    if e.raw_os_error() == Some(nix::libc::ELOOP) {
        io::Error::new(
            e.kind(),
            format!(
                "{} is a symbolic link, which is never followed",
                path.display()
            ),
        )
    } else {
        io::Error::new(e.kind(), format!("{}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

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
}
