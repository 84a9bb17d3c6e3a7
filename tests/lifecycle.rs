//! The executor lives and dies by the agent's decisions alone, against the real daemon: a
//! destroy by the live agent (which kills only the shim) ends it, the death of the agent's
//! container never does, a signal is acted on in every phase of a launch, and a waiting shim
//! needs no daemon.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::daemons::DaemonProxy;
use common::*;
use nix::sys::signal::Signal;

/// What the sibling's init logs once it has judged its shim's death.
const AGENT_GONE: [&str; 2] = [
    "the agent that forked the shim is gone",
    "the agent died with the shim",
];
const AGENT_KILLED_THE_SHIM: &str = "the agent that forked the shim outlived it";

fn signal(pid: u32, signal: Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal).unwrap();
}

/// The posix launcher's destroy by a live agent SIGKILLs the session of the pid it forked: the
/// shim. The executor goes with it, within the settle time and a moment, and its sibling is
/// removed (by the daemon here, which runs without live-restore); a second executor of the same
/// agent is untouched. Control: with the init's watch off (`end_with_shim: false`, the design
/// before it) the destroyed shim's executor runs on, and the framework would get a second copy.
#[test]
fn a_destroy_by_the_live_agent_ends_the_executor_and_spares_its_neighbour() {
    let run = Run::new("destroy");
    let neighbour = run.beside("neighbour");
    let control = Run::new("destroyctl");
    let agent = run.start_agent(&Agent::with_shim());
    let control_agent = control.start_agent(&Agent::with_shim().set("end_with_shim", false.into()));
    let pid = run.wait_for_checkpointed_sibling(&agent);
    let control_pid = control.wait_for_checkpointed_sibling(&control_agent);
    neighbour.launch_in(&agent, &[]);
    let neighbour_pid = neighbour.wait_for_checkpointed_sibling(&agent);

    let destroyed = Instant::now();
    let report = run.destroy_posix(&agent);
    assert!(report.starts_with("destroyed"), "{report}");
    let report = control.destroy_posix(&control_agent);
    assert!(report.starts_with("destroyed"), "{report}");

    wait_until(
        &format!(
            "the destroyed shim's executor is gone\n{}",
            run.diagnostics(&agent)
        ),
        Duration::from_secs(15),
        || !pid_alive(pid),
    );
    let ended = destroyed.elapsed();
    run.wait_sibling_gone();
    eprintln!(
        "after the destroy: executor gone in {ended:?}, sibling removed in {:?}",
        destroyed.elapsed()
    );
    assert!(
        run.stderr().contains(AGENT_KILLED_THE_SHIM),
        "{}",
        run.stderr()
    );
    assert_eq!(
        run.agent_status(),
        Some(137),
        "the agent saw its forked pid die"
    );

    assert!(pid_alive(neighbour_pid), "the neighbour runs on");
    neighbour.assert_output_grows();
    assert!(
        pid_alive(control_pid),
        "control: without the watch, the destroyed shim's executor runs on"
    );
    control.assert_output_grows();
}

/// The other half, twenty times over: the agent container dies (SIGKILL, or `docker stop`, whose
/// SIGTERM ends the agent before the rest of its container is killed) with its shims, and every
/// executor runs on; each init says the agent went too.
#[test]
fn an_agent_containers_death_never_ends_its_executors() {
    const N: usize = 20;
    let first = Run::new("agentdeath");
    let scope = first.scope.clone();
    let mut runs = vec![first];
    runs.extend((1..N).map(|_| Run::in_scope("agentdeath", &scope)));
    let (agents, pids) = start_agents(&runs, &Agent::with_shim());
    for (i, (run, agent)) in runs.iter().zip(&agents).enumerate() {
        if i % 2 == 0 {
            run.kill_agent(agent);
        } else {
            docker_ok(&["stop", "--time", "10", agent]);
        }
    }
    for (run, pid) in runs.iter().zip(&pids) {
        wait_until(
            &format!("the init judged its shim's death\n{}", run.stderr()),
            Duration::from_secs(30),
            || AGENT_GONE.iter().any(|line| run.stderr().contains(line)),
        );
        assert!(
            !run.stderr().contains(AGENT_KILLED_THE_SHIM),
            "{}",
            run.stderr()
        );
        assert!(pid_alive(*pid), "{}: a false kill", run.container_id);
    }
    for run in &runs {
        run.assert_output_grows();
        assert_eq!(run.recover().0, 0, "{}", run.container_id);
    }
}

