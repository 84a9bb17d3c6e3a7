//! Production scale on one host, against the real daemon: hundreds of executors that wait, and
//! executors that exit the instant they start, all launched at once. The tests of this file run
//! one at a time: each is a busy host of its own.

mod common;

use std::process::Child;
use std::sync::Mutex;
use std::time::Duration;

use common::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn busy_host() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The targets of a process's open descriptors.
fn fd_targets(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .map(|t| t.display().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn status_field(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn remove_siblings(runs: &[Run]) {
    let names: Vec<String> = runs.iter().map(Run::sibling_name).collect();
    for chunk in names.chunks(100) {
        let mut args = vec!["rm", "-f"];
        args.extend(chunk.iter().map(String::as_str));
        let _ = docker(&args);
    }
}

/// 300 executors waiting on one host with the kernel's default limits: every one checkpointed,
/// no shim failed, and once their guard windows have closed no shim holds an inotify instance
/// (`fs.inotify.max_user_instances`, 128 by default, is shared by all of root's processes on the
/// host). Each waiting shim holds one thread and a handful of descriptors.
#[test]
fn three_hundred_waiting_executors_on_one_host() {
    const N: usize = 300;
    let _busy = busy_host();
    let limit =
        std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances").unwrap_or_default();
    eprintln!(
        "fs.inotify.max_user_instances = {}; launching {N} executors at once",
        limit.trim()
    );
    let first = Run::new("wait300");
    let scope = first.scope.clone();
    let mut runs = vec![first];
    runs.extend((1..N).map(|_| Run::in_scope("wait300", &scope)));
    let mut children: Vec<Child> = runs
        .iter()
        .map(|run| {
            let config = run.host_config(serde_json::json!({}));
            spawn_shim(run, &config, &[], &["--tick_interval=30"])
        })
        .collect();

    let names: Vec<String> = runs.iter().map(Run::sibling_name).collect();
    wait_until(
        &format!("all {N} executors are checkpointed"),
        Duration::from_secs(400),
        || {
            let failed: Vec<_> = children
                .iter_mut()
                .zip(&runs)
                .filter_map(|(c, r)| c.try_wait().unwrap().map(|s| (r, s)))
                .collect();
            if let Some((run, status)) = failed.first() {
                panic!(
                    "{} shim(s) exited; the first, {status}, said:\n{}",
                    failed.len(),
                    run.read(run.sandbox().join("stderr")).unwrap_or_default()
                );
            }
            let running = running_pids(&names);
            runs.iter()
                .all(|run| running.get(&run.sibling_name()).copied() == run.forked_pid())
        },
    );
    let shims: Vec<u32> = children.iter().map(Child::id).collect();
    wait_until(
        "no waiting shim holds an inotify instance",
        Duration::from_secs(120),
        || {
            shims
                .iter()
                .all(|pid| !fd_targets(*pid).iter().any(|t| t.contains("inotify")))
        },
    );
    // Waiting: re-executed into the waiting mode once the guard closed and its sweep was done
    // (a sweep of 300 at once waits on the daemon a while).
    wait_until(
        "every shim waits in its waiting mode",
        Duration::from_secs(120),
        || {
            shims.iter().all(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.starts_with(b"mesos-executor-shim-wait\0"))
            })
        },
    );
    let fds: Vec<usize> = shims.iter().map(|p| fd_targets(*p).len()).collect();
    let threads: Vec<u64> = shims.iter().map(|p| status_field(*p, "Threads:")).collect();
    eprintln!(
        "per waiting shim: at most {} descriptors, at most {} threads",
        fds.iter().max().unwrap(),
        threads.iter().max().unwrap()
    );
    assert!(
        threads.iter().all(|t| *t == 1),
        "a waiting shim runs one thread: {threads:?}"
    );
    // stdio, the runtime's epoll and eventfd, its signal socket pair, the sibling's pidfd: no
    // connection to the daemon, no inotify instance.
    assert!(
        fds.iter().all(|n| *n <= 10),
        "a waiting shim holds a handful of descriptors: {fds:?}; the first: {:?}",
        fd_targets(shims[0])
    );
    for run in &runs {
        let pid = run.forked_pid().unwrap();
        assert!(pid_alive(pid), "{}", run.container_id);
        let stderr = run.read(run.sandbox().join("stderr")).unwrap();
        assert!(!stderr.contains("ERROR"), "{stderr}");
    }

    remove_siblings(&runs);
    for child in &mut children {
        assert_eq!(
            child.wait().unwrap().code(),
            Some(137),
            "each shim exits with its executor's SIGKILL status"
        );
    }
}

/// 200 executors that exit the instant they start, all at once, each with its own code: every
/// shim exits with its executor's code (never a false configuration error), no exited
/// executor's pid is ever checkpointed, and no sibling remains.
#[test]
fn two_hundred_executors_that_exit_at_once_each_report_their_own_code() {
    const N: usize = 200;
    let _busy = busy_host();
    let first = Run::new("exit200");
    let scope = first.scope.clone();
    let mut runs = vec![first];
    runs.extend((1..N).map(|_| Run::in_scope("exit200", &scope)));
    let mut children: Vec<(Child, i32)> = runs
        .iter()
        .enumerate()
        .map(|(i, run)| {
            let code = i as i32 + 1;
            let config = run.host_config(serde_json::json!({}));
            let exit_code = format!("--exit_code={code}");
            (
                spawn_shim(run, &config, &[], &["--exit_after=0", &exit_code]),
                code,
            )
        })
        .collect();
    let mut wrong = Vec::new();
    let mut unchanged = 0;
    for ((child, code), run) in children.iter_mut().zip(&runs) {
        let shim = child.id();
        let status = child.wait().unwrap().code();
        if status != Some(*code) {
            wrong.push(format!(
                "{}: expected {code}, got {status:?}: {}",
                run.container_id,
                run.read(run.sandbox().join("stderr")).unwrap_or_default()
            ));
        }
        // Most exit before their pid can be read, and forked.pid keeps what the agent wrote. A
        // shim that did rewrite it confirmed the pid alive just before, and said so.
        let stderr = run.read(run.sandbox().join("stderr")).unwrap_or_default();
        match run.forked_pid() {
            Some(pid) if pid == shim => unchanged += 1,
            Some(pid) => assert!(
                stderr
                    .lines()
                    .any(|l| l.contains("forked.pid now names the sibling")
                        && l.contains(&format!("host_pid={pid}"))),
                "{}: forked.pid names {pid}, which the shim never confirmed: {stderr}",
                run.container_id
            ),
            None => panic!("{}: forked.pid vanished", run.container_id),
        }
        assert_eq!(
            run.read(run.sandbox().join("executor.argv"))
                .map(|a| a.lines().count()),
            Some(3),
            "the executor really ran"
        );
    }
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    eprintln!("{unchanged} of {N} exited before their pid could be checkpointed");
    let names: Vec<String> = runs.iter().map(Run::sibling_name).collect();
    wait_until(
        "every exited sibling is removed",
        Duration::from_secs(60),
        || {
            let out = docker_ok(&[
                "ps",
                "-a",
                "--filter",
                &format!("label={}", runs[0].scope_filter()),
                "--format",
                "{{.Names}}",
            ]);
            !out.lines().any(|n| names.iter().any(|m| m == n))
        },
    );
}
