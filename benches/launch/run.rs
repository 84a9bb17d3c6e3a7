//! One executor run laid out as the agent lays it out, the shim forked as the agent forks it, and
//! the wait for forked.pid to name the sibling.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use mesos_executor_shim::config::Settings;
use mesos_executor_shim::mesos::container::{LaunchContext, SiblingSecurity};
use mesos_executor_shim::mesos::executor::ExecutorKind;
use mesos_executor_shim::mesos::layout::{IdVariables, RunLayout};
use mesos_executor_shim::proc::monotonic_ns;
use mesos_executor_shim::sibling::placement::INIT_MOUNT;
use mesos_executor_shim::sibling::spec::{self, SiblingSpec, SpecInputs};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

use crate::daemon::PrivateDaemon;
use crate::IMAGE;

const PLACEHOLDER_PID: &str = "4194305";

pub fn shim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mesos-executor-shim"))
}

/// One executor run laid out as the agent lays it out, with the agent's forked.pid in place.
pub struct BenchRun {
    pub layout: RunLayout,
    pub container_id: String,
    root: PathBuf,
    /// What the agent wrote in forked.pid: a placeholder, or, for a shim, the shim's pid (the
    /// process the agent forked), which the shim requires before it replaces it.
    pub agent_wrote: std::cell::Cell<u32>,
}

impl BenchRun {
    pub fn new(root: &Path, tag: &str, n: usize) -> BenchRun {
        let container_id = format!("bench-{tag}-{n}-{}", std::process::id());
        let sandbox = root.join(format!(
            "slaves/S-bench/frameworks/F-bench/executors/app.bench.{tag}.{n}/runs/{container_id}"
        ));
        std::fs::create_dir_all(&sandbox).unwrap();
        let layout = RunLayout::from_sandbox(sandbox.as_os_str(), &IdVariables::default()).unwrap();
        std::fs::create_dir_all(layout.forked_pid_path().parent().unwrap()).unwrap();
        std::fs::write(layout.forked_pid_path(), PLACEHOLDER_PID).unwrap();
        BenchRun {
            layout,
            container_id,
            root: root.to_path_buf(),
            agent_wrote: std::cell::Cell::new(PLACEHOLDER_PID.parse().unwrap()),
        }
    }

    pub fn env(&self) -> Vec<(String, String)> {
        let l = &self.layout;
        vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("MESOS_DIRECTORY".into(), l.sandbox.display().to_string()),
            ("MESOS_SANDBOX".into(), l.sandbox.display().to_string()),
            ("MESOS_FRAMEWORK_ID".into(), l.framework_id.clone()),
            ("MESOS_EXECUTOR_ID".into(), l.executor_id.clone()),
            ("MESOS_SLAVE_ID".into(), l.agent_id.clone()),
            ("MESOS_CHECKPOINT".into(), "1".into()),
            ("LIBPROCESS_PORT".into(), "0".into()),
        ]
    }

    /// The sibling as the shim makes it (less the shim's own identity label).
    pub fn spec(&self) -> SiblingSpec {
        let settings = Settings::default();
        let env: Vec<(OsString, OsString)> = self
            .env()
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        SiblingSpec::build(&SpecInputs {
            run: &self.layout,
            kind: ExecutorKind::Command,
            settings: &settings,
            image: IMAGE.into(),
            executor: vec![
                "/usr/libexec/mesos/mesos-executor".into(),
                "--tick_interval=5".into(),
            ],
            env: spec::executor_environment(&env).0,
            // What the shim gives its sibling here, so that every path creates the same body.
            security: SiblingSecurity::of(&LaunchContext::read().unwrap(), &[]),
            init_path: INIT_MOUNT.into(),
            init_host_file: Some(shim_bin()),
            sandbox_host: self.layout.sandbox.clone(),
            sandbox_aliases: Vec::new(),
            volumes: Vec::new(),
            docker_socket: None,
            work_dir_host: self.root.clone(),
            forked_pid_host: self.layout.forked_pid_path(),
            checkpointing: true,
            shim: None,
            agent: None,
            output_reader: None,
            cgroup_parent: None,
            auto_remove: true,
        })
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.layout.sandbox.join("stderr")).unwrap_or_default()
    }

    /// The pid forked.pid holds now.
    pub fn checkpoint_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.layout.forked_pid_path())
            .ok()?
            .parse()
            .ok()
    }
}

/// The siblings of `runs`, by name.
pub fn sibling_names<'a>(runs: impl IntoIterator<Item = &'a BenchRun>) -> Vec<String> {
    runs.into_iter().map(|r| r.layout.sibling_name()).collect()
}

/// Forks as the agent does: the agent closes every descriptor but stdio in what it forks; so does
/// the harness (cargo's jobserver pipe would be counted as the shim's otherwise).
pub fn close_inherited_fds(cmd: &mut Command) {
    // SAFETY: between fork and exec the child makes one system call, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
}

