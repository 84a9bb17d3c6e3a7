//! The deployment to copy, `docker/compose.yml`, brought up as an operator brings it up: a Mesos
//! image built by `docker/mesos-image.sh` from the real Mesos install, the agent image with the
//! shim baked in, the configuration directory mounted read-only, the Docker socket's directory
//! mounted, and the `gc` sidecar. Checked: the agent registers, `gc` passes, `doctor` in the
//! agent container reads the mounted file, a command task of `mesos-execute` runs in a sibling
//! that `gc` keeps; then the stack comes down and leaves nothing. Beside it, the systemd unit
//! for `gc` on the host, checked without Mesos.
//!
//! The stack needs a Mesos 1.x install, named by `MESOS_HOME`, and runs only when asked for, with the
//! real-Mesos suite:
//!
//! ```text
//! MESOS_HOME=/opt/mesos cargo test --locked --features failpoints --test real_mesos --test deployment -- --ignored
//! ```

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::mesos::{free_port, master_get, mesos_home, write_root_file};
use common::*;
use mesos_executor_shim::error::Failure;
use serde_json::Value;

/// One run's stack: its compose project, its directory (build context, socket directory,
/// configuration, work_dir), its images, all named and labelled for this run alone.
struct Stack {
    project: String,
    scope: String,
    dir: PathBuf,
    compose: Vec<String>,
    env: Vec<(String, String)>,
    master_port: u16,
    framework: Option<Child>,
}

