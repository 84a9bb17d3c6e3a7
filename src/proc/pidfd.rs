//! Holding a process until it exits, and never signalling another that took its pid over:
//! pidfds where the kernel has them, else a look at its identity now and then.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::identity::ProcessIdentity;

/// A pidfd: a handle on one process that no pid reuse can redirect (Linux 5.3 and later).
#[derive(Debug)]
pub struct Pidfd(OwnedFd);

impl Pidfd {
    /// Opens a pidfd on `pid`. `ESRCH`: no such process here; `ENOSYS`: a kernel before 5.3.
    pub(crate) fn open(pid: u32) -> io::Result<Pidfd> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; nothing
        // is borrowed.
        let fd =
            unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid as nix::libc::pid_t, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a new descriptor that nothing else owns.
        Ok(Pidfd(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }))
    }

    /// Opens a pidfd on the process `identity` names, and only on it: `None` when that process
    /// is gone (its pid free or reused). The start time is checked after the open, so the pidfd
    /// cannot hold a process that took the pid over.
    pub(crate) fn open_identity(identity: &ProcessIdentity) -> io::Result<Option<Pidfd>> {
        let pidfd = match Pidfd::open(identity.pid) {
            Ok(p) => p,
            Err(e) if e.raw_os_error() == Some(nix::libc::ESRCH) => return Ok(None),
            Err(e) => return Err(e),
        };
        Ok((ProcessIdentity::of(identity.pid) == Some(*identity)).then_some(pidfd))
    }

    pub(crate) fn send_signal(&self, signal: Signal) -> io::Result<()> {
        // SAFETY: the descriptor is ours and open; a null siginfo asks for a plain kill().
        let r = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                signal as nix::libc::c_int,
                std::ptr::null::<nix::libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// A second pidfd on the same process (by construction: the descriptor duplicated).
    pub(crate) fn try_clone(&self) -> io::Result<Pidfd> {
        Ok(Pidfd(self.0.try_clone()?))
    }

    /// Whether the process has exited (its pidfd is readable), without waiting.
    pub(crate) fn has_exited(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let mut fds = [PollFd::new(self.0.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
    }
}

impl From<OwnedFd> for Pidfd {
    /// A descriptor known to be a pidfd (one handed over across an `exec`).
    fn from(fd: OwnedFd) -> Pidfd {
        Pidfd(fd)
    }
}

impl AsFd for Pidfd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl AsRawFd for Pidfd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// How often a watch without pidfds (kernels before 5.3) looks at the process.
pub(crate) const WATCH_POLL: Duration = Duration::from_millis(500);

/// One process, held by its identity until it exits: by a pidfd where the kernel has them, else
/// (a kernel before 5.3, or a seccomp profile that predates pidfds) by its pid and start time,
/// looked at in `/proc` every [`WATCH_POLL`]. The one place that choice is made, for the shim
/// and the sibling's init alike.
#[derive(Debug)]
pub enum ProcessHandle {
    Pidfd(Pidfd),
    Poll(ProcessIdentity),
}

impl ProcessHandle {
    /// Holds the process `identity` names; `Ok(None)` when it is already gone.
    pub(crate) fn open(identity: &ProcessIdentity) -> io::Result<Option<ProcessHandle>> {
        match Pidfd::open_identity(identity) {
            Ok(pidfd) => Ok(pidfd.map(ProcessHandle::Pidfd)),
            Err(e) if matches!(e.raw_os_error(), Some(nix::libc::ENOSYS | nix::libc::EPERM)) => {
                Ok((ProcessIdentity::of(identity.pid) == Some(*identity))
                    .then_some(ProcessHandle::Poll(*identity)))
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the process has exited, without waiting.
    pub(crate) fn has_exited(&self) -> bool {
        match self {
            ProcessHandle::Pidfd(pidfd) => pidfd.has_exited(),
            ProcessHandle::Poll(identity) => ProcessIdentity::of(identity.pid) != Some(*identity),
        }
    }

    /// The pidfd, which becomes readable once the process has exited; `None`: look now and then.
    pub(crate) fn pidfd(&self) -> Option<&Pidfd> {
        match self {
            ProcessHandle::Pidfd(pidfd) => Some(pidfd),
            ProcessHandle::Poll(_) => None,
        }
    }

    /// Sends `signal` to the process, never to another that took its pid over.
    pub(crate) fn signal(&self, signal: Signal) -> io::Result<()> {
        match self {
            ProcessHandle::Pidfd(pidfd) => pidfd.send_signal(signal),
            ProcessHandle::Poll(identity) => {
                if ProcessIdentity::of(identity.pid) != Some(*identity) {
                    return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
                }
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(identity.pid as i32), signal)
                    .map_err(io::Error::from)
            }
        }
    }
}

/// A process waited on by the async runtime until it exits: its pidfd registered with the
/// reactor, which costs nothing while it waits, or (without pidfds) its identity looked at every
/// [`WATCH_POLL`].
pub(crate) enum ExitWatch {
    /// The pidfd, owned by its registration: an `AsyncFd` takes its descriptor off the reactor
    /// before it drops (or hands back) what it owns, so no descriptor closes while registered.
    Registered(tokio::io::unix::AsyncFd<Pidfd>),
    Polled(ProcessIdentity),
}

impl ExitWatch {
    /// Starts watching the process `identity` names; `Ok(None)` when it is already gone.
    pub(crate) fn open(identity: &ProcessIdentity) -> io::Result<Option<ExitWatch>> {
        Ok(match ProcessHandle::open(identity)? {
            None => None,
            // SAFETY: the `AsyncFd` owns the pidfd, whose descriptor is open and stays the same
            // until the `AsyncFd` lets it go (dropped or `into_inner`), after deregistering it.
            Some(ProcessHandle::Pidfd(pidfd)) => Some(ExitWatch::Registered(unsafe {
                tokio::io::unix::AsyncFd::register_with_interest(
                    pidfd,
                    tokio::io::Interest::READABLE,
                )
            }?)),
            Some(ProcessHandle::Poll(identity)) => Some(ExitWatch::Polled(identity)),
        })
    }

    /// Resolves once the process has exited.
    pub(crate) async fn exited(&mut self) {
        match self {
            // A pidfd becomes readable, for good, once its process has exited; the readiness is
            // kept, so a second wait returns at once.
            ExitWatch::Registered(fd) => {
                let _ = fd.readable().await;
            }
            ExitWatch::Polled(identity) => {
                while !ProcessHandle::Poll(*identity).has_exited() {
                    tokio::time::sleep(WATCH_POLL).await;
                }
            }
        }
    }

    /// Sends `signal` to the process, never to another that took its pid over.
    pub(crate) fn signal(&self, signal: Signal) -> io::Result<()> {
        match self {
            ExitWatch::Registered(fd) => fd.get_ref().send_signal(signal),
            ExitWatch::Polled(identity) => ProcessHandle::Poll(*identity).signal(signal),
        }
    }

    /// A second handle on the same process: the pidfd duplicated (the same process by
    /// construction), or the same identity.
    pub(crate) fn duplicate_handle(&self) -> io::Result<ProcessHandle> {
        Ok(match self {
            ExitWatch::Registered(fd) => ProcessHandle::Pidfd(fd.get_ref().try_clone()?),
            ExitWatch::Polled(identity) => ProcessHandle::Poll(*identity),
        })
    }

    /// The handle, out of the async runtime (for a process that waits without one).
    pub(crate) fn into_handle(self) -> ProcessHandle {
        match self {
            ExitWatch::Registered(fd) => ProcessHandle::Pidfd(fd.into_inner()),
            ExitWatch::Polled(identity) => ProcessHandle::Poll(identity),
        }
    }
}
