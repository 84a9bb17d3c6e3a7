//! The connections to the Docker daemon: a stream over its unix socket or TCP, and the pool
//! that keeps one of them idle across a launch's requests, which bollard's clients and the
//! shim's own few requests share.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use bollard::errors::Error as DockerError;
use bollard::Docker;
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;

use crate::config::DockerEndpoint;

/// Per-request limit until the daemon answers with headers (streams then run unbounded). A daemon
/// that accepted the connection is there, only busy: a burst of a thousand launches queues their
/// starts for minutes. How long a launch may take is the agent's decision (its
/// `--executor_registration_timeout`, after which it destroys the launch and so the shim), not
/// the shim's; this bound only keeps a hung daemon from holding a shim whose agent is gone.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

/// What the daemon says of itself when it is connected to: the answer to `GET /_ping`, the
/// request that also tells that it answers. The daemon answers it from memory whatever its load;
/// `GET /version` would be no fit, as it asks containerd and runs `runc` and `docker-init` for
/// their versions on every call, which a burst of launches turns into a queue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DaemonFacts {
    /// The engine's version, such as `20.10.24+dfsg1`, from the `Server` header the daemon puts
    /// on every answer (`Docker/20.10.24+dfsg1 (linux)`); empty when it says none, which the
    /// decisions that need it take for an old engine.
    pub version: String,
}

/// The engine version in a `Server` header: `Docker/20.10.24+dfsg1 (linux)` → `20.10.24+dfsg1`.
fn version_in_server_header(server: &str) -> Option<&str> {
    server
        .strip_prefix("Docker/")?
        .split(char::is_whitespace)
        .next()
        .filter(|v| !v.is_empty())
}

/// A connection to the daemon, over its unix socket or TCP.
pub(super) enum DaemonStream {
    Unix(TokioIo<tokio::net::UnixStream>),
    Tcp(TokioIo<tokio::net::TcpStream>),
}

impl DaemonStream {
    /// Connects to `endpoint`. A unix connect never waits (a daemon that is away, or whose
    /// backlog is full, refuses at once); a TCP one is given 2 s, so that a host that drops the
    /// packets reads as a daemon that is away, not as one that is busy.
    pub(super) async fn connect(endpoint: &DockerEndpoint) -> std::io::Result<DaemonStream> {
        const TCP_CONNECT: Duration = Duration::from_secs(2);
        match endpoint {
            DockerEndpoint::Unix(path) => Ok(DaemonStream::Unix(TokioIo::new(
                tokio::net::UnixStream::connect(path).await?,
            ))),
            DockerEndpoint::Tcp(address) => {
                let stream = tokio::time::timeout(
                    TCP_CONNECT,
                    tokio::net::TcpStream::connect(address.as_str()),
                )
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "no connection within 2s")
                })??;
                Ok(DaemonStream::Tcp(TokioIo::new(stream)))
            }
        }
    }
}

impl hyper::rt::Read for DaemonStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            DaemonStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
            DaemonStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for DaemonStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            DaemonStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
            DaemonStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            DaemonStream::Unix(s) => Pin::new(s).poll_flush(cx),
            DaemonStream::Tcp(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            DaemonStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
            DaemonStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

impl Connection for DaemonStream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

/// Opens connections to the daemon for the client's pool, whatever the request's URI says.
#[derive(Clone)]
struct DaemonConnector(DockerEndpoint);

impl tower_service::Service<hyper::Uri> for DaemonConnector {
    type Response = DaemonStream;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<DaemonStream>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let endpoint = self.0.clone();
        Box::pin(async move { DaemonStream::connect(&endpoint).await })
    }
}

/// The body of bollard's requests (its `BodyType`, spelled out: bollard does not export it).
type RequestBody = http_body_util::Either<
    http_body_util::Full<hyper::body::Bytes>,
    http_body_util::StreamBody<
        Pin<
            Box<
                dyn futures_util::Stream<
                        Item = Result<hyper::body::Frame<hyper::body::Bytes>, std::io::Error>,
                    > + Send,
            >,
        >,
    >,
