//! `forked.pid`: how the agent finds its executor again after a restart.
//!
//! Written the way `slave::state::checkpoint` writes it (temp file in the same directory, the bare
//! decimal pid, rename), so a reader sees the old value or the new one, never a partial file.
//! Like the agent's own write of `forked.pid` (its `sync` is off for it), nothing is synced to
//! disk: the file matters only to an agent that recovers on the same boot, which reads it from
//! the page cache, and after a crash of the host the agent finds a new boot and recovers no
//! executor at all.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::fcntl::{openat, renameat, OFlag};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use nix::sys::stat::Mode;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// A host pid that can be checkpointed: never 0 (a signal to pid 0 reaches a whole process group)
/// and never negative (a signal to -n reaches process group n).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostPid(u32);

impl HostPid {
    pub fn new(pid: i64) -> Option<Self> {
        (pid > 0 && pid <= i64::from(i32::MAX)).then_some(HostPid(pid as u32))
    }

    pub(crate) fn get(self) -> u32 {
        self.0
    }
}

impl std::fmt::Display for HostPid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What a checkpoint file holds, read as Mesos reads it: empty counts as absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PidFile {
    Absent,
    Pid(u32),
    Unparsable(String),
}

/// A pid file holds a few digits; anything longer is not one.
const PID_FILE_CAP: u64 = 64;

pub(crate) fn read_pid_file(path: &Path) -> io::Result<PidFile> {
    match crate::no_follow::read_capped(path, PID_FILE_CAP) {
        Ok(Some((bytes, _))) => {
            let text = String::from_utf8_lossy(&bytes);
            let value = text.trim();
            if value.is_empty() {
                Ok(PidFile::Absent)
            } else {
                Ok(value
                    .parse()
                    .map(PidFile::Pid)
                    .unwrap_or_else(|_| PidFile::Unparsable(value.to_string())))
            }
        }
        Ok(None) => Ok(PidFile::Absent),
        Err(e) => Err(e),
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A checkpoint write that failed: nothing was renamed, the file holds what it held, and no temp
/// file is left.
#[derive(Debug)]
pub struct WriteError {
    path: PathBuf,
    error: io::Error,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "writing {}: {}; the previous content is intact",
            self.path.display(),
            self.error
        )
    }
}

impl std::error::Error for WriteError {}

impl From<WriteError> for io::Error {
    fn from(e: WriteError) -> io::Error {
        io::Error::new(e.error.kind(), e.to_string())
    }
}

/// A complete temp file beside its target, not yet renamed onto it: where a crash leaves
/// the old content intact and a stray temp file behind (the failpoint `during-checkpoint` holds
/// a launch here). Dropped without [`StagedWrite::commit`], it removes its temp file.
///
/// Everything happens relative to the directory, opened once without following a link (see
/// [`crate::no_follow`]): the temp file is created new (`O_EXCL`, never through a link), and the
/// rename replaces whatever entry holds the name, link or not, without following it.
pub(crate) struct StagedWrite {
    dir: OwnedFd,
    temp: String,
    name: std::ffi::OsString,
    path: PathBuf,
    committed: bool,
}

impl StagedWrite {
    /// Writes `content` to a new temp file in `path`'s directory, which must exist: the agent
    /// creates the checkpoint directories, and the shim does not invent agent state.
    pub(crate) fn stage(path: &Path, content: &[u8]) -> Result<StagedWrite, WriteError> {
        let dir = crate::no_follow::open_dir(parent_dir(path)).map_err(|e| WriteError {
            path: path.to_path_buf(),
            error: io::Error::other(e.to_string()),
        })?;
        StagedWrite::stage_in(dir, path, content)
    }

    /// [`StagedWrite::stage`] in `dir`, `path`'s directory, which the caller opened without
    /// following a link.
    pub(crate) fn stage_in(
        dir: OwnedFd,
        path: &Path,
        content: &[u8],
    ) -> Result<StagedWrite, WriteError> {
        let before = |error: io::Error| WriteError {
            path: path.to_path_buf(),
            error,
        };
        let (temp, file) = create_temp(&dir, file_name(path)).map_err(before)?;
        let staged = StagedWrite {
            dir,
            temp,
            name: path.file_name().unwrap_or_default().to_os_string(),
            path: path.to_path_buf(),
            committed: false,
        };
        let mut file = File::from(file);
        file.write_all(content).map_err(before)?;
        Ok(staged)
    }

