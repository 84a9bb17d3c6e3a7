//! The executor's output, where the agent's container logger wants it.
//!
//! The agent gives the executor its stdout and stderr: with the default sandbox logger they are
//! the sandbox's `stdout` and `stderr` files, and the sibling's init appends to those files
//! itself, as before. With another logger (logrotate's pipes, journald) they are something else,
//! and the shim, which holds them, must be the way there ([`Route`]):
//!
//! ```text
//! executor ──pipe──▶ init (fds 3, 4) ◀── /proc/<init>/fd/{3,4} ── shim ──▶ the logger's fds 1, 2
//!                      └── after the shim: sandbox files, rotated at a bound ──▶ stdout, stdout.1
//! ```
//!
//! - The init makes one pipe per stream, the executor writes into it, and the init keeps the
//!   read ends at the fixed numbers [`OUTPUT_FDS`]. It does not read them while the shim lives.
//! - The shim (more privileged than the sibling, in the host's PID namespace) opens those read
//!   ends through `/proc/<init>/fd` ([`ShimOutput::open`]) and copies what comes to its own stdout
//!   and stderr, in order, as fast as the logger takes it: it writes only when the logger's
//!   descriptor can take more, so a logger that stops reading holds neither its signals nor its
//!   exit (what it read and could not write yet waits in a buffer).
//! - When the shim dies (its agent container gone), or hands the output back ([`RETURN_SIGNAL`],
//!   when it cannot read or its logger is gone), the init reads the pipes itself into the sandbox
//!   files, each rotated to `<name>.1` before it passes the operator's bound ([`RotatingFile`]):
//!   never more than twice the bound per stream, never a full disk.
//!
//! Only one of the two reads at any time, so what reaches the logger is in order and nothing is
//! read twice; what the pipe holds when the reader changes is read by the next one.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

use crate::proc::ProcessHandle;

/// Where the init keeps the read ends of the executor's stdout and stderr pipes.
pub(crate) const OUTPUT_FDS: [RawFd; 2] = [3, 4];
/// Sent by the shim to the init: "the output is yours from now on". Not a signal the agent
/// sends, nor one an init that does not know it acts on (ignored by default).
pub(crate) const RETURN_SIGNAL: Signal = Signal::SIGURG;
/// The most read from a pipe at once.
const CHUNK: usize = 64 * 1024;
/// How long the shim waits for a new init to set its pipes up.
const PIPES_PATIENCE: Duration = Duration::from_secs(5);
/// The longest a last read of the pipes takes, once the executor has exited. Its processes are
/// ended by then and the pipes close; where something still writes (a process the init could
/// not end), the reader moves on rather than be held by it.
pub(crate) const FINAL_DRAIN: Duration = Duration::from_secs(5);

/// How the executor's output reaches the agent's container logger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// The shim's stdout and stderr are the sandbox files (the sandbox logger): the init appends
    /// to them directly.
    SandboxFiles,
    /// They are something else (a logger's pipes): through the shim while it lives.
    ThroughShim,
}

impl Route {
    /// Compares this process's stdout and stderr with the files `stdout` and `stderr` in the
    /// sandbox (its working directory, verified): the same files, or not.
    pub(crate) fn of_this_process(sandbox: &Path) -> Route {
        let same = |fd: BorrowedFd<'_>, name: &str| {
            let ours = crate::no_follow::file_id(&fd);
            let theirs = std::fs::symlink_metadata(sandbox.join(name)).map(|m| (m.dev(), m.ino()));
            matches!((ours, theirs), (Ok(a), Ok(b)) if a == b)
        };
        if same(io::stdout().as_fd(), "stdout") && same(io::stderr().as_fd(), "stderr") {
            Route::SandboxFiles
        } else {
            Route::ThroughShim
        }
    }
}

/// Where a pipe stands after [`pump`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// Nothing more to read now.
    Empty,
    /// More may be waiting (the call's share was read).
    More,
    /// Every writer has closed it.
    Closed,
}

