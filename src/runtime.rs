//! The async runtime the binary's async parts run on (the launch, the operator commands, the
//! waiting mode's last word with the daemon): one thread, made where it is needed. Below every
//! command, so that the relay's waiting mode can make one without reaching up to `commands`.

use crate::error::{fail, Failure, ShimError};

/// A runtime on the current thread, with I/O and timers.
pub(crate) fn current_thread() -> Result<tokio::runtime::Runtime, ShimError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            fail(
                Failure::Software,
                format!("cannot start the async runtime: {e}"),
            )
        })
}
