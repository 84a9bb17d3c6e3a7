//! The Docker Engine API calls the shim makes, through bollard, with the shim's error handling:
//! 404s become `None`, and every error names the endpoint or image and what to do.
//!
//! [`SiblingEngine`] is what the relay's state machine asks of the engine; [`Engine`] is the
//! real one, and the relay's unit tests drive the state machine with a fake.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
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
use nix::sys::signal::Signal;

use crate::error::{fail, Failure, ShimError};
use crate::sibling::discover::{check_pid_belongs_to, PidCheck};

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

/// Which exit a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    /// The next exit: for a container not started yet, registered before its start.
    NextExit,
    /// Now, if it is not running; else its exit: for a container adopted while it runs.
    NotRunning,
}

impl WaitFor {
    /// The Engine API's name for it.
    pub fn condition(self) -> &'static str {
        match self {
            WaitFor::NextExit => "next-exit",
            WaitFor::NotRunning => "not-running",
        }
    }
}

/// Why no exit code came from a wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitError {
    /// The container is gone (removed before the wait reached the daemon).
    NotFound,
    /// The daemon or the connection went away; the executor may still run.
    Lost(String),
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitError::NotFound => write!(f, "no such container"),
            WaitError::Lost(e) => write!(f, "{e}"),
        }
    }
}

/// A wait the daemon has registered: resolves with the container's exit code.
pub type ExitWait = Pin<Box<dyn Future<Output = Result<i64, WaitError>>>>;

/// What the relay asks of the container engine about its sibling.
// The shim runs one thread: its futures need no `Send` bound, so plain `async fn` fits.
#[allow(async_fn_in_trait)]
pub trait SiblingEngine {
    async fn inspect(&self, name: &str) -> anyhow::Result<Option<ContainerInspectResponse>>;
    async fn create(&self, name: &str, body: ContainerCreateBody) -> anyhow::Result<String>;
    /// Returns once the daemon has registered the wait, so that nothing that happens to the
    /// container afterwards (start, exit, removal) can be missed.
    async fn wait(&self, id: &str, condition: WaitFor) -> Result<ExitWait, WaitError>;
    async fn start(&self, id: &str) -> anyhow::Result<()>;
    async fn kill(&self, id: &str, signal: Signal) -> anyhow::Result<()>;
    /// Removes a container whatever its state; one that is already gone is not an error.
    async fn remove(&self, id: &str) -> anyhow::Result<()>;
    /// The exit code of a container already gone, if the daemon still remembers it.
    async fn exit_code_from_events(&self, id: &str, since_unix: i64) -> Option<i64>;
    /// Whether host pid `pid` is visible here and is container `id`'s.
    fn pid_check(&self, pid: u32, id: &str) -> PidCheck;
}

impl SiblingEngine for Engine {
    async fn inspect(&self, name: &str) -> anyhow::Result<Option<ContainerInspectResponse>> {
        self.inspect_container(name).await
    }

    async fn create(&self, name: &str, body: ContainerCreateBody) -> anyhow::Result<String> {
        Engine::create(self, name, body).await
    }

    async fn wait(&self, id: &str, condition: WaitFor) -> Result<ExitWait, WaitError> {
        registered_wait(&self.endpoint, id, condition).await
    }

    async fn start(&self, id: &str) -> anyhow::Result<()> {
        Engine::start(self, id).await
    }

    async fn kill(&self, id: &str, signal: Signal) -> anyhow::Result<()> {
        Engine::kill(self, id, signal.as_str())
            .await
            .with_context(|| format!("sending {} to container {id}", signal.as_str()))
    }

    async fn remove(&self, id: &str) -> anyhow::Result<()> {
        Engine::remove(self, id).await
    }

    async fn exit_code_from_events(&self, id: &str, since_unix: i64) -> Option<i64> {
        Engine::exit_code_from_events(self, id, since_unix).await
    }

    fn pid_check(&self, pid: u32, id: &str) -> PidCheck {
        check_pid_belongs_to(pid, id)
    }
}

