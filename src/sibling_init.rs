//! The sibling's init: the shim binary as the sibling's first process, between Docker and the
//! executor. It
//! - appends the executor's stdout and stderr to the sandbox files (no shell needed in the image),
//!   or, with a container logger, gives it pipes the shim reads while it lives and writes the
//!   sandbox files, bounded, after (see [`crate::output`]);
//! - is a child subreaper, so the executor's orphans are its children and are reaped;
//! - passes the signals Docker (or the shim, through a pidfd) delivers to it on to the executor;
//! - records the executor's exit status beside its output (the exit record, read by the shim
//!   without asking Docker) and exits with it;
//! - watches its shim and the agent that forked the shim, through pidfds: when the shim dies while
//!   that agent is still alive a settle time later, the agent killed the shim (the posix
//!   launcher's destroy, a registration timeout), and the executor is ended with SIGKILL, as that
//!   destroy would have ended the stock executor; when the agent is gone too (its container died,
//!   its processes one after another), the executor lives on: the survival the shim exists for.
//!
//! One thread, one `poll(2)` on a signalfd and the pidfds: nothing runs while it waits, and a
//! timer exists only during a settle time.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::error::{Failure, STATUS_NOT_EXECUTABLE, STATUS_NOT_FOUND};
use crate::launch_env::LaunchEnv;
use crate::mesos::checkpoint;
use crate::mesos::executor::executor_to_run;
use crate::output::{InitOutput, RETURN_SIGNAL};
use crate::proc::{ProcessHandle, ProcessIdentity, WATCH_POLL};
use crate::sibling::protocol::{forwarded_signal_set, ExitRecord, InitArgs, ShimWatch};
use crate::signal_forwarding::{self, Route};

/// Runs the executor to its exit and returns the status to leave with.
///
/// The exit is recorded once the executor's leftovers are gone (see [`end_leftovers`]), so no
/// process of the task's can replace the record after the init wrote it, and before the last
/// read of the output, which no writer can then hold.
///
/// `env` is the executor's environment (the sibling's, the task's): this process, root in the
/// sibling, has none of its own (see [`crate::launch_env`]).
pub(crate) fn run(args: &InitArgs, env: &LaunchEnv) -> u8 {
    let (status, output) = match run_executor(args, env) {
        Ok(ended) => ended,
        Err(failure) => {
            tracing::error!("{}", failure.message);
            (failure.record, None)
        }
    };
    if let Err(e) = checkpoint::write_atomically(&args.exit_record, status.to_json().as_bytes()) {
        tracing::error!(error = %e, "cannot record the executor's exit; the shim asks Docker instead");
    }
    // What is left in the pipes: the init's to write, or the shim's to read after it.
    if let Some(mut output) = output {
        output.pump(true);
    }
    status.status
}

/// Why the executor could not run, and the status that says so (not found, not executable, as a
/// shell reports them; the shim's software failure for the rest).
struct InitFailure {
    message: String,
    record: ExitRecord,
}

fn failure(status: u8, message: String) -> InitFailure {
    InitFailure {
        message,
        record: ExitRecord::exited(i32::from(status)),
    }
}

/// Starts the executor and runs it to its exit: what the init is for, step by step.
fn run_executor(
    args: &InitArgs,
    env: &LaunchEnv,
) -> Result<(ExitRecord, Option<InitOutput>), InitFailure> {
    // First, before any other descriptor is made: the pipes' read ends take fixed numbers.
    let relayed = match &args.output {
        Some(relay) => Some(
            InitOutput::make([args.stdout.clone(), args.stderr.clone()], relay.max_bytes).map_err(
                |e| {
                    failure(
                        Failure::Software.exit_code(),
                        format!("making the executor's output pipes: {e}"),
                    )
                },
            )?,
        ),
        None => None,
    };
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| sys_failure("becoming a child subreaper", e))?;
    let (signals, mask) = block_signals(relayed.is_some())?;
    let (executor, output) = start_executor(args, env, relayed, mask)?;
    // Whoever reads the output while it lives (the shim); the init reads it once it is gone.
    let reader = match (&args.output, &output) {
        (Some(relay), Some(_)) => Watched::start(&relay.reader).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot tell whether the shim lives: the init writes the executor's output to the sandbox");
            Watched(None)
        }),
        _ => Watched(None),
    };
    let running = Running {
        executor,
        output,
        watch: args.watch.as_ref().map_or(Watch::Done, Watch::start),
        reader,
        signals,
    };
    running.until_exit()
}

