//! Faults at the worst moments, against the real daemon. After each, a run is either recovered
//! (forked.pid holds the live executor's host pid) or cleanly failed (the checkpointed pid is
//! dead and no sibling remains once `gc` has run), and forked.pid is never empty, partial or
//! unparsable.

mod common;

use std::io::Write;
use std::process::{Child, Command};
use std::time::Duration;

use common::*;

fn temp_files_beside_forked_pid(run: &Run) -> Vec<String> {
    std::fs::read_dir(run.forked_pid_path().parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "forked.pid")
        .collect()
}

/// Freezes the shim at `step`, SIGKILLs the agent container there, restarts the agent, and
/// checks the run ends recovered (`true`) or cleanly failed (`false`) as expected.
fn kill_the_agent_at(step: &str, expect_recovered: bool) {
    let run = Run::new(step);
    let agent = start_paused_at(&run, step);
    let shim = run.shim_pid().unwrap();
    run.kill_agent(&agent);
    wait_until(
        "the shim died with its agent container",
        Duration::from_secs(10),
        || !pid_alive(shim),
    );

    let content = run.read(run.forked_pid_path()).expect("forked.pid exists");
    let pid: u32 = content
        .parse()
        .unwrap_or_else(|_| panic!("forked.pid is not a bare decimal pid: {content:?}"));
    assert!(pid > 0);
    let (status, report) = run.recover();
    assert_ne!(
        status, 2,
        "the restarted agent could not parse forked.pid: {report}"
    );

    if expect_recovered {
        assert_eq!(status, 0, "{step}: recovered: {report}");
        assert_eq!(
            run.sibling_pid(),
            Some(pid),
            "forked.pid names the live sibling"
        );
        run.assert_output_grows();
        run.gc(false);
        assert_eq!(
            run.sibling_pid(),
            Some(pid),
            "gc leaves a recovered executor alone"
        );
    } else {
        assert_eq!(status, 1, "{step}: cleanly failed: {report}");
        assert_eq!(
            Some(pid),
            run.launched_pid(),
            "forked.pid still holds what the agent wrote: the launch helper's pid"
        );
        run.gc(false);
        assert!(
            run.containers_named_sibling().is_empty(),
            "{step}: no sibling after gc: {:?}",
            run.containers_named_sibling()
        );
        assert!(
            temp_files_beside_forked_pid(&run).is_empty(),
            "{step}: {:?}",
            temp_files_beside_forked_pid(&run)
        );
    }
}

#[test]
fn agent_killed_before_the_sibling_is_created() {
    kill_the_agent_at("before-create", false);
}

#[test]
fn agent_killed_between_create_and_start() {
    kill_the_agent_at("before-start", false);
}

#[test]
fn agent_killed_between_start_and_the_forked_pid_rewrite() {
    kill_the_agent_at("before-checkpoint", false);
}

#[test]
fn agent_killed_during_the_forked_pid_rewrite() {
    kill_the_agent_at("during-checkpoint", false);
}

#[test]
fn agent_killed_after_the_forked_pid_rewrite() {
    kill_the_agent_at("after-checkpoint", true);
}

