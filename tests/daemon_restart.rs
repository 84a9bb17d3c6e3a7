//! A restart of the Docker daemon, as an upgrade or a crash does it, on a daemon of the test's
//! own (live-restore on; the suite's daemon is never touched): executors and their shims ride it
//! out, also behind a socket mounted into the agent containers as a file, which the restart
//! leaves stale. Control: a container made with AutoRemove, as siblings were, dies in the same
//! restart (moby/moby#46308 on Engine 20.10).

mod common;

use std::time::Duration;

use common::daemons::PrivateDaemon;
use common::*;
use nix::sys::signal::Signal;

const EXECUTORS: usize = 4;

/// Starts a container the way siblings used to be made (auto-remove, the host's PID namespace),
/// on `daemon`; returns its name.
fn auto_remove_control(daemon: &PrivateDaemon, name: &str) -> String {
    let out = daemon.docker(&[
        "run",
        "-d",
        "--rm",
        "--pid=host",
        "--net=host",
        "--name",
        name,
        AGENT_IMAGE,
        "sleep",
        "3600",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    name.to_string()
}

fn exists(daemon: &PrivateDaemon, name: &str) -> bool {
    daemon.docker(&["inspect", name]).status.success()
}

#[test]
fn executors_and_their_shims_ride_out_a_restart_of_the_daemon() {
    setup();
    let mut daemon = PrivateDaemon::start(&format!("shim-it-{}", std::process::id()));
    daemon.load(AGENT_IMAGE);
    assert!(String::from_utf8_lossy(
        &daemon
            .docker(&["info", "--format", "{{.LiveRestoreEnabled}}"])
            .stdout
    )
    .contains("true"));

    // One agent host: one work_dir, several executors, each launched by an agent container that
    // reaches the daemon through its socket mounted as a file.
    let mut first = Run::new("restart");
    first.daemon = Some(daemon.host.clone());
    let mut runs = vec![first];
    for _ in 1..EXECUTORS {
        let run = runs[0].beside("restart");
        runs.push(run);
    }
    let (agents, pids) = start_agents(&runs, &Agent::with_shim());
    for run in &runs {
        run.wait_executor_ready();
    }
    let shims: Vec<u32> = runs.iter().map(|r| r.shim_pid().unwrap()).collect();
    // doctor, from an agent container, says what a restart of this daemon means here.
    let wd = runs[0].work_dir.display().to_string();
    let doctor = runs[0].docker_ok(&[
        "exec",
        &agents[0],
        "sh",
        "-c",
        &format!(
            "exec -a mesos-executor-shim {EXECUTOR_PATH} doctor --json --work-dir {wd} || true"
        ),
    ]);
    let checks: Vec<serde_json::Value> = serde_json::from_str(&doctor).unwrap();
    let restart = checks
        .iter()
        .find(|c| c["check"] == "daemon-restart")
        .unwrap();
    assert!(
        restart["detail"]
            .as_str()
            .unwrap()
            .contains("siblings are made without auto-remove"),
        "{restart}"
    );
    for run in &runs {
        assert_eq!(
            run.docker_ok(&[
                "inspect",
                "-f",
                "{{.HostConfig.AutoRemove}}",
                &run.sibling_name()
            ]),
            "false",
            "no auto-remove where a restart of this daemon would kill the sibling"
        );
    }

    for (round, signal) in [(0, Signal::SIGTERM), (1, Signal::SIGKILL)] {
        let control = auto_remove_control(
            &daemon,
            &format!("autoremove-{round}-{}", runs[0].container_id),
        );
        daemon.stop(signal);
        if round == 0 {
            // With the daemon stopped, a signal still reaches its executor, and its shim leaves
            // with the executor's status.
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(shims[0] as i32), Signal::SIGTERM)
                .unwrap();
            assert_eq!(runs[0].wait_agent_status(&agents[0]), 143);
            assert!(runs[0]
                .read(runs[0].sandbox().join("executor.signals"))
                .is_some_and(|s| s.contains("TERM")));
        }
        daemon.restart();
        wait_until(
            &format!(
                "round {round}: the auto-remove control died in the restart\n{}",
                daemon.log()
            ),
            Duration::from_secs(60),
            || !exists(&daemon, &control),
        );
        for (i, run) in runs.iter().enumerate().skip(1) {
            assert!(pid_alive(pids[i]), "round {round}: executor {i} survived");
            assert!(pid_alive(shims[i]), "round {round}: shim {i} survived");
            assert_eq!(run.forked_pid(), Some(pids[i]));
            assert_eq!(
                run.sibling_pid(),
                Some(pids[i]),
                "the restarted daemon reports it running"
            );
            run.assert_output_grows();
        }
    }

    // Afterwards a SIGTERM reaches each executor, and each shim leaves with its executor's status.
    for (i, run) in runs.iter().enumerate().skip(1) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(shims[i] as i32), Signal::SIGTERM)
            .unwrap();
        assert_eq!(run.wait_agent_status(&agents[i]), 143, "{}", run.stderr());
        assert!(run
            .read(run.sandbox().join("executor.signals"))
            .is_some_and(|s| s.contains("TERM")));
    }
    // Behind the stale socket their shims could not remove them; they are left stopped.
    for run in &runs {
        assert_eq!(
            run.docker_ok(&["inspect", "-f", "{{.State.Status}}", &run.sibling_name()]),
            "exited"
        );
    }
    let stale = runs[1].stderr();
    assert!(stale.contains("removes the sibling"), "{stale}");

    // The next launch on this host, from an agent container with a fresh mount of the socket,
    // sweeps them.
    let next = runs[0].beside("restartnext");
    let next_agent = next.start_agent(&Agent::with_shim().args(&["--exit_after=1000"]));
    next.wait_for_checkpointed_sibling(&next_agent);
    for run in &runs {
        run.wait_sibling_gone();
    }
    assert!(
        next.stderr().contains("left behind by a shim that is gone"),
        "{}",
        next.stderr()
    );
    drop(next);
    drop(runs);
}

