//! The agent container the shim (or an operator command) runs in, as Docker describes it: its
//! image, its bind mounts (how paths inside it map to host paths, both ways) and its PID
//! namespace. Found from `/proc` ([`crate::proc::own_container_id`]), described by one inspect.

use std::path::{Path, PathBuf};

use crate::engine::Engine;
use crate::proc::PidCheck;

/// A bind mount of the agent container: `source` on the host, `destination` inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostMount {
    pub source: PathBuf,
    pub destination: PathBuf,
}

/// The host path behind `path` as seen in the container: the longest mount destination that
/// contains it, translated. `None` when `path` is not on any bind mount (it lives in the
/// container's own filesystem, which a sibling cannot see).
pub(crate) fn host_path_for(mounts: &[HostMount], path: &Path) -> Option<PathBuf> {
    translate(mounts.iter().map(|m| (&m.destination, &m.source)), path)
}

/// The path inside the container of host path `path`: the reverse of [`host_path_for`].
pub(crate) fn container_path_for(mounts: &[HostMount], path: &Path) -> Option<PathBuf> {
    translate(mounts.iter().map(|m| (&m.source, &m.destination)), path)
}

/// `path` under the deepest `from` that holds it, moved to its `to`.
fn translate<'a>(
    pairs: impl Iterator<Item = (&'a PathBuf, &'a PathBuf)>,
    path: &Path,
) -> Option<PathBuf> {
    pairs
        .filter(|(from, _)| path.starts_with(from))
        .max_by_key(|(from, _)| from.components().count())
        .map(|(from, to)| {
            let rest = path.strip_prefix(from).expect("filtered on starts_with");
            if rest.as_os_str().is_empty() {
                to.clone()
            } else {
                to.join(rest)
            }
        })
}

/// Whether a container shares the host's PID namespace, which the agent needs to follow a
/// checkpointed host pid. The one judgement of it, for the relay and `doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PidNamespace {
    /// `--pid=host`.
    Host,
    /// A namespace of its own: pids seen there are not host pids.
    Private,
    /// Another container's namespace (`container:<id>`), which may or may not be the host's:
    /// each launch confirms its sibling's pid, and refuses one it cannot see.
    Unknown(String),
}

/// The agent container the shim runs in.
#[derive(Debug, Clone)]
pub(crate) struct AgentContainer {
    pub id: String,
    /// The image ID (`sha256:...`): the sibling runs exactly the agent's image, even if the tag moved.
    pub image: String,
    pub image_name: Option<String>,
    pub mounts: Vec<HostMount>,
    pub pid_mode: Option<String>,
}

