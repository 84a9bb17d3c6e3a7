//! The binary is one static executable that runs where nothing else is: a FROM scratch image.

mod common;

use std::process::Command;

use common::*;

#[test]
fn the_binary_is_static_and_runs_in_a_scratch_image() {
    setup();
    let file = Command::new("file")
        .arg("-L")
        .arg(shim_bin())
        .output()
        .expect("the file command is needed");
    let description = String::from_utf8_lossy(&file.stdout);
    assert!(
        description.contains("static"),
        "not statically linked: {description}"
    );
    assert!(
        !description.contains("interpreter"),
        "has a dynamic loader: {description}"
    );

    let dir = tempfile::tempdir().unwrap();
    let context = dir.path();
    std::fs::copy(shim_bin(), context.join("mesos-executor-shim")).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        "FROM scratch\nCOPY mesos-executor-shim /mesos-executor-shim\n",
    )
    .unwrap();
    let tag = "mesos-executor-shim-test/scratch:latest";
    let build = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "-q", "-t", tag])
        .arg(context)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let version = docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "/mesos-executor-shim",
        tag,
        "--version",
    ]);
    let _ = docker(&["rmi", tag]);
    assert_eq!(
        version,
        format!("mesos-executor-shim {}", env!("CARGO_PKG_VERSION"))
    );
}
