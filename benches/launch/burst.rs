//! Launches at once: N shims spawned together on this host, each timed from its own spawn to
//! its rename; the largest burst then waits, and its shims and their siblings' inits are what the
//! waiting figures are taken from; and the same burst of the floor, one `curl` per launch.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::report::percentile;
use crate::run::{running_pids, sibling_names, spawn_shim, wait_for_renames_or_exits, BenchRun};
use crate::{procfs, Bench};

/// N launches at once, landed (or not).
pub struct Burst {
    pub n: usize,
    pub total: Duration,
    pub latencies: Vec<Duration>,
    pub correct: usize,
    /// Why those that did not land failed (each one's last error line), counted.
    pub failures: BTreeMap<String, usize>,
    runs: Vec<BenchRun>,
    children: Vec<Child>,
}

impl Burst {
    pub fn p(&self, pct: f64) -> Duration {
        percentile(&self.latencies, pct)
    }
}

pub fn shims_at_once(bench: &Bench, n: usize) -> Burst {
    eprintln!("concurrency: {n} at once");
    let runs: Vec<BenchRun> = (0..n)
        .map(|i| BenchRun::new(&bench.root, &format!("c{n}"), i))
        .collect();
    let start = Instant::now();
    let mut spawned: Vec<(Child, Instant)> = runs
        .iter()
        .map(|run| {
            let t = Instant::now();
            (spawn_shim(run).0, t)
        })
        .collect();
    let refs: Vec<&BenchRun> = runs.iter().collect();
    // A shim that gives up is counted, not fatal: a burst that does not all land is the figure.
    let done = wait_for_renames_or_exits(&refs, Duration::from_secs(900), |i| {
        matches!(spawned[i].0.try_wait(), Ok(Some(_)))
    });
    let total = start.elapsed();
    let latencies = done
        .iter()
        .zip(&spawned)
        .filter_map(|(d, (_, t))| d.map(|(at, _)| at - *t))
        .collect();
    let running = running_pids(&bench.daemon, &sibling_names(&runs));
    let correct = done
        .iter()
        .zip(&runs)
        .filter(|(d, run)| {
            d.is_some_and(|(_, pid)| running.get(&run.layout.sibling_name()) == Some(&pid))
        })
        .count();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for (_, run) in done.iter().zip(&runs).filter(|(d, _)| d.is_none()) {
        *failures.entry(last_error(&run.stderr())).or_default() += 1;
    }
    let children = spawned.drain(..).map(|(c, _)| c).collect();
    Burst {
        n,
        total,
        latencies,
        correct,
        failures,
        runs,
        children,
    }
}

fn last_error(stderr: &str) -> String {
    stderr
        .lines()
        .rev()
        .find(|l| l.contains("ERROR") || l.contains("error"))
        .map(|l| l.split_once("error=").map_or(l, |(_, e)| e))
        .unwrap_or("no error logged")
        .chars()
        .take(200)
        .collect()
}

/// Removes the burst's siblings, a batch at a time, and reaps its shims (which leave with them).
pub fn tear_down(bench: &Bench, burst: &mut Burst) {
    bench.daemon.remove_gradually(&sibling_names(&burst.runs));
    for mut child in burst.children.drain(..) {
        let _ = child.wait();
    }
    burst.runs.clear();
}

/// What waiting shims and their siblings' inits hold and spend.
pub struct Waiting {
    pub count: usize,
    pub idle_secs: u64,
    /// From the burst's spawns until every forked.pid guard had closed.
    pub guards_closed: Duration,
    pub shim_cpu_ns: u64,
    pub init_cpu_ns: u64,
    pub shim_wakeups: u64,
    pub init_wakeups: u64,
    /// KiB, per shim and per init.
    pub shim_uss: Vec<u64>,
    pub shim_pss: Vec<u64>,
    pub shim_rss: Vec<u64>,
    pub init_uss: Vec<u64>,
    pub init_pss: Vec<u64>,
    pub init_rss: Vec<u64>,
    pub threads: u64,
    pub fds: usize,
    /// The most distinct sockets one shim holds (the runtime's signal pair is two).
    pub sockets: usize,
}

