//! Shared harness of the integration tests: a real Docker daemon, images built locally by
//! `docker/test/build-images.sh`, and a stand-in agent container per scenario.
#![allow(dead_code)]

pub mod daemons;
pub mod mesos;
pub mod mount_namespace;
pub mod processes;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub const AGENT_IMAGE: &str = "mesos-executor-shim-test/agent:latest";
/// The label that scopes every sibling a test makes: `ps` and `gc` in tests filter on it, so a
/// test never touches siblings it did not make (the host may run real ones).
pub const SCOPE_LABEL: &str = "mesos-executor-shim-test.scope";
/// Where the tests keep their configuration files, one directory each: root owns it and nobody
/// else can write, outside every work_dir, as the shim requires of its file. A shim in an agent
/// container finds its file bind-mounted at [`CONFIG_PATH`]; one started on this host sees its
/// directory mounted over [`CONFIG_PATH`]'s, in a mount namespace of its own.
pub const CONFIG_DIR: &str = "/run/mesos-executor-shim-it";
pub const BAKED_IMAGE: &str = "mesos-executor-shim-test/agent-baked:latest";
/// The agent image with the docker CLI and the stand-in mesos-docker-executor.
pub const DOCKER_AGENT_IMAGE: &str = "mesos-executor-shim-test/agent-docker:latest";
pub const DOCKER_BAKED_IMAGE: &str = "mesos-executor-shim-test/agent-docker-baked:latest";
/// A task of the docker containerizer: prints a line every 0.2 s.
pub const TICKING_TASK: &str = "i=0; while :; do echo task tick $i; i=$((i+1)); sleep 0.2; done";
/// A sibling's `CapAdd` (after `CapDrop: ALL`) when its agent container has Docker's default
/// capabilities: those same defaults, in moby's order, and nothing more.
pub const DEFAULT_CAP_ADD: &str = r#"["CHOWN","DAC_OVERRIDE","FSETID","FOWNER","MKNOD","NET_RAW","SETGID","SETUID","SETFCAP","SETPCAP","NET_BIND_SERVICE","SYS_CHROOT","KILL","AUDIT_WRITE"]"#;
pub const EXECUTOR_PATH: &str = "/usr/libexec/mesos/mesos-executor";
pub const CONFIG_PATH: &str = "/etc/mesos-executor-shim/config.json";

pub fn shim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mesos-executor-shim"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI must be installed to run these tests")
}

/// Runs docker and returns its trimmed stdout; panics with its stderr when it fails.
pub fn docker_ok(args: &[&str]) -> String {
    succeeded(args, docker(args))
}

/// The trimmed stdout of `docker args`, which gave `out`; panics with its stderr when it failed.
pub fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Checks that a daemon answers and builds the test images, once per test binary. Fails (never
/// skips) when there is no daemon: these tests prove nothing without one.
pub fn setup() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let info = Command::new("docker").args(["info", "--format", "{{.ServerVersion}}"]).output();
        match info {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "no Docker daemon answers ({}): these tests need a real one; start it as .ci/run does \
                 and run the tests again",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!("the docker CLI cannot be run ({e}): install docker.io as .ci/run does"),
        }
        let build = Command::new("sh")
            .arg(repo().join("docker/test/build-images.sh"))
            .arg(shim_bin())
            .output()
            .expect("running docker/test/build-images.sh");
        assert!(
            build.status.success(),
            "building the test images failed:\n{}{}",
            String::from_utf8_lossy(&build.stdout),
            String::from_utf8_lossy(&build.stderr)
        );
    });
}

/// Starts the shim on this host (no agent container), as the agent would, for `run`, with the
/// configuration file `config` at the relay's fixed path (see [`CONFIG_DIR`]) and the sandbox as
/// its working directory; the test plays the agent that checkpoints forked.pid (the shim's own
/// pid) right after the fork, as a 1.x agent does.
pub fn spawn_shim(run: &Run, config: &Path, env: &[(&str, &str)], executor_args: &[&str]) -> Child {
    std::fs::create_dir_all(run.sandbox()).unwrap();
    // The sandbox logger's files, as the agent opens them for an executor by default.
    let stdout = std::fs::File::create(run.sandbox().join("stdout")).unwrap();
    let stderr = std::fs::File::create(run.sandbox().join("stderr")).unwrap();
    spawn_shim_with_output(
        run,
        config,
        env,
        executor_args,
        [stdout.into(), stderr.into()],
    )
}

