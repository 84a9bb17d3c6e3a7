//! The operator's side: zero configuration on a standard setup, `doctor`, `ps`, `gc`, and the
//! compose example.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn shim_json(args: &[&str]) -> (i32, Value) {
    let out = Command::new(shim_bin()).args(args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}): {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), value)
}

/// `doctor` run in an agent container as an operator would (`docker exec`-style, here `run`).
fn doctor_in_agent_container(run: &Run, pid_host: bool) -> (i32, Vec<Value>) {
    doctor_in(run, pid_host, AGENT_IMAGE)
}

fn doctor_in(run: &Run, pid_host: bool, image: &str) -> (i32, Vec<Value>) {
    let wd = run.work_dir.display().to_string();
    let scope = format!("{SCOPE_LABEL}={}", run.scope);
    let mut args = vec![
        "run",
        "--rm",
        "--label",
        &scope,
        "--net=host",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
    ];
    if pid_host {
        args.push("--pid=host");
    }
    let wd_bind = format!("{wd}:{wd}");
    let installed = shim_installed();
    args.extend(installed.iter().map(String::as_str));
    args.extend([
        "-v",
        &wd_bind,
        image,
        "/usr/local/bin/mesos-executor-shim",
        "doctor",
        "--json",
        "--work-dir",
        &wd,
    ]);
    let out = docker(&args);
    let checks: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), checks)
}

/// `-v` options that install the shim as docs/install.md says: over both executors of the default
/// launcher_dir, and as `/usr/local/bin/mesos-executor-shim` for the operator's commands.
fn shim_installed() -> Vec<String> {
    [
        "/usr/libexec/mesos/mesos-executor",
        "/usr/libexec/mesos/mesos-docker-executor",
        "/usr/local/bin/mesos-executor-shim",
    ]
    .iter()
    .flat_map(|at| {
        [
            "-v".to_string(),
            format!("{}:{at}:ro", shim_bin().display()),
        ]
    })
    .collect()
}

/// The detail line of a check.
fn detail<'a>(checks: &'a [Value], name: &str) -> &'a str {
    check(checks, name)["detail"].as_str().unwrap_or_default()
}

fn check<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {checks:?}"))
}

#[test]
fn doctor_is_green_in_a_well_started_agent_container() {
    let run = Run::new("doctorok");
    let (code, checks) = doctor_in_agent_container(&run, true);
    assert_eq!(code, 0, "{checks:#?}");
    assert!(checks.iter().all(|c| c["ok"] == true), "{checks:#?}");
    for name in [
        "docker",
        "daemon-restart",
        "agent-container",
        "pid-namespace",
        "work-dir",
        "executor-image",
        "docker-executor",
        "init",
        "docker-socket",
        "cgroups",
        "mesos-agent",
        "executor-path",
        "isolators",
        "exit-storm",
    ] {
        check(&checks, name);
    }
    // The suite's daemon (Debian's 20.10.24+dfsg1 on its CI machine) has moby/moby#46661:
    // doctor warns, naming the releases to upgrade to, and the check does not fail.
    let version = docker_ok(&["version", "--format", "{{.Server.Version}}"]);
    let numbers: Vec<u32> = version
        .split(['.', '+', '-', '~'])
        .take(3)
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    let storm = check(&checks, "exit-storm");
    let warning = storm["warning"].as_str().unwrap_or_default();
    if numbers[..] < [20, 10, 27][..] {
        assert!(
            warning.contains("moby/moby#46661")
                && warning.contains("20.10.27 or later")
                && warning.contains("23.0.0 or later"),
            "Docker {version}: {storm}"
        );
    } else {
        assert_eq!(warning, "", "Docker {version}: {storm}");
    }
    // The suite's daemon runs without live-restore, and the socket is mounted as a file: both
    // are said, and neither fails the check.
    let restart = check(&checks, "daemon-restart");
    assert!(
        restart["warning"]
            .as_str()
            .unwrap_or_default()
            .contains("stops every sibling"),
        "{restart}"
    );
    let socket = check(&checks, "docker-socket");
    assert!(
        detail(&checks, "docker-socket").contains("command executors' siblings get none"),
        "{socket}"
    );
    assert!(
        socket["warning"]
            .as_str()
            .unwrap_or_default()
            .contains("mounted into the agent container as a file"),
        "{socket}"
    );
    assert!(
        detail(&checks, "init").contains("as their first process"),
        "{checks:#?}"
    );
    assert!(
        detail(&checks, "docker-executor").contains("runs no docker containerizer tasks"),
        "{checks:#?}"
    );
    let (code, checks) = doctor_in(&run, true, DOCKER_AGENT_IMAGE);
    assert_eq!(code, 0, "{checks:#?}");
    assert!(
        detail(&checks, "docker-executor")
            .contains("/usr/libexec/mesos/mesos-docker-executor and /usr/bin/docker"),
        "{checks:#?}"
    );
    assert!(
        detail(&checks, "cgroups").contains("cgroups v1, Docker's cgroupfs driver"),
        "{checks:#?}"
    );
    assert!(detail(&checks, "docker").contains("API 1."), "{checks:#?}");
}

