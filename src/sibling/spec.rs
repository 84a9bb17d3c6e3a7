//! The sibling container, described from its resolved inputs alone: no Docker calls and no file
//! system here, so every rule about what the executor gets (and does not get) is unit-tested.
//! [`SiblingSpec::build`] makes it in one go; nothing is filled in later.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountBindOptions, MountType, ResourcesUlimits,
};

use crate::config::{BindMount, Settings};
use crate::mesos::container::SiblingSecurity;
use crate::mesos::executor::ExecutorKind;
use crate::mesos::layout::RunLayout;
use crate::proc::ProcessIdentity;
use crate::sibling::placement::SOCKET_DIR;
use crate::sibling::protocol::{InitArgs, OutputRelay, ShimWatch, PROTOCOL};
use crate::sibling::{label_sets, labels};

/// Mount point of a small read-only tmpfs in every sibling: a shim that finds it is the
/// executor image's `mesos-executor` (a baked image) and hands over to the stock executor instead
/// of relaying again. A mount, not a variable: the launch environment is the task's to set.
pub(crate) const SIBLING_MARKER_MOUNT: &str = "/run/mesos-executor-shim/sibling";

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

/// A container's state, as the shim judges it: the one reading of Docker's state names, for
/// the relay, `ps` and `gc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SiblingState {
    /// Created and never started.
    Created,
    /// Running an executor (also paused, restarting or stopping: an executor is still there).
    Running,
    /// Exited or dead: its executor has exited.
    Stopped,
    /// A removal is under way.
    Removing,
    Unknown,
}

impl SiblingState {
    /// From Docker's state name (`running`, `exited`, ...), as inspect and list both give it.
    pub(crate) fn from_docker(state: &str) -> SiblingState {
        match state {
            "created" => SiblingState::Created,
            "running" | "paused" | "restarting" | "stopping" => SiblingState::Running,
            "exited" | "dead" => SiblingState::Stopped,
            "removing" => SiblingState::Removing,
            _ => SiblingState::Unknown,
        }
    }

    /// The Docker state names of stopped containers, as a list filter takes them.
    pub(crate) const STOPPED_NAMES: [&'static str; 2] = ["exited", "dead"];
}

/// What to do about a container that already carries the sibling's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExistingPlan {
    /// It ran and stopped, or never started: remove it, then create.
    Replace,
    /// It is running an executor: adopt it rather than start a second one.
    Adopt,
}

pub(crate) fn plan_for_existing(state: SiblingState) -> ExistingPlan {
    match state {
        SiblingState::Running => ExistingPlan::Adopt,
        SiblingState::Created
        | SiblingState::Stopped
        | SiblingState::Removing
        | SiblingState::Unknown => ExistingPlan::Replace,
    }
}

/// Everything a sibling is made from, each part already decided.
#[derive(Debug, Clone)]
pub struct SpecInputs<'a> {
    pub run: &'a RunLayout,
    pub kind: ExecutorKind,
    pub settings: &'a Settings,
    pub image: String,
    /// The executor's path in the sibling's image and its arguments, as the agent gave them.
    pub executor: Vec<String>,
    /// The launch environment, filtered by [`executor_environment`].
    pub env: Vec<String>,
    /// The launch's user, groups, capabilities, rlimits and `no_new_privs`, carried into the
    /// sibling (see [`crate::mesos::container`]).
    pub security: SiblingSecurity,
    /// The init binary's path in the sibling, and the host file to bind there, if it is one.
    pub init_path: PathBuf,
    pub init_host_file: Option<PathBuf>,
    /// The host path behind the sandbox.
    pub sandbox_host: PathBuf,
    /// Other paths at which the executor expects its sandbox (the docker executor's
    /// `--sandbox_directory`, a link under the work_dir when the sandbox path holds a `:`).
    pub sandbox_aliases: Vec<PathBuf>,
    /// The persistent volumes the sandbox links to (host path, path here), each mounted at its
    /// own path (see [`crate::mesos::volumes`]).
    pub volumes: Vec<(PathBuf, PathBuf)>,
    /// The daemon's socket, for a sibling that gets Docker.
    pub docker_socket: Option<SocketMount>,
    /// The host path behind the work_dir (a label: where `gc` finds the run from the host).
    pub work_dir_host: PathBuf,
    pub forked_pid_host: PathBuf,
    /// The agent checkpoints the run (see [`labels::LABEL_CHECKPOINT`]).
    pub checkpointing: bool,
    pub shim: Option<ProcessIdentity>,
    /// The process that forked the shim, which the init watches with it; `None`: no watch.
    pub agent: Option<ProcessIdentity>,
    /// The shim, when the executor's output goes through it (see [`crate::output`]).
    pub output_reader: Option<ProcessIdentity>,
    /// The Mesos container's cgroup to place the sibling under (Docker's `CgroupParent`).
    pub cgroup_parent: Option<String>,
    pub auto_remove: bool,
}

