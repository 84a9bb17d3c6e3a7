//! `run` (and the binary invoked as `mesos-executor`): relay one executor launch.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

use futures_util::stream::{self, Stream, StreamExt};
use nix::sys::signal::Signal;
use tokio::signal::unix::{signal, SignalKind};

use crate::config;
use crate::error::{fail, Classify, Failure, ShimError};
use crate::mesos::executor::ExecutorKind;
use crate::sibling::discover;
use crate::{logging, relay};

/// The signals passed on to the executor. SIGKILL and SIGSTOP cannot be caught; the agent's
/// SIGKILL of the process tree reaches the shim only (see README, known limits).
pub const FORWARDED_SIGNALS: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Relays a launch; `argv0` is how the binary was invoked, `args` the executor's arguments.
/// Returns the exit status to leave with.
pub fn relay_main(kind: ExecutorKind, argv0: &OsString, args: Vec<OsString>) -> u8 {
    if discover::in_sibling() {
        // This binary is the executor image's mesos-executor (a baked image), started inside a
        // sibling: a relay never starts a relay, so hand over to the stock executor.
        return report(hand_over_to_stock_executor(argv0, args));
    }
    append_to_sandbox_files();
    let launch = match relay::Launch::read(kind, argv0.clone(), args, std::env::vars_os().collect())
    {
        Ok(launch) => launch,
        Err(e) => return report(Err(e)),
    };
    let loaded = match config::load_for_relay(launch.var(config::ENV_CONFIG), &launch.run.work_dir)
    {
        Ok(loaded) => loaded,
        Err(e) => return report(Err(e).classify(Failure::Config)),
    };
    let settings = loaded.settings;
    logging::init(&settings);
    if let Some(path) = loaded.file {
        tracing::debug!(path = %path.display(), "configuration file read");
    }
    let ignored = config::ignored_launch_variables(launch.env.iter().map(|(k, _)| k.as_os_str()));
    if !ignored.is_empty() {
        tracing::info!(
            variables = ?ignored,
            "the launch environment is the task's: these variables are passed to the executor and are not settings \
             (the shim's settings come from its configuration file)"
        );
    }
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => return report(Err(e)),
    };
    let outcome = runtime.block_on(async {
        let signals = forwarded_signals()?;
        relay::run(launch, &settings, signals).await
    });
    report(outcome)
}

/// Prints a failure the way an operator reads it in the sandbox's stderr, and picks the status.
pub fn report(outcome: Result<u8, ShimError>) -> u8 {
    match outcome {
        Ok(code) => code,
        Err(e) => {
            if tracing::dispatcher::has_been_set() {
                tracing::error!(error = %e, "launch failed");
            } else {
                eprintln!("mesos-executor-shim: error: {e}");
            }
            e.failure.exit_code()
        }
    }
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

fn hand_over_to_stock_executor(argv0: &OsString, args: Vec<OsString>) -> Result<u8, ShimError> {
    let own = PathBuf::from(argv0);
    let own = if own.is_absolute() {
        own
    } else {
        std::env::current_exe().unwrap_or(own)
    };
    if own.to_string_lossy().ends_with(".real") {
        return Err(fail(
            Failure::Config,
            format!(
                "{} is the shim too; put the stock mesos-executor there",
                own.display()
            ),
        ));
    }
    let mut stock = own.into_os_string();
    stock.push(".real");
    let error = std::process::Command::new(&stock)
        .arg0(&stock)
        .args(args)
        .exec();
    Err(fail(
        Failure::Config,
        format!(
            "the executor image's mesos-executor is this shim, and the stock executor it hands over to, {}, \
             cannot be run ({error}); keep the stock executor at <path>.real when baking the shim into an image, \
             or set \"executor\" in the configuration file to the stock executor's path",
            PathBuf::from(&stock).display()
        ),
    ))
}

/// The forwarded signals as one stream. Registered before the launch starts, so a signal that
/// arrives during the launch is held and delivered once the executor runs.
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