/// A SIGTERM before the sibling exists calls the launch off at once: nothing is left, and the
/// shim leaves with the status of a SIGTERM.
#[test]
fn a_sigterm_before_the_sibling_exists_calls_the_launch_off() {
    if !cfg!(feature = "failpoints") {
        panic!("this test holds a launch at a pause point: run it with --features failpoints");
    }
    let run = Run::new("termcreate");
    let agent = run.start_agent(&Agent::with_shim().set("pause_at", "before-create".into()));
    wait_until(
        &format!(
            "the launch holds before the create\n{}",
            run.diagnostics(&agent)
        ),
        Duration::from_secs(30),
        || run.stderr().contains("point=\"before-create\""),
    );
    let sent = Instant::now();
    signal(run.shim_pid().unwrap(), Signal::SIGTERM);
    assert_eq!(run.wait_agent_status(&agent), 143);
    let took = sent.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "acted on at once, not held: {took:?}"
    );
    assert!(run.containers_named_sibling().is_empty());
    assert!(
        run.stderr().contains("the launch is called off"),
        "{}",
        run.stderr()
    );

    // The same while the shim retries a daemon that does not answer (8 s of retries held it).
    let away = Run::new("termconnect");
    let config = away.host_config(serde_json::json!({
        "docker_host": format!("unix://{}", away.work_dir.join("nobody.sock").display())
    }));
    let mut child = spawn_shim(&away, &config, &[], &[]);
    wait_until(
        "the shim retries the daemon",
        Duration::from_secs(10),
        || away.stderr().contains("Docker daemon not answering yet"),
    );
    let sent = Instant::now();
    signal(child.id(), Signal::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(143));
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "{:?}",
        sent.elapsed()
    );
}

/// Once its executor runs, a shim holds no connection to the daemon, and needs none: with the
/// daemon gone, a SIGTERM reaches the executor at once and the shim leaves with its status,
/// read from the init's record.
#[test]
fn a_waiting_shim_needs_no_daemon() {
    let run = Run::new("nodaemon");
    let socket = run.work_dir.join("docker.sock");
    let proxy = DaemonProxy::start(&socket);
    let config = run.host_config(serde_json::json!({
        "docker_host": format!("unix://{}", socket.display())
    }));
    let mut child = spawn_shim(&run, &config, &[], &[]);
    let pid = run.wait_for_checkpointed_sibling("(on the host)");
    wait_until(
        "the waiting shim has closed its connections to the daemon",
        Duration::from_secs(30),
        || proxy.open_connections() == 0,
    );
    assert!(child.try_wait().unwrap().is_none(), "the shim still waits");
    run.wait_executor_ready();

    proxy.cut();
    let sent = Instant::now();
    signal(child.id(), Signal::SIGTERM);
    let signals = run.sandbox().join("executor.signals");
    wait_until("the executor got SIGTERM", Duration::from_secs(5), || {
        run.read(&signals).is_some_and(|s| s.contains("TERM"))
    });
    eprintln!(
        "SIGTERM reached the executor {:?} after it was sent",
        sent.elapsed()
    );
    assert_eq!(child.wait().unwrap().code(), Some(143));
    assert!(!pid_alive(pid));
    // Without live-restore the daemon removes it by itself (auto-remove): the shim left without
    // asking the daemon anything.
    run.wait_sibling_gone();
}