fn sys_failure(what: &str, e: Errno) -> InitFailure {
    failure(Failure::Software.exit_code(), format!("{what}: {e}"))
}

/// Blocks SIGCHLD and the forwarded signals (and [`RETURN_SIGNAL`] where the output goes
/// through the shim) before the executor exists, so that none is lost: they wait in the
/// returned signalfd.
fn block_signals(output_relayed: bool) -> Result<(SignalFd, SigSet), InitFailure> {
    let mut mask = forwarded_signal_set();
    mask.add(Signal::SIGCHLD);
    if output_relayed {
        mask.add(RETURN_SIGNAL);
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)
        .map_err(|e| sys_failure("blocking signals", e))?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| sys_failure("opening a signalfd", e))?;
    Ok((signals, mask))
}

/// Starts the executor with `env` as its whole environment and its output in the pipes
/// (`relayed`) or appended to the sandbox files; `mask` is unblocked in it.
fn start_executor(
    args: &InitArgs,
    env: &LaunchEnv,
    relayed: Option<(InitOutput, [std::os::fd::OwnedFd; 2])>,
    mask: SigSet,
) -> Result<(Pid, Option<InitOutput>), InitFailure> {
    let configured = Path::new(&args.executor[0]);
    let executor = executor_to_run(configured, crate::proc::is_own_binary)
        .map_err(|e| failure(STATUS_NOT_FOUND, e))?;
    let (output, stdout, stderr) = match relayed {
        Some((output, [out, err])) => (Some(output), Stdio::from(out), Stdio::from(err)),
        None => (
            None,
            append(&args.stdout)
                .map_err(|e| failure(Failure::Software.exit_code(), e))?
                .into(),
            append(&args.stderr)
                .map_err(|e| failure(Failure::Software.exit_code(), e))?
                .into(),
        ),
    };
    let mut command = std::process::Command::new(&executor);
    command
        .arg0(&executor)
        .args(&args.executor[1..])
        .env_clear()
        .envs(env.iter().map(|(name, value)| (name, value)))
        .stdout(stdout)
        .stderr(stderr);
    // SAFETY: between fork and exec the child only calls sigprocmask, which is
    // async-signal-safe, and touches no lock or allocation. The signals blocked for the
    // signalfd must not stay blocked in the executor (a blocked mask survives exec).
    unsafe {
        command.pre_exec(move || {
            nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&mask), None)
                .map_err(std::io::Error::from)
        });
    }
    let child = command.spawn().map_err(|e| cannot_run(&executor, e))?;
    // The sandbox files are the executor's now: the init keeps no copy of them open.
    drop(command);
    tracing::info!(
        executor = %executor.display(),
        pid = child.id(),
        protocol = args.protocol,
        "sibling init started the executor"
    );
    Ok((Pid::from_raw(child.id() as i32), output))
}

/// The executor could not be started: the status a shell would give (not found, not
/// executable, else the shim's software failure), and what to do.
fn cannot_run(executor: &Path, e: std::io::Error) -> InitFailure {
    let status = match e.kind() {
        std::io::ErrorKind::NotFound => STATUS_NOT_FOUND,
        std::io::ErrorKind::PermissionDenied => STATUS_NOT_EXECUTABLE,
        _ => Failure::Software.exit_code(),
    };
    failure(
        status,
        format!(
            "cannot run the executor {}: {e}; set \"executor\" (\"docker_executor\") in the \
             configuration file to its path in the executor image",
            executor.display()
        ),
    )
}