/// Copies what `from` (a non-blocking pipe) holds into `to`. A failed write is returned with
/// the number of bytes read and not written.
fn pump(from: &mut File, to: &mut impl Write) -> Result<Flow, PumpError> {
    let mut buf = vec![0u8; CHUNK];
    // A bounded number of chunks per call, so that one busy stream cannot starve the other.
    for _ in 0..16 {
        match from.read(&mut buf) {
            Ok(0) => return Ok(Flow::Closed),
            Ok(n) => to
                .write_all(&buf[..n])
                .map_err(|e| PumpError::Write(e, n as u64))?,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flow::Empty),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(PumpError::Read(e)),
        }
    }
    Ok(Flow::More)
}

#[derive(Debug)]
enum PumpError {
    Read(io::Error),
    /// The write failed; this many bytes read were not written.
    Write(io::Error, u64),
}

/// Reads until `more` says nothing is waiting, or `limit` ([`FINAL_DRAIN`]) has passed.
fn drain_bounded(limit: Duration, mut more: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while more() {
        if Instant::now() >= deadline {
            tracing::warn!(
                ?limit,
                "something still writes the executor's output after its exit: the rest is left unread"
            );
            return;
        }
    }
}

/// Writes to one of this process's own descriptors (stdout, stderr: the container logger's) only
/// what it can take now: the descriptor is shared (its flags are not the shim's to change), so it
/// is asked first whether it can take `PIPE_BUF` bytes, and given at most that many, which a pipe
/// then takes without blocking. `Ok(0)`: not now. A logger that stops reading never holds the shim.
fn write_what_fits(fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<usize> {
    let mut ready = [PollFd::new(fd, PollFlags::POLLOUT)];
    match poll(&mut ready, PollTimeout::ZERO) {
        Ok(0) | Err(Errno::EINTR) => return Ok(0),
        Ok(_) => {}
        Err(e) => return Err(e.into()),
    }
    let broken = PollFlags::POLLERR | PollFlags::POLLHUP;
    if ready[0].revents().is_some_and(|r| r.intersects(broken)) {
        return Err(io::Error::from(io::ErrorKind::BrokenPipe));
    }
    let n = data.len().min(nix::libc::PIPE_BUF);
    match nix::unistd::write(fd, &data[..n]) {
        Ok(n) => Ok(n),
        Err(Errno::EINTR | Errno::EAGAIN) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// How long the relay waits, at the hand-over, for the logger to take what the output thread
/// read and has not written yet: only the pipes cross the `exec`, so that much is written first.
const HAND_OVER_PATIENCE: Duration = Duration::from_secs(2);

/// The shim's side: the read ends of the init's pipes, copied to the shim's stdout and stderr.
#[derive(Debug)]
pub struct ShimOutput {
    /// Per stream (stdout, stderr): the pipe, until it is closed or handed back.
    streams: [Option<File>; 2],
    /// Per stream: read from the pipe, not yet taken by the logger.
    pending: [Vec<u8>; 2],
    /// Per stream: where it goes, this process's stdout and stderr (the logger's).
    to: [Sink; 2],
}

/// Where a stream goes.
#[derive(Debug)]
enum Sink {
    Stdout(io::Stdout),
    Stderr(io::Stderr),
    /// A pipe of the unit tests' own.
    #[cfg(test)]
    Pipe(OwnedFd),
}

impl Sink {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Sink::Stdout(out) => out.as_fd(),
            Sink::Stderr(err) => err.as_fd(),
            #[cfg(test)]
            Sink::Pipe(pipe) => pipe.as_fd(),
        }
    }
}

impl ShimOutput {
    /// Opens the init's pipes through `/proc/<pid>/fd`, once the init has made them; `init` is
    /// that process, held, so that a pid taken over by another process is never read from.
    /// `Ok(None)`: the init has exited, or made no pipes in time (an init that predates them
    /// writes the sandbox files itself).
    pub(crate) fn open(pid: u32, init: &ProcessHandle) -> io::Result<Option<ShimOutput>> {
        let deadline = Instant::now() + PIPES_PATIENCE;
        let mut wait = Duration::from_millis(1);
        loop {
            if init.has_exited() {
                return Ok(None);
            }
            match open_pipes(pid) {
                Ok(streams) if !init.has_exited() => return Ok(Some(ShimOutput::new(streams))),
                Ok(_) => return Ok(None),
                Err(e) if not_yet(&e) && Instant::now() < deadline => {
                    // The init is starting: its pipes come first thing.
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_millis(50));
                }
                Err(e) if not_yet(&e) => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    fn new(streams: [Option<File>; 2]) -> ShimOutput {
        ShimOutput {
            streams,
            pending: [Vec::new(), Vec::new()],
            to: [Sink::Stdout(io::stdout()), Sink::Stderr(io::stderr())],
        }
    }

    /// What to poll for, per stream: the logger's descriptor until it has taken what is
    /// pending, else the pipe.
    pub(crate) fn interest(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        (0..2)
            .filter_map(|i| match (&self.streams[i], self.pending[i].is_empty()) {
                (_, false) => Some((self.to[i].fd(), PollFlags::POLLOUT)),
                (Some(pipe), true) => Some((pipe.as_fd(), PollFlags::POLLIN)),
                (None, true) => None,
            })
            .collect()
    }

    /// Copies what the pipes hold to stdout and stderr, as fast as the logger takes it; with
    /// `drain`, until they are empty (the init has exited), for [`FINAL_DRAIN`] at most. Where a
    /// stream cannot be written (the logger is gone) the output goes back to the init, which
    /// writes the sandbox files.
    pub(crate) fn pump(&mut self, init: &ProcessHandle, drain: bool) {
        if drain {
            self.pump_until(init, Instant::now() + FINAL_DRAIN);
        } else {
            self.pump_once(init);
        }
    }

    /// Pumps until nothing is left or `deadline`, sleeping only until the logger can take more.
    fn pump_until(&mut self, init: &ProcessHandle, deadline: Instant) {
        loop {
            let more = self.pump_once(init);
            if !more && self.nothing_pending() {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let dropped = self.drop_pending();
                tracing::warn!(limit = ?FINAL_DRAIN, dropped, "the executor's output is still coming, or the logger takes no more: the rest is left");
                return;
            }
            if !more {
                self.wait_for_logger(left);
            }
        }
    }

    fn nothing_pending(&self) -> bool {
        self.pending.iter().all(Vec::is_empty)
    }

    /// Drops what is pending; returns how many bytes that was.
    fn drop_pending(&mut self) -> usize {
        let dropped = self.pending.iter().map(Vec::len).sum();
        self.pending = [Vec::new(), Vec::new()];
        dropped
    }

    /// Sleeps until the logger can take more of what is pending, or `left` has passed.
    fn wait_for_logger(&self, left: Duration) {
        let mut fds: Vec<PollFd> = self
            .interest()
            .into_iter()
            .filter(|(_, events)| *events == PollFlags::POLLOUT)
            .map(|(fd, events)| PollFd::new(fd, events))
            .collect();
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let _ = poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        );
    }

    /// True when more may be waiting.
    fn pump_once(&mut self, init: &ProcessHandle) -> bool {
        let mut more = false;
        for i in 0..2 {
            match self.pump_stream(i) {
                Ok(m) => more |= m,
                Err(e) => {
                    self.hand_back(init, &e);
                    return false;
                }
            }
        }
        more
    }

    /// The logger is gone: the output goes back to the init, which writes the sandbox files.
    fn hand_back(&mut self, init: &ProcessHandle, e: &io::Error) {
        tracing::warn!(error = %e, "the container logger takes no more output: the sibling's init writes the sandbox files instead");
        self.streams = [None, None];
        self.drop_pending();
        let _ = init.signal(RETURN_SIGNAL);
    }

    /// Moves stream `i` on: what is pending to the logger, as far as it takes it, then more from
    /// the pipe. `Ok(true)` when more may be waiting; `Err`: the logger is gone.
    fn pump_stream(&mut self, i: usize) -> io::Result<bool> {
        let mut buf = vec![0u8; CHUNK];
        // A bounded number of steps per call, so that one busy stream cannot starve the other.
        for _ in 0..64 {
            if !self.pending[i].is_empty() {
                match write_what_fits(self.to[i].fd(), &self.pending[i])? {
                    0 => return Ok(false),
                    n => drop(self.pending[i].drain(..n)),
                }
                continue;
            }
            let Some(pipe) = &mut self.streams[i] else {
                return Ok(false);
            };
            match pipe.read(&mut buf) {
                Ok(0) => {
                    self.streams[i] = None;
                    return Ok(false);
                }
                Ok(n) => self.pending[i].extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the executor's output");
                    self.streams[i] = None;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Before the hand-over: what was read and not yet written goes to the logger, for
    /// [`HAND_OVER_PATIENCE`] at most (only the pipes cross the `exec`).
    fn write_pending(&mut self, init: &ProcessHandle) {
        let deadline = Instant::now() + HAND_OVER_PATIENCE;
        while !self.nothing_pending() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let dropped = self.drop_pending();
                tracing::warn!(dropped, "the container logger took nothing for a while: what the shim had read of the output is dropped at the hand-over");
                return;
            }
            self.wait_for_logger(left);
            for i in 0..2 {
                if self.pending[i].is_empty() {
                    continue;
                }
                match write_what_fits(self.to[i].fd(), &self.pending[i]) {
                    Ok(n) => drop(self.pending[i].drain(..n)),
                    Err(e) => return self.hand_back(init, &e),
                }
            }
        }
    }

    /// Whether both streams are done.
    pub(crate) fn closed(&self) -> bool {
        self.streams.iter().all(Option::is_none) && self.pending.iter().all(Vec::is_empty)
    }

    /// The pipes, per stream (stdout, stderr), `None` where a stream is done: what the waiting
    /// mode inherits (see [`crate::relay::handover::Handover`]).
    pub(crate) fn pipes(&self) -> [Option<BorrowedFd<'_>>; 2] {
        [0, 1].map(|i| self.streams[i].as_ref().map(AsFd::as_fd))
    }

    /// Takes over the pipes [`ShimOutput::pipes`] gave, once handed across an `exec`: each must
    /// be a pipe.
    pub(crate) fn from_pipes(pipes: [Option<OwnedFd>; 2]) -> Result<ShimOutput, String> {
        let mut streams = [None, None];
        for (slot, pipe) in streams.iter_mut().zip(pipes) {
            let Some(pipe) = pipe else { continue };
            let pipe = File::from(pipe);
            match pipe.metadata() {
                Ok(meta) if meta.file_type().is_fifo() => *slot = Some(pipe),
                Ok(_) => return Err(format!("output fd {} is not a pipe", pipe.as_raw_fd())),
                Err(e) => return Err(format!("output fd {}: {e}", pipe.as_raw_fd())),
            }
        }
        Ok(ShimOutput::new(streams))
    }
}

/// What the init's fixed numbers hold before its pipes are there: nothing, or /dev/null.
fn not_yet(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::InvalidData
    )
}

/// Opens the init's read ends: only pipes, never blocking. The executor may have replaced what
/// the init holds there (it runs as the sibling's user): whatever it is must be a FIFO before it
/// is opened (see [`crate::no_follow::open_fifo_for_reading`]).
fn open_pipes(pid: u32) -> io::Result<[Option<File>; 2]> {
    let mut streams = [None, None];
    for (slot, fd) in streams.iter_mut().zip(OUTPUT_FDS) {
        let path = PathBuf::from(format!("/proc/{pid}/fd/{fd}"));
        *slot = Some(crate::no_follow::open_fifo_for_reading(&path)?);
    }
    Ok(streams)
}

/// Copies the output from another thread while the relay runs (before the waiting mode, or
/// instead of it): open the pipes, then poll and pump, until told to stop.
pub(crate) struct PumpThread {
    stop: OwnedFd,
    thread: std::thread::JoinHandle<Option<ShimOutput>>,
}

/// What the relay tells the pump thread when it stops it.
const HAND_OVER: u8 = b'h';
const LAST_WORDS: u8 = b'l';

impl PumpThread {
    /// `pid`: the sibling's init, held as `init` (a handle of its own: the relay keeps another).
    pub(crate) fn start(pid: u32, init: ProcessHandle) -> io::Result<PumpThread> {
        let (stop_read, stop) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let thread = std::thread::Builder::new()
            .name("output".into())
            .spawn(move || {
                let output = open_or_hand_back(pid, &init)?;
                Some(pump_until_stopped(output, &init, &stop_read))
            })?;
        Ok(PumpThread { stop, thread })
    }

    /// Stops at once and gives the pipes back, for the waiting mode, which goes on reading them
    /// where this thread left off: nothing is drained here, so no writer can hold the hand-over.
    pub(crate) fn hand_over(self) -> Option<ShimOutput> {
        self.stop_with(HAND_OVER)
    }

    /// Copies what the pipes still hold (the executor has exited; for [`FINAL_DRAIN`] at most),
    /// then stops.
    pub(crate) fn finish(self) {
        drop(self.stop_with(LAST_WORDS));
    }

    fn stop_with(self, how: u8) -> Option<ShimOutput> {
        let _ = nix::unistd::write(&self.stop, &[how]);
        self.thread.join().ok().flatten()
    }
}

/// The init's pipes, opened; where they cannot be, the output is handed back to the init.
fn open_or_hand_back(pid: u32, init: &ProcessHandle) -> Option<ShimOutput> {
    match ShimOutput::open(pid, init) {
        Ok(Some(output)) => return Some(output),
        // An init that predates the pipes ignores the signal.
        Ok(None) => tracing::info!(
            pid,
            "the sibling's init made no output pipes: it writes the sandbox files itself"
        ),
        Err(e) => {
            tracing::warn!(pid, error = %e, "cannot read the executor's output from the sibling's init: it writes the sandbox files instead")
        }
    }
    let _ = init.signal(RETURN_SIGNAL);
    None
}

/// The pump thread's loop: copies as output comes, until `stop` says how to stop.
fn pump_until_stopped(mut output: ShimOutput, init: &ProcessHandle, stop: &OwnedFd) -> ShimOutput {
    loop {
        let mut fds = vec![PollFd::new(stop.as_fd(), PollFlags::POLLIN)];
        let interest = output.interest();
        fds.extend(
            interest
                .iter()
                .map(|(fd, events)| PollFd::new(*fd, *events)),
        );
        let stopping = match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => fds[0].any().unwrap_or(false),
            Err(Errno::EINTR) => false,
            Err(_) => true,
        };
        drop(fds);
        if stopping {
            let mut how = [HAND_OVER];
            let _ = nix::unistd::read(stop, &mut how);
            match how[0] {
                LAST_WORDS => output.pump(init, true),
                _ => output.write_pending(init),
            }
            return output;
        }
        output.pump(init, false);
        if output.closed() {
            return output;
        }
    }
}

/// The init's side, once the output is its own: a sandbox file, appended to and rotated to
/// `<name>.1` before it passes `max_bytes`.
pub(crate) struct RotatingFile {
    path: PathBuf,
    file: File,
    written: u64,
    max_bytes: u64,
    /// Whether this process's stderr (the init's own log) appends to the same file: it is moved
    /// to each new file, so that it too stays within the bound.
    shared_with_stderr: bool,
}

impl RotatingFile {
    pub(crate) fn open(path: &Path, max_bytes: u64) -> io::Result<RotatingFile> {
        let file = crate::no_follow::open_append(path, 0o644)?;
        let written = file.metadata()?.len();
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file,
            written,
            max_bytes: max_bytes.max(1),
            shared_with_stderr: false,
        })
    }

    /// See [`RotatingFile::shared_with_stderr`]: stderr is pointed at the file now, and at each
    /// new one.
    fn share_with_stderr(&mut self) -> io::Result<()> {
        nix::unistd::dup2_stderr(&self.file)?;
        self.shared_with_stderr = true;
        Ok(())
    }

    /// Renames the file to `<name>.1` (replacing it: a rename never follows a link) and starts
    /// a new one.
    fn rotate(&mut self) -> io::Result<()> {
        let mut rotated = self.path.clone().into_os_string();
        rotated.push(".1");
        std::fs::rename(&self.path, &rotated)?;
        self.file = crate::no_follow::open_append(&self.path, 0o644)?;
        self.written = self.file.metadata()?.len();
        if self.shared_with_stderr {
            self.share_with_stderr()?;
        }
        Ok(())
    }
}

