//! `doctor`: checks, from inside the agent container (or on the host), everything executor
//! recovery depends on, one line per check with what to change when it fails. Every judgement is
//! the relay's own: the same placement, PID-namespace, cgroup and auto-remove rules.

mod agent;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::agent_container::{AgentContainer, PidNamespace};
use crate::config::{ConfigFile, Settings, DEFAULT_CONFIG_PATH};
use crate::engine::bugs::{self as engine_bugs, ExitStormDeadlock};
use crate::engine::{DaemonFacts, Engine, HostFacts, NoDaemon};
use crate::error::{ShimError, PROBLEM_FOUND, SUCCESS};
use crate::mesos::cgroups;
use crate::mesos::executor::{stock_beside, ExecutorKind};
use crate::sibling::placement::{
    self, AutoRemove, InitBinary, Placement, PlacementError, SIBLING_DOCKER_SOCKET,
};

#[derive(Debug, Serialize)]
pub(crate) struct Check {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
    /// What an operator should know although nothing fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn pass(check: &'static str, detail: impl Into<String>) -> Check {
    Check {
        check,
        ok: true,
        detail: detail.into(),
        warning: None,
        fix: None,
    }
}

fn warn(check: &'static str, detail: impl Into<String>, warning: impl Into<String>) -> Check {
    Check {
        warning: Some(warning.into()),
        ..pass(check, detail)
    }
}

fn failed(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        check,
        ok: false,
        detail: detail.into(),
        warning: None,
        fix: Some(fix.into()),
    }
}

/// [`SUCCESS`] when every check passes (warnings included), [`PROBLEM_FOUND`] otherwise.
pub fn main(
    config: Option<&Path>,
    work_dir: &Path,
    launcher_dir: &Path,
    json: bool,
) -> Result<u8, ShimError> {
    let mut checks = Vec::new();
    let settings = match super::operator_settings(config) {
        Ok(loaded) => {
            checks.push(config_check(loaded.file.as_ref(), work_dir));
            loaded.settings
        }
        Err(e) => {
            checks.push(failed(
                "config",
                e.to_string(),
                "fix the key named above; see the README's configuration table",
            ));
            Settings::default()
        }
    };
    let (agent_checks, judged) = agent::checks(work_dir, launcher_dir);
    checks.extend(agent_checks);
    crate::runtime::current_thread()?.block_on(run_checks(
        &settings,
        work_dir,
        &judged,
        &mut checks,
    ));
    if json {
        super::print_json(&checks)?;
    } else {
        for c in &checks {
            super::print(check_line(c))?;
        }
    }
    Ok(if checks.iter().all(|c| c.ok) {
        SUCCESS
    } else {
        PROBLEM_FOUND
    })
}

/// One check as a line of the report. Its values go through [`super::printable`]: some are read
/// from processes anyone on the host can start (a task's process named `mesos-agent`, whose
/// arguments are its own: see [`mesos_agent_cmdline`]).
fn check_line(c: &Check) -> String {
    use super::printable;
    let detail = printable(&c.detail);
    match (&c.fix, &c.warning) {
        (Some(fix), _) => format!("FAIL  {:<16} {detail} -> {}", c.check, printable(fix)),
        (None, Some(w)) => format!("warn  {:<16} {detail}; {}", c.check, printable(w)),
        (None, None) => format!("ok    {:<16} {detail}", c.check),
    }
}

/// The file is valid (read as the relay reads it); the relay trusts it
/// ([`ConfigFile::untrusted`]), and so does a launch that runs as the task's user.
fn config_check(file: Option<&ConfigFile>, work_dir: &Path) -> Check {
    let Some(file) = file else {
        return pass(
            "config",
            format!("no file at {DEFAULT_CONFIG_PATH}: the defaults apply"),
        );
    };
    let shown = file.path.display();
    if let Some(why) = file.untrusted(work_dir) {
        return failed(
            "config",
            format!("{shown} is valid, but the relay will refuse it: {why}"),
            "make root own the file, every directory on the way to it and every link to it, writable by nobody \
             else, outside the work_dir",
        );
    }
    // Refused here, at install: the relay cannot read the file before the launch helper of
    // the agent's --switch_user (its default) becomes the task's user.
    match file.closed_to_other_users() {
        Some(why) => failed(
            "config",
            format!(
                "{shown} is valid, but a launch that runs as the task's user (the agent's --switch_user, its \
                 default) cannot read it and fails with 78: {why}"
            ),
            format!("chmod 0644 {} and 0755 each directory on the way to it", file.real.display()),
        ),
        None => pass("config", format!("{shown} is valid")),
    }
}