/// The executor running: what the init holds while it waits for its exit.
struct Running {
    executor: Pid,
    output: Option<InitOutput>,
    watch: Watch,
    /// The shim, while it reads the output.
    reader: Watched,
    signals: SignalFd,
}

impl Running {
    /// One `poll(2)` per turn: judge the watch, sleep until something happens, pass signals on,
    /// copy output, reap. Returns the executor's exit once its leftovers are ended.
    fn until_exit(mut self) -> Result<(ExitRecord, Option<InitOutput>), InitFailure> {
        loop {
            // Judged before each sleep, the first one included: a process already gone when the
            // watch started (the agent killed, or the shim destroyed, while this init was still
            // starting the executor) has no pidfd to wake the poll, and would not be judged
            // until some other event came.
            self.judge();
            self.sleep()?;
            self.pass_signals_on();
            if let Some(output) = self.output.as_mut() {
                output.pump(false);
            }
            if let Some(record) = reap(self.executor) {
                let handed_back = end_leftovers(&self.signals);
                if let Some(output) = self.output.as_mut() {
                    // Whoever reads last: the shim, if it still does, else this init.
                    output.own |= handed_back || self.reader.gone();
                }
                return Ok((record, self.output));
            }
        }
    }

    /// Ends the executor where the watch says so; takes the output over from a shim gone.
    fn judge(&mut self) {
        if self.watch.executor_is_to_end() {
            let _ = nix::sys::signal::kill(self.executor, Signal::SIGKILL);
        }
        if let Some(output) = self.output.as_mut().filter(|o| !o.own) {
            if self.reader.gone() {
                tracing::info!("the shim no longer reads the executor's output: the init writes it to the sandbox files");
                output.own = true;
            }
        }
    }

    /// Sleeps in one `poll(2)` until a signal, a watched process's exit or output comes (or a
    /// settle time, or a watch without pidfds, is due).
    fn sleep(&self) -> Result<(), InitFailure> {
        let relaying = self.output.as_ref().is_some_and(|o| !o.own);
        let timeout = self.watch.timeout(relaying && self.reader.polls());
        let mut fds = vec![PollFd::new(self.signals.as_fd(), PollFlags::POLLIN)];
        let watched = self.watch.fds();
        fds.extend(watched.iter().map(|fd| PollFd::new(*fd, PollFlags::POLLIN)));
        if relaying {
            fds.extend(
                self.reader
                    .fd()
                    .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
            );
        }
        if let Some(output) = &self.output {
            fds.extend(
                output
                    .fds()
                    .into_iter()
                    .map(|fd| PollFd::new(fd, PollFlags::POLLIN)),
            );
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => Ok(()),
            Err(e) => Err(sys_failure("waiting", e)),
        }
    }

    /// Passes the signals that came on to the executor; [`RETURN_SIGNAL`] gives the init the
    /// output.
    fn pass_signals_on(&mut self) {
        for signal in signal_forwarding::pending(&self.signals) {
            if signal == Signal::SIGCHLD {
                continue;
            }
            if let (Some(output), RETURN_SIGNAL) = (self.output.as_mut(), signal) {
                tracing::info!("the shim handed the executor's output back: the init writes it to the sandbox files");
                output.own = true;
                continue;
            }
            Route::Child.forward(signal, |signal| {
                nix::sys::signal::kill(self.executor, signal)
            });
        }
    }
}

/// Reaps every child that has exited; returns the executor's exit if it was among them.
fn reap(executor: Pid) -> Option<ExitRecord> {
    let mut exit = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == executor => {
                tracing::info!(code, "executor exited");
                exit = Some(ExitRecord::exited(code));
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) if pid == executor => {
                tracing::info!(signal = signal.as_str(), "executor killed by a signal");
                exit = Some(ExitRecord::killed(signal as i32));
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return exit,
            // An orphan of the executor's, reaped; or a stop notice.
            Ok(_) => {}
        }
    }
}

