use super::*;

use crate::sibling::labels::run_labels;
use crate::test_support::sample_run;

const INIT: &str = "/run/mesos-executor-shim/init";
const SANDBOX: &str = "/var/lib/mesos/slaves/S0/frameworks/F1/executors/app.1/runs/C-1";
const FORKED_HOST: &str =
    "/srv/mesos/meta/slaves/S0/frameworks/F1/executors/app.1/runs/C-1/pids/forked.pid";

/// The labels a shim puts on the sample run's sibling, the host paths under `/srv/mesos`.
fn sibling_labels() -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = run_labels(&sample_run())
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    labels.insert(LABEL_WORK_DIR_HOST.into(), "/srv/mesos".into());
    labels.insert(LABEL_FORKED_PID_HOST.into(), FORKED_HOST.into());
    labels
}

fn sandbox_mount(typ: &str, destination: &str) -> MountPoint {
    MountPoint {
        typ: Some(typ.into()),
        source: Some("/srv/mesos/slaves/S0/frameworks/F1/executors/app.1/runs/C-1".into()),
        destination: Some(destination.into()),
        ..Default::default()
    }
}

/// `judge` of a container with these facts.
fn judged(
    labels: &HashMap<String, String>,
    name: &str,
    command: Command,
    mounts: Option<&[MountPoint]>,
) -> Result<RunLayout, NotSibling> {
    judge(&Observed {
        names: &[name.to_string()],
        command,
        mounts,
        labels,
    })
}

const NAME: &str = "/executor-mesos-C-1";
const LISTED: Command = Command::Joined(
    "/run/mesos-executor-shim/init mesos-executor-shim-init protocol=1 stdout=x -- /e",
);

#[test]
fn a_container_the_shim_made_is_a_sibling_as_listed_and_as_inspected() {
    let labels = sibling_labels();
    let mounts = [sandbox_mount("bind", SANDBOX)];
    assert_eq!(
        judged(&labels, NAME, LISTED, Some(&mounts)),
        Ok(sample_run())
    );
    let args = ["mesos-executor-shim-init".to_string(), "--".into()];
    let inspected = Command::Argv {
        path: INIT,
        args: &args,
    };
    assert_eq!(
        judged(&labels, NAME, inspected, Some(&mounts)),
        Ok(sample_run())
    );
    // Where the daemon gives no mounts, the name and the command decide.
    assert_eq!(judged(&labels, NAME, LISTED, None), Ok(sample_run()));
}

/// Every sibling label, copied onto a tenant's container, makes it no sibling: its name, command
/// or mounts give it away.
#[test]
fn a_tenants_copy_of_every_label_is_not_a_sibling() {
    let labels = sibling_labels();
    let mounts = [sandbox_mount("bind", SANDBOX)];
    for name in [
        "/mesos-C-1",
        "/executor-mesos-C-2",
        "/executor-mesos-C-1x",
        "executor-mesos-C-1",
    ] {
        assert_eq!(
            judged(&labels, name, LISTED, Some(&mounts)),
            Err(NotSibling::Name),
            "{name}"
        );
    }
    for command in [
        "sleep 3600",
        "/bin/sleep 3600 mesos-executor-shim-init",
        "/bin/sh -c mesos-executor-shim-init",
        "mesos-executor-shim-init mesos-executor-shim-init",
        "/init mesos-executor-shim-init2",
        "/init",
    ] {
        assert_eq!(
            judged(&labels, NAME, Command::Joined(command), Some(&mounts)),
            Err(NotSibling::Command),
            "{command}"
        );
    }
    let none: [String; 0] = [];
    let bare = Command::Argv {
        path: INIT,
        args: &none,
    };
    assert_eq!(judged(&labels, NAME, bare, None), Err(NotSibling::Command));
    for mounts in [
        vec![],
        vec![sandbox_mount("volume", SANDBOX)],
        vec![sandbox_mount("bind", "/var/lib/mesos")],
        vec![sandbox_mount("bind", &format!("{SANDBOX}/x"))],
    ] {
        assert_eq!(
            judged(&labels, NAME, LISTED, Some(&mounts)),
            Err(NotSibling::SandboxMount),
            "{mounts:?}"
        );
    }
}

