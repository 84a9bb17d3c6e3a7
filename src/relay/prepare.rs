//! Everything decided before the sibling is created: where the shim runs, what the daemon is,
//! where the sibling's files and cgroups come from, and so the whole [`SiblingSpec`].

use std::path::{Path, PathBuf};

use crate::agent_container::{host_pids_visible, AgentContainer, PidNamespace};
use crate::config::Settings;
use crate::engine::host_facts;
use crate::engine::{Engine, HostFacts};
use crate::error::{fail, Classify, Failure, ShimError};
use crate::mesos::cgroups::{self, CgroupPlacement, DockerPlacementReason};
use crate::mesos::container::SiblingSecurity;
use crate::mesos::executor::{flag, with_flag, ExecutorKind};
use crate::mesos::volumes;
use crate::output::Route;
use crate::proc::ProcessIdentity;
use crate::relay::launch::Launch;
use crate::sibling::placement::{
    self, AutoRemove, InitBinary, Placement, PlacementError, Resolved, SIBLING_DOCKER_SOCKET,
};
use crate::sibling::protocol::REAL_CLI_VAR;
use crate::sibling::spec::{self, SiblingSpec, SocketMount, SpecInputs};

pub(crate) const PID_HOST_NEEDED: &str =
    "the agent container does not share the host's PID namespace, so the agent could not \
     follow the executor's host pid: run the agent container with --pid=host";

/// A launch ready to create its sibling.
pub(crate) struct Prepared {
    pub spec: SiblingSpec,
    /// The run's directories the sibling mounts, as the shim sees them.
    pub mount_sources: Vec<PathBuf>,
    /// The host path behind the work_dir: whose left-behind siblings the launch sweeps.
    pub work_dir_host: PathBuf,
    /// The agent container the shim runs in (`None`: the host), as Docker described it.
    pub agent: Option<AgentContainer>,
    /// Cgroups the sibling's runtime will make and nobody else would remove (see
    /// [`cgroups::hierarchies_without`]), noted before the sibling exists.
    pub cgroups_made_for_sibling: Vec<PathBuf>,
    /// The executor's output goes through the shim (see [`crate::output`]).
    pub relays_output: bool,
}

/// Decides the sibling from the launch, the settings and what the daemon (`engine`) and `/proc`
/// say. Asks the daemon one thing: the agent container's own description, when there is one.
pub(crate) async fn prepare(
    launch: &Launch,
    settings: &Settings,
    engine: &Engine,
) -> Result<Prepared, ShimError> {
    // The sandbox was verified as the agent's own when the launch was read.
    let run = &launch.run;
    let agent = agent_container(engine).await?;
    let host_pids = host_pids_visible(agent.as_ref()) == Some(true);
    let own_binary = crate::proc::own_binary().map_err(|e| {
        fail(
            Failure::Software,
            format!("cannot read /proc/self/exe: {e}"),
        )
    })?;
    let placement = Placement::resolve(settings, agent.as_ref(), &run.work_dir, &own_binary);
    let resolved = placement.clone().complete().classify(Failure::Config)?;
    let mounts = RunMounts::of(launch, &placement)?;
    let sandbox_aliases = sandbox_aliases(launch)?;
    let command = ExecutorCommand::of(launch, settings, &resolved)?;
    let security = sibling_security(launch, settings);
    let mut host = LazyHostFacts {
        engine,
        facts: None,
    };
    let cgroup_parent = cgroup_parent(&mut host, &run.container_id, settings).await?;
    let cgroups_made_for_sibling = cgroup_parent
        .as_deref()
        .map(|parent| cgroups::hierarchies_without(Path::new(cgroups::V1_MOUNT), parent))
        .unwrap_or_default();
    let auto_remove = auto_remove(&mut host).await?;
    let (init_path, init_host_file) = init_paths(&resolved.init);
    // Identities are host pids, which the sibling's init and gc read in the host's PID
    // namespace: named only where this process sees that namespace.
    let shim = host_pids.then(ProcessIdentity::current).flatten();
    let output_reader = output_reader(launch.origin.output, shim);
    let spec = SiblingSpec::build(&SpecInputs {
        run,
        kind: launch.kind,
        settings,
        image: resolved.image,
        executor: command.executor,
        env: command.env,
        security,
        init_path,
        init_host_file,
        sandbox_host: mounts.sandbox_host,
        sandbox_aliases,
        volumes: mounts.volumes,
        docker_socket: command.docker_socket,
        work_dir_host: resolved.work_dir_host.clone(),
        forked_pid_host: mounts.forked_pid_host,
        checkpointing: launch.checkpointing,
        shim,
        agent: launch
            .origin
            .agent
            .as_ref()
            .map(|a| a.identity)
            .filter(|_| host_pids),
        output_reader,
        cgroup_parent,
        auto_remove,
    });
    Ok(Prepared {
        spec,
        mount_sources: mounts.sources,
        work_dir_host: resolved.work_dir_host,
        agent,
        cgroups_made_for_sibling,
        relays_output: output_reader.is_some(),
    })
}