async fn run_checks(
    settings: &Settings,
    work_dir: &Path,
    judged: &agent::Judged,
    checks: &mut Vec<Check>,
) {
    let Some(engine) = docker_check(settings, checks).await else {
        return;
    };
    let agent = match AgentContainer::discover(&engine).await {
        Ok(agent) => agent,
        Err(e) => {
            checks.push(failed(
                "agent-container",
                format!("{e:#}"),
                "check the daemon",
            ));
            return;
        }
    };
    // What only GET /info tells: asked once, here, for the checks that need it.
    let host = match engine.host_facts().await {
        Ok(host) => host,
        Err(e) => {
            checks.push(failed("docker", format!("{e:#}"), "check the daemon"));
            return;
        }
    };
    checks.push(daemon_restart_check(engine.facts(), &host));
    checks.push(exit_storm_check(engine.facts()));
    checks.push(agent_container_check(agent.as_ref()));
    checks.push(pid_namespace_check(agent.as_ref()));

    // The relay's own decision, reported part by part.
    let own_binary = crate::proc::own_binary().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let placement = Placement::resolve(settings, agent.as_ref(), work_dir, &own_binary);
    checks.push(work_dir_check(work_dir, &placement.work_dir_host));
    checks.extend(image_checks(settings, &engine, &placement, &judged.launcher_dir).await);
    checks.push(docker_socket_check(settings, agent.as_ref(), &placement));
    checks.push(cgroups_check(settings, &host.cgroup_driver));
    checks.push(agent::isolators_check(judged.flags.as_ref()));
}

/// The daemon, reached as the relay reaches it, with its version and API; `None` (and a
/// failed check) where it is not: every other check needs it.
async fn docker_check(settings: &Settings, checks: &mut Vec<Check>) -> Option<Engine> {
    let engine = match super::connect(settings).await {
        Ok(engine) => engine,
        Err(e) => {
            checks.push(match e.error.downcast_ref::<NoDaemon>() {
                Some(absent) => failed(
                    "docker",
                    format!("no Docker daemon answers at {} ({})", absent.endpoint, absent.why),
                    "start it, or fix docker_host in the configuration file (DOCKER_HOST in this shell wins \
                     over it); every other check needs the daemon",
                ),
                None => failed(
                    "docker",
                    e.to_string(),
                    "make the daemon reachable; every other check needs it",
                ),
            });
            return None;
        }
    };
    let api = match engine.api().version().await {
        Ok(v) => v.api_version.unwrap_or_default(),
        Err(e) => format!("unknown: {e}"),
    };
    checks.push(pass(
        "docker",
        format!(
            "Docker {} (API {api}) at {}",
            engine.facts().version,
            settings.docker_host
        ),
    ));
    Some(engine)
}

fn agent_container_check(agent: Option<&AgentContainer>) -> Check {
    match agent {
        Some(a) => pass(
            "agent-container",
            format!(
                "running in container {} (image {})",
                short(&a.id),
                a.image_name.as_deref().unwrap_or(&a.image)
            ),
        ),
        None => pass("agent-container", "not in a container: running on the host"),
    }
}

fn pid_namespace_check(agent: Option<&AgentContainer>) -> Check {
    match agent.map(AgentContainer::pid_namespace) {
        None => pass("pid-namespace", "on the host, pids are host pids"),
        Some(PidNamespace::Host) => pass("pid-namespace", "the agent container shares the host's PID namespace"),
        Some(PidNamespace::Private) => failed(
            "pid-namespace",
            "the agent container has a PID namespace of its own: a checkpointed host pid means nothing to the agent",
            "restart the agent container with --pid=host",
        ),
        Some(PidNamespace::Unknown(mode)) => warn(
            "pid-namespace",
            format!("the agent container shares the PID namespace of {mode}"),
            "that is the host's only if that container runs with --pid=host; each launch checks its sibling's pid and fails (78) where it cannot see it",
        ),
    }
}