/// Waits until every shim of the burst has closed its forked.pid guard, then measures them and
/// their siblings' inits over `idle_secs`.
pub fn waiting(burst: &Burst, started: Instant, idle_secs: u64) -> Waiting {
    let shims: Vec<u32> = burst.children.iter().map(Child::id).collect();
    let inits: Vec<u32> = burst
        .runs
        .iter()
        .filter_map(BenchRun::checkpoint_pid)
        .collect();
    // The window starts once every forked.pid guard has closed: from then on a shim only waits.
    while shims
        .iter()
        .any(|p| procfs::fd_targets(*p).iter().any(|t| t.contains("inotify")))
    {
        assert!(
            started.elapsed() < Duration::from_secs(1800),
            "the forked.pid guards never closed"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let guards_closed = started.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    let sample = |p: &u32| {
        (
            procfs::cpu_ns(*p).unwrap_or(0),
            procfs::status_field(*p, "voluntary_ctxt_switches:").unwrap_or(0),
        )
    };
    let before: Vec<(u64, u64)> = shims.iter().chain(&inits).map(sample).collect();
    std::thread::sleep(Duration::from_secs(idle_secs));
    let after: Vec<(u64, u64)> = shims.iter().chain(&inits).map(sample).collect();
    let delta = |range: std::ops::Range<usize>| {
        range.fold((0, 0), |(cpu, w), i| {
            (cpu + after[i].0 - before[i].0, w + after[i].1 - before[i].1)
        })
    };
    let (shim_cpu_ns, shim_wakeups) = delta(0..shims.len());
    let (init_cpu_ns, init_wakeups) = delta(shims.len()..shims.len() + inits.len());
    let each = |pids: &[u32], f: fn(u32) -> Option<u64>| {
        pids.iter().filter_map(|p| f(*p)).collect::<Vec<_>>()
    };
    let rss = |p| procfs::status_field(p, "VmRSS:");
    Waiting {
        count: shims.len(),
        idle_secs,
        guards_closed,
        shim_cpu_ns,
        init_cpu_ns,
        shim_wakeups,
        init_wakeups,
        shim_uss: each(&shims, procfs::uss_kib),
        shim_pss: each(&shims, procfs::pss_kib),
        shim_rss: each(&shims, rss),
        init_uss: each(&inits, procfs::uss_kib),
        init_pss: each(&inits, procfs::pss_kib),
        init_rss: each(&inits, rss),
        threads: each(&shims, |p| procfs::status_field(p, "Threads:"))
            .into_iter()
            .max()
            .unwrap_or(0),
        fds: shims
            .iter()
            .map(|p| procfs::fd_targets(*p).len())
            .max()
            .unwrap_or(0),
        sockets: shims
            .iter()
            .map(|p| distinct_sockets(*p))
            .max()
            .unwrap_or(0),
    }
}

fn distinct_sockets(pid: u32) -> usize {
    let fds = procfs::fd_targets(pid);
    fds.into_iter()
        .filter(|t| t.starts_with("socket:"))
        .collect::<BTreeSet<_>>()
        .len()
}

/// The floor's burst: `n` launches at once, each one `curl` process (create, start, inspect).
pub struct CurlBurst {
    pub n: usize,
    pub total: Duration,
    pub latencies: Vec<Duration>,
    /// Those whose inspect showed the container running with a pid.
    pub correct: usize,
}

pub fn curl_at_once(bench: &Bench, n: usize) -> CurlBurst {
    eprintln!("floor burst: {n} curl launches at once");
    let runs: Vec<BenchRun> = (0..n)
        .map(|i| BenchRun::new(&bench.root, "curl", i))
        .collect();
    let files: Vec<_> = runs
        .iter()
        .map(|run| {
            let name = run.layout.sibling_name();
            let body = bench.scratch.join(format!("{name}.json"));
            std::fs::write(
                &body,
                serde_json::to_vec(&run.spec().create_body()).unwrap(),
            )
            .unwrap();
            let inspect = bench.scratch.join(format!("{name}.inspect"));
            (name, body, inspect)
        })
        .collect();
    let start = Instant::now();
    // Each one's spawn; the process handle is kept only so that it is known ours (reaped below).
    let mut spawned: HashMap<i32, (Instant, std::process::Child)> = HashMap::new();
    for (name, body, inspect) in &files {
        let t = Instant::now();
        let child = crate::floor::curl_launch(&bench.socket(), body, name, inspect)
            .spawn()
            .unwrap();
        spawned.insert(child.id() as i32, (t, child));
    }
    let (mut latencies, mut exited_ok) = (Vec::new(), 0);
    // Reaps whichever ends next: each one's time is its own spawn to its exit.
    while !spawned.is_empty() {
        use nix::sys::wait::{waitpid, WaitStatus};
        match waitpid(None, None).expect("waitpid: a curl of the burst") {
            WaitStatus::Exited(pid, status) => {
                if let Some((at, _)) = spawned.remove(&pid.as_raw()) {
                    latencies.push(at.elapsed());
                    exited_ok += usize::from(status == 0);
                }
            }
            WaitStatus::Signaled(pid, _, _) => {
                spawned.remove(&pid.as_raw());
            }
            _ => {}
        }
    }
    let total = start.elapsed();
    let correct = files
        .iter()
        .filter(|(_, _, inspect)| inspected_running(inspect))
        .count();
    eprintln!("floor burst: {exited_ok} curls exited 0, {correct} inspected running");
    bench.daemon.remove_gradually(
        &files
            .into_iter()
            .map(|(name, _, _)| name)
            .collect::<Vec<_>>(),
    );
    CurlBurst {
        n,
        total,
        latencies,
        correct,
    }
}

fn inspected_running(inspect: &std::path::Path) -> bool {
    let Ok(bytes) = std::fs::read(inspect) else {
        return false;
    };
    let Ok(info) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return false;
    };
    info["State"]["Running"] == true && info["State"]["Pid"].as_i64().is_some_and(|p| p > 0)
}
