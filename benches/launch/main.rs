//! Launch cost of the shim against the physical floor, measured in one run on one daemon and
//! image, and written to BENCHMARKS.md. Needs dockerd and the docker CLI, `curl`, and a static
//! busybox (as the tests).
//!
//!     cargo bench --locked --bench launch
//!
//! BENCH_LAUNCHES (default 20) launches per path, BENCH_IDLE_SECS (default 60) of waiting,
//! BENCH_BURST (default 1000) launches at once, whose shims are then the waiting ones.
//!
//! Everything runs against a Docker daemon of the harness's own (its own socket, data and exec
//! roots; see `daemon.rs`), started and wiped by the harness: a thousand containers never touch
//! the host's daemon. The floor is what the daemon itself must do for a launch, asked with
//! nothing of the shim's around it (`floor.rs`). Nothing here busy-polls: a launch's end is the
//! rename of forked.pid, seen through inotify.

mod agent;
mod burst;
mod daemon;
mod floor;
mod latency;
#[path = "../../tests/common/mount_namespace.rs"]
mod mount_namespace;
#[path = "../../tests/common/processes.rs"]
mod processes;
mod procfs;
mod report;
mod run;
mod targets;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use daemon::PrivateDaemon;
use report::{mib, percentile};

const IMAGE: &str = "mesos-executor-shim-test/agent:latest";
/// The shims' configuration: in a directory root owns and nobody else writes, as the shim
/// requires of its file. At debug level the shim logs each request's round trip, which is how its
/// own time is told from the daemon's.
const CONFIG_DIR: &str = "/run/mesos-executor-shim-bench";
/// Where the relay reads its configuration, and no other file.
const CONFIG_PATH: &str = "/etc/mesos-executor-shim/config.json";

/// What every section works with.
pub struct Bench {
    daemon: PrivateDaemon,
    root: PathBuf,
    scratch: PathBuf,
    repo: PathBuf,
    runtime: tokio::runtime::Runtime,
    local: tokio::task::LocalSet,
}

impl Bench {
    fn socket(&self) -> PathBuf {
        self.daemon.roots.socket.clone()
    }
}