/// Forks the shim on this host as the agent does, and checkpoints its pid right after the fork,
/// as a 1.x agent does (the shim waits for that write before it replaces it).
pub fn spawn_shim(run: &BenchRun) -> (Child, u64) {
    let forked_pid = run.layout.forked_pid_path();
    let _ = std::fs::remove_file(&forked_pid);
    // The sandbox logger's files, as the agent opens them for an executor by default.
    let stdout = std::fs::File::create(run.layout.sandbox.join("stdout")).unwrap();
    let stderr = std::fs::File::create(run.layout.sandbox.join("stderr")).unwrap();
    let mut cmd = Command::new(shim_bin());
    cmd.arg0("mesos-executor")
        .arg("--tick_interval=5")
        .env_clear()
        .envs(run.env())
        .current_dir(&run.layout.sandbox)
        .stdout(stdout)
        .stderr(stderr);
    close_inherited_fds(&mut cmd);
    let spawned = monotonic_ns();
    let child = cmd.spawn().unwrap();
    let temp = forked_pid.with_file_name("agent-tmp");
    std::fs::write(&temp, child.id().to_string()).unwrap();
    std::fs::rename(&temp, &forked_pid).unwrap();
    run.agent_wrote.set(child.id());
    (child, spawned)
}

/// Waits, without polling, until forked.pid of each of `runs` holds a new pid: returns when each
/// did, and the pid. Panics after `patience` (or if `alive` says a launcher died).
pub fn wait_for_renames(
    runs: &[&BenchRun],
    patience: Duration,
    mut alive: impl FnMut(usize) -> Result<(), String>,
) -> Vec<(Instant, u32)> {
    wait_for_renames_or_exits(runs, patience, |i| match alive(i) {
        Ok(()) => false,
        Err(e) => panic!("launch {i} failed: {e}"),
    })
    .into_iter()
    .map(Option::unwrap)
    .collect()
}

/// [`wait_for_renames`], where a launch whose shim has exited (`exited(i)`) is given up on and
/// counted (`None`) instead of failing the harness: a burst that does not all land is a figure.
pub fn wait_for_renames_or_exits(
    runs: &[&BenchRun],
    patience: Duration,
    mut exited: impl FnMut(usize) -> bool,
) -> Vec<Option<(Instant, u32)>> {
    let inotify = Inotify::init(InitFlags::IN_CLOEXEC | InitFlags::IN_NONBLOCK).unwrap();
    for run in runs {
        inotify
            .add_watch(
                run.layout.forked_pid_path().parent().unwrap(),
                AddWatchFlags::IN_MOVED_TO | AddWatchFlags::IN_CLOSE_WRITE,
            )
            .unwrap();
    }
    let mut done: Vec<Option<(Instant, u32)>> = vec![None; runs.len()];
    let mut gone = vec![false; runs.len()];
    let deadline = Instant::now() + patience;
    loop {
        for (i, run) in runs.iter().enumerate() {
            if done[i].is_some() || gone[i] {
                continue;
            }
            match run.checkpoint_pid() {
                Some(pid) if pid != run.agent_wrote.get() => done[i] = Some((Instant::now(), pid)),
                _ => gone[i] = exited(i),
            }
        }
        if done.iter().zip(&gone).all(|(d, g)| d.is_some() || *g) {
            return done;
        }
        assert!(
            Instant::now() < deadline,
            "launches did not checkpoint within {patience:?}"
        );
        // Sleeps in the kernel until something is renamed or written in a pids directory.
        let mut fds = [nix::poll::PollFd::new(
            std::os::fd::AsFd::as_fd(&inotify),
            nix::poll::PollFlags::POLLIN,
        )];
        let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(1000u16));
        let _ = inotify.read_events();
    }
}

/// `name -> host pid` of those of `names` that run, asked a hundred at a time.
pub fn running_pids(
    daemon: &PrivateDaemon,
    names: &[String],
) -> std::collections::HashMap<String, u32> {
    let mut running = std::collections::HashMap::new();
    for chunk in names.chunks(100) {
        let mut args = vec![
            "inspect",
            "-f",
            "{{.Name}} {{.State.Running}} {{.State.Pid}}",
        ];
        args.extend(chunk.iter().map(String::as_str));
        // Inspect fails if one is missing; it still prints the others.
        let out = daemon
            .try_docker(&args, Duration::from_secs(180))
            .expect("docker inspect: the private daemon hangs");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut f = line.split_whitespace();
            if let (Some(name), Some("true"), Some(Ok(pid))) =
                (f.next(), f.next(), f.next().map(str::parse))
            {
                running.insert(name.trim_start_matches('/').to_string(), pid);
            }
        }
    }
    running
}

/// Whether forked.pid of `run` names its sibling's running process.
pub fn checkpointed(daemon: &PrivateDaemon, run: &BenchRun) -> bool {
    let name = run.layout.sibling_name();
    let running = running_pids(daemon, std::slice::from_ref(&name));
    running
        .get(&name)
        .is_some_and(|pid| Some(*pid) == run.checkpoint_pid())
}
