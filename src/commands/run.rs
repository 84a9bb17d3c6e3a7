//! `run` (and the binary invoked as `mesos-executor` or `mesos-docker-executor`): relay one
//! executor launch.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

use futures_util::stream::{self, Stream, StreamExt};
use nix::sys::signal::Signal;
use tokio::signal::unix::{signal, SignalKind};

use crate::config;
use crate::error::{fail, Classify, Failure, ShimError};
use crate::mesos::executor::{executor_to_run, ExecutorKind};
use crate::relay::{self, launch};
use crate::sibling::protocol::FORWARDED_SIGNALS;

/// Relays a launch of the executor `kind`; `args` are the executor's arguments. Returns the exit
/// status to leave with.
pub fn relay_main(kind: ExecutorKind, args: Vec<OsString>) -> u8 {
    // First of all, while the agent that ran this binary is certainly its parent.
    let origin = launch::Origin::read();
    match super::in_sibling() {
        // This binary is the executor image's executor (a baked image), run inside a sibling:
        // a relay never starts a relay, so hand over to the stock executor.
        Ok(true) => return super::report(hand_over_to_stock_executor(args)),
        Ok(false) => {}
        Err(e) => return super::report(Err(e)),
    }
    append_to_sandbox_files();
    let exec_path = crate::proc::exec_path();
    let launch =
        match relay::Launch::read(kind, exec_path, args, std::env::vars_os().collect(), origin) {
            Ok(launch) => launch,
            Err(e) => return super::report(Err(e)),
        };
    let loaded = match config::load_for_relay(&launch.run.work_dir) {
        Ok(loaded) => loaded,
        Err(e) => return super::report(Err(e).classify(Failure::Config)),
    };
    let settings = loaded.settings;
    crate::logging::init(&settings.log_level, settings.log_format);
    tracing::debug!(start_ns = crate::proc::monotonic_ns(), "shim started");
    if let Some(path) = loaded.file {
        tracing::debug!(path = %path.display(), "configuration file read");
    }
    if let Some(work_dir) = &settings.work_dir {
        if *work_dir != launch.run.work_dir {
            return super::report(Err(crate::error::fail(
                Failure::Usage,
                format!(
                    "the run's sandbox {} is not under the work_dir {} the configuration file names; \
                     the shim acts only for runs of its agent",
                    launch.run.sandbox.display(),
                    work_dir.display()
                ),
            )));
        }
    }
    let said = launch.var("MESOS_CHECKPOINT").is_some_and(|v| v == "1");
    if said != launch.checkpointing {
        tracing::info!(
            meta_run_dir_exists = launch.checkpointing,
            mesos_checkpoint = said,
            "MESOS_CHECKPOINT disagrees with what the agent made; going by the meta run directory"
        );
    }
    let ignored = config::ignored_launch_variables(launch.env.iter().map(|(k, _)| k.as_os_str()));
    if !ignored.is_empty() {
        tracing::info!(
            variables = ?ignored,
            "the launch environment is the task's: these variables are passed to the executor and are not settings \
             (the shim's settings come from its configuration file)"
        );
    }
    if launch.origin.agent.is_none() && settings.end_with_shim {
        tracing::info!("the process that forked the shim cannot be told: the executor will not end with the shim");
    }
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => return super::report(Err(e)),
    };
    let outcome = runtime.block_on(async {
        let signals = forwarded_signals()?;
        relay::run(launch, &settings, signals).await
    });
    super::report(outcome)
}

/// The agent opens the sandbox's stdout and stderr without O_APPEND; the sibling appends to the
/// same files. Appending from here as well keeps the shim's few lines from overwriting executor
/// output written meanwhile.
fn append_to_sandbox_files() {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    use std::os::fd::AsFd;
    let (stdout, stderr) = (std::io::stdout(), std::io::stderr());
    for fd in [stdout.as_fd(), stderr.as_fd()] {
        if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
            let _ = fcntl(
                fd,
                FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_APPEND),
            );
        }
    }
}

/// In a sibling, the executor path the agent ran is this binary (a baked image): exec the stock
/// executor kept beside it, by the rule the sibling's init applies too.
fn hand_over_to_stock_executor(args: Vec<OsString>) -> Result<u8, ShimError> {
    let own = crate::proc::exec_path()
        .ok_or_else(|| fail(Failure::Software, "cannot tell which file this program is"))?;
    let stock =
        executor_to_run(&own, crate::proc::is_own_binary).map_err(|e| fail(Failure::Config, e))?;
    let error = std::process::Command::new(&stock)
        .arg0(&stock)
        .args(args)
        .exec();
    Err(fail(
        Failure::Config,
        format!(
            "the executor image's executor is this shim, and the stock executor it hands over to, {}, \
             cannot be run ({error}); keep the stock executor at <path>.real when baking the shim into an image, \
             or set \"executor\" in the configuration file to the stock executor's path",
            stock.display()
        ),
    ))
}

/// The forwarded signals as one stream. Registered before the launch starts, so that a signal
/// that arrives at any moment of the launch is acted on.
fn forwarded_signals() -> Result<impl Stream<Item = Signal> + Unpin, ShimError> {
    let mut streams = Vec::new();
    for sig in FORWARDED_SIGNALS {
        let listener = signal(SignalKind::from_raw(sig as i32)).map_err(|e| {
            fail(
                Failure::Software,
                format!("cannot handle {}: {e}", sig.as_str()),
            )
        })?;
        streams.push(
            stream::unfold(listener, move |mut l| async move {
                l.recv().await.map(|()| (sig, l))
            })
            .boxed(),
        );
    }
    Ok(stream::select_all(streams))
}
