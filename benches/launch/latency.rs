//! Launch latency on this host: the floor in-process, the shim, and the Docker CLI path that
//! `--docker_mesos_image` takes, interleaved so that drift in the daemon hits all alike, the shim
//! paired with the floor launched just before it; and the shim's own time and CPU at its rename.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::report::{ms, ms_signed, percentile};
use crate::run::{checkpointed, spawn_shim, wait_for_renames, BenchRun};
use crate::{procfs, Bench, IMAGE};

#[derive(Default)]
pub struct Latency {
    pub floor: Vec<Duration>,
    pub shim: Vec<Duration>,
    pub cli: Vec<Duration>,
    /// Shim minus floor minus the cost of starting a process, launch by launch, in ns.
    pub overheads: Vec<i128>,
    pub own: Vec<Duration>,
    pub starts: Vec<Duration>,
    /// The shim's CPU at its rename, ns.
    pub shim_cpu: Vec<u64>,
    /// The floor client's CPU per launch, ns.
    pub floor_cpu: Vec<u64>,
    pub requests: BTreeMap<String, Vec<Duration>>,
}

pub fn measure(bench: &Bench, launches: usize, launcher: Duration) -> Latency {
    eprintln!("latency: {launches} launches per path");
    let mut l = Latency::default();
    for i in 0..launches {
        let (floor, cpu) = floor_launch(bench, i);
        l.floor.push(floor);
        l.floor_cpu.push(cpu);
        let shim = shim_launch(bench, i, &mut l);
        l.shim.push(shim);
        let overhead = shim.as_nanos() as i128 - launcher.as_nanos() as i128;
        l.overheads.push(overhead - floor.as_nanos() as i128);
        l.cli.push(cli_launch(bench, i));
    }
    l
}

/// The floor, and its client's CPU time (the harness thread's, its two connects included).
pub fn floor_launch(bench: &Bench, i: usize) -> (Duration, u64) {
    let run = BenchRun::new(&bench.root, "floor", i);
    let body = run.spec().create_body();
    let name = run.layout.sibling_name();
    let cpu_before = thread_cpu_ns();
    let (socket, forked) = (bench.socket(), run.layout.forked_pid_path());
    let launch = crate::floor::launch(&socket, &body, &name, &forked);
    let took = bench.local.block_on(&bench.runtime, launch);
    let cpu = thread_cpu_ns() - cpu_before;
    assert!(
        checkpointed(&bench.daemon, &run),
        "floor: forked.pid names the sibling"
    );
    bench.daemon.remove_gradually(&[name]);
    (took, cpu)
}

fn shim_launch(bench: &Bench, i: usize, l: &mut Latency) -> Duration {
    let run = BenchRun::new(&bench.root, "shim", i);
    let (mut child, spawned_ns) = spawn_shim(&run);
    let spawned = Instant::now();
    let (at, _) = wait_for_renames(&[&run], Duration::from_secs(60), |_| {
        match child.try_wait() {
            Ok(Some(status)) => Err(format!("the shim exited ({status}):\n{}", run.stderr())),
            _ => Ok(()),
        }
    })[0];
    l.shim_cpu.extend(procfs::cpu_ns(child.id()));
    assert!(
        checkpointed(&bench.daemon, &run),
        "shim: forked.pid names the sibling"
    );
    bench.daemon.remove_gradually(&[run.layout.sibling_name()]);
    let _ = child.wait();
    let (own, start) =
        own_time(&run.stderr(), spawned_ns).expect("the shim's timeline in its debug log");
    for (name, took) in round_trips(&run.stderr()) {
        l.requests.entry(name).or_default().push(took);
    }
    l.own.push(own);
    l.starts.push(start);
    at - spawned
}

fn cli_launch(bench: &Bench, i: usize) -> Duration {
    let run = BenchRun::new(&bench.root, "cli", i);
    let spawned = Instant::now();
    let mut child = spawn_docker_cli(bench, &run);
    let (at, _) = wait_for_renames(&[&run], Duration::from_secs(60), |_| Ok(()))[0];
    let _ = child.wait();
    assert!(
        checkpointed(&bench.daemon, &run),
        "CLI: forked.pid names the sibling"
    );
    bench.daemon.remove_gradually(&[run.layout.sibling_name()]);
    at - spawned
}

