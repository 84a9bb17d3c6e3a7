//! Where a sibling comes from and what it shares with the host: its image, the host path of the
//! agent's work_dir, and the host path of the Docker socket. One resolver for the relay and for
//! `doctor`, so `doctor` cannot pass where the relay would decide otherwise.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::sibling::discover::AgentContainer;

/// Why part of the placement cannot be decided, and what the operator changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementError {
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.problem, self.fix)
    }
}

impl std::error::Error for PlacementError {}

/// Each part of the placement, decided on its own so that `doctor` can report each.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The sibling's image: the configured one, else the agent container's own image ID.
    pub image: Result<String, PlacementError>,
    /// The host path behind the agent's work_dir, bound into the sibling at the same path.
    pub work_dir_host: Result<PathBuf, PlacementError>,
    /// The host path of the Docker socket (`None`: Docker is reached over TCP, no socket to share).
    pub docker_socket_host: Result<Option<PathBuf>, PlacementError>,
}

/// The placement once every part is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub image: String,
    pub work_dir_host: PathBuf,
    pub docker_socket_host: Option<PathBuf>,
}

impl Placement {
    /// Decides the placement from the settings and the agent container the shim runs in
    /// (`None`: it runs on the host, where paths are host paths).
    pub fn resolve(
        settings: &Settings,
        agent: Option<&AgentContainer>,
        work_dir: &Path,
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
        let work_dir_host = match (&settings.work_dir_host, agent) {
            (Some(path), _) => Ok(path.clone()),
            (None, None) => Ok(work_dir.to_path_buf()),
            (None, Some(agent)) => agent.host_path_for(work_dir).ok_or_else(|| PlacementError {
                problem: format!(
                    "the agent's work_dir {} is not mounted from the host into the agent container, so a \
                     sibling cannot share it",
                    work_dir.display()
                ),
                fix: format!(
                    "start the agent container with -v {0}:{0}, or set \"work_dir_host\" to its host path",
                    work_dir.display()
                ),
            }),
        };
        let docker_socket_host = match settings.docker_host.strip_prefix("unix://") {
            None => Ok(None),
            Some(socket) => {
                let socket = Path::new(socket);
                match agent {
                    None => Ok(Some(socket.to_path_buf())),
                    Some(agent) => agent.host_path_for(socket).map(Some).ok_or_else(|| {
                        PlacementError {
                            problem: format!(
                                "the Docker socket {} is not mounted from the host into the agent container, so a \
                                 sibling cannot be given it",
                                socket.display()
                            ),
                            fix: "start the agent container with -v /var/run/docker.sock:/var/run/docker.sock"
                                .into(),
                        }
                    }),
                }
            }
        };
        Placement {
            image,
            work_dir_host,
            docker_socket_host,
        }
    }

    /// Every part, or the first that cannot be decided.
    pub fn complete(self) -> Result<Resolved, PlacementError> {
        Ok(Resolved {
            image: self.image?,
            work_dir_host: self.work_dir_host?,
            docker_socket_host: self.docker_socket_host?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sibling::discover::HostMount;

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

    #[test]
    fn in_an_agent_container_everything_comes_from_its_own_description() {
        let a = agent(&[
            ("/srv/mesos", "/var/lib/mesos"),
            ("/run/docker.sock", "/var/run/docker.sock"),
        ]);
        let p = Placement::resolve(&Settings::default(), Some(&a), Path::new(WORK_DIR));
        assert_eq!(
            p.complete().unwrap(),
            Resolved {
                image: "sha256:abc".into(),
                work_dir_host: "/srv/mesos".into(),
                docker_socket_host: Some("/run/docker.sock".into()),
            }
        );
    }

    #[test]
    fn each_part_that_cannot_be_decided_says_what_to_change() {
        let p = Placement::resolve(&Settings::default(), Some(&agent(&[])), Path::new(WORK_DIR));
        assert!(p.image.is_ok());
        let e = p.work_dir_host.clone().unwrap_err();
        assert!(e.fix.contains("-v /var/lib/mesos:/var/lib/mesos"), "{e}");
        let e = p.docker_socket_host.clone().unwrap_err();
        assert!(e.fix.contains("/var/run/docker.sock"), "{e}");
        assert!(p.complete().is_err());
        let on_host = Placement::resolve(&Settings::default(), None, Path::new(WORK_DIR));
        assert!(on_host.image.unwrap_err().fix.contains("\"image\""));
    }

    #[test]
    fn the_operators_settings_win_and_tcp_shares_no_socket() {
        let settings = Settings {
            image: Some("mine:1".into()),
            work_dir_host: Some("/disk2/mesos".into()),
            docker_host: "tcp://127.0.0.1:2375".into(),
            ..Settings::default()
        };
        let p = Placement::resolve(&settings, Some(&agent(&[])), Path::new(WORK_DIR));
        assert_eq!(
            p.complete().unwrap(),
            Resolved {
                image: "mine:1".into(),
                work_dir_host: "/disk2/mesos".into(),
                docker_socket_host: None,
            }
        );
    }
}