/// What a restart of the daemon does to the executors here (see the README's *Docker daemon
/// restarts*).
fn daemon_restart_check(facts: &DaemonFacts, host: &HostFacts) -> Check {
    if !host.live_restore {
        return warn(
            "daemon-restart",
            format!("Docker {} runs without live-restore", facts.version),
            "a restart of the daemon stops every sibling, and with it every executor (their shims report the \
             executors' exit); set \"live-restore\": true in /etc/docker/daemon.json so executors outlive it",
        );
    }
    match placement::auto_remove(facts, host.live_restore) {
        AutoRemove::Safe => pass(
            "daemon-restart",
            format!(
                "Docker {} with live-restore: executors outlive a restart of the daemon; exited siblings are \
                 auto-removed",
                facts.version
            ),
        ),
        AutoRemove::Unsafe(why) => pass(
            "daemon-restart",
            format!(
                "live-restore on: executors outlive a restart of the daemon; {why}, so siblings are made \
                 without auto-remove and removed by their shim after the exit, else by the next launch on \
                 this host or gc"
            ),
        ),
    }
}

/// Whether many siblings exiting at once can deadlock this daemon (see
/// [`engine_bugs::exit_storm_deadlock`]).
fn exit_storm_check(facts: &DaemonFacts) -> Check {
    match engine_bugs::exit_storm_deadlock(facts) {
        ExitStormDeadlock::Fixed => pass(
            "exit-storm",
            format!(
                "Docker {} has the fix for moby/moby#46661: many siblings may exit at once",
                facts.version
            ),
        ),
        ExitStormDeadlock::Affected(why) | ExitStormDeadlock::Unknown(why) => {
            warn("exit-storm", format!("Docker {}", facts.version), why)
        }
    }
}

/// Which siblings get the Docker socket, and whether the agent container's own view of it
/// survives a restart of the daemon.
fn docker_socket_check(
    settings: &Settings,
    agent: Option<&AgentContainer>,
    placement: &Placement,
) -> Check {
    let host = match &placement.docker_socket_host {
        Ok(Some(host)) => host,
        Ok(None) => {
            return pass(
                "docker-socket",
                format!(
                    "Docker is reached at {}: siblings get no socket",
                    settings.docker_host
                ),
            )
        }
        Err(e) => return failed("docker-socket", &e.problem, &e.fix),
    };
    let command = if placement::gets_docker_socket(ExecutorKind::Command, settings) {
        format!("command executors' siblings get it too, at {SIBLING_DOCKER_SOCKET} (command_executor_docker: true)")
    } else {
        "command executors' siblings get none: their tasks cannot reach Docker (command_executor_docker: false)".to_string()
    };
    let docker = match placement::socket_directory(host) {
        Ok((dir, socket)) => format!(
            "docker executors' siblings get the host's {} (the directory of {}, read-only) and name {} as their \
             --docker_socket, with the shim as their docker CLI, so that their tasks outlive a restart of the daemon",
            dir.display(),
            host.display(),
            socket.display()
        ),
        Err(e) => return failed("docker-socket", &e.problem, &e.fix),
    };
    let detail = format!("{docker}; {command}");
    let socket = settings.docker_host.socket();
    match (agent, socket) {
        (Some(agent), Some(socket)) if agent.mount_at(socket).is_some() => warn(
            "docker-socket",
            detail,
            format!(
                "{} is mounted into the agent container as a file: a restarted daemon makes a new socket and this \
                 mount keeps the old one, so until the agent container restarts, new launches and the agent's own \
                 docker containerizer cannot reach the daemon (running executors are not affected); mount the \
                 directory that holds the socket instead, or give dockerd a socket in a directory of its own \
                 (-H unix:///run/docker-shim/docker.sock) and mount that directory",
                socket.display()
            ),
        ),
        _ => pass("docker-socket", detail),
    }
}

/// Which cgroup placement applies on this host, and what it means (the relay's own rule, read
/// from the same `/proc/self/cgroup` and the same Docker facts).
fn cgroups_check(settings: &Settings, driver: &str) -> Check {
    let own = match crate::proc::read_self("cgroup") {
        Ok(text) => text,
        Err(e) => return failed("cgroups", e.to_string(), "mount the proc filesystem"),
    };
    match cgroups::host_obstacle(&own, driver, settings.mesos_cgroups) {
        None => {
            if cgroups::memory_limits_hold_below(Path::new(cgroups::V1_MOUNT)) == Some(false) {
                return failed(
                    "cgroups",
                    cgroups::NO_MEMORY_HIERARCHY_MEANS,
                    "set memory.use_hierarchy to 1 at the root of the memory hierarchy",
                );
            }
            pass(
                "cgroups",
                format!(
                    "cgroups v1, Docker's {driver} driver: an executor the linux launcher put in a Mesos container's \
                     cgroup runs under it (the container's limits and destroy apply); under the posix launcher \
                     siblings keep Docker's placement, and a destroy that kills the shim ends the executor"
                ),
            )
        }
        Some(why) => pass(
            "cgroups",
            format!(
                "siblings keep Docker's placement: {why}; under the linux launcher {}",
                cgroups::DEFAULT_PLACEMENT_MEANS
            ),
        ),
    }
}

