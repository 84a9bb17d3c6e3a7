//! Docker containerizer tasks: the agent forks `<launcher_dir>/mesos-docker-executor`, which runs
//! the task container `mesos-<CID>` itself through the Docker socket. A restarted agent counts the
//! executor alive only if its forked.pid lives AND its libprocess address accepts a connection.
//! The stand-in agent and docker executor (docker/test) do what the contract says the real ones do.

mod common;

use std::time::Duration;

use common::*;

/// Control: the stock docker executor dies with its agent container; the restarted agent finds
/// it dead (its address refuses), while the task container runs on unmanaged: the lost task the
/// shim exists to prevent.
#[test]
fn control_the_stock_docker_executor_dies_with_the_agent_container() {
    let run = Run::new("dockercontrol");
    let agent = run.start_agent(&Agent::docker(Agent::stock(), TICKING_TASK));
    wait_until("the task prints", Duration::from_secs(30), || {
        run.task_lines() >= 3
    });
    let pid = run.forked_pid().expect("the agent checkpointed forked.pid");
    assert!(run.read(run.meta().join("pids/libprocess.pid")).is_some());
    run.kill_agent(&agent);
    assert!(!pid_alive(pid), "the stock executor died with its agent");
    let (status, report) = run.recover_docker();
    assert_eq!(status, 1, "found dead: {report}");
    assert!(run.task_running(), "the task container runs on, unmanaged");
}

/// The shim relays mesos-docker-executor: the executor and its task survive the agent's SIGKILL,
/// the task's output keeps reaching the sandbox, and a restarted agent reconnects (forked.pid
/// lives and the libprocess address answers).
#[test]
fn a_docker_task_survives_its_agent_container() {
    let run = Run::new("dockersurvive");
    let agent = Agent::docker(Agent::with_shim(), TICKING_TASK);
    let name = run.start_agent(&agent);
    let pid = run.wait_for_checkpointed_sibling(&name);
    wait_until(
        "the executor reported its address and the task prints",
        Duration::from_secs(30),
        || run.read(run.meta().join("pids/libprocess.pid")).is_some() && run.task_lines() >= 3,
    );
    let argv = run.executor_file("executor.argv");
    let argv: Vec<&str> = argv.lines().collect();
    assert_eq!(argv[0], "/usr/libexec/mesos/mesos-docker-executor");
    assert!(
        argv.contains(&format!("--container={}", run.task_container()).as_str())
            && argv.contains(&"--docker_socket=/run/mesos-executor-shim/docker/docker.sock"),
        "the agent's flags, the socket in its directory: {argv:?}"
    );
    assert!(!run.sibling_name().starts_with("mesos-"));

    run.kill_agent(&name);
    assert!(pid_alive(pid), "the docker executor outlived its agent");
    assert!(run.task_running());
    let before = run.task_lines();
    wait_until(
        "the task's output keeps reaching the sandbox",
        Duration::from_secs(10),
        || run.task_lines() >= before + 3,
    );
    let (status, report) = run.recover_docker();
    assert_eq!(status, 0, "the restarted agent reconnects: {report}");
    assert_eq!(report, format!("alive {} {pid}", run.container_id));
}

/// The task container's exit code is the docker executor's, and so the shim's.
#[test]
fn the_task_containers_exit_code_is_propagated() {
    let run = Run::new("dockerexit");
    let name = run.start_agent(&Agent::docker(
        Agent::with_shim(),
        "echo task tick done; exit 7",
    ));
    assert_eq!(run.wait_agent_status(&name), 7);
    assert!(run.task_lines() >= 1);
    run.wait_sibling_gone();
}