/// Without live-restore the daemon stops every container when it shuts down: each executor gets
/// SIGTERM through its init, which records its status. A shim whose agent container is stopped
/// with the rest goes with it; a shim that outlives the daemon (an agent run on the host) leaves
/// with its executor's status, and nothing hangs.
#[test]
fn without_live_restore_a_stopping_daemon_ends_the_executors_and_nothing_hangs() {
    setup();
    let mut daemon =
        PrivateDaemon::start_with(&format!("shim-it-stop-{}", std::process::id()), false);
    daemon.load(AGENT_IMAGE);
    let mut in_container = Run::new("nolive");
    in_container.daemon = Some(daemon.host.clone());
    let on_host = in_container.beside("nolivehost");
    let agent = in_container.start_agent(&Agent::with_shim());
    in_container.wait_for_checkpointed_sibling(&agent);
    let config = on_host.host_config(serde_json::json!({ "docker_host": daemon.host }));
    let mut shim = spawn_shim(&on_host, &config, &[], &[]);
    on_host.wait_for_checkpointed_sibling("(on the host)");
    in_container.wait_executor_ready();
    on_host.wait_executor_ready();

    daemon.stop(Signal::SIGTERM);
    let status = shim.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{}", on_host.stderr());
    for run in [&in_container, &on_host] {
        let record = run.read(run.sandbox().join(".mesos-executor-shim.exit"));
        assert_eq!(
            record.as_deref(),
            Some(r#"{"protocol":1,"status":143}"#),
            "{}",
            run.stderr()
        );
        assert!(run
            .read(run.sandbox().join("executor.signals"))
            .is_some_and(|s| s.contains("TERM")));
    }
    daemon.restart();
}

/// A task that ticks until told to stop (a file in its container), then exits 3.
const TICKING_UNTIL_STOPPED: &str =
    "i=0; while [ ! -e /tmp/stop ]; do echo task tick $i; i=$((i+1)); sleep 0.2; done; exit 3";

/// The task's ticks in the sandbox's stdout, in order.
fn ticks(run: &Run) -> Vec<u64> {
    run.read(run.sandbox().join("stdout"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("task tick ")?.parse().ok())
        .collect()
}

/// A docker task rides out a live-restore restart of its daemon: the docker executor's CLI (the
/// shim, in its sibling) follows the task container while the daemon is away and through its
/// log after, so that every tick reaches the sandbox once, in order, those written while the
/// daemon was down included, and the task's own exit (3) is the executor's. Control: the stock
/// docker executor's `docker run` fails with 125 in the same restart, the task still running.
#[test]
fn a_docker_task_rides_out_a_restart_of_the_daemon_where_the_stock_executor_fails() {
    setup();
    let mut daemon = PrivateDaemon::start(&format!("shim-it-dt-{}", std::process::id()));
    daemon.load(AGENT_IMAGE);
    daemon.load(DOCKER_AGENT_IMAGE);
    let mut shim = Run::new("dtrestart");
    shim.daemon = Some(daemon.host.clone());
    let stock = shim.beside("dtrestartstock");
    let shim_agent = shim.start_agent(&Agent::docker(Agent::with_shim(), TICKING_UNTIL_STOPPED));
    let stock_agent = stock.start_agent(&Agent::docker(Agent::stock(), TICKING_TASK));
    shim.wait_for_checkpointed_sibling(&shim_agent);
    for run in [&shim, &stock] {
        wait_until("the task prints", Duration::from_secs(30), || {
            run.task_lines() >= 3
        });
    }
    let task_pid: u32 = shim
        .docker_ok(&["inspect", "-f", "{{.State.Pid}}", &shim.task_container()])
        .parse()
        .unwrap();

    daemon.stop(Signal::SIGTERM);
    let before = ticks(&shim).len();
    wait_children(task_pid, 10);
    daemon.restart();

    assert_eq!(
        stock.wait_agent_status(&stock_agent),
        125,
        "the stock executor's docker run lost the daemon"
    );
    assert!(stock.task_running(), "its task container ran on regardless");
    wait_until(
        &format!(
            "the ticks of the time without a daemon reach the sandbox\n{}",
            shim.diagnostics(&shim_agent)
        ),
        Duration::from_secs(30),
        || ticks(&shim).len() >= before + 15,
    );
    assert!(shim.task_running() && shim.agent_status().is_none());
    shim.docker_ok(&["exec", &shim.task_container(), "touch", "/tmp/stop"]);
    assert_eq!(
        shim.wait_agent_status(&shim_agent),
        3,
        "the task's own exit, through the followed container"
    );
    let ticks = ticks(&shim);
    let expected: Vec<u64> = (0..ticks.len() as u64).collect();
    assert_eq!(ticks, expected, "every tick once, in order");
    let stderr = shim.read(shim.sandbox().join("stderr")).unwrap_or_default();
    assert!(
        stderr.contains("following"),
        "the sandbox says why the output came from the log: {stderr}"
    );
    drop(stock);
    drop(shim);
}