/// How a sibling that gets Docker has the daemon's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketMount {
    /// The socket file (`host`) at `target`: where a command executor's tasks look for Docker.
    File { host: PathBuf, target: PathBuf },
    /// The directory (`host`) that holds the socket, at [`SOCKET_DIR`]: the docker executor's,
    /// whose CLI follows the daemon through a restart, after which a file bound before would be
    /// the old socket. Read-only and without the mounts below it.
    Directory { host: PathBuf },
}

/// Everything the sibling is made of.
#[derive(Debug, Clone)]
pub struct SiblingSpec {
    pub name: String,
    pub image: String,
    /// The sibling's command: the init with its arguments, then the executor.
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: PathBuf,
    pub security: SiblingSecurity,
    pub mounts: Vec<BindMount>,
    /// The directory of the daemon's socket, at [`SOCKET_DIR`] (see [`SocketMount::Directory`]).
    pub socket_dir: Option<PathBuf>,
    pub cgroup_parent: Option<String>,
    pub auto_remove: bool,
    pub labels: HashMap<String, String>,
    pub privileged: bool,
    pub memory: Option<i64>,
    pub nano_cpus: Option<i64>,
}

impl SiblingSpec {
    pub fn build(inputs: &SpecInputs) -> SiblingSpec {
        let run = inputs.run;
        let s = inputs.settings;
        let (mounts, socket_dir) = mounts(inputs);
        SiblingSpec {
            name: run.sibling_name(),
            image: inputs.image.clone(),
            entrypoint: init_args(inputs).to_argv(&inputs.init_path),
            env: inputs.env.clone(),
            working_dir: run.sandbox.clone(),
            security: inputs.security.clone(),
            mounts,
            socket_dir,
            cgroup_parent: inputs.cgroup_parent.clone(),
            auto_remove: inputs.auto_remove,
            labels: sibling_labels(inputs),
            privileged: s.privileged,
            memory: s.memory,
            nano_cpus: s.cpus.map(|c| (c * 1e9).round() as i64),
        }
    }