/// The sibling's security: the launch container's, with what of `cap_add` its bounding set
/// allows (the rest is said in the log).
fn sibling_security(launch: &Launch, settings: &Settings) -> SiblingSecurity {
    let security = SiblingSecurity::of(&launch.container, &settings.cap_add);
    if !security.refused_cap_add.is_empty() {
        tracing::warn!(
            capabilities = ?security.refused_cap_add,
            "not giving the sibling these capabilities of cap_add: the launch's bounding set lacks them"
        );
    }
    security
}

/// The init's path in the sibling, and the host file mounted there (`None`: it is in the image).
fn init_paths(init: &InitBinary) -> (PathBuf, Option<PathBuf>) {
    match init {
        InitBinary::InImage(path) => (path.clone(), None),
        InitBinary::HostFile(host) => (init.path_in_sibling().to_path_buf(), Some(host.clone())),
    }
}

/// The agent container the shim runs in (`None`: the host); one without the host's PID
/// namespace is refused before anything is made.
async fn agent_container(engine: &Engine) -> Result<Option<AgentContainer>, ShimError> {
    let agent = AgentContainer::discover(engine)
        .await
        .classify(Failure::Unavailable)?;
    if let Some(agent) = &agent {
        match agent.pid_namespace() {
            PidNamespace::Host => {}
            PidNamespace::Private => return Err(fail(Failure::Config, PID_HOST_NEEDED)),
            PidNamespace::Unknown(mode) => tracing::info!(
                pid_mode = mode,
                "the agent container shares another container's PID namespace; the sibling's pid is \
                 checked before it is checkpointed"
            ),
        }
    }
    Ok(agent)
}

/// The run's host paths, and the persistent volumes its sandbox links to, for the sibling.
struct RunMounts {
    sandbox_host: PathBuf,
    forked_pid_host: PathBuf,
    /// (host path, path here) of each volume.
    volumes: Vec<(PathBuf, PathBuf)>,
    /// Docker resolves the mount sources on the host: each is checked, right before the
    /// create, to be reached without a link (see the launch plan).
    sources: Vec<PathBuf>,
}

impl RunMounts {
    fn of(launch: &Launch, placement: &Placement) -> Result<RunMounts, ShimError> {
        let run = &launch.run;
        let sandbox_host = placement
            .host_path(&run.sandbox)
            .classify(Failure::Config)?;
        let forked_pid_host = placement
            .host_path(&run.forked_pid_path())
            .classify(Failure::Config)?;
        let linked = volumes::linked_volumes(&run.sandbox, &run.work_dir);
        for (link, why) in &linked.refused {
            tracing::warn!(link = %link.display(), reason = why, "not mounting what this link in the sandbox names");
        }
        if let Some(missing) = linked.incomplete() {
            tracing::warn!(sandbox = %run.sandbox.display(), "{missing}");
        }
        let volumes = linked
            .volumes
            .into_iter()
            .map(|v| Ok((placement.host_path(&v)?, v)))
            .collect::<Result<Vec<_>, PlacementError>>()
            .classify(Failure::Config)?;
        let mut sources = vec![run.sandbox.clone()];
        sources.extend(volumes.iter().map(|(_, here)| here.clone()));
        Ok(RunMounts {
            sandbox_host,
            forked_pid_host,
            volumes,
            sources,
        })
    }
}

