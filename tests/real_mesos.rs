//! Against a real Apache Mesos: a master on this host, an agent in a container with the shim
//! bind-mounted over both executors, and `mesos-execute` as the framework. What the stand-in
//! agent models, checked where it matters most: tasks survive the agent container, a kill or a
//! destroy by the live agent ends them, and a run that does not checkpoint is never collected.
//!
//! These tests need a Mesos 1.x install, named by `MESOS_HOME` (its prefix: `bin/mesos-agent`,
//! `libexec/mesos/`), and run only when asked for:
//!
//! ```text
//! sh ../shared/mesos/install.sh /opt/mesos      # or any Mesos 1.x install
//! MESOS_HOME=/opt/mesos cargo test --locked --features failpoints --test real_mesos --test deployment -- --ignored
//! ```
//!
//! Named and broken (no agent there, one that does not run), they fail saying so.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::daemons::PrivateDaemon;
use common::mesos::{free_port, master_get, write_root_file};
use common::*;

/// The agent container's image: an empty merged-/usr root with this host's `/etc`; its
/// containers bind-mount the host's `/usr` and the Mesos install, read-only.
const AGENT_IMAGE_REAL: &str = "mesos-executor-shim-test/mesos-agent:latest";
/// A ticking command task.
const TICKING: &str = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done";
/// A ticking task that exits 3 once told to (a file in its container).
const TICKING_UNTIL_STOPPED: &str =
    "i=0; while [ ! -e /tmp/stop ]; do echo tick $i; i=$((i+1)); sleep 0.2; done; exit 3";

/// The Mesos install the suite runs (see [`common::mesos::mesos_home`]), with the suite's agent
/// image built once per test binary.
fn mesos_home() -> PathBuf {
    static HOME: OnceLock<PathBuf> = OnceLock::new();
    HOME.get_or_init(|| {
        let home = common::mesos::mesos_home();
        setup();
        build_agent_image();
        home
    })
    .clone()
}

