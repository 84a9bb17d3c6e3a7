//! The subcommands, one file each: `run` (the relay), `wait` (the relay once only waiting is
//! left), `init` (the sibling's first process), and the operator's `doctor`, `ps`, `gc`.

pub mod doctor;
pub mod gc;
pub mod init;
pub mod ps;
pub mod run;
pub mod wait;

use std::fmt::Display;
use std::io::Write;
use std::path::Path;

use crate::agent_container::HostPids;
use crate::config::{self, Loaded};
use crate::engine::{Engine, Patience};
use crate::error::{Classify, Failure, ShimError, SUCCESS};
use crate::sibling::spec::SIBLING_MARKER_MOUNT;

/// How long an operator command waits for the daemon, saying nothing until it gives up.
const OPERATOR_DOCKER_PATIENCE: Patience = Patience {
    absent: std::time::Duration::from_secs(5),
    busy: std::time::Duration::from_secs(30),
    say_retrying: false,
};

/// The operator's settings: `--config FILE` or the default file, and `DOCKER_HOST` of the
/// operator's shell. The log (stderr) as the file sets it, beside the report (stdout).
pub(crate) fn operator_settings(config: Option<&Path>) -> Result<Loaded, ShimError> {
    // The one read of the process environment: an operator command's is the operator's shell's.
    // The relay and its waiting mode never get here, and their own environment is empty anyway
    // (see `crate::launch_env`).
    let docker_host = std::env::var("DOCKER_HOST").ok();
    let loaded =
        config::load_for_operator(config, docker_host.as_deref()).classify(Failure::Config)?;
    crate::logging::init(loaded.settings.log);
    Ok(loaded)
}

pub(crate) async fn connect(settings: &config::Settings) -> Result<Engine, ShimError> {
    Engine::connect(&settings.docker_host, OPERATOR_DOCKER_PATIENCE).await
}

/// Whether this process runs inside a sibling the shim made: the sibling carries a small
/// read-only tmpfs at [`SIBLING_MARKER_MOUNT`]. A mount belongs to the container the process
/// really runs in; no launch environment can forge it, so no task can make a relay skip the relay.
pub fn in_sibling() -> Result<bool, ShimError> {
    // Where nothing is at the marker's path, nothing is mounted there: the answer on an agent
    // host, found without the mount table, which the kernel writes out mount by mount (a tenth
    // of a millisecond of CPU and more, on every launch).
    if matches!(std::fs::symlink_metadata(SIBLING_MARKER_MOUNT), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
    {
        return Ok(false);
    }
    let mountinfo = crate::proc::read_self("mountinfo").classify(Failure::Software)?;
    Ok(crate::proc::is_mount_point(
        &mountinfo,
        Path::new(SIBLING_MARKER_MOUNT),
    ))
}

/// How the process leaves, decided by a command and carried out by `main`.
#[derive(Debug)]
pub enum Leave {
    Status(u8),
    /// Die of this signal, as the executor did (the status, should the signal not end the
    /// process).
    Signal(nix::sys::signal::Signal, u8),
    /// Become the waiting mode (see [`crate::relay::waiting`]).
    Wait(Box<crate::relay::handover::Handover>),
}

impl Leave {
    /// Leave as the executor did.
    pub(crate) fn exit(exit: crate::relay::ExecutorExit) -> Leave {
        match exit.signal {
            Some(signal) => Leave::Signal(signal, exit.status),
            None => Leave::Status(exit.status),
        }
    }
}

/// Dies of `signal`, as the executor did (its handler reset first: the relay caught the
/// forwarded signals), so that the agent sees the stock executor's end; returns `status` only
/// for a signal whose default is to go on (none of those an executor dies of).
///
/// Without a core dump: the signal is the executor's (a task can send its executor `SIGQUIT` or
/// `SIGABRT`), the memory would be this process's, root's, which held the agent container's
/// inspect and the launch; and with a plain `core_pattern` the dump lands in the working
/// directory, the sandbox, which the task and its framework read.
pub fn die_of(signal: nix::sys::signal::Signal, status: u8) -> u8 {
    use nix::sys::resource::{setrlimit, Resource};
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow};
    // Both: the limit stops a dump to a file, the flag one to a `|handler` as well.
    let _ = setrlimit(Resource::RLIMIT_CORE, 0, 0);
    let _ = nix::sys::prctl::set_dumpable(false);
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: restoring the default disposition installs no handler of ours.
    let _ = unsafe { sigaction(signal, &default) };
    let mut set = SigSet::empty();
    set.add(signal);
    let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
    let _ = nix::sys::signal::raise(signal);
    status
}

/// Prints a failure of `what` (the launch, `doctor`, `ps`, `gc`) the way an operator reads it,
/// in the sandbox's stderr or the shell, and picks the status.
pub fn report(what: &str, outcome: Result<u8, ShimError>) -> u8 {
    match outcome {
        Ok(code) => code,
        Err(e) if e.is_reader_gone() => SUCCESS,
        Err(e) => {
            if tracing::dispatcher::has_been_set() {
                tracing::error!(error = %e, "{what} failed");
            } else {
                eprintln!("mesos-executor-shim: {what} failed: {e}");
            }
            e.failure.exit_code()
        }
    }
}

/// Prints what clap says of a command line it could not parse (or the help, or the version,
/// which are no failure) and picks the status: a bad command line is a usage failure.
pub fn usage(e: &clap::Error) -> u8 {
    let _ = e.print();
    if e.use_stderr() {
        Failure::Usage.exit_code()
    } else {
        SUCCESS
    }
}