fn work_dir_check(work_dir: &Path, host: &Result<PathBuf, PlacementError>) -> Check {
    if !work_dir.is_dir() {
        return failed(
            "work-dir",
            format!("{} does not exist here", work_dir.display()),
            "pass the agent's --work_dir with --work-dir (or MESOS_WORK_DIR)",
        );
    }
    match host {
        Ok(host) if host == work_dir => pass(
            "work-dir",
            format!(
                "{} is at the same path on the host: each sibling gets its sandbox there",
                work_dir.display()
            ),
        ),
        Ok(host) => pass(
            "work-dir",
            format!("{} is {} on the host", work_dir.display(), host.display()),
        ),
        Err(e) => failed("work-dir", &e.problem, &e.fix),
    }
}

/// Where `docker` may be in an image: the docker executor runs `--docker` (default `docker`) from
/// PATH.
const DOCKER_CLI_PATHS: [&str; 3] = ["/usr/bin/docker", "/usr/local/bin/docker", "/bin/docker"];

/// The executors the relay would run, in the image it would run them in, and the init: one check
/// each.
async fn image_checks(
    settings: &Settings,
    engine: &Engine,
    placement: &Placement,
    launcher_dir: &Path,
) -> Vec<Check> {
    let image = match &placement.image {
        Ok(image) => image,
        Err(e) => return vec![failed("executor-image", &e.problem, &e.fix)],
    };
    let path = |kind: ExecutorKind, configured: &Option<PathBuf>| {
        configured
            .clone()
            .unwrap_or_else(|| kind.in_launcher_dir(launcher_dir))
    };
    let executor = path(ExecutorKind::Command, &settings.executor);
    let docker_executor = path(ExecutorKind::Docker, &settings.docker_executor);
    let init_in_image = match &placement.init {
        Ok(InitBinary::InImage(path)) => Some(path.clone()),
        _ => None,
    };
    let mut wanted: Vec<PathBuf> = vec![
        executor.clone(),
        stock_beside(&executor),
        docker_executor.clone(),
        stock_beside(&docker_executor),
    ];
    wanted.extend(DOCKER_CLI_PATHS.map(PathBuf::from));
    wanted.extend(init_in_image.clone());
    let look = match ImageLook::of(engine, image, &wanted).await {
        Ok(look) => look,
        Err(e) => {
            return vec![failed(
                "executor-image",
                format!("{e:#}"),
                "load or build the image on the Docker host, or set \"image\" in the configuration file",
            )]
        }
    };
    vec![
        look.command_executor(&executor),
        look.docker_executor(&docker_executor),
        look.init(&placement.init, init_in_image),
    ]
}

/// Which of the paths [`image_checks`] asks about are executable in the executor image: the
/// command executor and the stock one beside it, the docker executor and the stock one beside
/// it, the docker CLIs, then the init where it is baked in.
struct ImageLook {
    shown: String,
    names: Vec<String>,
    modes: Vec<Option<u32>>,
}

impl ImageLook {
    async fn of(engine: &Engine, image: &str, wanted: &[PathBuf]) -> anyhow::Result<ImageLook> {
        let names: Vec<String> = wanted.iter().map(|p| p.display().to_string()).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let modes = engine.stat_in_image(image, &refs).await?;
        Ok(ImageLook {
            shown: short(image).to_string(),
            names,
            modes,
        })
    }

    fn executable(&self, i: usize) -> bool {
        self.modes[i].is_some_and(|m| m & 0o111 != 0)
    }

    /// ` (baked: ...)` where the stock executor at `i` is there.
    fn baked(&self, i: usize) -> String {
        match self.executable(i) {
            true => format!(" (baked: the stock executor is {})", self.names[i]),
            false => String::new(),
        }
    }