#[test]
fn labels_that_name_no_run_the_agent_lays_out_make_no_sibling() {
    let mounts = [sandbox_mount("bind", SANDBOX)];
    let changed = |key: &str, value: Option<&str>| {
        let mut labels = sibling_labels();
        match value {
            Some(v) => labels.insert(key.to_string(), v.to_string()),
            None => labels.remove(key),
        };
        judged(&labels, NAME, LISTED, Some(&mounts))
    };
    for (key, value) in [
        (LABEL_MANAGED, Some("yes")),
        (LABEL_MANAGED, None),
        (LABEL_WORK_DIR, None),
        (LABEL_WORK_DIR, Some("var/lib/mesos")),
        (LABEL_WORK_DIR, Some("/var/lib/../lib/mesos")),
        (LABEL_EXECUTOR_ID, Some("app\u{1b}[31m")),
        (LABEL_EXECUTOR_ID, Some("../../..")),
        (LABEL_AGENT_ID, None),
        (LABEL_CONTAINER_ID, Some("C-1/../C-1")),
        (LABEL_SANDBOX, Some("/tmp")),
    ] {
        assert_eq!(
            changed(key, value),
            Err(NotSibling::Labels),
            "{key}={value:?}"
        );
    }
    // No sandbox label (it is informative only): the mount still has to be there.
    assert_eq!(changed(LABEL_SANDBOX, None), Ok(sample_run()));
}

#[test]
fn paths_are_taken_from_labels_only_in_the_agents_layout_for_the_run() {
    let run = sample_run();
    let labels = sibling_labels();
    assert_eq!(
        run_paths(&labels, &run),
        Some(RunPaths {
            work_dir: "/srv/mesos".into(),
            forked_pid: FORKED_HOST.into(),
        })
    );
    let with = |key: &str, value: &str| {
        let mut labels = sibling_labels();
        labels.insert(key.into(), value.into());
        run_paths(&labels, &run)
    };
    for (key, value) in [
        (LABEL_FORKED_PID_HOST, "/dev/tty1"),
        (LABEL_FORKED_PID_HOST, "/tmp/decoy/forked.pid"),
        // Another run's forked.pid, or the right one reached another way.
        (
            LABEL_FORKED_PID_HOST,
            "/srv/mesos/meta/slaves/S0/frameworks/F1/executors/app.2/runs/C-1/pids/forked.pid",
        ),
        (
            LABEL_FORKED_PID_HOST,
            "/srv/mesos/meta/slaves/S0/frameworks/F1/executors/app.1/runs/C-1/pids/../pids/forked.pid",
        ),
        (
            LABEL_FORKED_PID_HOST,
            "/srv//mesos/meta/slaves/S0/frameworks/F1/executors/app.1/runs/C-1/pids/forked.pid",
        ),
        (LABEL_WORK_DIR_HOST, "/srv/other"),
        (LABEL_WORK_DIR_HOST, "srv/mesos"),
    ] {
        assert_eq!(with(key, value), None, "{key}={value}");
    }
    let mut without_work_dir = sibling_labels();
    without_work_dir.remove(LABEL_WORK_DIR_HOST);
    assert_eq!(run_paths(&without_work_dir, &run), None);
    // A sibling of a release before the host labels: the paths the shim saw.
    let mut older = sibling_labels();
    older.remove(LABEL_WORK_DIR_HOST);
    older.remove(LABEL_FORKED_PID_HOST);
    // Today's sibling of a run that does not checkpoint names no forked.pid: nothing to read.
    assert_eq!(run_paths(&older, &run), None);
    older.insert(
        LABEL_FORKED_PID.into(),
        run.forked_pid_path().display().to_string(),
    );
    assert_eq!(
        run_paths(&older, &run),
        Some(RunPaths {
            work_dir: "/var/lib/mesos".into(),
            forked_pid: run.forked_pid_path(),
        })
    );
    older.insert(LABEL_FORKED_PID.into(), "/var/lib/mesos/forked.pid".into());
    assert_eq!(run_paths(&older, &run), None);
}
