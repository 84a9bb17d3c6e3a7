//! Bad input: each case exits non-zero with a message naming the problem and what to do, and
//! leaves nothing behind: no container, no file.

mod common;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

struct Outcome {
    code: i32,
    stderr: String,
    took: Duration,
}

/// Where the agent would start the shim and what the relay finds at its configuration path; not
/// variables of the launch: [`run_with`] takes them out of the list.
const CONFIG: &str = "(configuration file)";
const CWD: &str = "(working directory)";

/// Runs the shim as the agent would (argv[0] `mesos-executor`), with exactly `env`, in `cwd`,
/// with `config` at the relay's configuration path.
fn relay(env: &[(&str, &str)], args: &[&str], config: Option<&str>, cwd: Option<&str>) -> Outcome {
    let start = Instant::now();
    let mut command = Command::new(shim_bin());
    if let Some(config) = config {
        let mount = config_mount(Path::new(config));
        // SAFETY: the closure makes only system calls, on strings made before the fork.
        unsafe { command.pre_exec(mount) };
    }
    if let Some(cwd) = cwd {
        command.current_dir(cwd);
    }
    command
        .arg0("mesos-executor")
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().copied());
    let out = output_within(command, Duration::from_secs(120));
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    }
}

/// Runs `command` to its end, failing the test if it takes longer than `limit`: what blocks on a
/// FIFO would never end.
fn output_within(mut command: Command, limit: Duration) -> std::process::Output {
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{command:?} did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        }
        found.push(path);
    }
    found.sort();
    found
}

/// The environment of a well-formed launch of `run`, run on this host (no agent container, so
/// the configuration names the image), with `settings` in its configuration file.
fn launch_env_with(run: &Run, settings: serde_json::Value) -> Vec<(&'static str, String)> {
    // The agent makes the sandbox before it starts the shim there.
    std::fs::create_dir_all(run.sandbox()).unwrap();
    let mut all = serde_json::json!({"forked_pid_timeout": "1secs"});
    all.as_object_mut()
        .unwrap()
        .extend(settings.as_object().unwrap().clone());
    vec![
        ("MESOS_DIRECTORY", run.sandbox().display().to_string()),
        ("MESOS_FRAMEWORK_ID", run.framework_id.clone()),
        ("MESOS_EXECUTOR_ID", run.executor_id.clone()),
        ("MESOS_SLAVE_ID", run.agent_id.clone()),
        ("MESOS_CHECKPOINT", "1".into()),
        (CONFIG, run.host_config(all).display().to_string()),
        (CWD, run.sandbox().display().to_string()),
    ]
}

fn launch_env(run: &Run) -> Vec<(&'static str, String)> {
    launch_env_with(run, serde_json::json!({}))
}

