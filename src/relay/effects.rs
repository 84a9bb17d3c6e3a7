//! The side effects the relay's state machine needs, behind small traits: the Docker daemon
//! ([`SiblingEngine`]) and the host's processes ([`HostProcesses`], `/proc` and pidfds). The real
//! ones are [`crate::engine::Engine`] and [`RealHost`]; the unit tests run the state
//! machine against fakes (`test_support::fake`).

use std::io;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, ContainerInspectResponse, ContainerState};
use nix::sys::signal::Signal;

use crate::engine::{CreateError, Engine, ExitWait, Patience, WaitError, WaitFor};
use crate::error::ShimError;
use crate::mesos::checkpoint::HostPid;
use crate::proc::PidCheck;
use crate::relay::plan::Sweep;
use crate::sibling::inventory;

/// How long a launch waits for the daemon: 8 s for one that accepts no connection (the task fails
/// fast and says why, rather than hanging until the agent's executor registration timeout), and
/// 45 s for one that is there but loaded (a burst of launches), within the agent's default
/// `--executor_registration_timeout` of 1 min.
pub(crate) const DOCKER_PATIENCE: Patience = Patience {
    absent: Duration::from_secs(8),
    busy: Duration::from_secs(45),
    say_retrying: true,
};

/// How long the shim, its executor gone, tries to reach the daemon again to remove the sibling:
/// the status is known, and a daemon that is away leaves the removal to the next launch or gc.
pub(crate) const AFTER_EXIT_PATIENCE: Patience = Patience {
    absent: Duration::from_secs(2),
    busy: Duration::from_secs(2),
    say_retrying: true,
};

/// What the relay asks of the container engine about its sibling.
// The shim runs one thread: its futures need no `Send` bound, so plain `async fn` fits.
#[allow(async_fn_in_trait)]
pub(crate) trait SiblingEngine {
    async fn inspect(&self, name: &str) -> anyhow::Result<Option<ContainerInspectResponse>>;
    /// Only the container's state, which is all the launch reads of the sibling it started.
    async fn inspect_state(&self, name: &str) -> anyhow::Result<Option<ContainerState>> {
        Ok(self.inspect(name).await?.and_then(|c| c.state))
    }
    async fn create(&self, name: &str, body: &ContainerCreateBody) -> Result<String, CreateError>;
    /// Pulls a missing image once; the error says what to do.
    async fn pull(&self, image: &str) -> Result<(), ShimError>;
    /// Returns once the daemon has registered the wait.
    async fn wait(&self, id: &str, condition: WaitFor) -> Result<ExitWait, WaitError>;
    async fn start(&self, id: &str) -> anyhow::Result<()>;
    async fn kill(&self, id: &str, signal: Signal) -> anyhow::Result<()>;
    /// Removes a container whatever its state; one that is already gone is not an error.
    async fn remove(&self, id: &str) -> anyhow::Result<()>;
    /// Removes the siblings of the work_dir at `work_dir_host` that gone shims left behind
    /// (see [`crate::sibling::inventory::sweep`]); returns how many.
    async fn sweep(&self, sweep: &Sweep) -> anyhow::Result<usize>;
}

impl<T: SiblingEngine> SiblingEngine for &T {
    async fn inspect(&self, name: &str) -> anyhow::Result<Option<ContainerInspectResponse>> {
        (**self).inspect(name).await
    }
    async fn inspect_state(&self, name: &str) -> anyhow::Result<Option<ContainerState>> {
        (**self).inspect_state(name).await
    }
    async fn create(&self, name: &str, body: &ContainerCreateBody) -> Result<String, CreateError> {
        (**self).create(name, body).await
    }
    async fn pull(&self, image: &str) -> Result<(), ShimError> {
        (**self).pull(image).await
    }
    async fn wait(&self, id: &str, condition: WaitFor) -> Result<ExitWait, WaitError> {
        (**self).wait(id, condition).await
    }
    async fn start(&self, id: &str) -> anyhow::Result<()> {
        (**self).start(id).await
    }
    async fn kill(&self, id: &str, signal: Signal) -> anyhow::Result<()> {
        (**self).kill(id, signal).await
    }
    async fn remove(&self, id: &str) -> anyhow::Result<()> {
        (**self).remove(id).await
    }
    async fn sweep(&self, sweep: &Sweep) -> anyhow::Result<usize> {
        (**self).sweep(sweep).await
    }
}