/// `POST /containers/<id>/wait`, returning as soon as the response headers arrive: the daemon
/// sends them once it has registered the wait. bollard's wait yields only the final body, which
/// cannot tell a registered wait from one still in flight, so this one request goes through
/// hyper directly, on the same kind of connection bollard makes.
async fn registered_wait(
    endpoint: &str,
    id: &str,
    condition: WaitFor,
) -> Result<ExitWait, WaitError> {
    use futures_util::FutureExt;
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;

    let lost = |what: &str, e: &dyn std::fmt::Display| {
        WaitError::Lost(format!(
            "waiting on container {id} at {endpoint}: {what}: {e}"
        ))
    };
    let (mut sender, connection) = tokio::time::timeout(REQUEST_TIMEOUT, async {
        if let Some(path) = endpoint.strip_prefix("unix://") {
            let stream = tokio::net::UnixStream::connect(path).await?;
            hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map(|(s, c)| (s, c.boxed()))
                .map_err(std::io::Error::other)
        } else {
            let address = endpoint
                .strip_prefix("tcp://")
                .or_else(|| endpoint.strip_prefix("http://"))
                .unwrap_or(endpoint)
                .trim_end_matches('/');
            let stream = tokio::net::TcpStream::connect(address).await?;
            hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map(|(s, c)| (s, c.boxed()))
                .map_err(std::io::Error::other)
        }
    })
    .await
    .map_err(|e| lost("connecting", &e))?
    .map_err(|e| lost("connecting", &e))?;
    // The connection is driven beside the response; it ends when the response has been read.
    tokio::spawn(connection);
    let request = hyper::Request::post(format!(
        "/containers/{id}/wait?condition={}",
        condition.condition()
    ))
    .header(hyper::header::HOST, "docker")
    .body(Empty::<Bytes>::new())
    .map_err(|e| lost("building the request", &e))?;
    let response = tokio::time::timeout(REQUEST_TIMEOUT, sender.send_request(request))
        .await
        .map_err(|e| lost("no answer", &e))?
        .map_err(|e| lost("sending", &e))?;
    let status = response.status();
    if status == hyper::StatusCode::NOT_FOUND {
        return Err(WaitError::NotFound);
    }
    if !status.is_success() {
        let body = response.into_body().collect().await.map(|b| b.to_bytes());
        let text = body
            .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            .unwrap_or_default();
        return Err(lost(&format!("status {status}"), &text));
    }
    let id = id.to_string();
    Ok(Box::pin(async move {
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| WaitError::Lost(format!("waiting on container {id}: {e}")))?
            .to_bytes();
        let exit: ContainerWaitBody = serde_json::from_slice(&body).map_err(|e| {
            WaitError::Lost(format!(
                "waiting on container {id}: unreadable answer {:?}: {e}",
                String::from_utf8_lossy(&body)
            ))
        })?;
        Ok(exit.status_code)
    }))
}

/// The body of a wait's answer (`{"StatusCode": 0, "Error": null}`).
#[derive(serde::Deserialize)]
struct ContainerWaitBody {
    #[serde(rename = "StatusCode")]
    status_code: i64,
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
                        format!("cannot use Docker endpoint {endpoint}: {e}; name unix:///path or tcp://host:port as \"docker_host\" in the configuration file"),
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
                         \"docker_host\" in the configuration file (DOCKER_HOST for the operator commands) to where it \
                         listens",
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
                 load or build it on this host, or set \"image\" in the configuration file to an image that is there"
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

    /// Docker's cgroup driver (`cgroupfs`, `systemd`) and cgroup version (`1`, `2`).
    pub async fn cgroup_setup(&self) -> anyhow::Result<(String, String)> {
        let info = self
            .docker
            .info()
            .await
            .with_context(|| format!("asking {} for its cgroup driver", self.endpoint))?;
        Ok((
            info.cgroup_driver
                .map(|d| d.to_string())
                .unwrap_or_default(),
            info.cgroup_version
                .map(|v| v.to_string())
                .unwrap_or_default(),
        ))
    }

    /// Containers carrying every one of `labels` (key or key=value), running or not.
    pub async fn list_labelled(&self, labels: &[String]) -> anyhow::Result<Vec<ContainerSummary>> {
        let filters: HashMap<String, Vec<String>> = [("label".to_string(), labels.to_vec())].into();
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
