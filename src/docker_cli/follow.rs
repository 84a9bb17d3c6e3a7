//! The attached `run` of a task container, kept whole across a restart of the daemon: the real
//! CLI runs it as the docker executor asked, its output passes through here; when the CLI loses
//! the daemon (its own failure, status 125) while the container runs on (live-restore), the
//! container is followed through the API instead: its log from where the output stopped, then
//! its exit, whose status is the one left with.

use std::ffi::OsString;
use std::time::{Duration, SystemTime};

use bollard::container::LogOutput;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt};

use super::args::AttachedRun;
use super::ending::Ending;
use super::splice::{rfc3339, timestamped, Delivered, ReadAgain};
use crate::config::DockerEndpoint;
use crate::engine::{Engine, Patience, WaitFor};
use crate::sibling::protocol::FORWARDED_SIGNALS;

/// The CLI's status for a failure of its own, not the container's (`docker run --help`).
pub(crate) const CLI_OWN_FAILURE: i32 = 125;

/// How long the CLI's output is read after it exited.
const FINAL_DRAIN: Duration = Duration::from_secs(5);

/// How long the log may stay quiet before the entries read again are judged.
const QUIET: Duration = Duration::from_millis(250);

/// At most this much of the log read again is held before it is judged (its bytes and a word for
/// each entry): a task that wrote more in the moments before the daemon left cannot make this
/// process hold its whole output.
const READ_AGAIN_MAX: usize = 4 * 1024 * 1024;

/// How long to wait before asking a daemon again that answered with an error.
const RETRY: Duration = Duration::from_secs(1);

/// How long a daemon that does not answer is waited for before saying so again.
const PATIENCE: Patience = Patience {
    absent: Duration::from_secs(60),
    busy: Duration::from_secs(60),
    say_retrying: false,
};

/// The task's two streams: what each delivered.
#[derive(Default)]
pub(crate) struct Output {
    pub stdout: Delivered,
    pub stderr: Delivered,
}

/// Runs the real CLI and returns how it ended, its output passed on (and noted in `output`),
/// the proxied signals passed to it.
pub(crate) async fn run_cli(
    cli: &OsString,
    args: &[OsString],
    env: &[(OsString, OsString)],
    output: &mut Output,
    signals: &mut Proxied,
) -> std::io::Result<std::process::ExitStatus> {
    let mut command = tokio::process::Command::new(cli);
    command
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    // SAFETY: between fork and exec only prctl(2) runs, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
    let mut child = command.spawn()?;
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let pid = child.id().map(|p| nix::unistd::Pid::from_raw(p as i32));
    let copies = async {
        tokio::join!(
            pass_on(stdout, Stream::Stdout, &mut output.stdout),
            pass_on(stderr, Stream::Stderr, &mut output.stderr)
        )
    };
    tokio::pin!(copies);
    let mut copied = false;
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            _ = &mut copies, if !copied => copied = true,
            Some(signal) = signals.next() => {
                if let Some(pid) = pid {
                    let _ = nix::sys::signal::kill(pid, signal);
                }
            }
        }
    };
    // What the CLI wrote before it exited is read to its end; a process it left holding the
    // pipes does not hold this one.
    if !copied {
        let _ = tokio::time::timeout(FINAL_DRAIN, &mut copies).await;
    }
    status
}

/// Copies one of the CLI's streams to ours as it comes, noting what was delivered and when.
async fn pass_on(from: Option<impl AsyncRead + Unpin>, to: Stream, delivered: &mut Delivered) {
    let Some(mut from) = from else { return };
    let mut buffer = vec![0u8; 16 * 1024];
    while let Ok(n @ 1..) = from.read(&mut buffer).await {
        let at = SystemTime::now();
        write(to, &buffer[..n]);
        delivered.record(&buffer[..n], at);
    }
}