/// Prints one line of a command's report. A failed write ends the command ([`Failure::Output`];
/// a reader that went away, `ps --json | head`, ends it quietly: see [`report`]).
pub(crate) fn print(line: impl Display) -> Result<(), ShimError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| ShimError {
            failure: Failure::Output,
            error: anyhow::Error::new(e).context("cannot print the report"),
        })
}

/// `text` safe to print on a terminal: every control character (an escape sequence's `ESC`, a
/// carriage return that would overwrite the line) and every bidirectional-text control is
/// written as Rust writes it escaped (`\u{1b}`), and a backslash as `\\`, so that no value
/// reads as another. What a report prints from a label or a run goes through here: labels are
/// anyone's to set, a tenant's included.
pub(crate) fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return text.into();
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            c if needs_escape(c) => escaped.extend(c.escape_unicode()),
            c => escaped.push(c),
        }
    }
    escaped.into()
}

/// Control characters, the bidirectional-text controls (they reorder what follows on the line)
/// and the backslash that starts an escape.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || c == '\\'
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Says once, where `ps` and `gc` cannot show that they see the host's pids, that no pid is
/// judged: on stdout in a text report, in the log (stderr) beside a JSON one, whose shape stays.
pub(crate) fn say_if_pids_unseen(host_pids: &HostPids, json: bool) -> Result<(), ShimError> {
    let HostPids::Unproven(why) = host_pids else {
        return Ok(());
    };
    let line = format!(
        "host pids are not seen from here ({why}): every pid is taken as alive, nothing is \
         judged by pid; run on the host or in a container with --pid=host to judge them"
    );
    if json {
        tracing::warn!("{line}");
        Ok(())
    } else {
        print(line)
    }
}

/// Prints a value as one line of JSON.
pub(crate) fn print_json<T: serde::Serialize>(value: &T) -> Result<(), ShimError> {
    print(serde_json::to_string(value).expect("serialisable"))
}

#[cfg(test)]
mod tests {
    use super::printable;

    /// Every status a command leaves with is one of the named constants of [`crate::error`]
    /// (the table each `--help` prints): no number is written where a status is decided, in any
    /// command's file or in `main.rs` (their tests aside).
    #[test]
    fn commands_leave_only_with_named_statuses() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = vec![src.join("main.rs")];
        let mut dirs = vec![src.join("commands")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                match path.extension() {
                    None => dirs.push(path),
                    Some(ext) if ext == "rs" => files.push(path),
                    Some(_) => {}
                }
            }
        }
        assert!(files.len() > 8, "{files:?}");
        let where_a_status_goes = [
            "Ok(",
            "Status(",
            "return ",
            "ExitCode::from(",
            "exit(",
            "=> ",
        ];
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            for (n, line) in code.lines().enumerate() {
                if line.trim_start().starts_with("//") {
                    continue;
                }
                for prefix in where_a_status_goes {
                    let literal = line.match_indices(prefix).any(|(at, _)| {
                        line[at + prefix.len()..].starts_with(|c: char| c.is_ascii_digit())
                    });
                    assert!(
                        !literal,
                        "{}:{}: a status written as a number: {line}",
                        file.display(),
                        n + 1
                    );
                }
            }
        }
    }

    /// A task can kill its executor with a signal that dumps core: the shim dies of it, and
    /// must not dump its own memory into the sandbox (or to the host's handler) doing so.
    #[test]
    fn dying_of_the_executors_signal_dumps_no_core() {
        use nix::sys::resource::{setrlimit, Resource, RLIM_INFINITY};
        use nix::sys::signal::Signal;
        use nix::sys::wait::{waitpid, WaitStatus};
        use nix::unistd::{fork, ForkResult};
        let dir = tempfile::tempdir().unwrap();
        for signal in [Signal::SIGQUIT, Signal::SIGABRT, Signal::SIGSEGV] {
            // SAFETY: the child makes system calls only (chdir, setrlimit and what `die_of`
            // makes), no allocation and no lock, and never returns.
            match unsafe { fork() }.unwrap() {
                ForkResult::Child => {
                    let _ = nix::unistd::chdir(dir.path());
                    // As a host where dumps are on (docker.service's LimitCORE=infinity).
                    let _ = setrlimit(Resource::RLIMIT_CORE, RLIM_INFINITY, RLIM_INFINITY);
                    super::die_of(signal, 1);
                    // SAFETY: leaves the forked child at once.
                    unsafe { nix::libc::_exit(99) }
                }
                ForkResult::Parent { child } => match waitpid(child, None).unwrap() {
                    WaitStatus::Signaled(_, got, dumped) => {
                        assert_eq!(got, signal);
                        assert!(!dumped, "{signal}: the shim dumped core");
                    }
                    other => panic!("{signal}: {other:?}"),
                },
            }
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn printed_values_carry_no_control_character() {
        assert_eq!(printable("app.1"), "app.1");
        assert_eq!(printable("ü-ok"), "ü-ok");
        assert_eq!(printable("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(
            printable("x\ry\n\t\u{7f}\u{9b}"),
            "x\\u{d}y\\u{a}\\u{9}\\u{7f}\\u{9b}"
        );
        assert_eq!(printable("\u{202e}txt"), "\\u{202e}txt");
        // A backslash is doubled: a value that spells an escape is not taken for one.
        assert_eq!(printable("a\\u{1b}"), "a\\\\u{1b}");
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let out = printable(&c.to_string()).into_owned();
            assert!(!out.chars().any(char::is_control), "{c:?} -> {out:?}");
        }
    }
}
