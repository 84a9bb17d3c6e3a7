//! Launch cost of the shim against the alternatives, measured in one run on one daemon and image,
//! and written to BENCHMARKS.md. Needs a Docker daemon, curl and a static busybox (as the tests).
//!
//!     cargo bench --bench launch
//!
//! BENCH_LAUNCHES (default 20) launches per path, BENCH_IDLE_SECS (default 60) of waiting.
//!
//! Every path launches the same container: the shim's own create body, which the harness builds
//! with the library and hands to curl as JSON and to `docker run` as flags. Latency runs from the
//! spawn of the launching process until forked.pid holds a new pid, which is then checked to be
//! the sibling's live host pid.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mesos_executor_shim::config::Settings;
use mesos_executor_shim::mesos::executor::ExecutorKind;
use mesos_executor_shim::mesos::layout::{IdVariables, RunLayout};
use mesos_executor_shim::sibling::placement::INIT_MOUNT;
use mesos_executor_shim::sibling::spec::{self, SiblingSpec, SpecInputs};

const IMAGE: &str = "mesos-executor-shim-test/agent:latest";
const PLACEHOLDER_PID: &str = "4194305";
const SOCKET: &str = "/var/run/docker.sock";
/// The shims' configuration file: in a directory root owns and nobody else writes, as the shim
/// requires of a file named by EXECUTOR_SHIM_CONFIG.
const CONFIG_DIR: &str = "/run/mesos-executor-shim-bench";

/// Written once: every shim of the run reads the same file while others start.
fn config_file() -> PathBuf {
    static FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    FILE.get_or_init(write_config_file).clone()
}

fn write_config_file() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = Path::new(CONFIG_DIR);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = dir.join(format!("config-{}.json", std::process::id()));
    std::fs::write(
        &file,
        format!(r#"{{"image": "{IMAGE}", "log_level": "warn"}}"#),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    file
}

fn shim_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mesos-executor-shim"))
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker CLI");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// One executor run laid out as the agent lays it out, with the agent's forked.pid in place.
struct BenchRun {
    layout: RunLayout,
    root: PathBuf,
}

impl BenchRun {
    fn new(root: &Path, tag: &str, n: usize) -> BenchRun {
        let container_id = format!("bench-{tag}-{n}-{}", std::process::id());
        let sandbox = root.join(format!(
            "slaves/S-bench/frameworks/F-bench/executors/app.bench.{n}/runs/{container_id}"
        ));
        std::fs::create_dir_all(&sandbox).unwrap();
        let layout = RunLayout::from_sandbox(sandbox.as_os_str(), &IdVariables::default()).unwrap();
        std::fs::create_dir_all(layout.forked_pid_path().parent().unwrap()).unwrap();
        std::fs::write(layout.forked_pid_path(), PLACEHOLDER_PID).unwrap();
        BenchRun {
            layout,
            root: root.to_path_buf(),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
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
    fn spec(&self) -> SiblingSpec {
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
            user: format!("{}:{}", nix::unistd::getuid(), nix::unistd::getgid()),
            init_path: INIT_MOUNT.into(),
            init_host_file: Some(shim_bin()),
            sandbox_host: self.layout.sandbox.clone(),
            sandbox_aliases: Vec::new(),
            volumes: None,
            docker_socket: None,
            work_dir_host: self.root.clone(),
            forked_pid_host: self.layout.forked_pid_path(),
            shim: None,
            agent: None,
            cgroup_parent: None,
            auto_remove: true,
        })
    }

    /// A new pid in forked.pid, if there is one yet.
    fn checkpointed(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.layout.forked_pid_path()).ok()?;
        (text != PLACEHOLDER_PID)
            .then(|| text.parse().ok())
            .flatten()
    }

    fn remove(&self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.layout.sibling_name()])
            .output();
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Path3 {
    Shim,
    DockerCli,
    Floor,
}

impl Path3 {
    fn name(self) -> &'static str {
        match self {
            Path3::Shim => "mesos-executor-shim",
            Path3::DockerCli => "Docker CLI (docker run -d, docker inspect, write)",
            Path3::Floor => "floor (curl create, start, inspect on the socket, write)",
        }
    }
}