    fn command_executor(&self, executor: &Path) -> Check {
        let shown = &self.shown;
        if self.executable(0) {
            return pass(
                "executor-image",
                format!(
                    "image {shown} holds {}{}",
                    executor.display(),
                    self.baked(1)
                ),
            );
        }
        failed(
            "executor-image",
            format!("image {shown} has no executable {}", executor.display()),
            "set \"executor\" in the configuration file to the real executor's path in that image, or pass \
             the agent's --launcher_dir with --launcher-dir",
        )
    }

    fn docker_executor(&self, docker_executor: &Path) -> Check {
        let shown = &self.shown;
        let cli = (4..4 + DOCKER_CLI_PATHS.len())
            .find(|i| self.executable(*i))
            .map(|i| self.names[i].clone());
        match (self.executable(2), cli) {
            (false, _) => pass(
                "docker-executor",
                format!(
                    "image {shown} has no {}: it runs no docker containerizer tasks",
                    docker_executor.display()
                ),
            ),
            (true, Some(cli)) => pass(
                "docker-executor",
                format!(
                    "image {shown} holds {}{} and {cli}",
                    docker_executor.display(),
                    self.baked(3)
                ),
            ),
            (true, None) => failed(
                "docker-executor",
                format!(
                    "image {shown} holds {} but no docker CLI, which it runs for every task",
                    docker_executor.display()
                ),
                "use the agent's own image, which has the docker CLI, as the executor image",
            ),
        }
    }

    fn init(
        &self,
        init: &Result<InitBinary, PlacementError>,
        init_in_image: Option<PathBuf>,
    ) -> Check {
        let shown = &self.shown;
        match (init, init_in_image) {
            (Err(e), _) => failed("init", &e.problem, &e.fix),
            (Ok(InitBinary::HostFile(host)), _) => pass(
                "init",
                format!(
                    "siblings run the shim {} as their first process, bound read-only",
                    host.display()
                ),
            ),
            (Ok(_), Some(path)) if self.executable(self.modes.len() - 1) => pass(
                "init",
                format!(
                    "siblings run the shim baked into image {shown} at {} as their first process",
                    path.display()
                ),
            ),
            (Ok(_), path) => failed(
                "init",
                format!(
                    "image {shown} has no shim at {}, which siblings run as their first process",
                    path.unwrap_or_default().display()
                ),
                "bind-mount the shim into the agent container from a host file, or bake it into the image",
            ),
        }
    }
}

/// An image or container ID shortened as `docker ps` does; names are kept whole.
fn short(id: &str) -> String {
    let bare = id.strip_prefix("sha256:").unwrap_or(id);
    if bare.len() == 64 && bare.bytes().all(|b| b.is_ascii_hexdigit()) {
        bare[..12].to_string()
    } else {
        id.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    /// A task sees host pids and can name a process of its own `mesos-agent`, with any
    /// arguments: what doctor reads from it reaches the operator's terminal escaped.
    #[test]
    fn a_check_line_carries_no_control_character() {
        let evil = "posix/cpu\u{1b}]0;owned\u{7}\u{1b}[2J";
        let checks = [
            pass("isolators", format!("carried: {evil}")),
            warn("isolators", evil, format!("not carried: {evil}")),
            failed("isolators", evil, evil),
        ];
        for c in &checks {
            let line = check_line(c);
            assert!(!line.chars().any(char::is_control), "{line:?}");
            assert!(line.contains("\\u{1b}]0;owned"), "{line:?}");
        }
    }

    use std::os::unix::fs::PermissionsExt;

    /// A file only root can read passes the trust rule, and every launch under the agent's
    /// --switch_user would fail on it: doctor fails it at install, naming the mode to set.
    #[test]
    fn a_configuration_file_only_root_can_read_fails_naming_the_mode() {
        let dir = crate::test_support::trusted_dir();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{}").unwrap();
        let check = |mode| {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let file = crate::config::load_for_operator(Some(&path), None)
                .unwrap()
                .file;
            config_check(file.as_ref(), Path::new("/var/lib/mesos"))
        };
        assert!(check(0o644).ok);
        let c = check(0o600);
        assert!(!c.ok && c.detail.contains("--switch_user"), "{}", c.detail);
        assert!(c.fix.unwrap().starts_with("chmod 0644 "));
    }
}
