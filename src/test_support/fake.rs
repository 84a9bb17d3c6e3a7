//! A daemon and a host in memory, for the relay's state machine: containers, registered waits,
//! processes held by "pidfds", every call in order, and a switch that takes the daemon away.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bollard::models::{
    ContainerConfig, ContainerCreateBody, ContainerInspectResponse, ContainerState,
    ContainerStateStatusEnum as Status,
};
use nix::sys::signal::Signal;
use tokio::sync::{oneshot, watch};

use crate::engine::{CreateError, ExitWait, WaitError, WaitFor};
use crate::error::{fail, Failure, ShimError};
use crate::mesos::checkpoint::HostPid;
use crate::proc::PidCheck;
use crate::relay::effects::{HostProcesses, SiblingEngine, SiblingProcess};
use crate::relay::Sweep;
use crate::sibling::protocol::ExitRecord;

/// What the fake executor does once started.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Executor {
    /// Runs as host `pid` until SIGTERM, which ends it with 143.
    Runs { pid: u32 },
    /// Exits with `code` the instant it starts, before its pid can be read.
    ExitsAtOnce { code: i64 },
    /// Runs as host `pid` and exits with `code` right after it is first inspected: the pid the
    /// shim just read is then gone.
    ExitsAfterInspect { pid: u32, code: i64 },
}

pub(crate) struct Container {
    pub id: String,
    pub name: String,
    pub labels: HashMap<String, String>,
    pub status: Status,
    pub pid: Option<u32>,
    pub code: Option<i64>,
}

type ExitSender = oneshot::Sender<Result<i64, WaitError>>;

struct State {
    containers: Vec<Container>,
    waits: Vec<(String, ExitSender)>,
    calls: Vec<String>,
    /// Pids of processes that have exited.
    exited: watch::Sender<Vec<u32>>,
}

/// The daemon and the host, in memory.
pub(crate) struct Fake {
    pub executor: Executor,
    pub host_pids_visible: bool,
    pub start_fails: bool,
    /// The image is not there until pulled.
    pub image_missing: RefCell<bool>,
    /// Registered waits never answer (a daemon that hangs after the create).
    pub wait_hangs: bool,
    /// The init records the exit (false: it was killed before it could).
    pub records_exit: bool,
    /// Every call fails as if the daemon were away.
    pub daemon_away: RefCell<bool>,
    exit_record: PathBuf,
    state: Rc<RefCell<State>>,
}

impl Fake {
    /// `exit_record`: where the fake init records the executor's exit.
    pub(crate) fn new(executor: Executor, exit_record: &Path) -> Fake {
        Fake {
            executor,
            host_pids_visible: true,
            start_fails: false,
            image_missing: RefCell::new(false),
            wait_hangs: false,
            records_exit: true,
            daemon_away: RefCell::new(false),
            exit_record: exit_record.to_path_buf(),
            state: Rc::new(RefCell::new(State {
                containers: Vec::new(),
                waits: Vec::new(),
                calls: Vec::new(),
                exited: watch::channel(Vec::new()).0,
            })),
        }
    }

    pub(crate) fn calls(&self) -> Vec<String> {
        self.state.borrow().calls.clone()
    }

    pub(crate) fn containers(&self) -> std::cell::Ref<'_, Vec<Container>> {
        std::cell::Ref::map(self.state.borrow(), |s| &s.containers)
    }

    pub(crate) fn add_container(&self, container: Container) {
        self.state.borrow_mut().containers.push(container);
    }

    fn call(&self, call: String) -> anyhow::Result<()> {
        self.state.borrow_mut().calls.push(call);
        if *self.daemon_away.borrow() {
            anyhow::bail!("connection refused");
        }
        Ok(())
    }

    /// The executor of container `id` exits with `code`: the container stops, its waits
    /// answer, its process is gone, and (as the init does) its exit is recorded.
    pub(crate) fn exit(&self, id: &str, code: i64) {
        exit(&self.state, &self.exit_record, self.records_exit, id, code)
    }
}

