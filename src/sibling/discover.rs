//! What the shim can learn about the agent container it runs in, and about a host pid.
//!
//! The agent container is found from the bind mounts Docker makes for every container
//! (`/etc/hostname`, `/etc/resolv.conf`, `/etc/hosts` come from `.../containers/<id>/`), which are
//! there even with host networking, where `HOSTNAME` is the host's name. The cgroup path is the
//! fallback.

use std::path::{Path, PathBuf};

use crate::sibling::spec::SIBLING_MARKER_MOUNT;

/// The ID of the container this process runs in, if any.
pub fn own_container_id() -> Option<String> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    container_id_in_mountinfo(&mountinfo).or_else(|| {
        container_id_in_cgroup(&std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default())
    })
}

fn is_container_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Finds `/containers/<64 hex>/{hostname,hosts,resolv.conf}` as the root of a mount.
pub fn container_id_in_mountinfo(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        // Field 4 is the root of the mount within its filesystem, field 5 the mount point.
        let mut fields = line.split_whitespace();
        let root = fields.nth(3)?;
        let target = fields.next()?;
        if !matches!(target, "/etc/hostname" | "/etc/hosts" | "/etc/resolv.conf") {
            return None;
        }
        let mut parts = root.rsplit('/');
        let _file = parts.next()?;
        let id = parts.next()?;
        (parts.next()? == "containers" && is_container_id(id)).then(|| id.to_string())
    })
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

/// `<pid>:<start time>` of a live process: names it unambiguously even after its pid is reused.
pub fn process_identity(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (start time) counts from the fields after the parenthesised command name.
    let start = stat.rsplit_once(')')?.1.split_whitespace().nth(19)?;
    Some(format!("{pid}:{start}"))
}

/// Whether the process named by a [`process_identity`] still runs: `None` when its pid is not
/// visible and nothing can be said (another PID namespace).
pub fn identity_alive(identity: &str, host_pids_visible: bool) -> Option<bool> {
    let pid: u32 = identity.split_once(':')?.0.parse().ok()?;
    match process_identity(pid) {
        Some(now) => Some(now == identity),
        None if host_pids_visible => Some(false),
        None => None,
    }
}

/// Whether host pid `pid` is known to be gone. Only where host pids are visible (on the host, or
/// in a container with `--pid=host`) can a missing pid mean a dead process; elsewhere every pid
/// of another namespace looks missing, and nothing is judged gone. The one rule for siblings'
/// shims and for the writers of checkpoint temp files.
pub fn process_gone(pid: u32, host_pids_visible: bool) -> bool {
    host_pids_visible
        && i32::try_from(pid).is_ok_and(|p| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None)
                == Err(nix::errno::Errno::ESRCH)
        })
}

/// Whether this process runs inside a sibling the shim made: the sibling carries a small
/// read-only tmpfs at [`SIBLING_MARKER_MOUNT`]. A mount belongs to the container the process
/// really runs in; no launch environment can forge it, so no task can make a relay skip the relay.
pub fn in_sibling() -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    has_mount_at(&mountinfo, SIBLING_MARKER_MOUNT)
}

fn has_mount_at(mountinfo: &str, target: &str) -> bool {
    mountinfo
        .lines()
        .any(|line| line.split_whitespace().nth(4) == Some(target))
}

/// A bind mount of the agent container: `source` on the host, `destination` inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMount {
    pub source: PathBuf,
    pub destination: PathBuf,
}

/// The host path behind `path` as seen in the container: the longest mount destination that
/// contains it, translated. `None` when `path` is not on any bind mount (it lives in the
/// container's own filesystem, which a sibling cannot see).
pub fn host_path_for(mounts: &[HostMount], path: &Path) -> Option<PathBuf> {
    mounts
        .iter()
        .filter(|m| path.starts_with(&m.destination))
        .max_by_key(|m| m.destination.components().count())
        .map(|m| {
            let rest = path
                .strip_prefix(&m.destination)
                .expect("filtered on starts_with");
            if rest.as_os_str().is_empty() {
                m.source.clone()
            } else {
                m.source.join(rest)
            }
        })
}

/// Whether host pid `pid` is visible here and belongs to container `container_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidCheck {
    Confirmed,
    /// No such pid in this PID namespace: the shim (and so the agent) is not in the host's.
    NotVisible,
    /// The pid exists but runs in another cgroup: it is not the sibling's.
    Foreign(String),
}

pub fn check_pid_belongs_to(pid: u32, container_id: &str) -> PidCheck {
    // A zombie still shows its cgroup, but it is an executor that has exited: never confirmed.
    let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| Some(stat.rsplit_once(')')?.1.trim_start().starts_with('Z')));
    if zombie != Some(false) {
        return PidCheck::NotVisible;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/cgroup")) {
        Err(_) => PidCheck::NotVisible,
        Ok(cgroup) if cgroup.contains(container_id) => PidCheck::Confirmed,
        Ok(cgroup) => PidCheck::Foreign(cgroup.lines().next().unwrap_or_default().to_string()),
    }
}

