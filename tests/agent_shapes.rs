//! The agent shapes operators run beyond the plain one: a drop-in works wherever the stock
//! executor works (contract page, *Directory layout*: the agent does not resolve `--work_dir`).

mod common;

use std::os::unix::fs::symlink;
use std::path::PathBuf;

use common::*;

/// A work_dir given to the agent through a link (`--work_dir=/var/lib/mesos`, a link to a data
/// disk): the agent names the sandbox through the link in `MESOS_DIRECTORY` and sets the working
/// directory to its real path. The shim relays the launch: the executor finds its sandbox where
/// its environment names it, `forked.pid` (written by the agent through the link) names the
/// sibling, and the executor outlives its agent container, found again by a restarted agent.
#[test]
fn a_work_dir_reached_through_a_link_works_as_with_the_stock_executor() {
    let run = Run::new("linkedwd");
    // Beside the work_dir, never under it: a link under it is what a task could plant.
    let links = PathBuf::from(format!("{}.links", run.work_dir.display()));
    std::fs::create_dir_all(&links).unwrap();
    let named = links.join("work");
    symlink(&run.work_dir, &named).unwrap();
    let mut agent = Agent::with_shim().volume(&format!("{0}:{0}:ro", links.display()));
    agent.work_dir_named = Some(named.display().to_string());
    let name = run.start_agent(&agent);
    let pid = run.wait_for_checkpointed_sibling(&name);
    run.wait_executor_ready();
    let below = run
        .sandbox()
        .strip_prefix(&run.work_dir)
        .unwrap()
        .to_path_buf();
    let named_sandbox = named.join(below);
    assert!(
        run.executor_file("executor.env")
            .contains(&format!("MESOS_DIRECTORY={}", named_sandbox.display())),
        "{}",
        run.executor_file("executor.env")
    );
    run.kill_agent(&name);
    assert!(pid_alive(pid), "the executor outlived its agent container");
    run.assert_output_grows();
    assert_eq!(run.recover().0, 0, "{}", run.stderr());
    let _ = std::fs::remove_dir_all(&links);
}

/// Several agents on one Docker daemon, each with its own work_dir (a test cluster on one host,
/// an agent per disk). With agent B down, what agent A does (a launch and the sweep of the
/// siblings gone shims left, `gc` in its container) and a `gc` on the host leave B's executor
/// running, and B's restarted agent finds it alive.
#[test]
fn an_agent_that_is_down_keeps_its_executors_while_another_on_its_daemon_works() {
    let a = Run::new("twoagentsA");
    let mut b = Run::in_scope("twoagentsB", &a.scope);
    b.agent_id = "S-test-1".into();
    let b_agent = b.start_agent(&Agent::with_shim());
    let b_pid = b.wait_for_checkpointed_sibling(&b_agent);
    b.wait_executor_ready();
    b.kill_agent(&b_agent);

    // A's first launch sweeps, while B is down.
    let bin = format!(
        "{}:/usr/local/bin/mesos-executor-shim:ro",
        shim_bin().display()
    );
    let a_agent = a.start_agent(&Agent::with_shim().volume(&bin));
    a.wait_for_checkpointed_sibling(&a_agent);
    let in_a = a.docker(&[
        "exec",
        &a_agent,
        "/usr/local/bin/mesos-executor-shim",
        "gc",
        "--json",
        "--label",
        &a.scope_filter(),
    ]);
    assert_eq!(
        in_a.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&in_a.stderr)
    );
    let on_host = a.gc(false);
    for actions in [serde_json::from_slice(&in_a.stdout).unwrap(), on_host] {
        let touched_b = actions
            .as_array()
            .unwrap()
            .iter()
            .any(|action| action["container_id"] == b.container_id.as_str());
        assert!(!touched_b, "{actions}");
    }
    assert!(pid_alive(b_pid), "B's executor outlives what A does");
    assert_eq!(b.sibling_pid(), Some(b_pid));
    b.assert_output_grows();
    assert_eq!(b.recover().0, 0, "{}", b.stderr());
}

/// An agent container whose root filesystem is read-only (`docker run --read-only`, with the
/// work_dir and the socket mounted as ever): the shim relays the launch all the same (its cache
/// of the daemon's answers is not needed), and the executor outlives the agent container.
#[test]
fn an_agent_container_with_a_read_only_root_works() {
    let run = Run::new("readonlyroot");
    let agent = run.start_agent(&Agent::with_shim().run_args(&["--read-only", "--tmpfs", "/tmp"]));
    let pid = run.wait_for_checkpointed_sibling(&agent);
    run.wait_executor_ready();
    run.kill_agent(&agent);
    assert!(pid_alive(pid), "the executor outlived its agent container");
    run.assert_output_grows();
    assert_eq!(run.recover().0, 0, "{}", run.stderr());
}