/// [`spawn_shim`] with the shim's stdout and stderr given: pipes stand for a container logger
/// other than the sandbox's (the output then goes through the shim).
pub fn spawn_shim_with_output(
    run: &Run,
    config: &Path,
    env: &[(&str, &str)],
    executor_args: &[&str],
    [stdout, stderr]: [std::process::Stdio; 2],
) -> Child {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(run.sandbox()).unwrap();
    std::fs::create_dir_all(run.forked_pid_path().parent().unwrap()).unwrap();
    let mut command = Command::new(shim_bin());
    let mount_config = config_mount(config);
    // SAFETY: between fork and exec the child makes only system calls, which are
    // async-signal-safe, on strings made before the fork. The agent closes every descriptor but
    // stdio in what it forks; so does this stand-in (the test runner's own, such as cargo's
    // jobserver pipe, would leak otherwise).
    unsafe {
        command.pre_exec(move || {
            mount_config()?;
            nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
    let child = command
        .arg0("mesos-executor")
        .args(executor_args)
        .current_dir(run.sandbox())
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("MESOS_DIRECTORY", run.sandbox())
        .env("MESOS_FRAMEWORK_ID", &run.framework_id)
        .env("MESOS_EXECUTOR_ID", &run.executor_id)
        .env("MESOS_SLAVE_ID", &run.agent_id)
        .env("MESOS_CHECKPOINT", "1")
        .envs(env.iter().copied())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap();
    let temp = run.forked_pid_path().with_file_name("agent-tmp");
    std::fs::write(&temp, child.id().to_string()).unwrap();
    std::fs::rename(&temp, run.forked_pid_path()).unwrap();
    child
}

/// What a process started on this host runs between fork and exec so that the relay finds
/// `config` at its fixed path: a mount namespace of its own, in which `config`'s directory is
/// mounted over the directory of [`CONFIG_PATH`]. That directory is made (empty) if this host has
/// none; nothing on the host is mounted or changed beyond it.
pub fn config_mount(config: &Path) -> impl Fn() -> std::io::Result<()> + Send + Sync + 'static {
    let target = Path::new(CONFIG_PATH).parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&target).unwrap();
    let source = config.parent().unwrap().to_path_buf();
    move || {
        Ok(mount_namespace::mount_over_in_own_namespace(
            &source, &target,
        )?)
    }
}

/// Removes the cgroup `root` and everything below it in every v1 hierarchy, deepest first (a
/// cgroup is removed with rmdir once it holds no process and no child).
pub fn remove_cgroup_trees(root: &str) {
    fn remove(dir: &Path) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    remove(&entry.path());
                }
            }
        }
        let _ = std::fs::remove_dir(dir);
    }
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for hierarchy in hierarchies.flatten() {
            let tree = hierarchy.path().join(root);
            if tree.is_dir() {
                remove(&tree);
            }
        }
    }
}

/// Starts an agent container launching `agent` for each of `runs`, then waits until each run's
/// sibling is checkpointed: the agents' names and the siblings' pids.
pub fn start_agents(runs: &[Run], agent: &Agent) -> (Vec<String>, Vec<u32>) {
    let names: Vec<String> = runs.iter().map(|run| run.start_agent(agent)).collect();
    let pids = runs
        .iter()
        .zip(&names)
        .map(|(run, name)| run.wait_for_checkpointed_sibling(name))
        .collect();
    (names, pids)
}

/// Polls `done` until it holds or `timeout` passes, then panics naming what did not happen.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `name -> host pid` of those of `names` that run.
pub fn running_pids(names: &[String]) -> std::collections::HashMap<String, u32> {
    let mut running = std::collections::HashMap::new();
    for chunk in names.chunks(100) {
        let mut args = vec![
            "inspect",
            "-f",
            "{{.Name}} {{.State.Running}} {{.State.Pid}}",
        ];
        args.extend(chunk.iter().map(String::as_str));
        let out = docker(&args);
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut f = line.split_whitespace();
            let (Some(name), Some("true"), Some(pid)) = (f.next(), f.next(), f.next()) else {
                continue;
            };
            if let Ok(pid) = pid.parse() {
                running.insert(name.trim_start_matches('/').to_string(), pid);
            }
        }
    }
    running
}

