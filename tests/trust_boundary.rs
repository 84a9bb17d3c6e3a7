//! A task cannot steer the shim (issue: the trust boundary). Mesos gives a task's own environment
//! priority over the agent's `MESOS_*` (`containerizer.cpp`, "the priority of the environment",
//! first the user specified environment in CommandInfo; contract page, *The task's environment
//! reaches the executor (and wins)*), and the stand-in agent does the same: every scenario here
//! sets the task's variables through `TASK_ENVIRONMENT`. What a task cannot set is the working directory
//! the agent gives the executor (the sandbox) and the directories the agent made.

mod common;

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use common::*;

/// The task's environment for the stand-in agent: `K=V` pairs, as the task's CommandInfo has them.
fn task_env(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A task's environment that names `victim`'s run: its sandbox and its IDs.
fn claiming_the_run_of(victim: &Run) -> String {
    let sandbox = victim.sandbox().display().to_string();
    task_env(&[
        ("MESOS_DIRECTORY", sandbox.clone()),
        ("MESOS_SANDBOX", sandbox),
        ("MESOS_EXECUTOR_ID", victim.executor_id.clone()),
        ("MESOS_FRAMEWORK_ID", victim.framework_id.clone()),
    ])
}

/// Makes, inside `run`'s sandbox (as an earlier task of the same framework could), a look-alike
/// run of the same IDs whose container directory is a link to `target`. Returns its path.
fn look_alike_run(run: &Run, target: &Path) -> String {
    let runs = run.sandbox().join(format!(
        "x/slaves/{}/frameworks/{}/executors/{}/runs",
        run.agent_id, run.framework_id, run.executor_id
    ));
    std::fs::create_dir_all(&runs).unwrap();
    let fake = runs.join(&run.container_id);
    symlink(target, &fake).unwrap();
    fake.display().to_string()
}

/// `MESOS_DIRECTORY` naming a look-alike run whose last component links to the agent's `meta/`,
/// or to `/`: the shim refuses before anything is made, and the link's target is untouched.
#[test]
fn a_look_alike_run_through_a_link_is_refused_before_anything_is_made() {
    for (tag, target) in [("tometa", None), ("toroot", Some("/"))] {
        let run = Run::new(tag);
        let meta = run.work_dir.join("meta");
        std::fs::create_dir_all(&meta).unwrap();
        let target = target.map(Path::new).unwrap_or(&meta);
        let fake = look_alike_run(&run, target);
        let agent = run.start_agent(&Agent::with_shim().env(
            "TASK_ENVIRONMENT",
            &task_env(&[("MESOS_DIRECTORY", fake.clone()), ("MESOS_SANDBOX", fake)]),
        ));
        let status = run.wait_agent_status(&agent);
        assert_eq!(status, 64, "{}", run.diagnostics(&agent));
        let stderr = run.stderr();
        assert!(
            stderr.contains("is a symbolic link") || stderr.contains("symbolic link at"),
            "{stderr}"
        );
        assert!(run.containers_named_sibling().is_empty());
        // Nothing was written through the link.
        assert!(!meta.join("stdout").exists() && !meta.join("stderr").exists());
        assert!(!Path::new("/stdout").exists());
    }
}

/// `MESOS_DIRECTORY` naming another executor's real sandbox (every ID set to match it): refused,
/// and the other run's executor and checkpoint are unharmed.
#[test]
fn another_runs_sandbox_in_the_environment_is_refused_and_that_run_is_unharmed() {
    let victim = Run::new("victim");
    let (_agents, pids) = start_agents(std::slice::from_ref(&victim), &Agent::with_shim());
    let attacker = victim.beside("attacker");
    let agent = attacker
        .start_agent(&Agent::with_shim().env("TASK_ENVIRONMENT", &claiming_the_run_of(&victim)));
    let status = attacker.wait_agent_status(&agent);
    assert_eq!(status, 64, "{}", attacker.diagnostics(&agent));
    assert!(
        attacker
            .stderr()
            .contains("is not the directory the agent started the shim in"),
        "{}",
        attacker.stderr()
    );
    assert!(attacker.containers_named_sibling().is_empty());
    assert_eq!(victim.sibling_pid(), Some(pids[0]));
    assert_eq!(victim.forked_pid(), Some(pids[0]));
    victim.assert_output_grows();
}

/// A docker executor launch in a baked image whose environment looks like Mesos's own executor
/// container (`--docker_mesos_image`: `MESOS_DIRECTORY` names a sandbox that is not the working
/// directory): the daemon's name for the shim's container is the agent's, not
/// `mesos-<CID>.executor`, so the shim does not become the stock executor beside it; it refuses
/// the launch as before, and the other run is unharmed.
#[test]
fn a_task_cannot_pass_a_relay_off_as_mesos_own_executor_container() {
    let victim = Run::new("ecvictim");
    let (_agents, pids) = start_agents(std::slice::from_ref(&victim), &Agent::with_shim());
    let attacker = victim.beside("ecattacker");
    let agent = attacker.start_agent(
        &Agent::docker(Agent::baked(), TICKING_TASK)
            .env("TASK_ENVIRONMENT", &claiming_the_run_of(&victim)),
    );
    let status = attacker.wait_agent_status(&agent);
    assert_eq!(status, 64, "{}", attacker.diagnostics(&agent));
    let stderr = attacker.stderr();
    assert!(
        stderr.contains("is not the directory the agent started the shim in"),
        "{stderr}"
    );
    assert!(!stderr.contains("in place"), "{stderr}");
    assert!(attacker.containers_named_sibling().is_empty());
    assert_eq!(victim.sibling_pid(), Some(pids[0]));
    victim.assert_output_grows();
}

/// `EXECUTOR_SHIM_CONFIG` in the task's environment naming a root-owned file that would make the
/// sibling privileged and give it the host's `/etc`: the relay reads only its own file, so the
/// sibling is made as the operator configured it.
#[test]
fn a_configuration_file_named_in_the_tasks_environment_changes_nothing() {
    let run = Run::new("cfgvar");
    let evil = run.config_file(
        serde_json::json!({
            "privileged": true,
            "mounts": ["/etc:/host-etc:ro"],
            "labels": {"evil": "yes"}
        })
        .as_object()
        .unwrap(),
    );
    let agent = run.start_agent(
        &Agent::with_shim()
            .env(
                "TASK_ENVIRONMENT",
                "EXECUTOR_SHIM_CONFIG=/opt/other/config.json",
            )
            .volume(&format!("{}:/opt/other/config.json:ro", evil.display())),
    );
    run.wait_for_checkpointed_sibling(&agent);
    let name = run.sibling_name();
    assert_eq!(
        run.docker_ok(&["inspect", "-f", "{{.HostConfig.Privileged}}", &name]),
        "false"
    );
    assert!(
        !run.sibling_mounts()
            .iter()
            .any(|(_, dest, _)| dest == "/host-etc"),
        "{:?}",
        run.sibling_mounts()
    );
    assert_eq!(
        run.docker_ok(&["inspect", "-f", "{{index .Config.Labels \"evil\"}}", &name]),
        ""
    );
    // The task's variable reaches its executor, as it would the stock executor.
    assert!(run
        .executor_file("executor.env")
        .contains("EXECUTOR_SHIM_CONFIG=/opt/other/config.json"));
}

/// Two runs of one agent whose sandboxes link to persistent volumes of different roles: each
/// sibling gets its own volume, read-write at its own path, and nothing else of `volumes/`.
#[test]
fn each_sibling_gets_only_the_persistent_volumes_its_sandbox_links_to() {
    let web = Run::new("volweb");
    let db = web.beside("voldb");
    let volume = |role: &str| web.work_dir.join(format!("volumes/roles/{role}/p-{role}"));
    for (run, role) in [(&web, "web"), (&db, "db")] {
        std::fs::create_dir_all(volume(role)).unwrap();
        std::fs::create_dir_all(run.sandbox()).unwrap();
        symlink(volume(role), run.sandbox().join("data")).unwrap();
    }
    let agents = [
        web.start_agent(&Agent::with_shim()),
        db.start_agent(&Agent::with_shim()),
    ];
    web.wait_for_checkpointed_sibling(&agents[0]);
    db.wait_for_checkpointed_sibling(&agents[1]);
    for (run, mine, theirs) in [(&web, "web", "db"), (&db, "db", "web")] {
        let mounts = run.sibling_mounts();
        let mine = volume(mine).display().to_string();
        assert!(
            mounts
                .iter()
                .any(|(src, dest, rw)| *src == mine && *dest == mine && *rw),
            "{mounts:?}"
        );
        let volumes = web.work_dir.join("volumes").display().to_string();
        let theirs = volume(theirs).display().to_string();
        assert!(
            !mounts
                .iter()
                .any(|(src, _, _)| *src == theirs || *src == volumes),
            "{mounts:?}"
        );
    }
}

/// What a task can plant in its sandbox where the shim reads its executor's exit record: a FIFO
/// (a blocking open would hang the shim), a link to a record elsewhere (one that would say the
/// executor succeeded), a 1 GiB file, a success that names a stopping signal. The sibling is then killed before its init records
/// anything: the shim refuses each at once, says why, and reports the kill.
#[test]
fn a_planted_exit_record_never_hangs_redirects_or_exhausts_the_shim() {
    for (tag, why) in [
        ("fiforecord", "not a regular file"),
        ("linkrecord", "symbolic link"),
        ("hugerecord", "more than the 4096"),
        ("stoprecord", "does not end a process"),
    ] {
        let run = Run::new(tag);
        let agent = run.start_agent(&Agent::with_shim());
        run.wait_for_checkpointed_sibling(&agent);
        run.wait_executor_ready();
        let record = run.sandbox().join(".mesos-executor-shim.exit");
        match tag {
            "fiforecord" => {
                nix::unistd::mkfifo(&record, nix::sys::stat::Mode::from_bits_truncate(0o644))
                    .unwrap()
            }
            "linkrecord" => {
                let elsewhere = run.work_dir.join("forged");
                std::fs::write(&elsewhere, r#"{"protocol":1,"status":0}"#).unwrap();
                symlink(&elsewhere, &record).unwrap();
            }
            // A success that would stop the waiting shim: the agent would never see an exit.
            "stoprecord" => {
                std::fs::write(&record, r#"{"protocol":1,"status":0,"signal":19}"#).unwrap()
            }
            _ => std::fs::File::create(&record)
                .unwrap()
                .set_len(1 << 30)
                .unwrap(),
        }
        run.docker_ok(&["kill", "--signal", "KILL", &run.sibling_name()]);
        let status = run.wait_agent_status(&agent);
        assert_eq!(status, 137, "{tag}: {}", run.diagnostics(&agent));
        let stderr = run.stderr();
        assert!(stderr.contains(why), "{tag}: {stderr}");
    }
}

/// A link or a FIFO planted where the sibling's init opens the executor's output: the init opens
/// neither (never follows, never blocks), writes nothing through the link, and fails at once
/// with a message. The init runs here as in a sibling (its marker mount, the sandbox at its path).
#[test]
fn the_init_never_opens_a_planted_link_or_fifo_as_the_executors_output() {
    let run = Run::new("plantedout");
    std::fs::create_dir_all(run.sandbox()).unwrap();
    let sandbox = run.sandbox().display().to_string();
    let outside = run.work_dir.join("outside");
    std::fs::write(&outside, "untouched\n").unwrap();
    for (planted, why) in [("link", "symbolic link"), ("fifo", "stdout")] {
        let stdout = run.sandbox().join("stdout");
        let _ = std::fs::remove_file(&stdout);
        if planted == "link" {
            symlink(&outside, &stdout).unwrap();
        } else {
            nix::unistd::mkfifo(&stdout, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        }
        let init = format!("{}:/run/mesos-executor-shim/init:ro", shim_bin().display());
        let sandbox_mount = format!("{sandbox}:{sandbox}:rw");
        let started = std::time::Instant::now();
        let out = docker(&[
            "run",
            "--rm",
            "--tmpfs",
            "/run/mesos-executor-shim/sibling:ro,size=4k",
            "-v",
            &init,
            "-v",
            &sandbox_mount,
            "--entrypoint",
            "/run/mesos-executor-shim/init",
            AGENT_IMAGE,
            "mesos-executor-shim-init",
            "protocol=1",
            &format!("stdout={sandbox}/stdout"),
            &format!("stderr={sandbox}/stderr"),
            &format!("exit-record={sandbox}/record-{planted}"),
            "--",
            "/bin/sh",
            "-c",
            "echo written",
        ]);
        assert_eq!(
            out.status.code(),
            Some(70),
            "{planted}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        assert!(
            run.stderr().contains(why),
            "{planted}: the init says why in the sandbox's stderr: {}",
            run.stderr()
        );
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "untouched\n");
    }
}

/// A task that plants a device node where its executor's exit is recorded, then kills its init
/// so that nothing replaces the node: the shim never opens it (an inotify watch on the sandbox
/// sees no open of it; opening a device is itself the action), reports a failure, and leaves no
/// sibling. The control: a real open of the same name is seen by the same watch.
#[test]
fn a_device_node_planted_as_the_exit_record_is_never_opened() {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    let run = Run::new("devrecord");
    let agent = run.start_agent(&Agent::with_shim());
    run.wait_for_checkpointed_sibling(&agent);
    run.wait_executor_ready();
    let record = run.sandbox().join(".mesos-executor-shim.exit");
    // The null device: any open of it is harmless, and seen.
    mknod(
        &record,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o644),
        makedev(1, 3),
    )
    .unwrap();
    let watch = OpenWatch::on(&run.sandbox());
    run.docker_ok(&["kill", "--signal", "KILL", &run.sibling_name()]);
    let status = run.wait_agent_status(&agent);
    assert_eq!(status, 137, "{}", run.diagnostics(&agent));
    assert!(run.stderr().contains("device node"), "{}", run.stderr());
    let opened = |events: Vec<String>| {
        events
            .iter()
            .any(|e| e.contains("IN_OPEN") && e.contains(".mesos-executor-shim.exit"))
    };
    assert!(!opened(watch.events()), "the shim opened the planted node");
    run.wait_sibling_gone();
    drop(std::fs::File::open(&record).unwrap());
    assert!(opened(watch.events()), "the watch must see a real open");
}

/// An executor that exits leaving a process that writes to its stdout for ever, after its shim
/// is gone (the agent container killed; the init writes the output itself): the init ends the
/// leftover, records the exit and exits. Before, it read the pipe for ever, never recorded the
/// exit, and never exited.
#[test]
fn an_orphan_that_writes_for_ever_does_not_hold_the_exit() {
    let run = Run::new("orphanwriter");
    let agent = run.start_agent(&Agent::with_shim().env("CONTAINER_LOGGER", "pipe").args(&[
        "--exit_on_file=exit-now",
        "--orphan_writer=1",
        "--exit_code=3",
    ]));
    run.wait_for_checkpointed_sibling(&agent);
    run.wait_executor_ready();
    run.kill_agent(&agent);
    std::fs::write(run.sandbox().join("exit-now"), "").unwrap();
    let record = run.sandbox().join(".mesos-executor-shim.exit");
    wait_until(
        "the init records the executor's exit",
        Duration::from_secs(30),
        || {
            run.read(&record)
                .is_some_and(|r| r.contains(r#""status":3"#))
        },
    );
    wait_until("the sibling's init exits", Duration::from_secs(30), || {
        // Gone (removed by the daemon), or there and stopped.
        let out = run.docker(&["inspect", "-f", "{{.State.Running}}", &run.sibling_name()]);
        !out.status.success() || String::from_utf8_lossy(&out.stdout).trim() == "false"
    });
    assert!(
        run.stderr()
            .contains("ending what the executor left running"),
        "the init ended the leftover before it recorded the exit: {}",
        run.stderr()
    );
}

/// A framework can put any label on its docker task's container (`DockerInfo.parameters`), a
/// copy of every sibling label included. Three such containers, none made by a shim, each
/// labelled with the run's IDs and its paths: one named as the run's sibling and mounting its
/// sandbox but running `sleep`; one whose command looks like the init's but whose name is not
/// the sibling's, exited (gc's first pick, were it a sibling); one with an escape sequence in
/// its executor-id. Their `forked-pid-host` names a FIFO (a blocking open would hang for ever)
/// and their `forked-pid` a character device, both in the agent's layout, beside files named
/// as a dead shim's temp files. `ps`, `gc --dry-run` and `gc` open nothing there (an inotify
/// watch sees no open), remove nothing, and `ps` prints the labels escaped.
#[test]
fn a_tenants_container_with_every_sibling_label_is_never_read_from_or_removed() {
    let run = Run::new("tenant");
    let pids = run.forked_pid_path().parent().unwrap().to_path_buf();
    let decoys = plant_decoys(&run, &pids);
    let named_as_sibling = tenant_container(&run, &run.sibling_name(), &run.executor_id, true);
    let exited_name = format!("tenant-{}-exited", run.container_id);
    tenant_container(&run, &exited_name, &run.executor_id, false);
    let escape_name = format!("tenant-{}-escape", run.container_id);
    tenant_container(&run, &escape_name, "app\u{1b}[31mred", true);
    let watch = OpenWatch::on(&pids);

    let (stdout, _) = shim_within(&["ps", "--label", &run.scope_filter()]);
    assert!(
        !stdout.contains('\u{1b}'),
        "a raw escape reached the terminal: {stdout:?}"
    );
    assert!(stdout.contains("app\\u{1b}[31mred"), "{stdout}");
    assert!(stdout.contains("NOT SIBLINGS"), "{stdout}");
    for name in [&run.sibling_name(), &exited_name, &escape_name] {
        assert!(
            stdout.lines().any(|l| l.starts_with(name.as_str())),
            "{name}: {stdout}"
        );
    }
    let (json, _) = shim_within(&["ps", "--json", "--label", &run.scope_filter()]);
    assert_eq!(json.trim(), "[]", "none of them is listed as a sibling");
    for dry_run in [true, false] {
        let actions = run.gc(dry_run);
        assert_eq!(actions, serde_json::json!([]), "gc (dry run: {dry_run})");
    }
    let (text, _) = shim_within(&["gc", "--label", &run.scope_filter()]);
    assert!(
        text.contains("3 labelled as siblings but not ones left alone"),
        "{text}"
    );

    assert_eq!(
        watch.events(),
        Vec::<String>::new(),
        "ps or gc opened or removed something"
    );
    for name in [&named_as_sibling, &exited_name, &escape_name] {
        run.docker_ok(&["inspect", "-f", "{{.Id}}", name]);
    }
    let running = run.docker_ok(&["inspect", "-f", "{{.State.Running}}", &named_as_sibling]);
    assert_eq!(running, "true");
    for decoy in decoys {
        assert!(
            decoy.symlink_metadata().is_ok(),
            "{} is gone",
            decoy.display()
        );
    }
}

/// In `pids`, in the agent's layout of `run`: forked.pid a FIFO, `null` a character device
/// (`/dev/null`'s numbers: opening it is harmless, but is an open), and regular files named as the
/// temp files of a dead shim (pid 4194305 is above every pid_max) beside each. Returns them all.
fn plant_decoys(run: &Run, pids: &Path) -> Vec<std::path::PathBuf> {
    use nix::sys::stat::{makedev, mknod, Mode, SFlag};
    std::fs::create_dir_all(pids).unwrap();
    std::fs::create_dir_all(run.sandbox()).unwrap();
    let fifo = pids.join("forked.pid");
    nix::unistd::mkfifo(&fifo, Mode::from_bits_truncate(0o600)).unwrap();
    let device = pids.join("null");
    mknod(
        &device,
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o600),
        makedev(1, 3),
    )
    .expect("mknod of a character device (the tests run as root)");
    let mut decoys = vec![fifo, device];
    for name in [".forked.pid.shim-4194305-0", ".null.shim-4194305-0"] {
        std::fs::write(pids.join(name), "1").unwrap();
        decoys.push(pids.join(name));
    }
    decoys
}

/// A plain container named `name` (not made by a shim) carrying a tenant's copy of every label a
/// shim puts on `run`'s sibling, with `executor_id` as its executor-id and the run's sandbox
/// bound at its path; `running`: `sleep`, else an init-like command that has exited.
fn tenant_container(run: &Run, name: &str, executor_id: &str, running: bool) -> String {
    let forked_pid = run.forked_pid_path().display().to_string();
    let device = run.forked_pid_path().with_file_name("null");
    let sandbox = run.sandbox().display().to_string();
    let mut labels = run.sibling_labels(&[
        format!("io.mesos-executor-shim.sandbox={sandbox}"),
        format!("io.mesos-executor-shim.forked-pid={}", device.display()),
        format!(
            "io.mesos-executor-shim.work-dir-host={}",
            run.work_dir.display()
        ),
        format!("io.mesos-executor-shim.forked-pid-host={forked_pid}"),
        "io.mesos-executor-shim.shim=4194305:1".into(),
        "io.mesos-executor-shim.executor=mesos-executor".into(),
        "io.mesos-executor-shim.init-protocol=1".into(),
        "io.mesos-executor-shim.checkpoint=true".into(),
    ]);
    let executor_label = format!("io.mesos-executor-shim.executor-id={}", run.executor_id);
    let at = labels.iter().position(|l| *l == executor_label).unwrap();
    labels[at] = format!("io.mesos-executor-shim.executor-id={executor_id}");
    let mut args: Vec<String> = vec!["run".into(), "--name".into(), name.into()];
    run.remove_on_drop(name);
    if running {
        args.extend(["-d".into(), "--entrypoint".into(), "/bin/sleep".into()]);
    } else {
        args.extend(["--entrypoint".into(), "/bin/true".into()]);
    }
    args.extend([
        "--mount".into(),
        format!("type=bind,source={sandbox},target={sandbox}"),
    ]);
    args.extend(labels);
    args.push(AGENT_IMAGE.into());
    args.push(
        if running {
            "3600"
        } else {
            "mesos-executor-shim-init"
        }
        .into(),
    );
    run.docker_ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    name.to_string()
}

/// Runs the shim's CLI with `args`; fails the test if it has not finished within 60 s (a blocking
/// open of the FIFO would never return). Its stdout and stderr.
fn shim_within(args: &[&str]) -> (String, String) {
    let mut child = std::process::Command::new(shim_bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    let deadline = std::time::Duration::from_secs(60);
    let finished = wait_until_or_not(deadline, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !finished {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        finished,
        "{args:?} blocked (on the FIFO?): {stdout}{stderr}"
    );
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{args:?}: {stderr}");
    (stdout, stderr)
}

/// Polls `done` until it holds (true) or `timeout` passes (false).
fn wait_until_or_not(timeout: std::time::Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    done()
}

/// An inotify watch on a directory for any open of it or of what it holds, a read, a write, a
/// removal or a rename.
struct OpenWatch(nix::sys::inotify::Inotify);

impl OpenWatch {
    fn on(dir: &Path) -> OpenWatch {
        use nix::sys::inotify::{AddWatchFlags as F, InitFlags, Inotify};
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).unwrap();
        let what = F::IN_OPEN | F::IN_ACCESS | F::IN_MODIFY | F::IN_DELETE | F::IN_MOVED_FROM;
        inotify.add_watch(dir, what).unwrap();
        OpenWatch(inotify)
    }

    /// What happened since the watch began, one line each (`<mask> <name>`).
    fn events(&self) -> Vec<String> {
        match self.0.read_events() {
            Ok(events) => events
                .iter()
                .map(|e| format!("{:?} {:?}", e.mask, e.name))
                .collect(),
            Err(nix::errno::Errno::EAGAIN) => Vec::new(),
            Err(e) => panic!("reading the inotify watch: {e}"),
        }
    }
}

/// The task's environment is the executor's, never the shim's own. A framework sets the
/// variables its libraries would obey with root's power: the resolver's (`HOSTALIASES` naming a
/// file the task planted in its sandbox, the shim's working directory, that maps a name to
/// another host), and std's `RUST_MIN_STACK` (so large that no thread could start, the output
/// thread a container logger needs among them). The launch works, the output reaches the logger
/// through the shim, the relay's own environment is empty from its start, the waiting mode's is
/// empty too (the kernel's copy of it, `/proc/<pid>/environ`, included), and the executor in
/// the sibling still sees every one of the task's variables.
#[test]
fn the_tasks_environment_never_steers_the_shims_own_process() {
    let run = Run::new("ownenv");
    std::fs::create_dir_all(run.sandbox()).unwrap();
    std::fs::write(run.sandbox().join("aliases"), "docker forged.invalid\n").unwrap();
    let task = [
        "HOSTALIASES=/proc/self/cwd/aliases",
        "LOCALDOMAIN=forged.invalid",
        "RES_OPTIONS=ndots:15",
        "RUST_MIN_STACK=1000000000000000",
        "RUST_BACKTRACE=full",
    ];
    let agent = run.start_agent(
        &Agent::with_shim()
            .env("TASK_ENVIRONMENT", &task.join(" "))
            .env("CONTAINER_LOGGER", "pipe")
            .set("forked_pid_guard", "1secs".into())
            .set("log_level", "debug".into()),
    );
    run.wait_for_checkpointed_sibling(&agent);
    let logger = |name: &str| {
        run.read(run.standin_records().join(name))
            .unwrap_or_default()
    };
    wait_until(
        &format!(
            "the executor's ticks reach the logger through the shim's output thread\n{}\n{}",
            logger("logger.stderr"),
            run.diagnostics(&agent)
        ),
        Duration::from_secs(30),
        || logger("logger.stdout").lines().any(|l| l == "tick 3"),
    );
    let shim_log = logger("logger.stderr");
    assert!(
        shim_log.contains("own_variables=0"),
        "the relay's own environment is empty: {shim_log}"
    );
    let shim = run.shim_pid().unwrap();
    wait_until(
        "the shim enters its waiting mode",
        Duration::from_secs(30),
        || {
            std::fs::read(format!("/proc/{shim}/cmdline"))
                .is_ok_and(|c| c.starts_with(b"mesos-executor-shim-wait\0"))
        },
    );
    let environ = std::fs::read(format!("/proc/{shim}/environ")).unwrap();
    assert!(
        environ.is_empty(),
        "the waiting mode starts with an empty environment: {}",
        String::from_utf8_lossy(&environ)
    );
    let before = logger("logger.stdout").lines().count();
    wait_until(
        "the waiting shim still copies the executor's output",
        Duration::from_secs(10),
        || logger("logger.stdout").lines().count() >= before + 3,
    );
    let env = run.executor_file("executor.env");
    for variable in task {
        assert!(
            env.lines().any(|l| l == variable),
            "the executor sees the task's {variable}: {env}"
        );
    }
    run.wait_executor_ready();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(run.wait_agent_status(&agent), 143, "{}", run.stderr());
}
