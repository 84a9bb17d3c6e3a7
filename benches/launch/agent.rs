//! The whole launch in an agent container, as in production: a container of the test agent image
//! with the shim bind-mounted over `/usr/libexec/mesos/mesos-executor`, `--pid=host`, the daemon's
//! socket and the work_dir, the operator's (empty) configuration file; the stand-in agent in it
//! forks the Mesos 1.x launch helper, which forks the executor. The shim's CPU time is read once
//! it has re-executed into its waiting mode: everything it did for the launch is then counted,
//! the guard window, the sweep, the re-exec and its lookups of the agent container (mount table,
//! the inspect of its own container) included. A control launch through the same helper, whose
//! executor only stops itself, measures what the stand-in's own steps before the exec cost.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mesos_executor_shim::relay::handover::WAIT_ARG;

use crate::run::{shim_bin, sibling_names, BenchRun};
use crate::{procfs, Bench, IMAGE};

/// Where the relay reads its configuration, and no other file.
const CONFIG_PATH: &str = "/etc/mesos-executor-shim/config.json";

#[derive(Default)]
pub struct WholeLaunch {
    /// The shim's CPU from its fork by the launch helper to its waiting mode, ns.
    pub shim_cpu: Vec<u64>,
    /// The CPU of the children each shim reaped (cutime + cstime of `stat`), in clock ticks.
    pub reaped_ticks: Vec<u64>,
    /// The sibling's init, from its start to the same moment, ns.
    pub init_cpu: Vec<u64>,
    /// The control: the helper's fork to an executor that stops itself at once, ns.
    pub control_cpu: Vec<u64>,
    /// Spawn of `docker exec` to the shim in its waiting mode.
    pub to_waiting: Vec<Duration>,
}

struct AgentContainer {
    name: String,
    control_dir: PathBuf,
}

pub fn measure(bench: &Bench, launches: usize) -> WholeLaunch {
    eprintln!("whole launch in an agent container: {launches} launches and {launches} controls");
    let agent = start_agent(bench);
    let mut w = WholeLaunch::default();
    let mut runs = Vec::new();
    for i in 0..launches {
        let control = BenchRun::new(&bench.root, "control", i);
        let pid = launch_in_agent(bench, &agent, &control, Some(&agent.control_dir));
        let stopped = wait_until(Duration::from_secs(60), || is_stopped(pid));
        assert!(stopped, "the control executor never stopped itself");
        w.control_cpu.extend(procfs::cpu_ns(pid));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let run = BenchRun::new(&bench.root, "agent", i);
        let spawned = Instant::now();
        let shim = launch_in_agent(bench, &agent, &run, None);
        // One launch at a time in the daemon: the next starts once this one has checkpointed.
        let helper = bench
            .root
            .join("standin")
            .join(&run.container_id)
            .join("standin.launched");
        let landed = wait_until(Duration::from_secs(60), || {
            let helper: Option<u32> = std::fs::read_to_string(&helper)
                .ok()
                .and_then(|p| p.trim().parse().ok());
            let pid = run.checkpoint_pid();
            helper.is_some() && pid.is_some_and(|p| p != run.agent_wrote.get() && Some(p) != helper)
        });
        assert!(
            landed,
            "the shim in the agent container did not checkpoint:\n{}",
            run.stderr()
        );
        runs.push((run, shim, spawned));
    }
    for (run, shim, spawned) in &runs {
        let waiting = wait_until(Duration::from_secs(120), || {
            procfs::arg0(*shim).is_some_and(|a| a == WAIT_ARG)
        });
        assert!(
            waiting,
            "the shim never reached its waiting mode:\n{}",
            run.stderr()
        );
        w.to_waiting.push(spawned.elapsed());
        w.shim_cpu.push(procfs::cpu_ns(*shim).unwrap());
        w.reaped_ticks.push(procfs::reaped_ticks(*shim).unwrap());
        w.init_cpu
            .extend(run.checkpoint_pid().and_then(procfs::cpu_ns));
    }
    bench
        .daemon
        .remove_gradually(&sibling_names(runs.iter().map(|(r, _, _)| r)));
    bench.daemon.remove_gradually(&[agent.name]);
    w
}

/// The agent container, and a launcher directory for the control: the stand-in launch helper
/// and an executor that stops itself.
fn start_agent(bench: &Bench) -> AgentContainer {
    use std::os::unix::fs::PermissionsExt;
    let config_dir = Path::new(crate::CONFIG_DIR).join(format!("{}-agent", std::process::id()));
    std::fs::create_dir_all(&config_dir).unwrap();
    crate::daemon::remove_at_exit(&config_dir);
    std::fs::set_permissions(&config_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = config_dir.join("config.json");
    std::fs::write(&config, "{}").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let control_dir = bench.root.join("control-launcher");
    std::fs::create_dir_all(&control_dir).unwrap();
    let helper = bench.repo.join("docker/test/standin-launch-helper.sh");
    std::fs::copy(helper, control_dir.join("mesos-containerizer")).unwrap();
    std::fs::write(
        control_dir.join("mesos-executor"),
        "#!/bin/sh\nkill -STOP $$\n",
    )
    .unwrap();
    for f in ["mesos-containerizer", "mesos-executor"] {
        std::fs::set_permissions(control_dir.join(f), std::fs::Permissions::from_mode(0o755))
            .unwrap();
    }
    let name = format!("mesos-executor-shim-bench-agent-{}", std::process::id());
    let root = bench.root.display().to_string();
    let socket = bench.socket().display().to_string();
    let shim = shim_bin().display().to_string();
    bench.daemon.docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--net=host",
        "--pid=host",
        "-v",
        &format!("{socket}:/var/run/docker.sock"),
        "-v",
        &format!("{root}:{root}"),
        "-v",
        &format!("{shim}:/usr/libexec/mesos/mesos-executor:ro"),
        "-v",
        &format!("{}:{CONFIG_PATH}:ro", config.display()),
        IMAGE,
        "sleep",
        "2147483647",
    ]);
    AgentContainer { name, control_dir }
}

/// Has the stand-in agent in `agent` launch `run` (from `launcher_dir`, or the stock one), as
/// a 1.x agent does; returns the host pid of what its launch helper forked, once it knows it.
fn launch_in_agent(
    bench: &Bench,
    agent: &AgentContainer,
    run: &BenchRun,
    launcher_dir: Option<&Path>,
) -> u32 {
    let l = &run.layout;
    let root = bench.root.display().to_string();
    let launcher = launcher_dir.map_or("/usr/libexec/mesos".into(), |d| d.display().to_string());
    let env = format!("LAUNCHER_DIR={launcher}");
    bench.daemon.docker(&[
        "exec",
        "-d",
        "-e",
        &env,
        &agent.name,
        "/standin-agent.sh",
        "launch",
        &root,
        &l.agent_id,
        &l.framework_id,
        &l.executor_id,
        &run.container_id,
    ]);
    let records = bench
        .root
        .join("standin")
        .join(&run.container_id)
        .join("standin.shim");
    let mut pid = None;
    let known = wait_until(Duration::from_secs(60), || {
        pid = std::fs::read_to_string(&records)
            .ok()
            .and_then(|p| p.trim().parse().ok());
        pid.is_some()
    });
    assert!(
        known,
        "the stand-in launch helper never named what it forked"
    );
    pid.unwrap()
}

fn is_stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('T'))
        })
        .unwrap_or(false)
}

/// Checks `done` every 20 ms until it holds (true) or `patience` passes (false).
fn wait_until(patience: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + patience;
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}