>;

/// Requests to the daemon over a pool that keeps one idle connection, and the authority its
/// URIs carry (only the Host header's: the connector knows where the daemon is).
#[derive(Clone)]
pub(super) struct PooledClient {
    client: std::sync::Arc<hyper_util::client::legacy::Client<DaemonConnector, RequestBody>>,
    authority: String,
}

impl PooledClient {
    pub(super) fn new(endpoint: &DockerEndpoint) -> PooledClient {
        PooledClient {
            client: std::sync::Arc::new(
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .pool_max_idle_per_host(1)
                    .build(DaemonConnector(endpoint.clone())),
            ),
            authority: match endpoint {
                DockerEndpoint::Unix(_) => "http://docker".to_string(),
                DockerEndpoint::Tcp(address) => format!("http://{address}"),
            },
        }
    }

    /// A bollard client on this pool. bollard's own unix and HTTP clients keep no idle
    /// connection: each request of a launch would open a connection of its own, and the daemon
    /// accept it, which cost the shim more CPU than anything else it did in a launch. The pool
    /// and its connection close with the engine, which the relay lets go once its executor runs
    /// (a waiting shim holds no connection).
    pub(super) fn bollard(&self, timeout: Duration) -> Result<Docker, DockerError> {
        let client = self.client.clone();
        Docker::connect_with_custom_transport(
            move |request: bollard::BollardRequest| {
                let client = client.clone();
                async move { client.request(request).await.map_err(DockerError::from) }
            },
            Some(self.authority.clone()),
            timeout.as_secs(),
            bollard::API_DEFAULT_VERSION,
        )
    }

    /// `GET path` over the pool, its answer read to the end (so that the connection goes back to
    /// the pool); the error says why there was no answer.
    pub(super) async fn get(
        &self,
        path: &str,
    ) -> Result<(hyper::http::response::Parts, hyper::body::Bytes), String> {
        use http_body_util::BodyExt;
        let request = hyper::Request::get(format!("{}{path}", self.authority))
            .body(bollard::body_full(hyper::body::Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| connect_failure(&e).unwrap_or_else(|| e.to_string()))?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((parts, body))
    }

    /// Pings the daemon (see [`DaemonFacts`]); the error says why there was no answer.
    pub(super) async fn ping(&self) -> Result<DaemonFacts, String> {
        let (answer, body) = self.get("/_ping").await?;
        if !answer.status.is_success() {
            return Err(unexpected(answer.status, &body));
        }
        let version = answer
            .headers
            .get(hyper::header::SERVER)
            .and_then(|v| v.to_str().ok())
            .and_then(version_in_server_header)
            .unwrap_or_default()
            .to_string();
        Ok(DaemonFacts { version })
    }
}

/// An answer that is not the one asked for, in an error: its status and what it said.
pub(super) fn unexpected(status: hyper::StatusCode, body: &[u8]) -> String {
    format!("status {status}: {}", String::from_utf8_lossy(body).trim())
}

/// Why a request got no answer, if the reason is that no connection to the daemon could be made
/// (no socket, a refused connection): the daemon is away, not busy.
fn connect_failure(err: &hyper_util::client::legacy::Error) -> Option<String> {
    if !err.is_connect() {
        return None;
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(match io.kind() {
                std::io::ErrorKind::NotFound => "no socket there".to_string(),
                _ => io.to_string(),
            });
        }
        source = cause.source();
    }
    Some(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_version_is_read_off_the_server_header() {
        assert_eq!(
            version_in_server_header("Docker/20.10.24+dfsg1 (linux)"),
            Some("20.10.24+dfsg1")
        );
        assert_eq!(version_in_server_header("Docker/27.3.1"), Some("27.3.1"));
        assert_eq!(version_in_server_header("Libpod/5.0 (linux)"), None);
        assert_eq!(version_in_server_header("Docker/ (linux)"), None);
    }
}
