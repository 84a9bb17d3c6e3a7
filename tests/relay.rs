//! End-to-end scenarios against a real Docker daemon: a stand-in agent container launches an
//! executor through the shim, and is killed and restarted as a crashing agent would be.

mod common;

use std::time::Duration;

use common::*;

/// Control: the stock arrangement, without the shim. The executor lives in the agent container
/// and dies with it, and a restarted agent finds its checkpointed pid dead. This is the failure
/// the shim exists to prevent; it shows the suite can tell the difference.
#[test]
fn control_the_stock_executor_dies_with_the_agent_container() {
    let run = Run::new("control");
    let agent = run.start_agent(&Agent::stock());
    wait_until("the stock executor prints", Duration::from_secs(20), || {
        run.stdout_lines() >= 3
    });
    let pid = run.forked_pid().expect("the agent checkpointed forked.pid");
    assert!(pid_alive(pid));
    assert!(run.sibling_id().is_none(), "no sibling without the shim");

    run.kill_agent(&agent);

    wait_until(
        "the stock executor died with its agent container",
        Duration::from_secs(10),
        || !pid_alive(pid),
    );
    let (status, report) = run.recover();
    assert_eq!(
        status, 1,
        "the restarted agent finds the executor dead: {report}"
    );
    assert!(
        report.starts_with(&format!("dead {}", run.container_id)),
        "{report}"
    );
}

/// The shim bind-mounted into a 1.x agent, with no configuration at all: the executor moves to
/// a sibling, survives the agent's SIGKILL, and a restarted agent finds it through forked.pid.
#[test]
fn the_executor_outlives_a_killed_1x_agent() {
    let run = Run::new("survive1x");
    let args = [
        "--override",
        "/bin/sh",
        "-c",
        "exit `docker wait mesos-x`",
        "two  spaces",
        "-",
    ];
    let agent = run.start_agent(
        &Agent::with_shim()
            .args(&args)
            .env("AGENT_ONLY", "not-for-1x-executors"),
    );
    let pid = run.wait_for_checkpointed_sibling(&agent);
    assert_ne!(
        Some(pid),
        run.shim_pid(),
        "forked.pid no longer names the shim"
    );

    // The executor got the agent's argv verbatim and the 1.x environment, less the shim's own.
    let argv = run.executor_file("executor.argv");
    let expected: Vec<&str> = [EXECUTOR_PATH, "--launcher_dir=/usr/libexec/mesos"]
        .into_iter()
        .chain(args)
        .collect();
    assert_eq!(argv.lines().collect::<Vec<_>>(), expected);
    let env = run.executor_file("executor.env");
    assert!(
        env.contains(&format!("MESOS_DIRECTORY={}", run.sandbox().display())),
        "{env}"
    );
    assert!(
        env.contains("MESOS_CHECKPOINT=1") && env.contains("LIBPROCESS_PORT=0"),
        "{env}"
    );
    assert!(
        !env.contains("AGENT_ONLY"),
        "a 1.x agent does not pass its environment: {env}"
    );

    // Once Docker reports the agent container dead, every process of it is gone.
    run.kill_agent(&agent);
    assert!(pid_alive(pid), "the executor outlived its agent container");
    assert_eq!(run.forked_pid(), Some(pid));
    run.assert_output_grows();
    let (status, report) = run.recover();
    assert_eq!(
        status, 0,
        "the restarted agent finds the executor alive: {report}"
    );
    assert_eq!(report, format!("alive {} {pid}", run.container_id));
}

/// An old (0.2x) agent passes its whole environment and writes forked.pid only after the launch:
/// the shim waits for that write and then replaces it. Variables that look like settings in
/// that environment are not settings: they reach the executor, and change nothing.
#[test]
fn the_executor_outlives_a_killed_0_2x_agent_that_checkpoints_late() {
    let run = Run::new("survive02x");
    let mut agent = Agent::with_shim()
        .env("CHECKPOINT_DELAY", "2")
        .env("OPERATOR_SETTING", "reaches-the-executor")
        .env("EXECUTOR_SHIM_LOG_LEVEL", "debug");
    agent.generation = "0.2x";
    let name = run.start_agent(&agent);
    let pid = run.wait_for_checkpointed_sibling(&name);
    // Once the agent's own late write has come and gone, forked.pid still names the sibling.
    wait_until(
        "the agent's late forked.pid was replaced",
        Duration::from_secs(10),
        || {
            run.read(run.sandbox().join("stderr"))
                .unwrap_or_default()
                .contains("forked.pid now names the sibling")
        },
    );
    assert_eq!(run.forked_pid(), Some(pid));
    let env = run.executor_file("executor.env");
    assert!(
        env.contains("OPERATOR_SETTING=reaches-the-executor"),
        "a 0.2x agent's environment is forwarded: {env}"
    );
    assert!(
        env.contains("EXECUTOR_SHIM_LOG_LEVEL=debug"),
        "the environment reaches the executor untouched: {env}"
    );
    let stderr = run.read(run.sandbox().join("stderr")).unwrap();
    assert!(
        !stderr.contains("DEBUG"),
        "the environment set no log level: {stderr}"
    );
    assert!(
        stderr.contains("are not settings") && stderr.contains("EXECUTOR_SHIM_LOG_LEVEL"),
        "the ignored name is said once: {stderr}"
    );
    assert!(
        !stderr.contains("=debug"),
        "names are logged, never values: {stderr}"
    );

    run.kill_agent(&name);
    run.assert_output_grows();
    assert_eq!(run.recover().0, 0);
}