fn spawn(path: Path3, run: &BenchRun, scratch: &Path) -> Child {
    let forked = run.layout.forked_pid_path().display().to_string();
    let dir = run
        .layout
        .forked_pid_path()
        .parent()
        .unwrap()
        .display()
        .to_string();
    let write = format!(
        r#"tmp=$(mktemp "{dir}/XXXXXX") && printf %s "$pid" > "$tmp" && mv "$tmp" "{forked}""#
    );
    let spec = run.spec();
    let name = spec.name.clone();
    match path {
        Path3::Shim => {
            let mut cmd = Command::new(shim_bin());
            cmd.arg0("mesos-executor")
                .arg("--tick_interval=5")
                .env_clear()
                .envs(run.env());
            cmd.env("EXECUTOR_SHIM_CONFIG", config_file());
            let stderr = std::fs::File::create(run.layout.sandbox.join("stderr")).unwrap();
            cmd.stdout(Stdio::null()).stderr(stderr).spawn().unwrap()
        }
        Path3::DockerCli => {
            let body = spec.create_body();
            let host = body.host_config.clone().unwrap();
            let mut args: Vec<String> = vec!["run", "-d", "--rm", "--pid=host", "--net=host"]
                .into_iter()
                .map(String::from)
                .collect();
            args.extend([
                "--name".into(),
                name.clone(),
                "-w".into(),
                body.working_dir.clone().unwrap(),
            ]);
            args.extend(["-u".into(), body.user.clone().unwrap()]);
            for m in host.mounts.unwrap() {
                let mode = if m.read_only == Some(true) {
                    "ro"
                } else {
                    "rw"
                };
                args.extend([
                    "-v".into(),
                    format!("{}:{}:{mode}", m.source.unwrap(), m.target.unwrap()),
                ]);
            }
            for e in body.env.clone().unwrap() {
                args.extend(["-e".into(), e]);
            }
            for (k, v) in body.labels.clone().unwrap() {
                args.extend(["--label".into(), format!("{k}={v}")]);
            }
            let entrypoint = body.entrypoint.clone().unwrap();
            args.extend(["--entrypoint".into(), entrypoint[0].clone(), IMAGE.into()]);
            args.extend(entrypoint[1..].iter().cloned());
            let argv = scratch.join(format!("{name}.args"));
            std::fs::write(&argv, args.join("\0")).unwrap();
            let script = format!(
                r#"xargs -0 docker < "{}" >/dev/null && pid=$(docker inspect -f '{{{{.State.Pid}}}}' "{name}") && {write}"#,
                argv.display()
            );
            Command::new("sh")
                .args(["-c", &script])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        }
        Path3::Floor => {
            let json = scratch.join(format!("{name}.json"));
            std::fs::write(&json, serde_json::to_vec(&spec.create_body()).unwrap()).unwrap();
            let curl = format!("curl -sf --unix-socket {SOCKET}");
            let script = format!(
                r#"{curl} -X POST -H 'Content-Type: application/json' --data-binary @"{}" "http://localhost/containers/create?name={name}" >/dev/null \
                && {curl} -X POST "http://localhost/containers/{name}/start" >/dev/null \
                && pid=$({curl} "http://localhost/containers/{name}/json" | sed -n 's/.*"Pid":\([0-9]*\).*/\1/p') && {write}"#,
                json.display()
            );
            Command::new("sh")
                .args(["-c", &script])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        }
    }
}

fn running_pid(name: &str) -> Option<u32> {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}} {{.State.Pid}}", name])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .strip_prefix("true ")?
        .parse()
        .ok()
}

/// CPU time a process has used so far, in nanoseconds.
fn cpu_ns(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/schedstat"))
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Private memory (USS: Private_Clean + Private_Dirty) of a process, in KiB: what one more shim
/// costs the host, the static binary's shared pages aside.
fn uss_kib(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let field = |name: &str| -> Option<u64> {
        rollup
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some(field("Private_Clean:")? + field("Private_Dirty:")?)
}

/// Whether a process holds an inotify instance (the shim's forked.pid guard, while its window
/// is open).
fn holds_inotify(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|t| t.display().to_string().contains("inotify"))
            })
        })
        .unwrap_or(false)
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

struct Launch {
    latency: Duration,
    shim_cpu_ns: Option<u64>,
    correct: bool,
}

