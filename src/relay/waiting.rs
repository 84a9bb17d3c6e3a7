//! The shim once only waiting is left: it holds nothing of its launch. When the sibling runs, its
//! pid is checkpointed, the forked.pid guard has closed and the sweep is done, the shim re-executes
//! itself into this small mode (same pid, same start time, so the agent and the sibling's init
//! still know it): no async runtime, no connection, no launch state; one thread that sleeps in
//! one `poll(2)` on a signalfd and the sibling's pidfd, and passes signals on. When the executor
//! has exited it leaves with its status (asking the daemon only where the init recorded none, or
//! the sibling is not removed by the daemon).
//!
//! What passes across the `exec` is small and explicit ([`Handover`]): the pidfd (or, without
//! pidfds, the process's identity), the sibling, where its exit is recorded, the daemon to ask.
//! The forwarded signals stay blocked across the `exec`, so none is lost: they wait in the new
//! signalfd.

use std::os::fd::AsFd;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::proc::WATCH_POLL;
use crate::relay::handover::Handover;
use crate::relay::supervise::ExecutorExit;
use crate::signal_forwarding::{self, Route};

/// Waits for the sibling's process to exit, passing the forwarded signals on to it and copying
/// the executor's output, if it comes through the shim. Returns once it has exited.
pub(crate) fn wait_for_exit(handover: &mut Handover) -> std::io::Result<()> {
    let signals = SignalFd::with_flags(
        &crate::sibling::protocol::forwarded_signal_set(),
        SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC,
    )?;
    // Everything from here on is this loop: the code that started the process and launched the
    // sibling is not needed again.
    crate::proc::release_read_only_image_pages();
    loop {
        // Signals first: one that came with the exit still reaches the executor's init, which
        // refuses it harmlessly if it is gone.
        let route = Route::Held {
            container: &handover.sibling_name,
        };
        for signal in signal_forwarding::pending(&signals) {
            route.forward(signal, |signal| handover.process.signal(signal));
        }
        let exited = handover.process.has_exited();
        if let Some(output) = handover.output.as_mut() {
            // Once the init has exited, the pipes hold the executor's last words: all of it.
            output.pump(&handover.process, exited);
            if output.closed() {
                handover.output = None;
            }
        }
        if exited {
            return Ok(());
        }
        let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        if let Some(pidfd) = handover.process.pidfd() {
            fds.push(PollFd::new(pidfd.as_fd(), PollFlags::POLLIN));
        }
        if let Some(output) = &handover.output {
            let interest = output.interest();
            fds.extend(
                interest
                    .iter()
                    .map(|(fd, events)| PollFd::new(*fd, *events)),
            );
        }
        let timeout = match handover.process.pidfd() {
            Some(_) => PollTimeout::NONE,
            None => {
                PollTimeout::try_from(WATCH_POLL.as_millis() as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// The status to leave with, once the executor has exited: its init's record; where the daemon
/// does not remove the sibling (or the init recorded nothing), after asking the daemon.
pub(crate) fn finish(handover: &Handover) -> ExecutorExit {
    let recorded = crate::relay::supervise::read_record(&handover.exit_record);
    if let (Some(exit), true) = (recorded, handover.auto_removed) {
        return exit;
    }
    let runtime = match crate::runtime::current_thread() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot finish with the daemon");
            return recorded.unwrap_or(ExecutorExit::unknown());
        }
    };
    runtime.block_on(crate::relay::supervise::finish_handed_over(
        &handover.endpoint,
        &handover.sibling_id,
        &handover.sibling_name,
        handover.auto_removed,
        recorded,
    ))
}