/// An empty root (merged `/usr`, this host's `/etc`), imported once per test binary.
fn build_agent_image() {
    let root = PathBuf::from(format!(
        "/tmp/mesos-executor-shim-it/skeleton-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&root);
    for dir in [
        "usr", "opt", "tmp", "var/run", "run", "proc", "sys", "dev", "root",
    ] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    for (link, target) in [
        ("bin", "usr/bin"),
        ("lib", "usr/lib"),
        ("lib64", "usr/lib64"),
        ("sbin", "usr/sbin"),
    ] {
        std::os::unix::fs::symlink(target, root.join(link)).unwrap();
    }
    let script = format!(
        "tar -C / -c etc | tar -C {0} -x && mkdir -p {0}/etc/mesos-executor-shim && chmod 1777 {0}/tmp && \
         tar -C {0} -c . | docker import --change 'LABEL mesos-executor-shim-test.inputs=real-mesos' - {AGENT_IMAGE_REAL}",
        root.display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert!(
        out.status.success(),
        "building {AGENT_IMAGE_REAL}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// A master on this host and its agents, one container at a time, on one work_dir.
struct Cluster {
    dir: PathBuf,
    scope: String,
    master: Child,
    master_port: u16,
    agent_port: u16,
    agent_flags: Vec<String>,
    agents: Vec<String>,
    frameworks: Vec<Child>,
    /// Bind-mount the shim over the executors (false: the stock arrangement, the control).
    shim: bool,
    /// The agent's `--work_dir` is a link (see [`Cluster::with_linked_work_dir`]).
    linked_work_dir: bool,
    /// The cluster's own Docker daemon (see [`Cluster::on_private_daemon`]); `None`: the suite's.
    /// A field, so that it goes only after the cluster's containers were removed through it.
    daemon: Option<PrivateDaemon>,
}

impl Cluster {
    fn new(tag: &str, config: serde_json::Value, agent_flags: &[&str]) -> Cluster {
        let home = mesos_home();
        let scope = format!("real-{tag}-{}", std::process::id());
        let dir = PathBuf::from(format!("/tmp/mesos-executor-shim-it/{scope}"));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["master", "work", "config"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let mut config = config;
        let object = config.as_object_mut().unwrap();
        let mut mounts = vec![
            "/usr:/usr:ro".to_string(),
            format!("{0}:{0}:ro", home.display()),
        ];
        if let Some(extra) = object.get("mounts").and_then(|m| m.as_array()) {
            mounts.extend(extra.iter().map(|m| m.as_str().unwrap().to_string()));
        }
        object.insert("mounts".into(), mounts.into());
        object.insert("labels".into(), serde_json::json!({ SCOPE_LABEL: scope }));
        write_root_file(&dir.join("config/config.json"), &config.to_string());
        let master_port = free_port();
        let log = std::fs::File::create(dir.join("master.log")).unwrap();
        let master = Command::new(home.join("bin/mesos-master"))
            .args([
                "--ip=127.0.0.1",
                &format!("--port={master_port}"),
                &format!("--work_dir={}", dir.join("master").display()),
                "--registry=in_memory",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let cluster = Cluster {
            dir,
            scope,
            master,
            master_port,
            agent_port: free_port(),
            agent_flags: agent_flags.iter().map(|f| f.to_string()).collect(),
            agents: Vec::new(),
            frameworks: Vec::new(),
            shim: true,
            linked_work_dir: false,
            daemon: None,
        };
        wait_until("the master answers", Duration::from_secs(30), || {
            cluster.get("/health").is_some()
        });
        cluster
    }

    fn work_dir(&self) -> PathBuf {
        self.dir.join("work")
    }

    /// A cluster whose containers (agent, siblings, tasks) live on a daemon of its own, with
    /// live-restore, its socket in a directory of its own that the agent container mounts: a
    /// restart of that daemon touches nothing of the rest of the suite. `shim: false`: the
    /// stock arrangement.
    fn on_private_daemon(tag: &str, shim: bool) -> Cluster {
        mesos_home();
        let daemon = PrivateDaemon::start(&format!("shim-rm-{tag}-{}", std::process::id()));
        daemon.load(AGENT_IMAGE_REAL);
        daemon.load(AGENT_IMAGE);
        let socket = daemon.socket.display().to_string();
        let config = serde_json::json!({ "docker_host": daemon.host });
        let mut cluster = Cluster::new(tag, config, &[&format!("--docker_socket={socket}")]);
        cluster.shim = shim;
        cluster.daemon = Some(daemon);
        cluster
    }

    /// The docker CLI on the cluster's daemon.
    fn docker(&self, args: &[&str]) -> std::process::Output {
        match &self.daemon {
            Some(daemon) => daemon.docker(args),
            None => docker(args),
        }
    }

    /// [`Cluster::docker`], its trimmed stdout; panics with its stderr when it fails.
    fn docker_ok(&self, args: &[&str]) -> String {
        succeeded(args, self.docker(args))
    }

    /// The agent container's `-v` of the daemon's socket: the private daemon's directory, else
    /// the suite's socket file.
    fn socket_mount(&self) -> String {
        match &self.daemon {
            Some(daemon) => format!("{0}:{0}", daemon.socket.parent().unwrap().display()),
            None => "/var/run/docker.sock:/var/run/docker.sock".to_string(),
        }
    }

    /// Makes the agent's `--work_dir` (`work`) a link to a directory elsewhere (`disk/work`), as
    /// operators link `/var/lib/mesos` to a data disk: the agent does not resolve it. The agent
    /// container then gets the cluster's whole directory, so that it sees the link as a link.
    fn with_linked_work_dir(mut self) -> Cluster {
        let real = self.dir.join("disk/work");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::remove_dir(self.work_dir()).unwrap();
        std::os::unix::fs::symlink(&real, self.work_dir()).unwrap();
        self.linked_work_dir = true;
        self
    }

    /// GET on the master; `None` while it does not answer.
    fn get(&self, path: &str) -> Option<String> {
        master_get(self.master_port, path)
    }

    /// The state of task `name` on the master.
    fn task_state(&self, name: &str) -> Option<String> {
        let tasks: serde_json::Value = serde_json::from_str(&self.get("/tasks")?).ok()?;
        tasks["tasks"]
            .as_array()?
            .iter()
            .find(|t| t["name"] == name)
            .and_then(|t| t["state"].as_str())
            .map(str::to_string)
    }

    fn wait_task(&self, name: &str, state: &str, timeout: Duration) {
        wait_until(
            &format!("task {name} is {state}\n{}", self.diagnostics()),
            timeout,
            || self.task_state(name).as_deref() == Some(state),
        );
    }

    /// Starts a new agent container on the cluster's work_dir (a restart, after the first).
    fn start_agent(&mut self) -> String {
        let home = mesos_home();
        let name = format!("agent-{}-{}", self.scope, self.agents.len());
        let wd = self.work_dir().display().to_string();
        let libexec = home.join("libexec/mesos");
        let mut args: Vec<String> = [
            "run",
            "-d",
            "--name",
            &name,
            "--pid=host",
            "--net=host",
            "-v",
            "/usr:/usr:ro",
            "-v",
            &format!("{0}:{0}:ro", home.display()),
            "-v",
            &self.socket_mount(),
            "-v",
            &match self.linked_work_dir {
                true => format!("{0}:{0}", self.dir.display()),
                false => format!("{wd}:{wd}"),
            },
            "-v",
            &format!(
                "{}:/etc/mesos-executor-shim:ro",
                self.dir.join("config").display()
            ),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if self.shim {
            for executor in ["mesos-executor", "mesos-docker-executor"] {
                args.extend([
                    "-v".into(),
                    format!(
                        "{}:{}:ro",
                        shim_bin().display(),
                        libexec.join(executor).display()
                    ),
                ]);
            }
        }
        args.extend([
            AGENT_IMAGE_REAL.to_string(),
            home.join("bin/mesos-agent").display().to_string(),
            format!("--master=127.0.0.1:{}", self.master_port),
            "--ip=127.0.0.1".into(),
            format!("--port={}", self.agent_port),
            "--hostname=localhost".into(),
            format!("--work_dir={wd}"),
            format!("--launcher_dir={}", libexec.display()),
            "--containerizers=docker,mesos".into(),
            "--docker=/usr/bin/docker".into(),
            // Other tests' task containers are named mesos-<id> too: never this agent's to kill.
            "--docker_kill_orphans=false".into(),
            "--no-systemd_enable_support".into(),
            "--isolation=posix/cpu,posix/mem".into(),
            "--launcher=posix".into(),
            "--resources=cpus:2;mem:2048;disk:4096;ports:[31000-32000]".into(),
        ]);
        args.extend(self.agent_flags.iter().cloned());
        self.docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        self.agents.push(name.clone());
        let registered = if self.agents.len() == 1 {
            "Registered with master"
        } else {
            "Re-registered with master"
        };
        wait_until(
            &format!("the agent registered\n{}", self.diagnostics()),
            Duration::from_secs(60),
            || self.agent_log(&name).contains(registered),
        );
        name
    }

    fn agent_log(&self, name: &str) -> String {
        let out = self.docker(&["logs", name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn kill_agent(&self) {
        let name = self.agents.last().unwrap();
        self.docker_ok(&["kill", "--signal", "KILL", name]);
        wait_until(
            "the agent container is dead",
            Duration::from_secs(20),
            || self.docker_ok(&["inspect", "-f", "{{.State.Running}}", name]) == "false",
        );
    }

    /// Runs `mesos-execute` with `args`; its output goes to `<name>.framework.log`.
    fn execute(&mut self, name: &str, args: &[&str]) {
        let log = std::fs::File::create(self.framework_log_path(name)).unwrap();
        let child = Command::new(mesos_home().join("bin/mesos-execute"))
            .arg(format!("--master=127.0.0.1:{}", self.master_port))
            .arg(format!("--name={name}"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.frameworks.push(child);
    }

    fn framework_log_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.framework.log"))
    }

    fn framework_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.framework_log_path(name)).unwrap_or_default()
    }

    /// The sandbox of executor `name`'s latest run.
    fn sandbox(&self, name: &str) -> Option<PathBuf> {
        let slaves = self.work_dir().join("slaves");
        for agent in std::fs::read_dir(slaves).ok()?.flatten() {
            for framework in std::fs::read_dir(agent.path().join("frameworks"))
                .ok()?
                .flatten()
            {
                let latest = framework
                    .path()
                    .join("executors")
                    .join(name)
                    .join("runs/latest");
                if let Ok(run) = std::fs::canonicalize(&latest) {
                    return Some(run);
                }
            }
        }
        None
    }

    /// The container ID of executor `name`'s latest run.
    fn container_id(&self, name: &str) -> String {
        let sandbox = self.sandbox(name).expect("the executor has a sandbox");
        sandbox.file_name().unwrap().to_string_lossy().into_owned()
    }

    /// File `file` of executor `name`'s latest sandbox ("" while there is none).
    fn sandbox_file(&self, name: &str, file: &str) -> String {
        self.sandbox(name)
            .and_then(|s| std::fs::read_to_string(s.join(file)).ok())
            .unwrap_or_default()
    }

    /// The ID of the one framework the master knows.
    fn framework_id(&self) -> String {
        let frameworks: serde_json::Value =
            serde_json::from_str(&self.get("/frameworks").expect("the master answers")).unwrap();
        let all = frameworks["frameworks"].as_array().unwrap();
        assert_eq!(all.len(), 1, "{frameworks}");
        all[0]["id"].as_str().unwrap().to_string()
    }

    /// Tears down every framework on the master, as an operator does (`POST /teardown`).
    fn teardown_frameworks(&self) {
        let frameworks: serde_json::Value =
            serde_json::from_str(&self.get("/frameworks").expect("the master answers")).unwrap();
        for framework in frameworks["frameworks"].as_array().unwrap() {
            let id = framework["id"].as_str().unwrap();
            let out = Command::new("curl")
                .args(["-sf", "--max-time", "10", "-X", "POST", "-d"])
                .arg(format!("frameworkId={id}"))
                .arg(format!("http://127.0.0.1:{}/teardown", self.master_port))
                .output()
                .unwrap();
            assert!(out.status.success(), "tearing down framework {id}: {out:?}");
        }
    }

    /// The numbers of task `name`'s ticks in its sandbox, in order.
    fn tick_numbers(&self, name: &str) -> Vec<u64> {
        self.sandbox_file(name, "stdout")
            .lines()
            .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
            .collect()
    }

    /// Asserts that every tick of task `name` reached its sandbox once, in order.
    fn assert_ticks_whole(&self, name: &str) {
        let ticks = self.tick_numbers(name);
        let expected: Vec<u64> = (0..ticks.len() as u64).collect();
        assert_eq!(ticks, expected, "every tick of {name} once, in order");
    }

    /// Restarts the cluster's own daemon (SIGTERM, live-restore) while task `name` ticks on
    /// without it, for ten ticks.
    fn restart_daemon(&mut self, name: &str) {
        let task = format!("mesos-{}", self.container_id(name));
        let pid: u32 = self
            .docker_ok(&["inspect", "-f", "{{.State.Pid}}", &task])
            .parse()
            .unwrap();
        let daemon = self
            .daemon
            .as_mut()
            .expect("a cluster on a daemon of its own");
        daemon.stop(nix::sys::signal::Signal::SIGTERM);
        wait_children(pid, 10);
        daemon.restart();
    }

    /// Asserts that the restarted agent `agent` reconnected to executor `name`, whose task is
    /// running on the master and whose output grows.
    fn assert_reconnected(&self, agent: &str, name: &str) {
        let reconnected = format!("Received re-registration message from executor '{name}'");
        wait_until(
            &format!(
                "the restarted agent reconnected to {name}\n{}",
                self.diagnostics()
            ),
            Duration::from_secs(30),
            || self.agent_log(agent).contains(&reconnected),
        );
        self.wait_task(name, "TASK_RUNNING", Duration::from_secs(30));
        self.assert_output_grows(name);
    }

    /// Waits until the framework of task `name` got `state` with `message`.
    fn wait_status(&self, name: &str, state: &str, message: &str) {
        wait_until(
            &format!(
                "task {name} ended {state}: {message}\n{}",
                self.diagnostics()
            ),
            Duration::from_secs(150),
            || {
                let log = self.framework_log(name);
                log.contains(&format!("Received status update {state}")) && log.contains(message)
            },
        );
    }

    fn ticks(&self, name: &str) -> usize {
        self.sandbox(name)
            .and_then(|s| std::fs::read_to_string(s.join("stdout")).ok())
            .map(|s| s.lines().filter(|l| l.starts_with("tick")).count())
            .unwrap_or(0)
    }

    fn assert_output_grows(&self, name: &str) {
        let before = self.ticks(name);
        wait_until(
            &format!("task {name}'s output grows\n{}", self.diagnostics()),
            Duration::from_secs(10),
            || self.ticks(name) >= before + 3,
        );
    }

    /// Running siblings of this cluster: (name, host pid).
    fn siblings(&self) -> Vec<(String, u32)> {
        let filter = format!("label={SCOPE_LABEL}={}", self.scope);
        let names = self.docker_ok(&["ps", "-q", "--filter", &filter]);
        names
            .lines()
            .map(|id| {
                let out = self.docker_ok(&["inspect", "-f", "{{.Name}} {{.State.Pid}}", id]);
                let (name, pid) = out.split_once(' ').unwrap();
                (
                    name.trim_start_matches('/').to_string(),
                    pid.parse().unwrap(),
                )
            })
            .collect()
    }

    /// Runs `gc` on the host, for this cluster's siblings on its daemon.
    fn gc(&self) {
        let mut gc = Command::new(shim_bin());
        gc.args(["gc", "--label", &format!("{SCOPE_LABEL}={}", self.scope)]);
        if let Some(daemon) = &self.daemon {
            gc.env("DOCKER_HOST", &daemon.host);
        }
        let out = gc.output().unwrap();
        assert!(
            out.status.success(),
            "gc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn wait_no_sibling(&self) {
        wait_until(
            &format!("no sibling of the cluster is left\n{}", self.diagnostics()),
            Duration::from_secs(60),
            || {
                let filter = format!("label={SCOPE_LABEL}={}", self.scope);
                self.docker_ok(&["ps", "-aq", "--filter", &filter])
                    .is_empty()
            },
        );
    }

    fn diagnostics(&self) -> String {
        let agent = self
            .agents
            .last()
            .map(|a| self.agent_log(a))
            .unwrap_or_default();
        let tail: Vec<&str> = agent.lines().rev().take(30).collect();
        let mut text = format!(
            "agent log (last lines, newest first):\n{}\ncontainers of the daemon named mesos-*:\n{}\n",
            tail.join("\n"),
            self.docker_ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}", "--filter", "name=mesos-"])
        );
        if let Ok(frameworks) = std::fs::read_dir(&self.dir) {
            for f in frameworks.flatten() {
                if f.path().to_string_lossy().ends_with(".framework.log") {
                    text += &format!(
                        "{}:\n{}\n",
                        f.path().display(),
                        std::fs::read_to_string(f.path()).unwrap_or_default()
                    );
                }
            }
        }
        text
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for framework in &mut self.frameworks {
            let _ = framework.kill();
            let _ = framework.wait();
        }
        let filter = format!("label={SCOPE_LABEL}={}", self.scope);
        let mut names = self.agents.clone();
        names.extend(
            self.docker(&["ps", "-aq", "--filter", &filter])
                .stdout
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| String::from_utf8_lossy(l).into_owned()),
        );
        if !names.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(names.iter().map(String::as_str));
            let _ = self.docker(&args);
        }
        // The docker executors' task containers of this cluster, mesos-<container ID>, and the
        // executors' own containers under --docker_mesos_image.
        let runs = find_named(&self.work_dir().join("slaves"), "runs");
        let tasks: Vec<String> = runs
            .iter()
            .flat_map(|r| std::fs::read_dir(r).into_iter().flatten().flatten())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n != "latest")
            .flat_map(|cid| [format!("mesos-{cid}"), format!("mesos-{cid}.executor")])
            .collect();
        if !tasks.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(tasks.iter().map(String::as_str));
            let _ = self.docker(&args);
        }
        let _ = self.master.kill();
        let _ = self.master.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A command task of a checkpointing framework runs on through a SIGKILL of its agent container,
/// its output still growing, and the restarted agent reconnects to its executor: the task is
/// still TASK_RUNNING on the master. Control: the stock executor dies with the container, and
/// the restarted agent reports the task lost.
#[test]
#[ignore = "real Mesos: see the module's documentation"]
fn a_command_task_survives_its_agent_containers_death() {
    survives_its_agent_containers_death("survive", "tick", &[]);

    let mut control = Cluster::new("survivectl", serde_json::json!({}), &[]);
    control.shim = false;
    control.start_agent();
    control.execute("tick", &["--checkpoint", &format!("--command={TICKING}")]);
    control.wait_task("tick", "TASK_RUNNING", Duration::from_secs(60));
    control.kill_agent();
    control.start_agent();
    wait_until(
        &format!(
            "control: the restarted agent gives the task up\n{}",
            control.diagnostics()
        ),
        Duration::from_secs(60),
        || {
            matches!(
                control.task_state("tick").as_deref(),
                Some("TASK_FAILED" | "TASK_LOST" | "TASK_GONE")
            )
        },
    );
}

/// A docker task (the docker containerizer's mesos-docker-executor) runs on through a SIGKILL of
/// its agent container, and the restarted agent reconnects to its executor.
#[test]
#[ignore = "real Mesos: see the module's documentation"]
fn a_docker_task_survives_its_agent_containers_death() {
    survives_its_agent_containers_death(
        "dockersurvive",
        "dtick",
        &[
            "--containerizer=docker",
            &format!("--docker_image={AGENT_IMAGE}"),
        ],
    );
}

/// Runs task `name` (a ticking command, with `args`) of a checkpointing framework, SIGKILLs its
/// agent container, and checks that the executor runs on, its output growing, and that the
/// restarted agent reconnects to it while the master still has the task running.
fn survives_its_agent_containers_death(tag: &str, name: &str, args: &[&str]) {
    survives_in(Cluster::new(tag, serde_json::json!({}), &[]), name, args);
}

/// The agent's `--work_dir` is a link (a data disk's, say), which the agent does not resolve: a
/// command task and a docker task run on through their agent container's death as they do with
/// the work_dir's real path, the restarted agent finds them again.
#[test]
#[ignore = "real Mesos: see the module's documentation"]
fn tasks_survive_their_agent_containers_death_with_a_linked_work_dir() {
    let cluster = Cluster::new("linkedwd", serde_json::json!({}), &[]).with_linked_work_dir();
    survives_in(cluster, "ltick", &[]);
    let cluster = Cluster::new("linkedwdd", serde_json::json!({}), &[]).with_linked_work_dir();
    let image = format!("--docker_image={AGENT_IMAGE}");
    survives_in(cluster, "ldtick", &["--containerizer=docker", &image]);
}

/// [`survives_its_agent_containers_death`] on `cluster`.
fn survives_in(mut cluster: Cluster, name: &str, args: &[&str]) {
    cluster.start_agent();
    let command = format!("--command={TICKING}");
    let mut all = vec!["--checkpoint", command.as_str()];
    all.extend(args);
    cluster.execute(name, &all);
    cluster.wait_task(name, "TASK_RUNNING", Duration::from_secs(60));
    let siblings = cluster.siblings();
    assert_eq!(siblings.len(), 1, "{siblings:?}");
    let (_, pid) = siblings[0].clone();
    cluster.kill_agent();
    assert!(pid_alive(pid), "the executor outlived its agent container");
    cluster.assert_output_grows(name);
    let agent = cluster.start_agent();
    cluster.assert_reconnected(&agent, name);
}

/// Docker tasks outlive a live-restore restart of their Docker daemon, and their agent
/// container's SIGKILL after it: the docker executor's CLI (the shim) follows the task container
/// while the daemon is away, so the task stays TASK_RUNNING and every tick reaches the sandbox
/// once, in order; a later framework kill ends it TASK_KILLED, and a task's own exit after the
/// restart reaches the framework with its own status. Control: the stock docker executor, whose
/// `docker run` fails with the daemon, fails its task with the CLI's 125.
#[test]
#[ignore = "real Mesos: see the module's documentation"]
fn docker_tasks_outlive_a_restart_of_the_daemon_where_the_stock_executor_fails() {
    let image = format!("--docker_image={AGENT_IMAGE}");
    let task = |command: &str| {
        let command = format!("--command={command}");
        vec![
            "--checkpoint".to_string(),
            "--containerizer=docker".into(),
            image.clone(),
            command,
        ]
    };
    let mut stock = Cluster::on_private_daemon("dtstock", false);
    stock.start_agent();
    let stock_task = task(TICKING);
    stock.execute(
        "stocktick",
        &stock_task.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let mut cluster = Cluster::on_private_daemon("dtshim", true);
    cluster.start_agent();
    let mut killed = task(TICKING);
    killed.push("--kill_after=100secs".into());
    cluster.execute(
        "dtick",
        &killed.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let exits = task(TICKING_UNTIL_STOPPED);
    cluster.execute(
        "dexit",
        &exits.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    stock.wait_task("stocktick", "TASK_RUNNING", Duration::from_secs(60));
    for name in ["dtick", "dexit"] {
        cluster.wait_task(name, "TASK_RUNNING", Duration::from_secs(60));
    }

    stock.restart_daemon("stocktick");
    stock.wait_status(
        "stocktick",
        "TASK_FAILED",
        "Container exited with status 125",
    );
    cluster.restart_daemon("dtick");
    for name in ["dtick", "dexit"] {
        cluster.assert_output_grows(name);
        assert_eq!(cluster.task_state(name).as_deref(), Some("TASK_RUNNING"));
        cluster.assert_ticks_whole(name);
    }

    cluster.kill_agent();
    let agent = cluster.start_agent();
    for name in ["dtick", "dexit"] {
        cluster.assert_reconnected(&agent, name);
    }

    let dexit = format!("mesos-{}", cluster.container_id("dexit"));
    cluster.docker_ok(&["exec", &dexit, "touch", "/tmp/stop"]);
    cluster.wait_status("dexit", "TASK_FAILED", "Container exited with status 3");
    cluster.wait_status("dtick", "TASK_KILLED", "Container exited with status");
    for name in ["dtick", "dexit"] {
        cluster.assert_ticks_whole(name);
    }
    // Their shims died with the first agent container: `gc` removes the exited siblings.
    wait_until(
        &format!("both executors exited\n{}", cluster.diagnostics()),
        Duration::from_secs(30),
        || cluster.siblings().is_empty(),
    );
    cluster.gc();
    cluster.wait_no_sibling();
}

/// The framework kills its task: TASK_KILLED, and no sibling is left.
#[test]
#[ignore = "real Mesos: see the module's documentation"]
fn a_framework_kill_ends_the_task_and_leaves_no_sibling() {
    let mut cluster = Cluster::new("kill", serde_json::json!({}), &[]);
    cluster.start_agent();
    cluster.execute(
        "killed",
        &[
            "--checkpoint",
            "--kill_after=3secs",
            &format!("--command={TICKING}"),
        ],
    );
    cluster.wait_task("killed", "TASK_RUNNING", Duration::from_secs(60));
    wait_until(
        &format!("the framework saw TASK_KILLED\n{}", cluster.diagnostics()),
        Duration::from_secs(60),
        || cluster.framework_log("killed").contains("TASK_KILLED"),
    );
    cluster.wait_no_sibling();
}

/// An executor that never registers (here: one that only sleeps) is destroyed by the live agent
/// after `--executor_registration_timeout`: the posix launcher SIGKILLs the launch helper's
/// session, helper and shim together. The shim's init, which watches the agent process past the
/// helper, ends the executor: the task fails and no sibling is left. Control: with the init's
/// watch off (`end_with_shim: false`), the destroyed launch's executor runs on after the task
/// failed, with nobody to stop it.
#[test]
#[ignore = "real Mesos: see the module's documentation"]
fn a_registration_timeout_destroy_leaves_no_sibling() {
    let (ended, _cluster) = registration_timeout_destroy(true);
    assert!(ended, "the destroyed executor is gone");
    let (ended, control) = registration_timeout_destroy(false);
    assert!(!ended, "control: without the watch the executor runs on");
    assert_eq!(control.siblings().len(), 1);
}

/// Launches an executor that never registers and waits until its task fails; returns whether
/// its executor was then ended (within 30 s), and the cluster.
fn registration_timeout_destroy(end_with_shim: bool) -> (bool, Cluster) {
    let bin = PathBuf::from(format!(
        "/tmp/mesos-executor-shim-it/never-registers-{}",
        std::process::id()
    ));
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("executor");
    std::fs::write(&script, "#!/bin/sh\nexec sleep 3600\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut cluster = Cluster::new(
        if end_with_shim {
            "regtimeout"
        } else {
            "regtimeoutctl"
        },
        serde_json::json!({
            "executor": script.display().to_string(),
            "mounts": [format!("{0}:{0}:ro", bin.display())],
            "end_with_shim": end_with_shim,
        }),
        &["--executor_registration_timeout=5secs"],
    );
    cluster.start_agent();
    cluster.execute("silent", &["--checkpoint", "--command=sleep 3600"]);
    wait_until(
        &format!("the executor's sibling runs\n{}", cluster.diagnostics()),
        Duration::from_secs(60),
        || !cluster.siblings().is_empty(),
    );
    let (_, pid) = cluster.siblings()[0].clone();
    wait_until(
        &format!("the framework saw its task fail\n{}", cluster.diagnostics()),
        Duration::from_secs(60),
        || cluster.framework_log("silent").contains("TASK_FAILED"),
    );
    // The destroy has happened once the task failed. With the watch, the executor goes within
    // the settle time (2 s) and a moment; without it, it is still there three settle times on.
    let window = if end_with_shim { 30 } else { 6 };
    let deadline = std::time::Instant::now() + Duration::from_secs(window);
    while pid_alive(pid) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let ended = !pid_alive(pid);
    if ended {
        cluster.wait_no_sibling();
    }
    let _ = std::fs::remove_dir_all(&bin);
    (ended, cluster)
}

/// A framework that does not checkpoint: no meta run directory, and `gc` from the host, run
/// meanwhile, leaves its running executor alone; the task stays TASK_RUNNING.
#[test]
#[ignore = "real Mesos: see the module's documentation"]
fn a_task_that_does_not_checkpoint_survives_gc() {
    let mut cluster = Cluster::new("nockpt", serde_json::json!({}), &[]);
    cluster.start_agent();
    cluster.execute("nockpt", &[&format!("--command={TICKING}")]);
    cluster.wait_task("nockpt", "TASK_RUNNING", Duration::from_secs(60));
    assert!(
        find_named(&cluster.work_dir().join("meta"), "runs").is_empty(),
        "the agent made no meta run directory"
    );
    let out = Command::new(shim_bin())
        .args([
            "gc",
            "--json",
            "--label",
            &format!("{SCOPE_LABEL}={}", cluster.scope),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let actions: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(actions, serde_json::json!([]), "gc collected nothing");
    assert_eq!(cluster.siblings().len(), 1);
    cluster.assert_output_grows("nockpt");
    assert_eq!(
        cluster.task_state("nockpt").as_deref(),
        Some("TASK_RUNNING")
    );
}

/// Every path named `name` below `dir` (links not followed).
fn find_named(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name() == name {
                found.push(path.clone());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                found.extend(find_named(&path, name));
            }
        }
    }
    found
}

/// `--docker_mesos_image`: the agent runs the docker executor in a container
/// `mesos-<CID>.executor` of an image that has Mesos, here with the shim baked in over
/// `mesos-docker-executor` (the stock one kept beside it as `.real`), as an operator bakes it
/// into the agent image. The shim sees it is already outside the agent container and becomes the
/// stock executor in place (no sibling); the docker task runs on through the agent container's
/// SIGKILL, the restarted agent reconnects to its executor, and after the framework's teardown
/// the run leaves what the stock executor's leaves (control: the same image without the shim).
#[test]
#[ignore = "real Mesos: see the module's documentation"]
fn a_docker_task_survives_its_agent_with_the_shim_in_the_docker_mesos_image() {
    let left = survives_with_docker_mesos_image("mesosimage", true);
    let control = survives_with_docker_mesos_image("mesosimagectl", false);
    assert_eq!(
        left, control,
        "what the run leaves, with the shim and with the stock executor"
    );
}

/// Runs a docker task with `--docker_mesos_image` naming an image with (`shim`) or without the
/// shim baked in, through its agent container's SIGKILL and restart, then tears its framework
/// down; returns the containers of the run left once the agent is done (their names, with `<CID>`
/// for the container ID, and whether they run).
fn survives_with_docker_mesos_image(tag: &str, shim: bool) -> Vec<String> {
    let image = ExecutorImage::build(tag, shim);
    let flags = [
        format!("--docker_mesos_image={}", image.0),
        // The agent removes a destroyed run's containers after this delay (6 hours by default).
        "--docker_remove_delay=1secs".to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut cluster = Cluster::new(tag, serde_json::json!({}), &flags);
    cluster.start_agent();
    let docker_image = format!("--docker_image={AGENT_IMAGE}");
    let command = format!("--command={TICKING}");
    let args = [
        "--checkpoint",
        "--containerizer=docker",
        &docker_image,
        &command,
    ];
    cluster.execute("mtick", &args);
    cluster.wait_task("mtick", "TASK_RUNNING", Duration::from_secs(60));
    let cid = cluster.container_id("mtick");
    // The agent recovers a run by the pid it checkpointed for its executor container, which it
    // writes once `docker inspect` of that container has answered: killed before, it loses the
    // run, with the stock executor as with the shim.
    let meta = cluster.work_dir().join("meta");
    wait_until(
        &format!(
            "the agent checkpointed the executor's pid\n{}",
            cluster.diagnostics()
        ),
        Duration::from_secs(30),
        || {
            find_named(&meta, "forked.pid")
                .iter()
                .any(|p| p.to_string_lossy().contains(&cid))
        },
    );
    let executor = format!("mesos-{cid}.executor");
    let pid: u32 = docker_ok(&["inspect", "-f", "{{.State.Pid}}", &executor])
        .parse()
        .unwrap();
    assert!(
        cluster.siblings().is_empty(),
        "no sibling: the executor runs in place"
    );
    if shim {
        let said = "running the stock executor in place";
        wait_until(
            &format!("the shim said what it did\n{}", cluster.diagnostics()),
            Duration::from_secs(10),
            || cluster.sandbox_file("mtick", "stderr").contains(said),
        );
    }
    cluster.kill_agent();
    assert!(pid_alive(pid), "the executor outlived its agent container");
    // The sandbox's stdout was fed by the agent's `docker run` of the executor container, gone
    // with the agent container: the task container's own log says it runs on.
    let task = format!("mesos-{cid}");
    assert_logs_grow(&task);
    let agent = cluster.start_agent();
    let reconnected = "Received re-registration message from executor 'mtick'";
    wait_until(
        &format!("the restarted agent reconnected\n{}", cluster.diagnostics()),
        Duration::from_secs(30),
        || cluster.agent_log(&agent).contains(reconnected),
    );
    cluster.wait_task("mtick", "TASK_RUNNING", Duration::from_secs(30));
    assert!(pid_alive(pid), "the same executor runs on");
    assert_logs_grow(&task);
    let cleaned = format!("Cleaning up framework {}", cluster.framework_id());
    cluster.teardown_frameworks();
    wait_until(
        &format!("the executor is gone\n{}", cluster.diagnostics()),
        Duration::from_secs(60),
        || !pid_alive(pid),
    );
    // The agent removes the run's containers `--docker_remove_delay` after the destroy.
    wait_until(
        &format!(
            "the agent cleaned the framework up\n{}",
            cluster.diagnostics()
        ),
        Duration::from_secs(60),
        || cluster.agent_log(&agent).contains(&cleaned),
    );
    wait_until(
        "the task container is removed",
        Duration::from_secs(30),
        || docker(&["inspect", &task]).status.code() == Some(1),
    );
    let of_the_run = format!("name=mesos-{cid}");
    let format = "{{.Names}} {{.State}}";
    let left = docker_ok(&["ps", "-a", "--format", format, "--filter", &of_the_run]);
    let left: Vec<String> = left.lines().map(|l| l.replace(&cid, "<CID>")).collect();
    println!("{tag}: left after the teardown: {left:?}");
    left
}

/// Waits until the log of container `name` has grown by three ticks.
fn assert_logs_grow(name: &str) {
    let ticks = || {
        let out = docker(&["logs", name]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with("tick"))
            .count()
    };
    let before = ticks();
    wait_until(
        &format!("container {name}'s log grows"),
        Duration::from_secs(10),
        || ticks() >= before + 3,
    );
}

/// An image for `--docker_mesos_image`, made of this host's files and removed when dropped: what
/// `mesos-docker-executor` needs to run (the Mesos install's executor and library at the
/// install's prefix, the shared libraries they link, `/bin/sh`, which the agent runs the executor
/// with, and the docker CLI at the agent's `--docker`), with the shim baked in over
/// `mesos-docker-executor` and the stock executor kept as `.real`, as `docker/install-shim.sh`
/// bakes it.
struct ExecutorImage(String);

impl ExecutorImage {
    fn build(name: &str, shim: bool) -> ExecutorImage {
        let home = mesos_home();
        let tag = format!(
            "mesos-executor-shim-test/{name}-{}:latest",
            std::process::id()
        );
        let root = PathBuf::from(format!(
            "/tmp/mesos-executor-shim-it/{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        for dir in [
            "usr/bin",
            "usr/lib",
            "usr/lib64",
            "tmp",
            "proc",
            "sys",
            "dev",
            "etc/mesos-executor-shim",
        ] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        for (link, target) in [
            ("bin", "usr/bin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
            ("sbin", "usr/bin"),
        ] {
            std::os::unix::fs::symlink(target, root.join(link)).unwrap();
        }
        let libexec = home.join("libexec/mesos");
        let stock = libexec.join("mesos-docker-executor");
        let sh = PathBuf::from("/bin/sh");
        let docker_cli = PathBuf::from("/usr/bin/docker");
        for binary in [&stock, &sh, &docker_cli] {
            for library in linked_libraries(binary) {
                copy_into(&root, &library);
            }
        }
        copy_into(&root, &sh);
        copy_into(&root, &docker_cli);
        let lib = home.join("lib");
        for entry in std::fs::read_dir(&lib).unwrap().flatten() {
            copy_into(&root, &entry.path());
        }
        copy_into(&root, &stock);
        if shim {
            let baked = root.join(stock.strip_prefix("/").unwrap());
            std::fs::rename(&baked, format!("{}.real", baked.display())).unwrap();
            std::fs::copy(shim_bin(), &baked).unwrap();
        }
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
        write_root_file(
            &root.join("etc/mesos-executor-shim/config.json"),
            r#"{"log_level": "info"}"#,
        );
        let script = format!(
            "chmod 1777 {0}/tmp && tar -C {0} -c . | docker import \
             --change 'LABEL mesos-executor-shim-test.inputs=real-mesos-image' - {tag}",
            root.display()
        );
        let out = Command::new("sh").args(["-c", &script]).output().unwrap();
        let _ = std::fs::remove_dir_all(&root);
        assert!(
            out.status.success(),
            "building {tag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ExecutorImage(tag)
    }
}

impl Drop for ExecutorImage {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.0]);
    }
}

/// The shared libraries `binary` links, as `ldd` resolves them on this host (none for a static
/// binary).
fn linked_libraries(binary: &Path) -> Vec<PathBuf> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .expect("ldd must be installed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().find(|w| w.starts_with('/')))
        .map(PathBuf::from)
        .collect()
}

/// Copies the file at `path` (links followed) to the same path under `root`, into the directory
/// the host's path really leads to (`/lib` is `/usr/lib` on a merged-/usr host, and in the image).
fn copy_into(root: &Path, path: &Path) {
    let dir = std::fs::canonicalize(path.parent().unwrap()).unwrap();
    let dest = root.join(dir.strip_prefix("/").unwrap());
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::copy(path, dest.join(path.file_name().unwrap()))
        .unwrap_or_else(|e| panic!("copying {} into the image: {e}", path.display()));
}
