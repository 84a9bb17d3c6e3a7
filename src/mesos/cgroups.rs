//! The Mesos containerizer's cgroups, as its linux launcher lays them out (cgroups v1).
//!
//! With `--launcher=linux` (the default for root on Linux, and required by the cgroups isolators)
//! a Mesos container is the cgroup `<cgroups_root>/<CID>` in each controller: the isolators set
//! the framework's cpu and memory limits there, and destroying the container freezes and kills
//! everything inside it, nested cgroups included, then waits for forked.pid to die. The launcher
//! moves the process it forks (here: the shim) into that cgroup before it execs.
//!
//! A sibling left in Docker's own cgroup escapes both. Placed under the container's cgroup
//! (Docker's `CgroupParent`, honoured as a path by the cgroupfs driver on cgroups v1), the
//! executor and everything it starts sit in `<cgroups_root>/<CID>/<docker id>` in every
//! controller: limited by the container's limits, reached by its destroy, before and after an
//! agent restart (the cgroups live in the host's kernel).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where cgroups v1 hierarchies are mounted, on the host and in an agent container that mounts
/// the host's.
pub(crate) const V1_MOUNT: &str = "/sys/fs/cgroup";

/// Where a sibling's cgroups go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CgroupPlacement {
    /// Under the Mesos container's cgroup: `parent` is its path, as Docker's `CgroupParent`.
    UnderMesosContainer { parent: String },
    /// Docker's own placement, and why.
    DockerDefault(DockerPlacementReason),
}

/// Why a sibling keeps Docker's placement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DockerPlacementReason {
    /// The shim is in no Mesos container's cgroup: the posix launcher (whose destroy kills the
    /// process tree of forked.pid, which reaches the sibling), or no Mesos containerizer at all.
    NoMesosCgroup,
    /// The host runs cgroups v2, where released Mesos makes no container cgroups (and unreleased
    /// Mesos would take a foreign child cgroup for a nested container).
    CgroupsV2,
    /// Docker's cgroup driver is not cgroupfs: the systemd driver takes only `*.slice` parents.
    Driver(String),
    /// The operator turned it off (`mesos_cgroups: false`).
    Disabled,
}

impl fmt::Display for DockerPlacementReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerPlacementReason::NoMesosCgroup => write!(
                f,
                "the shim runs in no Mesos container cgroup (posix launcher): a destroy by the live agent \
                 kills the shim and the sibling's init ends the executor; after an agent restart the \
                 destroy kills the process tree of forked.pid, the sibling's"
            ),
            DockerPlacementReason::CgroupsV2 => write!(
                f,
                "the host runs cgroups v2, where Mesos makes no container cgroups to join"
            ),
            DockerPlacementReason::Driver(driver) => write!(
                f,
                "Docker's cgroup driver is {driver}, which cannot place a container under a Mesos cgroup \
                 (only cgroupfs can)"
            ),
            DockerPlacementReason::Disabled => write!(f, "mesos_cgroups is false in the configuration"),
        }
    }
}

/// What it means for the framework's limits and for the container's destroy that a sibling keeps
/// Docker's placement while its executor was launched into a Mesos container's cgroup.
pub(crate) const DEFAULT_PLACEMENT_MEANS: &str =
    "the Mesos container's cpu and memory limits do not apply to the \
     executor, and its destroy reaches the executor only through the shim's death or forked.pid";

/// The hierarchies under `mount` in which `parent` does not exist. Docker's runtime makes the
/// sibling's cgroup `<parent>/<id>` in every hierarchy, creating `parent` where the launcher did
/// not (pids, blkio, devices...), and removes only `<id>` again: these are the cgroups nothing
/// else would ever remove.
pub(crate) fn hierarchies_without(mount: &Path, parent: &str) -> Vec<PathBuf> {
    let relative = parent.trim_start_matches('/');
    let Ok(hierarchies) = std::fs::read_dir(mount) else {
        return Vec::new();
    };
    let mut missing: Vec<PathBuf> = hierarchies
        .flatten()
        .map(|h| h.path().join(relative))
        .filter(|p| !p.exists())
        .collect();
    missing.sort();
    missing
}