#[test]
fn doctor_fails_in_an_agent_container_without_host_pids() {
    let run = Run::new("doctorpid");
    let (code, checks) = doctor_in_agent_container(&run, false);
    assert_eq!(code, 1);
    let pid = check(&checks, "pid-namespace");
    assert_eq!(pid["ok"], false);
    assert!(pid["fix"].as_str().unwrap().contains("--pid=host"), "{pid}");
    assert_eq!(
        check(&checks, "work-dir")["ok"],
        true,
        "only what is wrong fails: {checks:#?}"
    );
}

/// Starts a container (`docker run` options `options`, the run's scope label) whose main process
/// is named `mesos-agent` with `flags`: a script of that name, which stays while its child
/// sleeps. Its name and host pid, once it runs under that name.
fn start_named_agent(run: &Run, tag: &str, options: &[&str], flags: &[&str]) -> (String, u32) {
    let name = format!("{tag}-{}", run.container_id);
    let scope = format!("{SCOPE_LABEL}={}", run.scope);
    let script =
        "printf '#!/bin/sh\nsleep 2147483647\n' >/tmp/mesos-agent && chmod +x /tmp/mesos-agent \
                  && exec /tmp/mesos-agent \"$@\"";
    let mut args = vec!["run", "-d", "--name", &name, "--label", &scope];
    args.extend(options);
    args.extend([AGENT_IMAGE, "sh", "-c", script, "sh"]);
    args.extend(flags);
    run.docker_ok(&args);
    run.remove_on_drop(&name);
    let mut pid = 0;
    wait_until(
        &format!("{name} runs mesos-agent"),
        Duration::from_secs(30),
        || {
            pid = run
                .docker_ok(&["inspect", "-f", "{{.State.Pid}}", &name])
                .parse()
                .unwrap_or(0);
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == "mesos-agent")
        },
    );
    (name, pid)
}

/// `doctor --json` run in container `name`, as an operator runs it with `docker exec`.
fn doctor_exec(run: &Run, name: &str) -> (i32, Vec<Value>) {
    let wd = run.work_dir.display().to_string();
    let out = run.docker(&[
        "exec",
        name,
        "/usr/local/bin/mesos-executor-shim",
        "doctor",
        "--json",
        "--work-dir",
        &wd,
    ]);
    let checks: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), checks)
}

/// `docker run` options of an agent container as docs/install.md starts one, less the shim's mounts.
fn agent_container_options(run: &Run) -> Vec<String> {
    let wd = run.work_dir.display().to_string();
    [
        "--pid=host",
        "--net=host",
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
    ]
    .map(String::from)
    .into_iter()
    .chain([format!("{wd}:{wd}")])
    .collect()
}

#[test]
fn doctor_judges_its_own_containers_agent_not_an_earlier_fake_with_host_pids() {
    let run = Run::new("doctorfake");
    let wd = format!("--work_dir={}", run.work_dir.display());
    // A task's container with host pids, started first: its mesos-agent has the lower pid and
    // claims the same work_dir (which it cannot reach).
    let (_, fake) = start_named_agent(
        &run,
        "fake",
        &["--pid=host"],
        &["--isolation=cgroups/cpu,cgroups/mem", &wd],
    );
    let mut options = agent_container_options(&run);
    options.extend(shim_installed());
    options.extend(["-e", "MESOS_ISOLATION=filesystem/linux,docker/runtime"].map(String::from));
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let (agent, real) = start_named_agent(&run, "agent", &options, &[&wd]);
    let (_, checks) = doctor_exec(&run, &agent);
    let judged = detail(&checks, "mesos-agent");
    assert!(
        judged.contains(&format!(
            "judging pid {real}, the one in doctor's own mount namespace"
        )),
        "fake {fake}, agent {real}: {checks:#?}"
    );
    let isolators = detail(&checks, "isolators");
    assert!(
        isolators.contains("isolation filesystem/linux,docker/runtime (from MESOS_ISOLATION)"),
        "{checks:#?}"
    );
    assert!(!isolators.contains("cgroups/cpu"), "{checks:#?}");
    assert_eq!(check(&checks, "executor-path")["ok"], true, "{checks:#?}");
    assert!(
        detail(&checks, "executor-path")
            .contains("/usr/libexec/mesos/mesos-executor is this binary"),
        "{checks:#?}"
    );
}