impl Write for RotatingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.shared_with_stderr {
            // The other writer's lines count too.
            self.written = self.file.metadata()?.len();
        }
        if self.written >= self.max_bytes {
            self.rotate()?;
        }
        let room = (self.max_bytes - self.written.min(self.max_bytes)) as usize;
        let n = self.file.write(&buf[..buf.len().min(room.max(1))])?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The init's side: the pipes it made for the executor, and who reads them.
pub(crate) struct InitOutput {
    /// Read ends, at [`OUTPUT_FDS`], until closed.
    streams: [Option<File>; 2],
    /// The files the init writes once the output is its own (opened then).
    files: [PathBuf; 2],
    sinks: [Option<RotatingFile>; 2],
    max_bytes: u64,
    /// Per stream, while its file takes no writes (a full disk, a file the init cannot open):
    /// the bytes read and dropped meanwhile, said in the log once it takes them again.
    dropped: [Option<u64>; 2],
    /// Whether the init reads the pipes (the shim is gone, or handed them back).
    pub own: bool,
}

impl InitOutput {
    /// Makes the two pipes; returns the write ends for the executor's stdout and stderr. The read
    /// ends go to [`OUTPUT_FDS`], so this is called before anything else opens a descriptor.
    pub(crate) fn make(
        files: [PathBuf; 2],
        max_bytes: u64,
    ) -> io::Result<(InitOutput, [OwnedFd; 2])> {
        // The fixed numbers hold /dev/null until the pipes take them, so that what the shim finds
        // there is either not a pipe yet (it waits) or the right pipe, never another end.
        let null = nix::fcntl::open(
            "/dev/null",
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        for target in OUTPUT_FDS {
            // SAFETY: dup3 onto the fixed numbers this process reserves; nothing else of the
            // init's is there (a new container passes it 0, 1 and 2 only).
            if target != null.as_raw_fd()
                && unsafe { nix::libc::dup3(null.as_raw_fd(), target, nix::libc::O_CLOEXEC) } < 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        if OUTPUT_FDS.contains(&null.as_raw_fd()) {
            // It holds its number until a pipe replaces it there.
            let _ = null.into_raw_fd();
        }
        let flags = nix::fcntl::OFlag::O_CLOEXEC;
        let (out_r, out_w) = nix::unistd::pipe2(flags)?;
        let (err_r, err_w) = nix::unistd::pipe2(flags)?;
        let mut streams = [None, None];
        for (slot, (read, target)) in streams
            .iter_mut()
            .zip([out_r, err_r].into_iter().zip(OUTPUT_FDS))
        {
            // SAFETY: dup3 replaces the reserved /dev/null at `target` with the pipe, at once.
            let placed = unsafe { nix::libc::dup3(read.as_raw_fd(), target, nix::libc::O_CLOEXEC) };
            if placed < 0 {
                return Err(io::Error::last_os_error());
            }
            drop(read);
            // SAFETY: `target` now holds the pipe, owned here only.
            let file = unsafe { File::from_raw_fd(target) };
            let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL)?;
            nix::fcntl::fcntl(
                &file,
                nix::fcntl::FcntlArg::F_SETFL(
                    nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK,
                ),
            )?;
            *slot = Some(file);
        }
        Ok((
            InitOutput {
                streams,
                files,
                sinks: [None, None],
                max_bytes,
                dropped: [None, None],
                own: false,
            },
            [out_w, err_w],
        ))
    }

    /// The descriptors to poll: the pipes, once the init reads them.
    pub(crate) fn fds(&self) -> Vec<BorrowedFd<'_>> {
        if !self.own {
            return Vec::new();
        }
        self.streams.iter().flatten().map(AsFd::as_fd).collect()
    }

