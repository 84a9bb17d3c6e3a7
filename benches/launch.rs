//! Launch cost of the shim against the physical floor, measured in one run on one daemon and
//! image, and written to BENCHMARKS.md. Needs a Docker daemon and a static busybox (as the tests).
//!
//!     cargo bench --bench launch
//!
//! BENCH_LAUNCHES (default 20) launches per path, BENCH_IDLE_SECS (default 60) of waiting by
//! BENCH_WAITING (default 300) shims side by side, BENCH_BURST (default 1000) launches at once.
//!
//! The floor is what the daemon itself must do for a launch, asked in-process: one client on one
//! keep-alive connection sending the shim's own create body, the wait registered before the start
//! on a connection of its own (as the shim does), the start, the inspect, and the same forked.pid
//! write, timed from the first request to the rename. Every path creates the same container.
//! Nothing here busy-polls: a launch's end is the rename of forked.pid, seen through inotify.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bollard::models::ContainerCreateBody;
use mesos_executor_shim::config::Settings;
use mesos_executor_shim::mesos::checkpoint::{self, HostPid};
use mesos_executor_shim::mesos::executor::ExecutorKind;
use mesos_executor_shim::mesos::layout::{IdVariables, RunLayout};
use mesos_executor_shim::proc::monotonic_ns;
use mesos_executor_shim::sibling::placement::INIT_MOUNT;
use mesos_executor_shim::sibling::spec::{self, SiblingSpec, SpecInputs};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

#[path = "../tests/common/mount_namespace.rs"]
mod mount_namespace;

const IMAGE: &str = "mesos-executor-shim-test/agent:latest";
const PLACEHOLDER_PID: &str = "4194305";
const SOCKET: &str = "/var/run/docker.sock";
/// The shims' configuration: in a directory root owns and nobody else writes, as the shim
/// requires of its file. At debug level the shim logs each request's round trip, which is how its
/// own time is told from the daemon's.
const CONFIG_DIR: &str = "/run/mesos-executor-shim-bench";
/// Where the relay reads its configuration, and no other file.
const CONFIG_PATH: &str = "/etc/mesos-executor-shim/config.json";

/// Puts the harness, and so every shim it starts, in a mount namespace of its own in which the
/// harness's configuration directory is mounted over the relay's. Called first thing, while the
/// harness is one thread; the host's own configuration directory is made (empty) if missing and
/// otherwise left as it is.
fn enter_config_namespace() {
    use std::os::unix::fs::PermissionsExt;
    let dir = Path::new(CONFIG_DIR).join(std::process::id().to_string());
    std::fs::create_dir_all(&dir).unwrap();
    for d in [Path::new(CONFIG_DIR), &dir] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let file = dir.join("config.json");
    std::fs::write(
        &file,
        format!(r#"{{"image": "{IMAGE}", "log_level": "debug"}}"#),
    )
    .unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let target = Path::new(CONFIG_PATH).parent().unwrap();
    std::fs::create_dir_all(target).unwrap();
    mount_namespace::mount_over_in_own_namespace(&dir, target)
        .expect("a mount namespace of its own, with the configuration mounted");
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
    /// What the agent wrote in forked.pid: a placeholder, or, for a shim, the shim's pid (the
    /// process the agent forked), which the shim requires before it replaces it.
    agent_wrote: std::cell::Cell<u32>,
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
            agent_wrote: std::cell::Cell::new(PLACEHOLDER_PID.parse().unwrap()),
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
            // What the shim gives its sibling here, so that every path creates the same body.
            security: mesos_executor_shim::mesos::container::SiblingSecurity::of(
                &mesos_executor_shim::mesos::container::LaunchContext::read().unwrap(),
                &[],
            ),
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

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.layout.sandbox.join("stderr")).unwrap_or_default()
    }

    fn remove(&self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.layout.sibling_name()])
            .output();
    }
}

