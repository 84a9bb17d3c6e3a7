//! The Docker Engine API calls the shim makes, through bollard (and, for the two it cannot make
//! well, straight over the [transport](super::transport)), with the shim's error handling.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::Context;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerState, ContainerSummary,
};
use bollard::query_parameters::{
    ContainerArchiveInfoOptionsBuilder, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use nix::sys::signal::Signal;

use crate::config::DockerEndpoint;
use crate::error::{fail, Failure, ShimError};

use super::transport::{unexpected, DaemonFacts, DaemonStream, PooledClient, REQUEST_TIMEOUT};

/// How long a removal under way (another's) is waited for.
const REMOVAL_PATIENCE: Duration = Duration::from_secs(30);
/// How long a pull of a missing image may take before the launch is failed.
const PULL_TIMEOUT: Duration = Duration::from_secs(300);

/// How long to wait for the daemon: `absent`, while nothing accepts a connection (no socket, a
/// refused one: the daemon is down or restarting), before the launch fails fast; `busy`, once a
/// connection is accepted, for the answer of a daemon that is there but loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Patience {
    pub absent: Duration,
    pub busy: Duration,
    /// Say in the log, once, that the daemon does not answer yet and is retried: a launch's
    /// sandbox log then tells why it waited. An operator command says nothing until it gives
    /// up, in one line ([`NoDaemon`]); every retry is at debug level either way.
    pub say_retrying: bool,
}

/// Nothing answered at the endpoint for as long as the patience allowed: no daemon is there
/// (no socket, a refused connection), or it is restarting.
#[derive(Debug)]
pub(crate) struct NoDaemon {
    pub endpoint: DockerEndpoint,
    /// Why the last attempt failed (`no socket there`, `Connection refused`).
    pub why: String,
    pub waited: Duration,
}

impl std::fmt::Display for NoDaemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no Docker daemon answers at {} ({}; retried for {}s): {}",
            self.endpoint,
            self.why,
            self.waited.as_secs(),
            NoDaemon::FIX
        )
    }
}

impl std::error::Error for NoDaemon {}

impl NoDaemon {
    pub(crate) const FIX: &'static str = "start it, or mount its socket into the agent container (-v \
        /var/run/docker.sock:/var/run/docker.sock), or set \"docker_host\" in the configuration file \
        (DOCKER_HOST for the operator commands) to where it listens";
}

pub(crate) struct Engine {
    docker: Docker,
    /// The client under `docker`, for the one request the relay makes often enough to parse
    /// itself (see [`Engine::inspect_state`]), on the same pooled connection.
    client: PooledClient,
    endpoint: DockerEndpoint,
    facts: DaemonFacts,
}

fn is_not_found(e: &DockerError) -> bool {
    status_of(e) == Some(404)
}

fn status_of(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Which exit a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitFor {
    /// The next exit: for a container not started yet, registered before its start.
    NextExit,
    /// Now, if it is not running; else its exit: for a container adopted while it runs.
    NotRunning,
    /// Its removal: for a container whose removal is under way.
    Removed,
}

impl WaitFor {
    /// The Engine API's name for it.
    pub(crate) fn condition(self) -> &'static str {
        match self {
            WaitFor::NextExit => "next-exit",
            WaitFor::NotRunning => "not-running",
            WaitFor::Removed => "removed",
        }
    }
}

/// Why no exit code came from a wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WaitError {
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
pub(crate) type ExitWait = Pin<Box<dyn Future<Output = Result<i64, WaitError>>>>;

/// Why a create failed, where the relay does something about it.
#[derive(Debug)]
pub(crate) enum CreateError {
    /// The image is not on the Docker host: pull it, then create again.
    NoSuchImage,
    /// A container already has the name: adopt or replace it.
    NameInUse,
    Other(anyhow::Error),
}

impl Engine {
    pub(crate) async fn create(
        &self,
        name: &str,
        body: &ContainerCreateBody,
    ) -> Result<String, CreateError> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        let created = timed(
            "create",
            self.docker.create_container(Some(options), body.clone()),
        )
        .await
        .map_err(|e| match status_of(&e) {
            Some(404) => CreateError::NoSuchImage,
            Some(409) => CreateError::NameInUse,
            _ => CreateError::Other(
                anyhow::Error::new(e).context(format!("creating container {name}")),
            ),
        })?;
        for warning in &created.warnings {
            tracing::warn!(container = name, warning, "Docker warned on create");
        }
        Ok(created.id)
    }

    /// Returns once the daemon has registered the wait, so that nothing that happens to the
    /// container afterwards (start, exit, removal) can be missed.
    pub(crate) async fn wait(&self, id: &str, condition: WaitFor) -> Result<ExitWait, WaitError> {
        timed("wait", registered_wait(&self.endpoint, id, condition)).await
    }

    pub(crate) async fn start(&self, id: &str) -> anyhow::Result<()> {
        timed("start", self.docker.start_container(id, None))
            .await
            .with_context(|| format!("starting container {id}"))
    }

    pub(crate) async fn kill(&self, id: &str, signal: Signal) -> anyhow::Result<()> {
        let options = KillContainerOptionsBuilder::default()
            .signal(signal.as_str())
            .build();
        timed("kill", self.docker.kill_container(id, Some(options)))
            .await
            .with_context(|| format!("sending {} to container {id}", signal.as_str()))
    }
}