/// The shim baked into the agent image: the sibling runs the same image, where mesos-executor is
/// the shim, which hands over to the stock executor kept at mesos-executor.real.
#[test]
fn a_baked_image_runs_the_stock_executor_in_the_sibling() {
    let run = Run::new("baked");
    let agent = run.start_agent(&Agent::baked());
    let pid = run.wait_for_checkpointed_sibling(&agent);
    let argv = run.executor_file("executor.argv");
    assert_eq!(
        argv.lines().next(),
        Some(format!("{EXECUTOR_PATH}.real").as_str()),
        "the stock executor ran: {argv}"
    );
    assert_eq!(
        docker_ok(&[
            "ps",
            "-a",
            "--filter",
            "label=io.mesos-executor-shim.managed",
            "--filter",
            &format!(
                "label=io.mesos-executor-shim.container-id={}",
                run.container_id
            ),
            "--format",
            "{{.Names}}"
        ]),
        run.sibling_name(),
        "exactly one sibling: a relay never starts a relay"
    );
    run.kill_agent(&agent);
    assert!(pid_alive(pid));
    run.assert_output_grows();
    assert_eq!(run.recover().0, 0);
}

/// The executor's exit status becomes the shim's, so the agent reports it; the exited sibling
/// is removed.
#[test]
fn the_executors_exit_status_is_the_shims_and_no_container_remains() {
    for (code, tag) in [(7, "exit7"), (0, "exit0")] {
        let run = Run::new(tag);
        let agent = run.start_agent(
            &Agent::with_shim().args(&["--exit_after=5", &format!("--exit_code={code}")]),
        );
        run.wait_agent_status(&agent);
        assert_eq!(run.agent_status(), Some(code));
        assert_eq!(run.stdout_lines(), 5);
        run.wait_sibling_gone();
    }
}

/// SIGTERM, SIGUSR1 (and the rest of the forwarded set) sent to the shim reach the executor;
/// the shim keeps waiting until the executor has exited and exits with its status.
#[test]
fn signals_sent_to_the_shim_reach_the_executor() {
    let run = Run::new("signals");
    let agent = run.start_agent(&Agent::with_shim());
    run.wait_for_checkpointed_sibling(&agent);
    run.wait_executor_ready();
    let shim = run
        .shim_pid()
        .expect("the agent recorded the pid it forked");
    let signals = run.sandbox().join("executor.signals");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    wait_until("the executor got SIGUSR1", Duration::from_secs(10), || {
        run.read(&signals).is_some_and(|s| s.contains("USR1"))
    });
    assert!(pid_alive(shim), "SIGUSR1 does not end the shim");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    run.wait_agent_status(&agent);
    assert_eq!(
        run.read(&signals).unwrap().lines().collect::<Vec<_>>(),
        ["USR1", "TERM"]
    );
    assert_eq!(
        run.agent_status(),
        Some(143),
        "128 + SIGTERM, the executor's own status"
    );
}

/// Within the guard's window, anything that overwrites forked.pid is undone.
#[test]
fn forked_pid_is_restored_after_an_overwrite() {
    let run = Run::new("restore");
    let agent = run.start_agent(&Agent::with_shim().set("forked_pid_guard", "5mins".into()));
    let pid = run.wait_for_checkpointed_sibling(&agent);
    let path = run.forked_pid_path();
    let temp = path.with_file_name("intruder");
    std::fs::write(&temp, "1").unwrap();
    std::fs::rename(&temp, &path).unwrap();
    wait_until(
        "forked.pid names the sibling again",
        Duration::from_secs(5),
        || run.forked_pid() == Some(pid),
    );
    std::fs::write(&path, "").unwrap();
    wait_until(
        "an emptied forked.pid is rewritten",
        Duration::from_secs(5),
        || run.forked_pid() == Some(pid),
    );
}

