//! Where a sibling comes from and what it shares with the host: its image, the host paths behind
//! the agent's work_dir and the run's sandbox, the Docker socket (for the executors that need it),
//! the shim binary that becomes its init, and whether the daemon may remove it by itself. One
//! resolver for the relay and for `doctor`, so `doctor` cannot pass where the relay would decide
//! otherwise.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::agent_container::AgentContainer;
use crate::config::Settings;
use crate::engine::bugs::engine_version;
use crate::engine::DaemonFacts;
use crate::mesos::executor::ExecutorKind;

/// Where executors look for the daemon unless told otherwise (`mesos-docker-executor
/// --docker_socket`); a sibling given the socket gets it there.
pub(crate) const SIBLING_DOCKER_SOCKET: &str = crate::config::DOCKER_DEFAULT_SOCKET;

/// Where the docker executor's sibling has the directory of the daemon's socket: a directory, not
/// the socket file, so that the socket a restarted daemon makes anew is there too.
pub(crate) const SOCKET_DIR: &str = "/run/mesos-executor-shim/docker";

/// Where a host file that is the shim is bound, read-only, into the sibling to be its init.
pub const INIT_MOUNT: &str = "/run/mesos-executor-shim/init";

/// Why part of the placement cannot be decided, and what the operator changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlacementError {
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.problem, self.fix)
    }
}

impl std::error::Error for PlacementError {}

/// Where the sibling's init, the shim binary, comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum InitBinary {
    /// The shim is part of the agent container's image (baked): the sibling runs that image and
    /// finds it at the same path.
    InImage(PathBuf),
    /// The shim is a host file (bind-mounted into the agent container, or run on the host):
    /// bound read-only into the sibling at [`INIT_MOUNT`].
    HostFile(PathBuf),
}

impl InitBinary {
    pub(crate) fn path_in_sibling(&self) -> &Path {
        match self {
            InitBinary::InImage(path) => path,
            InitBinary::HostFile(_) => Path::new(INIT_MOUNT),
        }
    }
}

/// Whether the daemon may remove an exited sibling by itself (`AutoRemove`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AutoRemove {
    Safe,
    /// A restart of this daemon would kill and remove an auto-remove container: live-restore on
    /// an Engine before 24.0.8 (moby/moby#46308, fixed by moby/moby#46857). The shim removes its
    /// sibling itself after the exit; the next launch, or `gc`, where the shim is gone.
    Unsafe(String),
}

/// The first Engine that restores auto-remove containers without killing them.
const AUTO_REMOVE_FIXED_IN: (u32, u32, u32) = (24, 0, 8);

/// Whether [`auto_remove`] needs to know if live-restore is on, which only the costly
/// `GET /info` tells: not from 24.0.8 on, where auto-remove is always safe.
pub(crate) fn auto_remove_needs_live_restore(facts: &DaemonFacts) -> bool {
    !matches!(engine_version(&facts.version), Some(v) if v >= AUTO_REMOVE_FIXED_IN)
}

/// Decides [`AutoRemove`] from the daemon's version and whether it runs with live-restore (read
/// only where [`auto_remove_needs_live_restore`]). A version that cannot be read counts as an
/// old one.
pub(crate) fn auto_remove(facts: &DaemonFacts, live_restore: bool) -> AutoRemove {
    if !auto_remove_needs_live_restore(facts) || !live_restore {
        return AutoRemove::Safe;
    }
    AutoRemove::Unsafe(format!(
        "Docker {} with live-restore kills and removes auto-remove containers when it restarts \
         (moby/moby#46308, fixed in 24.0.8)",
        facts.version
    ))
}