/// An agent container that shares another container's PID namespace: the shim proceeds, cannot
/// confirm its sibling's pid, and gives the sibling a bounded wait for its exit. A SIGTERM then
/// goes through the daemon, at once.
#[test]
fn a_sigterm_while_the_pid_cannot_be_confirmed_goes_through_the_daemon() {
    let run = Run::new("termunconfirmed");
    let namespace = format!("pidns-{}", run.container_id);
    docker_ok(&[
        "run",
        "-d",
        "--name",
        &namespace,
        AGENT_IMAGE,
        "sleep",
        "3600",
    ]);
    run.remove_on_drop(&namespace);
    let mut agent = Agent::with_shim();
    agent.pid_mode = Some(format!("container:{namespace}"));
    let name = run.start_agent(&agent);
    wait_until(
        &format!(
            "the shim waits on a pid it cannot confirm\n{}",
            run.diagnostics(&name)
        ),
        Duration::from_secs(30),
        || run.stderr().contains("cannot be confirmed yet"),
    );
    run.wait_executor_ready();
    let shim = run.shim_pid().unwrap().to_string();
    let sent = Instant::now();
    docker_ok(&["exec", &name, "kill", "-TERM", &shim]);
    assert_eq!(run.wait_agent_status(&name), 143);
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "not held until the 30 s wait ran out: {:?}",
        sent.elapsed()
    );
    assert!(
        run.stderr().contains("through the daemon"),
        "{}",
        run.stderr()
    );
    run.wait_sibling_gone();
}