/// CPU time the calling thread has used so far, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// The Docker CLI path `--docker_mesos_image` takes: `docker run -d`, `docker inspect`, write.
fn spawn_docker_cli(bench: &Bench, run: &BenchRun) -> Child {
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
    let argv = bench.scratch.join(format!("{name}.args"));
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
        .env("DOCKER_HOST", &bench.daemon.host)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// The value of `key=<number>` in a log line.
fn field(line: &str, key: &str) -> Option<u64> {
    let rest = line.split(&format!("{key}=")).nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// When the shim's debug log says it wrote forked.pid.
fn written_at(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .find(|l| l.contains("forked.pid written"))
        .and_then(|l| field(l, "at_ns"))
}

/// The requests up to the rename: (name, start, end), from the shim's debug log.
fn requests(stderr: &str) -> Vec<(String, u64, u64)> {
    let written = written_at(stderr).unwrap_or(u64::MAX);
    stderr
        .lines()
        .filter(|l| l.contains("docker request"))
        .filter_map(|l| {
            let name = l.split("request=\"").nth(1)?.split('"').next()?.to_string();
            Some((name, field(l, "start_ns")?, field(l, "end_ns")?))
        })
        .filter(|(_, start, _)| *start < written)
        .collect()
}

/// The round trips of the shim's requests in a launch, by request, up to its rename.
fn round_trips(stderr: &str) -> Vec<(String, Duration)> {
    requests(stderr)
        .into_iter()
        .map(|(name, start, end)| (name, Duration::from_nanos(end.saturating_sub(start))))
        .collect()
}

/// The shim's own time in a launch: from its spawn to its rename of forked.pid, less the union
/// of its requests' round trips to the daemon. Also the process start: spawn to its first line.
fn own_time(stderr: &str, spawned_ns: u64) -> Option<(Duration, Duration)> {
    let started = stderr
        .lines()
        .find(|l| l.contains("shim started"))
        .and_then(|l| field(l, "start_ns"))?;
    let written = written_at(stderr)?;
    let mut spans: Vec<(u64, u64)> = requests(stderr)
        .into_iter()
        .map(|(_, s, e)| (s, e))
        .collect();
    spans.sort();
    let (mut in_daemon, mut covered_to) = (0, 0);
    for (start, end) in spans {
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

/// The section of the report.
pub fn report(out: &mut String, l: &Latency, launcher: Duration, start_cpu: u64) {
    let launches = l.floor.len();
    let floor_median = percentile(&l.floor, 50.0);
    writeln!(
        out,
        "## Launch latency, on this host\n\n{launches} launches per path, interleaved. The floor runs in-process, from its \
         first request to its rename of forked.pid; the other paths from the spawn of their first process until forked.pid \
         holds the sibling's live host pid (seen through inotify, checked against the daemon).\n\n\
         | path | median ms | min ms | max ms | median / floor |\n|---|---:|---:|---:|---:|"
    )
    .unwrap();
    for (name, times) in [
        (
            "floor: in-process, one connection (and the wait's), same body, same write",
            &l.floor,
        ),
        ("mesos-executor-shim", &l.shim),
        ("Docker CLI (docker run -d, docker inspect, write)", &l.cli),
    ] {
        let ratio = percentile(times, 50.0).as_secs_f64() / floor_median.as_secs_f64();
        let (min, max) = (times.iter().min().unwrap(), times.iter().max().unwrap());
        let median = percentile(times, 50.0);
        writeln!(
            out,
            "| {name} | {} | {} | {} | {ratio:.2} |",
            ms(median),
            ms(*min),
            ms(*max)
        )
        .unwrap();
    }
    writeln!(
        out,
        "\n**The shim's overhead over the floor**, paired launch by launch, with the cost of starting any process \
         ({} ms: spawn to exit of a static no-op, measured here) taken out: median {} ms, from {} to {} ms. The \
         daemon's own create varies by tens of milliseconds from one launch to the next, so this difference of two \
         such times is noisy; what does not depend on the daemon is below.\n",
        ms(launcher),
        ms_signed(percentile(&l.overheads, 50.0)),
        ms_signed(*l.overheads.iter().min().unwrap()),
        ms_signed(*l.overheads.iter().max().unwrap()),
    )
    .unwrap();
    report_own_time(out, l, start_cpu);
}

fn report_own_time(out: &mut String, l: &Latency, start_cpu: u64) {
    let cpu_median_ms = percentile(&l.shim_cpu, 50.0) as f64 / 1e6;
    writeln!(
        out,
        "**The shim's own time**, its launch from spawn to rename with each request's round trip to the daemon taken \
         out (the union of the round trips its debug log records): median {} ms, max {} ms. Of it, the process start \
         (spawn to its first line, configuration read and runtime started): median {} ms. Its CPU time up to the \
         rename (user + system, /proc/<pid>/schedstat, at debug level): median {cpu_median_ms:.2} ms; what the whole \
         launch costs, in an agent container, is in the next section.\n",
        ms(percentile(&l.own, 50.0)),
        ms(*l.own.iter().max().unwrap()),
        ms(percentile(&l.starts, 50.0)),
    )
    .unwrap();
    let floor_cpu_ms = percentile(&l.floor_cpu, 50.0) as f64 / 1e6;
    let start_cpu_ms = start_cpu as f64 / 1e6;
    writeln!(
        out,
        "At the rename, against the floor's client (a median {floor_cpu_ms:.2} ms of CPU per launch, the harness \
         thread's, its two connects included) plus starting and ending any process forked as the shim is \
         ({start_cpu_ms:.2} ms, a static no-op's rusage): {:.2}x their sum of {:.2} ms.\n",
        cpu_median_ms / (floor_cpu_ms + start_cpu_ms),
        floor_cpu_ms + start_cpu_ms,
    )
    .unwrap();
    writeln!(
        out,
        "The shim's requests up to the rename, by round trip (median over the launches that made it); besides the \
         floor's it pings the daemon once (`GET /_ping`, answered from memory) and asks `GET /info` only where a \
         decision needs it and no other launch of the last minute asked it:\n\n\
         | request | launches that made it | median ms | max ms |\n|---|---:|---:|---:|"
    )
    .unwrap();
    for (name, times) in &l.requests {
        let (median, max) = (percentile(times, 50.0), *times.iter().max().unwrap());
        writeln!(
            out,
            "| {name} | {} of {} | {} | {} |",
            times.len(),
            l.floor.len(),
            ms(median),
            ms(max)
        )
        .unwrap();
    }
    out.push('\n');
}
