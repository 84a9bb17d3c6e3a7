//! `doctor`: checks, from inside the agent container (or on the host), everything executor
//! recovery depends on, one line per check with what to change when it fails.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{trusted_file, Settings, DEFAULT_CONFIG_PATH};
use crate::error::ShimError;
use crate::mesos::cgroups;
use crate::mesos::executor::ExecutorKind;
use crate::sibling::discover::AgentContainer;
use crate::sibling::engine::Engine;
use crate::sibling::placement::{Placement, PlacementError};
use crate::sibling::spec::SIBLING_DOCKER_SOCKET;

#[derive(Debug, Serialize)]
pub struct Check {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

fn pass(check: &'static str, detail: impl Into<String>) -> Check {
    Check {
        check,
        ok: true,
        detail: detail.into(),
        fix: None,
    }
}

fn failed(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        check,
        ok: false,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// Exit status 0 when every check passes, 1 otherwise.
pub fn main(
    config: Option<&Path>,
    work_dir: &Path,
    launcher_dir: &Path,
    json: bool,
) -> Result<u8, ShimError> {
    let mut checks = Vec::new();
    let settings = match super::operator_settings(config) {
        Ok(loaded) => {
            checks.push(config_check(loaded.file.as_deref(), work_dir));
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
    super::runtime()?.block_on(run_checks(&settings, work_dir, launcher_dir, &mut checks));
    if json {
        super::print_json(&checks);
    } else {
        for c in &checks {
            match &c.fix {
                None => println!("ok    {:<16} {}", c.check, c.detail),
                Some(fix) => println!("FAIL  {:<16} {} -> {fix}", c.check, c.detail),
            }
        }
    }
    Ok(if checks.iter().all(|c| c.ok) { 0 } else { 1 })
}

/// The file is valid; the relay also reads it only where [`trusted_file`] accepts it.
fn config_check(file: Option<&Path>, work_dir: &Path) -> Check {
    let Some(file) = file else {
        return pass(
            "config",
            format!("no file at {DEFAULT_CONFIG_PATH}: the defaults apply"),
        );
    };
    match trusted_file(file, work_dir) {
        Ok(_) => pass("config", format!("{} is valid", file.display())),
        Err(why) => failed(
            "config",
            format!("{} is valid, but the relay will refuse it: {why}", file.display()),
            "make root own the file and every directory above it, writable by nobody else, outside the work_dir",
        ),
    }
}

async fn run_checks(
    settings: &Settings,
    work_dir: &Path,
    launcher_dir: &Path,
    checks: &mut Vec<Check>,
) {
    let endpoint = &settings.docker_host;
    let engine = match super::connect(settings).await {
        Ok(engine) => engine,
        Err(e) => {
            checks.push(failed(
                "docker",
                e.to_string(),
                "make the daemon reachable; every other check needs it",
            ));
            return;
        }
    };
    match engine.api().version().await {
        Ok(v) => checks.push(pass(
            "docker",
            format!(
                "Docker {} (API {}) at {endpoint}",
                v.version.unwrap_or_default(),
                v.api_version.unwrap_or_default()
            ),
        )),
        Err(e) => checks.push(failed(
            "docker",
            format!("{endpoint} answers ping but not version: {e}"),
            "check the daemon",
        )),
    }

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
    match &agent {
        Some(a) => checks.push(pass(
            "agent-container",
            format!(
                "running in container {} (image {})",
                short(&a.id),
                a.image_name.as_deref().unwrap_or(&a.image)
            ),
        )),
        None => checks.push(pass(
            "agent-container",
            "not in a container: running on the host",
        )),
    }

    checks.push(match &agent {
        Some(a) if a.shares_host_pids() == Some(true) => pass("pid-namespace", "the agent container shares the host's PID namespace"),
        Some(a) => failed(
            "pid-namespace",
            format!("the agent container runs with PidMode {:?}: a checkpointed host pid means nothing to the agent", a.pid_mode.as_deref().unwrap_or("")),
            "restart the agent container with --pid=host",
        ),
        None => pass("pid-namespace", "on the host, pids are host pids"),
    });

    // The relay's own decision, reported part by part.
    let placement = Placement::resolve(settings, agent.as_ref(), work_dir);
    checks.push(work_dir_check(work_dir, &placement.work_dir_host));
    checks.extend(image_checks(settings, &engine, &placement.image, launcher_dir).await);
    checks.push(match &placement.docker_socket_host {
        Ok(Some(host)) => pass(
            "docker-socket",
            format!(
                "siblings get the host's {} at {SIBLING_DOCKER_SOCKET} (or where mesos-docker-executor's --docker_socket says)",
                host.display()
            ),
        ),
        Ok(None) => pass(
            "docker-socket",
            format!("Docker is reached at {endpoint}: siblings get no socket"),
        ),
        Err(e) => failed("docker-socket", &e.problem, &e.fix),
    });
    checks.push(cgroups_check(settings, &engine).await);
}

/// Which cgroup placement applies on this host, and what it means (the relay's own rule).
async fn cgroups_check(settings: &Settings, engine: &Engine) -> Check {
    let (driver, version) = match engine.cgroup_setup().await {
        Ok(setup) => setup,
        Err(e) => return failed("cgroups", format!("{e:#}"), "check the daemon"),
    };
    match cgroups::host_obstacle(version == "1", &driver, settings.mesos_cgroups) {
        None => {
            let hierarchy =
                std::path::Path::new(cgroups::V1_MOUNT).join("memory/memory.use_hierarchy");
            if std::fs::read_to_string(&hierarchy).is_ok_and(|v| v.trim() == "0") {
                return failed(
                    "cgroups",
                    "memory.use_hierarchy is 0: a Mesos container's memory limit would not hold a sibling below it",
                    "set memory.use_hierarchy to 1 at the root of the memory hierarchy",
                );
            }
            pass(
                "cgroups",
                format!(
                    "cgroups v1, Docker's {driver} driver: an executor the linux launcher put in a Mesos container's \
                     cgroup runs under it (the container's limits and destroy apply); under the posix launcher \
                     siblings keep Docker's placement and destroy reaches them through forked.pid"
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
                "{} is shared with the siblings at the same path",
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

/// The executors the relay would run, in the image it would run them in: one check per executor.
async fn image_checks(
    settings: &Settings,
    engine: &Engine,
    image: &Result<String, PlacementError>,
    launcher_dir: &Path,
) -> Vec<Check> {
    let image = match image {
        Ok(image) => image,
        Err(e) => return vec![failed("executor-image", &e.problem, &e.fix)],
    };
    if let Err(e) = engine.api().inspect_image(image).await {
        return vec![failed(
            "executor-image",
            format!("image {image} is not on the Docker host ({e})"),
            "load or build it there, or set \"image\" in the configuration file",
        )];
    }
    let path = |kind: ExecutorKind, configured: &Option<PathBuf>| {
        configured
            .clone()
            .unwrap_or_else(|| launcher_dir.join(kind.name()))
            .display()
            .to_string()
    };
    let executor = path(ExecutorKind::Command, &settings.executor);
    let docker_executor = path(ExecutorKind::Docker, &settings.docker_executor);
    let (real, docker_real) = (
        format!("{executor}.real"),
        format!("{docker_executor}.real"),
    );
    let mut wanted = vec![
        executor.as_str(),
        real.as_str(),
        docker_executor.as_str(),
        docker_real.as_str(),
        "/bin/sh",
    ];
    wanted.extend(DOCKER_CLI_PATHS);
    let modes = match engine.stat_in_image(image, &wanted).await {
        Ok(m) => m,
        Err(e) => {
            return vec![failed(
                "executor-image",
                format!("{e:#}"),
                "check the image",
            )]
        }
    };
    let executable = |i: usize| modes[i].is_some_and(|m| m & 0o111 != 0);
    let baked = |i: usize| {
        if executable(i) {
            format!(" (baked: the stock executor is {})", wanted[i])
        } else {
            String::new()
        }
    };
    let shown = short(image);
    let command = if !executable(0) {
        failed(
            "executor-image",
            format!("image {shown} has no executable {executor}"),
            "set \"executor\" in the configuration file to the real executor's path in that image, or pass \
             the agent's --launcher_dir with --launcher-dir",
        )
    } else if !executable(4) {
        failed(
            "executor-image",
            format!("image {shown} has no /bin/sh"),
            "use an image with /bin/sh (every Mesos image has one)",
        )
    } else {
        pass(
            "executor-image",
            format!("image {shown} holds {executor}{} and /bin/sh", baked(1)),
        )
    };
    let cli = (5..wanted.len())
        .find(|i| executable(*i))
        .map(|i| wanted[i]);
    let docker = match (executable(2), cli) {
        (false, _) => pass(
            "docker-executor",
            format!("image {shown} has no {docker_executor}: it runs no docker containerizer tasks"),
        ),
        (true, Some(cli)) => pass(
            "docker-executor",
            format!("image {shown} holds {docker_executor}{} and {cli}", baked(3)),
        ),
        (true, None) => failed(
            "docker-executor",
            format!("image {shown} holds {docker_executor} but no docker CLI, which it runs for every task"),
            "use the agent's own image, which has the docker CLI, as the executor image",
        ),
    };
    vec![command, docker]
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