/// Removes the cgroups in `dirs` once they are empty (rmdir removes nothing else), waiting up to
/// `patience` while the runtime removes the sibling's own cgroup below them. Only the container's
/// own `<root>/<CID>` is ever named here, never the root other containers share.
pub(crate) async fn remove_when_empty(dirs: &[PathBuf], patience: Duration) {
    let deadline = tokio::time::Instant::now() + patience;
    let mut left: Vec<&PathBuf> = dirs.iter().collect();
    while !left.is_empty() {
        // Busy: the sibling's own cgroup (or a process) is still below it; worth another look.
        // Anything else (gone already, a read-only view) will not change by waiting.
        left.retain(|dir| match std::fs::remove_dir(dir) {
            Ok(()) => false,
            Err(e) => matches!(
                e.raw_os_error(),
                Some(nix::libc::EBUSY | nix::libc::ENOTEMPTY)
            ),
        });
        if left.is_empty() || tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if !left.is_empty() {
        tracing::warn!(cgroups = ?left, "empty cgroups the sibling's runtime made are still busy; remove them with rmdir");
    }
}

/// Whether a parent's memory limit holds the cgroups below it: `memory.use_hierarchy` at the root
/// of the memory hierarchy under `mount` (1 on current kernels). `None`: not readable here.
pub(crate) fn memory_limits_hold_below(mount: &Path) -> Option<bool> {
    let flag = std::fs::read_to_string(mount.join("memory/memory.use_hierarchy")).ok()?;
    Some(flag.trim() != "0")
}

/// What a sibling under a Mesos container's cgroup misses when `memory.use_hierarchy` is 0.
pub(crate) const NO_MEMORY_HIERARCHY_MEANS: &str =
    "memory.use_hierarchy is 0: the Mesos container's memory limit does not hold the executor \
     below it (its destroy and cpu limits still do)";

/// Whether `/proc/<pid>/cgroup` describes cgroups v1 hierarchies (lines `N:controllers:path`
/// with controllers), as opposed to the unified v2 hierarchy alone (`0::path`).
pub(crate) fn is_cgroups_v1(proc_cgroup: &str) -> bool {
    proc_cgroup
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .any(|controllers| !controllers.is_empty())
}

/// The path of a v1 controller's cgroup in `/proc/<pid>/cgroup`.
pub(crate) fn v1_path<'a>(proc_cgroup: &'a str, controller: &str) -> Option<&'a str> {
    proc_cgroup.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        controllers
            .split(',')
            .any(|c| c == controller)
            .then_some(path)
    })
}

/// The cgroup of the Mesos container `container_id` that this process runs in: its freezer cgroup
/// (where the linux launcher puts what it forks) when that ends in the container ID. Any
/// `--cgroups_root` works, nested ones too.
pub(crate) fn mesos_container_cgroup(proc_cgroup: &str, container_id: &str) -> Option<String> {
    let path = v1_path(proc_cgroup, "freezer")?;
    let last = path.rsplit('/').next()?;
    (last == container_id && path.len() > container_id.len() + 1).then(|| path.to_string())
}

/// What keeps this host from placing any sibling under a Mesos container's cgroup, if anything:
/// the part of the decision that does not depend on the launch, which `doctor` reports. Read
/// from this process's `/proc/self/cgroup` and Docker's cgroup driver, as the relay reads them.
pub(crate) fn host_obstacle(
    proc_cgroup: &str,
    docker_driver: &str,
    enabled: bool,
) -> Option<DockerPlacementReason> {
    if !is_cgroups_v1(proc_cgroup) {
        Some(DockerPlacementReason::CgroupsV2)
    } else if !enabled {
        Some(DockerPlacementReason::Disabled)
    } else if docker_driver != "cgroupfs" {
        Some(DockerPlacementReason::Driver(docker_driver.to_string()))
    } else {
        None
    }
}

/// Whether [`decide`] needs Docker's cgroup driver: only where the shim sits in a Mesos
/// container's cgroup on cgroups v1 and the operator allows the placement. Only `GET /info`
/// tells the driver, so a launch asks it only then.
pub(crate) fn needs_docker_driver(proc_cgroup: &str, container_id: &str, enabled: bool) -> bool {
    enabled
        && is_cgroups_v1(proc_cgroup)
        && mesos_container_cgroup(proc_cgroup, container_id).is_some()
}