/// After the CLI failed on its own (`cli_status` 125): the container's own end, followed through
/// every later loss of the daemon; `None` where there is no container to follow (never made,
/// never started, removed, a terminal's), and the CLI's status stands.
pub(crate) async fn follow_container(
    run: &AttachedRun,
    endpoint: &DockerEndpoint,
    started: SystemTime,
    cli_ended: SystemTime,
    output: &mut Output,
    signals: &mut Proxied,
) -> Option<Ending> {
    let mut pinned: Option<String> = None;
    let mut errors = Quiet::default();
    loop {
        let engine = connected(endpoint).await;
        let inspected = match engine.inspect_container(&run.name).await {
            Ok(inspected) => inspected,
            Err(e) => {
                errors.note(&format!("{e:#}; asking again"));
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let container = inspected?;
        let id = container.id.clone()?;
        if pinned.get_or_insert_with(|| id.clone()) != &id {
            note(&format!(
                "{} is another container now: not following it",
                run.name
            ));
            return None;
        }
        let code = match found(&container, cli_ended) {
            Found::NotFollowed(why) => {
                if let Some(why) = why {
                    note(&format!("{} {why}", run.name));
                }
                return None;
            }
            Found::Exited { code, after_cli } => match after_cli {
                true => code,
                false => return Some(Ending::Status(code)),
            },
            Found::Running => {
                note(&format!(
                    "the daemon left; following {} through its log",
                    run.name
                ));
                if let Some(ending) = follow_once(&engine, &id, started, output, signals).await {
                    return Some(ending);
                }
                // The daemon went away, or answered the wait with an error: not at once again.
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        // It ended after the CLI had lost the daemon: what it wrote after the CLI's last byte is
        // in its log.
        if let Err(why) = read_logs(&engine, &id, started, output).await {
            note(&format!("cannot read the container's log: {why}"));
        }
        return Some(Ending::Status(code));
    }
}

/// The container under the run's name, as far as following it goes.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// Running (or restarting): its log and its exit are followed.
    Running,
    /// Ended with this status; `after_cli`: after the CLI, which did not see the last of its
    /// output then: that is read from its log.
    Exited { code: i32, after_cli: bool },
    /// Never started (the CLI's status stands), or running with a terminal, whose output cannot
    /// be followed (`Some`: why, to say).
    NotFollowed(Option<&'static str>),
}

fn found(container: &ContainerInspectResponse, cli_ended: SystemTime) -> Found {
    let state = container.state.clone().unwrap_or_default();
    let has_terminal = container.config.as_ref().and_then(|c| c.tty) == Some(true);
    let finished_at = state
        .finished_at
        .as_deref()
        .filter(|t| !t.starts_with("0001-"));
    let finished = finished_at.is_some();
    let after_cli = finished_at
        .and_then(rfc3339)
        .is_none_or(|at| at > cli_ended);
    let live = state.running == Some(true) || state.restarting == Some(true);
    match (live, finished, state.exit_code) {
        (true, _, _) if has_terminal => {
            Found::NotFollowed(Some("has a terminal: its output cannot be followed"))
        }
        (true, _, _) => Found::Running,
        (false, true, Some(code)) => Found::Exited {
            code: code as i32,
            after_cli,
        },
        (false, _, _) => Found::NotFollowed(None),
    }
}

/// The log of both streams from where each stopped, to its end (or on, while it runs).
async fn read_logs(
    engine: &Engine,
    id: &str,
    started: SystemTime,
    output: &mut Output,
) -> Result<(), bollard::errors::Error> {
    let (out, err) = tokio::join!(
        read_log(engine, id, Stream::Stdout, started, &mut output.stdout),
        read_log(engine, id, Stream::Stderr, started, &mut output.stderr)
    );
    out.and(err)
}

/// One pass while the daemon answers: the log of both streams to its end, then the exit. `None`
/// when the daemon went away meanwhile.
async fn follow_once(
    engine: &Engine,
    id: &str,
    started: SystemTime,
    output: &mut Output,
    signals: &mut Proxied,
) -> Option<Ending> {
    let exit = async {
        // The log may be unreadable (a logging driver without reading) while the daemon
        // answers: the exit is still followed.
        if let Err(why) = read_logs(engine, id, started, output).await {
            note(&format!("cannot read the container's log: {why}"));
        }
        let wait = engine.wait(id, WaitFor::NotRunning).await.ok()?;
        wait.await.ok()
    };
    tokio::pin!(exit);
    loop {
        tokio::select! {
            code = &mut exit => return code.map(|c| Ending::Status(c as i32)),
            Some(signal) = signals.next() => {
                let _ = engine.kill(id, signal).await;
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stream {
    Stdout,
    Stderr,
}

/// Reads the log of one stream from a little before where its output stopped, passes on what
/// was not delivered, then follows it to its end.
async fn read_log(
    engine: &Engine,
    id: &str,
    stream: Stream,
    started: SystemTime,
    delivered: &mut Delivered,
) -> Result<(), bollard::errors::Error> {
    let options = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(stream == Stream::Stdout)
        .stderr(stream == Stream::Stderr)
        .timestamps(true)
        .since(delivered.read_again_from(started))
        .build();
    let mut log = engine.api().logs(id, Some(options));
    // Entries that may have been delivered already, judged once they are all read.
    let mut read_again = delivered.last_at.map(|_| ReadAgain::default());
    loop {
        let next = match read_again {
            Some(_) => match tokio::time::timeout(QUIET, log.next()).await {
                Ok(next) => next,
                Err(_) => {
                    pass_undelivered(stream, delivered, read_again.take());
                    continue;
                }
            },
            None => log.next().await,
        };
        let entry = match next {
            Some(Ok(LogOutput::StdOut { message } | LogOutput::StdErr { message })) => message,
            Some(Ok(_)) => continue,
            Some(Err(e)) => {
                pass_undelivered(stream, delivered, read_again.take());
                return Err(e);
            }
            None => break,
        };
        let (at, bytes) = timestamped(&entry).unwrap_or((SystemTime::now(), &entry[..]));
        if let Some(entries) = read_again.as_mut().filter(|_| delivered.may_hold(at)) {
            entries.push(bytes);
            if entries.held() >= READ_AGAIN_MAX {
                pass_undelivered(stream, delivered, read_again.take());
            }
            continue;
        }
        pass_undelivered(stream, delivered, read_again.take());
        write(stream, bytes);
        delivered.record(bytes, at);
    }
    pass_undelivered(stream, delivered, read_again.take());
    Ok(())
}

/// Passes on what of `entries` (read again) was not delivered.
fn pass_undelivered(stream: Stream, delivered: &mut Delivered, entries: Option<ReadAgain>) {
    let Some(entries) = entries else { return };
    let new = delivered.undelivered(&entries);
    write(stream, new);
    let at = delivered.last_at.unwrap_or_else(SystemTime::now);
    delivered.record(new, at);
}

/// Writes to our own stream, blocking as the CLI's own writes do: a reader that does not keep up
/// holds the task's output back, nothing is dropped. A reader gone loses it, as it would the CLI's.
fn write(stream: Stream, bytes: &[u8]) {
    use std::io::Write;
    if bytes.is_empty() {
        return;
    }
    let _ = match stream {
        Stream::Stdout => std::io::stdout()
            .lock()
            .write_all(bytes)
            .and_then(|_| std::io::stdout().flush()),
        Stream::Stderr => std::io::stderr().lock().write_all(bytes),
    };
}

/// The daemon at `endpoint`, waited for as long as it takes: the container runs on without it,
/// and the executor has its own watch on the container's process.
async fn connected(endpoint: &DockerEndpoint) -> Engine {
    let mut absent = Quiet::default();
    loop {
        match Engine::connect(endpoint, PATIENCE).await {
            Ok(engine) => return engine,
            Err(e) => absent.note(&format!("{e}; still waiting for it")),
        }
    }
}

/// A note repeated at most once a minute: a daemon that stays away, or answers with errors for
/// hours, does not fill the task's stderr.
#[derive(Default)]
struct Quiet(Option<std::time::Instant>);

impl Quiet {
    fn note(&mut self, text: &str) {
        if self
            .0
            .is_none_or(|said| said.elapsed() >= Duration::from_secs(60))
        {
            note(text);
            self.0 = Some(std::time::Instant::now());
        }
    }
}

/// A line of the shim's own in the task's stderr, where the CLI's own messages go too.
fn note(text: &str) {
    eprintln!("mesos-executor-shim: {text}");
}

/// The signals the shim forwards (those `docker run` proxies to its container too), as they
/// arrive.
pub(crate) struct Proxied(Vec<tokio::signal::unix::Signal>, Vec<Signal>);

impl Proxied {
    pub fn new() -> std::io::Result<Proxied> {
        let mut streams = Vec::new();
        for signal in FORWARDED_SIGNALS {
            let kind = tokio::signal::unix::SignalKind::from_raw(signal as i32);
            streams.push(tokio::signal::unix::signal(kind)?);
        }
        Ok(Proxied(streams, FORWARDED_SIGNALS.to_vec()))
    }

    async fn next(&mut self) -> Option<Signal> {
        let (streams, signals) = (&mut self.0, &self.1);
        std::future::poll_fn(|cx| {
            for (stream, signal) in streams.iter_mut().zip(signals) {
                if let std::task::Poll::Ready(Some(())) = stream.poll_recv(cx) {
                    return std::task::Poll::Ready(Some(*signal));
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use bollard::models::{ContainerConfig, ContainerState};

    use super::*;

    fn container(state: ContainerState, tty: bool) -> ContainerInspectResponse {
        ContainerInspectResponse {
            state: Some(state),
            config: Some(ContainerConfig {
                tty: Some(tty),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A container that ended while the daemon was away wrote its last lines meanwhile: they are
    /// in its log, read before its status is given; one that ended before the CLI did, whose
    /// output the CLI passed on whole, is not read again.
    #[test]
    fn a_container_found_ended_after_the_cli_is_read_then_left_with_its_status() {
        let cli_ended = UNIX_EPOCH + Duration::from_secs(1_796_598_882);
        let ended = |at: &str| ContainerState {
            running: Some(false),
            finished_at: Some(at.into()),
            exit_code: Some(3),
            ..Default::default()
        };
        assert_eq!(
            found(
                &container(ended("2026-12-06T23:14:42.1Z"), false),
                cli_ended
            ),
            Found::Exited {
                code: 3,
                after_cli: true
            }
        );
        assert_eq!(
            found(
                &container(ended("2026-12-06T23:14:41.9Z"), false),
                cli_ended
            ),
            Found::Exited {
                code: 3,
                after_cli: false
            }
        );
        let running = ContainerState {
            running: Some(true),
            ..Default::default()
        };
        assert_eq!(
            found(&container(running.clone(), false), cli_ended),
            Found::Running
        );
        assert!(matches!(
            found(&container(running, true), cli_ended),
            Found::NotFollowed(Some(_))
        ));
        let never_started = ContainerState {
            running: Some(false),
            finished_at: Some("0001-01-01T00:00:00Z".into()),
            exit_code: Some(128),
            ..Default::default()
        };
        assert_eq!(
            found(&container(never_started, false), cli_ended),
            Found::NotFollowed(None)
        );
    }
}
