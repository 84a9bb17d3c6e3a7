//! The sibling container, described from its inputs alone: no Docker calls here, so every rule
//! about what the executor gets (and does not get) is unit-tested.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

use bollard::models::{ContainerCreateBody, ContainerStateStatusEnum, HostConfig};

use crate::config::Settings;
use crate::mesos::executor::ExecutorKind;
use crate::mesos::layout::RunLayout;
use crate::sibling::labels;

/// Where executors look for the daemon unless told otherwise (`mesos-docker-executor
/// --docker_socket`); the host's socket is mounted there.
pub const SIBLING_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Runs in the sibling as `sh -c`: appends the executor's output to the sandbox files from inside
/// the container, so it keeps reaching the sandbox while the agent and the shim are gone, then
/// `exec`s so the executor keeps the container's pid (the one checkpointed).
pub const LAUNCH_SCRIPT: &str = r#"out=$1 err=$2; shift 2; exec "$@" >>"$out" 2>>"$err""#;

/// Mount point of a small read-only tmpfs in every sibling: a shim that finds it is the
/// executor image's `mesos-executor` (a baked image) and hands over to the stock executor instead
/// of relaying again. A mount, not a variable: the launch environment is the task's to set.
pub const SIBLING_MARKER_MOUNT: &str = "/run/mesos-executor-shim/sibling";

/// Variables of the agent's environment that describe the agent container or its shell rather
/// than the executor's launch, and so are not forwarded.
const NOT_FORWARDED: &[&str] = &["HOSTNAME", "PWD", "OLDPWD", "SHLVL", "_"];

/// The environment the executor gets: the launch's, untouched, less the variables above. The
/// task's own variables (`DOCKER_HOST`, `EXECUTOR_SHIM_*`, anything) reach it as they would reach
/// the stock executor: they are the task's, not the shim's settings. Returns the entries and the
/// names of those dropped because Docker cannot carry them (not UTF-8, or a key that is empty or
/// holds `=`).
pub fn executor_environment(env: &[(OsString, OsString)]) -> (Vec<String>, Vec<String>) {
    let mut kept = Vec::new();
    let mut not_utf8 = Vec::new();
    for (key, value) in env {
        // A key Docker would split differently (`A=B` read as `A`) is not forwarded either.
        let Some(k) = key
            .to_str()
            .filter(|k| !k.is_empty() && !k.contains(['=', '\0']))
        else {
            not_utf8.push(key.to_string_lossy().into_owned());
            continue;
        };
        if NOT_FORWARDED.contains(&k) {
            continue;
        }
        match value.to_str() {
            Some(v) => kept.push(format!("{k}={v}")),
            None => not_utf8.push(k.to_string()),
        }
    }
    (kept, not_utf8)
}

/// Everything the sibling is made of.
#[derive(Debug, Clone)]
pub struct SiblingSpec {
    pub name: String,
    pub image: String,
    pub executor: PathBuf,
    pub executor_args: Vec<String>,
    pub env: Vec<String>,
    pub sandbox: PathBuf,
    pub work_dir: PathBuf,
    /// Where the agent's work_dir lives on the host: the source of the sibling's bind.
    pub work_dir_host: PathBuf,
    /// The host path of the Docker socket, when the shim talks to Docker over one.
    pub docker_socket_host: Option<PathBuf>,
    /// Where the sibling gets that socket: where its executor will look for it.
    pub docker_socket_target: PathBuf,
    /// `uid:gid` of the shim: the executor runs as the agent would have run it.
    pub user: String,
    /// The Mesos container's cgroup to place the sibling under (Docker's `CgroupParent`);
    /// `None`: Docker's own placement.
    pub cgroup_parent: Option<String>,
    pub labels: HashMap<String, String>,
    pub settings: Settings,
}