/// A leftover sibling still running for the same run is adopted, not doubled; a stopped one is
/// replaced.
#[test]
fn a_running_leftover_is_adopted_and_a_stopped_one_replaced() {
    let run = Run::new("leftover");
    let first = run.start_agent(&Agent::with_shim());
    let pid = run.wait_for_checkpointed_sibling(&first);
    let id = run.sibling_id().unwrap();
    run.kill_agent(&first);
    // Someone points forked.pid elsewhere; the relaunch must put it right again.
    std::fs::write(run.forked_pid_path(), "1").unwrap();

    let second = run.start_agent(&Agent::with_shim());
    wait_until(
        &format!(
            "the second shim adopted the sibling\n{}",
            run.diagnostics(&second)
        ),
        Duration::from_secs(20),
        || {
            run.read(run.sandbox().join("stderr"))
                .unwrap_or_default()
                .contains("adopting the running sibling")
        },
    );
    wait_until(
        "forked.pid names the adopted sibling",
        Duration::from_secs(10),
        || run.forked_pid() == Some(pid),
    );
    assert_eq!(
        run.sibling_id().as_deref(),
        Some(id.as_str()),
        "the same container, no second executor"
    );
    assert_eq!(run.containers_named_sibling().len(), 1);
    run.kill_agent(&second);
    docker_ok(&["kill", &run.sibling_name()]);
    run.wait_sibling_gone();

    // A stopped container with this run's name and labels, as a crash between create and start leaves.
    let stale = run.leftover_sibling("create", "4194305:1");
    let third = run.start_agent(&Agent::with_shim());
    let new_pid = run.wait_for_checkpointed_sibling(&third);
    assert_ne!(
        run.sibling_id().unwrap(),
        stale,
        "the stopped leftover was replaced"
    );
    assert!(pid_alive(new_pid));
}

/// Without checkpointing the agent will not recover the executor, and the shim writes nothing.
#[test]
fn without_checkpointing_no_forked_pid_is_written() {
    let run = Run::new("nockpt");
    let mut agent = Agent::with_shim().args(&["--exit_after=10", "--exit_code=3"]);
    agent.checkpoint = false;
    let name = run.start_agent(&agent);
    run.wait_agent_status(&name);
    assert_eq!(run.agent_status(), Some(3));
    assert!(
        !run.forked_pid_path().exists(),
        "no forked.pid without MESOS_CHECKPOINT=1"
    );
    assert_eq!(run.stdout_lines(), 10);
}

/// On a 1.x agent the configuration file is how settings reach the shim.
#[test]
fn the_configuration_file_reaches_the_shim_on_a_1x_agent() {
    let run = Run::new("config");
    let agent = Agent::with_shim()
        .set(
            "mounts",
            serde_json::json!(["/etc/hostname:/etc/agent-hostname:ro"]),
        )
        .set("labels", serde_json::json!({"team": "infra"}))
        .set("forked_pid_timeout", "5secs".into())
        .set("log_format", "json".into());
    let name = run.start_agent(&agent);
    run.wait_for_checkpointed_sibling(&name);
    let sibling = run.sibling_name();
    assert_eq!(
        docker_ok(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"team\"}}",
            &sibling
        ]),
        "infra"
    );
    let mounts = run.sibling_mounts();
    assert!(
        mounts.contains(&(
            "/etc/hostname".to_string(),
            "/etc/agent-hostname".to_string(),
            false
        )),
        "{mounts:?}"
    );
    assert_eq!(
        docker_ok(&["inspect", "-f", "{{.HostConfig.Privileged}}", &sibling]),
        "false"
    );
    let stderr = run.read(run.sandbox().join("stderr")).unwrap();
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with('{') && l.contains("\"forked.pid now names the sibling\"")),
        "{stderr}"
    );
    // The sibling's init, which reads no file, logs as the file says too: its arguments carry
    // the settings.
    let init_line = |stderr: &str| {
        stderr
            .lines()
            .find(|l| l.contains("sibling init started the executor"))
            .map(str::to_string)
    };
    wait_until("the init's log line", Duration::from_secs(20), || {
        init_line(&run.stderr()).is_some()
    });
    let line = init_line(&run.stderr()).unwrap();
    let event: serde_json::Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("the init's line is not JSON ({e}): {line}"));
    assert_eq!(
        event["fields"]["message"],
        "sibling init started the executor"
    );
}

