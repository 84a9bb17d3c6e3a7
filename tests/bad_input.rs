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

/// Runs the shim as the agent would (argv[0] `mesos-executor`), with exactly `env`.
fn relay(env: &[(&str, &str)], args: &[&str]) -> Outcome {
    let start = Instant::now();
    let out = Command::new(shim_bin())
        .arg0("mesos-executor")
        .args(args)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: start.elapsed(),
    }
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
        (
            "EXECUTOR_SHIM_CONFIG",
            run.host_config(all).display().to_string(),
        ),
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
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    relay(&pairs, &["--launcher_dir=/usr/libexec/mesos"])
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
    assert!(
        files_under(&run.work_dir).is_empty(),
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
        out.stderr.contains(CONFIG_DIR),
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

/// EXECUTOR_SHIM_CONFIG comes from the launch environment, which a task can set: the shim reads
/// the file it names only if root owns it and every directory above it, nobody else can write
/// there, and it is not under the agent's work_dir. Otherwise the launch fails saying why.
#[test]
fn a_configuration_file_anyone_could_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let run = Run::new("untrusted");
    let good = launch_env(&run);
    let trusted = good
        .iter()
        .find(|(k, _)| *k == "EXECUTOR_SHIM_CONFIG")
        .unwrap()
        .1
        .clone();
    let content = std::fs::read_to_string(&trusted).unwrap();

    let in_tmp = std::env::temp_dir().join(format!("shim-config-{}.json", run.container_id));
    std::fs::write(&in_tmp, &content).unwrap();
    let in_work_dir = run.work_dir.join("config.json");
    std::fs::write(&in_work_dir, &content).unwrap();
    let group_writable = Path::new(CONFIG_DIR).join(format!("{}-g.json", run.container_id));
    std::fs::write(&group_writable, &content).unwrap();
    std::fs::set_permissions(&group_writable, std::fs::Permissions::from_mode(0o664)).unwrap();
    let not_roots = Path::new(CONFIG_DIR).join(format!("{}-u.json", run.container_id));
    std::fs::write(&not_roots, &content).unwrap();
    std::os::unix::fs::chown(&not_roots, Some(1000), Some(1000)).unwrap();

    for (file, why) in [
        (in_tmp.clone(), "writable by others"),
        (in_work_dir, "under the agent's work_dir"),
        (group_writable.clone(), "writable by its group"),
        (not_roots.clone(), "owned by uid 1000, not by root"),
        (
            PathBuf::from("/nonexistent/config.json"),
            "cannot resolve /nonexistent/config.json",
        ),
    ] {
        let out = run_with(&with(
            &good,
            "EXECUTOR_SHIM_CONFIG",
            &file.display().to_string(),
        ));
        assert_eq!(out.code, 78, "{}: {}", file.display(), out.stderr);
        assert!(
            out.stderr.contains(why) && out.stderr.contains("unset EXECUTOR_SHIM_CONFIG"),
            "{}: {}",
            file.display(),
            out.stderr
        );
    }
    for file in [in_tmp, group_writable, not_roots] {
        std::fs::remove_file(file).unwrap();
    }
    assert!(run.containers_named_sibling().is_empty());
}

/// The sandbox the agent makes before every launch is not there: refused before anything is made.
#[test]
fn a_sandbox_the_agent_did_not_make_is_refused() {
    let run = Run::new("nosandbox");
    let out = run_with(&launch_env(&run));
    assert_eq!(out.code, 64, "{}", out.stderr);
    assert!(
        out.stderr.contains("does not exist: the agent makes it"),
        "{}",
        out.stderr
    );
    assert!(run.containers_named_sibling().is_empty());
    assert!(!run.sandbox().exists(), "nothing made in its place");
}

/// Checkpointing on, but the agent's meta directory never appears: the started sibling is
/// removed again and nothing is created under the work_dir.
#[test]
fn a_launch_that_cannot_checkpoint_leaves_no_container() {
    let run = Run::new("nometa");
    std::fs::create_dir_all(run.sandbox()).unwrap();
    let out = run_with(&launch_env(&run));
    assert_eq!(out.code, 70, "{}", out.stderr);
    assert!(out.stderr.contains("does not exist"), "{}", out.stderr);
    assert!(
        run.containers_named_sibling().is_empty(),
        "{:?}",
        run.containers_named_sibling()
    );
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
    // Under another name, agent flags are not the shim's: clap refuses them.
    let out = Command::new(shim_bin())
        .arg("--launcher_dir=/x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
