//! The shim inside Mesos's own container for the docker executor.
//!
//! With `--docker_mesos_image=<image>` the agent does not fork `mesos-docker-executor`: it runs
//! `<launcher_dir>/mesos-docker-executor` with `docker run --name mesos-<CID>.executor` in that
//! image (host PID namespace and network, the sandbox and the Docker socket mounted, the image's
//! working directory, not the sandbox) and checkpoints that container's pid. Where the image is
//! the operator's agent image with the shim baked in, the shim starts there.
//!
//! **What it does there: it becomes the stock executor in place, with no sibling.** The executor
//! is already outside the agent container, which is all a sibling achieves: it runs on through
//! the agent container's death, and the restarted agent finds it through the pid it checkpointed
//! and its libprocess address, as with the stock executor. A sibling would add nothing but harm:
//! the agent's `forked.pid` names the executor container's process (the meta directory is not
//! even mounted there), the agent stops that container to destroy the run, and a sibling outside
//! it would outlive the destroy.
//!
//! **Told from facts no task can set.** A relay the agent forks runs in the sandbox, which
//! `MESOS_DIRECTORY` names: such a launch is never looked at here, and costs nothing more.
//! Otherwise (a working directory that is not the sandbox `MESOS_DIRECTORY` names, which a
//! normal relay would refuse) the shim asks Docker for the name of the container it runs in,
//! found from its own mountinfo or cgroup: only where the daemon calls it `mesos-<CID>.executor`,
//! `<CID>` the run's container ID, did the agent start it there. A task sets the launch
//! environment, not the name of the container the shim runs in (the agent container's is the
//! operator's), so it cannot make a relay skip the relay; a launch that is not confirmed goes
//! on to the relay, which refuses it as before.

use std::ffi::OsString;
use std::path::Path;

use crate::config::Settings;
use crate::engine::Engine;
use crate::error::{fail, Failure, ShimError};
use crate::launch_env::LaunchEnv;
use crate::mesos::executor::ExecutorKind;
use crate::mesos::layout::RunLayout;
use crate::relay::launch::{env_var, id_variables, Origin};

/// A launch that may be running in Mesos's executor container, before Docker confirms it.
#[derive(Debug)]
pub(crate) struct Candidate {
    /// The run `MESOS_DIRECTORY` names (IDs validated): only its container ID is believed, and
    /// only once the daemon's name for the shim's container carries it.
    pub run: RunLayout,
    /// The Docker container this process runs in, from its mountinfo or cgroup.
    own_container: String,
}

/// Mesos's executor container for the run, confirmed by the daemon.
#[derive(Debug)]
pub(crate) struct ExecutorContainer {
    /// The daemon's name for it: `mesos-<CID>.executor`.
    pub name: String,
}

impl Candidate {
    /// From what the kernel says, no Docker: a docker executor whose working directory is not
    /// the sandbox `MESOS_DIRECTORY` names, run in a container. `None` for every launch the agent
    /// forked (its working directory is the sandbox), and wherever the relay's own checks should
    /// speak (no or a malformed `MESOS_DIRECTORY`).
    pub(crate) fn of(kind: ExecutorKind, origin: &Origin, env: &LaunchEnv) -> Option<Candidate> {
        if kind != ExecutorKind::Docker {
            return None;
        }
        let sandbox = env_var(env, "MESOS_DIRECTORY")?;
        if working_dir_is(origin, Path::new(sandbox)) {
            return None;
        }
        let run = RunLayout::from_sandbox(sandbox, &id_variables(env)).ok()?;
        let own_container = crate::proc::own_container_id().ok()??;
        Some(Candidate { run, own_container })
    }

    /// Whether the daemon names the shim's container `mesos-<CID>.executor` for the run's
    /// `<CID>`: the agent started it there.
    pub(crate) async fn confirm(
        self,
        settings: &Settings,
    ) -> Result<Option<ExecutorContainer>, ShimError> {
        let engine =
            Engine::connect(&settings.docker_host, super::effects::DOCKER_PATIENCE).await?;
        let info = engine
            .inspect_container(&self.own_container)
            .await
            .map_err(|e| fail(Failure::Unavailable, format!("{e:#}")))?;
        let name = info.and_then(|i| i.name).unwrap_or_default();
        let name = name.trim_start_matches('/');
        Ok(
            is_executor_container_name(name, &self.run.container_id).then(|| ExecutorContainer {
                name: name.to_string(),
            }),
        )
    }
}