/// A tmpfs that is unmounted however the test ends.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The meta directory's filesystem is full when the shim rewrites forked.pid: the launch fails
/// with a clear error, the agent's forked.pid is intact, and nothing is left behind.
#[test]
fn a_full_disk_during_the_rewrite_keeps_the_old_forked_pid() {
    let run = Run::new("fulldisk");
    let pids = run.forked_pid_path().parent().unwrap().to_path_buf();
    std::fs::create_dir_all(&pids).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4k", "tmpfs"])
        .arg(&pids)
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "mounting a small tmpfs needs root (as CI runs)"
    );
    let _tmpfs = Tmpfs(pids.clone());
    // The agent's forked.pid takes the one page there is.
    let config = run.host_config(serde_json::json!({}));
    let child = spawn_shim(&run, &config, &[], &["--launcher_dir=/usr/libexec/mesos"]);
    let agent_value = run.read(run.forked_pid_path()).unwrap();
    let mut filler = std::fs::File::create(pids.join("filler")).unwrap();
    while filler
        .write_all(&[0u8; 512])
        .and_then(|()| filler.sync_all())
        .is_ok()
    {}
    drop(filler);
    std::fs::remove_file(pids.join("filler")).ok();
    let mut filler = std::fs::File::create(pids.join("filler")).unwrap();
    while filler
        .write_all(&[0u8; 64])
        .and_then(|()| filler.sync_all())
        .is_ok()
    {}

    let out = child.wait_with_output().unwrap();
    let stderr = run.read(run.sandbox().join("stderr")).unwrap();
    assert_eq!(out.status.code(), Some(70), "{stderr}");
    assert!(
        stderr.contains("No space left on device") && stderr.contains("previous content is intact"),
        "{stderr}"
    );
    assert_eq!(
        run.read(run.forked_pid_path()).unwrap(),
        agent_value,
        "the old forked.pid is intact"
    );
    let mut left: Vec<String> = std::fs::read_dir(&pids)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["filler", "forked.pid"], "no temp file left");
    assert!(
        run.containers_named_sibling().is_empty(),
        "the sibling of the failed launch is removed"
    );
}

/// The daemon is away when the launch starts and comes back while the shim retries: the shim's
/// bounded retries carry the launch through. (Away for good, it fails within 10 s: see bad_input.)
#[test]
fn a_briefly_unavailable_daemon_is_waited_for() {
    let run = Run::new("dockerback");
    let socket = run.work_dir.join("docker.sock");
    let config = run.host_config(serde_json::json!({
        "docker_host": format!("unix://{}", socket.display())
    }));
    let mut child = spawn_shim(&run, &config, &[], &[]);
    wait_until(
        "the shim finds no daemon and retries",
        Duration::from_secs(10),
        || {
            run.read(run.sandbox().join("stderr"))
                .unwrap_or_default()
                .contains("Docker daemon not answering yet; retrying")
        },
    );
    let _proxy = common::daemons::DaemonProxy::start(&socket);
    wait_until(
        "the launch went through once the daemon was back",
        Duration::from_secs(20),
        || run.sibling_pid().is_some() && run.sibling_pid() == run.forked_pid(),
    );
    docker_ok(&["kill", &run.sibling_name()]);
    assert_eq!(
        child.wait().unwrap().code(),
        Some(137),
        "the executor's SIGKILL status"
    );
}

/// A hundred launches at once on one daemon: every one is checkpointed with its own sibling's
/// live pid.
#[test]
fn a_hundred_launches_at_once_are_all_checkpointed() {
    const N: usize = 100;
    let runs: Vec<Run> = (0..N).map(|_| Run::new("hundred")).collect();
    let mut children: Vec<Child> = runs
        .iter()
        .map(|run| {
            let config = run.host_config(serde_json::json!({}));
            spawn_shim(run, &config, &[], &["--tick_interval=5"])
        })
        .collect();
    wait_until(
        "all hundred launches are checkpointed",
        Duration::from_secs(240),
        || {
            let names: Vec<String> = runs.iter().map(Run::sibling_name).collect();
            let running = running_pids(&names);
            runs.iter()
                .all(|run| running.get(&run.sibling_name()).copied() == run.forked_pid())
        },
    );
    for run in &runs {
        let pid = run.forked_pid().unwrap();
        assert!(pid_alive(pid), "{}", run.container_id);
    }
    let mut args = vec!["rm".to_string(), "-f".into()];
    args.extend(runs.iter().map(Run::sibling_name));
    docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    for child in &mut children {
        assert_eq!(
            child.wait().unwrap().code(),
            Some(137),
            "each shim exits once its sibling is gone, with its executor's SIGKILL status"
        );
    }
}