/// Decides the placement from this process's `/proc/self/cgroup`, the run's container ID,
/// Docker's cgroup driver and whether the operator allows it.
pub(crate) fn decide(
    proc_cgroup: &str,
    container_id: &str,
    docker_driver: &str,
    enabled: bool,
) -> CgroupPlacement {
    if !is_cgroups_v1(proc_cgroup) {
        return CgroupPlacement::DockerDefault(DockerPlacementReason::CgroupsV2);
    }
    let Some(parent) = mesos_container_cgroup(proc_cgroup, container_id) else {
        return CgroupPlacement::DockerDefault(DockerPlacementReason::NoMesosCgroup);
    };
    match host_obstacle(proc_cgroup, docker_driver, enabled) {
        Some(why) => CgroupPlacement::DockerDefault(why),
        None => CgroupPlacement::UnderMesosContainer { parent },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "4f5c1a7e-8d2b-4c3f-9a1e-0b6d7c8e9f10";

    fn linux_launcher(root: &str) -> String {
        format!(
            "12:pids:/docker/abc\n11:freezer:/{root}/{CID}\n10:memory:/{root}/{CID}\n\
             9:cpu,cpuacct:/{root}/{CID}\n8:blkio:/docker/abc\n1:name=systemd:/docker/abc\n0::/docker/abc\n"
        )
    }

    #[test]
    fn the_driver_is_asked_for_only_where_the_decision_needs_it() {
        let proc = linux_launcher("mesos");
        assert!(needs_docker_driver(&proc, CID, true));
        assert!(!needs_docker_driver(&proc, CID, false));
        assert!(!needs_docker_driver(&proc, "another", true));
        assert!(!needs_docker_driver("0::/docker/abc\n", CID, true));
        // Where it is not asked for, any driver gives the same decision.
        for (own, id) in [(proc.as_str(), "another"), ("0::/docker/abc\n", CID)] {
            assert_eq!(decide(own, id, "", true), decide(own, id, "cgroupfs", true));
        }
    }

    #[test]
    fn the_linux_launchers_cgroup_is_found_under_any_root() {
        let proc = linux_launcher("mesos");
        assert!(is_cgroups_v1(&proc));
        assert_eq!(v1_path(&proc, "cpu"), Some(&*format!("/mesos/{CID}")));
        assert_eq!(v1_path(&proc, "cpuacct"), Some(&*format!("/mesos/{CID}")));
        assert_eq!(
            decide(&proc, CID, "cgroupfs", true),
            CgroupPlacement::UnderMesosContainer {
                parent: format!("/mesos/{CID}")
            }
        );
        let nested = linux_launcher("agents/a1/mesos");
        assert_eq!(
            mesos_container_cgroup(&nested, CID).as_deref(),
            Some(&*format!("/agents/a1/mesos/{CID}"))
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn only_the_cgroups_docker_makes_are_named_and_removed_when_empty() {
        let mount = tempfile::tempdir().unwrap();
        for h in ["freezer", "memory", "pids", "blkio"] {
            std::fs::create_dir(mount.path().join(h)).unwrap();
        }
        for h in ["freezer", "memory"] {
            std::fs::create_dir_all(mount.path().join(h).join("mesos").join(CID)).unwrap();
        }
        let parent = format!("/mesos/{CID}");
        let missing = hierarchies_without(mount.path(), &parent);
        assert_eq!(
            missing,
            vec![
                mount.path().join("blkio/mesos").join(CID),
                mount.path().join("pids/mesos").join(CID)
            ]
        );
        // Docker makes them, with the sibling's own cgroup below one of them for a while.
        for dir in &missing {
            std::fs::create_dir_all(dir.join("sibling")).unwrap();
        }
        std::fs::remove_dir(missing[0].join("sibling")).unwrap();
        remove_when_empty(&missing, Duration::from_millis(300)).await;
        assert!(!missing[0].exists(), "an empty one is removed");
        assert!(missing[1].exists(), "a busy one is left");
        assert!(
            mount.path().join("pids/mesos").exists(),
            "the shared root stays"
        );
        assert!(
            mount.path().join("memory/mesos").join(CID).exists(),
            "the launcher's stay"
        );
    }

    #[test]
    fn elsewhere_docker_keeps_its_placement_and_says_why() {
        let posix = "11:freezer:/docker/abc\n10:memory:/docker/abc\n0::/docker/abc\n";
        assert_eq!(
            decide(posix, CID, "cgroupfs", true),
            CgroupPlacement::DockerDefault(DockerPlacementReason::NoMesosCgroup)
        );
        assert_eq!(
            decide("0::/system.slice/x.scope\n", CID, "systemd", true),
            CgroupPlacement::DockerDefault(DockerPlacementReason::CgroupsV2)
        );
        let proc = linux_launcher("mesos");
        assert_eq!(
            decide(&proc, CID, "systemd", true),
            CgroupPlacement::DockerDefault(DockerPlacementReason::Driver("systemd".into()))
        );
        assert_eq!(
            decide(&proc, CID, "cgroupfs", false),
            CgroupPlacement::DockerDefault(DockerPlacementReason::Disabled)
        );
        // Another container's cgroup, or the container ID as the whole path, is no Mesos container.
        assert_eq!(
            mesos_container_cgroup(&linux_launcher("mesos"), "other"),
            None
        );
        assert_eq!(
            mesos_container_cgroup(&format!("11:freezer:/{CID}\n"), CID),
            None
        );
        for (why, says) in [
            (DockerPlacementReason::NoMesosCgroup, "posix launcher"),
            (DockerPlacementReason::CgroupsV2, "cgroups v2"),
            (
                DockerPlacementReason::Driver("systemd".into()),
                "driver is systemd",
            ),
            (DockerPlacementReason::Disabled, "mesos_cgroups is false"),
        ] {
            assert!(why.to_string().contains(says), "{why}");
        }
        assert_eq!(
            host_obstacle(&proc, "cgroupfs", true),
            None,
            "doctor and the relay read the same host"
        );
        assert_eq!(
            host_obstacle("0::/x\n", "cgroupfs", true),
            Some(DockerPlacementReason::CgroupsV2)
        );
    }

    #[test]
    fn the_memory_hierarchy_is_read_at_the_root_of_the_memory_controller() {
        let mount = tempfile::tempdir().unwrap();
        assert_eq!(memory_limits_hold_below(mount.path()), None);
        std::fs::create_dir(mount.path().join("memory")).unwrap();
        let flag = mount.path().join("memory/memory.use_hierarchy");
        std::fs::write(&flag, "1\n").unwrap();
        assert_eq!(memory_limits_hold_below(mount.path()), Some(true));
        std::fs::write(&flag, "0\n").unwrap();
        assert_eq!(memory_limits_hold_below(mount.path()), Some(false));
    }
}