/// What the relay asks of the host about its sibling's process: `/proc` and pidfds, no Docker.
#[allow(async_fn_in_trait)]
pub(crate) trait HostProcesses {
    type Process: SiblingProcess;
    /// Whether host pid `pid` is visible here and belongs to container `container_id`.
    fn confirm(&self, pid: HostPid, container_id: &str) -> PidCheck;
    /// A handle on the process `pid`, taken only while it is container `container_id`'s
    /// (`Ok(None)`: it is not, or it is gone).
    fn watch(&self, pid: HostPid, container_id: &str) -> io::Result<Option<Self::Process>>;
}

/// The sibling's process, held for good (a pidfd): no reused pid can stand in for it.
#[allow(async_fn_in_trait)]
pub(crate) trait SiblingProcess {
    /// Resolves once the process has exited.
    async fn exited(&mut self);
    fn signal(&self, signal: Signal) -> io::Result<()>;
    /// A second handle on the same process (a duplicate of its pidfd), for the thread that
    /// copies its output: never a new look-up by pid, which a reused pid could answer.
    fn duplicate_handle(&self) -> io::Result<crate::proc::ProcessHandle>;
    /// The handle itself, for a waiting mode without the async runtime; `None` where there is
    /// none to hand over (then the relay goes on waiting itself).
    fn hand_over(self) -> Result<crate::proc::ProcessHandle, Self>
    where
        Self: Sized;
}

impl SiblingEngine for Engine {
    async fn inspect(&self, name: &str) -> anyhow::Result<Option<ContainerInspectResponse>> {
        self.inspect_container(name).await
    }

    async fn inspect_state(&self, name: &str) -> anyhow::Result<Option<ContainerState>> {
        Engine::inspect_state(self, name).await
    }

    async fn create(&self, name: &str, body: &ContainerCreateBody) -> Result<String, CreateError> {
        Engine::create(self, name, body).await
    }

    async fn pull(&self, image: &str) -> Result<(), ShimError> {
        Engine::pull(self, image).await
    }

    async fn wait(&self, id: &str, condition: WaitFor) -> Result<ExitWait, WaitError> {
        Engine::wait(self, id, condition).await
    }

    async fn start(&self, id: &str) -> anyhow::Result<()> {
        Engine::start(self, id).await
    }

    async fn kill(&self, id: &str, signal: Signal) -> anyhow::Result<()> {
        Engine::kill(self, id, signal).await
    }

    async fn remove(&self, id: &str) -> anyhow::Result<()> {
        Engine::remove(self, id).await
    }

    async fn sweep(&self, sweep: &Sweep) -> anyhow::Result<usize> {
        inventory::sweep(self, &sweep.work_dir_host, sweep.seen_from.clone()).await
    }
}

/// The host as it is: [`crate::proc`].
pub(crate) struct RealHost;

impl HostProcesses for RealHost {
    type Process = crate::proc::ExitWatch;

    fn confirm(&self, pid: HostPid, container_id: &str) -> PidCheck {
        crate::proc::check_pid_belongs_to(pid.get(), container_id)
    }

    fn watch(&self, pid: HostPid, container_id: &str) -> io::Result<Option<Self::Process>> {
        let Some(identity) = crate::proc::ProcessIdentity::of(pid.get()) else {
            return Ok(None);
        };
        let Some(watch) = crate::proc::ExitWatch::open(&identity)? else {
            return Ok(None);
        };
        // Checked again once held: the pid is the sibling's, and the handle is on that process.
        Ok((self.confirm(pid, container_id) == PidCheck::Confirmed).then_some(watch))
    }
}

impl SiblingProcess for crate::proc::ExitWatch {
    async fn exited(&mut self) {
        crate::proc::ExitWatch::exited(self).await
    }

    fn signal(&self, signal: Signal) -> io::Result<()> {
        crate::proc::ExitWatch::signal(self, signal)
    }

    fn duplicate_handle(&self) -> io::Result<crate::proc::ProcessHandle> {
        self.duplicate_handle()
    }

    fn hand_over(self) -> Result<crate::proc::ProcessHandle, Self> {
        Ok(self.into_handle())
    }
}