/// Launches `runs` at once through `path`; returns each launch's measurement, and the total.
fn launch_all(path: Path3, runs: &[BenchRun], scratch: &Path) -> (Vec<Launch>, Duration) {
    let start = Instant::now();
    let mut pending: Vec<(usize, Child, Instant)> = runs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let t = Instant::now();
            (i, spawn(path, r, scratch), t)
        })
        .collect();
    let mut results: Vec<Option<(Duration, Option<u64>, u32)>> =
        (0..runs.len()).map(|_| None).collect();
    let mut children = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while !pending.is_empty() {
        assert!(
            Instant::now() < deadline,
            "{}: launches did not checkpoint within 300 s",
            path.name()
        );
        pending.retain_mut(|(i, child, t0)| match runs[*i].checkpointed() {
            None if path == Path3::Shim => {
                if let Some(status) = child.try_wait().unwrap() {
                    let stderr = std::fs::read_to_string(runs[*i].layout.sandbox.join("stderr"))
                        .unwrap_or_default();
                    panic!("a shim exited ({status}) before checkpointing:\n{stderr}");
                }
                true
            }
            Some(pid) => {
                let latency = t0.elapsed();
                let cpu = (path == Path3::Shim).then(|| cpu_ns(child.id())).flatten();
                results[*i] = Some((latency, cpu, pid));
                false
            }
            None => true,
        });
        std::thread::sleep(Duration::from_micros(200));
    }
    let total = start.elapsed();
    for (_, child, _) in pending {
        children.push(child);
    }
    let launches = results
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let (latency, shim_cpu_ns, pid) = r.unwrap();
            let correct = running_pid(&runs[i].layout.sibling_name()) == Some(pid);
            Launch {
                latency,
                shim_cpu_ns,
                correct,
            }
        })
        .collect();
    (launches, total)
}

fn cleanup(runs: &[BenchRun]) {
    let mut args = vec!["rm".to_string(), "-f".into()];
    args.extend(runs.iter().map(|r| r.layout.sibling_name()));
    let _ = Command::new("docker").args(&args).output();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn machine() -> Vec<(String, String)> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or("?")
        .trim()
        .to_string();
    let mem = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = mem
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let curl = Command::new("curl")
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default();
    vec![
        (
            "CPU".into(),
            format!(
                "{model}, {} cores",
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(0)
            ),
        ),
        (
            "memory".into(),
            format!("{:.1} GiB", mem as f64 / 1024.0 / 1024.0),
        ),
        ("kernel".into(), kernel),
        (
            "Docker".into(),
            docker(&[
                "version",
                "--format",
                "engine {{.Server.Version}}, API {{.Server.APIVersion}}",
            ]),
        ),
        (
            "storage driver".into(),
            docker(&["info", "--format", "{{.Driver}}"]),
        ),
        ("rustc".into(), rustc),
        ("curl".into(), curl),
    ]
}

