//! What only `GET /info` tells (live-restore, the cgroup driver), asked once per daemon instance
//! on a host and shared by the launches of its agent container, rather than once per launch.
//!
//! `/info` is one of the daemon's costliest requests, and its time grows with the daemon's load:
//! a burst of a thousand launches each asking it takes a loaded daemon for an absent one. So the
//! first launch to need it asks, under a lock, and writes the answer beside the lock; the others
//! wait for that answer and read it. An answer stands for the daemon instance that gave it (the
//! socket's device and inode: a restarted daemon makes its socket anew) and for [`FRESH_FOR`] at
//! most, since a reload of the daemon can turn live-restore on without a restart. A daemon
//! reached over TCP cannot be told apart from its successor: there every launch asks.
//!
//! The cache lives in the agent container's `/run`, root's alone, and is read as anything a task
//! might have touched: the directory reached without following a link and used only while it
//! is root's with mode 0700 ([`CacheDir`]), each file in it opened from the directory's
//! descriptor without following a link, capped, and read only from root's own file.

use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use nix::errno::Errno;
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use super::api::{timed, Engine};
use crate::config::DockerEndpoint;
use crate::mesos::checkpoint::StagedWrite;
use crate::no_follow::{self, OpenFor, PathError};

/// Where the answers are kept, in the agent container.
pub(crate) const CACHE_DIR: &str = "/run/mesos-executor-shim/cache";
/// How long an answer stands: long enough that a burst asks once, short enough that a reload
/// that turns live-restore on reaches the next minute's launches.
pub(crate) const FRESH_FOR: Duration = Duration::from_secs(60);
/// How often a launch waiting for another's answer looks again.
const LOCK_POLL: Duration = Duration::from_millis(20);
const CAP: u64 = 4096;

/// What only `GET /info` tells, one of the daemon's costliest requests (it counts containers and
/// images and asks the storage driver and plugins, so its time grows with the daemon's load):
/// asked only where a decision needs it, never by every launch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HostFacts {
    pub live_restore: bool,
    /// `cgroupfs` or `systemd`.
    pub cgroup_driver: String,
    /// `1` or `2`.
    pub cgroup_version: String,
}

impl Engine {
    /// What only `GET /info` tells (see [`HostFacts`]).
    pub(crate) async fn host_facts(&self) -> anyhow::Result<HostFacts> {
        let info = timed("info", self.api().info()).await.with_context(|| {
            format!(
                "asking the Docker daemon at {} about its host",
                self.endpoint()
            )
        })?;
        Ok(HostFacts {
            live_restore: info.live_restore_enabled.unwrap_or(false),
            cgroup_driver: info
                .cgroup_driver
                .map(|d| d.to_string())
                .unwrap_or_default(),
            cgroup_version: info
                .cgroup_version
                .map(|v| v.to_string())
                .unwrap_or_default(),
        })
    }
}

/// One answer, and what it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Answer {
    /// The daemon instance: `<device>:<inode>` of its socket.
    instance: String,
    /// When it was given, in seconds since the epoch.
    at: u64,
    live_restore: bool,
    cgroup_driver: String,
    cgroup_version: String,
}