/// The executor's command line and environment in the sibling, and how it reaches Docker.
struct ExecutorCommand {
    executor: Vec<String>,
    env: Vec<String>,
    docker_socket: Option<SocketMount>,
}

impl ExecutorCommand {
    /// The executor as the agent ran it. A docker executor gets the socket's directory and the
    /// sibling's init (this binary) as its `--docker` CLI, the real CLI named in [`REAL_CLI_VAR`]
    /// (see [`crate::docker_cli`]); a command executor gets the socket file only where the
    /// operator says so (see [`placement::gets_docker_socket`]).
    fn of(
        launch: &Launch,
        settings: &Settings,
        resolved: &Resolved,
    ) -> Result<ExecutorCommand, ShimError> {
        let (mut env, not_utf8) = spec::executor_environment(&launch.env);
        if !not_utf8.is_empty() {
            tracing::warn!(variables = ?not_utf8, "not forwarding variables that are not UTF-8");
        }
        let mut args = launch.executor_args.clone();
        let socket_host = resolved.docker_socket_host.as_ref();
        let docker_socket = match (launch.kind, socket_host) {
            _ if !placement::gets_docker_socket(launch.kind, settings) => None,
            (_, None) => None,
            (ExecutorKind::Command, Some(host)) => Some(SocketMount::File {
                host: host.clone(),
                target: PathBuf::from(SIBLING_DOCKER_SOCKET),
            }),
            (ExecutorKind::Docker, Some(host)) => {
                let (dir, socket) = placement::socket_directory(host).classify(Failure::Config)?;
                args = with_flag(&args, "docker_socket", &socket.display().to_string());
                let real = flag(&args, "docker").unwrap_or("docker").to_string();
                let cli = resolved.init.path_in_sibling().display().to_string();
                args = with_flag(&args, "docker", &cli);
                env.retain(|e| !e.starts_with(&format!("{REAL_CLI_VAR}=")));
                env.push(format!("{REAL_CLI_VAR}={real}"));
                Some(SocketMount::Directory { host: dir })
            }
        };
        let mut executor = vec![real_executor(launch, settings).display().to_string()];
        executor.extend(args);
        Ok(ExecutorCommand {
            executor,
            env,
            docker_socket,
        })
    }
}

/// Where else the sibling has its sandbox: at the path `MESOS_DIRECTORY` names (a work_dir
/// reached through the operator's link), and at the docker executor's `--sandbox_directory`.
fn sandbox_aliases(launch: &Launch) -> Result<Vec<PathBuf>, ShimError> {
    let mut aliases: Vec<PathBuf> = launch.sandbox_as_named.iter().cloned().collect();
    if let (ExecutorKind::Docker, Some(dir)) = (
        launch.kind,
        flag(&launch.executor_args, "sandbox_directory"),
    ) {
        let dir = absolute_flag("sandbox_directory", dir)?;
        if !aliases.contains(&dir) {
            aliases.push(dir);
        }
    }
    Ok(aliases)
}

/// Whether the daemon may remove the sibling by itself once it exits (see
/// [`placement::auto_remove`]): asks what only `GET /info` tells only where that decides.
async fn auto_remove(host: &mut LazyHostFacts<'_>) -> Result<bool, ShimError> {
    let facts = host.engine.facts();
    let live_restore = if placement::auto_remove_needs_live_restore(facts) {
        host.get().await?.live_restore
    } else {
        false
    };
    match placement::auto_remove(host.engine.facts(), live_restore) {
        AutoRemove::Safe => Ok(true),
        AutoRemove::Unsafe(why) => {
            tracing::debug!(
                reason = why,
                "the sibling is made without auto-remove; the shim removes it after its exit"
            );
            Ok(false)
        }
    }
}