fn main() {
    // `cargo bench` passes --bench; anything else (a filter) is not supported and is ignored.
    let launches = env_number("BENCH_LAUNCHES", 20) as usize;
    let idle_secs = env_number("BENCH_IDLE_SECS", 60);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let built = Command::new("sh")
        .arg(repo.join("docker/test/build-images.sh"))
        .arg(shim_bin())
        .status()
        .expect("sh");
    assert!(
        built.success(),
        "building the images failed: is a Docker daemon running (bash .ci/run starts one)?"
    );
    let root = PathBuf::from(format!(
        "/tmp/mesos-executor-shim-bench-{}",
        std::process::id()
    ));
    let scratch = root.join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut report = String::new();
    let mut notes: Vec<String> = Vec::new();

    // Launch latency, the three paths interleaved so that drift in the daemon hits all alike.
    eprintln!("latency: {launches} launches per path");
    let paths = [Path3::Floor, Path3::DockerCli, Path3::Shim];
    let mut latencies: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut shim_cpu: Vec<u64> = Vec::new();
    for i in 0..launches {
        for path in paths {
            let run = BenchRun::new(&root, "lat", i * 3 + path as usize);
            let (result, _) = launch_all(path, std::slice::from_ref(&run), &scratch);
            assert!(
                result[0].correct,
                "{}: forked.pid does not name the live sibling",
                path.name()
            );
            latencies
                .entry(path.name())
                .or_default()
                .push(result[0].latency);
            shim_cpu.extend(result[0].shim_cpu_ns);
            run.remove();
        }
    }
    let floor_median = {
        let mut f = latencies[Path3::Floor.name()].clone();
        f.sort();
        percentile(&f, 50.0)
    };
    writeln!(report, "## Launch latency\n\nFrom the spawn of the launching process until forked.pid holds the sibling's live host pid; {launches} launches per path, interleaved.\n").unwrap();
    writeln!(
        report,
        "| path | median ms | min ms | max ms | median / floor |\n|---|---:|---:|---:|---:|"
    )
    .unwrap();
    let mut shim_ratio = 0.0;
    for path in paths {
        let mut l = latencies[path.name()].clone();
        l.sort();
        let ratio = percentile(&l, 50.0).as_secs_f64() / floor_median.as_secs_f64();
        if path == Path3::Shim {
            shim_ratio = ratio;
        }
        writeln!(
            report,
            "| {} | {} | {} | {} | {ratio:.2} |",
            path.name(),
            ms(percentile(&l, 50.0)),
            ms(l[0]),
            ms(l[l.len() - 1])
        )
        .unwrap();
    }
    shim_cpu.sort();
    let cpu_median_ms = shim_cpu.get(shim_cpu.len() / 2).copied().unwrap_or(0) as f64 / 1e6;
    let cpu_max_ms = shim_cpu.last().copied().unwrap_or(0) as f64 / 1e6;
    writeln!(report, "\nThe shim's own CPU time per launch (user + system, from /proc/<pid>/schedstat when forked.pid is written): median {cpu_median_ms:.2} ms, max {cpu_max_ms:.2} ms.\n").unwrap();

    // Waiting shims: several side by side, as on a real host, so that the pages of the binary
    // they share count as shared and USS is what one more shim costs.
    const IDLE_SHIMS: usize = 10;
    eprintln!("waiting shims: {IDLE_SHIMS} for {idle_secs} s");
    let idle_runs: Vec<BenchRun> = (0..IDLE_SHIMS)
        .map(|i| BenchRun::new(&root, "idle", i))
        .collect();
    let mut idle_children: Vec<Child> = idle_runs
        .iter()
        .map(|run| spawn(Path3::Shim, run, &scratch))
        .collect();
    let start = Instant::now();
    let pids: Vec<u32> = idle_children.iter().map(Child::id).collect();
    // The window starts once every forked.pid guard has closed: from then on a shim only waits.
    while idle_runs.iter().any(|r| r.checkpointed().is_none())
        || pids.iter().any(|p| holds_inotify(*p))
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the waiting shims never checkpointed, or their guards never closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let guard_secs = start.elapsed().as_secs_f64();
    // A moment for each shim to finish the step that closed its guard and park.
    std::thread::sleep(Duration::from_secs(1));
    let fds = pids
        .iter()
        .map(|p| {
            std::fs::read_dir(format!("/proc/{p}/fd"))
                .map(|d| d.count())
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0);
    let threads = pids
        .iter()
        .filter_map(|p| status_field(*p, "Threads:"))
        .max()
        .unwrap();
    let sample = |p: &u32| {
        (
            cpu_ns(*p).unwrap(),
            status_field(*p, "voluntary_ctxt_switches:").unwrap(),
        )
    };
    let before: Vec<(u64, u64)> = pids.iter().map(sample).collect();
    std::thread::sleep(Duration::from_secs(idle_secs));
    let after: Vec<(u64, u64)> = pids.iter().map(sample).collect();
    let idle_cpu_ns: u64 = before.iter().zip(&after).map(|(b, a)| a.0 - b.0).sum();
    let wakeups: u64 = before.iter().zip(&after).map(|(b, a)| a.1 - b.1).sum();
    let rss = pids
        .iter()
        .filter_map(|p| status_field(*p, "VmRSS:"))
        .max()
        .unwrap();
    let hwm = pids
        .iter()
        .filter_map(|p| status_field(*p, "VmHWM:"))
        .max()
        .unwrap();
    let uss = pids.iter().filter_map(|p| uss_kib(*p)).max().unwrap();
    cleanup(&idle_runs);
    for child in &mut idle_children {
        let _ = child.wait();
    }
    let idle_cpu_ms = idle_cpu_ns as f64 / 1e6;
    writeln!(
        report,
        "## Waiting shims\n\n{IDLE_SHIMS} shims waiting side by side, each on its running executor; the most any one of them shows, and the sums over all for CPU and wake-ups.\n\n| measure | value |\n|---|---:|"
    )
    .unwrap();
    writeln!(
        report,
        "| USS (private memory: what one more shim costs) | {:.2} MiB |\n| VmRSS (the shared binary included) | {:.2} MiB |\n| VmHWM (peak) | {:.2} MiB |",
        uss as f64 / 1024.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    )
    .unwrap();
    writeln!(
        report,
        "| threads | {threads} |\n| open descriptors | {fds} |\n| inotify instances | 0 (every forked.pid guard had closed {guard_secs:.1} s after the spawns) |"
    )
    .unwrap();
    writeln!(report, "| CPU time of all {IDLE_SHIMS} over {idle_secs} s of waiting | {idle_cpu_ms:.3} ms |\n| wake-ups (voluntary context switches) of all {IDLE_SHIMS} over {idle_secs} s | {wakeups} |\n").unwrap();

    // The binary.
    let size = std::fs::metadata(shim_bin()).unwrap().len();
    let file = Command::new("file")
        .arg(shim_bin())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let stripped = file.contains(", stripped");
    writeln!(
        report,
        "## The binary\n\n{:.2} MiB ({size} bytes), {}, {}.\n",
        size as f64 / 1024.0 / 1024.0,
        if file.contains("static") {
            "statically linked"
        } else {
            "NOT statically linked"
        },
        if stripped { "stripped" } else { "not stripped" }
    )
    .unwrap();

    // Launches at once.
    writeln!(report, "## Launches at once\n\nN shims spawned together; latency per launch from its own spawn.\n\n| N | total ms | p50 ms | p99 ms | p99 / p50 | checkpointed correctly |\n|---:|---:|---:|---:|---:|---:|").unwrap();
    let mut worst_spread = 0.0f64;
    let mut all_correct_100 = false;
    for n in [1usize, 10, 50, 100] {
        eprintln!("concurrency: {n} at once");
        let runs: Vec<BenchRun> = (0..n)
            .map(|i| BenchRun::new(&root, &format!("c{n}"), i))
            .collect();
        let (results, total) = launch_all(Path3::Shim, &runs, &scratch);
        let mut l: Vec<Duration> = results.iter().map(|r| r.latency).collect();
        l.sort();
        let correct = results.iter().filter(|r| r.correct).count();
        let (p50, p99) = (percentile(&l, 50.0), percentile(&l, 99.0));
        let spread = p99.as_secs_f64() / p50.as_secs_f64();
        if n == 100 {
            worst_spread = spread;
            all_correct_100 = correct == n;
        }
        writeln!(
            report,
            "| {n} | {} | {} | {} | {spread:.2} | {correct} / {n} |",
            ms(total),
            ms(p50),
            ms(p99)
        )
        .unwrap();
        cleanup(&runs);
        std::thread::sleep(Duration::from_secs(2));
    }

    // Targets.
    let targets = [
        (
            "median launch latency at most the floor's (ratio ≤ 1.0)",
            format!("{shim_ratio:.2}"),
            shim_ratio <= 1.0,
        ),
        (
            "under 5 ms of the shim's own CPU time per launch (median)",
            format!("{cpu_median_ms:.2} ms"),
            cpu_median_ms < 5.0,
        ),
        (
            "a waiting shim under 0.5 MiB private memory (USS)",
            format!("{:.2} MiB", uss as f64 / 1024.0),
            (uss as f64) < 0.5 * 1024.0,
        ),
        (
            "a waiting shim under 4 MiB resident (VmRSS)",
            format!("{:.2} MiB", rss as f64 / 1024.0),
            (rss as f64) < 4.0 * 1024.0,
        ),
        (
            "no CPU while waiting (under 1 ms over the window, all shims together)",
            format!("{idle_cpu_ms:.3} ms"),
            idle_cpu_ms < 1.0,
        ),
        (
            "100 launches at once all checkpointed",
            (if all_correct_100 { "all" } else { "NOT all" }).to_string(),
            all_correct_100,
        ),
        (
            "100 at once: p99 within 3x p50",
            format!("{worst_spread:.2}x"),
            worst_spread <= 3.0,
        ),
    ];
    let mut head = String::new();
    writeln!(head, "# Benchmarks\n\nWritten by `cargo bench --bench launch` from the figures it measured in one run; nothing here is typed by hand. Rerun it on a machine with Docker to reproduce (`BENCH_LAUNCHES`, `BENCH_IDLE_SECS` tune it).\n").unwrap();
    writeln!(head, "## Machine\n").unwrap();
    for (k, v) in machine() {
        writeln!(head, "- {k}: {v}").unwrap();
    }
    writeln!(head, "\nAll paths run on this host against the same daemon and image ({IMAGE}, a busybox image built locally) and create the same container. The shim runs on the host with its image configured; inside an agent container it also inspects its own container (one more API call).\n").unwrap();
    writeln!(
        head,
        "## Targets\n\n| target | measured | met |\n|---|---:|:---:|"
    )
    .unwrap();
    for (what, value, met) in &targets {
        writeln!(
            head,
            "| {what} | {value} | {} |",
            if *met { "yes" } else { "**no**" }
        )
        .unwrap();
        if !met {
            notes.push(what.to_string());
        }
    }
    if !notes.is_empty() {
        writeln!(head, "\nMissed in this run: {}.", notes.join("; ")).unwrap();
    }
    head.push('\n');
    let document = head + &report;
    std::fs::write(repo.join("BENCHMARKS.md"), &document).unwrap();
    println!("{document}");
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_file(config_file());
}