/// What the docker executor's sibling gets of the socket at `host` (its host path): the host
/// directory that holds it, mounted at [`SOCKET_DIR`], and the socket's path there, which its
/// `--docker_socket` then names.
pub(crate) fn socket_directory(host: &Path) -> Result<(PathBuf, PathBuf), PlacementError> {
    match (host.parent(), host.file_name()) {
        (Some(dir), Some(name)) if dir.is_absolute() => {
            Ok((dir.to_path_buf(), Path::new(SOCKET_DIR).join(name)))
        }
        _ => Err(PlacementError {
            problem: format!(
                "the Docker socket's host path {} has no directory to give the docker executor",
                host.display()
            ),
            fix: "name a socket in a directory as \"docker_host\" (unix:///run/docker-api/docker.sock)"
                .into(),
        }),
    }
}

/// Whether a sibling of `kind` gets the Docker socket: the docker executor runs its task through
/// it; a command executor's tasks never need it, and whoever reaches it is root on the host, so
/// only where the operator says so.
pub(crate) fn gets_docker_socket(kind: ExecutorKind, settings: &Settings) -> bool {
    match kind {
        ExecutorKind::Docker => true,
        ExecutorKind::Command => settings.command_executor_docker,
    }
}

/// Each part of the placement, decided on its own so that `doctor` can report each.
#[derive(Debug, Clone)]
pub(crate) struct Placement {
    /// The sibling's image: the configured one, else the agent container's own image ID.
    pub image: Result<String, PlacementError>,
    /// The host path behind the agent's work_dir.
    pub work_dir_host: Result<PathBuf, PlacementError>,
    /// The host path of the Docker socket (`None`: Docker is reached over TCP, no socket to share).
    pub docker_socket_host: Result<Option<PathBuf>, PlacementError>,
    pub init: Result<InitBinary, PlacementError>,
    settings_work_dir_host: Option<PathBuf>,
    agent: Option<AgentContainer>,
    work_dir: PathBuf,
}

/// The placement once every part is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Resolved {
    pub image: String,
    pub work_dir_host: PathBuf,
    pub docker_socket_host: Option<PathBuf>,
    pub init: InitBinary,
}

impl Placement {
    /// Decides the placement from the settings, the agent container the shim runs in (`None`:
    /// it runs on the host, where paths are host paths), the agent's work_dir and the shim's own
    /// binary (`/proc/self/exe`).
    pub(crate) fn resolve(
        settings: &Settings,
        agent: Option<&AgentContainer>,
        work_dir: &Path,
        own_binary: &Path,
    ) -> Placement {
        let image = match (&settings.image, agent) {
            (Some(image), _) => Ok(image.clone()),
            (None, Some(agent)) => Ok(agent.image.clone()),
            (None, None) => Err(PlacementError {
                problem: "no executor image is configured, and the shim does not run in a Docker container \
                          whose image it could use"
                    .into(),
                fix: "set \"image\" in the configuration file".into(),
            }),
        };
        let docker_socket_host = match (settings.docker_host.socket(), agent) {
            (None, _) => Ok(None),
            (Some(socket), None) => Ok(Some(socket.to_path_buf())),
            (Some(socket), Some(agent)) => agent.host_path_for(socket).map(Some).ok_or_else(|| {
                PlacementError {
                    problem: format!(
                        "the Docker socket {} is not mounted from the host into the agent container, so a \
                         sibling cannot be given it",
                        socket.display()
                    ),
                    fix: "start the agent container with -v /var/run/docker.sock:/var/run/docker.sock".into(),
                }
            }),
        };
        let init = match agent.map(|a| a.host_path_for(own_binary)) {
            None => Ok(InitBinary::HostFile(own_binary.to_path_buf())),
            Some(Some(host)) => Ok(InitBinary::HostFile(host)),
            Some(None) if settings.image.is_none() => Ok(InitBinary::InImage(own_binary.to_path_buf())),
            Some(None) => Err(PlacementError {
                problem: format!(
                    "the shim {} is part of the agent container's image, and \"image\" names another image \
                     for the siblings, where it may not be",
                    own_binary.display()
                ),
                fix: "bind-mount the shim into the agent container from a host file (-v <host file>:<path>:ro), \
                      or remove \"image\" from the configuration file"
                    .into(),
            }),
        };
        let mut placement = Placement {
            image,
            work_dir_host: Ok(PathBuf::new()),
            docker_socket_host,
            init,
            settings_work_dir_host: settings.work_dir_host.clone(),
            agent: agent.cloned(),
            work_dir: work_dir.to_path_buf(),
        };
        placement.work_dir_host = placement.host_path(work_dir);
        placement
    }