/// Runs one request, logging its round trip in monotonic nanoseconds at debug level.
pub(super) async fn timed<T>(request: &'static str, call: impl Future<Output = T>) -> T {
    let start_ns = crate::proc::monotonic_ns();
    let out = call.await;
    tracing::debug!(
        request,
        start_ns,
        end_ns = crate::proc::monotonic_ns(),
        "docker request"
    );
    out
}

/// `POST /containers/<id>/wait`, returning as soon as the response headers arrive: the daemon
/// sends them once it has registered the wait. bollard's wait yields only the final body, which
/// cannot tell a registered wait from one still in flight, so this one request goes through
/// hyper directly, on a connection of its own that closes with the wait.
async fn registered_wait(
    endpoint: &DockerEndpoint,
    id: &str,
    condition: WaitFor,
) -> Result<ExitWait, WaitError> {
    use http_body_util::{BodyExt, Empty};
    use hyper::body::Bytes;

    let lost = |what: &str, e: &dyn std::fmt::Display| {
        WaitError::Lost(format!(
            "waiting on container {id} at {endpoint}: {what}: {e}"
        ))
    };
    let (mut sender, connection) = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let stream = DaemonStream::connect(endpoint).await?;
        hyper::client::conn::http1::handshake(stream)
            .await
            .map_err(std::io::Error::other)
    })
    .await
    .map_err(|e| lost("connecting", &e))?
    .map_err(|e| lost("connecting", &e))?;
    // The connection is driven beside the response; it ends when the response has been read or
    // the wait is dropped.
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
    /// Connects and pings the daemon. While no connection can be made it retries for
    /// at most `patience.absent` (the daemon may be restarting), then gives up naming the
    /// endpoint; a daemon that accepts the connection is given `patience.busy` to answer, and
    /// one that does not is named as busy or hung, not as absent.
    pub(crate) async fn connect(
        endpoint: &DockerEndpoint,
        patience: Patience,
    ) -> Result<Engine, ShimError> {
        let client = PooledClient::new(endpoint);
        let docker = client.bollard(REQUEST_TIMEOUT.max(patience.busy)).map_err(|e| {
            fail(
                Failure::Config,
                format!("cannot use Docker endpoint {endpoint}: {e}; name unix:///path or tcp://host:port as \"docker_host\" in the configuration file"),
            )
        })?;
        let deadline = tokio::time::Instant::now() + patience.absent;
        let mut delay = Duration::from_millis(100);
        let mut say_retrying = patience.say_retrying;
        loop {
            // A failed connect returns at once (see `DaemonStream::connect`): only a daemon that
            // took the connection can use up the time given to a busy one.
            let error = match tokio::time::timeout(patience.busy, timed("ping", client.ping())).await {
                Ok(Ok(facts)) => {
                    return Ok(Engine { docker, client, endpoint: endpoint.clone(), facts });
                }
                Ok(Err(why)) => why,
                Err(_) => {
                    return Err(fail(
                        Failure::Unavailable,
                        format!(
                            "the Docker daemon at {endpoint} accepted a connection but did not answer within {}s: \
                             it is overloaded or hung (it is there: this is not a missing socket); see its log",
                            patience.busy.as_secs()
                        ),
                    ))
                }
            };
            if tokio::time::Instant::now() + delay >= deadline {
                let absent = NoDaemon {
                    endpoint: endpoint.clone(),
                    why: error,
                    waited: patience.absent,
                };
                return Err(ShimError {
                    failure: Failure::Unavailable,
                    error: absent.into(),
                });
            }
            if std::mem::take(&mut say_retrying) {
                tracing::warn!(%endpoint, error, for_s = patience.absent.as_secs(), "Docker daemon not answering yet; retrying");
            } else {
                tracing::debug!(%endpoint, error, "Docker daemon not answering yet; retrying");
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
        }
    }

    pub(crate) fn endpoint(&self) -> &DockerEndpoint {
        &self.endpoint
    }

    pub(crate) fn facts(&self) -> &DaemonFacts {
        &self.facts
    }

    pub(crate) fn api(&self) -> &Docker {
        &self.docker
    }

    pub(crate) async fn inspect_container(
        &self,
        name: &str,
    ) -> anyhow::Result<Option<ContainerInspectResponse>> {
        match timed("inspect", self.docker.inspect_container(name, None)).await {
            Ok(c) => Ok(Some(c)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => {
                Err(e).with_context(|| format!("inspecting container {name} on {}", self.endpoint))
            }
        }
    }

    /// The state of container `name` (`None`: no such container): what a launch asks of the
    /// sibling it started. The same request as [`Engine::inspect_container`], but only `State` is
    /// read out of the answer; bollard would build the whole model, which costs more than the
    /// request itself.
    pub(crate) async fn inspect_state(&self, name: &str) -> anyhow::Result<Option<ContainerState>> {
        #[derive(serde::Deserialize)]
        struct StateOnly {
            #[serde(rename = "State")]
            state: Option<ContainerState>,
        }
        // Unversioned, as bollard's own requests go out (the daemon answers in its own API).
        let asked = async {
            let (answer, body) = self
                .client
                .get(&format!("/containers/{name}/json"))
                .await
                .map_err(anyhow::Error::msg)?;
            if answer.status == hyper::StatusCode::NOT_FOUND {
                return Ok(None);
            }
            if !answer.status.is_success() {
                anyhow::bail!(unexpected(answer.status, &body));
            }
            Ok(serde_json::from_slice::<StateOnly>(&body)?.state)
        };
        timed("inspect", tokio::time::timeout(REQUEST_TIMEOUT, asked))
            .await
            .unwrap_or_else(|_| {
                Err(anyhow::anyhow!(
                    "no answer within {}s",
                    REQUEST_TIMEOUT.as_secs()
                ))
            })
            .with_context(|| format!("inspecting container {name} on {}", self.endpoint))
    }

    /// Pulls `image` once; then a clear error naming it and what to do.
    pub(crate) async fn pull(&self, image: &str) -> Result<(), ShimError> {
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
            Ok(Ok(())) => return Ok(()),
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

    /// Removes a container whatever its state, with its anonymous volumes (an image that declares
    /// `VOLUME` would otherwise leave one behind per launch, as AutoRemove does not); one that is
    /// already gone is not an error.
    pub(crate) async fn remove(&self, id: &str) -> anyhow::Result<()> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match timed("remove", self.docker.remove_container(id, Some(options))).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // 409: a removal (the daemon's auto-remove, or another's) is already under way:
            // done once that one is, so that what the caller removed is gone when it returns.
            Err(e) if status_of(&e) == Some(409) => {
                let removed = async {
                    match self.wait(id, WaitFor::Removed).await {
                        Ok(removed) => removed.await.map(drop).or_else(|e| match e {
                            WaitError::NotFound => Ok(()),
                            lost => Err(lost),
                        }),
                        Err(WaitError::NotFound) => Ok(()),
                        Err(lost) => Err(lost),
                    }
                };
                match tokio::time::timeout(REMOVAL_PATIENCE, removed).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(anyhow::anyhow!("removing container {id}: {e}")),
                    Err(_) => anyhow::bail!(
                        "container {id} is still being removed after {}s",
                        REMOVAL_PATIENCE.as_secs()
                    ),
                }
            }
            Err(e) => Err(e).with_context(|| format!("removing container {id}")),
        }
    }

    /// The mode bits of `paths` inside `image` (`None`: absent), read from a container that is
    /// created for the purpose, never started, and removed again.
    pub(crate) async fn stat_in_image(
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
        let id = match self.create(&name, &body).await {
            Ok(id) => id,
            Err(CreateError::NoSuchImage) => {
                anyhow::bail!("image {image} is not on the Docker host")
            }
            Err(CreateError::NameInUse) => {
                anyhow::bail!("a container named {name} is in the way; remove it")
            }
            Err(CreateError::Other(e)) => return Err(e),
        };
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

    /// Containers carrying every one of `labels` (key or key=value), in any of `states` (all
    /// states when empty).
    pub(crate) async fn list_labelled(
        &self,
        labels: &[String],
        states: &[&str],
    ) -> anyhow::Result<Vec<ContainerSummary>> {
        let mut filters: HashMap<String, Vec<String>> =
            [("label".to_string(), labels.to_vec())].into();
        if !states.is_empty() {
            filters.insert(
                "status".to_string(),
                states.iter().map(|s| s.to_string()).collect(),
            );
        }
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        timed("list", self.docker.list_containers(Some(options)))
            .await
            .with_context(|| format!("listing containers on {}", self.endpoint))
    }

    /// One running container of the daemon, any, and the pid the daemon reports for it: what
    /// `ps` and `gc` check their view of host pids against when no sibling of theirs runs.
    /// `None`: none runs (or it stopped between the two requests).
    pub(crate) async fn one_running_pid(&self) -> anyhow::Result<Option<(String, u32)>> {
        let filters: HashMap<String, Vec<String>> =
            [("status".to_string(), vec!["running".to_string()])].into();
        let options = ListContainersOptionsBuilder::default()
            .limit(1)
            .filters(&filters)
            .build();
        let listed = timed("list", self.docker.list_containers(Some(options)))
            .await
            .with_context(|| format!("listing containers on {}", self.endpoint))?;
        let Some(id) = listed.into_iter().find_map(|c| c.id) else {
            return Ok(None);
        };
        let pid = self.inspect_state(&id).await?.and_then(|s| s.pid);
        Ok(pid
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0)
            .map(|p| (id, p)))
    }
}
