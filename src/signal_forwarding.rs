//! Passing a signal on to the executor, the same way in the relay, its waiting mode and the
//! sibling's init: the signals waiting in a signalfd, read without blocking, and each passed on
//! along its [`Route`]: said in the log, sent, and a refusal (the process or container has
//! exited: its exit is on its way) logged, never a failure.

use std::fmt::Display;

use nix::sys::signal::Signal;
use nix::sys::signalfd::SignalFd;

/// The signals waiting in `fd` (made non-blocking), in order; a number nix has no name for is
/// passed over.
pub(crate) fn pending(fd: &SignalFd) -> impl Iterator<Item = Signal> + '_ {
    std::iter::from_fn(move || loop {
        let info = fd.read_signal().ok()??;
        if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
            return Some(signal);
        }
    })
}

/// How a signal reaches the executor.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Route<'a> {
    /// To the sibling's process, held by the relay or its waiting mode.
    Held { container: &'a str },
    /// Through the daemon, to the sibling's init, for a sibling whose process is not held yet.
    Daemon { container: &'a str },
    /// From the sibling's init to the executor, its child.
    Child,
}

impl Route<'_> {
    /// Passes `signal` on with `send`, saying so; a refusal is only logged.
    pub(crate) fn forward<E: Display>(
        self,
        signal: Signal,
        send: impl FnOnce(Signal) -> Result<(), E>,
    ) {
        self.announce(signal);
        if let Err(e) = send(signal) {
            self.refused(e);
        }
    }

    /// Says that `signal` goes on (for a send that cannot be a closure: an async one).
    pub(crate) fn announce(self, signal: Signal) {
        let signal = signal.as_str();
        match self {
            Route::Held { container } => {
                tracing::info!(container, signal, "forwarding signal to the executor")
            }
            Route::Daemon { container } => tracing::info!(
                container,
                signal,
                "forwarding signal to the executor through the daemon"
            ),
            Route::Child => tracing::info!(signal, "passing signal on to the executor"),
        }
    }

    /// Says that the signal was refused: the process or container has exited, and its exit is
    /// on its way.
    pub(crate) fn refused(self, error: impl Display) {
        match self {
            Route::Held { container } | Route::Daemon { container } => {
                tracing::warn!(container, error = %error, "could not forward signal")
            }
            // The executor has exited; its reaping comes next.
            Route::Child => tracing::debug!(error = %error, "the executor refused a signal"),
        }
    }
}