/// Who reads the executor's output while it lives: this shim, where the agent's container
/// logger holds its stdout and it can name itself by host pid.
fn output_reader(route: Route, shim: Option<ProcessIdentity>) -> Option<ProcessIdentity> {
    match route {
        Route::SandboxFiles => None,
        Route::ThroughShim if shim.is_none() => {
            tracing::warn!("the agent's container logger holds the shim's stdout, but the shim cannot see the host's processes to read the executor's output: it goes to the sandbox files");
            None
        }
        Route::ThroughShim => shim,
    }
}

/// The real executor in the sibling's image: the configured path for this executor, else the
/// path the agent ran, which holds the stock executor in an agent image (a bind-mounted shim is
/// not part of the image; a baked one hands over to `<path>.real`, see
/// [`crate::mesos::executor::executor_to_run`]).
pub(crate) fn real_executor(launch: &Launch, settings: &Settings) -> PathBuf {
    real_executor_of(launch.kind, launch.exec_path.as_deref(), settings)
}

/// [`real_executor`], for the executor `kind` the agent ran at `exec_path`.
pub(crate) fn real_executor_of(
    kind: ExecutorKind,
    exec_path: Option<&Path>,
    settings: &Settings,
) -> PathBuf {
    let configured = match kind {
        ExecutorKind::Command => &settings.executor,
        ExecutorKind::Docker => &settings.docker_executor,
    };
    configured
        .clone()
        .unwrap_or_else(|| kind.path_the_agent_ran(exec_path))
}

/// A path flag of the executor's, which must be absolute to mean the same in the sibling.
fn absolute_flag(name: &str, value: &str) -> Result<PathBuf, ShimError> {
    let path = PathBuf::from(value);
    if !path.is_absolute() {
        return Err(fail(
            Failure::Usage,
            format!("--{name}={value:?} is not an absolute path; the agent passes absolute paths"),
        ));
    }
    Ok(path)
}

/// What only `GET /info` tells, asked at most once per launch and only if a decision needs it
/// (see [`host_facts`]).
struct LazyHostFacts<'a> {
    engine: &'a Engine,
    facts: Option<HostFacts>,
}

impl LazyHostFacts<'_> {
    async fn get(&mut self) -> Result<&HostFacts, ShimError> {
        if self.facts.is_none() {
            let facts =
                host_facts::host_facts(self.engine, crate::relay::effects::DOCKER_PATIENCE.busy)
                    .await
                    .classify(Failure::Unavailable)?;
            self.facts = Some(facts);
        }
        Ok(self.facts.as_ref().expect("just set"))
    }
}

/// Where the sibling's cgroups go: under the Mesos container's, when the linux launcher put the
/// shim in one and Docker can follow (see [`cgroups`]); otherwise Docker's, said once in the log.
async fn cgroup_parent(
    host: &mut LazyHostFacts<'_>,
    container_id: &str,
    settings: &Settings,
) -> Result<Option<String>, ShimError> {
    let own = crate::proc::read_self("cgroup").classify(Failure::Software)?;
    let driver = if cgroups::needs_docker_driver(&own, container_id, settings.mesos_cgroups) {
        host.get().await?.cgroup_driver.clone()
    } else {
        String::new()
    };
    match cgroups::decide(&own, container_id, &driver, settings.mesos_cgroups) {
        CgroupPlacement::UnderMesosContainer { parent } => {
            tracing::info!(
                cgroup_parent = parent,
                "placing the sibling under the Mesos container's cgroup"
            );
            if cgroups::memory_limits_hold_below(Path::new(cgroups::V1_MOUNT)) == Some(false) {
                tracing::warn!("{}", cgroups::NO_MEMORY_HIERARCHY_MEANS);
            }
            Ok(Some(parent))
        }
        CgroupPlacement::DockerDefault(
            why @ (DockerPlacementReason::NoMesosCgroup | DockerPlacementReason::CgroupsV2),
        ) => {
            tracing::info!(reason = %why, "keeping Docker's cgroup placement");
            Ok(None)
        }
        CgroupPlacement::DockerDefault(why) => {
            tracing::warn!(reason = %why, "keeping Docker's cgroup placement: {}", cgroups::DEFAULT_PLACEMENT_MEANS);
            Ok(None)
        }
    }
}
