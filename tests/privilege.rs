//! Least privilege: a sibling gets the Docker socket only for the executor that uses it. Whoever
//! reaches the socket is root on the host, so by default no command task can reach Docker
//! through its sibling; the docker executor, which runs its task through the socket, keeps it.

mod common;

use common::*;

/// The agent here has the socket at a path of its own (`--docker_socket` style), and a command
/// task probes both that path and the default one, in an image with the docker CLI.
fn agent_with_socket_elsewhere() -> Agent {
    let mut agent = Agent {
        image: DOCKER_AGENT_IMAGE,
        ..Agent::with_shim()
    }
    .set("docker_host", "unix:///run/mesos-agent/docker.sock".into())
    .args(&["--probe_docker=/var/run/docker.sock:/run/mesos-agent/docker.sock"]);
    agent.socket_at = "/run/mesos-agent/docker.sock".into();
    agent
}

/// Launches `agent` for `run` and returns what its command task found, path by path.
fn probe(run: &Run, agent: &Agent) -> Vec<String> {
    let name = run.start_agent(agent);
    run.wait_for_checkpointed_sibling(&name);
    let found = || -> Vec<String> {
        run.read(run.sandbox().join("executor.docker"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };
    wait_until(
        "the task probed for Docker",
        std::time::Duration::from_secs(20),
        || found().len() == 2,
    );
    found()
}

#[test]
fn a_command_task_cannot_reach_docker_unless_the_operator_says_so() {
    let run = Run::new("nodocker");
    assert_eq!(
        probe(&run, &agent_with_socket_elsewhere()),
        [
            "/var/run/docker.sock absent",
            "/run/mesos-agent/docker.sock absent"
        ],
        "no socket at the default path nor where the agent has it"
    );
    let env = run.executor_file("executor.env");
    assert!(
        !env.contains("DOCKER_HOST"),
        "nothing of Docker's added: {env}"
    );
    assert!(
        !run.sibling_mounts()
            .iter()
            .any(|(source, _, _)| source.ends_with(".sock")),
        "{:?}",
        run.sibling_mounts()
    );

    let opted_in = Run::new("withdocker");
    assert_eq!(
        probe(
            &opted_in,
            &agent_with_socket_elsewhere().set("command_executor_docker", true.into())
        ),
        [
            "/var/run/docker.sock reachable",
            "/run/mesos-agent/docker.sock absent"
        ],
        "the operator gave command tasks the socket, at the default path"
    );
}
