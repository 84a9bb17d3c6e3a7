//! The executor stays inside its Mesos container's cgroups (cgroups v1, Docker's cgroupfs driver).
//!
//! A stand-in linux launcher (the stand-in agent with the host's `/sys/fs/cgroup`) creates
//! `<cgroups_root>/<CID>` in the freezer, memory and cpu hierarchies, sets a memory limit, and
//! moves the forked shim into it before it execs, as Mesos's linux launcher does; its destroy
//! freezes that cgroup, SIGKILLs everything in it and below, thaws it and waits for forked.pid to
//! die. Each run uses its own cgroups root, never Mesos's default `mesos`.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;

/// A limit well above what the shim and an idle executor use, well below what the greedy task
/// asks for.
const MEMORY_LIMIT: u64 = 48 << 20;
const GREEDY_MB: &str = "--allocate_mb=96";

/// These scenarios need what Mesos's linux launcher needs: cgroups v1 and Docker's cgroupfs
/// driver. Elsewhere they fail saying so; they never pass by skipping.
fn require_cgroups_v1_with_cgroupfs() {
    setup();
    let found = docker_ok(&["info", "--format", "{{.CgroupDriver}} {{.CgroupVersion}}"]);
    assert_eq!(
        found, "cgroupfs 1",
        "these scenarios need cgroups v1 and Docker's cgroupfs driver, as Mesos's linux launcher does"
    );
}

/// `controller -> path` of a process's v1 cgroups.
fn cgroups_of(pid: u32) -> HashMap<String, String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mut paths = HashMap::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next(), fields.next(), fields.next());
        if let (Some(controllers), Some(path)) = (controllers, path) {
            for c in controllers.split(',').filter(|c| !c.is_empty()) {
                paths.insert(c.to_string(), path.to_string());
            }
        }
    }
    paths
}

fn linux_agent() -> Agent {
    Agent {
        linux_launcher: Some(MEMORY_LIMIT),
        ..Agent::with_shim()
    }
}

/// The sibling sits under `<root>/<CID>` in every controller the launcher made, and the destroy
/// ends it: the shim reports the executor's SIGKILL and the daemon removes the sibling.
#[test]
fn the_executor_runs_under_its_mesos_container_and_its_destroy_ends_it() {
    require_cgroups_v1_with_cgroupfs();
    let run = Run::new("cgin");
    let agent = run.start_agent(&linux_agent());
    let pid = run.wait_for_checkpointed_sibling(&agent);
    let container = format!("/{}/{}/", run.cgroups_root(), run.container_id);
    let paths = cgroups_of(pid);
    for controller in ["freezer", "memory", "cpu"] {
        assert!(
            paths[controller].starts_with(&container),
            "{controller}: {} is not under {container}",
            paths[controller]
        );
    }
    assert_eq!(
        docker_ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.CgroupParent}}",
            &run.sibling_name()
        ]),
        container.trim_end_matches('/')
    );
    let stderr = run.read(run.sandbox().join("stderr")).unwrap();
    assert!(
        stderr.contains("placing the sibling under the Mesos container's cgroup"),
        "{stderr}"
    );

    let (status, report) = run.destroy();
    assert_eq!(status, 0, "the destroy ended forked.pid: {report}");
    assert!(!pid_alive(pid));
    assert_eq!(run.wait_agent_status(&agent), 137);
    run.wait_sibling_gone();
}

/// A task that allocates beyond its container's memory limit is held to it: the kernel kills
/// inside the container's cgroup, as it would around the stock executor's task. (The shim shares
/// that cgroup, as the stock executor does, so the kernel may pick it too: what is asserted holds
/// whichever it kills.)
#[test]
fn a_task_beyond_its_memory_limit_is_held_to_it() {
    require_cgroups_v1_with_cgroupfs();
    let run = Run::new("cgoom");
    let agent = run.start_agent(&linux_agent().args(&[GREEDY_MB]));
    assert_eq!(
        run.wait_agent_status(&agent),
        137,
        "the greedy executor was OOM-killed"
    );
    let memory = |file: &str| -> u64 {
        std::fs::read_to_string(run.mesos_cgroup("memory").join(file))
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("{file} of the container's memory cgroup"))
    };
    assert!(
        memory("memory.failcnt") >= 1,
        "the container's limit was hit"
    );
    assert!(
        memory("memory.max_usage_in_bytes") <= MEMORY_LIMIT,
        "the container never used more than its limit"
    );
    let stdout = run.read(run.sandbox().join("stdout")).unwrap_or_default();
    assert!(stdout.contains("allocating 96 MiB"), "{stdout}");
    assert!(!stdout.contains("allocated"), "{stdout}");
    run.wait_sibling_gone();
}