impl SiblingSpec {
    pub fn new(run: &RunLayout, settings: &Settings) -> Self {
        let mut labels: HashMap<String, String> = settings.labels.clone().into_iter().collect();
        for (k, v) in labels::run_labels(run) {
            labels.insert(k.to_string(), v);
        }
        SiblingSpec {
            name: run.sibling_name(),
            image: String::new(),
            executor: ExecutorKind::Command.invoked_path(OsStr::new("")),
            executor_args: Vec::new(),
            env: Vec::new(),
            sandbox: run.sandbox.clone(),
            work_dir: run.work_dir.clone(),
            work_dir_host: run.work_dir.clone(),
            docker_socket_host: None,
            docker_socket_target: SIBLING_DOCKER_SOCKET.into(),
            user: "0:0".into(),
            cgroup_parent: None,
            labels,
            settings: settings.clone(),
        }
    }

    /// The binds, in the order the README lists them.
    pub fn binds(&self) -> Vec<String> {
        let mut binds = vec![format!(
            "{}:{}:rw",
            self.work_dir_host.display(),
            self.work_dir.display()
        )];
        if let Some(socket) = &self.docker_socket_host {
            binds.push(format!(
                "{}:{}:rw",
                socket.display(),
                self.docker_socket_target.display()
            ));
        }
        binds.extend(self.settings.mounts.iter().map(|m| m.to_bind()));
        binds
    }

