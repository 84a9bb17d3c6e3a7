//! The sibling's init (the binary run as `<path> mesos-executor-shim-init ...` in a sibling):
//! reads the shim's arguments, of any protocol version, and runs [`crate::sibling_init`].

use std::ffi::OsString;

use crate::sibling::protocol::{InitArgs, PROTOCOL};

/// `args`: what follows the init argument. Returns the status to leave with: the executor's.
/// `env`: the sibling's environment, taken from this process (see [`crate::launch_env`]): the
/// executor's.
pub fn main(args: &[OsString], env: crate::launch_env::LaunchEnv) -> u8 {
    let args: Option<Vec<String>> = args.iter().map(|a| a.clone().into_string().ok()).collect();
    let parsed = match args
        .ok_or_else(|| "an argument is not UTF-8".to_string())
        .and_then(|a| InitArgs::parse(&a))
    {
        Ok(parsed) => parsed,
        Err(e) => {
            // No sandbox to write to yet: Docker's log of the sibling keeps this.
            eprintln!(
                "mesos-executor-shim init: cannot read the shim's arguments ({e}); this init speaks \
                 protocol {PROTOCOL}: the shim that made this sibling and this init must be releases \
                 that share a protocol"
            );
            return crate::error::Failure::Software.exit_code();
        }
    };
    if let Err(e) = crate::sibling_init::log_to(&parsed.args.stderr) {
        eprintln!("mesos-executor-shim init: {e}");
    }
    crate::logging::init(parsed.args.log);
    if parsed.args.protocol > PROTOCOL || !parsed.ignored.is_empty() {
        tracing::info!(
            shim_protocol = parsed.args.protocol,
            init_protocol = PROTOCOL,
            ignored = ?parsed.ignored,
            "the shim speaks a newer protocol: running the executor with what this init knows"
        );
    }
    crate::sibling_init::run(&parsed.args, &env)
}