/// Whether the working directory the agent set is `sandbox` (same device and inode). A `stat`,
/// never an `open`: the path is the task's to set.
fn working_dir_is(origin: &Origin, sandbox: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some((cwd, _)) = &origin.working_dir else {
        return false;
    };
    std::fs::metadata(sandbox).is_ok_and(|m| (m.dev(), m.ino()) == *cwd)
}

/// The name Mesos gives the container it runs the docker executor of run `container_id` in
/// (`DockerContainerizer`'s `Container::name()` and `.executor`).
pub(crate) fn is_executor_container_name(name: &str, container_id: &str) -> bool {
    name.strip_prefix("mesos-")
        .and_then(|rest| rest.strip_suffix(".executor"))
        .is_some_and(|cid| cid == container_id)
}

/// Becomes the stock docker executor in place, with the executor's arguments and the launch
/// environment, as stock Mesos runs it in this container; `exec_path` is the path the agent ran.
/// Returns only with the failure: where no stock executor is here, naming the fix.
pub(crate) fn become_stock(
    container: &ExecutorContainer,
    settings: &Settings,
    exec_path: Option<&Path>,
    args: &[OsString],
    env: &LaunchEnv,
) -> ShimError {
    let candidate = super::prepare::real_executor_of(ExecutorKind::Docker, exec_path, settings);
    let Some(stock) = super::handback::stock_executor_here(&candidate) else {
        return fail(
            Failure::Config,
            format!(
                "the agent runs this docker executor in its own container {} (--docker_mesos_image), whose image has \
                 the shim at {} and no stock executor beside it ({}.real): bake the shim in with \
                 docker/install-shim.sh (it keeps the stock executor as <path>.real), or set \"docker_executor\" \
                 in the configuration file to the stock executor's path, or name an image without the shim as \
                 --docker_mesos_image",
                container.name,
                candidate.display(),
                candidate.display()
            ),
        );
    };
    tracing::info!(
        container = container.name,
        stock_executor = %stock.display(),
        "started by the agent in its own executor container (--docker_mesos_image), already outside the agent \
         container: running the stock executor in place, with no sibling"
    );
    let args: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    super::handback::exec(&stock, &args, env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_mesos_name_for_the_runs_executor_container_counts() {
        let cid = "0a1b2c3d-1111-2222-3333-444455556666";
        assert!(is_executor_container_name(
            &format!("mesos-{cid}.executor"),
            cid
        ));
        assert!(
            !is_executor_container_name(&format!("mesos-{cid}"), cid),
            "the task container"
        );
        assert!(
            !is_executor_container_name("mesos-other.executor", cid),
            "another run's"
        );
        assert!(
            !is_executor_container_name(&format!("executor-mesos-{cid}"), cid),
            "a sibling"
        );
        assert!(!is_executor_container_name("mesos-agent", cid));
        assert!(!is_executor_container_name(
            &format!("x-mesos-{cid}.executor"),
            cid
        ));
    }

    /// A launch the agent forked runs in its sandbox: never looked at here, whatever its
    /// environment says.
    #[test]
    fn a_launch_in_its_sandbox_is_no_candidate() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = dir
            .path()
            .join("slaves/S0/frameworks/F0/executors/e/runs/0a1b2c3d-1111-2222-3333-444455556666");
        std::fs::create_dir_all(&sandbox).unwrap();
        let origin = origin_in(&sandbox);
        let env: LaunchEnv = vec![("MESOS_DIRECTORY".into(), sandbox.clone().into_os_string())];
        assert!(working_dir_is(&origin, &sandbox));
        assert!(Candidate::of(ExecutorKind::Docker, &origin, &env).is_none());
        assert!(Candidate::of(ExecutorKind::Command, &origin_in(dir.path()), &env).is_none());
    }

    /// No stock executor in the image: the launch fails at once, naming the ways out.
    #[test]
    fn without_a_stock_executor_the_launch_fails_naming_the_fix() {
        let container = ExecutorContainer {
            name: "mesos-C.executor".into(),
        };
        let settings = Settings {
            docker_executor: Some("/nonexistent/mesos-docker-executor".into()),
            ..Settings::default()
        };
        let e = become_stock(&container, &settings, None, &[], &Vec::new());
        assert_eq!(e.failure, Failure::Config);
        let text = e.to_string();
        for fix in [
            "mesos-C.executor",
            "<path>.real",
            "\"docker_executor\"",
            "--docker_mesos_image",
        ] {
            assert!(text.contains(fix), "{fix}: {text}");
        }
    }

    fn origin_in(dir: &Path) -> Origin {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(dir).unwrap();
        let mut origin = Origin::read();
        origin.working_dir = Some(((m.dev(), m.ino()), dir.to_path_buf()));
        origin
    }
}