/// The init is the shim binary of whatever release the host file is: it must run the executor
/// under the arguments of a newer shim (keys it does not know are ignored) and of an older one
/// that passes only what is required, and record the exit in a form every release reads.
#[test]
fn an_init_runs_the_executor_under_a_newer_or_an_older_shims_arguments() {
    let run = Run::new("protocol");
    std::fs::create_dir_all(run.sandbox()).unwrap();
    let sandbox = run.sandbox().display().to_string();
    let file = |name: &str| format!("{sandbox}/{name}");
    let bind = |from: String, to: &str, mode: &str| format!("{from}:{to}:{mode}");
    let newer = [
        "protocol=9".to_string(),
        format!("stdout={}", file("stdout")),
        format!("stderr={}", file("stderr")),
        format!("exit-record={}", file("record-newer")),
        "cpu-affinity=0-1".into(),
        "shim=1:1".into(),
        "agent=1:1".into(),
    ];
    let older = [
        "protocol=1".to_string(),
        format!("stdout={}", file("stdout")),
        format!("stderr={}", file("stderr")),
        format!("exit-record={}", file("record-older")),
    ];
    for (which, keys) in [("newer", &newer[..]), ("older", &older[..])] {
        let mut args = vec![
            "run".to_string(),
            "--rm".into(),
            "--tmpfs".into(),
            "/run/mesos-executor-shim/sibling:ro,size=4k".into(),
            "-v".into(),
            bind(
                shim_bin().display().to_string(),
                "/run/mesos-executor-shim/init",
                "ro",
            ),
            "-v".into(),
            bind(sandbox.clone(), &sandbox, "rw"),
            "--entrypoint".into(),
            "/run/mesos-executor-shim/init".into(),
            AGENT_IMAGE.into(),
            "mesos-executor-shim-init".into(),
        ];
        args.extend(keys.iter().cloned());
        args.extend([
            "--".into(),
            "/bin/sh".into(),
            "-c".into(),
            format!("echo out-{which}; echo err-{which} >&2; exit 7"),
        ]);
        let out = docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(
            out.status.code(),
            Some(7),
            "{which}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let record = run.read(file(&format!("record-{which}"))).unwrap();
        assert_eq!(record, r#"{"protocol":1,"status":7}"#, "{which}");
    }
    let stdout = run.read(file("stdout")).unwrap();
    assert_eq!(stdout, "out-newer\nout-older\n", "appended, in order");
    let stderr = run.read(file("stderr")).unwrap();
    assert!(
        stderr.contains("err-newer") && stderr.contains("err-older"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cpu-affinity=0-1") && stderr.contains("shim_protocol=9"),
        "what it ignored is named: {stderr}"
    );
}

/// A relaunch adopts a sibling that a release without an init made (its first process the
/// executor itself, auto-removed): signals reach it through the pidfd, and its status, which no
/// init recorded, comes from the daemon.
#[test]
fn a_sibling_of_a_release_without_an_init_is_adopted() {
    let run = Run::new("oldsibling");
    std::fs::create_dir_all(run.sandbox()).unwrap();
    std::fs::create_dir_all(run.forked_pid_path().parent().unwrap()).unwrap();
    let sandbox = run.sandbox().display().to_string();
    let mut args = vec![
        "run".to_string(),
        "-d".into(),
        "--rm".into(),
        "--name".into(),
        run.sibling_name(),
        "--pid=host".into(),
        "--net=host".into(),
        "-v".into(),
        format!("{sandbox}:{sandbox}"),
        "-e".into(),
        format!("MESOS_DIRECTORY={sandbox}"),
        "-w".into(),
        sandbox.clone(),
    ];
    args.extend(run.sibling_labels(&[]));
    args.extend([
        AGENT_IMAGE.to_string(),
        "/bin/sh".into(),
        "-c".into(),
        r#"exec "$@" >>"$MESOS_DIRECTORY/stdout" 2>>"$MESOS_DIRECTORY/stderr""#.into(),
        "sh".into(),
        EXECUTOR_PATH.into(),
    ]);
    docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let config = run.host_config(serde_json::json!({}));
    let mut child = spawn_shim(&run, &config, &[], &[]);
    let pid = run.wait_for_checkpointed_sibling("(on the host)");
    run.wait_executor_ready();
    assert!(
        run.stderr().contains("adopting the running sibling"),
        "{}",
        run.stderr()
    );
    signal(child.id(), Signal::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(143), "{}", run.stderr());
    assert!(!pid_alive(pid));
}

/// The operator's `ps --json` piped into a reader that stops early ends quietly.
#[test]
fn a_report_piped_into_a_reader_that_stops_early_ends_quietly() {
    setup();
    // The shim's own status, with its stdout closed before it writes.
    let mut child = Command::new(shim_bin())
        .args(["ps", "--json", "--label", "mesos-executor-shim-test.none"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

/// The shim's parent under the Mesos containerizer is the launch helper, `mesos-containerizer
/// launch`, which forks the executor and stays its parent (contract page, *How the agent starts
/// an executor*). The init watches the agent process above it, never the helper, and says so.
#[test]
fn the_init_watches_the_agent_process_past_the_launch_helper() {
    let run = Run::new("helper");
    let agent = run.start_agent(&Agent::with_shim());
    run.wait_for_checkpointed_sibling(&agent);
    let helper = run.launched_pid().unwrap();
    let shim = run.shim_pid().unwrap();
    assert_ne!(helper, shim, "the helper forked the shim");
    let parent = std::fs::read_to_string(format!("/proc/{shim}/stat")).unwrap();
    assert!(parent.contains(&format!(" {helper} ")), "{parent}");
    let agent_pid = run.agent_pid().unwrap();
    wait_until(
        "the shim names the agent it watches",
        Duration::from_secs(10),
        || run.stderr().contains(&format!("agent_pid={agent_pid}")),
    );
    assert!(
        run.stderr().contains(&format!("launch_helpers=[{helper}]")),
        "{}",
        run.stderr()
    );
}

/// The agent process alone dies (an OOM kill, a crash, a supervisor's restart) while its
/// container, and so the launch helper and the shim, live on: the executor is the agent's to
/// recover, never to lose. The init says the agent is gone, and the executor runs on.
#[test]
fn the_agent_process_dying_alone_never_ends_its_executor() {
    let run = Run::new("agentalone");
    let agent = run.start_agent(&Agent {
        supervised: true,
        ..Agent::with_shim()
    });
    let pid = run.wait_for_checkpointed_sibling(&agent);
    let shim = run.shim_pid().unwrap();
    signal(run.agent_pid().unwrap(), Signal::SIGKILL);
    wait_until(
        &format!("the init saw the agent go\n{}", run.stderr()),
        Duration::from_secs(30),
        || run.stderr().contains(AGENT_GONE[0]),
    );
    assert!(pid_alive(shim), "the shim lives on in the living container");
    assert!(pid_alive(pid), "{}", run.stderr());
    run.assert_output_grows();
    // The shim, killed now that the agent is gone, takes nothing with it either.
    signal(shim, Signal::SIGKILL);
    run.assert_output_grows();
    assert!(
        !run.stderr().contains(AGENT_KILLED_THE_SHIM),
        "{}",
        run.stderr()
    );
    assert!(pid_alive(pid));
}

/// The agent process dies while the launch is still on its way: after the shim has taken it as
/// the agent to watch, before the sibling's init has started watching. The init finds it gone
/// when it starts, which no pidfd event will ever tell it again, and must judge it then: it says
/// the agent is gone, and the executor runs on.
#[test]
fn an_agent_gone_before_the_init_watches_is_judged_at_once() {
    const WATCHING: &str = "the sibling's init watches this agent process";
    const INIT_STARTED: &str = "sibling init started the executor";
    let run = Run::new("agentearly");
    let agent = run.start_agent(&Agent {
        supervised: true,
        ..Agent::with_shim()
    });
    wait_until(
        &format!(
            "the shim took the agent to watch\n{}",
            run.diagnostics(&agent)
        ),
        Duration::from_secs(30),
        || run.stderr().contains(WATCHING),
    );
    signal(run.agent_pid().unwrap(), Signal::SIGKILL);
    assert!(
        !run.stderr().contains(INIT_STARTED),
        "the agent was killed only after the init had started, so this run does not test the \
         init's start; the sibling's create took less than this test's polling interval:\n{}",
        run.stderr()
    );
    let pid = run.wait_for_checkpointed_sibling(&agent);
    wait_until(
        "the init judged the agent gone at its start",
        Duration::from_secs(30),
        || run.stderr().contains(AGENT_GONE[0]),
    );
    assert!(pid_alive(pid), "{}", run.stderr());
    run.assert_output_grows();
}

/// An executor killed by a signal makes its shim die of the same signal (the init records the
/// signal, the shim re-raises it), so the agent reports what the stock executor's death would
/// have given; an exit with a status stays an exit (the stand-in exits 143 on SIGTERM).
#[test]
fn an_executor_killed_by_a_signal_makes_its_shim_die_of_that_signal() {
    use std::os::unix::process::ExitStatusExt;
    /// Starts a shim on this host, signals its executor, and returns how the shim ended.
    fn shim_end_when_executor_gets(run: &Run, sent: Signal) -> std::process::ExitStatus {
        let config = run.host_config(serde_json::json!({}));
        let mut child = spawn_shim(run, &config, &[], &[]);
        run.wait_for_checkpointed_sibling("(on the host)");
        run.wait_executor_ready();
        let executor: u32 = run.executor_file("executor.pid").trim().parse().unwrap();
        signal(executor, sent);
        child.wait().unwrap()
    }
    let killed = Run::new("sigkilled");
    let status = shim_end_when_executor_gets(&killed, Signal::SIGKILL);
    assert_eq!(status.signal(), Some(9), "{status:?}\n{}", killed.stderr());
    assert_eq!(
        killed
            .read(killed.sandbox().join(".mesos-executor-shim.exit"))
            .as_deref(),
        Some(r#"{"protocol":1,"status":137,"signal":9}"#)
    );
    let exited = Run::new("sigexited");
    let status = shim_end_when_executor_gets(&exited, Signal::SIGTERM);
    assert_eq!((status.code(), status.signal()), (Some(143), None));
}

/// Once only waiting is left (the pid checkpointed, the guard closed, the sweep done), the shim
/// re-executes itself into its small waiting mode: the same pid (the agent and the init still
/// know it), one thread, no socket; signals still reach the executor, and the shim still leaves
/// with its status.
#[test]
fn a_shim_that_only_waits_holds_nothing_of_its_launch() {
    let run = Run::new("waitmode");
    let config = run.host_config(serde_json::json!({ "forked_pid_guard": "1secs" }));
    let mut child = spawn_shim(&run, &config, &[], &[]);
    let shim = child.id();
    run.wait_for_checkpointed_sibling("(on the host)");
    wait_until(
        &format!(
            "the shim re-executed into its waiting mode\n{}",
            run.stderr()
        ),
        Duration::from_secs(30),
        || {
            std::fs::read(format!("/proc/{shim}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"mesos-executor-shim-wait\0"))
        },
    );
    let status = std::fs::read_to_string(format!("/proc/{shim}/status")).unwrap();
    assert!(status.lines().any(|l| l == "Threads:\t1"), "{status}");
    let sockets = std::fs::read_dir(format!("/proc/{shim}/fd"))
        .unwrap()
        .flatten()
        .filter(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
        })
        .count();
    assert_eq!(sockets, 0, "no connection, no runtime's signal pair");
    run.wait_executor_ready();
    signal(shim, Signal::SIGTERM);
    let signals = run.sandbox().join("executor.signals");
    wait_until("the executor got SIGTERM", Duration::from_secs(10), || {
        run.read(&signals).is_some_and(|s| s.contains("TERM"))
    });
    assert_eq!(child.wait().unwrap().code(), Some(143), "{}", run.stderr());
    run.wait_sibling_gone();
}

/// The forwarded signals, as bits of a `/proc/<pid>/task/<tid>/status` `SigBlk:` mask.
fn forwarded_mask() -> u64 {
    [1, 2, 3, 10, 12, 15].iter().map(|n| 1u64 << (n - 1)).sum()
}

/// Every thread of the relay blocks the forwarded signals from its start (they are read from a
/// signalfd): a signal the kernel delivers to any thread is passed on, the output thread's
/// included, and none is lost at the hand-over to the waiting mode. Before, the output thread
/// took them with the handler of the async runtime, which stops listening at the hand-over.
#[test]
fn every_thread_of_the_relay_blocks_the_forwarded_signals() {
    use std::io::Read;
    use std::process::Stdio;
    let run = Run::new("sigmask");
    let config = run.host_config(serde_json::json!({ "forked_pid_guard": "60secs" }));
    let mut child =
        spawn_shim_with_output(&run, &config, &[], &[], [Stdio::piped(), Stdio::piped()]);
    let shim = child.id();
    // The container logger: reads what the shim passes on.
    let mut out = child.stdout.take().unwrap();
    let logger = std::thread::spawn(move || {
        let mut logged = String::new();
        let _ = out.read_to_string(&mut logged);
        logged
    });
    let _err = child.stderr.take();
    run.wait_for_checkpointed_sibling("(on the host)");
    let threads = || -> Vec<String> {
        std::fs::read_dir(format!("/proc/{shim}/task"))
            .map(|d| {
                d.flatten()
                    .map(|t| t.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_until(
        "the relay's output thread runs",
        Duration::from_secs(30),
        || threads().len() >= 2,
    );
    for tid in threads() {
        let status = std::fs::read_to_string(format!("/proc/{shim}/task/{tid}/status")).unwrap();
        let blocked = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
            .unwrap();
        assert_eq!(
            blocked & forwarded_mask(),
            forwarded_mask(),
            "thread {tid}:\n{status}"
        );
    }
    run.wait_executor_ready();
    signal(shim, Signal::SIGTERM);
    assert_eq!(child.wait().unwrap().code(), Some(143), "{}", run.stderr());
    assert!(logger.join().unwrap().contains("tick 0"));
    run.wait_sibling_gone();
}