/// How long the executor's leftovers are given to die once they are sent SIGKILL.
const LEFTOVERS_PATIENCE: Duration = Duration::from_secs(2);

/// Ends what the executor left running (its orphans, which this subreaper inherited), as the
/// agent's destroy of the Mesos container would have ended them, and as Docker would a moment
/// later, when the init leaves a container without a PID namespace of its own. Before the exit
/// is recorded: none of them can then replace the record, or keep writing into the pipes.
/// True when the shim handed the output back meanwhile ([`RETURN_SIGNAL`]).
fn end_leftovers(signals: &SignalFd) -> bool {
    let deadline = Instant::now() + LEFTOVERS_PATIENCE;
    let mut handed_back = false;
    loop {
        // Reaps every child that has exited (no child has pid 0).
        reap(Pid::from_raw(0));
        let children = own_children();
        if children.is_empty() {
            return handed_back;
        }
        if Instant::now() >= deadline {
            tracing::warn!(left = ?children, "the executor's leftovers did not die in time: recording its exit all the same");
            return handed_back;
        }
        tracing::info!(
            count = children.len(),
            "ending what the executor left running"
        );
        for child in &children {
            // An unreaped child: its pid cannot have been reused.
            let _ = nix::sys::signal::kill(*child, Signal::SIGKILL);
        }
        let mut fds = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        let _ = poll(&mut fds, PollTimeout::from(50u8));
        // The executor is gone: a forwarded signal has no one to go to now.
        for signal in signal_forwarding::pending(signals) {
            handed_back |= signal == RETURN_SIGNAL;
        }
    }
}

/// This process's children, from `/proc/thread-self/children` (the init has one thread), or,
/// where that cannot be read (a kernel without `CONFIG_PROC_CHILDREN`, descriptors run out),
/// from every process's parent in `/proc`.
fn own_children() -> Vec<Pid> {
    let listed = std::fs::read_to_string("/proc/thread-self/children").map(|list| {
        list.split_whitespace()
            .filter_map(|pid| pid.parse().ok())
            .map(Pid::from_raw)
            .collect()
    });
    listed.unwrap_or_else(|e| {
        tracing::debug!(error = %e, "cannot list this process's children: looking through /proc");
        children_by_parent(std::process::id())
    })
}

/// The processes whose parent is `parent`, by their `/proc/<pid>/stat`.
fn children_by_parent(parent: u32) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| crate::proc::ProcStat::of(*pid).is_some_and(|s| s.ppid == parent))
        .map(|pid| Pid::from_raw(pid as i32))
        .collect()
}

/// Opens a sandbox file for appending: the executor's output goes after whatever is there, also
/// after a restart of the sibling's init. The init's own lines go there too. The sandbox is the
/// task's to write: a link, a FIFO or a device planted under the name is refused, never opened.
fn append(path: &Path) -> Result<File, String> {
    crate::no_follow::open_append(path, 0o644).map_err(|e| {
        format!(
            "cannot open {} for the executor's output: {e}",
            path.display()
        )
    })
}

/// Makes the sandbox's stderr this process's own stderr, so the init's few lines reach the
/// sandbox beside the shim's.
pub(crate) fn log_to(stderr: &Path) -> Result<(), String> {
    let file = append(stderr)?;
    nix::unistd::dup2_stderr(file.as_fd())
        .map(drop)
        .map_err(|e| format!("cannot log to {}: {e}", stderr.display()))
}

/// One watched process, held by [`ProcessHandle`]; `None` once it is gone (or could not be held).
struct Watched(Option<ProcessHandle>);

impl Watched {
    /// `Err`: whether it lives cannot be told (an error a pidfd or `/proc` should not give).
    fn start(identity: &ProcessIdentity) -> std::io::Result<Watched> {
        ProcessHandle::open(identity).map(Watched)
    }

