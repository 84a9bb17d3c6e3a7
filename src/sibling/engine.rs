//! The Docker Engine API calls the shim makes, through bollard, with the shim's error handling:
//! 404s become `None`, and every error names the endpoint or image and what to do.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, ContainerInspectResponse, ContainerSummary};
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    EventsOptionsBuilder, KillContainerOptionsBuilder, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;

use crate::error::{fail, Failure, ShimError};

/// Per-request limit until the daemon answers with headers (streams then run unbounded).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a pull of a missing image may take before the launch is failed.
const PULL_TIMEOUT: Duration = Duration::from_secs(300);

pub struct Engine {
    docker: Docker,
    endpoint: String,
}

pub fn is_not_found(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

impl Engine {
    /// Connects and pings, retrying for at most `patience` (the daemon may be restarting), then
    /// gives up with an error naming the endpoint.
    pub async fn connect(endpoint: &str, patience: Duration) -> Result<Engine, ShimError> {
        let deadline = tokio::time::Instant::now() + patience;
        let mut delay = Duration::from_millis(100);
        loop {
            // The client is made inside the loop: bollard checks that a unix socket exists, and a
            // restarting daemon removes its socket for a moment.
            let error = match Docker::connect_with_host(endpoint) {
                Err(DockerError::SocketNotFoundError(_)) => "no socket there".to_string(),
                Err(e) => {
                    return Err(fail(
                        Failure::Config,
                        format!("cannot use Docker endpoint {endpoint}: {e}; set DOCKER_HOST to unix:///path or tcp://host:port"),
                    ))
                }
                Ok(docker) => {
                    let docker = docker.with_timeout(REQUEST_TIMEOUT);
                    let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                    match tokio::time::timeout(remaining.max(Duration::from_millis(200)), docker.ping()).await {
                        Ok(Ok(_)) => return Ok(Engine { docker, endpoint: endpoint.to_string() }),
                        Ok(Err(e)) => e.to_string(),
                        Err(_) => "no answer".to_string(),
                    }
                }
            };
            if tokio::time::Instant::now() + delay >= deadline {
                return Err(fail(
                    Failure::Unavailable,
                    format!(
                        "the Docker daemon at {endpoint} did not answer within {}s ({error}); start it, or mount its \
                         socket into the agent container (-v /var/run/docker.sock:/var/run/docker.sock), or set \
                         DOCKER_HOST / docker_host to where it listens",
                        patience.as_secs()
                    ),
                ));
            }
            tracing::warn!(endpoint, error, "Docker daemon not answering yet; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    pub fn api(&self) -> &Docker {
        &self.docker
    }

    pub async fn inspect_container(
        &self,
        name: &str,
    ) -> anyhow::Result<Option<ContainerInspectResponse>> {
        match self.docker.inspect_container(name, None).await {
            Ok(c) => Ok(Some(c)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => {
                Err(e).with_context(|| format!("inspecting container {name} on {}", self.endpoint))
            }
        }
    }

    /// Makes sure `image` is present: pulled once when missing, then a clear error.
    pub async fn ensure_image(&self, image: &str) -> Result<(), ShimError> {
        match self.docker.inspect_image(image).await {
            Ok(_) => return Ok(()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(fail(
                    Failure::Unavailable,
                    format!("inspecting image {image} on {}: {e}", self.endpoint),
                ))
            }
        }
        tracing::info!(image, "executor image not present; pulling it once");
        let options = CreateImageOptionsBuilder::default()
            .from_image(image)
            .build();
        let pull = async {
            let mut stream = self.docker.create_image(Some(options), None, None);
            while let Some(item) = stream.next().await {
                item?;
            }
            Ok::<_, DockerError>(())
        };
        let outcome = match tokio::time::timeout(PULL_TIMEOUT, pull).await {
            Ok(Ok(())) => match self.docker.inspect_image(image).await {
                Ok(_) => return Ok(()),
                Err(e) => e.to_string(),
            },
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no progress within {}s", PULL_TIMEOUT.as_secs()),
        };
        Err(fail(
            Failure::Unavailable,
            format!(
                "the executor image {image} is not on the Docker host and pulling it failed ({outcome}); \
                 load or build it on this host, or set EXECUTOR_SHIM_IMAGE / image to an image that is there"
            ),
        ))
    }

    pub async fn create(&self, name: &str, body: ContainerCreateBody) -> anyhow::Result<String> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .with_context(|| format!("creating container {name}"))?;
        for warning in &created.warnings {
            tracing::warn!(container = name, warning, "Docker warned on create");
        }
        Ok(created.id)
    }

    pub async fn start(&self, id: &str) -> anyhow::Result<()> {
        self.docker
            .start_container(id, None)
            .await
            .with_context(|| format!("starting container {id}"))
    }

    pub async fn kill(&self, id: &str, signal: &str) -> Result<(), DockerError> {
        let options = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        self.docker.kill_container(id, Some(options)).await
    }

    /// Removes a container whatever its state; one that is already gone is not an error.
    pub async fn remove(&self, id: &str) -> anyhow::Result<()> {
        let options = RemoveContainerOptionsBuilder::default().force(true).build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 409: an auto-remove is already under way.
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(e).with_context(|| format!("removing container {id}")),
        }
    }

    /// Waits for the container to stop and returns its exit code. A non-zero exit is not an
    /// error (bollard reports it as one).
    pub async fn wait_exit(&self, id: &str) -> Result<i64, DockerError> {
        let mut stream = self.docker.wait_container(id, None);
        match stream.next().await {
            Some(Ok(response)) => Ok(response.status_code),
            Some(Err(DockerError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(e),
            None => Err(DockerError::IOError {
                err: std::io::Error::other("wait ended without a status"),
            }),
        }
    }

    /// The exit code of a container that is already gone (auto-removed before the wait reached
    /// the daemon), from the daemon's event log.
    pub async fn exit_code_from_events(&self, id: &str, since_unix: i64) -> Option<i64> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs()
            + 1;
        let filters: HashMap<String, Vec<String>> = [
            ("container".to_string(), vec![id.to_string()]),
            ("event".to_string(), vec!["die".to_string()]),
        ]
        .into();
        let options = EventsOptionsBuilder::default()
            .since(&since_unix.saturating_sub(1).to_string())
            .until(&now.to_string())
            .filters(&filters)
            .build();
        let mut events = self.docker.events(Some(options));
        while let Some(Ok(event)) = events.next().await {
            let code = event
                .actor
                .and_then(|a| a.attributes)
                .and_then(|a| a.get("exitCode").and_then(|c| c.parse().ok()));
            if code.is_some() {
                return code;
            }
        }
        None
    }

    /// The mode bits of `paths` inside `image` (`None`: absent), read from a container that is
    /// created for the purpose, never started, and removed again.
    pub async fn stat_in_image(
        &self,
        image: &str,
        paths: &[&str],
    ) -> anyhow::Result<Vec<Option<u32>>> {
        let name = format!("executor-shim-probe-{}", std::process::id());
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            entrypoint: Some(vec!["/nonexistent".into()]),
            cmd: Some(Vec::new()),
            ..Default::default()
        };
        let id = self.create(&name, body).await?;
        let mut modes = Vec::new();
        for path in paths {
            let options = ContainerArchiveInfoOptionsBuilder::default()
                .path(path)
                .build();
            modes.push(
                match self
                    .docker
                    .get_container_archive_info(&id, Some(options))
                    .await
                {
                    Ok(stat) => Some(stat.file_mode),
                    Err(e) if is_not_found(&e) => None,
                    Err(e) => {
                        let _ = self.remove(&id).await;
                        return Err(e)
                            .with_context(|| format!("looking for {path} in image {image}"));
                    }
                },
            );
        }
        self.remove(&id).await?;
        Ok(modes)
    }

    /// Containers carrying `label` (key or key=value), running or not.
    pub async fn list_labelled(&self, label: &str) -> anyhow::Result<Vec<ContainerSummary>> {
        let filters: HashMap<String, Vec<String>> =
            [("label".to_string(), vec![label.to_string()])].into();
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        self.docker
            .list_containers(Some(options))
            .await
            .with_context(|| format!("listing containers on {}", self.endpoint))
    }
}