/// Safe defaults: with no configuration a command executor's sibling is not privileged, gets no
/// capability its launch lacked (Docker's defaults, which the agent container has), and gets
/// exactly the mounts docs/sibling.md lists: its sandbox and its init. No
/// Docker socket: its tasks cannot reach the daemon.
#[test]
fn a_sibling_gets_only_what_the_readme_lists() {
    let run = Run::new("defaults");
    let agent = run.start_agent(&Agent::with_shim());
    run.wait_for_checkpointed_sibling(&agent);
    let inspect = |format: &str| docker_ok(&["inspect", "-f", format, &run.sibling_name()]);
    assert_eq!(inspect("{{.HostConfig.Privileged}}"), "false");
    assert_eq!(inspect("{{json .HostConfig.CapDrop}}"), r#"["ALL"]"#);
    assert_eq!(inspect("{{json .HostConfig.CapAdd}}"), DEFAULT_CAP_ADD);
    assert_eq!(inspect("{{json .HostConfig.Binds}}"), "null");
    let mut mounts = run.sibling_mounts();
    mounts.sort();
    let mut expected = run.default_mounts(&shim_bin());
    expected.sort();
    assert_eq!(mounts, expected, "no other mount");
    assert_eq!(
        inspect("{{.HostConfig.PidMode}} {{.HostConfig.NetworkMode}}"),
        "host host"
    );
    assert_eq!(
        inspect("{{.HostConfig.AutoRemove}}"),
        "true",
        "a daemon without live-restore removes exited siblings itself"
    );
    assert!(
        !run.sibling_name().starts_with("mesos-"),
        "the agent kills unknown mesos-* containers"
    );
}

/// A task's environment is the task's: whatever it holds, the launch is exactly the operator's.
/// Mesos merges the task's variables into the executor's environment, so a framework could
/// otherwise pick the daemon, the image, the mounts and the privileges of its own launch, park
/// the shim, or make a baked relay skip the relay.
#[test]
fn a_tasks_environment_changes_nothing_about_its_launch() {
    for (tag, agent) in [
        ("taskenv", Agent::with_shim()),
        ("taskenvbaked", Agent::baked()),
    ] {
        let run = Run::new(tag);
        let task_env = [
            "DOCKER_HOST=tcp://127.0.0.1:1",
            "EXECUTOR_SHIM_PRIVILEGED=true",
            "EXECUTOR_SHIM_MOUNTS=/:/host",
            "EXECUTOR_SHIM_IMAGE=mesos-executor-shim-test/absent:1",
            "EXECUTOR_SHIM_PAUSE_AT=before-create",
            "EXECUTOR_SHIM_SIBLING=executor-mesos-forged",
            "EXECUTOR_SHIM_NO_SUCH_SETTING=1",
        ];
        let name = run.start_agent(&agent.env("TASK_ENVIRONMENT", &task_env.join(" ")));
        let pid = run.wait_for_checkpointed_sibling(&name);
        assert!(pid_alive(pid));
        let inspect = |format: &str| docker_ok(&["inspect", "-f", format, &run.sibling_name()]);
        assert_eq!(inspect("{{.HostConfig.Privileged}}"), "false", "{tag}");
        assert_eq!(
            inspect("{{json .HostConfig.CapAdd}}"),
            DEFAULT_CAP_ADD,
            "{tag}"
        );
        let mut mounts = run.sibling_mounts();
        mounts.sort();
        let init = if tag == "taskenvbaked" {
            vec![run.default_mounts(&shim_bin())[0].clone()]
        } else {
            run.default_mounts(&shim_bin())
        };
        let mut expected = init;
        expected.sort();
        assert_eq!(mounts, expected, "{tag}: the operator's mounts only");
        let agent_image = docker_ok(&["inspect", "-f", "{{.Image}}", &name]);
        assert_eq!(
            inspect("{{.Image}}"),
            agent_image,
            "{tag}: the agent's image"
        );
        let env = run.executor_file("executor.env");
        for variable in task_env {
            assert!(
                env.lines().any(|l| l == variable),
                "{tag}: the executor sees the task's {variable}: {env}"
            );
        }
        if tag == "taskenvbaked" {
            let argv = run.executor_file("executor.argv");
            assert_eq!(
                argv.lines().next(),
                Some(format!("{EXECUTOR_PATH}.real").as_str()),
                "the stock executor ran in the sibling: {argv}"
            );
        }
        let stderr = run.read(run.sandbox().join("stderr")).unwrap();
        assert!(
            stderr.contains("are not settings")
                && stderr.contains("EXECUTOR_SHIM_NO_SUCH_SETTING")
                && stderr.contains("DOCKER_HOST"),
            "{tag}: {stderr}"
        );
        assert!(
            !stderr.contains("127.0.0.1:1"),
            "{tag}: no values: {stderr}"
        );
        assert!(!stderr.contains("paused"), "{tag}: {stderr}");

        // SIGTERM from the agent still reaches the executor: the shim is not parked.
        run.wait_executor_ready();
        let shim = run.shim_pid().unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(shim as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        assert_eq!(run.wait_agent_status(&name), 143, "{tag}");
    }
}
