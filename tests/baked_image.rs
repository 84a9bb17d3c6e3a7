//! The baked agent image, built as an operator builds it with the legacy builder (the only one on
//! machines without a registry; BuildKit takes the same files): from a fresh clone's sources with
//! `Dockerfile.mesos-slave`, or from a prebuilt binary with `Dockerfile.mesos-slave-prebuilt`
//! (which `docker/test/build-images.sh` also runs, for the other tests). Either way the image holds the
//! shim once, where it is installed: no layer keeps a copy the image does not show.

mod common;

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Images a test tags, removed when it ends (the suite's own images are left alone).
struct Tagged(Vec<String>);

impl Drop for Tagged {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = docker(&["rmi", "-f", image]);
        }
    }
}

/// A tag of this test process's own: the suite's shared images may be rebuilt meanwhile by
/// another test binary.
fn tag(what: &str) -> String {
    format!(
        "mesos-executor-shim-test/{what}-{}:latest",
        std::process::id()
    )
}

/// `DOCKER_BUILDKIT=0 docker build` with `args`; panics with the builder's output if it fails.
fn legacy_build(args: &[&str]) {
    let out = Command::new("docker")
        .env("DOCKER_BUILDKIT", "0")
        .arg("build")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every copy of `binary` in the layers of `image`, as `layer: path` (a hard link in a layer is
/// that layer's one copy): from `docker save`, each layer unpacked and its files of the binary's
/// size compared.
fn copies_in_layers(image: &str, binary: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("image.tar");
    docker_ok(&["save", "-o", saved.to_str().unwrap(), image]);
    untar(&saved, dir.path());
    let mut copies = Vec::new();
    for layer in layer_tars(dir.path()) {
        let root = layer.with_extension("d");
        std::fs::create_dir(&root).unwrap();
        untar(&layer, &root);
        let mut seen = HashSet::new();
        for file in regular_files(&root) {
            let meta = std::fs::symlink_metadata(&file).unwrap();
            if meta.len() == binary.len() as u64
                && seen.insert(meta.ino())
                && std::fs::read(&file).unwrap() == binary
            {
                let id = layer
                    .parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy();
                copies.push(format!(
                    "{id}: /{}",
                    file.strip_prefix(&root).unwrap().display()
                ));
            }
        }
    }
    copies
}

fn untar(archive: &Path, into: &Path) {
    let out = Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .output()
        .expect("tar is needed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The layers of an unpacked `docker save` (format of Engine 20.10: `<id>/layer.tar`).
fn layer_tars(saved: &Path) -> Vec<PathBuf> {
    let layers: Vec<PathBuf> = std::fs::read_dir(saved)
        .unwrap()
        .map(|e| e.unwrap().path().join("layer.tar"))
        .filter(|p| p.is_file())
        .collect();
    assert!(!layers.is_empty(), "no layer in the saved image");
    layers
}

fn regular_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            found.extend(regular_files(&entry.path()));
        } else if kind.is_file() {
            found.push(entry.path());
        }
    }
    found
}

/// The one copy of the shim, at the executor's path, else a failure naming every copy and the
/// image's history (which step made which layer).
fn assert_one_copy_installed(image: &str, binary: &[u8]) {
    let copies = copies_in_layers(image, binary);
    let history = docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.Size}}\t{{.CreatedBy}}",
        image,
    ]);
    assert_eq!(
        copies.len(),
        1,
        "{image}: copies of the shim {copies:?}; history:\n{history}"
    );
    assert!(
        copies[0].contains("/usr/libexec/mesos/mesos-"),
        "{image}: {copies:?}"
    );
}