    pub fn create_body(&self) -> ContainerCreateBody {
        let sandbox_file = |name: &str| path_string(&self.sandbox.join(name));
        let mut entrypoint = vec![
            "/bin/sh".to_string(),
            "-c".to_string(),
            LAUNCH_SCRIPT.to_string(),
            "mesos-executor-shim".to_string(),
            sandbox_file("stdout"),
            sandbox_file("stderr"),
            path_string(&self.executor),
        ];
        entrypoint.extend(self.executor_args.iter().cloned());
        let s = &self.settings;
        ContainerCreateBody {
            image: Some(self.image.clone()),
            // The image's ENTRYPOINT is always replaced (a mesos-agent image's would otherwise be
            // prepended to the executor), and an empty CMD keeps the image's CMD out as well.
            entrypoint: Some(entrypoint),
            cmd: Some(Vec::new()),
            env: Some(self.env.clone()),
            working_dir: Some(path_string(&self.sandbox)),
            user: Some(self.user.clone()),
            labels: Some(self.labels.clone()),
            attach_stdin: Some(false),
            attach_stdout: Some(false),
            attach_stderr: Some(false),
            tty: Some(false),
            open_stdin: Some(false),
            host_config: Some(HostConfig {
                pid_mode: Some("host".into()),
                network_mode: Some("host".into()),
                binds: Some(self.binds()),
                // An exited sibling is removed by the daemon itself, even when no shim is left
                // to do it (the shim died with the agent container).
                auto_remove: Some(true),
                tmpfs: Some(HashMap::from([(
                    SIBLING_MARKER_MOUNT.to_string(),
                    "ro,size=4k".to_string(),
                )])),
                privileged: Some(s.privileged),
                cap_add: (!s.cap_add.is_empty()).then(|| s.cap_add.clone()),
                memory: s.memory,
                nano_cpus: s.cpus.map(|c| (c * 1e9).round() as i64),
                cgroup_parent: self.cgroup_parent.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

fn path_string(p: &Path) -> String {
    p.display().to_string()
}

/// What to do about a container that already carries the sibling's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExistingPlan {
    /// Nothing there: create.
    Create,
    /// It ran and stopped, or never started: remove it, then create.
    Replace,
    /// It is running an executor: adopt it rather than start a second one.
    Adopt,
}

pub fn plan_for_existing(status: Option<ContainerStateStatusEnum>) -> ExistingPlan {
    use ContainerStateStatusEnum as S;
    match status {
        None => ExistingPlan::Create,
        // Stopping: still running an executor, whose exit the adopting shim then reports.
        Some(S::RUNNING | S::PAUSED | S::RESTARTING | S::STOPPING) => ExistingPlan::Adopt,
        Some(S::CREATED | S::EXITED | S::DEAD | S::REMOVING | S::EMPTY) => ExistingPlan::Replace,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BindMount;

    use crate::test_support::sample_run as run;

    fn os(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    #[test]
    fn forwards_the_launch_environment_with_the_tasks_variables_untouched() {
        let (env, dropped) = executor_environment(&os(&[
            ("MESOS_DIRECTORY", "/x"),
            ("LIBPROCESS_PORT", "0"),
            ("PATH", "/bin"),
            ("EXECUTOR_SHIM_IMAGE", "img"),
            ("HOSTNAME", "agent-box"),
            ("PWD", "/"),
            ("DOCKER_HOST", "tcp://dind:2375"),
        ]));
        assert_eq!(
            env,
            vec![
                "MESOS_DIRECTORY=/x",
                "LIBPROCESS_PORT=0",
                "PATH=/bin",
                "EXECUTOR_SHIM_IMAGE=img",
                "DOCKER_HOST=tcp://dind:2375",
            ]
        );
        assert!(dropped.is_empty());
    }

    #[test]
    fn drops_and_reports_what_docker_cannot_carry() {
        use std::os::unix::ffi::OsStringExt;
        let env = vec![
            (OsString::from("BAD"), OsString::from_vec(vec![0xff])),
            (OsString::from("A"), OsString::from("1")),
        ];
        let (kept, dropped) = executor_environment(&env);
        assert_eq!(kept, vec!["A=1"]);
        assert_eq!(dropped, vec!["BAD"]);
    }

    #[test]
    fn the_container_spec_follows_the_inputs() {
        let settings = Settings {
            mounts: vec![BindMount::parse("/etc/ssl:/etc/ssl:ro").unwrap()],
            ..Settings::default()
        };
        let mut spec = SiblingSpec::new(&run(), &settings);
        spec.image = "agent:1".into();
        spec.executor_args = vec![
            "--launcher_dir=/usr/libexec/mesos".into(),
            "arg with space".into(),
        ];
        spec.env = vec!["A=1".into()];
        spec.work_dir_host = "/srv/mesos".into();
        spec.docker_socket_host = Some("/run/docker.sock".into());
        let body = spec.create_body();
        assert_eq!(spec.name, "executor-mesos-C-1");
        assert_eq!(body.image.as_deref(), Some("agent:1"));
        let entrypoint = body.entrypoint.unwrap();
        assert_eq!(entrypoint[..3], ["/bin/sh", "-c", LAUNCH_SCRIPT]);
        assert_eq!(
            entrypoint[4..],
            [
                "/var/lib/mesos/slaves/S0/frameworks/F1/executors/app.1/runs/C-1/stdout",
                "/var/lib/mesos/slaves/S0/frameworks/F1/executors/app.1/runs/C-1/stderr",
                "/usr/libexec/mesos/mesos-executor",
                "--launcher_dir=/usr/libexec/mesos",
                "arg with space",
            ]
        );
        assert_eq!(body.cmd, Some(vec![]));
        assert_eq!(
            body.working_dir.as_deref(),
            Some("/var/lib/mesos/slaves/S0/frameworks/F1/executors/app.1/runs/C-1")
        );
        let host = body.host_config.unwrap();
        assert_eq!(host.pid_mode.as_deref(), Some("host"));
        assert_eq!(host.network_mode.as_deref(), Some("host"));
        assert_eq!(host.auto_remove, Some(true));
        assert_eq!(host.privileged, Some(false));
        assert_eq!(host.cap_add, None);
        assert_eq!(
            host.cgroup_parent, None,
            "Docker's placement unless decided"
        );
        assert_eq!(
            host.binds.unwrap(),
            vec![
                "/srv/mesos:/var/lib/mesos:rw",
                "/run/docker.sock:/var/run/docker.sock:rw",
                "/etc/ssl:/etc/ssl:ro"
            ]
        );
        assert_eq!(
            host.tmpfs.unwrap()[SIBLING_MARKER_MOUNT],
            "ro,size=4k",
            "the hand-over marker is a mount of the sibling itself"
        );
        let labels = body.labels.unwrap();
        assert_eq!(labels[labels::LABEL_EXECUTOR_ID], "app.1");
        assert!(labels::labels_match_run(&labels, &run()));
    }

    #[test]
    fn tunables_reach_the_host_config() {
        let settings = Settings {
            cap_add: vec!["SYS_ADMIN".into()],
            memory: Some(64 << 20),
            cpus: Some(0.5),
            labels: [("team".to_string(), "infra".to_string())].into(),
            ..Settings::default()
        };
        let body = SiblingSpec::new(&run(), &settings).create_body();
        let host = body.host_config.unwrap();
        assert_eq!(host.cap_add, Some(vec!["SYS_ADMIN".to_string()]));
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        let mut spec = SiblingSpec::new(&run(), &settings);
        spec.cgroup_parent = Some("/mesos/C-1".into());
        assert_eq!(
            spec.create_body()
                .host_config
                .unwrap()
                .cgroup_parent
                .as_deref(),
            Some("/mesos/C-1")
        );
        assert_eq!(body.labels.unwrap()["team"], "infra");
    }

    #[test]
    fn a_leftover_container_is_adopted_only_while_running() {
        use ContainerStateStatusEnum as S;
        assert_eq!(plan_for_existing(None), ExistingPlan::Create);
        assert_eq!(plan_for_existing(Some(S::RUNNING)), ExistingPlan::Adopt);
        assert_eq!(plan_for_existing(Some(S::EXITED)), ExistingPlan::Replace);
        assert_eq!(plan_for_existing(Some(S::CREATED)), ExistingPlan::Replace);
    }

    /// Whatever bytes the environment holds: no panic, every entry `KEY=VALUE` with the key and
    /// value as given, in the given order, and nothing but the agent-container variables left out.
    #[test]
    fn property_the_forwarded_environment_is_well_formed() {
        use crate::test_support::Rng;
        use std::os::unix::ffi::OsStringExt;
        let mut rng = Rng::new(42);
        let keys = [
            "PATH",
            "MESOS_DIRECTORY",
            "EXECUTOR_SHIM_IMAGE",
            "EXECUTOR_SHIM_SIBLING",
            "HOSTNAME",
            "A=B",
            "",
            "K\0",
        ];
        for _ in 0..5_000 {
            let env: Vec<(OsString, OsString)> = (0..rng.below(8))
                .map(|_| {
                    let key = if rng.below(2) == 0 {
                        rng.pick(&keys).as_bytes().to_vec()
                    } else {
                        rng.bytes(8)
                    };
                    (OsString::from_vec(key), OsString::from_vec(rng.bytes(12)))
                })
                .collect();
            let (kept, dropped) = executor_environment(&env);
            // Every entry is one of the input's, as given, and in the input's order.
            let mut rest = env.iter();
            for entry in &kept {
                let (key, value) = entry.split_once('=').expect("KEY=VALUE");
                assert!(!NOT_FORWARDED.contains(&key), "{entry:?}");
                assert!(
                    rest.any(|(k, v)| k.to_str() == Some(key) && v.to_str() == Some(value)),
                    "{entry:?} is not the input's, in order"
                );
            }
            // Nothing vanishes unexplained: each input entry is kept, reported, or not forwarded.
            let not_forwarded = env
                .iter()
                .filter(|(k, _)| k.to_str().is_some_and(|k| NOT_FORWARDED.contains(&k)))
                .count();
            assert_eq!(kept.len() + dropped.len() + not_forwarded, env.len());
        }
    }
}