fn with(
    env: &[(&'static str, String)],
    key: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    let mut env: Vec<_> = env.iter().filter(|(k, _)| *k != key).cloned().collect();
    env.push((key, value.to_string()));
    env
}

fn run_with(env: &[(&'static str, String)]) -> Outcome {
    run_with_args(env, &["--launcher_dir=/usr/libexec/mesos"])
}

fn run_with_args(env: &[(&'static str, String)], args: &[&str]) -> Outcome {
    let pick = |key: &str| env.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str());
    let pairs: Vec<(&str, &str)> = env
        .iter()
        .filter(|(k, _)| *k != CONFIG && *k != CWD)
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    // The agent makes the sandbox before it starts the shim there.
    let cwd = pick(CWD).filter(|d| Path::new(d).is_dir());
    relay(&pairs, args, pick(CONFIG), cwd)
}

#[test]
fn malformed_sandbox_paths_are_refused_before_anything_is_made() {
    let run = Run::new("badpath");
    let good = launch_env(&run);
    let wd = run.work_dir.display().to_string();
    let tail = format!(
        "slaves/S/frameworks/F/executors/E/runs/{}",
        run.container_id
    );
    for bad in [
        tail.clone(),                                                    // relative
        format!("{wd}/../x/{tail}"),                                     // ..
        format!("{wd}//{tail}"),                                         // empty component
        format!("{wd}/./{tail}"),                                        // .
        format!("{wd}/slaves/S/frameworks/F/runs/{}", run.container_id), // wrong shape
        format!("{wd}/slaves/S/frameworks/F/executors/E/runs/bad\tid"),  // not a valid ID
    ] {
        let env: Vec<_> = with(&good, "MESOS_DIRECTORY", &bad)
            .into_iter()
            .filter(|(k, _)| {
                !matches!(
                    *k,
                    "MESOS_FRAMEWORK_ID" | "MESOS_EXECUTOR_ID" | "MESOS_SLAVE_ID"
                )
            })
            .collect();
        let out = run_with(&env);
        assert_eq!(out.code, 64, "{bad}: {}", out.stderr);
        assert!(
            out.stderr.contains("MESOS_DIRECTORY"),
            "{bad}: {}",
            out.stderr
        );
    }
    let unset: Vec<_> = good
        .iter()
        .filter(|(k, _)| *k != "MESOS_DIRECTORY")
        .cloned()
        .collect();
    let out = run_with(&unset);
    assert_eq!(out.code, 64);
    assert!(
        out.stderr.contains("MESOS_DIRECTORY is not set"),
        "{}",
        out.stderr
    );
    // Nothing but the sandbox the agent made.
    assert!(
        files_under(&run.sandbox()).is_empty() && !run.work_dir.join("meta").exists(),
        "nothing created: {:?}",
        files_under(&run.work_dir)
    );
    assert!(run.containers_named_sibling().is_empty());
}

#[test]
fn id_variables_that_disagree_with_the_sandbox_are_refused() {
    let run = Run::new("mismatch");
    let out = run_with(&with(
        &launch_env(&run),
        "MESOS_FRAMEWORK_ID",
        "another-framework",
    ));
    assert_eq!(out.code, 64, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("MESOS_FRAMEWORK_ID=\"another-framework\""),
        "{}",
        out.stderr
    );
    assert!(run.containers_named_sibling().is_empty());
}

#[test]
fn an_unreachable_docker_fails_fast_naming_the_endpoint() {
    let run = Run::new("nodocker");
    for endpoint in [
        "unix:///tmp/mesos-executor-shim-it/no-such.sock",
        "tcp://127.0.0.1:9",
    ] {
        let out = run_with(&launch_env_with(
            &run,
            serde_json::json!({ "docker_host": endpoint }),
        ));
        assert_eq!(out.code, 69, "{}", out.stderr);
        assert!(
            out.stderr.contains(endpoint),
            "names the endpoint: {}",
            out.stderr
        );
        assert!(
            out.stderr
                .contains("\"docker_host\" in the configuration file"),
            "says what to do: {}",
            out.stderr
        );
        assert!(out.took < Duration::from_secs(10), "took {:?}", out.took);
    }
}

#[test]
fn a_missing_image_is_pulled_once_then_named_in_the_error() {
    let run = Run::new("noimage");
    std::fs::create_dir_all(run.meta().join("pids")).unwrap();
    std::fs::create_dir_all(run.sandbox()).unwrap();
    let image = "mesos-executor-shim-test/absent:1";
    let out = run_with(&launch_env_with(
        &run,
        serde_json::json!({ "image": image }),
    ));
    assert_eq!(out.code, 69, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "the executor image {image} is not on the Docker host"
        )),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("pulling it failed"), "{}", out.stderr);
    assert!(run.containers_named_sibling().is_empty());
    assert!(!run.forked_pid_path().exists());
}

#[test]
fn unknown_keys_and_bad_values_are_named() {
    let run = Run::new("settings");
    let out = run_with(&launch_env_with(&run, serde_json::json!({"imgae": "x"})));
    assert_eq!(out.code, 78, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("imgae: unknown key; the shim knows image"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(CONFIG_PATH),
        "names the file: {}",
        out.stderr
    );

    let out = run_with(&launch_env_with(
        &run,
        serde_json::json!({"forked_pid_timeout": "30"}),
    ));
    assert_eq!(out.code, 78);
    assert!(
        out.stderr
            .contains("forked_pid_timeout: \"30\" has no unit"),
        "{}",
        out.stderr
    );
    assert!(run.containers_named_sibling().is_empty());
}

/// The relay reads its one configuration file only if root owns it and every directory above
/// it, and nobody else can write there. Otherwise the launch fails saying why.
#[test]
fn a_configuration_file_anyone_could_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let run = Run::new("untrusted");
    std::fs::create_dir_all(run.sandbox()).unwrap();
    let good = launch_env(&run);
    let file = PathBuf::from(good.iter().find(|(k, _)| *k == CONFIG).unwrap().1.clone());
    let dir = file.parent().unwrap();
    let mode = |path: &Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let cases: [(&str, &dyn Fn()); 3] = [
        ("writable by others", &|| mode(dir, 0o777)),
        ("writable by its group", &|| mode(&file, 0o664)),
        ("owned by uid 1000, not by root", &|| {
            std::os::unix::fs::chown(&file, Some(1000), Some(1000)).unwrap()
        }),
    ];
    for (why, spoil) in cases {
        spoil();
        let out = run_with(&good);
        assert_eq!(out.code, 78, "{why}: {}", out.stderr);
        assert!(
            out.stderr.contains(why) && out.stderr.contains("fix its owner and mode"),
            "{why}: {}",
            out.stderr
        );
        mode(dir, 0o755);
        mode(&file, 0o644);
        std::os::unix::fs::chown(&file, Some(0), Some(0)).unwrap();
    }
    assert!(run.containers_named_sibling().is_empty());
}

/// `doctor --json` on this host, reading the relay's configuration path, where `config`'s
/// directory is mounted (as for [`relay`]): its `config` check.
fn doctor_config_check(config: &Path, run: &Run) -> serde_json::Value {
    let mut command = Command::new(shim_bin());
    let mount = config_mount(config);
    // SAFETY: the closure makes only system calls, on strings made before the fork.
    unsafe { command.pre_exec(mount) };
    command
        .args(["doctor", "--json", "--work-dir"])
        .arg(&run.work_dir);
    let out = output_within(command, Duration::from_secs(120));
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "doctor printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    checks
        .into_iter()
        .find(|c| c["check"] == "config")
        .expect("a config check")
}

/// What is at the relay's configuration path but no file: a FIFO is refused at once (never
/// opened, so nothing waits for a writer) and a link to nothing is an error, by the relay and by
/// `doctor` in the same words, since one function decides for both.
#[test]
fn a_fifo_or_a_dangling_link_at_the_configuration_path_is_refused_alike_by_relay_and_doctor() {
    let run = Run::new("notafile");
    let env = launch_env(&run);
    let file = PathBuf::from(env.iter().find(|(k, _)| *k == CONFIG).unwrap().1.clone());
    std::fs::remove_file(&file).unwrap();
    nix::unistd::mkfifo(&file, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    let gone = file.with_file_name("gone.json");
    for (what, expected) in [
        (
            "a FIFO",
            "is a FIFO, not a regular file: it is never opened",
        ),
        ("a dangling link", "is a dangling symbolic link"),
    ] {
        let out = run_with(&env);
        assert_eq!(out.code, 78, "{what}: {}", out.stderr);
        assert!(
            out.took < Duration::from_secs(10),
            "{what}: took {:?}",
            out.took
        );
        let doctor = doctor_config_check(&file, &run);
        let said = doctor["detail"].as_str().unwrap();
        assert_eq!(doctor["ok"], false, "{what}: {doctor}");
        assert!(
            said.contains(expected) && said.contains(CONFIG_PATH),
            "{what}: {said}"
        );
        assert!(
            out.stderr.contains(said),
            "{what}: the relay said {} and doctor {said}",
            out.stderr
        );
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(&gone, &file).unwrap();
    }
    assert!(run.containers_named_sibling().is_empty());
}

/// A file only root can read: with the agent's --switch_user the launch runs as the task's user,
/// which cannot read it; the launch fails saying what mode the file needs (doctor refuses the
/// file at install for the same reason).
#[test]
fn a_configuration_file_only_root_can_read_fails_a_launch_as_another_user_naming_the_mode() {
    use std::os::unix::fs::PermissionsExt;
    let run = Run::new("rootonly");
    let env = launch_env(&run);
    let pick = |key: &str| env.iter().find(|(k, _)| *k == key).unwrap().1.clone();
    let file = PathBuf::from(pick(CONFIG));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut command = Command::new(shim_bin());
    let mount = config_mount(&file);
    // SAFETY: the closures make only system calls, on values made before the fork: the mount
    // namespace first, as root, then the task's user, as the launch helper would.
    unsafe {
        command.pre_exec(mount).pre_exec(|| {
            nix::unistd::setgroups(&[])?;
            nix::unistd::setgid(nix::unistd::Gid::from_raw(65534))?;
            Ok(nix::unistd::setuid(nix::unistd::Uid::from_raw(65534))?)
        })
    };
    let pairs: Vec<(&str, &str)> = env
        .iter()
        .filter(|(k, _)| *k != CONFIG && *k != CWD)
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    command
        .arg0("mesos-executor")
        .arg("--launcher_dir=/usr/libexec/mesos")
        .current_dir(pick(CWD))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(pairs);
    let out = output_within(command, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("as uid 65534") && stderr.contains("mode 0644"),
        "{stderr}"
    );
    assert!(run.containers_named_sibling().is_empty());
}

/// The sandbox the agent makes before every launch is not there: refused before anything is made.
#[test]
fn a_sandbox_the_agent_did_not_make_is_refused() {
    let run = Run::new("nosandbox");
    let env = launch_env(&run);
    std::fs::remove_dir_all(run.sandbox()).unwrap();
    let out = run_with(&env);
    assert_eq!(out.code, 64, "{}", out.stderr);
    assert!(
        out.stderr.contains("does not exist: the agent makes it"),
        "{}",
        out.stderr
    );
    assert!(run.containers_named_sibling().is_empty());
    assert!(!run.sandbox().exists(), "nothing made in its place");
}

/// `MESOS_CHECKPOINT=1` is the task's to set; the agent made no meta run directory, so the run
/// does not checkpoint: nothing is created under `meta/`, and the executor's status comes back.
#[test]
fn a_run_without_its_meta_directory_is_not_checkpointed_whatever_the_environment_says() {
    let run = Run::new("nometa");
    let out = run_with_args(&launch_env(&run), &["--exit_after=0", "--exit_code=3"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("MESOS_CHECKPOINT disagrees with what the agent made"),
        "{}",
        out.stderr
    );
    run.wait_sibling_gone();
    assert!(!run.work_dir.join("meta").exists());
}

/// An agent container without --pid=host cannot follow a host pid: the shim refuses to
/// checkpoint one, says why, and removes the sibling it started.
#[test]
fn an_agent_without_host_pid_namespace_is_refused() {
    let run = Run::new("nopidhost");
    let mut agent = Agent::with_shim();
    agent.pid_host = false;
    let name = run.start_agent(&agent);
    run.wait_agent_status(&name);
    assert_eq!(run.agent_status(), Some(78));
    let stderr = run.read(run.sandbox().join("stderr")).unwrap();
    assert!(stderr.contains("--pid=host"), "{stderr}");
    run.wait_sibling_gone();
}

/// In a sibling (the marker mount is there), the shim never relays again: it runs `<its
/// path>.real`, or says that the stock executor is missing.
#[test]
fn a_relay_never_starts_a_relay() {
    setup();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let real = dir.join("mesos-executor.real");
    std::fs::write(&real, "#!/bin/sh\necho \"stock executor: $*\"\nexit 5\n").unwrap();
    std::fs::set_permissions(&real, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let in_sibling = |with_real: bool| {
        let shim = format!("{}:/opt/mesos/mesos-executor:ro", shim_bin().display());
        let stock = format!("{}:/opt/mesos/mesos-executor.real:ro", real.display());
        let mut args = vec![
            "run",
            "--rm",
            "--tmpfs",
            "/run/mesos-executor-shim/sibling:ro,size=4k",
        ];
        args.extend(["-v", &shim]);
        if with_real {
            args.extend(["-v", &stock]);
        }
        args.extend([AGENT_IMAGE, "/opt/mesos/mesos-executor", "--flag", "a b"]);
        docker(&args)
    };

    let out = in_sibling(false);
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/opt/mesos/mesos-executor.real"),
        "{stderr}"
    );

    let out = in_sibling(true);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "stock executor: --flag a b\n"
    );

    // Without the mount, the variable that used to mark a sibling makes no relay hand over.
    let exe = dir.join("mesos-executor");
    std::fs::copy(shim_bin(), &exe).unwrap();
    let out = Command::new(&exe)
        .arg("--flag")
        .env_clear()
        .env("EXECUTOR_SHIM_SIBLING", "executor-mesos-x")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("MESOS_DIRECTORY is not set"), "{stderr}");
}

#[test]
fn the_cli_under_its_own_name() {
    let out = Command::new(shim_bin()).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("mesos-executor-shim {}", env!("CARGO_PKG_VERSION"))
    );
    let out = Command::new(shim_bin()).arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("run"));
    // `run` relays: without MESOS_DIRECTORY it refuses as the relay does, hyphenated args and all.
    let out = Command::new(shim_bin())
        .args(["run", "--", "--launcher_dir=/x"])
        .env_remove("MESOS_DIRECTORY")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(64),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Under another name, agent flags are not the shim's: refused as a bad command line.
    let out = Command::new(shim_bin())
        .arg("--launcher_dir=/x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}
