//! The figures as BENCHMARKS.md prints them, and what the file this run replaces measured.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::time::Duration;

use crate::agent::WholeLaunch;
use crate::burst::{Burst, CurlBurst, Waiting};

#[track_caller]
pub fn percentile<T: Copy + Ord>(values: &[T], p: f64) -> T {
    assert!(!values.is_empty(), "no value measured");
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

pub fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

pub fn ms_signed(nanos: i128) -> String {
    format!("{:.1}", nanos as f64 / 1e6)
}

fn ns_ms(ns: u64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// The whole launch in an agent container, against the floor's client CPU (ns) and the cost of
/// starting any process (ns), all measured in this run.
pub fn whole_launch(out: &mut String, w: &WholeLaunch, floor_cpu: u64, start_cpu: u64) {
    let n = w.shim_cpu.len();
    let shim = percentile(&w.shim_cpu, 50.0);
    let control = percentile(&w.control_cpu, 50.0);
    let reaped: u64 = w.reaped_ticks.iter().sum();
    writeln!(
        out,
        "## What a launch costs the agent: the whole launch, in an agent container\n\n\
         {n} launches, one after another, each by the stand-in agent in one agent container (the test agent image, \
         the shim bind-mounted over /usr/libexec/mesos/mesos-executor, `--pid=host`, the daemon's socket and the \
         work_dir mounted, an empty configuration file: the default log level, the sibling in the agent's own image), \
         forked as Mesos 1.x does (the agent forks the launch helper, which forks the executor). The shim's CPU time \
         (user + system, /proc/<pid>/schedstat) is read once it has re-executed into its waiting mode: the whole \
         launch, its guard window over forked.pid, the sweep, the re-exec and its lookups of the agent container \
         (mount table, the inspect of its own container) included. It reached the waiting mode a median {:.1} s \
         after the launch began (the guard window is 10 s).\n\n\
         | CPU time per launch | median ms | min ms | max ms |\n|---|---:|---:|---:|",
        percentile(&w.to_waiting, 50.0).as_secs_f64()
    )
    .unwrap();
    let rows: [(&str, &[u64]); 3] = [
        ("the shim, from the launch helper's fork to its waiting mode", &w.shim_cpu),
        ("of which the stand-in's own steps before the exec (control: an executor that stops itself)", &w.control_cpu),
        ("the sibling's init (the task's container pays it), from its start to that moment", &w.init_cpu),
    ];
    for (what, values) in rows {
        let (min, max) = (values.iter().min().unwrap(), values.iter().max().unwrap());
        writeln!(
            out,
            "| {what} | {} | {} | {} |",
            ns_ms(percentile(values, 50.0)),
            ns_ms(*min),
            ns_ms(*max)
        )
        .unwrap();
    }
    writeln!(
        out,
        "\nThe shim runs one thread (its runtime is current-thread), so its main thread's CPU time is the process's; \
         the children it reaped (cutime + cstime of /proc/<pid>/stat) add {} clock ticks over all {n}. The control's executor is a \
         two-line shell script, so it also counts a shell's start: the shim's figure less the control's \
         ({} ms) is a lower bound of the shim's own part, the figure itself an upper bound.\n\n\
         **Against the floor**, measured in this run: the floor's client spends a median {} ms of CPU per launch (the \
         daemon's own work asked in-process, as in the latency section), starting and ending any process forked as \
         the shim is {} ms. The whole launch costs the agent **{:.2}x the floor's client** ({:.2}x the client plus \
         one process start); less the stand-in's steps, {:.2}x.\n",
        reaped,
        ns_ms(shim.saturating_sub(control)),
        ns_ms(floor_cpu),
        ns_ms(start_cpu),
        shim as f64 / floor_cpu as f64,
        shim as f64 / (floor_cpu + start_cpu) as f64,
        shim.saturating_sub(control) as f64 / floor_cpu as f64,
    )
    .unwrap();
}

pub fn waiting(out: &mut String, w: &Waiting) {
    let (n, secs) = (w.count, w.idle_secs);
    let most = |v: &[u64]| mib(*v.iter().max().unwrap_or(&0));
    let median = |v: &[u64]| mib(percentile(v, 50.0));
    writeln!(
        out,
        "## Waiting\n\n{n} shims waiting side by side (the burst's, below), each on its running executor, and the {n} \
         inits of their siblings; memory from /proc/<pid>/smaps_rollup (median and the most any one shows), CPU and \
         wake-ups summed over all over {secs} s, measured once every forked.pid guard had closed ({:.1} s after the \
         spawns).\n\n\
         | measure | a waiting shim, median | most | a sibling's init, median | most |\n|---|---:|---:|---:|---:|\n\
         | USS (private memory: what one more costs) | {:.2} MiB | {:.2} MiB | {:.2} MiB | {:.2} MiB |\n\
         | PSS (private plus its share of the pages it shares) | {:.2} MiB | {:.2} MiB | {:.2} MiB | {:.2} MiB |\n\
         | VmRSS (the shared binary counted whole) | {:.2} MiB | {:.2} MiB | {:.2} MiB | {:.2} MiB |\n\n\
         | measure | all {n} shims | all {n} inits |\n|---|---:|---:|\n\
         | CPU time over {secs} s | {:.3} ms | {:.3} ms |\n\
         | wake-ups (voluntary context switches) over {secs} s | {} | {} |\n\n\
         A waiting shim runs {} thread(s), holds at most {} open descriptors and {} distinct sockets (the runtime's \
         signal pair is two; a connection to the daemon would be a third).\n",
        w.guards_closed.as_secs_f64(),
        median(&w.shim_uss), most(&w.shim_uss), median(&w.init_uss), most(&w.init_uss),
        median(&w.shim_pss), most(&w.shim_pss), median(&w.init_pss), most(&w.init_pss),
        median(&w.shim_rss), most(&w.shim_rss), median(&w.init_rss), most(&w.init_rss),
        w.shim_cpu_ns as f64 / 1e6,
        w.init_cpu_ns as f64 / 1e6,
        w.shim_wakeups,
        w.init_wakeups,
        w.threads,
        w.fds,
        w.sockets,
    )
    .unwrap();
}

/// The launches-at-once table; the last burst beside the floor's burst of the same size.
pub fn bursts(out: &mut String, bursts: &[Burst], floor: &CurlBurst) {
    writeln!(
        out,
        "## Launches at once\n\nN shims spawned together on this host; each launch timed from its own spawn to its \
         rename of forked.pid; checked against the daemon once all had landed.\n\n\
         | N | total ms | p50 ms | p99 ms | p99 / p50 | checkpointed correctly |\n|---:|---:|---:|---:|---:|---:|"
    )
    .unwrap();
    for b in bursts {
        let spread = b.p(99.0).as_secs_f64() / b.p(50.0).as_secs_f64();
        let (total, p50, p99) = (ms(b.total), ms(b.p(50.0)), ms(b.p(99.0)));
        writeln!(
            out,
            "| {} | {total} | {p50} | {p99} | {spread:.2} | {} / {} |",
            b.n, b.correct, b.n
        )
        .unwrap();
    }
    let failures: Vec<String> = bursts
        .iter()
        .flat_map(|b| {
            b.failures
                .iter()
                .map(move |(why, c)| format!("- {c} of {} at once: {why}", b.n))
        })
        .collect();
    if !failures.is_empty() {
        writeln!(
            out,
            "\nWhy launches that did not land failed (each one's last error line, counted):\n\n{}",
            failures.join("\n")
        )
        .unwrap();
    }
    let shim = bursts.last().unwrap();
    let fp = |p| percentile(&floor.latencies, p);
    writeln!(
        out,
        "\n**The burst against the floor's.** The same {} launches at once done by the floor as one `curl \
         --unix-socket` process per launch (create with the same body, start, inspect, on one connection; timed from \
         its spawn to its exit): all done after {:.1} s (p50 {:.1} s, p99 {:.1} s), {} of {} inspected running. The \
         shims' burst took {:.1} s: **{:.2}x the floor's** (p50 {:.2}x, p99 {:.2}x).\n",
        floor.n,
        floor.total.as_secs_f64(),
        fp(50.0).as_secs_f64(),
        fp(99.0).as_secs_f64(),
        floor.correct,
        floor.n,
        shim.total.as_secs_f64(),
        shim.total.as_secs_f64() / floor.total.as_secs_f64(),
        shim.p(50.0).as_secs_f64() / fp(50.0).as_secs_f64(),
        shim.p(99.0).as_secs_f64() / fp(99.0).as_secs_f64(),
    )
    .unwrap();
}

pub fn binary(out: &mut String, path: &std::path::Path) {
    let size = std::fs::metadata(path).unwrap().len();
    let file = Command::new("file")
        .arg(path)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let linked = if file.contains("static") {
        "statically linked"
    } else {
        "NOT statically linked"
    };
    let stripped = if file.contains(", stripped") {
        "stripped"
    } else {
        "not stripped"
    };
    writeln!(
        out,
        "## The binary\n\n{:.2} MiB ({size} bytes), {linked}, {stripped}.\n",
        size as f64 / 1048576.0
    )
    .unwrap();
}

/// The measured value of each target in an earlier BENCHMARKS.md (either table layout).
pub fn previous_targets(text: &str) -> BTreeMap<String, String> {
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
pub fn previous_machine_cpu(text: &str) -> Option<String> {
    let line = text.lines().find(|l| l.starts_with("- CPU: "))?;
    Some(line.trim_start_matches("- CPU: ").to_string())
}