/// Waits, without polling, until forked.pid of each of `runs` holds a new pid: returns when each
/// did, and the pid. Panics after `patience` (or if `alive` says a launcher died).
fn wait_for_renames(
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
fn wait_for_renames_or_exits(
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
            let text = std::fs::read_to_string(run.layout.forked_pid_path()).unwrap_or_default();
            if let Ok(pid) = text.parse::<u32>() {
                if pid != run.agent_wrote.get() {
                    done[i] = Some((Instant::now(), pid));
                    continue;
                }
            }
            gone[i] = exited(i);
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

/// Private memory (USS: Private_Clean + Private_Dirty) of a process, in KiB: what one more
/// process costs the host, the static binary's shared pages aside.
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

fn fd_targets(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .map(|t| t.display().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The value of `key=<number>` in a log line.
fn field(line: &str, key: &str) -> Option<u64> {
    let rest = line.split(&format!("{key}=")).nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The round trips of the shim's requests in a launch, by request, up to its rename.
fn round_trips(stderr: &str) -> Vec<(String, Duration)> {
    let written = stderr
        .lines()
        .find(|l| l.contains("forked.pid written"))
        .and_then(|l| field(l, "at_ns"))
        .unwrap_or(u64::MAX);
    stderr
        .lines()
        .filter(|l| l.contains("docker request"))
        .filter_map(|l| {
            let name = l.split("request=\"").nth(1)?.split('"').next()?.to_string();
            let (start, end) = (field(l, "start_ns")?, field(l, "end_ns")?);
            (start < written).then(|| (name, Duration::from_nanos(end.saturating_sub(start))))
        })
        .collect()
}

/// The shim's own time in a launch: from its spawn to its rename of forked.pid, less the union
/// of its requests' round trips to the daemon (read from its debug log). Also the process start:
/// spawn to its first log line.
fn own_time(stderr: &str, spawned_ns: u64) -> Option<(Duration, Duration)> {
    let started = stderr
        .lines()
        .find(|l| l.contains("shim started"))
        .and_then(|l| field(l, "start_ns"))?;
    let written = stderr
        .lines()
        .find(|l| l.contains("forked.pid written"))
        .and_then(|l| field(l, "at_ns"))?;
    let mut requests: Vec<(u64, u64)> = stderr
        .lines()
        .filter(|l| l.contains("docker request"))
        .filter_map(|l| Some((field(l, "start_ns")?, field(l, "end_ns")?)))
        .filter(|(start, _)| *start < written)
        .collect();
    requests.sort();
    let mut in_daemon = 0;
    let mut covered_to = 0;
    for (start, end) in requests {
        let start = start.max(covered_to);
        if end > start {
            in_daemon += end - start;
            covered_to = end;
        }
    }
    let total = written.checked_sub(spawned_ns)?;
    Some((
        Duration::from_nanos(total.saturating_sub(in_daemon)),
        Duration::from_nanos(started.saturating_sub(spawned_ns)),
    ))
}

/// Forks as the agent does: the agent closes every descriptor but stdio in what it forks; so does
/// the harness (cargo's jobserver pipe would be counted as the shim's otherwise).
fn close_inherited_fds(cmd: &mut Command) {
    // SAFETY: between fork and exec the child makes one system call, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            nix::libc::syscall(nix::libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            Ok(())
        });
    }
}

/// Forks the shim as the agent does, and checkpoints its pid right after the fork, as a 1.x agent
/// does (the shim waits for that write before it replaces it).
fn spawn_shim(run: &BenchRun) -> (Child, u64) {
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

/// The Docker CLI path `--docker_mesos_image` takes: `docker run -d`, `docker inspect`, write.
fn spawn_docker_cli(run: &BenchRun, scratch: &Path) -> Child {
    let body = run.spec().create_body();
    let name = run.layout.sibling_name();
    let host = body.host_config.clone().unwrap();
    let mut args: Vec<String> = ["run", "-d", "--rm", "--pid=host", "--net=host"]
        .map(String::from)
        .to_vec();
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
    args.extend([
        "--tmpfs".into(),
        "/run/mesos-executor-shim/sibling:ro,size=4k".into(),
    ]);
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
    let forked = run.layout.forked_pid_path();
    let dir = forked.parent().unwrap().display().to_string();
    let script = format!(
        r#"xargs -0 docker < "{}" >/dev/null && pid=$(docker inspect -f '{{{{.State.Pid}}}}' "{name}") && tmp=$(mktemp "{dir}/XXXXXX") && printf %s "$pid" > "$tmp" && mv "$tmp" "{}""#,
        argv.display(),
        forked.display()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// The physical floor: what the daemon must do for a launch, asked in-process (see the crate
/// docs above). Returns the time from the first request to the rename.
mod floor {
    use super::*;
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper::client::conn::http1::SendRequest;
    use hyper_util::rt::TokioIo;

    async fn connect() -> SendRequest<Full<Bytes>> {
        let stream = tokio::net::UnixStream::connect(SOCKET).await.unwrap();
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

    pub async fn launch(body: &ContainerCreateBody, name: &str, forked: &Path) -> Duration {
        let mut api = connect().await;
        let mut waiter = connect().await;
        let json = serde_json::to_vec(body).unwrap();
        let start = Instant::now();
        let created = call(
            &mut api,
            "POST",
            &format!("/containers/create?name={name}"),
            Some(json),
        )
        .await;
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
}

fn percentile<T: Copy + Ord>(values: &[T], p: f64) -> T {
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn ms_signed(nanos: i128) -> String {
    format!("{:.1}", nanos as f64 / 1e6)
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
    ]
}

/// What it costs the agent to start any process: a static no-op forked as the shim is, from
/// spawn to exit (median of 20) and its CPU time, user + system (median of 20, in nanoseconds),
/// from the growth of the harness's reaped children's rusage over its run (the harness reaps
/// nothing else meanwhile).
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
            close_inherited_fds(&mut cmd);
            let (start, before) = (Instant::now(), children_cpu());
            assert!(cmd.status().unwrap().success(), "{busybox} true");
            (start.elapsed(), children_cpu() - before)
        })
        .unzip();
    (percentile(&times, 50.0), percentile(&cpu, 50.0))
}

/// CPU time the calling thread has used so far, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

fn main() {
    enter_config_namespace();
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    let mut report = String::new();

    // Launch latency, the paths interleaved so that drift in the daemon hits all alike, and the
    // shim paired with the floor launched just before it.
    eprintln!("latency: {launches} launches per path");
    let (launcher, start_cpu) = process_start_cost(busybox);
    let mut floor_times = Vec::new();
    let mut shim_times = Vec::new();
    let mut cli_times = Vec::new();
    let mut overheads: Vec<i128> = Vec::new();
    let mut own_times = Vec::new();
    let mut starts = Vec::new();
    let mut shim_cpu = Vec::new();
    let mut floor_cpu = Vec::new();
    let mut requests: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for i in 0..launches {
        let run = BenchRun::new(&root, "floor", i);
        let body = run.spec().create_body();
        let name = run.layout.sibling_name();
        let cpu_before = thread_cpu_ns();
        let floor = local.block_on(
            &runtime,
            floor::launch(&body, &name, &run.layout.forked_pid_path()),
        );
        floor_cpu.push(thread_cpu_ns() - cpu_before);
        assert_eq!(
            running_pid(&name),
            checkpoint_pid(&run),
            "floor: forked.pid names the sibling"
        );
        run.remove();
        floor_times.push(floor);

        let run = BenchRun::new(&root, "shim", i);
        let (mut child, spawned_ns) = spawn_shim(&run);
        let spawned = Instant::now();
        let (at, pid) = wait_for_renames(&[&run], Duration::from_secs(60), |_| {
            match child.try_wait() {
                Ok(Some(status)) => Err(format!("the shim exited ({status}):\n{}", run.stderr())),
                _ => Ok(()),
            }
        })[0];
        let shim = at - spawned;
        shim_cpu.extend(cpu_ns(child.id()));
        assert_eq!(
            running_pid(&run.layout.sibling_name()),
            Some(pid),
            "shim: forked.pid names the sibling"
        );
        run.remove();
        let _ = child.wait();
        let (own, start) =
            own_time(&run.stderr(), spawned_ns).expect("the shim's timeline in its debug log");
        for (name, took) in round_trips(&run.stderr()) {
            requests.entry(name).or_default().push(took);
        }
        shim_times.push(shim);
        own_times.push(own);
        starts.push(start);
        overheads
            .push(shim.as_nanos() as i128 - launcher.as_nanos() as i128 - floor.as_nanos() as i128);

        let run = BenchRun::new(&root, "cli", i);
        let spawned = Instant::now();
        let mut child = spawn_docker_cli(&run, &scratch);
        let (at, pid) = wait_for_renames(&[&run], Duration::from_secs(60), |_| Ok(()))[0];
        let _ = child.wait();
        assert_eq!(
            running_pid(&run.layout.sibling_name()),
            Some(pid),
            "CLI: forked.pid names the sibling"
        );
        run.remove();
        cli_times.push(at - spawned);
    }
    let floor_median = percentile(&floor_times, 50.0);
    writeln!(
        report,
        "## Launch latency\n\n{launches} launches per path, interleaved. The floor runs in-process, from its first request \
         to its rename of forked.pid; the other paths from the spawn of their first process until forked.pid holds the \
         sibling's live host pid (seen through inotify, checked against the daemon).\n"
    )
    .unwrap();
    writeln!(
        report,
        "| path | median ms | min ms | max ms | median / floor |\n|---|---:|---:|---:|---:|"
    )
    .unwrap();
    for (name, times) in [
        (
            "floor: in-process, one connection (and the wait's), same body, same write",
            &floor_times,
        ),
        ("mesos-executor-shim", &shim_times),
        (
            "Docker CLI (docker run -d, docker inspect, write)",
            &cli_times,
        ),
    ] {
        let ratio = percentile(times, 50.0).as_secs_f64() / floor_median.as_secs_f64();
        writeln!(
            report,
            "| {name} | {} | {} | {} | {ratio:.2} |",
            ms(percentile(times, 50.0)),
            ms(*times.iter().min().unwrap()),
            ms(*times.iter().max().unwrap())
        )
        .unwrap();
    }
    let overhead_median = percentile(&overheads, 50.0);
    let own_median = percentile(&own_times, 50.0);
    let start_median = percentile(&starts, 50.0);
    let cpu_median_ms = percentile(&shim_cpu, 50.0) as f64 / 1e6;
    writeln!(
        report,
        "\n**The shim's overhead over the floor**, paired launch by launch, with the cost of starting any process \
         ({} ms: spawn to exit of a static no-op, measured here) taken out: median {} ms, from {} to {} ms. The \
         daemon's own create varies by tens of milliseconds from one launch to the next, so this difference of two \
         such times is noisy; what does not depend on the daemon is below.\n",
        ms(launcher),
        ms_signed(overhead_median),
        ms_signed(*overheads.iter().min().unwrap()),
        ms_signed(*overheads.iter().max().unwrap()),
    )
    .unwrap();
    writeln!(
        report,
        "**The shim's own time**, its launch from spawn to rename with each request's round trip to the daemon taken \
         out (the union of the round trips its debug log records): median {} ms, max {} ms. Of it, the process start \
         (spawn to its first line, configuration read and runtime started): median {} ms. Its CPU time per launch \
         (user + system, /proc/<pid>/schedstat at the rename): median {cpu_median_ms:.2} ms. Besides the floor's \
         requests the shim pings the daemon once (`GET /_ping`, answered from memory, which is also its check that the \
         daemon answers and names its version in a header), `GET /info` only where a decision needs it and no other launch of the last \
         minute asked it (the `info` row counts the launches that did), and, in an agent container, about that \
         container.\n",
        ms(own_median),
        ms(*own_times.iter().max().unwrap()),
        ms(start_median),
    )
    .unwrap();
    let floor_cpu_ms = percentile(&floor_cpu, 50.0) as f64 / 1e6;
    let start_cpu_ms = start_cpu as f64 / 1e6;
    writeln!(
        report,
        "**The shim's CPU time against the floor's**, both measured in this run, so that the ratio says what the \
         milliseconds alone cannot across machines: the floor's client spends a median {floor_cpu_ms:.2} ms of CPU per \
         launch (the harness thread's CPU time over the floor's launch, its two connects included), and starting and \
         ending any process, forked as the shim is, costs {start_cpu_ms:.2} ms (a static no-op's rusage). The shim's \
         {cpu_median_ms:.2} ms is {:.2}x their sum of {:.2} ms: the rest is its own work, reading and checking what the \
         agent set up and the task could have touched, building the sibling's body, and its runtime.\n",
        cpu_median_ms / (floor_cpu_ms + start_cpu_ms),
        floor_cpu_ms + start_cpu_ms,
    )
    .unwrap();
    writeln!(
        report,
        "The shim's requests up to the rename, by round trip (median over the launches that made it):\n\n\
         | request | launches that made it | median ms | max ms |\n|---|---:|---:|---:|"
    )
    .unwrap();
    for (name, times) in &requests {
        writeln!(
            report,
            "| {name} | {} of {launches} | {} | {} |",
            times.len(),
            ms(percentile(times, 50.0)),
            ms(*times.iter().max().unwrap())
        )
        .unwrap();
    }
    report.push('\n');

    // Waiting: several shims side by side, as on a real host, so that the pages of the binary
    // they share count as shared and USS is what one more costs; and their siblings' inits.
    let idle = env_number("BENCH_WAITING", 300) as usize;
    eprintln!("waiting shims: {idle} for {idle_secs} s");
    let idle_runs: Vec<BenchRun> = (0..idle).map(|i| BenchRun::new(&root, "idle", i)).collect();
    let mut idle_children: Vec<Child> = idle_runs.iter().map(|run| spawn_shim(run).0).collect();
    let start = Instant::now();
    let refs: Vec<&BenchRun> = idle_runs.iter().collect();
    let inits: Vec<u32> = wait_for_renames(&refs, Duration::from_secs(120), |_| Ok(()))
        .into_iter()
        .map(|(_, pid)| pid)
        .collect();
    let shims: Vec<u32> = idle_children.iter().map(Child::id).collect();
    // The window starts once every forked.pid guard has closed: from then on a shim only waits.
    while shims
        .iter()
        .any(|p| fd_targets(*p).iter().any(|t| t.contains("inotify")))
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the forked.pid guards never closed"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let guard_secs = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(1));
    let sample = |p: &u32| {
        (
            cpu_ns(*p).unwrap(),
            status_field(*p, "voluntary_ctxt_switches:").unwrap(),
        )
    };
    let before: Vec<(u64, u64)> = shims.iter().chain(&inits).map(sample).collect();
    std::thread::sleep(Duration::from_secs(idle_secs));
    let after: Vec<(u64, u64)> = shims.iter().chain(&inits).map(sample).collect();
    let delta = |range: std::ops::Range<usize>| {
        range.fold((0u64, 0u64), |(cpu, wakeups), i| {
            (
                cpu + after[i].0 - before[i].0,
                wakeups + after[i].1 - before[i].1,
            )
        })
    };
    let (shim_idle_cpu, shim_wakeups) = delta(0..idle);
    let (init_idle_cpu, init_wakeups) = delta(idle..2 * idle);
    let most = |pids: &[u32], f: &dyn Fn(u32) -> Option<u64>| {
        pids.iter().filter_map(|p| f(*p)).max().unwrap()
    };
    let shim_uss = most(&shims, &uss_kib);
    let init_uss = most(&inits, &uss_kib);
    let shim_rss = most(&shims, &|p| status_field(p, "VmRSS:"));
    let init_rss = most(&inits, &|p| status_field(p, "VmRSS:"));
    let shim_fds = shims.iter().map(|p| fd_targets(*p).len()).max().unwrap();
    // Distinct sockets: the runtime's signal pair is two; a connection would be a third.
    let connections = shims
        .iter()
        .map(|p| {
            fd_targets(*p)
                .into_iter()
                .filter(|t| t.starts_with("socket:"))
                .collect::<BTreeSet<_>>()
                .len()
        })
        .max()
        .unwrap();
    let threads = most(&shims, &|p| status_field(p, "Threads:"));
    for run in &idle_runs {
        run.remove();
    }
    for child in &mut idle_children {
        let _ = child.wait();
    }
    let mib = |kib: u64| kib as f64 / 1024.0;
    writeln!(
        report,
        "## Waiting\n\n{idle} shims waiting side by side, each on its running executor, and the {idle} inits of their \
         siblings; the most any one shows, and the sums over all for CPU and wake-ups over {idle_secs} s, measured \
         once every forked.pid guard had closed ({guard_secs:.1} s after the spawns).\n\n\
         | measure | a waiting shim | a sibling's init |\n|---|---:|---:|\n\
         | USS (private memory: what one more costs) | {:.2} MiB | {:.2} MiB |\n\
         | VmRSS (the shared binary included) | {:.2} MiB | {:.2} MiB |\n\
         | CPU time of all {idle} | {:.3} ms | {:.3} ms |\n\
         | wake-ups (voluntary context switches) of all {idle} | {shim_wakeups} | {init_wakeups} |\n\
         | threads | {threads} | 1 |\n\
         | open descriptors | {shim_fds} | |\n\
         | sockets (the runtime's signal pair; no connection to the daemon) | {connections} | |\n",
        mib(shim_uss),
        mib(init_uss),
        mib(shim_rss),
        mib(init_rss),
        shim_idle_cpu as f64 / 1e6,
        init_idle_cpu as f64 / 1e6,
    )
    .unwrap();

    let size = std::fs::metadata(shim_bin()).unwrap().len();
    let file = Command::new("file")
        .arg(shim_bin())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    writeln!(
        report,
        "## The binary\n\n{:.2} MiB ({size} bytes), {}, {}.\n",
        size as f64 / 1024.0 / 1024.0,
        if file.contains("static") {
            "statically linked"
        } else {
            "NOT statically linked"
        },
        if file.contains(", stripped") {
            "stripped"
        } else {
            "not stripped"
        }
    )
    .unwrap();

    writeln!(
        report,
        "## Launches at once\n\nN shims spawned together; latency per launch from its own spawn.\n\n\
         | N | total ms | p50 ms | p99 ms | p99 / p50 | checkpointed correctly |\n|---:|---:|---:|---:|---:|---:|"
    )
    .unwrap();
    let mut spread_100 = 0.0f64;
    let mut all_correct_100 = false;
    let burst = env_number("BENCH_BURST", 1000) as usize;
    let (mut burst_correct, mut burst_total) = (0usize, Duration::ZERO);
    let mut burst_failures: Vec<String> = Vec::new();
    for n in [1usize, 10, 50, 100, burst] {
        eprintln!("concurrency: {n} at once");
        let runs: Vec<BenchRun> = (0..n)
            .map(|i| BenchRun::new(&root, &format!("c{n}"), i))
            .collect();
        let start = Instant::now();
        let mut children: Vec<(Child, Instant)> = runs
            .iter()
            .map(|run| {
                let t = Instant::now();
                (spawn_shim(run).0, t)
            })
            .collect();
        let refs: Vec<&BenchRun> = runs.iter().collect();
        // A shim that gives up is counted, not fatal: a burst that does not all land is the
        // figure this measures.
        let done = wait_for_renames_or_exits(&refs, Duration::from_secs(300), |i| {
            matches!(children[i].0.try_wait(), Ok(Some(_)))
        });
        let total = start.elapsed();
        let latencies: Vec<Duration> = done
            .iter()
            .zip(&children)
            .filter_map(|(d, (_, t))| d.map(|(at, _)| at - *t))
            .collect();
        let correct = done
            .iter()
            .zip(&runs)
            .filter(|(d, run)| {
                d.is_some_and(|(_, pid)| running_pid(&run.layout.sibling_name()) == Some(pid))
            })
            .count();
        let (p50, p99) = (percentile(&latencies, 50.0), percentile(&latencies, 99.0));
        let spread = p99.as_secs_f64() / p50.as_secs_f64();
        if n == 100 {
            spread_100 = spread;
            all_correct_100 = correct == n;
        }
        if n == burst {
            (burst_correct, burst_total) = (correct, total);
        }
        // Why the launches that did not land failed: the last error line of each, counted.
        let mut failures: BTreeMap<String, usize> = BTreeMap::new();
        for (d, run) in done.iter().zip(&runs) {
            if d.is_none() {
                let stderr = run.stderr();
                let why = stderr
                    .lines()
                    .rev()
                    .find(|l| l.contains("ERROR") || l.contains("error"))
                    .map(|l| l.split_once("error=").map_or(l, |(_, e)| e))
                    .unwrap_or("no error logged")
                    .chars()
                    .take(200)
                    .collect::<String>();
                *failures.entry(why).or_default() += 1;
            }
        }
        for (why, count) in &failures {
            eprintln!("{n} at once: {count} failed: {why}");
            burst_failures.push(format!("{count} of {n} at once: {why}"));
        }
        writeln!(
            report,
            "| {n} | {} | {} | {} | {spread:.2} | {correct} / {n} |",
            ms(total),
            ms(p50),
            ms(p99)
        )
        .unwrap();
        for run in &runs {
            run.remove();
        }
        for (child, _) in &mut children {
            let _ = child.wait();
        }
    }
    if !burst_failures.is_empty() {
        writeln!(
            report,
            "\nWhy launches that did not land failed (each one's last error line, counted):\n"
        )
        .unwrap();
        for line in &burst_failures {
            writeln!(report, "- {line}").unwrap();
        }
    }
    report.push('\n');

    let targets = [
        (
            "at most 10 ms of the shim's own time per launch (median)",
            format!("{} ms", ms(own_median)),
            own_median <= Duration::from_millis(10),
        ),
        (
            "at most 4 ms of the shim's CPU time per launch (median)",
            format!("{cpu_median_ms:.2} ms"),
            cpu_median_ms <= 4.0,
        ),
        (
            "a waiting shim at most 256 kB private memory (USS), at the waiting count",
            format!("{shim_uss} kB"),
            shim_uss <= 256,
        ),
        (
            "a waiting shim at most 2 MiB resident (VmRSS), at the waiting count",
            format!("{:.2} MiB", mib(shim_rss)),
            shim_rss <= 2048,
        ),
        (
            "a waiting shim runs one thread",
            format!("{threads}"),
            threads == 1,
        ),
        (
            "a waiting sibling init under 0.5 MiB private memory (USS)",
            format!("{:.2} MiB", mib(init_uss)),
            mib(init_uss) < 0.5,
        ),
        (
            "no CPU while waiting (under 1 ms over the window, all shims and inits together)",
            format!("{:.3} ms", (shim_idle_cpu + init_idle_cpu) as f64 / 1e6),
            shim_idle_cpu + init_idle_cpu < 1_000_000,
        ),
        (
            "a waiting shim holds no connection to the daemon",
            format!("{connections} distinct sockets"),
            connections <= 2,
        ),
        (
            "100 launches at once all checkpointed",
            (if all_correct_100 { "all" } else { "NOT all" }).to_string(),
            all_correct_100,
        ),
        (
            "100 at once: p99 within 3x p50",
            format!("{spread_100:.2}x"),
            spread_100 <= 3.0,
        ),
        (
            "a burst of launches at once all checkpointed",
            format!(
                "{burst_correct} of {burst}, the last after {:.1} s",
                burst_total.as_secs_f64()
            ),
            burst_correct == burst,
        ),
    ];
    let mut head = String::new();
    writeln!(
        head,
        "# Benchmarks\n\nWritten by `cargo bench --bench launch` from the figures it measured in one run; nothing here \
         is typed by hand. Rerun it on a machine with Docker to reproduce (`BENCH_LAUNCHES`, `BENCH_IDLE_SECS`, `BENCH_WAITING`, `BENCH_BURST` tune it).\n"
    )
    .unwrap();
    writeln!(head, "## Machine\n").unwrap();
    let machine = machine();
    for (k, v) in &machine {
        writeln!(head, "- {k}: {v}").unwrap();
    }
    writeln!(
        head,
        "\nAll paths run on this host against the same daemon and image ({IMAGE}, a busybox image built locally) and \
         create the same container: the shim's own create body, its init included. The shim runs on the host with its \
         image configured; inside an agent container it also inspects its own container (one more request).\n"
    )
    .unwrap();
    // Times and CPU depend on the machine: a `before` from another one is no comparison.
    let previous = std::fs::read_to_string(repo.join("BENCHMARKS.md")).unwrap_or_default();
    let before_cpu = previous_machine_cpu(&previous);
    let this_cpu = machine.iter().find(|(k, _)| k == "CPU").map(|(_, v)| v);
    let other_machine = match before_cpu {
        Some(cpu) if Some(&cpu) != this_cpu => format!(
            " It ran on another machine ({cpu}), so its times and CPU figures compare with this run's only roughly; \
             the ratios to the floor measured in the same run (below) carry across machines."
        ),
        _ => String::new(),
    };
    writeln!(
        head,
        "## Targets\n\n`before`: what the BENCHMARKS.md this run replaced measured, where it had the target.{other_machine}\n\n\
         | target | before | measured | met |\n|---|---:|---:|:---:|"
    )
    .unwrap();
    let before = previous_targets(&previous);
    let mut missed = Vec::new();
    for (what, value, met) in &targets {
        // A target whose wording changed is found under its earlier wording.
        const RENAMED: [(&str, &str); 2] = [
            (
                "at most 4 ms of the shim's CPU time per launch (median)",
                "under 5 ms of the shim's CPU time per launch (median)",
            ),
            (
                "a waiting shim at most 256 kB private memory (USS), at the waiting count",
                "a waiting shim under 0.5 MiB private memory (USS)",
            ),
        ];
        let earlier = RENAMED
            .iter()
            .find(|(now, _)| now == what)
            .map(|(_, was)| *was);
        let was = before
            .get(*what)
            .or_else(|| earlier.and_then(|w| before.get(w)))
            .map(String::as_str)
            .unwrap_or("-");
        writeln!(
            head,
            "| {what} | {was} | {value} | {} |",
            if *met { "yes" } else { "**no**" }
        )
        .unwrap();
        if !met {
            missed.push(*what);
        }
    }
    if !missed.is_empty() {
        writeln!(head, "\nMissed in this run: {}.", missed.join("; ")).unwrap();
    }
    head.push('\n');
    let document = head + &report;
    std::fs::write(repo.join("BENCHMARKS.md"), &document).unwrap();
    println!("{document}");
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(Path::new(CONFIG_DIR).join(std::process::id().to_string()));
}

/// The measured value of each target in an earlier BENCHMARKS.md (either table layout).
fn previous_targets(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .skip_while(|l| !l.starts_with("| target |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            let measured = cells.get(cells.len().checked_sub(2)?)?;
            Some((cells.first()?.to_string(), measured.to_string()))
        })
        .collect()
}

/// The CPU line of the machine section of an earlier BENCHMARKS.md.
fn previous_machine_cpu(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("- CPU: "))?;
    Some(line.trim_start_matches("- CPU: ").to_string())
}

/// The pid forked.pid of `run` holds now.
fn checkpoint_pid(run: &BenchRun) -> Option<u32> {
    std::fs::read_to_string(run.layout.forked_pid_path())
        .ok()?
        .parse()
        .ok()
}
