//! How the CLI process ends: with a status, or killed by a signal, as the real CLI would.

use std::os::unix::process::ExitStatusExt;

use nix::sys::signal::Signal;

use crate::error::{status_of_signal, Failure};

/// How the CLI ended: with a status, or killed by a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Status(i32),
    Signal(Signal),
}

impl Ending {
    /// How the real CLI ended, to end the same way.
    pub(crate) fn of(status: std::process::ExitStatus) -> Ending {
        match (status.code(), status.signal()) {
            (Some(code), _) => Ending::Status(code),
            (None, Some(signal)) => Signal::try_from(signal)
                .map(Ending::Signal)
                .unwrap_or(Ending::Status(status_of_signal(signal).into())),
            (None, None) => Ending::Status(Failure::Software.exit_code().into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_ended_as_the_real_one_ended() {
        let exited = |code: i32| std::process::ExitStatus::from_raw(code << 8);
        assert_eq!(Ending::of(exited(125)), Ending::Status(125));
        assert_eq!(
            Ending::of(std::process::ExitStatus::from_raw(15)),
            Ending::Signal(Signal::SIGTERM)
        );
    }
}