/// The agent container the shim runs in, as Docker describes it.
#[derive(Debug, Clone)]
pub struct AgentContainer {
    pub id: String,
    /// The image ID (`sha256:...`): the sibling runs exactly the agent's image, even if the tag moved.
    pub image: String,
    pub image_name: Option<String>,
    pub mounts: Vec<HostMount>,
    pub pid_mode: Option<String>,
}

impl AgentContainer {
    /// `Ok(None)` when the shim is not in a container of the daemon it talks to (run on the host).
    pub async fn discover(
        engine: &crate::sibling::engine::Engine,
    ) -> anyhow::Result<Option<AgentContainer>> {
        let Some(id) = own_container_id() else {
            return Ok(None);
        };
        let Some(info) = engine.inspect_container(&id).await? else {
            tracing::warn!(
                container = id,
                endpoint = engine.endpoint(),
                "the shim's own container is unknown to this Docker daemon"
            );
            return Ok(None);
        };
        let mounts = info
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| {
                Some(HostMount {
                    source: m.source?.into(),
                    destination: m.destination?.into(),
                })
            })
            .collect();
        Ok(Some(AgentContainer {
            id,
            image: info.image.unwrap_or_default(),
            image_name: info.config.and_then(|c| c.image),
            mounts,
            pid_mode: info.host_config.and_then(|h| h.pid_mode),
        }))
    }

    pub fn host_path_for(&self, path: &Path) -> Option<PathBuf> {
        host_path_for(&self.mounts, path)
    }

    /// Whether the agent container shares the host's PID namespace (`--pid=host`), which the
    /// agent needs to follow a checkpointed host pid: `None` when its PidMode is another
    /// container's, which may or may not be the host's.
    pub fn shares_host_pids(&self) -> Option<bool> {
        match self.pid_mode.as_deref().unwrap_or("") {
            "host" => Some(true),
            mode if mode.starts_with("container:") => None,
            _ => Some(false),
        }
    }
}

/// Whether host pids are visible from where this process runs, given the container it runs in
/// (`None`: on the host): `None` when that cannot be told.
pub fn host_pids_visible(agent: Option<&AgentContainer>) -> Option<bool> {
    agent.map_or(Some(true), AgentContainer::shares_host_pids)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "a6941e8119eb320b59faf759022b09c29a1ed00773c8ffd89aac98b8cd01b236";

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
    fn the_sibling_marker_is_a_mount_point_not_a_path_below_one() {
        let mountinfo =
            "87 67 0:46 / /run/mesos-executor-shim/sibling ro,nosuid - tmpfs tmpfs rw,size=4k\n";
        assert!(has_mount_at(mountinfo, SIBLING_MARKER_MOUNT));
        let agent =
            "69 50 0:60 / / rw - overlay overlay rw\n70 69 0:61 / /run rw - tmpfs tmpfs rw\n";
        assert!(!has_mount_at(agent, SIBLING_MARKER_MOUNT));
        assert!(!in_sibling(), "the test process runs in no sibling");
    }

    #[test]
    fn a_pid_is_judged_gone_only_where_host_pids_are_visible() {
        assert!(process_gone(4194305, true));
        assert!(!process_gone(4194305, false));
        assert!(!process_gone(std::process::id(), true));
        assert!(!process_gone(u32::MAX, true), "not a pid at all");
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
    fn translates_paths_through_the_deepest_mount() {
        let mounts = vec![
            HostMount {
                source: "/srv/mesos".into(),
                destination: "/var/lib/mesos".into(),
            },
            HostMount {
                source: "/disk2/slaves".into(),
                destination: "/var/lib/mesos/slaves".into(),
            },
            HostMount {
                source: "/run/docker.sock".into(),
                destination: "/var/run/docker.sock".into(),
            },
        ];
        assert_eq!(
            host_path_for(&mounts, Path::new("/var/lib/mesos")),
            Some("/srv/mesos".into())
        );
        assert_eq!(
            host_path_for(&mounts, Path::new("/var/lib/mesos/meta/x")),
            Some("/srv/mesos/meta/x".into())
        );
        assert_eq!(
            host_path_for(&mounts, Path::new("/var/lib/mesos/slaves/S")),
            Some("/disk2/slaves/S".into())
        );
        assert_eq!(
            host_path_for(&mounts, Path::new("/var/run/docker.sock")),
            Some("/run/docker.sock".into())
        );
        assert_eq!(host_path_for(&mounts, Path::new("/var/lib/mesosx")), None);
        assert_eq!(host_path_for(&mounts, Path::new("/tmp")), None);
    }

    #[test]
    fn a_process_identity_survives_only_as_long_as_the_process() {
        let me = process_identity(std::process::id()).unwrap();
        assert_eq!(identity_alive(&me, true), Some(true));
        let (pid, start) = me.split_once(':').unwrap();
        let reused = format!("{pid}:{}", start.parse::<u64>().unwrap() + 1);
        assert_eq!(
            identity_alive(&reused, true),
            Some(false),
            "same pid, other start: another process"
        );
        assert_eq!(identity_alive("4194305:1", true), Some(false));
        assert_eq!(identity_alive("4194305:1", false), None);
        assert_eq!(identity_alive("garbage", true), None);
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
}
