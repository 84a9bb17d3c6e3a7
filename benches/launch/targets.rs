//! The targets, met or missed, each beside what the BENCHMARKS.md this run replaces measured;
//! and the head of the document.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::burst::{Burst, Waiting};
use crate::latency::Latency;
use crate::report::{mib, ms, percentile, previous_machine_cpu, previous_targets};
use crate::IMAGE;

/// (what, measured, met)
pub type Target = (&'static str, String, bool);

/// A target whose wording changed is found under its earlier wording.
const RENAMED: [(&str, &str); 3] = [
    (
        "at most 4 ms of the shim's CPU time up to its rename, on this host (median)",
        "at most 4 ms of the shim's CPU time per launch (median)",
    ),
    (
        "a waiting shim at most 256 kB private memory (USS), at the waiting count",
        "a waiting shim under 0.5 MiB private memory (USS)",
    ),
    (
        "at most 4 ms of the shim's CPU time up to its rename, on this host (median)",
        "under 5 ms of the shim's CPU time per launch (median)",
    ),
];

pub fn measured(l: &Latency, w: &Waiting, bursts: &[Burst]) -> Vec<Target> {
    let own = percentile(&l.own, 50.0);
    let cpu_ms = percentile(&l.shim_cpu, 50.0) as f64 / 1e6;
    let (shim_uss, shim_rss) = (max(&w.shim_uss), max(&w.shim_rss));
    let init_uss = max(&w.init_uss);
    let idle_cpu = w.shim_cpu_ns + w.init_cpu_ns;
    let hundred = bursts
        .iter()
        .find(|b| b.n == 100)
        .expect("the 100-at-once burst");
    let spread = hundred.p(99.0).as_secs_f64() / hundred.p(50.0).as_secs_f64();
    let big = bursts.last().unwrap();
    vec![
        (
            "at most 10 ms of the shim's own time per launch (median)",
            format!("{} ms", ms(own)),
            own <= Duration::from_millis(10),
        ),
        (
            "at most 4 ms of the shim's CPU time up to its rename, on this host (median)",
            format!("{cpu_ms:.2} ms"),
            cpu_ms <= 4.0,
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
            format!("{}", w.threads),
            w.threads == 1,
        ),
        (
            "a waiting sibling init under 0.5 MiB private memory (USS)",
            format!("{:.2} MiB", mib(init_uss)),
            mib(init_uss) < 0.5,
        ),
        (
            "no CPU while waiting (under 1 ms over the window, all shims and inits together)",
            format!("{:.3} ms", idle_cpu as f64 / 1e6),
            idle_cpu < 1_000_000,
        ),
        (
            "a waiting shim holds no connection to the daemon",
            format!("{} distinct sockets", w.sockets),
            w.sockets <= 2,
        ),
        (
            "100 launches at once all checkpointed",
            (if hundred.correct == 100 {
                "all"
            } else {
                "NOT all"
            })
            .into(),
            hundred.correct == 100,
        ),
        (
            "100 at once: p99 within 3x p50",
            format!("{spread:.2}x"),
            spread <= 3.0,
        ),
        (
            "a burst of launches at once all checkpointed",
            format!(
                "{} of {}, the last after {:.1} s",
                big.correct,
                big.n,
                big.total.as_secs_f64()
            ),
            big.correct == big.n,
        ),
    ]
}

fn max(values: &[u64]) -> u64 {
    values.iter().copied().max().unwrap_or(0)
}

/// The title, the machine, and the targets table.
pub fn head(
    repo: &Path,
    machine: &[(String, String)],
    targets: &[Target],
    restarts: u32,
) -> String {
    let mut head = String::new();
    writeln!(
        head,
        "# Benchmarks\n\nWritten by `cargo bench --locked --bench launch` from the figures it measured in one run; nothing \
         here is typed by hand. Rerun it on a machine with Docker to reproduce (`BENCH_LAUNCHES`, `BENCH_IDLE_SECS`, \
         `BENCH_BURST` tune it).\n\n## Machine\n"
    )
    .unwrap();
    for (k, v) in machine {
        writeln!(head, "- {k}: {v}").unwrap();
    }
    let restarted = match restarts {
        0 => "It never stopped answering.".to_string(),
        n => format!(
            "It stopped answering {n} time(s) (moby#46661) and was killed and started again."
        ),
    };
    writeln!(
        head,
        "\nEvery path runs against one Docker daemon the harness started for itself (its own socket, data and exec \
         roots, vfs), with the same image ({IMAGE}, a busybox image built locally), and creates the same container: \
         the shim's own create body, its init included. {restarted} Containers are removed twenty at a time.\n"
    )
    .unwrap();
    // Times and CPU depend on the machine: a `before` from another one is no comparison.
    let previous = std::fs::read_to_string(repo.join("BENCHMARKS.md")).unwrap_or_default();
    let this_cpu = machine.iter().find(|(k, _)| k == "CPU").map(|(_, v)| v);
    let other_machine = match previous_machine_cpu(&previous) {
        Some(cpu) if Some(&cpu) != this_cpu => format!(
            " It ran on another machine ({cpu}), so its times and CPU figures compare with this run's only roughly; \
             the ratios to the floor measured in the same run carry across machines."
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
    for (what, value, met) in targets {
        let was = before
            .get(*what)
            .or_else(|| {
                RENAMED
                    .iter()
                    .filter(|(now, _)| now == what)
                    .find_map(|(_, was)| before.get(*was))
            })
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
    head
}