/// SIGTERM sent to the shim reaches the docker executor, which stops its task.
#[test]
fn sigterm_reaches_the_docker_executor_which_stops_its_task() {
    let run = Run::new("dockerterm");
    let name = run.start_agent(&Agent::docker(Agent::with_shim(), TICKING_TASK));
    run.wait_for_checkpointed_sibling(&name);
    wait_until("the task runs", Duration::from_secs(30), || {
        run.task_running()
    });
    let shim = run.shim_pid().unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = run.wait_agent_status(&name);
    assert!(
        status == 143 || status == 137,
        "the stopped task's status: {status}"
    );
    assert!(run
        .read(run.sandbox().join("executor.signals"))
        .is_some_and(|s| s.contains("TERM")));
    assert!(!run.task_running(), "the task was stopped");
}

/// Baked into the agent image under both names: the sibling runs the same image, where the shim
/// hands over to the stock mesos-docker-executor.real.
#[test]
fn a_baked_image_relays_the_docker_executor_too() {
    let run = Run::new("dockerbaked");
    let name = run.start_agent(&Agent::docker(Agent::baked(), TICKING_TASK));
    let pid = run.wait_for_checkpointed_sibling(&name);
    let argv = run.executor_file("executor.argv");
    assert_eq!(
        argv.lines().next(),
        Some("/usr/libexec/mesos/mesos-docker-executor.real"),
        "{argv}"
    );
    wait_until("the task prints", Duration::from_secs(30), || {
        run.task_lines() >= 3
    });
    run.kill_agent(&name);
    assert!(pid_alive(pid));
    assert_eq!(run.recover_docker().0, 0);
}

/// Any --launcher_dir (a source build installs under /usr/local/libexec/mesos): the real executor
/// is the one at the path the agent ran, for both executors, with no configuration.
#[test]
fn any_launcher_dir_works_without_configuration() {
    for (tag, agent) in [
        ("ldcommand", Agent::with_shim()),
        ("lddocker", Agent::docker(Agent::with_shim(), TICKING_TASK)),
    ] {
        let run = Run::new(tag);
        let mut agent = Agent {
            image: DOCKER_AGENT_IMAGE,
            ..agent
        };
        agent.launcher_dir = "/usr/local/libexec/mesos".into();
        let name = run.start_agent(&agent);
        run.wait_for_checkpointed_sibling(&name);
        let argv = run.executor_file("executor.argv");
        assert_eq!(
            argv.lines().next(),
            Some(agent.executor_path().as_str()),
            "{tag}: {argv}"
        );
    }
}

/// The docker executor's sibling gets the directory of the daemon's socket (read-only; a socket
/// file bound there would be the old one after a restart of the daemon), and its `--docker` is
/// the shim, which follows the task container through such a restart; the real CLI is the one
/// the agent named, and the socket the shim's own daemon, wherever `--docker_socket` said.
#[test]
fn the_docker_executor_gets_the_sockets_directory_and_the_shim_as_its_cli() {
    let run = Run::new("dockersocket");
    let socket = "/run/mesos-agent/docker.sock";
    let name = run
        .start_agent(&Agent::docker(Agent::with_shim(), TICKING_TASK).env("DOCKER_SOCKET", socket));
    run.wait_for_checkpointed_sibling(&name);
    wait_until("the task prints", Duration::from_secs(30), || {
        run.task_lines() >= 3
    });
    let mounts = run.sibling_mounts();
    assert!(
        mounts.contains(&(
            "/var/run".to_string(),
            "/run/mesos-executor-shim/docker".to_string(),
            false
        )),
        "{mounts:?}"
    );
    let argv = run.executor_file("executor.argv");
    assert!(argv
        .lines()
        .any(|l| l == "--docker_socket=/run/mesos-executor-shim/docker/docker.sock"));
    assert!(argv
        .lines()
        .any(|l| l == "--docker=/run/mesos-executor-shim/init"));
    let env = run.executor_file("executor.env");
    assert!(
        env.lines()
            .any(|l| l == "MESOS_EXECUTOR_SHIM_DOCKER_CLI=docker"),
        "the real CLI, as the agent named it: {env}"
    );
}