    /// The host path behind `path`, which lies under the agent's work_dir: through the configured
    /// `work_dir_host`, else the agent container's mounts, else (on the host) itself.
    pub(crate) fn host_path(&self, path: &Path) -> Result<PathBuf, PlacementError> {
        if let Some(host) = &self.settings_work_dir_host {
            let rest = path.strip_prefix(&self.work_dir).unwrap_or(Path::new(""));
            return Ok(if rest.as_os_str().is_empty() {
                host.clone()
            } else {
                host.join(rest)
            });
        }
        let Some(agent) = &self.agent else {
            return Ok(path.to_path_buf());
        };
        agent.host_path_for(path).ok_or_else(|| PlacementError {
            problem: format!(
                "the agent's work_dir {} is not mounted from the host into the agent container, so a \
                 sibling cannot share {}",
                self.work_dir.display(),
                path.display()
            ),
            fix: format!(
                "start the agent container with -v {0}:{0}, or set \"work_dir_host\" to its host path",
                self.work_dir.display()
            ),
        })
    }

    /// Every part, or the first that cannot be decided.
    pub(crate) fn complete(self) -> Result<Resolved, PlacementError> {
        Ok(Resolved {
            image: self.image?,
            work_dir_host: self.work_dir_host?,
            docker_socket_host: self.docker_socket_host?,
            init: self.init?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent_container::HostMount;
    use crate::config::DockerEndpoint;

    fn agent(mounts: &[(&str, &str)]) -> AgentContainer {
        AgentContainer {
            id: "a".repeat(64),
            image: "sha256:abc".into(),
            image_name: Some("mesos/agent:1".into()),
            mounts: mounts
                .iter()
                .map(|(s, d)| HostMount {
                    source: s.into(),
                    destination: d.into(),
                })
                .collect(),
            pid_mode: Some("host".into()),
        }
    }

    const WORK_DIR: &str = "/var/lib/mesos";
    const SHIM: &str = "/usr/libexec/mesos/mesos-executor";

    fn resolve(settings: &Settings, agent: Option<&AgentContainer>) -> Placement {
        Placement::resolve(settings, agent, Path::new(WORK_DIR), Path::new(SHIM))
    }

    #[test]
    fn in_an_agent_container_everything_comes_from_its_own_description() {
        let a = agent(&[
            ("/srv/mesos", "/var/lib/mesos"),
            ("/disk2/slaves", "/var/lib/mesos/slaves"),
            ("/run/docker.sock", "/var/run/docker.sock"),
            ("/opt/shim-1.2", SHIM),
        ]);
        let p = resolve(&Settings::default(), Some(&a));
        assert_eq!(
            p.host_path(Path::new("/var/lib/mesos/slaves/S/x")),
            Ok("/disk2/slaves/S/x".into()),
            "the deepest mount decides"
        );
        assert_eq!(
            p.complete().unwrap(),
            Resolved {
                image: "sha256:abc".into(),
                work_dir_host: "/srv/mesos".into(),
                docker_socket_host: Some("/run/docker.sock".into()),
                init: InitBinary::HostFile("/opt/shim-1.2".into()),
            }
        );
    }

    #[test]
    fn a_baked_shim_is_the_init_where_the_sibling_runs_the_agents_image() {
        let a = agent(&[("/srv/mesos", "/var/lib/mesos")]);
        let p = resolve(&Settings::default(), Some(&a));
        assert_eq!(p.init, Ok(InitBinary::InImage(SHIM.into())));
        assert_eq!(p.init.unwrap().path_in_sibling(), Path::new(SHIM));
        let elsewhere = Settings {
            image: Some("other:1".into()),
            ..Settings::default()
        };
        let e = resolve(&elsewhere, Some(&a)).init.unwrap_err();
        assert!(e.fix.contains("bind-mount the shim"), "{e}");
        let on_host = resolve(&elsewhere, None);
        assert_eq!(
            on_host.init.unwrap().path_in_sibling(),
            Path::new(INIT_MOUNT)
        );
    }

    #[test]
    fn each_part_that_cannot_be_decided_says_what_to_change() {
        let p = resolve(&Settings::default(), Some(&agent(&[])));
        assert!(p.image.is_ok());
        let e = p.work_dir_host.clone().unwrap_err();
        assert!(e.fix.contains("-v /var/lib/mesos:/var/lib/mesos"), "{e}");
        let e = p.docker_socket_host.clone().unwrap_err();
        assert!(e.fix.contains("/var/run/docker.sock"), "{e}");
        assert!(p.complete().is_err());
        let on_host = resolve(&Settings::default(), None);
        assert!(on_host.image.unwrap_err().fix.contains("\"image\""));
    }

    #[test]
    fn the_operators_settings_win_and_tcp_shares_no_socket() {
        let settings = Settings {
            image: Some("mine:1".into()),
            work_dir_host: Some("/disk2/mesos".into()),
            docker_host: DockerEndpoint::Tcp("127.0.0.1:2375".into()),
            ..Settings::default()
        };
        let p = resolve(&settings, None);
        assert_eq!(
            p.host_path(Path::new("/var/lib/mesos/slaves/S")),
            Ok("/disk2/mesos/slaves/S".into())
        );
        assert_eq!(
            p.complete().unwrap(),
            Resolved {
                image: "mine:1".into(),
                work_dir_host: "/disk2/mesos".into(),
                docker_socket_host: None,
                init: InitBinary::HostFile(SHIM.into()),
            }
        );
    }

    #[test]
    fn auto_remove_only_where_a_daemon_restart_spares_it() {
        let facts = |version: &str| DaemonFacts {
            version: version.into(),
        };
        assert_eq!(
            auto_remove(&facts("20.10.24+dfsg1"), false),
            AutoRemove::Safe
        );
        assert!(matches!(
            auto_remove(&facts("20.10.24+dfsg1"), true),
            AutoRemove::Unsafe(why) if why.contains("moby/moby#46308")
        ));
        assert!(matches!(
            auto_remove(&facts("24.0.7"), true),
            AutoRemove::Unsafe(_)
        ));
        for fixed in ["24.0.8", "25.0", "28.2.2"] {
            assert!(!auto_remove_needs_live_restore(&facts(fixed)), "{fixed}");
            assert_eq!(auto_remove(&facts(fixed), true), AutoRemove::Safe);
        }
        assert!(auto_remove_needs_live_restore(&facts("20.10.24+dfsg1")));
        assert!(matches!(
            auto_remove(&facts("dev"), true),
            AutoRemove::Unsafe(_)
        ));
    }

    #[test]
    fn only_the_docker_executor_gets_the_socket_unless_the_operator_says_so() {
        let default = Settings::default();
        assert!(gets_docker_socket(ExecutorKind::Docker, &default));
        assert!(!gets_docker_socket(ExecutorKind::Command, &default));
        let opted_in = Settings {
            command_executor_docker: true,
            ..Settings::default()
        };
        assert!(gets_docker_socket(ExecutorKind::Command, &opted_in));
    }

    #[test]
    fn a_docker_executor_gets_the_directory_of_its_socket() {
        assert_eq!(
            socket_directory(Path::new("/run/docker-api/docker.sock")),
            Ok((
                PathBuf::from("/run/docker-api"),
                PathBuf::from("/run/mesos-executor-shim/docker/docker.sock")
            ))
        );
        assert!(socket_directory(Path::new("/")).is_err());
        assert!(socket_directory(Path::new("docker.sock")).is_err());
    }
}