/// Whether a host pid exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .map(|rest| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// How a stand-in agent container is started.
#[derive(Clone)]
pub struct Agent {
    pub image: &'static str,
    /// Bind-mount the shim over the stock executor (the bind-mount install).
    pub bind_shim: bool,
    /// "1.x" or "0.2x".
    pub generation: &'static str,
    pub checkpoint: bool,
    pub pid_host: bool,
    /// Environment of the agent container.
    pub env: Vec<(String, String)>,
    /// Settings for the configuration file the shim finds in the agent container; the run's scope
    /// label is added to them.
    pub config: serde_json::Map<String, serde_json::Value>,
    pub executor_args: Vec<String>,
    /// Where the agent container sees the work_dir, when not at the host's path.
    pub work_dir_in_container: Option<String>,
    /// The work_dir as the agent is given it, when that is a link to where the agent container
    /// sees it (the agent does not resolve its `--work_dir`).
    pub work_dir_named: Option<String>,
    /// `--pid=<mode>` instead of `--pid=host` (with `pid_host`).
    pub pid_mode: Option<String>,
    /// Where the agent container has the Docker socket (configure `docker_host` to match).
    pub socket_at: String,
    /// Launch as the linux launcher does, into the run's cgroups, with this memory limit (bytes).
    pub linux_launcher: Option<u64>,
    /// Launch as the docker containerizer does: mesos-docker-executor, running this task command
    /// in the test image.
    pub docker_task: Option<String>,
    /// The agent's --launcher_dir.
    pub launcher_dir: String,
    /// More `-v` mounts of the agent container.
    pub volumes: Vec<String>,
    /// More `docker run` options of the agent container (`--cap-drop`, `--ulimit`, ...).
    pub run_args: Vec<String>,
    /// The agent process runs under a supervisor that stays the container's main process, so
    /// the agent alone can die (an OOM kill, a crash) while its container lives.
    pub supervised: bool,
}

impl Agent {
    /// The stock arrangement: the agent image's own executor, no shim.
    pub fn stock() -> Self {
        Agent {
            image: AGENT_IMAGE,
            bind_shim: false,
            generation: "1.x",
            checkpoint: true,
            pid_host: true,
            env: Vec::new(),
            config: serde_json::Map::new(),
            executor_args: vec!["--launcher_dir=/usr/libexec/mesos".into()],
            work_dir_in_container: None,
            work_dir_named: None,
            pid_mode: None,
            socket_at: "/var/run/docker.sock".into(),
            linux_launcher: None,
            docker_task: None,
            launcher_dir: "/usr/libexec/mesos".into(),
            volumes: Vec::new(),
            run_args: Vec::new(),
            supervised: false,
        }
    }

    /// The shim bind-mounted over the stock executor of a 1.x agent, with no configuration.
    pub fn with_shim() -> Self {
        Agent {
            bind_shim: true,
            ..Agent::stock()
        }
    }

    pub fn baked() -> Self {
        Agent {
            image: BAKED_IMAGE,
            ..Agent::stock()
        }
    }

    /// The docker containerizer of `agent` (stock, with the shim, baked), running `task`.
    pub fn docker(agent: Agent, task: &str) -> Self {
        Agent {
            image: if agent.image == BAKED_IMAGE {
                DOCKER_BAKED_IMAGE
            } else {
                DOCKER_AGENT_IMAGE
            },
            docker_task: Some(task.into()),
            executor_args: Vec::new(),
            ..agent
        }
    }