/// From a prebuilt binary, as an operator runs it after `cargo build --release` in a clone: the
/// binary at its default path, let through by `.dockerignore`.
#[test]
fn the_prebuilt_dockerfile_builds_with_the_legacy_builder_and_holds_the_shim_once() {
    setup();
    let images = Tagged(vec![tag("prebuilt")]);
    let clone = fresh_clone();
    let release = clone.path().join("target/x86_64-unknown-linux-gnu/release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(shim_bin(), release.join("mesos-executor-shim")).unwrap();
    let mesos_arg = format!("MESOS_IMAGE={DOCKER_AGENT_IMAGE}");
    legacy_build(&[
        "-q",
        "-f",
        "Dockerfile.mesos-slave-prebuilt",
        "--build-arg",
        &mesos_arg,
        "-t",
        &images.0[0],
        clone.path().to_str().unwrap(),
    ]);
    assert_one_copy_installed(&images.0[0], &std::fs::read(shim_bin()).unwrap());
    // This agent image has both executors: the second name is the same file.
    let inodes = docker_ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "/bin/stat",
        &images.0[0],
        "-c",
        "%i",
        "/usr/libexec/mesos/mesos-executor",
        "/usr/libexec/mesos/mesos-docker-executor",
    ]);
    let inodes: Vec<&str> = inodes.lines().collect();
    assert_eq!(inodes.len(), 2);
    assert_eq!(inodes[0], inodes[1], "not one file under both names");
}

/// From source, as an operator runs it in a fresh clone (no binary in the context), with the
/// legacy builder, which builds every stage. The Rust image is a stand-in whose `cargo` puts a
/// binary where `cargo build --release` would: no registry here to pull the real one.
#[test]
fn the_source_dockerfile_builds_with_the_legacy_builder_and_holds_the_shim_once() {
    setup();
    let tag = |what: &str| {
        format!(
            "mesos-executor-shim-test/{what}-{}:latest",
            std::process::id()
        )
    };
    let images = Tagged(vec![tag("stand-in-rust"), tag("from-source")]);
    let rust = tempfile::tempdir().unwrap();
    std::fs::copy(shim_bin(), rust.path().join("mesos-executor-shim")).unwrap();
    std::fs::write(
        rust.path().join("cargo"),
        "#!/bin/sh\nset -eu\n[ \"$*\" = 'build --release --locked' ]\n\
         mkdir -p target/x86_64-unknown-linux-gnu/release\n\
         cp /opt/mesos-executor-shim target/x86_64-unknown-linux-gnu/release/\n",
    )
    .unwrap();
    std::fs::write(
        rust.path().join("Dockerfile"),
        format!(
            "FROM {AGENT_IMAGE}\nCOPY cargo /bin/cargo\nCOPY mesos-executor-shim /opt/\nRUN chmod 0755 /bin/cargo\n"
        ),
    )
    .unwrap();
    legacy_build(&["-q", "-t", &images.0[0], rust.path().to_str().unwrap()]);

    let clone = fresh_clone();
    let rust_arg = format!("RUST_IMAGE={}", images.0[0]);
    let mesos_arg = format!("MESOS_IMAGE={DOCKER_AGENT_IMAGE}");
    legacy_build(&[
        "-q",
        "-f",
        "Dockerfile.mesos-slave",
        "--build-arg",
        &rust_arg,
        "--build-arg",
        &mesos_arg,
        "-t",
        &images.0[1],
        clone.path().to_str().unwrap(),
    ]);
    assert_one_copy_installed(&images.0[1], &std::fs::read(shim_bin()).unwrap());
}

/// The files a fresh clone of this worktree would hold (as they are now): what `git ls-files`
/// lists, and no `target/`.
fn fresh_clone() -> tempfile::TempDir {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(repo())
        .output()
        .expect("git is needed");
    assert!(out.status.success());
    let clone = tempfile::tempdir().unwrap();
    for name in out.stdout.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let name = Path::new(std::str::from_utf8(name).unwrap());
        let source = repo().join(name);
        if !source.exists() {
            continue; // deleted in the worktree, not yet committed
        }
        let target = clone.path().join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&source, &target).unwrap();
    }
    clone
}