    /// Renames the temp file onto the target.
    pub(crate) fn commit(mut self) -> Result<(), WriteError> {
        renameat(
            &self.dir,
            self.temp.as_str(),
            &self.dir,
            self.name.as_os_str(),
        )
        .map_err(|e| WriteError {
            path: self.path.clone(),
            error: e.into(),
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedWrite {
    fn drop(&mut self) {
        if !self.committed {
            let _ = nix::unistd::unlinkat(
                &self.dir,
                self.temp.as_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}

/// How many temp names a write tries before it gives up: each is new and unguessable, so only a
/// directory that refuses every new file runs out.
const TEMP_TRIES: usize = 8;

/// Creates a new temp file for `name` in `dir`: `.<name>.shim-<pid>-<n><random>`. The pid says
/// whose it is (see [`remove_stale_temp_files`]); the random part keeps a name from being
/// guessed, so that a task writing the same directory (the sandbox, where the init records the
/// exit) cannot take the name first and keep the write from ever happening.
fn create_temp(dir: &OwnedFd, name: &str) -> io::Result<(String, OwnedFd)> {
    use std::hash::BuildHasher;
    let mut last = io::Error::other("no temp name tried");
    for _ in 0..TEMP_TRIES {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        // std's hasher keys are random per process: the hash of a counter is unguessable.
        let random = std::collections::hash_map::RandomState::new().hash_one(n);
        let temp = format!(
            "{}{}-{n}{random:016x}",
            temp_prefix(name),
            std::process::id()
        );
        let flags =
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(dir, temp.as_str(), flags, Mode::from_bits_truncate(0o644)) {
            Ok(file) => return Ok((temp, file)),
            Err(e) => last = e.into(),
        }
    }
    Err(last)
}

/// Replaces `path` with `content` atomically, as Mesos checkpoints: a reader sees the old
/// content or the new, never a part.
pub(crate) fn write_atomically(path: &Path, content: &[u8]) -> Result<(), WriteError> {
    StagedWrite::stage(path, content)?.commit()
}

/// Replaces `path` with `pid`, the bare decimal as Mesos writes it.
pub fn write_pid_file(path: &Path, pid: HostPid) -> Result<(), WriteError> {
    write_atomically(path, pid.to_string().as_bytes())
}

/// Temp files are `.<name>.shim-<pid>-<n>`: the pid says whose they are.
fn temp_prefix(name: &str) -> String {
    format!(".{name}.shim-")
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn file_name(path: &Path) -> &str {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("checkpoint")
}

/// Removes the temp files that shims left beside `path` when they died mid-write. `writer_gone`
/// judges a writer's pid: only the caller knows whether it can see host pids at all, and a temp
/// file whose writer may be alive (a rewrite under way) is never touched.
///
/// Everything goes through the directory, opened once without following a link: its entries are
/// listed from that descriptor, and each is removed relative to it (`unlinkat`), only when
/// `fstatat` without following shows a regular file. No path is resolved again, so a directory
/// or link swapped in meanwhile redirects nothing, and no entry is ever opened.
pub(crate) fn remove_stale_temp_files(
    path: &Path,
    writer_gone: impl Fn(u32) -> bool,
) -> Vec<PathBuf> {
    let Ok(dir) = crate::no_follow::open_dir(parent_dir(path)) else {
        return Vec::new();
    };
    let prefix = temp_prefix(file_name(path));
    let stale = |name: &str| {
        let rest = name.strip_prefix(&prefix)?;
        let owner = rest.split('-').next()?.parse::<u32>().ok()?;
        (owner > 0 && writer_gone(owner)).then_some(())
    };
    let mut removed = Vec::new();
    for name in entry_names(&dir) {
        if stale(&name).is_some() && is_regular_file_in(&dir, &name) {
            let unlinked =
                nix::unistd::unlinkat(&dir, name.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
            if unlinked.is_ok() {
                removed.push(parent_dir(path).join(name));
            }
        }
    }
    removed
}

/// The UTF-8 names in the directory `dir`, listed from its descriptor (a temp file's name is
/// always UTF-8, so no other name matters here).
fn entry_names(dir: &OwnedFd) -> Vec<String> {
    // A duplicate descriptor: the listing closes its own, and `dir` stays open for the `*at` calls.
    let listing = dir
        .try_clone()
        .ok()
        .and_then(|fd| nix::dir::Dir::from_fd(fd).ok());
    let Some(mut listing) = listing else {
        return Vec::new();
    };
    listing
        .iter()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str().ok().map(str::to_string))
        .collect()
}

/// `name` in `dir` is a regular file, not followed if it is a link.
fn is_regular_file_in(dir: &OwnedFd, name: &str) -> bool {
    use nix::sys::stat::{fstatat, SFlag};
    fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG)
}

/// Waits until the agent has checkpointed a non-empty `path`, checking every `interval`, for at
/// most `timeout`. Returns whether it appeared. Old agents (0.2x) write it only after the launch.
pub(crate) async fn wait_for_pid_file(
    path: &Path,
    timeout: Duration,
    interval: Duration,
) -> io::Result<bool> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if read_pid_file(path)? != PidFile::Absent {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(false);
        }
        tokio::time::sleep(interval).await;
    }
}

/// Watches the directory of a checkpoint file for anything that replaces or changes it, with one
/// inotify instance: held only by a [`ForkedPidGuard`], for its bounded window.
pub(crate) struct PidFileWatch {
    inotify: AsyncFd<InotifyFd>,
    path: PathBuf,
}

impl PidFileWatch {
    pub(crate) fn new(path: &Path) -> io::Result<Self> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        inotify.add_watch(
            dir,
            AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_MOVED_TO
                | AddWatchFlags::IN_DELETE
                | AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_MODIFY,
        )?;
        // SAFETY: the `Inotify` owns its descriptor and is owned by the `AsyncFd`, so the
        // descriptor stays open and the same for the registration's whole life.
        let inotify =
            unsafe { AsyncFd::register_with_interest(InotifyFd(inotify), Interest::READABLE) }
                .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(PidFileWatch {
            inotify,
            path: path.to_path_buf(),
        })
    }

    /// Resolves once something happened to the watched file (or its directory was removed).
    pub(crate) async fn changed(&mut self) -> io::Result<()> {
        let name = self.path.file_name().map(|n| n.to_os_string());
        loop {
            let mut guard = self.inotify.readable().await?;
            match guard.get_inner().0.read_events() {
                Ok(events) => {
                    let relevant = events.iter().any(|e| {
                        e.mask
                            .intersects(AddWatchFlags::IN_IGNORED | AddWatchFlags::IN_DELETE_SELF)
                            || e.name.as_deref() == name.as_deref()
                    });
                    if relevant {
                        return Ok(());
                    }
                }
                Err(nix::errno::Errno::EAGAIN) => guard.clear_ready(),
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// How often a guard without inotify looks at the file: slow, and only for the guard's window.
const GUARD_POLL: Duration = Duration::from_millis(500);

/// What identifies one version of a file: a rename onto it changes the inode, a write in place
/// the size or the modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::metadata(path).ok()?;
    Some(FileStamp {
        ino: m.ino(),
        len: m.len(),
        mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    })
}

enum Watch {
    Inotify(PidFileWatch),
    Poll { last: Option<FileStamp> },
}

/// Keeps watch over `forked.pid` for a bounded window after the shim's own write, so that an
/// agent's late or racing write (0.21 agents checkpoint after the launch) can be undone.
///
/// Bounded on purpose: an inotify instance held for an executor's whole life would exhaust the
/// host's `fs.inotify.max_user_instances` (128 by default, shared by all of root's processes) at
/// about a hundred executors. Where no instance can be had, the guard polls the file's stat
/// instead. Dropping the guard releases everything it holds.
pub(crate) struct ForkedPidGuard {
    path: PathBuf,
    watch: Watch,
    deadline: tokio::time::Instant,
}

impl ForkedPidGuard {
    /// Starts watching `path` for `window`. Made before the shim's own write, so that a write
    /// racing it is seen.
    pub(crate) fn new(path: &Path, window: Duration) -> Self {
        let watch = match PidFileWatch::new(path) {
            Ok(w) => Watch::Inotify(w),
            Err(e) => {
                tracing::info!(path = %path.display(), error = %e, "no inotify instance to be had; polling forked.pid while guarding it");
                Watch::Poll { last: stamp(path) }
            }
        };
        ForkedPidGuard::watching(path, watch, window)
    }

    fn watching(path: &Path, watch: Watch, window: Duration) -> Self {
        ForkedPidGuard {
            path: path.to_path_buf(),
            watch,
            deadline: tokio::time::Instant::now() + window,
        }
    }

    #[cfg(test)]
    pub(crate) fn uses_inotify(&self) -> bool {
        matches!(self.watch, Watch::Inotify(_))
    }

    /// Keeps the guard up for at least `window` from now (after a foreign write was undone).
    pub(crate) fn extend(&mut self, window: Duration) {
        self.deadline = self.deadline.max(tokio::time::Instant::now() + window);
    }

    /// Resolves `Ok(true)` when the file changed, `Ok(false)` once the window has closed: the
    /// guard is then spent and is to be dropped.
    pub(crate) async fn changed(&mut self) -> io::Result<bool> {
        let deadline = self.deadline;
        let path = &self.path;
        let changed = async {
            match &mut self.watch {
                Watch::Inotify(w) => w.changed().await,
                Watch::Poll { last } => loop {
                    tokio::time::sleep(GUARD_POLL).await;
                    let now = stamp(path);
                    if now != *last {
                        *last = now;
                        return Ok(());
                    }
                },
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => Ok(false),
            r = changed => r.map(|()| true),
        }
    }

    /// The guard as it is where no inotify instance can be had (for tests of the fallback).
    #[cfg(test)]
    pub(crate) fn polling(path: &Path, window: Duration) -> Self {
        ForkedPidGuard::watching(path, Watch::Poll { last: stamp(path) }, window)
    }
}

/// An `Inotify` as tokio's reactor takes it.
struct InotifyFd(Inotify);

impl AsRawFd for InotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn host_pid_refuses_zero_negative_and_overflow() {
        assert_eq!(HostPid::new(0), None);
        assert_eq!(HostPid::new(-5), None);
        assert_eq!(HostPid::new(i64::from(i32::MAX) + 1), None);
        assert_eq!(HostPid::new(4242).map(HostPid::get), Some(4242));
    }

    #[test]
    fn writes_the_bare_decimal_pid_and_leaves_no_temp_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let path = dir.join("forked.pid");
        fs::write(&path, "111").unwrap();
        write_pid_file(&path, HostPid::new(4242).unwrap()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "4242");
        assert_eq!(read_pid_file(&path).unwrap(), PidFile::Pid(4242));
        assert_eq!(entries(&dir), vec!["forked.pid"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_value_and_leaves_nothing_behind() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        // The target is a directory: rename fails after the temp file was fully written.
        let path = dir.join("forked.pid");
        fs::create_dir(&path).unwrap();
        fs::write(path.join("keep"), "x").unwrap();
        assert!(write_pid_file(&path, HostPid::new(7).unwrap()).is_err());
        assert_eq!(entries(&dir), vec!["forked.pid"]);
        // A directory that does not exist: nothing is created.
        let missing = dir.join("nope/forked.pid");
        assert!(write_pid_file(&missing, HostPid::new(7).unwrap()).is_err());
        assert!(!dir.join("nope").exists());
    }

    #[test]
    fn temp_files_of_dead_writers_are_cleaned_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let path = dir.join("forked.pid");
        fs::write(dir.join(".forked.pid.shim-4194305-0"), "12").unwrap();
        let mine = format!(".forked.pid.shim-{}-99", std::process::id());
        fs::write(dir.join(&mine), "1").unwrap();
        fs::write(dir.join("unrelated"), "1").unwrap();
        // A judge that cannot see host pids says no writer is gone: nothing is removed.
        assert!(remove_stale_temp_files(&path, |_| false).is_empty());
        assert_eq!(entries(&dir).len(), 3);
        let removed = remove_stale_temp_files(&path, |pid| pid != std::process::id());
        assert_eq!(removed, vec![dir.join(".forked.pid.shim-4194305-0")]);
        assert_eq!(entries(&dir), vec![mine, "unrelated".to_string()]);
    }

    /// A FIFO, a directory or a link that carries a temp file's name is never opened, followed
    /// or removed: only regular files are, and only in the directory reached without a link.
    #[test]
    fn only_regular_temp_files_are_removed_and_nothing_is_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pids");
        fs::create_dir(&dir).unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        fs::write(elsewhere.join(".forked.pid.shim-4194305-7"), "1").unwrap();
        nix::unistd::mkfifo(
            &dir.join(".forked.pid.shim-4194305-1"),
            Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        fs::create_dir(dir.join(".forked.pid.shim-4194305-2")).unwrap();
        std::os::unix::fs::symlink(
            elsewhere.join(".forked.pid.shim-4194305-7"),
            dir.join(".forked.pid.shim-4194305-3"),
        )
        .unwrap();
        assert!(remove_stale_temp_files(&dir.join("forked.pid"), |_| true).is_empty());
        assert_eq!(entries(&dir).len(), 3);
        // A link in place of the directory: nothing behind it is touched.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        assert!(remove_stale_temp_files(&link.join("forked.pid"), |_| true).is_empty());
        assert_eq!(entries(&elsewhere).len(), 1);
    }

    #[test]
    fn a_staged_write_leaves_the_old_value_until_it_commits() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let path = dir.join("forked.pid");
        fs::write(&path, "111").unwrap();
        let staged = StagedWrite::stage(&path, b"222").unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "111",
            "until the rename, readers see the old value"
        );
        assert_eq!(entries(&dir).len(), 2, "the complete temp file beside it");
        staged.commit().unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "222");
        assert_eq!(entries(&dir), vec!["forked.pid"]);
        // Abandoned, a staged write leaves nothing behind.
        drop(StagedWrite::stage(&path, b"333").unwrap());
        assert_eq!(entries(&dir), vec!["forked.pid"]);
        assert_eq!(fs::read_to_string(&path).unwrap(), "222");
    }

    #[test]
    fn an_error_names_the_file_and_says_the_previous_content_is_intact() {
        let error = WriteError {
            path: "/m/forked.pid".into(),
            error: io::Error::from_raw_os_error(nix::libc::ENOSPC),
        };
        let text = error.to_string();
        assert!(text.contains("/m/forked.pid"), "{text}");
        assert!(text.contains("the previous content is intact"), "{text}");
        assert_eq!(io::Error::from(error).kind(), io::ErrorKind::StorageFull);
    }

    #[test]
    fn reads_as_mesos_does() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let path = dir.join("forked.pid");
        assert_eq!(read_pid_file(&path).unwrap(), PidFile::Absent);
        fs::write(&path, "").unwrap();
        assert_eq!(read_pid_file(&path).unwrap(), PidFile::Absent);
        fs::write(&path, "12x").unwrap();
        assert_eq!(
            read_pid_file(&path).unwrap(),
            PidFile::Unparsable("12x".into())
        );
        fs::write(&path, "99\n").unwrap();
        assert_eq!(read_pid_file(&path).unwrap(), PidFile::Pid(99));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn waits_for_a_late_checkpoint_and_gives_up_when_bounded() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let path = dir.join("forked.pid");
        assert!(
            !wait_for_pid_file(&path, Duration::from_millis(50), Duration::from_millis(10))
                .await
                .unwrap()
        );
        let writer = {
            let path = path.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(30)).await;
                write_pid_file(&path, HostPid::new(5).unwrap()).unwrap();
            })
        };
        assert!(
            wait_for_pid_file(&path, Duration::from_secs(5), Duration::from_millis(5))
                .await
                .unwrap()
        );
        writer.await.unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_watch_sees_a_rename_onto_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let path = dir.join("forked.pid");
        let mut watch = PidFileWatch::new(&path).unwrap();
        fs::write(dir.join("unrelated"), "1").unwrap();
        write_pid_file(&path, HostPid::new(77).unwrap()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("no event")
            .unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_guard_ends_when_its_window_closes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let path = dir.join("forked.pid");
        write_pid_file(&path, HostPid::new(5).unwrap()).unwrap();
        let mut guard = ForkedPidGuard::new(&path, Duration::from_millis(50));
        assert!(guard.uses_inotify());
        assert!(
            !guard.changed().await.unwrap(),
            "nothing changed: the window closed"
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_guard_sees_a_rename_with_inotify_and_by_polling() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let path = dir.join("forked.pid");
        write_pid_file(&path, HostPid::new(5).unwrap()).unwrap();
        for mut guard in [
            ForkedPidGuard::new(&path, Duration::from_secs(30)),
            ForkedPidGuard::polling(&path, Duration::from_secs(30)),
        ] {
            let before = guard.uses_inotify();
            write_pid_file(&path, HostPid::new(6).unwrap()).unwrap();
            assert!(
                tokio::time::timeout(Duration::from_secs(5), guard.changed())
                    .await
                    .expect("a change within the window")
                    .unwrap(),
                "inotify: {before}"
            );
        }
    }
}