fn exit(state: &Rc<RefCell<State>>, record: &Path, records_exit: bool, id: &str, code: i64) {
    let mut state = state.borrow_mut();
    let mut pid = None;
    if let Some(c) = state.containers.iter_mut().find(|c| c.id == id) {
        c.status = Status::EXITED;
        c.code = Some(code);
        pid = c.pid.take();
    }
    if records_exit {
        let status = ExitRecord::exited(code as i32);
        std::fs::write(record, status.to_json()).unwrap();
    }
    let waits = std::mem::take(&mut state.waits);
    for (waited, tx) in waits {
        if waited == id {
            let _ = tx.send(Ok(code));
        } else {
            state.waits.push((waited, tx));
        }
    }
    if let Some(pid) = pid {
        state.exited.send_modify(|gone| gone.push(pid));
    }
}

impl SiblingEngine for Fake {
    async fn inspect(&self, name: &str) -> anyhow::Result<Option<ContainerInspectResponse>> {
        self.call(format!("inspect {name}"))?;
        let found = self
            .state
            .borrow()
            .containers
            .iter()
            .find(|c| c.id == name || c.name == name)
            .map(|c| ContainerInspectResponse {
                id: Some(c.id.clone()),
                config: Some(ContainerConfig {
                    labels: Some(c.labels.clone()),
                    ..Default::default()
                }),
                state: Some(ContainerState {
                    status: Some(c.status),
                    running: Some(c.status == Status::RUNNING),
                    pid: c.pid.map(i64::from),
                    exit_code: c.code,
                    ..Default::default()
                }),
                ..Default::default()
            });
        if let (Some(c), Executor::ExitsAfterInspect { code, .. }) = (&found, self.executor) {
            if c.state.as_ref().and_then(|s| s.running) == Some(true) {
                self.exit(c.id.as_deref().unwrap(), code);
            }
        }
        Ok(found)
    }

    async fn create(&self, name: &str, body: &ContainerCreateBody) -> Result<String, CreateError> {
        self.call(format!("create {name}"))
            .map_err(CreateError::Other)?;
        if *self.image_missing.borrow() {
            return Err(CreateError::NoSuchImage);
        }
        let mut state = self.state.borrow_mut();
        if state.containers.iter().any(|c| c.name == name) {
            return Err(CreateError::NameInUse);
        }
        let id = format!("id-{}", state.containers.len());
        state.containers.push(Container {
            id: id.clone(),
            name: name.to_string(),
            labels: body.labels.clone().unwrap_or_default(),
            status: Status::CREATED,
            pid: None,
            code: None,
        });
        Ok(id)
    }

    async fn pull(&self, image: &str) -> Result<(), ShimError> {
        self.call(format!("pull {image}"))
            .map_err(|e| fail(Failure::Unavailable, e))?;
        *self.image_missing.borrow_mut() = false;
        Ok(())
    }

    async fn wait(&self, id: &str, condition: WaitFor) -> Result<ExitWait, WaitError> {
        self.call(format!("wait {id} {}", condition.condition()))
            .map_err(|e| WaitError::Lost(e.to_string()))?;
        if self.wait_hangs {
            return std::future::pending().await;
        }
        let found = self
            .state
            .borrow()
            .containers
            .iter()
            .find(|c| c.id == id)
            .map(|c| (c.status, c.code));
        match found {
            None => Err(WaitError::NotFound),
            Some((Status::EXITED, Some(code))) if condition == WaitFor::NotRunning => {
                Ok(Box::pin(async move { Ok(code) }))
            }
            Some(_) => {
                let (tx, rx) = oneshot::channel();
                self.state.borrow_mut().waits.push((id.to_string(), tx));
                Ok(Box::pin(async move {
                    rx.await
                        .unwrap_or_else(|_| Err(WaitError::Lost("dropped".into())))
                }))
            }
        }
    }