    /// Copies what the pipes hold into the sandbox files, if the output is the init's; with
    /// `drain`, until they are empty (the executor has exited), for [`FINAL_DRAIN`] at most.
    pub(crate) fn pump(&mut self, drain: bool) {
        if drain {
            drain_bounded(FINAL_DRAIN, || self.pump_once());
        } else {
            self.pump_once();
        }
    }

    /// True when more may be waiting.
    fn pump_once(&mut self) -> bool {
        if !self.own {
            return false;
        }
        let mut more = false;
        for i in 0..2 {
            more |= self.pump_stream(i);
        }
        more
    }

    /// Copies stream `i` into its file. A file that cannot be opened or written (the disk full
    /// for a moment, another tenant filling it) never closes the pipe, which would give the
    /// executor `EPIPE` for good: what comes meanwhile is read, dropped and counted, and the
    /// file is tried again with the next output.
    fn pump_stream(&mut self, i: usize) -> bool {
        let Some(pipe) = &mut self.streams[i] else {
            return false;
        };
        let file = &self.files[i];
        if self.sinks[i].is_none() {
            let opened = open_sink(file, self.max_bytes, i);
            match (&opened, self.dropped[i]) {
                (Err(e), None) => {
                    tracing::error!(file = %file.display(), error = %e, "cannot open the sandbox file for the executor's output: it is dropped until the file can be opened");
                    self.dropped[i] = Some(0);
                }
                (Ok(_), Some(bytes)) => {
                    tracing::warn!(file = %file.display(), bytes, "the sandbox file takes the executor's output again; this much of it was dropped meanwhile");
                    self.dropped[i] = None;
                }
                _ => {}
            }
            self.sinks[i] = opened.ok();
        }
        let flow = match (&mut self.sinks[i], &mut self.dropped[i]) {
            (Some(sink), _) => pump(pipe, sink),
            (None, dropped) => pump(pipe, &mut Discard(dropped.get_or_insert(0))),
        };
        match flow {
            Ok(Flow::Empty) => false,
            Ok(Flow::More) => true,
            Ok(Flow::Closed) => {
                self.streams[i] = None;
                false
            }
            Err(PumpError::Write(e, lost)) => {
                tracing::error!(file = %file.display(), error = %e, "cannot write the executor's output to the sandbox: it is dropped until the file takes writes again");
                *self.dropped[i].get_or_insert(0) += lost;
                self.sinks[i] = None;
                true
            }
            Err(PumpError::Read(e)) => {
                tracing::error!(file = %file.display(), error = %e, "cannot read the executor's output");
                self.streams[i] = None;
                false
            }
        }
    }
}