/// The daemon's host facts: a fresh answer of this daemon instance if there is one, else asked
/// (by one launch at a time; the others wait for its answer, for at most `patience`).
pub(crate) async fn host_facts(engine: &Engine, patience: Duration) -> anyhow::Result<HostFacts> {
    let Some(instance) = instance(engine.endpoint()) else {
        return engine.host_facts().await;
    };
    let Some(cache) = CacheDir::open(Path::new(CACHE_DIR)) else {
        return engine.host_facts().await;
    };
    let name = cache_name(engine.endpoint());
    let answer = format!("{name}.json");
    if let Some(facts) = fresh(&cache, &answer, &instance, now()) {
        return Ok(facts);
    }
    let Some(lock) = cache.open_file(&format!("{name}.lock")) else {
        return engine.host_facts().await;
    };
    let deadline = tokio::time::Instant::now() + patience;
    let _held = loop {
        match nix::fcntl::Flock::lock(
            lock.try_clone()?,
            nix::fcntl::FlockArg::LockExclusiveNonblock,
        ) {
            Ok(held) => break Some(held),
            // Another launch is asking: its answer is on its way.
            Err((_, nix::errno::Errno::EWOULDBLOCK)) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(LOCK_POLL).await;
                if let Some(facts) = fresh(&cache, &answer, &instance, now()) {
                    return Ok(facts);
                }
            }
            // A lock that cannot be had, or not in time: ask without it.
            Err(_) => break None,
        }
    };
    if let Some(facts) = fresh(&cache, &answer, &instance, now()) {
        return Ok(facts);
    }
    let facts = engine.host_facts().await?;
    keep(&cache, &answer, instance, &facts);
    Ok(facts)
}

/// Keeps `facts`, the answer of daemon `instance`, as the file `name` for the launches after.
fn keep(cache: &CacheDir, name: &str, instance: String, facts: &HostFacts) {
    let answer = Answer {
        instance,
        at: now(),
        live_restore: facts.live_restore,
        cgroup_driver: facts.cgroup_driver.clone(),
        cgroup_version: facts.cgroup_version.clone(),
    };
    let written = serde_json::to_vec(&answer)
        .map_err(std::io::Error::other)
        .and_then(|json| cache.replace(name, &json));
    if let Err(e) = written {
        tracing::debug!(path = %cache.path.join(name).display(), error = %e, "could not keep the daemon's host facts for other launches");
    }
}

/// The daemon instance behind `endpoint`: its socket's device and inode; `None` over TCP.
fn instance(endpoint: &DockerEndpoint) -> Option<String> {
    let socket = endpoint.socket()?;
    let meta = std::fs::metadata(socket).ok()?;
    Some(format!("{}:{}", meta.dev(), meta.ino()))
}

/// The name of an endpoint's cache files (its answer, its lock), from a digest of it.
fn cache_name(endpoint: &DockerEndpoint) -> String {
    format!("daemon-{}", digest(&endpoint.to_string()))
}