    async fn start(&self, id: &str) -> anyhow::Result<()> {
        self.call(format!("start {id}"))?;
        if self.start_fails {
            anyhow::bail!("starting container {id}: no such image layer");
        }
        let pid = match self.executor {
            Executor::Runs { pid } | Executor::ExitsAfterInspect { pid, .. } => Some(pid),
            Executor::ExitsAtOnce { .. } => None,
        };
        if let Some(c) = self
            .state
            .borrow_mut()
            .containers
            .iter_mut()
            .find(|c| c.id == id)
        {
            c.status = Status::RUNNING;
            c.pid = pid;
        }
        if let Executor::ExitsAtOnce { code } = self.executor {
            self.exit(id, code);
        }
        Ok(())
    }

    async fn kill(&self, id: &str, signal: Signal) -> anyhow::Result<()> {
        self.call(format!("kill {id} {}", signal.as_str()))?;
        if signal == Signal::SIGTERM {
            self.exit(id, 143);
        }
        Ok(())
    }

    async fn remove(&self, id: &str) -> anyhow::Result<()> {
        self.call(format!("remove {id}"))?;
        self.state
            .borrow_mut()
            .containers
            .retain(|c| c.id != id && c.name != id);
        Ok(())
    }

    async fn sweep(&self, sweep: &Sweep) -> anyhow::Result<usize> {
        self.call(format!("sweep {}", sweep.work_dir_host.display()))?;
        Ok(0)
    }
}

/// A process of the fake host, held as by a pidfd.
pub(crate) struct FakeProcess {
    pid: u32,
    container: String,
    exited: watch::Receiver<Vec<u32>>,
    state: Rc<RefCell<State>>,
    exit_record: PathBuf,
    records_exit: bool,
    /// The signals it received, in order.
    pub signals: Rc<RefCell<Vec<Signal>>>,
}

impl SiblingProcess for FakeProcess {
    async fn exited(&mut self) {
        let pid = self.pid;
        let _ = self.exited.wait_for(|gone| gone.contains(&pid)).await;
    }

    fn duplicate_handle(&self) -> io::Result<crate::proc::ProcessHandle> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    /// A fake process has no handle: the relay goes on waiting itself.
    fn hand_over(self) -> Result<crate::proc::ProcessHandle, Self> {
        Err(self)
    }

    fn signal(&self, signal: Signal) -> io::Result<()> {
        if self.exited.borrow().contains(&self.pid) {
            return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
        }
        self.signals.borrow_mut().push(signal);
        self.state
            .borrow_mut()
            .calls
            .push(format!("signal {} {}", self.pid, signal.as_str()));
        if matches!(signal, Signal::SIGTERM | Signal::SIGKILL) {
            let code = 128 + signal as i64;
            exit(
                &self.state,
                &self.exit_record,
                self.records_exit,
                &self.container,
                code,
            );
        }
        Ok(())
    }
}

impl HostProcesses for Fake {
    type Process = FakeProcess;

    fn confirm(&self, pid: HostPid, container_id: &str) -> PidCheck {
        let running = self.state.borrow().containers.iter().any(|c| {
            c.id == container_id && c.status == Status::RUNNING && c.pid == Some(pid.get())
        });
        if self.host_pids_visible && running {
            PidCheck::Confirmed
        } else {
            PidCheck::NotVisible
        }
    }

    fn watch(&self, pid: HostPid, container_id: &str) -> io::Result<Option<FakeProcess>> {
        if self.confirm(pid, container_id) != PidCheck::Confirmed {
            return Ok(None);
        }
        Ok(Some(FakeProcess {
            pid: pid.get(),
            container: container_id.to_string(),
            exited: self.state.borrow().exited.subscribe(),
            state: self.state.clone(),
            exit_record: self.exit_record.clone(),
            records_exit: self.records_exit,
            signals: Rc::default(),
        }))
    }
}