impl AgentContainer {
    /// `Ok(None)` when this process is not in a container of the daemon it talks to (on the host).
    pub(crate) async fn discover(engine: &Engine) -> anyhow::Result<Option<AgentContainer>> {
        let Some(id) = crate::proc::own_container_id()? else {
            return Ok(None);
        };
        let Some(info) = engine.inspect_container(&id).await? else {
            tracing::warn!(
                container = id,
                endpoint = %engine.endpoint(),
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

    pub(crate) fn host_path_for(&self, path: &Path) -> Option<PathBuf> {
        host_path_for(&self.mounts, path)
    }

    /// The bind mount whose destination is exactly `path`: a single file or directory mounted
    /// there (as a socket file often is).
    pub(crate) fn mount_at(&self, path: &Path) -> Option<&HostMount> {
        self.mounts.iter().find(|m| m.destination == path)
    }

    pub(crate) fn pid_namespace(&self) -> PidNamespace {
        match self.pid_mode.as_deref().unwrap_or("") {
            "host" => PidNamespace::Host,
            mode if mode.starts_with("container:") => PidNamespace::Unknown(mode.to_string()),
            _ => PidNamespace::Private,
        }
    }
}

/// Whether host pids are visible from where this process runs, given the container it runs in
/// (`None`: on the host): `None` when that cannot be told.
pub(crate) fn host_pids_visible(agent: Option<&AgentContainer>) -> Option<bool> {
    match agent.map(AgentContainer::pid_namespace) {
        None | Some(PidNamespace::Host) => Some(true),
        Some(PidNamespace::Private) => Some(false),
        Some(PidNamespace::Unknown(_)) => None,
    }
}

/// Whether `ps` and `gc` see the host's pids, where they run, as they must before they take a
/// pid for a dead process (a shim's, forked.pid's, a temp file's writer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostPids {
    /// The pid the daemon reports for a running container is that container's process here.
    Seen,
    /// Not shown (why, for the operator): every pid is then taken as alive.
    Unproven(String),
}

impl HostPids {
    pub(crate) fn seen(&self) -> bool {
        *self == HostPids::Seen
    }
}

/// The one judgement of [`HostPids`] for the operator's commands, from `checks`: for running
/// containers, the pid the daemon reports (a host pid) checked against this process's `/proc`
/// ([`crate::proc::check_pid_belongs_to`]). Neither "on the host" nor `--pid=host` is taken on
/// trust: a process in a pod or under `unshare --pid` finds no container of its own and would
/// take itself for the host. Seen when one pid is its container's process here and none is
/// another process; a pid not there at all may be a container that exited meanwhile. Where no
/// container runs to check against, seen only from the kernel's initial PID namespace
/// (`initial`, see [`crate::proc::in_initial_pid_namespace`]), the host's. `agent`: the
/// container this process runs in, where the daemon knows it; a PID namespace of its own
/// settles it.
pub(crate) fn judge_host_pids(
    agent: Option<&AgentContainer>,
    checks: &[(String, PidCheck)],
    initial: bool,
) -> HostPids {
    if agent.map(AgentContainer::pid_namespace) == Some(PidNamespace::Private) {
        return HostPids::Unproven(
            "this process's container has a PID namespace of its own".into(),
        );
    }
    if let Some((container, PidCheck::Foreign(_))) = checks
        .iter()
        .find(|(_, c)| matches!(c, PidCheck::Foreign(_)))
    {
        return HostPids::Unproven(format!(
            "the daemon's pid of container {container} is another process here"
        ));
    }
    if checks.iter().any(|(_, c)| *c == PidCheck::Confirmed) {
        return HostPids::Seen;
    }
    match checks.first() {
        Some((container, _)) => HostPids::Unproven(format!(
            "the daemon's pid of container {container} is not seen here"
        )),
        None if initial => HostPids::Seen,
        None => HostPids::Unproven(
            "no container runs to check against, and this is not the host's PID namespace".into(),
        ),
    }
}

/// Where a host path is, seen from where this process runs: the host path itself on the host,
/// else through the container's mounts (`None`: not visible from here).
pub(crate) fn local_path_for(agent: Option<&AgentContainer>, host_path: &Path) -> Option<PathBuf> {
    match agent {
        None => Some(host_path.to_path_buf()),
        Some(agent) => container_path_for(&agent.mounts, host_path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts() -> Vec<HostMount> {
        vec![
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
        ]
    }

    #[test]
    fn translates_paths_through_the_deepest_mount_both_ways() {
        let mounts = mounts();
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
        assert_eq!(
            container_path_for(&mounts, Path::new("/srv/mesos/meta/x")),
            Some("/var/lib/mesos/meta/x".into())
        );
        assert_eq!(container_path_for(&mounts, Path::new("/elsewhere")), None);
    }

    #[test]
    fn a_host_path_is_found_where_this_process_sees_it() {
        let agent = AgentContainer {
            id: "a".repeat(64),
            image: "sha256:abc".into(),
            image_name: None,
            mounts: mounts(),
            pid_mode: Some("host".into()),
        };
        let meta = Path::new("/srv/mesos/meta/slaves/S/x");
        assert_eq!(local_path_for(None, meta), Some(meta.to_path_buf()));
        assert_eq!(
            local_path_for(Some(&agent), meta),
            Some("/var/lib/mesos/meta/slaves/S/x".into())
        );
        assert_eq!(
            agent
                .mount_at(Path::new("/var/run/docker.sock"))
                .map(|m| &m.source),
            Some(&PathBuf::from("/run/docker.sock"))
        );
    }

    /// An agent container with this `--pid` mode, and nothing else of note.
    fn with_pid_mode(mode: &str) -> AgentContainer {
        AgentContainer {
            id: String::new(),
            image: String::new(),
            image_name: None,
            mounts: Vec::new(),
            pid_mode: Some(mode.into()),
        }
    }

    #[test]
    fn the_pid_namespace_is_judged_once() {
        let with = with_pid_mode;
        assert_eq!(with("host").pid_namespace(), PidNamespace::Host);
        assert_eq!(with("").pid_namespace(), PidNamespace::Private);
        assert_eq!(
            with("container:abc").pid_namespace(),
            PidNamespace::Unknown("container:abc".into())
        );
        assert_eq!(host_pids_visible(None), Some(true));
        assert_eq!(host_pids_visible(Some(&with("private"))), Some(false));
        assert_eq!(host_pids_visible(Some(&with("container:abc"))), None);
    }

    /// Host pids are seen only when a pid the daemon reports is its container's process here;
    /// nothing is taken on trust, not even `--pid=host`.
    #[test]
    fn host_pids_are_seen_only_when_a_containers_pid_is_its_process_here() {
        let with = with_pid_mode;
        let check = |c: PidCheck| vec![("c1".to_string(), c)];
        let foreign = PidCheck::Foreign("0::/init.scope".into());
        for agent in [None, Some(with("host")), Some(with("container:abc"))] {
            let agent = agent.as_ref();
            for initial in [true, false] {
                let judged =
                    |checks: &[(String, PidCheck)]| judge_host_pids(agent, checks, initial);
                assert_eq!(judged(&check(PidCheck::Confirmed)), HostPids::Seen);
                assert!(!judged(&check(PidCheck::NotVisible)).seen());
                assert!(!judged(&check(foreign.clone())).seen());
            }
            assert!(
                !judge_host_pids(agent, &[], false).seen(),
                "no witness, no proof"
            );
            assert!(
                judge_host_pids(agent, &[], true).seen(),
                "nothing runs, in the host's namespace"
            );
        }
        let mixed = vec![
            ("gone".to_string(), PidCheck::NotVisible),
            ("c1".to_string(), PidCheck::Confirmed),
        ];
        assert!(
            judge_host_pids(None, &mixed, false).seen(),
            "a container that exited meanwhile"
        );
        let contradicted = vec![
            ("c1".to_string(), PidCheck::Confirmed),
            ("c2".to_string(), foreign),
        ];
        assert!(!judge_host_pids(None, &contradicted, true).seen());
        assert!(!judge_host_pids(Some(&with("")), &check(PidCheck::Confirmed), true).seen());
        assert!(!judge_host_pids(Some(&with("")), &[], true).seen());
    }
}