/// An executor that exits on its own: the shim reports its status and removes the cgroups Docker
/// made for the sibling where the launcher had made none, leaving the launcher's to the agent.
#[test]
fn after_an_exit_no_cgroup_docker_made_is_left_behind() {
    require_cgroups_v1_with_cgroupfs();
    let run = Run::new("cgexit");
    let agent = run.start_agent(&linux_agent().args(&["--exit_after=3", "--exit_code=4"]));
    assert_eq!(run.wait_agent_status(&agent), 4);
    for controller in ["pids", "blkio", "devices"] {
        assert!(
            !run.mesos_cgroup(controller).exists(),
            "{controller}: an empty cgroup left behind: {}",
            run.read(run.sandbox().join("stderr")).unwrap_or_default()
        );
    }
    for controller in ["freezer", "memory", "cpu"] {
        assert!(
            run.mesos_cgroup(controller).exists(),
            "{controller}: the launcher's own"
        );
    }
    run.wait_sibling_gone();
}

/// The agent container dies and a new one recovers the executor by forked.pid; the cgroups live
/// in the host's kernel, so the recovered container's destroy still ends the executor.
#[test]
fn destroy_reaches_the_executor_after_an_agent_restart() {
    require_cgroups_v1_with_cgroupfs();
    let run = Run::new("cgrestart");
    let agent = run.start_agent(&linux_agent());
    let pid = run.wait_for_checkpointed_sibling(&agent);
    run.kill_agent(&agent);
    assert!(pid_alive(pid), "the executor outlived its agent container");
    let (status, report) = run.recover();
    assert_eq!(status, 0, "recovered by forked.pid: {report}");
    let (status, report) = run.destroy();
    assert_eq!(status, 0, "the destroy ended forked.pid: {report}");
    assert!(!pid_alive(pid));
    run.wait_sibling_gone();
}

/// Control: with Docker's own placement (what the shim did before, and still does with
/// `mesos_cgroups: false`) and without the init's watch on the shim (`end_with_shim: false`), the
/// executor escapes both the memory limit and the destroy, which in a real agent then hangs until
/// the executor happens to exit.
#[test]
fn control_dockers_placement_escapes_the_limit_and_the_destroy() {
    require_cgroups_v1_with_cgroupfs();
    let run = Run::new("cgcontrol");
    let agent = run.start_agent(
        &linux_agent()
            .set("mesos_cgroups", false.into())
            .set("end_with_shim", false.into())
            .args(&[GREEDY_MB]),
    );
    let pid = run.wait_for_checkpointed_sibling(&agent);
    wait_until(
        "the greedy executor got all it asked for",
        Duration::from_secs(30),
        || {
            run.read(run.sandbox().join("stdout"))
                .unwrap_or_default()
                .contains("allocated 100663296 bytes")
        },
    );
    let container = format!("/{}/{}/", run.cgroups_root(), run.container_id);
    assert!(
        !cgroups_of(pid)["memory"].starts_with(&container),
        "outside the container's cgroup"
    );
    let stderr = run.read(run.sandbox().join("stderr")).unwrap();
    assert!(stderr.contains("mesos_cgroups is false"), "{stderr}");
    let (status, report) = run.destroy();
    assert_eq!(status, 1, "the destroy does not reach it: {report}");
    assert!(
        pid_alive(pid),
        "the executor survived its container's destroy"
    );
}

/// With Docker's placement the destroy still ends the executor: it kills the shim, which is in
/// the container's cgroup, while the agent lives, and the sibling's init ends the executor.
#[test]
fn a_destroy_that_kills_only_the_shim_still_ends_the_executor() {
    require_cgroups_v1_with_cgroupfs();
    let run = Run::new("cgshimonly");
    let agent = run.start_agent(&linux_agent().set("mesos_cgroups", false.into()));
    let pid = run.wait_for_checkpointed_sibling(&agent);
    let container = format!("/{}/{}/", run.cgroups_root(), run.container_id);
    assert!(!cgroups_of(pid)["freezer"].starts_with(&container));
    let (status, report) = run.destroy();
    assert_eq!(
        status,
        0,
        "the destroy ends the executor: {report}\n{}",
        run.diagnostics(&agent)
    );
    assert!(!pid_alive(pid));
    let stderr = run.read(run.sandbox().join("stderr")).unwrap();
    assert!(
        stderr.contains("the agent that forked the shim outlived it"),
        "{stderr}"
    );
}