/// A digest of `key`, to name its cache files by (one per endpoint, one per work_dir).
pub(crate) fn digest(key: &impl std::hash::Hash) -> String {
    use std::hash::Hasher;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Opens the file `name` in the cache directory `dir` (see [`CacheDir`]) for writing under a
/// lock. `None` where either cannot be had or trusted: the caller then does without the cache.
pub(crate) fn open_cache_file(dir: &Path, name: &str) -> Option<std::fs::File> {
    CacheDir::open(dir)?.open_file(name)
}

/// The owner the cache directory must have: root, whose launches alone write it.
const ROOT: u32 = 0;

/// A cache directory that can be trusted: reached without following a link, owned by root, and
/// closed to group and others (nobody else may plant, swap or read an answer). Its files are
/// opened relative to its descriptor, never through a link, never blocking.
pub(crate) struct CacheDir {
    dir: OwnedFd,
    path: PathBuf,
}

impl CacheDir {
    /// Opens the cache directory `path`, made (0700, as its missing parents) if missing. `None`
    /// where it cannot be had, or cannot be trusted: then the log says once why and what to fix.
    pub(crate) fn open(path: &Path) -> Option<CacheDir> {
        CacheDir::open_owned_by(path, ROOT)
    }

    /// [`CacheDir::open`], trusting a directory of `owner`'s.
    fn open_owned_by(path: &Path, owner: u32) -> Option<CacheDir> {
        let dir = match open_or_make(path) {
            Ok(dir) => dir,
            Err(PathError::Symlink(at)) => {
                refuse(path, &format!("{} is a symbolic link", at.display()));
                return None;
            }
            Err(e) => {
                tracing::debug!(error = %e, "no cache directory: every launch asks the daemon");
                return None;
            }
        };
        if let Err(why) = trusted(&dir, owner) {
            refuse(path, &why);
            return None;
        }
        Some(CacheDir {
            dir,
            path: path.to_path_buf(),
        })
    }

    /// Opens (creates, 0600) the file `name` for writing under a lock.
    pub(crate) fn open_file(&self, name: &str) -> Option<std::fs::File> {
        let how = OpenFor::Append { mode: 0o600 };
        no_follow::open_file_in(&self.dir, name.as_ref(), &self.path.join(name), how)
            .ok()
            .flatten()
    }

    /// The content of the regular file `name`, if there is one of at most [`CAP`] bytes, with
    /// its metadata.
    fn read(&self, name: &str) -> Option<(Vec<u8>, std::fs::Metadata)> {
        no_follow::read_capped_in(&self.dir, name.as_ref(), &self.path.join(name), CAP)
            .ok()
            .flatten()
    }

    /// Replaces the file `name` with `content` atomically (temp file and rename, in the directory).
    fn replace(&self, name: &str, content: &[u8]) -> std::io::Result<()> {
        let path = self.path.join(name);
        StagedWrite::stage_in(self.dir.try_clone()?, &path, content)?.commit()?;
        Ok(())
    }
}

/// Opens the directory `path` without following a link, making it (0700) first where it is
/// missing: each missing directory is made in its parent, itself opened without following a link.
fn open_or_make(path: &Path) -> Result<OwnedFd, PathError> {
    match no_follow::open_dir(path) {
        Err(PathError::Missing(_)) => {}
        opened => return opened,
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return no_follow::open_dir(path);
    };
    let parent_dir = open_or_make(parent)?;
    match nix::sys::stat::mkdirat(&parent_dir, name, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => no_follow::open_dir(path),
        Err(e) => Err(PathError::Io(path.to_path_buf(), e.into())),
    }
}

/// Whether the open directory `dir` is `owner`'s alone; else why not.
fn trusted(dir: &OwnedFd, owner: u32) -> Result<(), String> {
    let st = nix::sys::stat::fstat(dir).map_err(|e| format!("cannot stat it: {e}"))?;
    if st.st_uid != owner {
        return Err(format!("it is owned by uid {}, not root", st.st_uid));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "its mode {mode:04o} lets group or others read or write it"
        ));
    }
    Ok(())
}

