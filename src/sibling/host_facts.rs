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
//! might have touched: without following a link, capped, and only from root's own file.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::DockerEndpoint;
use crate::sibling::engine::{Engine, HostFacts};

/// Where the answers are kept, in the agent container.
pub const CACHE_DIR: &str = "/run/mesos-executor-shim/cache";
/// How long an answer stands: long enough that a burst asks once, short enough that a reload
/// that turns live-restore on reaches the next minute's launches.
pub const FRESH_FOR: Duration = Duration::from_secs(60);
/// How often a launch waiting for another's answer looks again.
const LOCK_POLL: Duration = Duration::from_millis(20);
const CAP: u64 = 4096;

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
pub async fn host_facts(engine: &Engine, patience: Duration) -> anyhow::Result<HostFacts> {
    let Some(instance) = instance(engine.endpoint()) else {
        return engine.host_facts().await;
    };
    let dir = Path::new(CACHE_DIR);
    let name = cache_name(engine.endpoint());
    let path = dir.join(format!("{name}.json"));
    if let Some(facts) = fresh(&path, &instance, now()) {
        return Ok(facts);
    }
    let Some(lock) = open_cache_file(dir, &format!("{name}.lock")) else {
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
                if let Some(facts) = fresh(&path, &instance, now()) {
                    return Ok(facts);
                }
            }
            // A lock that cannot be had, or not in time: ask without it.
            Err(_) => break None,
        }
    };
    if let Some(facts) = fresh(&path, &instance, now()) {
        return Ok(facts);
    }
    let facts = engine.host_facts().await?;
    let answer = Answer {
        instance,
        at: now(),
        live_restore: facts.live_restore,
        cgroup_driver: facts.cgroup_driver.clone(),
        cgroup_version: facts.cgroup_version.clone(),
    };
    let written = serde_json::to_vec(&answer)
        .map_err(std::io::Error::other)
        .and_then(|json| {
            crate::mesos::checkpoint::write_atomically(&path, &json).map_err(std::io::Error::from)
        });
    if let Err(e) = written {
        tracing::debug!(path = %path.display(), error = %e, "could not keep the daemon's host facts for other launches");
    }
    Ok(facts)
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
pub fn digest(key: &impl std::hash::Hash) -> String {
    use std::hash::Hasher;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    format!("{:016x}", hasher.finish())
}

/// Opens the file `name` in the cache directory `dir` (both made if missing, root's alone) for
/// writing under a lock: never through a link, never blocking. `None` where either cannot be
/// had: the caller then does without the cache.
pub fn open_cache_file(dir: &Path, name: &str) -> Option<std::fs::File> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .ok()?;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(dir.join(name))
        .ok()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The answer at `path`, if it is root's own regular file, of `instance`, and given within
/// [`FRESH_FOR`] before `now`.
fn fresh(path: &Path, instance: &str, now: u64) -> Option<HostFacts> {
    let (bytes, meta) = crate::no_follow::read_capped(path, CAP).ok()??;
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

    #[test]
    fn an_answer_stands_for_its_daemon_instance_and_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        let answer = Answer {
            instance: "5:42".into(),
            at: 1000,
            live_restore: true,
            cgroup_driver: "cgroupfs".into(),
            cgroup_version: "1".into(),
        };
        std::fs::write(&path, serde_json::to_vec(&answer).unwrap()).unwrap();
        let facts = fresh(&path, "5:42", 1030).unwrap();
        assert!(facts.live_restore);
        assert_eq!(facts.cgroup_driver, "cgroupfs");
        assert_eq!(fresh(&path, "5:43", 1030), None, "a restarted daemon");
        assert_eq!(fresh(&path, "5:42", 1060), None, "stale");
        assert_eq!(fresh(&path, "5:42", 999), None, "from the future");
        assert_eq!(fresh(&dir.path().join("none"), "5:42", 1030), None);
        std::fs::write(&path, "{").unwrap();
        assert_eq!(fresh(&path, "5:42", 1030), None, "unreadable");
        let link = dir.path().join("link.json");
        std::fs::write(&path, serde_json::to_vec(&answer).unwrap()).unwrap();
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(fresh(&link, "5:42", 1030), None, "never through a link");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(fresh(&path, "5:42", 1030), None, "writable by others");
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