#[test]
fn doctor_fails_when_the_shim_is_not_at_the_executor_path() {
    let run = Run::new("doctornoshim");
    let wd = format!("--work_dir={}", run.work_dir.display());
    let mut options = agent_container_options(&run);
    let only_bin = format!(
        "{}:/usr/local/bin/mesos-executor-shim:ro",
        shim_bin().display()
    );
    options.extend(["-v".to_string(), only_bin]);
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let (agent, _) = start_named_agent(
        &run,
        "agent",
        &options,
        &[&wd, "--launcher_dir=/usr/libexec/mesos"],
    );
    let (code, checks) = doctor_exec(&run, &agent);
    assert_eq!(code, 1, "{checks:#?}");
    let path = check(&checks, "executor-path");
    assert_eq!(path["ok"], false, "{path}");
    let detail = path["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("(from the agent's --launcher_dir)")
            && detail.contains(
                "/usr/libexec/mesos/mesos-executor is not this binary: the agent will run it"
            ),
        "{path}"
    );
    assert!(
        path["fix"]
            .as_str()
            .unwrap_or_default()
            .contains("bind-mount the shim over /usr/libexec/mesos/mesos-executor"),
        "{path}"
    );
}

/// The agent's work_dir mounted from another host path: the shim finds the host path in the
/// agent container's mounts and binds it into the sibling, with no configuration for it. The
/// tunables come from the configuration file.
#[test]
fn zero_configuration_finds_the_host_path_of_the_work_dir() {
    let run = Run::new("hostpath");
    // cap_add adds within the launch's bounding set: the agent container has SYS_PTRACE.
    let mut agent = Agent::with_shim()
        .run_args(&["--cap-add", "SYS_PTRACE"])
        .set("cap_add", serde_json::json!(["SYS_PTRACE"]))
        .set("memory", "64MB".into())
        .set("cpus", 0.5.into());
    agent.work_dir_in_container = Some("/var/lib/mesos".into());
    let name = run.start_agent(&agent);
    let pid = run.wait_for_checkpointed_sibling(&name);
    let sibling = run.sibling_name();
    let mounts = run.sibling_mounts();
    let sandbox_inside = Path::new("/var/lib/mesos").join(
        run.sandbox()
            .strip_prefix(&run.work_dir)
            .expect("the sandbox is under the work_dir"),
    );
    assert!(
        mounts.contains(&(
            run.sandbox().display().to_string(),
            sandbox_inside.display().to_string(),
            true
        )),
        "the sandbox's host path, found from the agent container's mounts: {mounts:?}"
    );
    assert_eq!(
        docker_ok(&["inspect", "-f", "{{json .HostConfig.CapAdd}}", &sibling]),
        DEFAULT_CAP_ADD.replace("]", ",\"SYS_PTRACE\"]")
    );
    assert_eq!(
        docker_ok(&[
            "inspect",
            "-f",
            "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
            &sibling
        ]),
        "67108864 500000000"
    );
    // From the host, where /var/lib/mesos is not the agent's work_dir, ps finds the run through
    // the host paths the sibling records.
    let (code, entries) = shim_json(&["ps", "--json", "--label", &run.scope_filter()]);
    assert_eq!(code, 0);
    let entry = &entries[0];
    assert_eq!(entry["forked_pid"], "matches", "{entries:#}");
    assert_eq!(entry["completed"], false, "{entries:#}");
    run.kill_agent(&name);
    assert!(pid_alive(pid));
    run.assert_output_grows();
}

#[test]
fn ps_shows_each_sibling_and_whether_forked_pid_finds_it() {
    let run = Run::new("ps");
    let agent = run.start_agent(&Agent::with_shim());
    let pid = run.wait_for_checkpointed_sibling(&agent);
    let (code, entries) = shim_json(&["ps", "--json", "--label", &run.scope_filter()]);
    assert_eq!(code, 0);
    let entry = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["container_id"] == run.container_id.as_str())
        .unwrap_or_else(|| panic!("{} not in {entries:#}", run.container_id));
    assert_eq!(entry["state"], "running");
    assert_eq!(entry["host_pid"], pid);
    assert_eq!(entry["forked_pid"], "matches");
    assert_eq!(entry["completed"], false);
    assert_eq!(entry["executor_id"], run.executor_id.as_str());
    assert_eq!(entry["framework_id"], run.framework_id.as_str());

    std::fs::write(run.forked_pid_path().with_file_name("tmp"), "1").unwrap();
    run.kill_agent(&agent);
    std::fs::rename(
        run.forked_pid_path().with_file_name("tmp"),
        run.forked_pid_path(),
    )
    .unwrap();
    let (_, entries) = shim_json(&["ps", "--json", "--label", &run.scope_filter()]);
    let entry = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["container_id"] == run.container_id.as_str())
        .unwrap();
    assert_eq!(entry["forked_pid"]["differs"]["pid"], 1, "{entry}");
    let text = Command::new(shim_bin())
        .args(["ps", "--label", &run.scope_filter()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with(&run.container_id) && l.contains("differs (1)")),
        "{text}"
    );
    // The table says whose ID each column holds, and prints Mesos's IDs whole.
    let header = text.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("MESOS CONTAINER") && header.ends_with("DOCKER CONTAINER"),
        "{text}"
    );
    let line = ps_line(&run);
    for id in [&run.executor_id, &run.framework_id] {
        assert!(line.contains(&format!("  {id}  ")), "{id} whole: {text}");
    }
    assert!(line.contains("  running  "), "{line}");
    // The run's state in words: a sibling whose executor exited (auto-remove off, as a daemon
    // that lost track would leave it) says how it ended.
    let exited = Run::in_scope("psexited", &run.scope);
    exited.leftover_sibling("run", "4194305:1");
    assert!(ps_line(&exited).contains("  exited 0  "), "{text}");
}