/// Says, once in this process, why the cache directory `path` is not used, and what to fix.
fn refuse(path: &Path, why: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| {
        tracing::warn!(
            path = %path.display(),
            reason = why,
            "not using the cache directory shared by launches, which must be root's alone: every launch asks the \
             daemon itself and sweeps; remove the directory (the next launch makes it anew, root's, mode 0700), or \
             make it a real directory with chown root:root and chmod 0700"
        )
    });
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The answer in the file `name` of `cache`, if it is root's own regular file, of `instance`,
/// and given within [`FRESH_FOR`] before `now`.
fn fresh(cache: &CacheDir, name: &str, instance: &str, now: u64) -> Option<HostFacts> {
    let (bytes, meta) = cache.read(name)?;
    if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o022 != 0 {
        return None;
    }
    let answer: Answer = serde_json::from_slice(&bytes).ok()?;
    let age = now.checked_sub(answer.at)?;
    (answer.instance == instance && age < FRESH_FOR.as_secs()).then_some(HostFacts {
        live_restore: answer.live_restore,
        cgroup_driver: answer.cgroup_driver,
        cgroup_version: answer.cgroup_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache directory made here, of this test's user (root's in production).
    fn own_cache(dir: &Path) -> CacheDir {
        CacheDir::open_owned_by(&dir.join("cache"), nix::unistd::geteuid().as_raw()).unwrap()
    }

    #[test]
    fn an_answer_stands_for_its_daemon_instance_and_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let cache = own_cache(dir.path());
        let answer = Answer {
            instance: "5:42".into(),
            at: 1000,
            live_restore: true,
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: "1".into(),
        };
        let json = serde_json::to_vec(&answer).unwrap();
        cache.replace("daemon.json", &json).unwrap();
        let facts = fresh(&cache, "daemon.json", "5:42", 1030).unwrap();
        assert!(facts.live_restore);
        assert_eq!(facts.cgroup_driver, "cgroupfs");
        assert_eq!(
            fresh(&cache, "daemon.json", "5:43", 1030),
            None,
            "a restarted daemon"
        );
        assert_eq!(fresh(&cache, "daemon.json", "5:42", 1060), None, "stale");
        assert_eq!(
            fresh(&cache, "daemon.json", "5:42", 999),
            None,
            "from the future"
        );
        assert_eq!(fresh(&cache, "none", "5:42", 1030), None);
        cache.replace("daemon.json", b"{").unwrap();
        assert_eq!(
            fresh(&cache, "daemon.json", "5:42", 1030),
            None,
            "unreadable"
        );
        let path = cache.path.join("daemon.json");
        std::fs::write(&path, &json).unwrap();
        std::os::unix::fs::symlink(&path, cache.path.join("link.json")).unwrap();
        assert_eq!(
            fresh(&cache, "link.json", "5:42", 1030),
            None,
            "never through a link"
        );
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(
            fresh(&cache, "daemon.json", "5:42", 1030),
            None,
            "writable by others"
        );
    }

    #[test]
    fn a_missing_cache_directory_is_made_roots_alone() {
        let dir = tempfile::tempdir().unwrap();
        let cache = own_cache(dir.path());
        let mode = std::fs::metadata(&cache.path).unwrap().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(cache.open_file("x.lock").is_some());
        let lock = std::fs::symlink_metadata(cache.path.join("x.lock")).unwrap();
        assert!(lock.is_file());
        assert_eq!(lock.mode() & 0o777, 0o600);
    }

    /// A cache directory of another user, open to others, or a link (to a directory that would
    /// pass) is not used: nothing is read or written there.
    #[test]
    fn an_untrusted_cache_directory_is_not_used_and_nothing_is_written_there() {
        use std::os::unix::fs::PermissionsExt;
        let me = nix::unistd::geteuid().as_raw();
        let dir = tempfile::tempdir().unwrap();
        let others = dir.path().join("others");
        std::fs::create_dir(&others).unwrap();
        std::fs::set_permissions(&others, std::fs::Permissions::from_mode(0o700)).unwrap();
        // Another user's: given away where this test may (as root), else this test's own, which
        // is another user's than the one trusted below.
        let trusted_owner = match me {
            ROOT => {
                nix::unistd::chown(&others, Some(nix::unistd::Uid::from_raw(12345)), None).unwrap();
                ROOT
            }
            _ => me + 1,
        };
        let open = dir.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let readable = dir.path().join("readable");
        std::fs::create_dir(&readable).unwrap();
        std::fs::set_permissions(&readable, std::fs::Permissions::from_mode(0o750)).unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        for (cache, target) in [
            (&others, &others),
            (&open, &open),
            (&readable, &readable),
            (&link, &real),
        ] {
            let owner = if cache == &others { trusted_owner } else { me };
            assert!(
                CacheDir::open_owned_by(cache, owner).is_none(),
                "{}",
                cache.display()
            );
            assert!(open_cache_file(cache, "x.lock").is_none());
            assert_eq!(
                std::fs::read_dir(target).unwrap().count(),
                0,
                "{}",
                cache.display()
            );
        }
        assert!(
            CacheDir::open(&real).is_some() == (me == ROOT),
            "only root's directory is trusted"
        );
    }

    #[test]
    fn each_endpoint_has_its_own_answer() {
        let a = DockerEndpoint::parse("unix:///var/run/docker.sock").unwrap();
        let b = DockerEndpoint::parse("unix:///run/other.sock").unwrap();
        assert_ne!(cache_name(&a), cache_name(&b));
        assert_eq!(
            instance(&DockerEndpoint::parse("tcp://127.0.0.1:2375").unwrap()),
            None
        );
    }
}