/// Puts the harness, and so every shim it starts on this host, in a mount namespace of its own
/// in which the harness's configuration directory (the image, debug logs, the private daemon) is
/// mounted over the relay's. Called while the harness is one thread.
fn enter_config_namespace(socket: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let dir = Path::new(CONFIG_DIR).join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).unwrap();
    daemon::remove_at_exit(&dir);
    for d in [Path::new(CONFIG_DIR), &dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let file = dir.join("config.json");
    let settings = serde_json::json!({
        "image": IMAGE, "log_level": "debug", "docker_host": format!("unix://{}", socket.display()),
    });
    std::fs::write(&file, settings.to_string()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let target = Path::new(CONFIG_PATH).parent().unwrap();
    std::fs::create_dir_all(target).unwrap();
    mount_namespace::mount_over_in_own_namespace(&dir, target)
        .expect("a mount namespace of its own, with the configuration mounted");
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The one-minute load average now.
fn load() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().next().unwrap_or("?").to_string()
}

/// What it costs the agent to start any process: a static no-op forked as the shim is, from
/// spawn to exit (median of 20) and its CPU time, user + system (median of 20, in nanoseconds),
/// from the growth of the harness's reaped children's rusage over its run.
fn process_start_cost(busybox: &str) -> (Duration, u64) {
    use nix::sys::resource::{getrusage, UsageWho};
    let children_cpu = || {
        let usage = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
        let (user, system) = (usage.user_time(), usage.system_time());
        (user.tv_sec() + system.tv_sec()) as u64 * 1_000_000_000
            + (user.tv_usec() + system.tv_usec()) as u64 * 1000
    };
    let (times, cpu): (Vec<Duration>, Vec<u64>) = (0..20)
        .map(|_| {
            let mut cmd = Command::new(busybox);
            cmd.arg("true");
            run::close_inherited_fds(&mut cmd);
            let (start, before) = (Instant::now(), children_cpu());
            assert!(cmd.status().unwrap().success(), "{busybox} true");
            (start.elapsed(), children_cpu() - before)
        })
        .unzip();
    (percentile(&times, 50.0), percentile(&cpu, 50.0))
}

fn machine(daemon: &PrivateDaemon, load_before: &str, load_after: &str) -> Vec<(String, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = mem
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rustc = Command::new("rustc").arg("--version").output();
    let rustc = rustc
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let version = "engine {{.Server.Version}}, API {{.Server.APIVersion}}";
    vec![
        ("CPU".into(), format!("{model}, {cores} cores")),
        ("memory".into(), format!("{:.1} GiB", mib(mem_kib) / 1024.0)),
        ("kernel".into(), kernel.trim().to_string()),
        (
            "Docker".into(),
            daemon.docker(&["version", "--format", version]) + " (the harness's own daemon)",
        ),
        (
            "storage driver".into(),
            daemon.docker(&["info", "--format", "{{.Driver}}"]),
        ),
        ("rustc".into(), rustc),
        (
            "load (1-minute average; other builds share the machine)".into(),
            format!(
                "{load_before} when the run began, {load_after} at its end (its own thousand curls included)"
            ),
        ),
    ]
}

/// Builds the test images on the host's daemon (kept when current) and copies the agent image
/// into the harness's own daemon, started here.
fn start_daemon(repo: &Path) -> PrivateDaemon {
    let bin = run::shim_bin();
    let built = Command::new("sh")
        .arg(repo.join("docker/test/build-images.sh"))
        .arg(bin)
        .status();
    assert!(
        built.expect("sh").success(),
        "building the images failed: is a Docker daemon running (bash .ci/run starts one)?"
    );
    let daemon = PrivateDaemon::start(&format!("mesos-executor-shim-bench-{}", std::process::id()));
    daemon.load(IMAGE);
    daemon
}

fn main() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let load_before = load();
    let daemon = start_daemon(&repo);
    enter_config_namespace(&daemon.roots.socket);
    let launches = env_number("BENCH_LAUNCHES", 20) as usize;
    let idle_secs = env_number("BENCH_IDLE_SECS", 60);
    let burst_size = env_number("BENCH_BURST", 1000) as usize;
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|b| Path::new(b).exists())
        .expect("a static busybox (Debian: busybox-static)");
    let root = PathBuf::from(format!(
        "/tmp/mesos-executor-shim-bench-{}",
        std::process::id()
    ));
    let scratch = root.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    daemon::remove_at_exit(&root);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bench = Bench {
        daemon,
        root,
        scratch,
        repo,
        runtime,
        local: tokio::task::LocalSet::new(),
    };

    let (launcher, start_cpu) = process_start_cost(busybox);
    let latency = latency::measure(&bench, launches, launcher);
    let whole = agent::measure(&bench, launches);
    let mut bursts: Vec<burst::Burst> = Vec::new();
    for n in [1usize, 10, 50, 100] {
        let mut b = burst::shims_at_once(&bench, n);
        burst::tear_down(&bench, &mut b);
        bursts.push(b);
    }
    let started = Instant::now();
    let mut big = burst::shims_at_once(&bench, burst_size);
    let waiting = burst::waiting(&big, started, idle_secs);
    burst::tear_down(&bench, &mut big);
    bursts.push(big);
    let floor_burst = burst::curl_at_once(&bench, burst_size);
    let load_after = load();

    let mut body = String::new();
    latency::report(&mut body, &latency, launcher, start_cpu);
    let floor_cpu = percentile(&latency.floor_cpu, 50.0);
    report::whole_launch(&mut body, &whole, floor_cpu, start_cpu);
    report::waiting(&mut body, &waiting);
    report::bursts(&mut body, &bursts, &floor_burst);
    report::binary(&mut body, &run::shim_bin());
    let restarts = *bench.daemon.restarts.lock().unwrap();
    let measured = targets::measured(&latency, &waiting, &bursts);
    let machine = machine(&bench.daemon, &load_before, &load_after);
    let head = targets::head(&bench.repo, &machine, &measured, restarts);
    let document = head + &body;
    std::fs::write(bench.repo.join("BENCHMARKS.md"), &document).unwrap();
    println!("{document}");
    let Bench { daemon, .. } = bench;
    daemon.stop();
}