/// `ps`'s line for `run`'s sibling (the scope's siblings listed).
fn ps_line(run: &Run) -> String {
    let out = Command::new(shim_bin())
        .args(["ps", "--label", &run.scope_filter()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.starts_with(&run.container_id))
        .unwrap_or_else(|| panic!("{} not listed: {text}", run.container_id))
        .to_string()
}

/// With no daemon where the file says, `ps` says so in one line and leaves with the unavailable
/// status, and `doctor` in one failed check: no warning for each retry.
#[test]
fn no_daemon_is_one_line() {
    let run = Run::new("nodaemon");
    let socket = run.work_dir.join("nobody.sock");
    let file = run.config_file(
        &serde_json::from_value(serde_json::json!({
            "docker_host": format!("unix://{}", socket.display())
        }))
        .unwrap(),
    );
    let shim = |args: &[&str]| {
        Command::new(shim_bin())
            .args(args)
            .arg("--config")
            .arg(&file)
            .env_remove("DOCKER_HOST")
            .output()
            .unwrap()
    };
    let out = shim(&["ps"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "no Docker daemon answers at unix://{}",
            socket.display()
        )),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    let out = shim(&["doctor", "--work-dir", &run.work_dir.display().to_string()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let docker: Vec<&str> = stdout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("docker"))
        .collect();
    assert_eq!(docker.len(), 1, "{stdout}");
    assert!(
        docker[0].starts_with("FAIL") && docker[0].contains("no Docker daemon answers at"),
        "{stdout}"
    );
    assert!(docker[0].contains("fix docker_host"), "{stdout}");
}

/// gc collects an exited sibling, the sibling of a completed run and the sibling of a run whose
/// meta directory is gone, and leaves the live executor alone; --dry-run removes nothing.
#[test]
fn gc_leaves_a_live_executor_alone_and_collects_the_rest() {
    let live = Run::new("gclive");
    let scope = live.scope.clone();
    let completed = Run::in_scope("gcdone", &scope);
    let gone = Run::in_scope("gcgone", &scope);
    let exited = Run::in_scope("gcexited", &scope);
    let mut pids = Vec::new();
    for run in [&live, &completed, &gone] {
        let agent = run.start_agent(&Agent::with_shim());
        pids.push(run.wait_for_checkpointed_sibling(&agent));
        run.kill_agent(&agent);
    }
    std::fs::write(completed.meta().join("executor.sentinel"), "").unwrap();
    std::fs::remove_dir_all(gone.meta()).unwrap();
    // A sibling whose executor exited (auto-remove off, as a daemon that lost track would leave
    // it), and one created by a launch whose shim died before starting it.
    let abandoned = Run::in_scope("gcabandoned", &scope);
    exited.leftover_sibling("run", "4194305:1");
    abandoned.leftover_sibling("create", "4194305:1");

    let ours = |actions: &Value| -> Vec<(String, String, String)> {
        let mut found: Vec<_> = actions
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| {
                [&live, &completed, &gone, &exited, &abandoned]
                    .iter()
                    .any(|r| a["container_id"] == r.container_id.as_str())
            })
            .map(|a| {
                (
                    a["container_id"].as_str().unwrap().to_string(),
                    a["reason"].as_str().unwrap().to_string(),
                    a["action"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        found.sort();
        found
    };
    let mut expected = [
        (completed.container_id.clone(), "run_completed".to_string()),
        (gone.container_id.clone(), "run_gone".to_string()),
        (exited.container_id.clone(), "exited".to_string()),
        (abandoned.container_id.clone(), "never_started".to_string()),
    ];
    expected.sort();

    let dry = live.gc(true);
    let with = |action: &str| {
        expected
            .iter()
            .map(|(c, r)| (c.clone(), r.clone(), action.to_string()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ours(&dry), with("would_remove"));
    for run in [&completed, &gone, &exited, &abandoned] {
        assert_eq!(
            run.containers_named_sibling().len(),
            1,
            "--dry-run removes nothing"
        );
    }

    let done = live.gc(false);
    assert_eq!(
        done.as_array().unwrap().len(),
        expected.len(),
        "gc touched only this test's siblings: {done}"
    );
    assert_eq!(ours(&done), with("removed"));
    for run in [&completed, &gone, &exited, &abandoned] {
        assert!(
            run.containers_named_sibling().is_empty(),
            "{} collected",
            run.container_id
        );
    }
    assert!(pid_alive(pids[0]), "the live executor runs on");
    assert_eq!(live.sibling_pid(), Some(pids[0]));
    assert!(!pid_alive(pids[1]) && !pid_alive(pids[2]));
}

/// `gc --every` keeps running, one pass per period, until SIGTERM.
#[test]
fn gc_every_runs_as_a_loop_until_terminated() {
    use std::io::BufRead;
    let run = Run::new("gcevery");
    let mut child = Command::new(shim_bin())
        .args(["gc", "--every", "1secs", "--dry-run", "--json", "--label"])
        .arg(run.scope_filter())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for pass in 0..2 {
        let line = lines.next().expect("a pass").unwrap();
        assert_eq!(line, "[]", "pass {pass}: nothing of this test's to collect");
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let out = Command::new(shim_bin())
        .args(["gc", "--every", "10ms"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(64),
        "a period under 1secs is refused, as a bad command line"
    );
}

/// The operator commands take their settings from `--config FILE`, and DOCKER_HOST of the
/// operator's shell names the endpoint over the file's.
#[test]
fn operator_commands_take_a_config_file_and_the_shells_docker_host() {
    let run = Run::new("opconfig");
    let file =
        run.config_file(&serde_json::from_str(r#"{"docker_host": "tcp://127.0.0.1:9"}"#).unwrap());
    let ps = |docker_host: Option<&str>| {
        let mut cmd = Command::new(shim_bin());
        cmd.args(["ps", "--json", "--config"]).arg(&file);
        cmd.args(["--label", &run.scope_filter()]);
        match docker_host {
            Some(h) => cmd.env("DOCKER_HOST", h),
            None => cmd.env_remove("DOCKER_HOST"),
        };
        cmd.output().unwrap()
    };
    let out = ps(None);
    assert_eq!(out.status.code(), Some(69));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("tcp://127.0.0.1:9"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ps(Some("unix:///var/run/docker.sock"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let out = Command::new(shim_bin())
        .args(["ps", "--config", "/nonexistent/config.json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/config.json"));
}

/// The README's first command: the demo tells the whole story and cleans up after itself.
#[test]
fn the_demo_shows_the_executor_surviving_its_agent() {
    setup();
    let out = Command::new("sh")
        .arg(repo().join("docker/demo.sh"))
        .env("SHIM_BINARY", shim_bin())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("agent container: exited"), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("executor pid ") && l.ends_with(": alive")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("alive demo-")),
        "the new agent found it: {stdout}"
    );
    assert!(
        stdout.contains("matches"),
        "ps showed forked.pid matching: {stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("docker executor pid ") && l.ends_with(": alive")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("alive demo-") && l.contains("-docker ")),
        "the docker containerizer reconnected: {stdout}"
    );
    // It ends by naming the pages to read next, each of them there.
    let next: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.contains("where to look next"))
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(next.contains(&"docs/operating.md"), "{stdout}");
    for page in next {
        assert!(
            repo().join(page).is_file(),
            "the demo names {page}, which is not there"
        );
    }
    let left = docker_ok(&[
        "ps",
        "-a",
        "--filter",
        "name=demo-",
        "--format",
        "{{.Names}}",
    ]);
    assert!(
        !left
            .lines()
            .any(|n| n.contains("demo-mesosexecutorshimdemo")),
        "the demo left {left}"
    );
}

/// The deployment to copy is valid as it ships, and mounts what docs/operating.md says: the
/// socket's directory (never the socket file), the configuration directory read-only at the
/// shim's fixed path, the work_dir at the same path, in the agent and in `gc`, which runs
/// `--every 5m` with host pids. `tests/deployment.rs` brings it up against a real Mesos.
#[test]
fn the_compose_deployment_is_valid_as_it_ships() {
    let file = repo().join("docker/compose.yml");
    let compose = compose_command();
    let out = Command::new(&compose[0])
        .args(&compose[1..])
        .arg("-f")
        .arg(&file)
        .args(["config", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let mounts: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("x-shim-mounts: &shim-mounts"))
        .skip(1)
        .take_while(|l| l.starts_with("  - "))
        .map(|l| l.trim_start_matches("  - "))
        .collect();
    assert_eq!(
        mounts,
        [
            "${DOCKER_SOCKET_DIR:-/run/docker-api}:/run/docker-api:ro",
            "${SHIM_CONFIG_DIR:-/etc/mesos-executor-shim}:/etc/mesos-executor-shim:ro",
            "${MESOS_WORK_DIR:-/var/lib/mesos}:${MESOS_WORK_DIR:-/var/lib/mesos}",
        ]
    );
    // Each service's block, by its name at the services' indent.
    let service = |name: &str| -> String {
        text.lines()
            .skip_while(|l| *l != format!("  {name}:"))
            .skip(1)
            .take_while(|l| l.is_empty() || l.starts_with("   ") || l.starts_with("  #"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for name in ["mesos-agent", "gc"] {
        let block = service(name);
        assert!(
            block.contains("    volumes: *shim-mounts"),
            "{name}: {block}"
        );
        assert!(block.contains("    pid: host"), "{name}: {block}");
    }
    assert!(!text.contains("docker.sock:"), "a socket file is mounted");
    let gc = service("gc");
    assert!(
        gc.contains("      - gc\n      - --every\n      - ${GC_EVERY:-5m}"),
        "{gc}"
    );
}

/// A framework that does not checkpoint has no meta run directory (contract page, *Checkpointing
/// decides what exists*): gc, and the sweep of a launch beside it, never take that for a
/// finished run. A running executor of such a run is kept, with its shim alive or gone (it exits
/// by itself once its agent is gone); once it has exited it is collected.
#[test]
fn gc_and_the_sweep_never_remove_a_running_executor_of_a_run_that_does_not_checkpoint() {
    let running = Run::new("nockpt");
    let no_checkpoint = Agent {
        checkpoint: false,
        ..Agent::with_shim()
    };
    let agent = running.start_agent(&no_checkpoint);
    let pid = wait_for_running_sibling(&running, &agent);
    assert!(
        !running.meta().exists(),
        "the agent made no meta run directory"
    );
    assert_eq!(
        running.docker_ok(&[
            "inspect",
            "-f",
            "{{index .Config.Labels \"io.mesos-executor-shim.checkpoint\"}}",
            &running.sibling_name()
        ]),
        "false"
    );
    let collected = |actions: &Value| {
        actions
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["container_id"] == running.container_id.as_str())
    };
    assert!(!collected(&running.gc(false)), "shim alive");
    // A launch beside it sweeps the work_dir's leftovers.
    let beside = running.beside("nockptbeside");
    beside.launch_in(&agent, &[]);
    wait_for_running_sibling(&beside, &agent);
    // Its shim gone with the agent container: still running, still kept.
    running.kill_agent(&agent);
    assert!(!collected(&running.gc(false)), "shim gone");
    assert!(pid_alive(pid));
    running.assert_output_grows();
    // Once it has exited, it goes: by the daemon's auto-remove where that is used, else by gc.
    running.docker_ok(&["kill", "--signal", "KILL", &running.sibling_name()]);
    wait_until(
        "the sibling is gone or stopped",
        Duration::from_secs(20),
        || running.sibling_pid().is_none(),
    );
    running.gc(false);
    running.wait_sibling_gone();
}

/// Waits until `run`'s sibling runs (without checkpointing, nothing names it in forked.pid).
fn wait_for_running_sibling(run: &Run, agent: &str) -> u32 {
    let mut pid = 0;
    wait_until(
        &format!("the sibling runs\n{}", run.diagnostics(agent)),
        Duration::from_secs(30),
        || match run.sibling_pid() {
            Some(p) => {
                pid = p;
                true
            }
            None => false,
        },
    );
    pid
}

/// `gc --every` ends within seconds of SIGINT, and of SIGTERM, sent during its third pass while
/// a request of that pass goes unanswered (a daemon that hangs, whose requests may each wait
/// 600 s), with status 0: each pass is raced against the signals, caught once for the loop.
#[test]
fn gc_every_ends_promptly_on_a_signal_during_its_third_pass() {
    use std::io::BufRead;
    use std::time::Instant;
    for signal in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
    ] {
        let run = Run::new("gcsignal");
        let socket = run.work_dir.join("docker.sock");
        let proxy = common::daemons::DaemonProxy::start(&socket);
        let mut child = Command::new(shim_bin())
            .args(["gc", "--every", "1secs", "--json", "--label"])
            .arg(run.scope_filter())
            .env("DOCKER_HOST", format!("unix://{}", socket.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        for pass in 0..2 {
            let line = lines.next().expect("a pass").unwrap();
            assert_eq!(line, "[]", "{signal}: pass {pass}");
        }
        proxy.hold();
        wait_until(
            "the third pass waits on the daemon",
            Duration::from_secs(10),
            || proxy.held() > 0,
        );
        let sent = Instant::now();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
        let mut status = None;
        wait_until(
            &format!("gc --every ends after {signal}"),
            Duration::from_secs(5),
            || {
                status = child.try_wait().unwrap();
                status.is_some()
            },
        );
        assert_eq!(status.unwrap().code(), Some(0), "{signal}");
        assert!(sent.elapsed() < Duration::from_secs(5), "{signal}");
    }
}

/// `gc` and `ps` in a private PID namespace on the host (`unshare --pid --fork --mount-proc`),
/// where no pid of the host is seen and no container of their own tells them so, against a
/// launch held in the middle of its forked.pid rewrite: its shim lives, forked.pid still names
/// the launch helper, the shim's temp file is beside it. Neither takes a pid it cannot see for a
/// dead one: gc removes neither the sibling nor the temp file, and both say that no pid is
/// judged.
#[test]
fn gc_and_ps_in_a_private_pid_namespace_judge_no_pid() {
    let run = Run::new("gcpidns");
    let step = "during-checkpoint";
    start_paused_at(&run, step);
    let sibling = run.sibling_id().expect("the sibling exists");
    let temp_files = || {
        std::fs::read_dir(run.forked_pid_path().parent().unwrap())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name() != "forked.pid")
            .count()
    };
    assert_eq!(temp_files(), 1, "the shim's rewrite is under way");
    let in_private_pid_namespace = |args: &[&str]| {
        let out = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc"])
            .arg(shim_bin())
            .args(args)
            .args(["--label", &run.scope_filter()])
            .output()
            .expect("unshare (util-linux) runs the commands in a PID namespace of their own");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (actions, log) = in_private_pid_namespace(&["gc", "--json"]);
    assert_eq!(actions.trim(), "[]", "{log}");
    assert!(log.contains("host pids are not seen from here"), "{log}");
    let (report, _) = in_private_pid_namespace(&["gc"]);
    assert_eq!(
        report.matches("every pid is taken as alive").count(),
        1,
        "{report}"
    );
    let (listing, _) = in_private_pid_namespace(&["ps"]);
    assert!(listing.contains("every pid is taken as alive"), "{listing}");
    assert!(listing.contains(&run.container_id), "{listing}");
    assert_eq!(run.sibling_id(), Some(sibling), "gc kept the sibling");
    assert_eq!(temp_files(), 1, "gc kept the live shim's temp file");
    assert!(run.shim_pid().is_some_and(pid_alive), "the shim lives on");
    // From the host, where its pid is seen, the live shim's launch is kept all the same.
    assert!(!run
        .gc(false)
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["container_id"] == run.container_id.as_str()));
    assert!(run.sibling_id().is_some());
}

/// `<pid>:<start time>` of this test process, as a shim labels its sibling with its own.
fn own_identity() -> String {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let after_name = stat.rsplit(')').next().unwrap();
    let start = after_name.split_whitespace().nth(19).unwrap();
    format!("{}:{start}", std::process::id())
}

/// A running container made as the release before the `checkpoint` label (7bd4361, label
/// set 1) made a sibling of `run`: its name, its init's command (a script standing in, which
/// sleeps), its sandbox bound at its path, and exactly that release's labels, with `shim` and
/// `extra` (and the test's scope). The agent made no meta run directory: the framework does
/// not checkpoint.
fn set_1_sibling(run: &Run, shim: &str, extra: &[String]) {
    let sandbox = run.sandbox();
    std::fs::create_dir_all(&sandbox).unwrap();
    std::fs::create_dir_all(run.work_dir.join("meta/slaves")).unwrap();
    let init = sandbox.join("init.sh");
    std::fs::write(&init, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&init, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (sandbox, wd) = (sandbox.display(), run.work_dir.display());
    let forked = run.forked_pid_path().display().to_string();
    let mut labels = vec![
        format!("io.mesos-executor-shim.sandbox={sandbox}"),
        format!("io.mesos-executor-shim.forked-pid={forked}"),
        "io.mesos-executor-shim.executor=mesos-executor".to_string(),
        "io.mesos-executor-shim.init-protocol=1".to_string(),
        format!("io.mesos-executor-shim.work-dir-host={wd}"),
        format!("io.mesos-executor-shim.forked-pid-host={forked}"),
        format!("io.mesos-executor-shim.shim={shim}"),
    ];
    labels.extend(extra.iter().cloned());
    let mut args = vec![
        "run".to_string(),
        "-d".into(),
        "--name".into(),
        run.sibling_name(),
        "--mount".into(),
        format!("type=bind,source={sandbox},target={sandbox}"),
        "--entrypoint".into(),
        init.display().to_string(),
    ];
    args.extend(run.sibling_labels(&labels));
    args.extend([AGENT_IMAGE.to_string(), "mesos-executor-shim-init".into()]);
    run.docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// An upgrade never makes gc remove a running executor of an earlier release: a sibling with
/// the exact labels of the release before the `checkpoint` label, of a framework that does not
/// checkpoint, is kept while its shim lives, and kept with the reason once it is gone; a
/// sibling whose labels are of a set newer than this release is kept with the reason, even
/// exited.
#[test]
fn gc_keeps_what_it_cannot_prove_dead_whatever_release_made_it() {
    let alive = Run::new("set1alive");
    let scope = alive.scope.clone();
    let gone = Run::in_scope("set1gone", &scope);
    let newer = Run::in_scope("newerset", &scope);
    set_1_sibling(&alive, &own_identity(), &[]);
    set_1_sibling(&gone, "4194305:1", &[]);
    set_1_sibling(
        &newer,
        "4194305:1",
        &[
            "io.mesos-executor-shim.label-set=4".into(),
            "io.mesos-executor-shim.checkpoint=true".into(),
        ],
    );
    newer.docker_ok(&["kill", &newer.sibling_name()]);
    wait_until("the newer sibling exited", Duration::from_secs(20), || {
        newer.sibling_pid().is_none()
    });
    assert_eq!(alive.gc(false), serde_json::json!([]), "nothing removed");
    let out = Command::new(shim_bin())
        .args(["gc", "--label", &alive.scope_filter()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        !report.contains(&alive.sibling_name()),
        "a sibling whose shim lives is kept silently: {report}"
    );
    assert!(
        report.lines().any(|l| l
            .starts_with(&format!("kept {}: cannot judge", gone.sibling_name()))
            && l.contains("do not say whether the run checkpoints")),
        "{report}"
    );
    assert!(
        report.lines().any(|l| l
            .starts_with(&format!("kept {}: cannot judge", newer.sibling_name()))
            && l.contains("set 4, newer than this release's 3")),
        "{report}"
    );
    for run in [&alive, &gone, &newer] {
        assert_eq!(run.containers_named_sibling().len(), 1, "{report}");
    }
    assert!(alive.sibling_pid().is_some() && gone.sibling_pid().is_some());
}
