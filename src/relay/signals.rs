//! The signals the agent sends the shim, which the shim passes on to its executor
//! ([`FORWARDED_SIGNALS`](crate::sibling::protocol::FORWARDED_SIGNALS)): blocked from the
//! relay's first instant, in every thread it will start (a thread inherits its parent's mask),
//! and read from a signalfd. None is delivered to a
//! thread that does not pass it on (the output thread, a resolver's), and none is lost at the
//! hand-over to the waiting mode: what the relay has not read stays pending across the `exec`
//! and waits in the waiting mode's own signalfd.

use futures_util::stream::{self, Stream};
use nix::sys::signal::{SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::sibling::protocol::forwarded_signal_set;

/// Blocks the forwarded signals in this thread, and so in every thread it starts afterwards.
/// Called first thing, before any thread exists.
pub(crate) fn block_forwarded() -> nix::Result<()> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&forwarded_signal_set()), None)
}

/// Unblocks them again, for a program this process becomes in place (the stock executor, handed
/// the launch back): a blocked mask survives `exec`, and an executor that cannot be sent SIGTERM
/// would never end. One that is pending now is delivered at once, as it would have been to it.
pub(crate) fn unblock_forwarded() {
    let _ =
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&forwarded_signal_set()), None);
}

/// The forwarded signals as they arrive, read from a signalfd the async runtime watches. They
/// must be blocked ([`block_forwarded`]).
pub(crate) fn forwarded_stream() -> std::io::Result<impl Stream<Item = Signal> + Unpin> {
    let fd = SignalFd::with_flags(
        &forwarded_signal_set(),
        SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
    )?;
    // SAFETY: the AsyncFd owns the SignalFd, whose descriptor stays open and the same until
    // both are dropped together.
    let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)?;
    Ok(Box::pin(stream::unfold(fd, |fd| async move {
        let signal = next_signal(&fd).await?;
        Some((signal, fd))
    })))
}

/// The next forwarded signal; `None` if the signalfd fails (it does not, once made).
async fn next_signal(fd: &AsyncFd<SignalFd>) -> Option<Signal> {
    loop {
        let mut ready = fd.readable().await.ok()?;
        match ready.get_inner().read_signal() {
            Ok(Some(info)) => {
                if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                    return Some(signal);
                }
            }
            Ok(None) => ready.clear_ready(),
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    /// Blocked, then raised at this very thread: the stream reads it, and nothing else is
    /// delivered (a handler would have run, the default action would have ended the tests).
    #[test]
    fn a_blocked_signal_is_read_from_the_stream() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            // Blocked in this test's thread only: the signal is sent to it alone.
            block_forwarded().unwrap();
            let mut signals = forwarded_stream().unwrap();
            // raise(3) sends to the calling thread.
            nix::sys::signal::raise(Signal::SIGUSR2).unwrap();
            let got = tokio::time::timeout(std::time::Duration::from_secs(5), signals.next()).await;
            assert_eq!(got.unwrap(), Some(Signal::SIGUSR2));
        });
    }
}