impl Stack {
    fn new() -> Stack {
        let home = mesos_home();
        setup();
        let id = std::process::id();
        let scope = format!("deployment-{id}");
        let dir = PathBuf::from(format!("/tmp/mesos-executor-shim-it/{scope}"));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["context/docker", "socket", "config", "work"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let (master_port, agent_port) = (free_port(), free_port());
        let mesos_image = format!("mesos-executor-shim-test/deployment-mesos-{id}:latest");
        let env = [
            ("MESOS_IMAGE", mesos_image.clone()),
            (
                "AGENT_IMAGE",
                format!("mesos-executor-shim-test/deployment-agent-{id}:latest"),
            ),
            (
                "SHIM_BUILD_CONTEXT",
                dir.join("context").display().to_string(),
            ),
            ("SHIM_BINARY", "mesos-executor-shim".into()),
            (
                "DOCKER_SOCKET_DIR",
                dir.join("socket").display().to_string(),
            ),
            ("SHIM_CONFIG_DIR", dir.join("config").display().to_string()),
            ("MESOS_WORK_DIR", dir.join("work").display().to_string()),
            ("MESOS_MASTER_PORT", master_port.to_string()),
            ("MESOS_MASTER", format!("127.0.0.1:{master_port}")),
            ("MESOS_AGENT_PORT", agent_port.to_string()),
            // The daemon is shared: other agents' task containers are named mesos-* too.
            ("MESOS_DOCKER_KILL_ORPHANS", "false".into()),
            ("GC_EVERY", "2s".into()),
        ]
        .map(|(k, v)| (k.to_string(), v))
        .to_vec();
        let stack = Stack {
            project: format!("msdeployment{id}"),
            scope,
            dir,
            compose: compose_command(),
            env,
            master_port,
            framework: None,
        };
        stack.prepare(&home, &mesos_image);
        stack
    }

    /// What the operator provides: the Mesos image, the build context with the shim, the
    /// configuration shipped beside the compose file (labelled for this run), and dockerd's
    /// socket in a directory of its own (here a hard link to the daemon's socket: the daemon is
    /// shared and is not reconfigured).
    fn prepare(&self, home: &Path, mesos_image: &str) {
        let scope_label = format!("{SCOPE_LABEL}={}", self.scope);
        let out = Command::new("sh")
            .arg(repo().join("docker/mesos-image.sh"))
            .args(["-t", mesos_image, "-l", &scope_label])
            .args(["-l", "mesos-executor-shim-test.inputs=deployment"])
            .arg(home)
            .output()
            .unwrap();
        assert_success("docker/mesos-image.sh", &out);
        let context = self.dir.join("context");
        std::fs::copy(shim_bin(), context.join("mesos-executor-shim")).unwrap();
        std::fs::copy(
            repo().join("Dockerfile.mesos-slave-prebuilt"),
            context.join("Dockerfile.mesos-slave-prebuilt"),
        )
        .unwrap();
        std::fs::copy(
            repo().join("docker/install-shim.sh"),
            context.join("docker/install-shim.sh"),
        )
        .unwrap();
        let shipped = std::fs::read_to_string(repo().join("docker/config.json")).unwrap();
        let mut config: Value = serde_json::from_str(&shipped).unwrap();
        config["labels"] = serde_json::json!({ SCOPE_LABEL: self.scope });
        write_root_file(&self.dir.join("config/config.json"), &config.to_string());
        std::fs::hard_link("/var/run/docker.sock", self.dir.join("socket/docker.sock"))
            .unwrap_or_else(|e| {
                panic!(
                    "linking the daemon's socket into {}: {e}",
                    self.dir.display()
                )
            });
    }

    /// `docker compose -p PROJECT -f docker/compose.yml ARGS`, with the run's variables.
    fn compose(&self, args: &[&str]) -> Output {
        Command::new(&self.compose[0])
            .args(&self.compose[1..])
            .args(["-p", &self.project, "-f"])
            .arg(repo().join("docker/compose.yml"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// The container of compose service `service`.
    fn container(&self, service: &str) -> String {
        let out = self.compose(&["ps", "-q", service]);
        assert_success(&format!("compose ps {service}"), &out);
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(!id.is_empty(), "no container of service {service}");
        id
    }

    fn logs(&self, service: &str) -> String {
        let out = docker(&["logs", &self.container(service)]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn diagnostics(&self) -> String {
        let mut text = String::new();
        for service in ["mesos-master", "mesos-agent", "gc"] {
            let log = self.logs(service);
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            text += &format!("{service} log, newest first:\n{}\n", tail.join("\n"));
        }
        text
    }

    /// The running siblings of this run: their inspect.
    fn siblings(&self) -> Vec<Value> {
        let filter = format!("label={SCOPE_LABEL}={}", self.scope);
        docker_ok(&[
            "ps",
            "-q",
            "--filter",
            &filter,
            "--filter",
            "name=executor-mesos-",
        ])
        .lines()
        .map(|id| serde_json::from_str::<Value>(&docker_ok(&["inspect", id])).unwrap()[0].clone())
        .collect()
    }

    /// Everything of this run the daemon still holds: containers, networks, volumes, images.
    fn left_on_the_daemon(&self) -> Vec<String> {
        let scope = format!("label={SCOPE_LABEL}={}", self.scope);
        let project = format!("label=com.docker.compose.project={}", self.project);
        let mut left = Vec::new();
        for (what, args) in [
            ("container", vec!["ps", "-aq", "--filter", &scope]),
            ("container", vec!["ps", "-aq", "--filter", &project]),
            ("network", vec!["network", "ls", "-q", "--filter", &project]),
            ("volume", vec!["volume", "ls", "-q", "--filter", &project]),
            ("image", vec!["images", "-aq", "--filter", &scope]),
        ] {
            left.extend(docker_ok(&args).lines().map(|id| format!("{what} {id}")));
        }
        left
    }

    /// Brings the stack down as an operator does, and removes what the build left beside the
    /// images compose names (the builder's stage images, labelled as their base).
    fn down(&self) -> Output {
        let out = self.compose(&["down", "--rmi", "all", "--volumes", "--remove-orphans"]);
        let scope = format!("label={SCOPE_LABEL}={}", self.scope);
        for _ in 0..3 {
            for image in docker_ok(&["images", "-aq", "--filter", &scope]).lines() {
                let _ = docker(&["rmi", "-f", image]);
            }
        }
        out
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(framework) = &mut self.framework {
            let _ = framework.kill();
            let _ = framework.wait();
        }
        let scope = format!("label={SCOPE_LABEL}={}", self.scope);
        for id in docker_ok(&["ps", "-aq", "--filter", &scope]).lines() {
            let _ = docker(&["rm", "-f", id]);
        }
        let _ = self.down();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
#[ignore = "real Mesos: see the module's documentation"]
fn the_compose_deployment_runs_a_task_in_a_sibling_and_leaves_nothing() {
    let mut stack = Stack::new();
    let up = stack.compose(&["up", "-d", "--build"]);
    assert_success("compose up", &up);

    wait_until(
        &format!(
            "the agent registered with the master\n{}",
            stack.diagnostics()
        ),
        Duration::from_secs(90),
        || {
            master_get(stack.master_port, "/slaves")
                .and_then(|s| serde_json::from_str::<Value>(&s).ok())
                .is_some_and(|s| {
                    s["slaves"]
                        .as_array()
                        .is_some_and(|a| a.len() == 1 && a[0]["active"] == true)
                })
        },
    );
    wait_until(
        &format!("the gc sidecar made a pass\n{}", stack.diagnostics()),
        Duration::from_secs(30),
        || stack.logs("gc").contains(" sibling(s) collected, "),
    );
    assert_agent_container_is_as_documented(&stack);
    assert_doctor_reads_the_mounted_file(&stack);

    // A command task, as a framework launches it.
    let marker = format!("deployed {}", stack.scope);
    let log = std::fs::File::create(stack.dir.join("framework.log")).unwrap();
    stack.framework = Some(
        Command::new(mesos_home().join("bin/mesos-execute"))
            .arg(format!("--master=127.0.0.1:{}", stack.master_port))
            .args(["--name=deployed", "--checkpoint"])
            .arg(format!("--command=echo {marker}; exec sleep 600"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let framework_log =
        || std::fs::read_to_string(stack.dir.join("framework.log")).unwrap_or_default();
    wait_until(
        &format!(
            "the task runs\n{}\n{}",
            framework_log(),
            stack.diagnostics()
        ),
        Duration::from_secs(90),
        || framework_log().contains("TASK_RUNNING"),
    );
    let siblings = stack.siblings();
    assert_eq!(siblings.len(), 1, "one sibling for the task: {siblings:#?}");
    let sibling = &siblings[0];
    let labels = &sibling["Config"]["Labels"];
    let pid = sibling["State"]["Pid"].as_u64().unwrap();
    let forked_pid = labels["io.mesos-executor-shim.forked-pid-host"]
        .as_str()
        .unwrap();
    wait_until(
        "forked.pid names the sibling",
        Duration::from_secs(30),
        || std::fs::read_to_string(forked_pid).is_ok_and(|p| p.trim() == pid.to_string()),
    );
    let sandbox = PathBuf::from(labels["io.mesos-executor-shim.sandbox"].as_str().unwrap());
    wait_until(
        "the task's output reached its sandbox",
        Duration::from_secs(30),
        || std::fs::read_to_string(sandbox.join("stdout")).is_ok_and(|s| s.contains(&marker)),
    );
    // gc, passing while the task runs, keeps its sibling.
    wait_until(
        &format!(
            "gc passed over the running sibling\n{}",
            stack.diagnostics()
        ),
        Duration::from_secs(30),
        || stack.logs("gc").contains("0 sibling(s) collected, 1 kept"),
    );
    assert!(pid_alive(pid as u32), "gc left the task running");

    // The framework goes; its executor, and so its sibling, go with it.
    let mut framework = stack.framework.take().unwrap();
    framework.kill().unwrap();
    framework.wait().unwrap();
    wait_until(
        &format!(
            "the sibling is gone with its framework\n{}",
            stack.diagnostics()
        ),
        Duration::from_secs(90),
        || stack.siblings().is_empty(),
    );
    let down = stack.down();
    assert_success("compose down", &down);
    let left = stack.left_on_the_daemon();
    assert!(left.is_empty(), "the stack left {left:?}");
}

/// The agent container as docs/operating.md describes it: host pids and network, the
/// configuration directory read-only at the shim's fixed path, and the Docker socket's
/// directory (never the socket file) mounted.
fn assert_agent_container_is_as_documented(stack: &Stack) {
    let agent = stack.container("mesos-agent");
    let inspect: Value = serde_json::from_str(&docker_ok(&["inspect", &agent])).unwrap();
    let host = &inspect[0]["HostConfig"];
    assert_eq!(
        (host["PidMode"].as_str(), host["NetworkMode"].as_str()),
        (Some("host"), Some("host"))
    );
    let mounts = inspect[0]["Mounts"].as_array().unwrap();
    let mount = |destination: &str| {
        mounts
            .iter()
            .find(|m| m["Destination"] == destination)
            .unwrap_or_else(|| panic!("no mount at {destination}: {mounts:#?}"))
    };
    let config = mount("/etc/mesos-executor-shim");
    assert_eq!(
        config["Source"],
        stack.dir.join("config").display().to_string()
    );
    assert_eq!(
        config["RW"], false,
        "the configuration is mounted read-only"
    );
    let socket = mount("/run/docker-api");
    let socket_dir = stack.dir.join("socket");
    assert_eq!(socket["Source"], socket_dir.display().to_string());
    assert!(
        socket_dir.is_dir(),
        "the socket's directory is mounted, not the socket"
    );
}

/// `doctor` in the agent container, as an operator runs it: the file it reads is the mounted
/// one (its `docker_host`, the socket's directory, is what it reaches Docker by: the default is
/// another path), and nothing fails.
fn assert_doctor_reads_the_mounted_file(stack: &Stack) {
    let out = stack.compose(&[
        "exec",
        "-T",
        "mesos-agent",
        "mesos-executor-shim",
        "doctor",
        "--json",
    ]);
    let checks: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{checks:#?}");
    let detail = |name: &str| {
        let check = checks
            .iter()
            .find(|c| c["check"] == name)
            .unwrap_or_else(|| panic!("no {name} check: {checks:#?}"));
        assert_eq!(check["ok"], true, "{check:#?}");
        check["detail"].as_str().unwrap_or_default().to_string()
    };
    assert!(
        detail("config").contains("/etc/mesos-executor-shim/config.json"),
        "{checks:#?}"
    );
    assert!(
        detail("docker").contains("unix:///run/docker-api/docker.sock"),
        "{checks:#?}"
    );
    for name in [
        "docker-socket",
        "work-dir",
        "executor-path",
        "init",
        "pid-namespace",
    ] {
        detail(name);
    }
}

/// The systemd unit for `gc` on the host runs a command line the binary takes: its `ExecStart`,
/// with `--help` appended (which the parser reaches only past every argument before it: a bad
/// one fails first, as the control shows); and, where `systemd-analyze` is installed, the unit
/// verifies without a word.
#[test]
fn the_systemd_unit_for_gc_runs_a_command_the_binary_takes() {
    let unit_path = repo().join("docker/systemd/mesos-executor-shim-gc.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    let exec_starts: Vec<&str> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("ExecStart="))
        .collect();
    assert_eq!(exec_starts.len(), 1, "{unit}");
    let words: Vec<&str> = exec_starts[0].split_whitespace().collect();
    assert_eq!(
        words[..4],
        ["/usr/local/bin/mesos-executor-shim", "gc", "--every", "5m"],
        "the unit runs the installed binary's gc loop"
    );
    let takes = |args: &[&str]| {
        let out = Command::new(shim_bin())
            .args(args)
            .arg("--help")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (status, stderr) = takes(&words[1..]);
    assert_eq!(status, Some(0), "ExecStart={}: {stderr}", exec_starts[0]);
    let mut bad = words[1..].to_vec();
    bad[2] = "5x";
    assert_eq!(
        takes(&bad).0,
        Some(Failure::Usage.exit_code().into()),
        "a bad period before --help is refused as a bad command line"
    );

    let analyze = Command::new("systemd-analyze").arg("--version").output();
    if analyze.is_ok_and(|o| o.status.success()) {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("mesos-executor-shim-gc.service");
        let here = unit.replace(words[0], &shim_bin().display().to_string());
        std::fs::write(&copy, here).unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&copy)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "systemd-analyze verify: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