/// The sandbox file for stream `i` (0: stdout, 1: stderr, which the init's own log shares: see
/// `sibling_init::log_to`).
fn open_sink(file: &Path, max_bytes: u64, i: usize) -> io::Result<RotatingFile> {
    RotatingFile::open(file, max_bytes).and_then(|mut f| {
        if i == 1 {
            f.share_with_stderr()?;
        }
        Ok(f)
    })
}

/// A writer that drops what it is given and counts it.
struct Discard<'a>(&'a mut u64);

impl Write for Discard<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        *self.0 += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotating_file_never_passes_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let path = dir.join("stdout");
        let mut file = RotatingFile::open(&path, 100).unwrap();
        for i in 0..50 {
            file.write_all(format!("line {i:04}\n").as_bytes()).unwrap();
        }
        let current = std::fs::read_to_string(&path).unwrap();
        let previous = std::fs::read_to_string(dir.join("stdout.1")).unwrap();
        assert!(
            current.len() <= 100 && previous.len() == 100,
            "{current:?} {previous:?}"
        );
        // The newest output is whole and in order across the two files.
        let joined = previous + &current;
        assert!(joined.ends_with("line 0049\n"), "{joined}");
        let tail: Vec<&str> = joined.lines().collect();
        for pair in tail.windows(2).skip(1) {
            assert!(pair[0] < pair[1], "{pair:?}");
        }
    }

    #[test]
    fn a_rotating_file_continues_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let path = dir.join("stderr");
        std::fs::write(&path, "x".repeat(90)).unwrap();
        let mut file = RotatingFile::open(&path, 100).unwrap();
        file.write_all(&[b'y'; 20]).unwrap();
        let rotated = std::fs::read_to_string(dir.join("stderr.1")).unwrap();
        assert_eq!(rotated, "x".repeat(90) + &"y".repeat(10));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "y".repeat(10));
    }

    #[test]
    fn a_planted_link_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let target = dir.join("elsewhere");
        std::fs::write(&target, "").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("stdout")).unwrap();
        assert!(RotatingFile::open(&dir.join("stdout"), 100).is_err());
        // A link planted where the rotation goes is replaced, not followed.
        std::fs::remove_file(dir.join("stdout")).unwrap();
        std::os::unix::fs::symlink(&target, dir.join("stdout.1")).unwrap();
        let mut file = RotatingFile::open(&dir.join("stdout"), 4).unwrap();
        file.write_all(b"abcdefgh").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "");
        assert_eq!(
            std::fs::read_to_string(dir.join("stdout.1")).unwrap(),
            "abcd"
        );
    }

    #[test]
    fn the_pump_copies_in_order_and_sees_the_end() {
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_NONBLOCK).unwrap();
        let mut from = File::from(r);
        let mut writer = File::from(w);
        writer.write_all(b"one\ntwo\n").unwrap();
        let mut to = Vec::new();
        assert_eq!(pump(&mut from, &mut to).unwrap(), Flow::Empty, "still open");
        drop(writer);
        assert_eq!(pump(&mut from, &mut to).unwrap(), Flow::Closed);
        assert_eq!(to, b"one\ntwo\n");
    }

    /// A sandbox file that cannot be written for a while never closes the executor's pipe: what
    /// comes meanwhile is dropped and counted, and the output goes on once the file is there.
    #[test]
    fn a_file_that_takes_no_writes_for_a_while_never_closes_the_pipe() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = dir.path().join("sandbox");
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let read = File::from(read);
        nix::fcntl::fcntl(
            &read,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        let mut output = InitOutput {
            streams: [Some(read), None],
            files: [sandbox.join("stdout"), sandbox.join("stderr")],
            sinks: [None, None],
            max_bytes: 1024,
            dropped: [None, None],
            own: true,
        };
        let mut executor = File::from(write);
        executor.write_all(b"lost\n").unwrap();
        output.pump(false);
        assert_eq!(output.dropped[0], Some(5));
        assert!(output.streams[0].is_some(), "the pipe stays open");
        std::fs::create_dir(&sandbox).unwrap();
        executor
            .write_all(b"kept\n")
            .expect("the executor never gets EPIPE");
        output.pump(false);
        assert_eq!(output.dropped[0], None);
        assert_eq!(
            std::fs::read_to_string(sandbox.join("stdout")).unwrap(),
            "kept\n"
        );
    }

    /// A writer that never stops (an orphan of the executor's) cannot hold a last read: a
    /// source that never runs dry (`/dev/zero`) stands in for it.
    #[test]
    fn a_writer_that_never_stops_cannot_hold_the_last_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut output = InitOutput {
            streams: [Some(File::open("/dev/zero").unwrap()), None],
            files: [
                dir.path().join("none/stdout"),
                dir.path().join("none/stderr"),
            ],
            sinks: [None, None],
            max_bytes: 1 << 20,
            dropped: [None, None],
            own: true,
        };
        let started = Instant::now();
        drain_bounded(Duration::from_millis(300), || output.pump_once());
        let took = started.elapsed();
        assert!(took < Duration::from_secs(3), "{took:?}");
        assert!(output.dropped[0].unwrap() > 0);
    }

    /// A logger that stops reading cannot hold the shim: the last read gives up at its bound,
    /// and a pump never blocks on it.
    #[test]
    fn a_logger_that_stops_reading_never_holds_the_shim() {
        let (logger_end, full) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        // Filled to the brim: the logger reads nothing from here on.
        nix::fcntl::fcntl(
            &full,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        while nix::unistd::write(&full, &[b'x'; 4096]).is_ok() {}
        nix::fcntl::fcntl(
            &full,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::empty()),
        )
        .unwrap();
        let (read, write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .unwrap();
        let mut output = ShimOutput::new([Some(File::from(read)), None]);
        output.to = [Sink::Pipe(full.try_clone().unwrap()), Sink::Pipe(full)];
        let mut executor = File::from(write);
        executor.write_all(b"last words\n").unwrap();
        let init = ProcessHandle::Poll(crate::proc::ProcessIdentity::current().unwrap());
        output.pump(&init, false);
        assert!(
            !output.pending[0].is_empty(),
            "read, waiting for the logger"
        );
        let started = Instant::now();
        output.pump_until(&init, Instant::now() + Duration::from_millis(300));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        assert!(output.nothing_pending(), "given up at the bound");
        drop(logger_end);
    }
}