    /// The executor the agent forks, under its launcher_dir.
    pub fn executor_path(&self) -> String {
        let name = if self.docker_task.is_some() {
            "mesos-docker-executor"
        } else {
            "mesos-executor"
        };
        format!("{}/{name}", self.launcher_dir)
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.executor_args
            .extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// More `docker run` options of the agent container.
    pub fn run_args(mut self, args: &[&str]) -> Self {
        self.run_args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// One more `-v` mount of the agent container.
    pub fn volume(mut self, spec: &str) -> Self {
        self.volumes.push(spec.into());
        self
    }

    /// One key of the shim's configuration file.
    pub fn set(mut self, key: &str, value: serde_json::Value) -> Self {
        self.config.insert(key.into(), value);
        self
    }
}

/// One executor run, with its own work_dir and IDs; removes every container and file it made on
/// drop.
pub struct Run {
    pub work_dir: PathBuf,
    pub agent_id: String,
    pub framework_id: String,
    pub executor_id: String,
    pub container_id: String,
    /// The value of [`SCOPE_LABEL`] on this run's siblings: its own container ID, or one shared by
    /// the runs of one test.
    pub scope: String,
    /// The Docker daemon this run's containers live on (`-H`): the suite's own when `None`.
    pub daemon: Option<String>,
    agents: std::cell::RefCell<Vec<String>>,
    configs: std::cell::RefCell<Vec<PathBuf>>,
}

impl Run {
    pub fn new(tag: &str) -> Run {
        let mut run = Run::in_scope(tag, "");
        run.scope = run.container_id.clone();
        run
    }

    /// A run whose siblings carry `scope`, shared with other runs of the same test.
    pub fn in_scope(tag: &str, scope: &str) -> Run {
        setup();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let container_id = format!("{tag}-{}-{n}-{nanos:x}", std::process::id());
        let work_dir = PathBuf::from(format!("/tmp/mesos-executor-shim-it/{container_id}"));
        std::fs::create_dir_all(&work_dir).unwrap();
        Run {
            work_dir,
            agent_id: "S-test-0".into(),
            framework_id: "F-test-0".into(),
            executor_id: format!("app.{tag}.{n}"),
            container_id,
            scope: scope.to_string(),
            daemon: None,
            agents: Default::default(),
            configs: Default::default(),
        }
    }

    /// Another run of the same agent (same work_dir, same scope), for tests of one agent host.
    pub fn beside(&self, tag: &str) -> Run {
        let mut run = Run::in_scope(tag, &self.scope);
        let _ = std::fs::remove_dir_all(&run.work_dir);
        run.work_dir = self.work_dir.clone();
        run.daemon = self.daemon.clone();
        run
    }

    /// The docker CLI on this run's daemon.
    pub fn docker(&self, args: &[&str]) -> Output {
        match &self.daemon {
            None => docker(args),
            Some(host) => {
                let mut all = vec!["-H", host.as_str()];
                all.extend(args);
                docker(&all)
            }
        }
    }

    /// [`Run::docker`], its trimmed stdout; panics with its stderr when it fails.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        succeeded(args, self.docker(args))
    }

    /// Writes a configuration file for this run's shim: `settings` plus the scope label, as
    /// `config.json` in a directory of its own under [`CONFIG_DIR`]. Returns its path.
    pub fn config_file(&self, settings: &serde_json::Map<String, serde_json::Value>) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let dir = Path::new(CONFIG_DIR).join(format!(
            "{}-{}",
            self.container_id,
            self.configs.borrow().len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        for d in [Path::new(CONFIG_DIR), &dir] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let mut settings = settings.clone();
        let labels = settings
            .entry("labels")
            .or_insert_with(|| serde_json::json!({}));
        labels[SCOPE_LABEL] = serde_json::Value::String(self.scope.clone());
        let path = dir.join("config.json");
        std::fs::write(&path, serde_json::to_string(&settings).unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        self.configs.borrow_mut().push(path.clone());
        path
    }

    /// The configuration of a shim started on this host: the test image, and `extra`.
    pub fn host_config(&self, extra: serde_json::Value) -> PathBuf {
        let mut settings = serde_json::Map::new();
        settings.insert("image".into(), AGENT_IMAGE.into());
        if let serde_json::Value::Object(extra) = extra {
            settings.extend(extra);
        }
        self.config_file(&settings)
    }

    /// `gc --json`, scoped to this run's siblings.
    pub fn gc(&self, dry_run: bool) -> serde_json::Value {
        let mut cmd = Command::new(shim_bin());
        cmd.args(["gc", "--json", "--label", &self.scope_filter()]);
        if dry_run {
            cmd.arg("--dry-run");
        }
        let out = cmd.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "gc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The agent's `--cgroups_root` for this run: not Mesos's default, so a test never touches a
    /// real agent's `mesos/` cgroups, and the shim is shown to follow any root.
    pub fn cgroups_root(&self) -> String {
        format!("shim-it-{}", self.container_id)
    }

    /// The path of this run's Mesos container cgroup in one controller's hierarchy.
    pub fn mesos_cgroup(&self, controller: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(self.cgroups_root())
            .join(&self.container_id)
    }

    /// The linux launcher's destroy of this run's container: (exit status, what it printed).
    pub fn destroy(&self) -> (i32, String) {
        let root = self.cgroups_root();
        self.standin_agent(
            &["-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"],
            &["destroy", &root, &self.container_id],
        )
    }

    /// One command of a new stand-in agent container on this run's work_dir, as a restarted agent
    /// runs (`--pid=host`, the work_dir at the same path): (exit status, what it printed).
    fn standin_agent(&self, docker_args: &[&str], command: &[&str]) -> (i32, String) {
        let wd = self.work_dir.display().to_string();
        let bind = format!("{wd}:{wd}");
        let mut args = vec!["run", "--rm", "--pid=host", "-v", &bind];
        args.extend(docker_args);
        args.extend([AGENT_IMAGE, "/standin-agent.sh", command[0], &wd]);
        args.extend(&command[1..]);
        let out = self.docker(&args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim().to_string(),
        )
    }

    /// The host path of the socket of this run's daemon.
    pub fn socket(&self) -> String {
        self.daemon
            .as_deref()
            .and_then(|h| h.strip_prefix("unix://"))
            .unwrap_or("/var/run/docker.sock")
            .to_string()
    }

    /// `key=value` of this run's scope label.
    pub fn scope_filter(&self) -> String {
        format!("{SCOPE_LABEL}={}", self.scope)
    }

    pub fn sandbox(&self) -> PathBuf {
        self.work_dir.join(format!(
            "slaves/{}/frameworks/{}/executors/{}/runs/{}",
            self.agent_id, self.framework_id, self.executor_id, self.container_id
        ))
    }

    pub fn meta(&self) -> PathBuf {
        self.work_dir.join(format!(
            "meta/slaves/{}/frameworks/{}/executors/{}/runs/{}",
            self.agent_id, self.framework_id, self.executor_id, self.container_id
        ))
    }

    pub fn forked_pid_path(&self) -> PathBuf {
        self.meta().join("pids/forked.pid")
    }

    pub fn sibling_name(&self) -> String {
        format!("executor-mesos-{}", self.container_id)
    }

    /// Starts a stand-in agent container that launches this run's executor.
    pub fn start_agent(&self, agent: &Agent) -> String {
        let name = format!("agent-{}-{}", self.container_id, self.agents.borrow().len());
        let host_wd = self.work_dir.display().to_string();
        let wd = agent
            .work_dir_in_container
            .clone()
            .unwrap_or_else(|| host_wd.clone());
        let mut args: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--name".into(),
            name.clone(),
            "--net=host".into(),
        ];
        match (&agent.pid_mode, agent.pid_host) {
            (Some(mode), _) => args.push(format!("--pid={mode}")),
            (None, true) => args.push("--pid=host".into()),
            (None, false) => {}
        }
        args.extend([
            "-v".into(),
            format!("{}:{}", self.socket(), agent.socket_at),
            "-v".into(),
            format!("{host_wd}:{wd}"),
        ]);
        if agent.bind_shim {
            args.extend([
                "-v".into(),
                format!("{}:{}:ro", shim_bin().display(), agent.executor_path()),
            ]);
        }
        if let Some(task) = &agent.docker_task {
            args.extend([
                "-e".into(),
                "CONTAINERIZER=docker".into(),
                "-e".into(),
                format!("TASK_IMAGE={AGENT_IMAGE}"),
                "-e".into(),
                format!("TASK_COMMAND={task}"),
            ]);
        }
        args.extend(["-e".into(), format!("LAUNCHER_DIR={}", agent.launcher_dir)]);
        for volume in &agent.volumes {
            args.extend(["-v".into(), volume.clone()]);
        }
        args.extend(agent.run_args.iter().cloned());
        let file = self.config_file(&agent.config);
        args.extend(["-v".into(), format!("{}:{CONFIG_PATH}:ro", file.display())]);
        if let Some(limit) = agent.linux_launcher {
            args.extend([
                "-v".into(),
                "/sys/fs/cgroup:/sys/fs/cgroup:rw".into(),
                "-e".into(),
                "LAUNCHER=linux".into(),
                "-e".into(),
                format!("CGROUPS_ROOT={}", self.cgroups_root()),
                "-e".into(),
                format!("MEMORY_LIMIT={limit}"),
            ]);
        }
        args.extend([
            "-e".into(),
            format!("AGENT_GENERATION={}", agent.generation),
        ]);
        args.extend([
            "-e".into(),
            format!("CHECKPOINT={}", if agent.checkpoint { 1 } else { 0 }),
        ]);
        for (k, v) in &agent.env {
            args.extend(["-e".into(), format!("{k}={v}")]);
        }
        args.push(agent.image.to_string());
        if agent.supervised {
            args.extend([
                "sh".into(),
                "-c".into(),
                "/standin-agent.sh \"$@\" & exec sleep 2147483647".into(),
                "supervisor".into(),
            ]);
        } else {
            args.push("/standin-agent.sh".into());
        }
        args.extend(["launch".into(), agent.work_dir_named.clone().unwrap_or(wd)]);
        args.extend([
            self.agent_id.clone(),
            self.framework_id.clone(),
            self.executor_id.clone(),
            self.container_id.clone(),
        ]);
        args.extend(agent.executor_args.iter().cloned());
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.docker_ok(&refs);
        self.agents.borrow_mut().push(name.clone());
        name
    }

    /// Launches this run's executor from the running agent container `agent` (started by
    /// another run of the same work_dir), as a second executor of the same agent.
    pub fn launch_in(&self, agent: &str, executor_args: &[&str]) {
        let wd = self.work_dir.display().to_string();
        let mut args = vec![
            "exec",
            "-d",
            agent,
            "/standin-agent.sh",
            "launch",
            &wd,
            &self.agent_id,
            &self.framework_id,
            &self.executor_id,
            &self.container_id,
            "--launcher_dir=/usr/libexec/mesos",
        ];
        args.extend(executor_args);
        self.docker_ok(&args);
    }

    /// Removes container `name` with this run's containers, however the test ends.
    pub fn remove_on_drop(&self, name: &str) {
        self.agents.borrow_mut().push(name.to_string());
    }

    /// The posix launcher's destroy of this run's container, by the live agent in container
    /// `agent`: SIGKILL of the session it forked (the shim's). What it printed.
    pub fn destroy_posix(&self, agent: &str) -> String {
        let wd = self.work_dir.display().to_string();
        self.docker_ok(&[
            "exec",
            agent,
            "/standin-agent.sh",
            "destroy-posix",
            &wd,
            &self.container_id,
        ])
    }

    pub fn kill_agent(&self, name: &str) {
        self.docker_ok(&["kill", "--signal", "KILL", name]);
        wait_until(
            &format!("agent {name} is dead"),
            Duration::from_secs(20),
            || self.docker_ok(&["inspect", "-f", "{{.State.Running}}", name]) == "false",
        );
    }

    pub fn agent_logs(&self, name: &str) -> String {
        let out = self.docker(&["logs", name]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// A restarted agent's recovery: (exit status, what it printed).
    pub fn recover(&self) -> (i32, String) {
        self.standin_agent(&[], &["recover"])
    }

    /// A restarted docker containerizer's recovery: an executor is alive only if its forked.pid
    /// lives and its libprocess address accepts a connection.
    pub fn recover_docker(&self) -> (i32, String) {
        self.standin_agent(&["--net=host", "-e", "CONTAINERIZER=docker"], &["recover"])
    }

    /// The docker containerizer's task container of this run.
    pub fn task_container(&self) -> String {
        format!("mesos-{}", self.container_id)
    }

    /// Whether the task container runs.
    pub fn task_running(&self) -> bool {
        self.docker(&[
            "inspect",
            "-f",
            "{{.State.Running}}",
            &self.task_container(),
        ])
        .stdout
        .starts_with(b"true")
    }

    /// Lines of the task's output in the sandbox (through the docker executor).
    pub fn task_lines(&self) -> usize {
        self.read(self.sandbox().join("stdout"))
            .map(|s| s.lines().filter(|l| l.starts_with("task tick")).count())
            .unwrap_or(0)
    }

    /// A record the stand-in executor writes in the sandbox as it starts (`executor.argv`,
    /// `executor.env`), once it is there: the sibling's init starts the executor a moment after
    /// the sibling is checkpointed.
    pub fn executor_file(&self, name: &str) -> String {
        let path = self.sandbox().join(name);
        wait_until(
            &format!("the executor wrote {name}"),
            Duration::from_secs(10),
            || path.exists(),
        );
        self.read(&path).unwrap()
    }

    /// Waits until the stand-in executor handles signals (it writes `executor.pid` once its
    /// handlers are set): a signal sent before would find it as it would the stock executor, not
    /// yet listening.
    pub fn wait_executor_ready(&self) {
        self.executor_file("executor.pid");
    }

    /// What the shim (and the sibling's init) wrote to the sandbox's stderr so far.
    pub fn stderr(&self) -> String {
        self.read(self.sandbox().join("stderr")).unwrap_or_default()
    }

    pub fn read(&self, path: impl AsRef<Path>) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }

    pub fn forked_pid(&self) -> Option<u32> {
        self.read(self.forked_pid_path())
            .and_then(|s| s.trim().parse().ok())
    }

    /// The sibling's host pid while it runs.
    pub fn sibling_pid(&self) -> Option<u32> {
        let out = self.docker(&[
            "inspect",
            "-f",
            "{{.State.Running}} {{.State.Pid}}",
            &self.sibling_name(),
        ]);
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        text.strip_prefix("true ")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p > 0)
    }

    /// The sibling's mounts as `(source, destination, read-write)`, in the order Docker lists them.
    pub fn sibling_mounts(&self) -> Vec<(String, String, bool)> {
        let json = self.docker_ok(&["inspect", "-f", "{{json .Mounts}}", &self.sibling_name()]);
        let mounts: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
        mounts
            .iter()
            .map(|m| {
                (
                    m["Source"].as_str().unwrap_or_default().to_string(),
                    m["Destination"].as_str().unwrap_or_default().to_string(),
                    m["RW"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }

    /// What a sibling of this run gets by default: its sandbox, read-write, and the shim as its
    /// init, read-only, from `shim` (the host file), in that order.
    pub fn default_mounts(&self, shim: &Path) -> Vec<(String, String, bool)> {
        let sandbox = self.sandbox().display().to_string();
        vec![
            (sandbox.clone(), sandbox, true),
            (
                shim.display().to_string(),
                "/run/mesos-executor-shim/init".to_string(),
                false,
            ),
        ]
    }

    pub fn sibling_id(&self) -> Option<String> {
        let out = self.docker(&["inspect", "-f", "{{.Id}}", &self.sibling_name()]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Every container, running or not, whose name is the sibling's.
    pub fn containers_named_sibling(&self) -> Vec<String> {
        let filter = format!("name=^{}$", self.sibling_name());
        let out = self.docker_ok(&[
            "ps",
            "-a",
            "--filter",
            &filter,
            "--format",
            "{{.Names}} {{.Status}}",
        ]);
        out.lines().map(str::to_string).collect()
    }

    pub fn stdout_lines(&self) -> usize {
        self.read(self.sandbox().join("stdout"))
            .map(|s| s.lines().filter(|l| l.starts_with("tick")).count())
            .unwrap_or(0)
    }

    /// `--label` arguments that make a container this run's sibling as a shim would label it
    /// (the run's IDs, the scope), and `extra`.
    pub fn sibling_labels(&self, extra: &[String]) -> Vec<String> {
        let mut labels = vec![
            "io.mesos-executor-shim.managed=true".to_string(),
            format!("io.mesos-executor-shim.agent-id={}", self.agent_id),
            format!("io.mesos-executor-shim.framework-id={}", self.framework_id),
            format!("io.mesos-executor-shim.executor-id={}", self.executor_id),
            format!("io.mesos-executor-shim.container-id={}", self.container_id),
            format!(
                "io.mesos-executor-shim.work-dir={}",
                self.work_dir.display()
            ),
            self.scope_filter(),
        ];
        labels.extend(extra.iter().cloned());
        labels
            .into_iter()
            .flat_map(|label| ["--label".to_string(), label])
            .collect()
    }

    /// A container under the sibling's name with this run's labels, as a launch that died
    /// half-way leaves it: `verb` `create` (never started) or `run` (ran and exited, no
    /// auto-remove). Made as a shim makes a sibling, which `ps` and `gc` check (its command the
    /// init's, `<path> mesos-executor-shim-init`, and the run's sandbox bound at its path), though
    /// its init is `true`. `shim` is the label naming the (dead) shim that made it. Returns its ID.
    pub fn leftover_sibling(&self, verb: &str, shim: &str) -> String {
        let sandbox = self.sandbox();
        std::fs::create_dir_all(&sandbox).unwrap();
        let sandbox = sandbox.display().to_string();
        let mut args = vec![
            verb.to_string(),
            "--name".into(),
            self.sibling_name(),
            "--mount".into(),
            format!("type=bind,source={sandbox},target={sandbox}"),
            "--entrypoint".into(),
            "/bin/true".into(),
        ];
        args.extend(self.sibling_labels(&[format!("io.mesos-executor-shim.shim={shim}")]));
        args.extend([AGENT_IMAGE.to_string(), "mesos-executor-shim-init".into()]);
        self.docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
        self.sibling_id().expect("the leftover exists")
    }

    /// Waits until no container carries the sibling's name.
    pub fn wait_sibling_gone(&self) {
        wait_until(
            &format!("{} is removed", self.sibling_name()),
            Duration::from_secs(15),
            || self.containers_named_sibling().is_empty(),
        );
    }

    /// Waits until the stand-in agent `agent` recorded its executor's status, and returns it.
    pub fn wait_agent_status(&self, agent: &str) -> i32 {
        wait_until(
            &format!(
                "the agent saw its executor exit\n{}",
                self.diagnostics(agent)
            ),
            Duration::from_secs(30),
            || self.agent_status().is_some(),
        );
        self.agent_status().unwrap()
    }

    /// Where the stand-in agent keeps its own records of this run (never under meta/, which
    /// exists only when the run checkpoints).
    pub fn standin_records(&self) -> PathBuf {
        self.work_dir.join("standin").join(&self.container_id)
    }

    /// The executor status the stand-in agent recorded.
    pub fn agent_status(&self) -> Option<i32> {
        self.read(self.standin_records().join("standin.status"))
            .and_then(|s| s.trim().parse().ok())
    }

    /// The pid the stand-in agent forked: the launch helper's under the Mesos containerizer of a
    /// 1.x agent, else the executor's (the shim's, when the shim is installed).
    pub fn launched_pid(&self) -> Option<u32> {
        self.read(self.standin_records().join("standin.launched"))
            .and_then(|s| s.trim().parse().ok())
    }

    /// The stand-in agent process's own pid.
    pub fn agent_pid(&self) -> Option<u32> {
        self.read(self.standin_records().join("agent.pid"))
            .and_then(|s| s.trim().parse().ok())
    }

    /// The executor's pid (the shim's, when the shim is installed), however it was forked.
    pub fn shim_pid(&self) -> Option<u32> {
        self.read(self.standin_records().join("standin.shim"))
            .and_then(|s| s.trim().parse().ok())
    }

    /// Waits until the sibling runs and forked.pid names its live pid; returns that pid.
    pub fn wait_for_checkpointed_sibling(&self, agent: &str) -> u32 {
        let mut pid = 0;
        wait_until(
            &format!(
                "forked.pid names the running sibling (agent log: see below)\n{}",
                self.diagnostics(agent)
            ),
            Duration::from_secs(30),
            || match (self.sibling_pid(), self.forked_pid()) {
                (Some(s), Some(f)) if s == f => {
                    pid = s;
                    true
                }
                _ => false,
            },
        );
        pid
    }

    pub fn diagnostics(&self, agent: &str) -> String {
        format!(
            "agent log:\n{}\nsandbox stderr:\n{}",
            self.agent_logs(agent),
            self.read(self.sandbox().join("stderr")).unwrap_or_default()
        )
    }

    /// Asserts that the executor's output keeps growing in the sandbox.
    pub fn assert_output_grows(&self) {
        let before = self.stdout_lines();
        wait_until(
            "the executor's output grows in the sandbox",
            Duration::from_secs(10),
            || self.stdout_lines() >= before + 3,
        );
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let mut names = self.agents.borrow().clone();
        names.push(self.sibling_name());
        names.push(self.task_container());
        let mut args = vec!["rm", "-f"];
        args.extend(names.iter().map(String::as_str));
        let _ = self.docker(&args);
        // A docker executor killed in the middle of `docker run` leaves its create request to the
        // daemon, which may land after the first removal: once its sibling is gone, once more.
        let _ = self.docker(&["rm", "-f", &self.task_container()]);
        let _ = std::fs::remove_dir_all(&self.work_dir);
        for file in self.configs.borrow().iter() {
            let _ = std::fs::remove_dir_all(file.parent().unwrap());
        }
        remove_cgroup_trees(&self.cgroups_root());
    }
}

/// Starts `run`'s agent with the shim held at the pause point `step` (test builds with the
/// `failpoints` feature only), and waits until the shim says it is held there. Returns the
/// agent container's name.
pub fn start_paused_at(run: &Run, step: &str) -> String {
    if !cfg!(feature = "failpoints") {
        panic!(
            "this test holds a launch at a pause point: run the README's test command \
             (cargo test --locked --features failpoints)"
        );
    }
    let agent = run.start_agent(&Agent::with_shim().set("pause_at", step.into()));
    wait_until(
        &format!("the shim paused at {step}\n{}", run.diagnostics(&agent)),
        Duration::from_secs(30),
        || {
            run.read(run.sandbox().join("stderr"))
                .unwrap_or_default()
                .contains(&format!("point=\"{step}\""))
        },
    );
    agent
}

/// Waits until the process `pid` has started `n` children one after another (the ticking task's
/// `sleep`s): the task runs on, with no daemon to read it.
pub fn wait_children(pid: u32, n: usize) {
    let mut seen = std::collections::BTreeSet::new();
    wait_until(
        "the task ticks on while the daemon is down",
        Duration::from_secs(30),
        || {
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
            seen.extend(
                children
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_string),
            );
            seen.len() >= n
        },
    );
}

/// `docker compose` (v2) where the CLI has it, else `docker-compose` (v1).
pub fn compose_command() -> Vec<String> {
    let works = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("docker", &["compose", "version"]) {
        vec!["docker".into(), "compose".into()]
    } else if works("docker-compose", &["version"]) {
        vec!["docker-compose".into()]
    } else {
        panic!(
            "neither `docker compose` nor `docker-compose` runs: install one (Debian: docker-compose; \
             .ci/run installs it)"
        )
    }
}