    pub fn create_body(&self) -> ContainerCreateBody {
        ContainerCreateBody {
            image: Some(self.image.clone()),
            // The image's ENTRYPOINT is always replaced (a mesos-agent image's would otherwise be
            // prepended to the executor), and an empty CMD keeps the image's CMD out as well.
            entrypoint: Some(self.entrypoint.clone()),
            cmd: Some(Vec::new()),
            env: Some(self.env.clone()),
            working_dir: Some(path_string(&self.working_dir)),
            user: Some(self.security.user.clone()),
            labels: Some(self.labels.clone()),
            attach_stdin: Some(false),
            attach_stdout: Some(false),
            attach_stderr: Some(false),
            tty: Some(false),
            open_stdin: Some(false),
            host_config: Some(HostConfig {
                pid_mode: Some("host".into()),
                network_mode: Some("host".into()),
                // Mounts, not Binds: a sandbox path may hold a `:` (executor IDs may), and a
                // missing source is an error rather than an empty directory made on the host.
                mounts: Some(
                    self.mounts
                        .iter()
                        .map(bind)
                        .chain(self.socket_dir.as_deref().map(socket_dir))
                        .collect(),
                ),
                auto_remove: Some(self.auto_remove),
                tmpfs: Some(HashMap::from([(
                    SIBLING_MARKER_MOUNT.to_string(),
                    "ro,size=4k".to_string(),
                )])),
                privileged: Some(self.privileged),
                cap_drop: some(&self.security.cap_drop),
                cap_add: some(&self.security.cap_add),
                group_add: some(&self.security.group_add),
                security_opt: some(&self.security.security_opt),
                ulimits: (!self.security.ulimits.is_empty()).then(|| {
                    self.security
                        .ulimits
                        .iter()
                        .map(|(name, soft, hard)| ResourcesUlimits {
                            name: Some(name.clone()),
                            soft: Some(*soft),
                            hard: Some(*hard),
                        })
                        .collect()
                }),
                memory: self.memory,
                nano_cpus: self.nano_cpus,
                cgroup_parent: self.cgroup_parent.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

/// A list for the Docker API, left out when empty (Docker's default then applies).
fn some(items: &[String]) -> Option<Vec<String>> {
    (!items.is_empty()).then(|| items.to_vec())
}

/// The init's arguments: the run's files, whom it watches, how the output goes, the executor.
fn init_args(inputs: &SpecInputs) -> InitArgs {
    let (run, s) = (inputs.run, inputs.settings);
    InitArgs {
        protocol: PROTOCOL,
        stdout: run.sandbox.join("stdout"),
        stderr: run.sandbox.join("stderr"),
        exit_record: run.exit_record_path(),
        watch: match (inputs.shim, inputs.agent) {
            (Some(shim), Some(agent)) if s.end_with_shim => Some(ShimWatch {
                shim,
                agent,
                settle: s.shim_death_settle,
            }),
            _ => None,
        },
        output: inputs.output_reader.map(|reader| OutputRelay {
            reader,
            max_bytes: s.sandbox_output_max_bytes,
        }),
        log: s.log,
        executor: inputs.executor.clone(),
    }
}

/// The sibling's bind mounts (the sandbox under each of its names, the volumes it links to, the
/// init, a socket file, the configured ones), and the socket's directory, if it gets that.
fn mounts(inputs: &SpecInputs) -> (Vec<BindMount>, Option<PathBuf>) {
    let run = inputs.run;
    let bind = |host: &Path, container: &Path, read_only| BindMount {
        host: host.to_path_buf(),
        container: container.to_path_buf(),
        read_only,
    };
    let mut mounts = vec![bind(&inputs.sandbox_host, &run.sandbox, false)];
    for alias in inputs.sandbox_aliases.iter().filter(|a| **a != run.sandbox) {
        mounts.push(bind(&inputs.sandbox_host, alias, false));
    }
    for (host, container) in &inputs.volumes {
        mounts.push(bind(host, container, false));
    }
    if let Some(host) = &inputs.init_host_file {
        mounts.push(bind(host, &inputs.init_path, true));
    }
    let mut socket_dir = None;
    match &inputs.docker_socket {
        Some(SocketMount::File { host, target }) => mounts.push(bind(host, target, false)),
        Some(SocketMount::Directory { host }) => socket_dir = Some(host.clone()),
        None => {}
    }
    mounts.extend(inputs.settings.mounts.iter().cloned());
    (mounts, socket_dir)
}

/// The configured labels, then the run's, by which `ps`, `gc` and a relaunch find and judge it.
fn sibling_labels(inputs: &SpecInputs) -> HashMap<String, String> {
    let run = inputs.run;
    let mut labels: HashMap<String, String> = inputs.settings.labels.clone().into_iter().collect();
    for (k, v) in labels::run_labels(run) {
        labels.insert(k.to_string(), v);
    }
    let mut set = |key: &str, value: String| labels.insert(key.to_string(), value);
    set(labels::LABEL_EXECUTOR, inputs.kind.name().into());
    set(labels::LABEL_INIT_PROTOCOL, PROTOCOL.to_string());
    set(
        labels::LABEL_WORK_DIR_HOST,
        inputs.work_dir_host.display().to_string(),
    );
    // Only a run that checkpoints has a forked.pid: a path to none would have the gc of
    // earlier releases judge the run by a meta directory it never had (see label_sets).
    if inputs.checkpointing {
        set(
            labels::LABEL_FORKED_PID,
            run.forked_pid_path().display().to_string(),
        );
        set(
            labels::LABEL_FORKED_PID_HOST,
            inputs.forked_pid_host.display().to_string(),
        );
    }
    if let Some(shim) = inputs.shim {
        set(labels::LABEL_SHIM, shim.to_string());
    }
    set(labels::LABEL_CHECKPOINT, inputs.checkpointing.to_string());
    set(
        labels::LABEL_LABEL_SET,
        label_sets::CURRENT.version.to_string(),
    );
    labels
}

fn bind(m: &BindMount) -> Mount {
    Mount {
        source: Some(path_string(&m.host)),
        target: Some(path_string(&m.container)),
        typ: Some(MountType::BIND),
        read_only: Some(m.read_only),
        ..Default::default()
    }
}

/// The socket's directory (see [`SocketMount::Directory`]): none of the mounts below it (a host's
/// `/run` holds many) comes along.
fn socket_dir(host: &Path) -> Mount {
    Mount {
        source: Some(path_string(host)),
        target: Some(SOCKET_DIR.to_string()),
        typ: Some(MountType::BIND),
        read_only: Some(true),
        bind_options: Some(MountBindOptions {
            non_recursive: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn path_string(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::sample_run as run;

    fn os(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }

    const SHIM: ProcessIdentity = ProcessIdentity {
        pid: 50,
        start: 500,
    };
    const AGENT: ProcessIdentity = ProcessIdentity {
        pid: 40,
        start: 400,
    };

    fn inputs<'a>(run: &'a RunLayout, settings: &'a Settings) -> SpecInputs<'a> {
        SpecInputs {
            run,
            kind: ExecutorKind::Command,
            settings,
            image: "agent:1".into(),
            executor: vec![
                "/usr/libexec/mesos/mesos-executor".into(),
                "--launcher_dir=/usr/libexec/mesos".into(),
                "arg with space".into(),
            ],
            env: vec!["A=1".into()],
            security: SiblingSecurity {
                user: "0:0".into(),
                ..SiblingSecurity::default()
            },
            init_path: "/run/mesos-executor-shim/init".into(),
            init_host_file: Some("/opt/shim".into()),
            sandbox_host: "/srv/mesos/slaves/S0/frameworks/F1/executors/app.1/runs/C-1".into(),
            sandbox_aliases: Vec::new(),
            volumes: Vec::new(),
            docker_socket: None,
            work_dir_host: "/srv/mesos".into(),
            forked_pid_host: "/srv/mesos/meta/x/pids/forked.pid".into(),
            checkpointing: true,
            shim: Some(SHIM),
            agent: Some(AGENT),
            output_reader: None,
            cgroup_parent: None,
            auto_remove: false,
        }
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
    fn the_init_runs_the_executor_with_its_arguments_verbatim() {
        let (run, settings) = (run(), Settings::default());
        let spec = SiblingSpec::build(&inputs(&run, &settings));
        let body = spec.create_body();
        assert_eq!(spec.name, "executor-mesos-C-1");
        assert_eq!(body.image.as_deref(), Some("agent:1"));
        let entrypoint = body.entrypoint.unwrap();
        let split = entrypoint.iter().position(|a| a == "--").unwrap();
        assert_eq!(
            entrypoint[..2],
            ["/run/mesos-executor-shim/init", "mesos-executor-shim-init"]
        );
        assert_eq!(
            entrypoint[split + 1..],
            [
                "/usr/libexec/mesos/mesos-executor",
                "--launcher_dir=/usr/libexec/mesos",
                "arg with space",
            ]
        );
        let parsed = InitArgs::parse(&entrypoint[2..]).unwrap().args;
        assert_eq!(
            parsed.stdout,
            PathBuf::from("/var/lib/mesos/slaves/S0/frameworks/F1/executors/app.1/runs/C-1/stdout")
        );
        assert_eq!(parsed.exit_record, run.exit_record_path());
        let watch = parsed
            .watch
            .expect("the init watches the shim and its agent");
        assert_eq!((watch.shim, watch.agent), (SHIM, AGENT));
        assert_eq!(body.cmd, Some(vec![]));
        assert_eq!(
            body.working_dir.as_deref(),
            Some("/var/lib/mesos/slaves/S0/frameworks/F1/executors/app.1/runs/C-1")
        );
    }

    #[test]
    fn without_end_with_shim_the_init_watches_nobody() {
        let run = run();
        let settings = Settings {
            end_with_shim: false,
            ..Settings::default()
        };
        let spec = SiblingSpec::build(&inputs(&run, &settings));
        let parsed = InitArgs::parse(&spec.entrypoint[2..]).unwrap().args;
        assert_eq!(parsed.watch, None);
    }

    /// The safe defaults: what a command executor's sibling gets and nothing more.
    #[test]
    fn a_command_executor_gets_its_sandbox_and_its_init_only() {
        let (run, settings) = (run(), Settings::default());
        let body = SiblingSpec::build(&inputs(&run, &settings)).create_body();
        let host = body.host_config.unwrap();
        assert_eq!(host.pid_mode.as_deref(), Some("host"));
        assert_eq!(host.network_mode.as_deref(), Some("host"));
        assert_eq!(host.auto_remove, Some(false));
        assert_eq!(host.privileged, Some(false));
        assert_eq!(host.cap_add, None);
        assert_eq!(host.binds, None);
        assert_eq!(
            host.cgroup_parent, None,
            "Docker's placement unless decided"
        );
        let mounts: Vec<(String, String, bool)> = host
            .mounts
            .unwrap()
            .into_iter()
            .map(|m| {
                assert_eq!(m.typ, Some(MountType::BIND));
                (m.source.unwrap(), m.target.unwrap(), m.read_only.unwrap())
            })
            .collect();
        assert_eq!(
            mounts,
            [
                (
                    "/srv/mesos/slaves/S0/frameworks/F1/executors/app.1/runs/C-1".to_string(),
                    "/var/lib/mesos/slaves/S0/frameworks/F1/executors/app.1/runs/C-1".to_string(),
                    false
                ),
                (
                    "/opt/shim".to_string(),
                    "/run/mesos-executor-shim/init".to_string(),
                    true
                ),
            ]
        );
        assert_eq!(
            host.tmpfs.unwrap()[SIBLING_MARKER_MOUNT],
            "ro,size=4k",
            "the hand-over marker is a mount of the sibling itself"
        );
        let labels = body.labels.unwrap();
        assert_eq!(labels[labels::LABEL_EXECUTOR_ID], "app.1");
        assert_eq!(labels[labels::LABEL_EXECUTOR], "mesos-executor");
        assert_eq!(labels[labels::LABEL_SHIM], "50:500");
        assert_eq!(labels[labels::LABEL_WORK_DIR_HOST], "/srv/mesos");
        assert_eq!(labels[labels::LABEL_CONTAINER_ID], "C-1");
    }

    /// Today's set names itself, and names a forked.pid only where the run has one: the gc of
    /// earlier releases then finds nothing to judge a run that does not checkpoint by.
    #[test]
    fn the_labels_name_their_set_and_a_forked_pid_only_where_there_is_one() {
        let (run, settings) = (run(), Settings::default());
        let labels_of = |checkpointing| {
            SiblingSpec::build(&SpecInputs {
                checkpointing,
                ..inputs(&run, &settings)
            })
            .labels
        };
        let checkpointing = labels_of(true);
        assert_eq!(checkpointing[labels::LABEL_LABEL_SET], "3");
        assert_eq!(checkpointing[labels::LABEL_CHECKPOINT], "true");
        assert_eq!(
            checkpointing[labels::LABEL_FORKED_PID],
            "/var/lib/mesos/meta/slaves/S0/frameworks/F1/executors/app.1/runs/C-1/pids/forked.pid"
        );
        assert_eq!(
            checkpointing[labels::LABEL_FORKED_PID_HOST],
            "/srv/mesos/meta/x/pids/forked.pid"
        );
        let not = labels_of(false);
        assert_eq!(not[labels::LABEL_CHECKPOINT], "false");
        assert!(!not.contains_key(labels::LABEL_FORKED_PID));
        assert!(!not.contains_key(labels::LABEL_FORKED_PID_HOST));
        assert_eq!(
            crate::sibling::label_sets::read(&not).map(|r| (r.set, r.checkpointing)),
            Ok((3, Some(false)))
        );
    }

    #[test]
    fn a_docker_executor_gets_the_sockets_directory_and_its_sandbox_where_its_flags_say() {
        let (run, settings) = (run(), Settings::default());
        let link = PathBuf::from("/var/lib/mesos/slaves/S0/docker/links/C-1");
        let spec = SiblingSpec::build(&SpecInputs {
            kind: ExecutorKind::Docker,
            sandbox_aliases: vec![link.clone(), run.sandbox.clone()],
            docker_socket: Some(SocketMount::Directory {
                host: "/run/docker-api".into(),
            }),
            init_host_file: None,
            init_path: "/usr/libexec/mesos/mesos-docker-executor".into(),
            ..inputs(&run, &settings)
        });
        let targets: Vec<&Path> = spec.mounts.iter().map(|m| m.container.as_path()).collect();
        assert_eq!(
            targets,
            [run.sandbox.as_path(), link.as_path()],
            "the sandbox once under each name; a baked init needs no mount"
        );
        let body = spec.create_body();
        let mounts = body.host_config.unwrap().mounts.unwrap();
        let socket_dir = mounts.last().unwrap();
        assert_eq!(socket_dir.source.as_deref(), Some("/run/docker-api"));
        assert_eq!(socket_dir.target.as_deref(), Some(SOCKET_DIR));
        assert_eq!(socket_dir.read_only, Some(true));
        assert_eq!(
            socket_dir
                .bind_options
                .as_ref()
                .and_then(|b| b.non_recursive),
            Some(true),
            "nothing mounted below the socket's directory comes along"
        );
        assert_eq!(
            spec.entrypoint[0],
            "/usr/libexec/mesos/mesos-docker-executor"
        );
        assert_eq!(spec.labels[labels::LABEL_EXECUTOR], "mesos-docker-executor");
    }

    #[test]
    fn a_command_executor_given_docker_gets_the_socket_file_where_docker_looks() {
        let (run, settings) = (run(), Settings::default());
        let spec = SiblingSpec::build(&SpecInputs {
            docker_socket: Some(SocketMount::File {
                host: "/run/docker.sock".into(),
                target: "/var/run/docker.sock".into(),
            }),
            ..inputs(&run, &settings)
        });
        assert!(spec
            .mounts
            .iter()
            .any(|m| m.host == Path::new("/run/docker.sock")
                && m.container == Path::new("/var/run/docker.sock")));
        assert_eq!(spec.socket_dir, None);
    }

    #[test]
    fn tunables_reach_the_host_config() {
        let run = run();
        let settings = Settings {
            memory: Some(64 << 20),
            cpus: Some(0.5),
            labels: [("team".to_string(), "infra".to_string())].into(),
            mounts: vec![BindMount::parse("/etc/ssl:/etc/ssl:ro").unwrap()],
            ..Settings::default()
        };
        let spec = SiblingSpec::build(&SpecInputs {
            cgroup_parent: Some("/mesos/C-1".into()),
            auto_remove: true,
            security: SiblingSecurity {
                user: "0:0".into(),
                cap_drop: vec!["ALL".into()],
                cap_add: vec!["SYS_ADMIN".into()],
                ulimits: vec![("nofile".into(), 1234, 1234)],
                security_opt: vec!["no-new-privileges".into()],
                group_add: vec!["10".into()],
                ..SiblingSecurity::default()
            },
            ..inputs(&run, &settings)
        });
        let body = spec.create_body();
        let host = body.host_config.unwrap();
        assert_eq!(host.cap_add, Some(vec!["SYS_ADMIN".to_string()]));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(host.group_add, Some(vec!["10".to_string()]));
        assert_eq!(
            host.security_opt,
            Some(vec!["no-new-privileges".to_string()])
        );
        let nofile = &host.ulimits.unwrap()[0];
        assert_eq!(
            (nofile.name.as_deref(), nofile.soft, nofile.hard),
            (Some("nofile"), Some(1234), Some(1234))
        );
        assert_eq!(host.memory, Some(64 << 20));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.cgroup_parent.as_deref(), Some("/mesos/C-1"));
        assert_eq!(host.auto_remove, Some(true));
        let last = host.mounts.unwrap().pop().unwrap();
        assert_eq!(
            (
                last.source.as_deref(),
                last.target.as_deref(),
                last.read_only
            ),
            (Some("/etc/ssl"), Some("/etc/ssl"), Some(true))
        );
        assert_eq!(body.labels.unwrap()["team"], "infra");
    }

    #[test]
    fn docker_states_are_read_once() {
        use SiblingState as S;
        for (name, state) in [
            ("created", S::Created),
            ("running", S::Running),
            ("paused", S::Running),
            ("restarting", S::Running),
            ("exited", S::Stopped),
            ("dead", S::Stopped),
            ("removing", S::Removing),
            ("", S::Unknown),
        ] {
            assert_eq!(S::from_docker(name), state, "{name}");
        }
        assert_eq!(plan_for_existing(S::Running), ExistingPlan::Adopt);
        assert_eq!(plan_for_existing(S::Stopped), ExistingPlan::Replace);
        assert_eq!(plan_for_existing(S::Created), ExistingPlan::Replace);
        for name in S::STOPPED_NAMES {
            assert_eq!(S::from_docker(name), S::Stopped);
        }
    }

    /// Whatever bytes the environment holds: no panic, every entry `KEY=VALUE` with the key and
    /// value as given, in the given order, and nothing but the agent-container variables left out.
    mod property {
        use super::*;
        use proptest::prelude::*;

        fn key() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                prop::sample::select(vec![
                    "PATH",
                    "MESOS_DIRECTORY",
                    "EXECUTOR_SHIM_IMAGE",
                    "HOSTNAME",
                    "A=B",
                    "",
                    "K\0"
                ])
                .prop_map(|k| k.as_bytes().to_vec()),
                prop::collection::vec(any::<u8>(), 0..8),
            ]
        }

        proptest! {
            #[test]
            fn the_forwarded_environment_is_well_formed(
                env in prop::collection::vec((key(), prop::collection::vec(any::<u8>(), 0..12)), 0..8)
            ) {
                use std::os::unix::ffi::OsStringExt;
                let env: Vec<(OsString, OsString)> = env
                    .into_iter()
                    .map(|(k, v)| (OsString::from_vec(k), OsString::from_vec(v)))
                    .collect();
                let (kept, dropped) = executor_environment(&env);
                let mut rest = env.iter();
                for entry in &kept {
                    let (key, value) = entry.split_once('=').expect("KEY=VALUE");
                    prop_assert!(!NOT_FORWARDED.contains(&key), "{entry:?}");
                    prop_assert!(
                        rest.any(|(k, v)| k.to_str() == Some(key) && v.to_str() == Some(value)),
                        "{entry:?} is not the input's, in order"
                    );
                }
                let not_forwarded = env
                    .iter()
                    .filter(|(k, _)| k.to_str().is_some_and(|k| NOT_FORWARDED.contains(&k)))
                    .count();
                prop_assert_eq!(kept.len() + dropped.len() + not_forwarded, env.len());
            }
        }
    }
}
