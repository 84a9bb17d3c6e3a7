//! The physical floor: what the daemon itself must do for a launch, asked with nothing of the
//! shim's around it. In-process (one client on one keep-alive connection sending the shim's own
//! create body, the wait registered before the start on a connection of its own, as the shim
//! does, the start, the inspect, and the same forked.pid write); and, for a burst, one `curl`
//! process per launch (create, start, inspect on one connection).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bollard::models::ContainerCreateBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use mesos_executor_shim::mesos::checkpoint::{self, HostPid};

async fn connect(socket: &Path) -> SendRequest<Full<Bytes>> {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::task::spawn_local(connection);
    sender
}

async fn call(
    api: &mut SendRequest<Full<Bytes>>,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> serde_json::Value {
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "docker")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .unwrap();
    api.ready().await.unwrap();
    let response = api.send_request(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(status.is_success(), "{method} {path}: {status} {bytes:?}");
    serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null)
}

/// One launch in-process; returns the time from the first request to the rename.
pub async fn launch(
    socket: &Path,
    body: &ContainerCreateBody,
    name: &str,
    forked: &Path,
) -> Duration {
    let mut api = connect(socket).await;
    let mut waiter = connect(socket).await;
    let json = serde_json::to_vec(body).unwrap();
    let start = Instant::now();
    let path = format!("/containers/create?name={name}");
    let created = call(&mut api, "POST", &path, Some(json)).await;
    let id = created["Id"].as_str().unwrap().to_string();
    // The wait, registered before the start: its headers come once the daemon holds it.
    let request = hyper::Request::post(format!("/containers/{id}/wait?condition=next-exit"))
        .header(hyper::header::HOST, "docker")
        .body(Full::new(Bytes::new()))
        .unwrap();
    waiter.ready().await.unwrap();
    let _wait = waiter.send_request(request).await.unwrap();
    call(&mut api, "POST", &format!("/containers/{id}/start"), None).await;
    let info = call(&mut api, "GET", &format!("/containers/{id}/json"), None).await;
    let pid = HostPid::new(info["State"]["Pid"].as_i64().unwrap()).unwrap();
    checkpoint::write_pid_file(forked, pid).unwrap();
    start.elapsed()
}

/// One launch as one `curl` process: create `name` from the body in `body_file`, start it,
/// inspect it into `inspect_file`, on one connection to `socket`. Exits non-zero if any fails.
pub fn curl_launch(socket: &Path, body_file: &Path, name: &str, inspect_file: &Path) -> Command {
    let socket = socket.display().to_string();
    let mut cmd = Command::new("curl");
    let each = [
        "--silent",
        "--show-error",
        "--fail",
        "--unix-socket",
        &socket,
    ];
    cmd.args(each)
        .args(["-o", "/dev/null", "-H", "Content-Type: application/json"])
        .arg("--data-binary")
        .arg(format!("@{}", body_file.display()))
        .arg(format!("http://docker/containers/create?name={name}"))
        .arg("--next")
        .args(each)
        .args(["-o", "/dev/null", "-X", "POST"])
        .arg(format!("http://docker/containers/{name}/start"))
        .arg("--next")
        .args(each)
        .arg("-o")
        .arg(inspect_file)
        .arg(format!("http://docker/containers/{name}/json"))
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    crate::run::close_inherited_fds(&mut cmd);
    cmd
}