    fn gone(&self) -> bool {
        self.0.as_ref().is_none_or(ProcessHandle::has_exited)
    }

    fn polls(&self) -> bool {
        self.0.as_ref().is_some_and(|h| h.pidfd().is_none())
    }

    fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.0
            .as_ref()
            .and_then(ProcessHandle::pidfd)
            .map(AsFd::as_fd)
    }
}

/// Whom the init watches, and where it stands.
enum Watch {
    Watching {
        shim: Watched,
        agent: Watched,
        settle: Duration,
    },
    /// The shim died at `since`; the verdict falls at `since + settle`.
    Settling {
        agent: Watched,
        until: Instant,
    },
    Done,
}

impl Watch {
    /// Where either process cannot be told alive or dead, the answer is "unknown", which never
    /// ends the executor: nothing is watched.
    fn start(w: &ShimWatch) -> Watch {
        match (Watched::start(&w.shim), Watched::start(&w.agent)) {
            (Ok(shim), Ok(agent)) => {
                tracing::debug!(shim = %w.shim, agent = %w.agent, settle = ?w.settle, "watching the shim and the agent process that started it");
                Watch::Watching {
                    shim,
                    agent,
                    settle: w.settle,
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(shim = %w.shim, agent = %w.agent, error = %e, "cannot tell whether the shim and the agent live: the executor will not be ended for anyone's death");
                Watch::Done
            }
        }
    }

    fn fds(&self) -> Vec<std::os::fd::BorrowedFd<'_>> {
        match self {
            Watch::Watching { shim, agent, .. } => {
                [shim.fd(), agent.fd()].into_iter().flatten().collect()
            }
            Watch::Settling { agent, .. } => agent.fd().into_iter().collect(),
            Watch::Done => Vec::new(),
        }
    }

    /// How long `poll` may sleep: for ever, but for a settle time or a watch without pidfds
    /// (`also_polling`: another watch without one).
    fn timeout(&self, also_polling: bool) -> PollTimeout {
        let polling = also_polling
            || match self {
                Watch::Watching { shim, agent, .. } => shim.polls() || agent.polls(),
                Watch::Settling { agent, .. } => agent.polls(),
                Watch::Done => false,
            };
        let mut wait = polling.then_some(WATCH_POLL);
        if let Watch::Settling { until, .. } = self {
            let left = until.saturating_duration_since(Instant::now());
            wait = Some(wait.map_or(left, |w| w.min(left)));
        }
        match wait {
            None => PollTimeout::NONE,
            Some(d) => PollTimeout::try_from(d.as_millis().min(i32::MAX as u128) as i32 + 1)
                .unwrap_or(PollTimeout::MAX),
        }
    }

    /// Moves on with what has happened; true when the executor is to be ended.
    fn executor_is_to_end(&mut self) -> bool {
        match std::mem::replace(self, Watch::Done) {
            Watch::Watching {
                shim,
                agent,
                settle,
            } => {
                if agent.gone() {
                    tracing::info!(
                        "the agent that forked the shim is gone: the executor outlives it"
                    );
                } else if shim.gone() {
                    tracing::info!(settle = ?settle, "the shim died; seeing whether the agent that forked it outlives it");
                    *self = Watch::Settling {
                        agent,
                        until: Instant::now() + settle,
                    };
                } else {
                    *self = Watch::Watching {
                        shim,
                        agent,
                        settle,
                    };
                }
                false
            }
            Watch::Settling { agent, until } => {
                if agent.gone() {
                    tracing::info!("the agent died with the shim (its container went): the executor outlives them");
                    false
                } else if Instant::now() >= until {
                    tracing::warn!(
                        "the agent that forked the shim outlived it: it killed the shim (a destroy, or a \
                         registration timeout), so the executor is ended with SIGKILL"
                    );
                    true
                } else {
                    *self = Watch::Settling { agent, until };
                    false
                }
            }
            Watch::Done => false,
        }
    }
}
